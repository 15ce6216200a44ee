//! Host tests of the vGIC model as a GICv2 (IHI 0048B): the banked distributor registers,
//! GICD_SGIR, SGIs pending per sender, ITARGETSR routing and Group 0.

use super::tests::State;
use super::v2::{self, GicdAccess};
use super::*;

fn gic(n: usize) -> State {
    let mpidrs: Vec<u64> = (0..n as u64).collect();
    State::new(&mpidrs, Version::V2)
}

/// What the bus does for a distributor access from `vcpu`.
fn write(s: &mut State, vcpu: usize, offset: u64, size: u8, value: u64) -> Kicks {
    match v2::classify(offset) {
        GicdAccess::Banked => {
            let changed = v2::banked_write(&mut s.redists[vcpu], vcpu, offset, size, value);
            Kicks(if changed { 1 << vcpu } else { 0 })
        }
        GicdAccess::Sgir => {
            let (sgi, targets) = v2::sgir_targets(s.redists.len(), vcpu, value);
            for t in targets.iter() {
                s.redists[t].send_sgi(sgi, vcpu);
            }
            targets
        }
        GicdAccess::Shared => s.dist.write(offset, size, value),
    }
}

fn read(s: &State, vcpu: usize, offset: u64, size: u8) -> u64 {
    match v2::classify(offset) {
        GicdAccess::Banked => v2::banked_read(&s.redists[vcpu], vcpu, offset, size),
        GicdAccess::Sgir => 0,
        GicdAccess::Shared => s.dist.read(offset, size),
    }
}

/// GICD_SGIR: TargetListFilter [25:24], CPUTargetList [23:16], SGIINTID [3:0].
fn sgir(filter: u64, targets: u64, intid: u64) -> u64 {
    (filter << 24) | (targets << 16) | intid
}

/// Enables private interrupt `intid` of `vcpu` at `priority`, in Group 0 as Linux leaves it.
fn enable_private(s: &mut State, vcpu: usize, intid: u32, priority: u8) {
    write(s, vcpu, 0x100, 4, 1 << intid);
    write(s, vcpu, 0x400 + intid as u64, 1, priority as u64);
}

/// The guest acknowledged and EOId everything in `lrs` (the list registers read back empty).
fn done(lrs: &[Lr]) -> Vec<Lr> {
    lrs.iter().map(|l| Lr::new(l.intid(), l.priority(), Lr::STATE_INVALID).with_source(l.source())).collect()
}

#[test]
fn identification_and_reset() {
    let s = gic(4);
    assert_eq!(read(&s, 0, 0x0, 4), 0, "GICD_CTLR: both groups off at reset");
    assert_eq!(read(&s, 0, 0x4, 4), (3 << 5) | 3, "TYPER: 4 CPU interfaces, 128 INTIDs");
    assert_eq!(read(&s, 0, 0xfe8, 4), 0x20, "PIDR2: ArchRev 2");
    assert_eq!(read(&s, 0, 0x8, 4), 0x43b, "IIDR: Arm");
    assert_eq!(read(&s, 0, 0x80, 4), 0, "every interrupt in Group 0");
    assert_eq!(read(&s, 1, 0xc00, 4), 0xaaaa_aaaa, "ICFGR0: SGIs are edge-triggered");
    assert_eq!(read(&s, 0, 0x6100, 8), 0, "no IROUTER on a GICv2");
}

#[test]
fn banked_registers_are_per_vcpu() {
    let mut s = gic(4);
    // ITARGETSR0-7 read as the reader's own bit in every byte.
    assert_eq!(read(&s, 0, 0x800, 4), 0x0101_0101);
    assert_eq!(read(&s, 2, 0x81c, 4), 0x0404_0404);
    assert_eq!(read(&s, 3, 0x803, 1), 0x08);
    write(&mut s, 2, 0x800, 4, 0xffff_ffff);
    assert_eq!(read(&s, 2, 0x800, 4), 0x0404_0404, "read-only");
    // One vCPU's enables, priorities and groups are its own.
    enable_private(&mut s, 1, 27, 0xa0);
    assert_eq!(read(&s, 1, 0x100, 4), 1 << 27);
    assert_eq!(read(&s, 0, 0x100, 4), 0);
    assert_eq!(read(&s, 1, 0x418, 4), 0xa0 << 24);
    assert_eq!(read(&s, 0, 0x418, 4), 0);
    write(&mut s, 3, 0x80, 4, 1 << 27);
    assert_eq!((read(&s, 3, 0x80, 4), read(&s, 1, 0x80, 4)), (1 << 27, 0));
}

#[test]
fn sgir_target_list_others_and_self() {
    let s = gic(4);
    let targets = |sender, value| v2::sgir_targets(s.redists.len(), sender, value);
    assert_eq!(targets(0, sgir(0, 0b1010, 5)), (5, Kicks(0b1010)), "the target list");
    assert_eq!(targets(0, sgir(0, 0xf0, 5)).1, Kicks(0), "CPU interfaces the VM does not have");
    assert_eq!(targets(1, sgir(1, 0, 7)), (7, Kicks(0b1101)), "all but the sender");
    assert_eq!(targets(2, sgir(2, 0xff, 3)), (3, Kicks(0b0100)), "the sender alone");
    assert_eq!(targets(2, sgir(3, 0xff, 3)).1, Kicks(0), "filter 3 is reserved");
    assert_eq!(targets(0, sgir(0, 1, 0x1f)).0, 15, "SGIINTID is 4 bits");
}

#[test]
fn two_senders_of_one_sgi_are_two_interrupts() {
    let mut s = gic(4);
    write(&mut s, 0, 0x0, 4, 1);
    enable_private(&mut s, 0, 3, 0x80);
    write(&mut s, 2, 0xf00, 4, sgir(0, 0b0001, 3));
    write(&mut s, 1, 0xf00, 4, sgir(0, 0b0001, 3));
    // GICD_SPENDSGIR0 byte 3: the senders of SGI 3 pending at vCPU 0.
    assert_eq!(read(&s, 0, 0xf23, 1), 0b0110);
    assert_eq!(read(&s, 0, 0xf13, 1), 0b0110, "CPENDSGIR reads the same");
    assert_eq!(read(&s, 0, 0x200, 4) & 0xffff, 1 << 3, "ISPENDR0: SGI 3 pending");
    // The lowest sender first, in Group 0, and an exit on its EOI for the other one.
    let f = s.flush(0, 4);
    let first = Lr::new(3, 0x80, Lr::STATE_PENDING).with_group1(false).with_source(1).with_eoi_exit();
    assert_eq!(&*f.lrs, &[first]);
    assert_eq!(&*s.flush(0, 4).lrs, &[] as &[Lr], "not placed twice while in a list register");
    s.sync(0, &done(&f.lrs));
    let f = s.flush(0, 4);
    assert_eq!(&*f.lrs, &[Lr::new(3, 0x80, Lr::STATE_PENDING).with_group1(false).with_source(2)]);
    s.sync(0, &done(&f.lrs));
    assert!(s.flush(0, 4).lrs.is_empty(), "two SGIs sent, two delivered");
    assert_eq!(read(&s, 0, 0xf20, 4), 0);
}

#[test]
fn an_active_sgi_and_another_senders_pending_one() {
    let mut s = gic(2);
    write(&mut s, 0, 0x0, 4, 1);
    enable_private(&mut s, 0, 1, 0x80);
    write(&mut s, 1, 0xf00, 4, sgir(0, 1, 1));
    let f = s.flush(0, 4);
    // The guest acknowledged it (active) when the second sender (vCPU 0 itself) sends.
    s.sync(0, &[Lr::new(1, 0x80, Lr::STATE_ACTIVE).with_group1(false).with_source(1)]);
    assert_eq!(f.lrs[0].source(), 1);
    write(&mut s, 0, 0xf00, 4, sgir(2, 0, 1));
    let f = s.flush(0, 4);
    assert_eq!(
        &*f.lrs,
        &[Lr::new(1, 0x80, Lr::STATE_ACTIVE).with_group1(false).with_source(1).with_eoi_exit()],
        "the active one stays, with its sender; the EOI brings the next"
    );
    s.sync(0, &done(&f.lrs));
    assert_eq!(&*s.flush(0, 4).lrs, &[Lr::new(1, 0x80, Lr::STATE_PENDING).with_group1(false).with_source(0)]);
}

#[test]
fn sgi_pending_registers_set_and_clear_per_sender() {
    let mut s = gic(4);
    write(&mut s, 1, 0xf20, 4, 0x0000_0900);
    assert_eq!(read(&s, 1, 0xf20, 4), 0x0000_0900, "SGI 1 from CPUs 0 and 3");
    assert_eq!(read(&s, 0, 0xf20, 4), 0, "banked: vCPU 0 has none");
    write(&mut s, 1, 0xf11, 1, 0x08);
    assert_eq!(read(&s, 1, 0xf20, 4), 0x0000_0100, "CPENDSGIR cleared CPU 3's");
    // ISPENDR0 and ICPENDR0 ignore SGI bits (the sender would be unknown) but not PPIs.
    write(&mut s, 1, 0x200, 4, 0xffff);
    assert_eq!(read(&s, 1, 0xf20, 4), 0x0000_0100);
    write(&mut s, 1, 0x280, 4, 0xffff);
    assert_eq!(read(&s, 1, 0x200, 4), 1 << 1);
    write(&mut s, 1, 0x200, 4, 1 << 20);
    assert_eq!(read(&s, 1, 0x200, 4), (1 << 20) | (1 << 1));
    write(&mut s, 1, 0xf11, 1, 0x01);
    assert_eq!(read(&s, 1, 0x200, 4), 1 << 20, "no sender left: not pending");
}

#[test]
fn itargetsr_routes_spis() {
    let mut s = gic(4);
    write(&mut s, 0, 0x0, 4, 1);
    write(&mut s, 0, 0x104, 4, 1 << 8);
    write(&mut s, 0, 0x428, 1, 0x40);
    assert_eq!(s.dist.spi_target(40), None, "no target at reset");
    assert_eq!(s.dist.set_line(40, true), Kicks(0), "pending for nobody");
    assert!(s.flush(0, 4).lrs.is_empty());
    let kicks = write(&mut s, 0, 0x828, 1, 0b1100);
    assert_eq!(kicks, Kicks(0b1111), "a routing change: every vCPU looks again");
    assert_eq!(read(&s, 3, 0x828, 1), 0b1100);
    assert_eq!(s.dist.spi_target(40), Some(2), "the lowest named CPU interface");
    assert_eq!(&*s.flush(2, 4).lrs, &[Lr::new(40, 0x40, Lr::STATE_PENDING).with_group1(false).with_eoi_exit()]);
    // Bits for CPU interfaces the VM lacks are not kept.
    write(&mut s, 0, 0x828, 4, 0xf0f0_f0f0);
    assert_eq!(read(&s, 0, 0x828, 1), 0);
    assert_eq!(read(&s, 0, 0x824, 4), 0, "ITARGETSR of SPIs 36-39 written as zero");
}

#[test]
fn groups_follow_gicd_ctlr() {
    let mut s = gic(1);
    enable_private(&mut s, 0, 27, 0x10);
    enable_private(&mut s, 0, 30, 0x20);
    write(&mut s, 0, 0x80, 4, 1 << 30);
    s.redists[0].set_pending(27);
    s.redists[0].set_pending(30);
    assert!(s.flush(0, 4).lrs.is_empty(), "GICD_CTLR 0: nothing");
    write(&mut s, 0, 0x0, 4, 0b01);
    let f = s.flush(0, 4);
    assert_eq!(&*f.lrs, &[Lr::new(27, 0x10, Lr::STATE_PENDING).with_group1(false)], "Group 0 only");
    s.sync(0, &done(&f.lrs));
    write(&mut s, 0, 0x0, 4, 0b10);
    assert_eq!(&*s.flush(0, 4).lrs, &[Lr::new(30, 0x20, Lr::STATE_PENDING)], "then Group 1 only");
    assert_eq!(read(&s, 0, 0x0, 4), 0b10);
}

#[test]
fn garbage_accesses_hurt_nobody() {
    let mut s = gic(3);
    for off in (0..v2::GICD_WINDOW).step_by(2) {
        for size in [1, 2, 4, 8] {
            for vcpu in 0..3 {
                let _ = read(&s, vcpu, off, size);
                let _ = write(&mut s, vcpu, off, size, u64::MAX);
            }
        }
    }
    let _ = s.flush(0, 4);
    let _ = s.flush(2, 16);
}
