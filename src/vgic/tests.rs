//! Host tests of the vGIC model.

use super::*;

/// The whole vGIC of one VM as the run loop uses it (there, each part behind its own lock).
pub(super) struct State {
    pub dist: Dist,
    pub redists: Vec<Redistributor>,
}

impl State {
    pub fn new(mpidrs: &[u64], version: Version) -> Self {
        Self { dist: Dist::new(mpidrs, version), redists: mpidrs.iter().map(|_| Redistributor::new(version)).collect() }
    }

    fn irq(&self, vcpu: usize, intid: u32) -> Option<&Irq> {
        match intid {
            0..32 => self.redists.get(vcpu).map(|r| &r.private[intid as usize]),
            _ => self.dist.spi(intid),
        }
    }

    fn spi_target(&self, intid: u32) -> Option<usize> {
        self.dist.spi_target(intid)
    }

    fn enabled_grp1(&self) -> bool {
        self.dist.enabled_grp1()
    }

    fn set_pending(&mut self, vcpu: usize, intid: u32) -> Kicks {
        if intid >= 32 {
            return self.dist.set_pending(intid);
        }
        let ok = self.redists.get_mut(vcpu).is_some_and(|r| r.set_pending(intid));
        Kicks(if ok { 1 << vcpu } else { 0 })
    }

    fn set_line(&mut self, vcpu: usize, intid: u32, high: bool) -> Kicks {
        if intid >= 32 {
            return self.dist.set_line(intid, high);
        }
        let ok = self.redists.get_mut(vcpu).is_some_and(|r| r.set_line(intid, high));
        Kicks(if ok && high { 1 << vcpu } else { 0 })
    }

    fn write_sgi1r(&mut self, sender: usize, value: u64) -> Kicks {
        let (intid, targets) = sgi_targets(&self.dist.mpidrs, sender, value);
        for v in targets.iter() {
            self.redists[v].set_pending(intid);
        }
        targets
    }

    /// As the run loop does: the distributor only while an SPI is busy for `vcpu`.
    pub fn flush(&mut self, vcpu: usize, lr_count: usize) -> Flush {
        let groups = self.dist.enabled_groups();
        let Some(r) = self.redists.get_mut(vcpu) else { return Flush::default() };
        let dist = if self.dist.has_work_for(vcpu) { Some(&mut self.dist) } else { None };
        flush(dist, r, vcpu, lr_count, groups)
    }

    pub fn sync(&mut self, vcpu: usize, lrs: &[Lr]) -> Kicks {
        let Some(r) = self.redists.get_mut(vcpu) else { return Kicks::default() };
        sync(Some(&mut self.dist), r, vcpu, lrs)
    }

    fn dist_read(&self, offset: u64, size: u8) -> u64 {
        self.dist.read(offset, size)
    }

    fn dist_write(&mut self, offset: u64, size: u8, value: u64) -> Kicks {
        self.dist.write(offset, size, value)
    }

    fn redist_read(&self, offset: u64, size: u8) -> u64 {
        let v = (offset / GICR_FRAME_SIZE) as usize;
        self.redists.get(v).map_or(0, |r| r.read(v, &self.dist.mpidrs, offset % GICR_FRAME_SIZE, size))
    }

    fn redist_write(&mut self, offset: u64, size: u8, value: u64) -> bool {
        let v = (offset / GICR_FRAME_SIZE) as usize;
        self.redists.get_mut(v).is_some_and(|r| r.write(offset % GICR_FRAME_SIZE, size, value))
    }
}

fn gic(n: usize) -> State {
    let mpidrs: Vec<u64> = (0..n as u64).collect();
    let mut s = State::new(&mpidrs, Version::V3);
    s.dist_write(0, 4, 0b10);
    s
}

/// Enables SPI `intid` in group 1 at `priority`, routed to `vcpu`.
fn enable_spi(s: &mut State, intid: u32, priority: u8, vcpu: u64) {
    let reg = (intid / 32) as u64 * 4;
    let bit = 1u64 << (intid % 32);
    let group = s.dist_read(0x80 + reg, 4);
    s.dist_write(0x80 + reg, 4, group | bit);
    s.dist_write(0x100 + reg, 4, bit);
    s.dist_write(0x400 + intid as u64, 1, priority as u64);
    s.dist_write(0x6100 + 8 * (intid as u64 - 32), 8, vcpu);
}

fn enable_private(s: &mut State, vcpu: usize, intid: u32, priority: u8) {
    let frame = vcpu as u64 * GICR_FRAME_SIZE + 0x1_0000;
    let group = s.redist_read(frame + 0x80, 4);
    s.redist_write(frame + 0x80, 4, group | 1 << intid);
    s.redist_write(frame + 0x100, 4, 1 << intid);
    s.redist_write(frame + 0x400 + intid as u64, 1, priority as u64);
}

#[test]
fn gicd_ctlr_reads_the_same_fixed_bits_before_and_after_a_write() {
    let mpidrs = [0u64, 1];
    let mut s = State::new(&mpidrs, Version::V3);
    assert_eq!(s.dist_read(0x0, 4), 0b101_0000, "ARE and DS from reset on");
    s.dist_write(0x0, 4, 0);
    assert_eq!(s.dist_read(0x0, 4), 0b101_0000, "a write of 0 keeps them");
    s.dist_write(0x0, 4, 0b11);
    assert_eq!(s.dist_read(0x0, 4), 0b101_0010, "EnableGrp1 only: no Group 0");
}

#[test]
fn identification_registers() {
    let s = gic(4);
    assert_eq!(s.dist_read(0x4, 4) & 0x1f, 3, "ITLinesNumber: 128 INTIDs");
    assert_eq!(s.dist_read(0xffe8, 4), 0x30, "PIDR2: GICv3");
    assert_eq!(s.dist_read(0x0, 4), 0b1010010, "ARE, DS and EnableGrp1");
    assert_eq!(s.redist_read(0x8, 8), 0, "vCPU 0: affinity 0, not last");
    assert_eq!(s.redist_read(3 * GICR_FRAME_SIZE + 0x8, 8), (3 << 32) | (3 << 8) | (1 << 4), "vCPU 3 is last");
    assert_eq!(s.redist_read(3 * GICR_FRAME_SIZE + 0xc, 4), 3, "upper half of TYPER");
    assert_eq!(s.redist_read(0xffe8, 4), 0x30);
}

#[test]
fn waker_sleep_and_wake() {
    let mut s = gic(1);
    assert_eq!(s.redist_read(0x14, 4), 0b110, "asleep at reset");
    s.redist_write(0x14, 4, 0);
    assert_eq!(s.redist_read(0x14, 4), 0);
}

#[test]
fn spi_routed_to_another_vcpu() {
    let mut s = gic(4);
    enable_spi(&mut s, 40, 0xa0, 2);
    assert_eq!(s.spi_target(40), Some(2));
    let kicks = s.set_line(0, 40, true);
    assert_eq!(kicks, Kicks(1 << 2));
    assert!(s.flush(0, 4).lrs.is_empty());
    let f = s.flush(2, 4);
    // Level and asserted: the guest's EOI will make the vCPU exit so the line is looked at.
    assert_eq!(&*f.lrs, &[Lr::new(40, 0xa0, Lr::STATE_PENDING).with_eoi_exit()]);
    assert!(!f.underflow);
    // The guest acknowledges (LR becomes active), exits, then EOIs with the line low.
    s.sync(2, &[Lr::new(40, 0xa0, Lr::STATE_ACTIVE)]);
    s.set_line(0, 40, false);
    assert_eq!(&*s.flush(2, 4).lrs, &[Lr::new(40, 0xa0, Lr::STATE_ACTIVE)], "active stays in an LR");
    s.sync(2, &[Lr::new(40, 0xa0, 0)]);
    assert!(s.flush(2, 4).lrs.is_empty());
    // IRM = 1 routes to vCPU 0 here.
    s.dist_write(0x6100 + 8 * 8, 8, 1 << 31);
    assert_eq!(s.spi_target(40), Some(0));
}

#[test]
fn irouter_naming_no_vcpu_routes_to_nobody() {
    let mut s = gic(4);
    enable_spi(&mut s, 40, 0x20, 7);
    assert_eq!(s.spi_target(40), None, "Aff0 7 on a 4-vCPU VM");
    assert_eq!(s.set_line(0, 40, true), Kicks(0), "nobody to kick");
    for v in 0..4 {
        assert!(s.flush(v, 4).lrs.is_empty(), "not delivered to vCPU {v} (it was vCPU 0 before)");
    }
    assert_eq!(s.dist_read(0x204, 4) & (1 << 8), 1 << 8, "still pending");
    // Routed to vCPU 3 now: delivered there.
    let kicks = s.dist_write(0x6100 + 8 * 8, 8, 3);
    assert_eq!(kicks.0 & (1 << 3), 1 << 3);
    assert_eq!(&*s.flush(3, 4).lrs, &[Lr::new(40, 0x20, Lr::STATE_PENDING).with_eoi_exit()]);
}

#[test]
fn level_interrupt_stays_pending_while_the_line_is_high() {
    let mut s = gic(1);
    enable_private(&mut s, 0, 27, 0x80);
    s.set_line(0, 27, true);
    let lr = s.flush(0, 4).lrs[0];
    assert_eq!(lr.intid(), 27);
    s.sync(0, &[Lr::new(27, 0x80, 0)]);
    assert_eq!(s.flush(0, 4).lrs.len(), 1, "line still high: pending again");
    s.sync(0, &[Lr::new(27, 0x80, 0)]);
    s.set_line(0, 27, false);
    assert!(s.flush(0, 4).lrs.is_empty());
}

#[test]
fn a_level_interrupt_whose_line_dropped_in_the_lr_is_not_latched_again() {
    let mut s = gic(2);
    enable_spi(&mut s, 40, 0x40, 1);
    s.set_line(0, 40, true);
    let f = s.flush(1, 4);
    assert_eq!(f.lrs[0].state(), Lr::STATE_PENDING);
    // The device lowers its line before the guest acknowledged; the LR comes back pending.
    s.set_line(0, 40, false);
    s.sync(1, &f.lrs);
    assert_eq!(s.dist_read(0x204, 4) & (1 << 8), 0, "ISPENDR: not pending");
    assert!(s.flush(1, 4).lrs.is_empty(), "no spurious delivery");
    // A software pend (ISPENDR) of the same level interrupt is a latch: it survives.
    s.dist_write(0x204, 4, 1 << 8);
    let f = s.flush(1, 4);
    s.sync(1, &f.lrs);
    assert_eq!(s.dist_read(0x204, 4) & (1 << 8), 1 << 8, "software pending kept");
    // Acknowledged (active), the latch is consumed; deactivated, nothing is left.
    let f = s.flush(1, 4);
    s.sync(1, &[Lr::new(40, 0x40, Lr::STATE_ACTIVE)]);
    assert_eq!(f.lrs.len(), 1);
    let active = s.flush(1, 4);
    assert_eq!(active.lrs[0].state(), Lr::STATE_ACTIVE, "only active: the latch was consumed");
    s.sync(1, &[Lr::new(40, 0x40, 0)]);
    assert!(s.flush(1, 4).lrs.is_empty());
    // An edge interrupt pending in the LR stays pending.
    s.dist_write(0xc08, 4, 0b10 << 16);
    s.set_line(0, 40, true);
    s.set_line(0, 40, false);
    let f = s.flush(1, 4);
    s.sync(1, &f.lrs);
    assert_eq!(s.dist_read(0x204, 4) & (1 << 8), 1 << 8, "an edge stays latched");
}

#[test]
fn another_vcpus_list_register_state_is_read_and_cleared_right() {
    let mut s = gic(4);
    enable_spi(&mut s, 40, 0x40, 2);
    s.dist.set_pending(40);
    let f = s.flush(2, 4);
    assert_eq!(f.lrs[0].state(), Lr::STATE_PENDING);
    // Read from vCPU 0 while it sits in vCPU 2's LR: pending, and the read asks vCPUs to
    // exit (vCPU 2 among them) so the holder syncs.
    assert_eq!(s.dist_read(0x204, 4) & (1 << 8), 1 << 8, "ISPENDR shows it pending");
    assert_ne!(s.dist.read_kicks(0x204).0 & (1 << 2), 0, "the holder is kicked");
    assert_eq!(s.dist.read_kicks(0x104).0, 0, "an enable read kicks nobody");
    // ICPENDR from vCPU 0 while it is in the LR, still pending there: the clear survives
    // vCPU 2's next exit.
    s.dist_write(0x284, 4, 1 << 8);
    assert_eq!(s.dist_read(0x204, 4) & (1 << 8), 0, "reads as cleared at once");
    s.sync(2, &f.lrs);
    assert_eq!(s.dist_read(0x204, 4) & (1 << 8), 0, "not pending after the holder's sync");
    assert!(s.flush(2, 4).lrs.is_empty(), "and not delivered again");
    // Active in vCPU 2's LR (acknowledged there), deactivated by ICACTIVER from elsewhere.
    s.dist.set_pending(40);
    let f = s.flush(2, 4);
    s.sync(2, &[Lr::new(40, 0x40, Lr::STATE_ACTIVE)]);
    let f2 = s.flush(2, 4);
    assert_eq!(f.lrs.len(), 1);
    assert_eq!(f2.lrs[0].state(), Lr::STATE_ACTIVE);
    assert_eq!(s.dist_read(0x304, 4) & (1 << 8), 1 << 8, "ISACTIVER: active in vCPU 2");
    s.dist_write(0x384, 4, 1 << 8);
    s.sync(2, &f2.lrs);
    assert_eq!(s.dist_read(0x304, 4) & (1 << 8), 0, "deactivated: the write was not lost");
    assert!(s.flush(2, 4).lrs.is_empty());
    // A private interrupt in its vCPU's LR: a read of that redistributor's state kicks it.
    enable_private(&mut s, 1, 27, 0x10);
    s.set_line(1, 27, true);
    let _ = s.flush(1, 4);
    let frame = GICR_FRAME_SIZE + 0x1_0000;
    assert_eq!(s.redists[1].read_kicks(1, 0x1_0000 + 0x200), Kicks(1 << 1));
    assert_eq!(s.redist_read(frame + 0x200, 4) & (1 << 27), 1 << 27, "GICR_ISPENDR0 shows it");
    assert_eq!(s.redists[0].read_kicks(0, 0x1_0000 + 0x200), Kicks(0), "nothing in vCPU 0's LRs");
}

#[test]
fn disabled_or_group0_or_distributor_off_is_not_delivered() {
    let mut s = gic(1);
    s.set_pending(0, 5);
    assert!(s.flush(0, 4).lrs.is_empty(), "disabled and group 0");
    enable_private(&mut s, 0, 5, 0);
    assert_eq!(s.flush(0, 4).lrs.len(), 1);
    s.sync(0, &[Lr::new(5, 0, Lr::STATE_PENDING)]);
    s.dist_write(0, 4, 0);
    assert!(s.flush(0, 4).lrs.is_empty(), "EnableGrp1 off");
}

#[test]
fn sgi_target_lists_and_broadcast() {
    let mut s = gic(4);
    for v in 0..4 {
        enable_private(&mut s, v, 3, 0x10);
    }
    // SGI 3 to Aff0 = 1 and 3 (target list bits 1 and 3).
    let kicks = s.write_sgi1r(0, (3 << 24) | 0b1010);
    assert_eq!(kicks, Kicks(0b1010));
    assert!(s.irq(1, 3).unwrap().pending && s.irq(3, 3).unwrap().pending);
    assert!(!s.irq(0, 3).unwrap().pending && !s.irq(2, 3).unwrap().pending);
    // Aff1 = 1 matches nobody.
    assert_eq!(s.write_sgi1r(0, (3 << 24) | (1 << 16) | 1), Kicks(0));
    // RS = 1 (Aff0 16-31) matches nobody.
    assert_eq!(s.write_sgi1r(0, (3 << 24) | (1 << 44) | 1), Kicks(0));
    // IRM: everyone but the sender.
    assert_eq!(s.write_sgi1r(2, (3 << 24) | (1 << 40)), Kicks(0b1011));
}

#[test]
fn more_pending_than_list_registers_in_priority_order() {
    let mut s = gic(1);
    let prios = [(1u32, 0x60u8), (2, 0x20), (3, 0x80), (4, 0x40), (5, 0x10), (6, 0x30)];
    for &(intid, p) in &prios {
        enable_private(&mut s, 0, intid, p);
        s.set_pending(0, intid);
    }
    let f = s.flush(0, 4);
    assert!(f.underflow);
    let order: Vec<u32> = f.lrs.iter().map(|l| l.intid()).collect();
    assert_eq!(order, vec![5, 2, 6, 4]);
    // The guest handles all four (LRs come back empty); the rest follow, in order.
    let done: Vec<Lr> = order.iter().map(|&i| Lr::new(i, 0, 0)).collect();
    s.sync(0, &done);
    let f = s.flush(0, 4);
    assert!(!f.underflow);
    assert_eq!(f.lrs.iter().map(|l| l.intid()).collect::<Vec<_>>(), vec![1, 3]);
}

#[test]
fn an_interrupt_is_never_placed_twice() {
    let mut s = gic(1);
    enable_private(&mut s, 0, 9, 0);
    s.set_pending(0, 9);
    assert_eq!(s.flush(0, 4).lrs.len(), 1);
    // Pending again while in an LR (edge): one LR after sync, pending state kept.
    s.set_pending(0, 9);
    s.sync(0, &[Lr::new(9, 0, Lr::STATE_ACTIVE)]);
    let lrs = s.flush(0, 4).lrs;
    assert_eq!(&*lrs, &[Lr::new(9, 0, Lr::STATE_PENDING | Lr::STATE_ACTIVE)]);
}

#[test]
fn priority_byte_and_word_access_and_routing_halves() {
    let mut s = gic(2);
    s.dist_write(0x420, 4, 0x4030_2010);
    assert_eq!(s.dist_read(0x420, 4), 0x4030_2010);
    assert_eq!(s.dist_read(0x422, 1), 0x30);
    s.dist_write(0x6100, 4, 0x1);
    s.dist_write(0x6104, 4, 0x0);
    assert_eq!(s.dist_read(0x6100, 8), 1);
    assert_eq!(s.spi_target(32), Some(1));
    // ICFGR: SPI 33 edge.
    s.dist_write(0xc08, 4, 0b1000);
    assert_eq!(s.dist_read(0xc08, 4), 0b1000);
    assert!(s.dist.spis[1].edge);
    // SGIs are always edge; ICFGR0 is read-only.
    s.redist_write(0x1_0c00, 4, 0);
    assert_eq!(s.redist_read(0x1_0c00, 4), 0xaaaa_aaaa);
}

#[test]
fn every_offset_and_width_is_harmless() {
    let mut s = gic(2);
    for off in (0..GICD_SIZE).step_by(1) {
        for size in [1u8, 2, 4, 8] {
            let _ = s.dist_read(off, size);
            let _ = s.dist_write(off, size, u64::MAX);
        }
    }
    for off in (0..3 * GICR_FRAME_SIZE).step_by(1) {
        for size in [1u8, 2, 4, 8] {
            let _ = s.redist_read(off, size);
            let _ = s.redist_write(off, size, u64::MAX);
        }
    }
    // The private range of the distributor is RAZ/WI under affinity routing.
    assert_eq!(s.dist_read(0x100, 4), 0);
    // Garbage SGI1R values hurt nobody.
    for v in [u64::MAX, 0, 0xffff_0000_0000_0000] {
        let _ = s.write_sgi1r(0, v);
        let _ = s.write_sgi1r(99, v);
    }
    let _ = s.flush(7, 4);
    s.sync(7, &[crate::hw::gicv3::decode_lr(u64::MAX)]);
    s.sync(0, &[crate::hw::gicv3::decode_lr(u64::MAX)]);
    // A list register naming an SPI, synced without the distributor, changes nothing.
    let before = s.dist.spis;
    sync(None, &mut s.redists[0], 0, &[Lr::new(40, 0, Lr::STATE_ACTIVE)]);
    assert_eq!(s.dist.spis, before);
}

/// The list registers a full scan of every INTID would choose: what `flush` did before it
/// looked only at busy interrupts.
fn reference_flush(s: &State, vcpu: usize, lr_count: usize) -> Vec<Lr> {
    let mut candidates = Vec::new();
    for intid in 0..INTID_COUNT as u32 {
        if intid >= 32 && s.spi_target(intid) != Some(vcpu) {
            continue;
        }
        let irq = s.irq(vcpu, intid).unwrap();
        let deliverable = irq.is_pending() && irq.enabled && irq.group1 && s.enabled_grp1();
        if !irq.in_lr && (irq.active || deliverable) {
            candidates.push((!irq.active, irq.priority, intid));
        }
    }
    candidates.sort_unstable();
    candidates
        .iter()
        .take(lr_count)
        .map(|&(_, _, intid)| {
            let irq = s.irq(vcpu, intid).unwrap();
            let pending = irq.is_pending() && irq.enabled;
            let state = (if pending { Lr::STATE_PENDING } else { 0 }) | (if irq.active { Lr::STATE_ACTIVE } else { 0 });
            let lr = Lr::new(intid, irq.priority, state);
            if !irq.edge && irq.line { lr.with_eoi_exit() } else { lr }
        })
        .collect()
}

#[test]
fn busy_maps_choose_what_a_full_scan_chooses() {
    // A pseudo-random mix of device lines, SGIs, register writes and guests acknowledging
    // and finishing interrupts, on 3 vCPUs; every flush is compared with a full scan.
    let mut s = gic(3);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for intid in [33, 40, 47, 60] {
        enable_spi(&mut s, intid, (intid as u8) << 2, intid as u64 % 3);
    }
    for v in 0..3 {
        for intid in [1, 2, 27, 30] {
            enable_private(&mut s, v, intid, (intid as u8) << 3);
        }
    }
    let mut flushes_with_work = 0;
    for _ in 0..20_000 {
        let v = next(3) as usize;
        match next(7) {
            0 => drop(s.set_line(v, [33, 40, 47, 60, 27, 30][next(6) as usize], next(2) == 0)),
            1 => drop(s.set_pending(v, [1, 2, 27, 40][next(4) as usize])),
            2 => drop(s.write_sgi1r(v, ((next(3) + 1) << 24) | next(8))),
            3 => drop(s.dist_write(0x6100 + 8 * (next(32)), 8, next(3))),
            4 => drop(s.dist_write(if next(2) == 0 { 0x104 } else { 0x184 }, 4, 1 << next(32))),
            _ => {
                let expected = reference_flush(&s, v, 4);
                let f = s.flush(v, 4);
                assert_eq!(&*f.lrs, &expected[..]);
                flushes_with_work += usize::from(!f.lrs.is_empty());
                // The guest acknowledges some and finishes others.
                let back: Vec<Lr> = f
                    .lrs
                    .iter()
                    .map(|lr| match next(3) {
                        0 => Lr::new(lr.intid(), 0, lr.state()),
                        1 => Lr::new(lr.intid(), 0, Lr::STATE_ACTIVE),
                        _ => Lr::new(lr.intid(), 0, 0),
                    })
                    .collect();
                s.sync(v, &back);
            }
        }
    }
    assert!(flushes_with_work > 1000, "the mix exercised the list registers ({flushes_with_work})");
}

#[test]
fn spi_rerouted_while_in_a_list_register_goes_to_its_new_vcpu() {
    let mut s = gic(3);
    enable_spi(&mut s, 40, 0x20, 0);
    s.set_line(0, 40, true);
    assert_eq!(s.flush(0, 4).lrs.len(), 1);
    // The guest moves the SPI to vCPU 2 while vCPU 0 has it (acknowledged, active).
    s.dist_write(0x6100 + 8 * 8, 8, 2);
    assert!(s.flush(2, 4).lrs.is_empty(), "still in vCPU 0's list register");
    let kicks = s.sync(0, &[Lr::new(40, 0x20, Lr::STATE_ACTIVE)]);
    assert_eq!(kicks, Kicks(1 << 2), "vCPU 2 is told");
    assert_eq!(&*s.flush(2, 4).lrs, &[Lr::new(40, 0x20, Lr::STATE_PENDING | Lr::STATE_ACTIVE).with_eoi_exit()]);
    assert!(s.flush(0, 4).lrs.is_empty());
}

#[test]
fn private_interrupts_need_no_distributor() {
    // What a vCPU with no busy SPI does on entry: its redistributor alone.
    let mut s = gic(2);
    enable_private(&mut s, 1, 27, 0x40);
    s.set_line(1, 27, true);
    assert!(!s.dist.has_work_for(1));
    let f = flush(None, &mut s.redists[1], 1, 4, Groups(0b10));
    assert_eq!(&*f.lrs, &[Lr::new(27, 0x40, Lr::STATE_PENDING).with_eoi_exit()]);
    // EnableGrp1 off (as the VM's atomic copy says): nothing pending is delivered.
    let mut r = Redistributor::new(Version::V3);
    r.write(0x1_0080, 4, 1 << 5);
    r.write(0x1_0100, 4, 1 << 5);
    r.set_pending(5);
    assert!(flush(None, &mut r, 0, 4, Groups(0)).lrs.is_empty());
    assert_eq!(flush(None, &mut r, 0, 4, Groups(0b10)).lrs.len(), 1);
}

#[test]
fn only_an_asserted_level_interrupt_asks_for_an_exit_on_eoi() {
    let mut s = gic(1);
    enable_spi(&mut s, 33, 0x10, 0);
    enable_spi(&mut s, 34, 0x20, 0);
    s.dist_write(0xc08, 4, 0b10 << 4); // SPI 34 edge-triggered
    enable_private(&mut s, 0, 27, 0x30);
    s.set_line(0, 33, true); // a device holding its level line high (the PL011's TX)
    s.set_line(0, 34, true); // an edge
    s.set_pending(0, 27); // the timer: latched when it fired, its source masked
    let f = s.flush(0, 4);
    let eoi = |intid: u32| f.lrs.iter().find(|l| l.intid() == intid).unwrap().eoi_exit();
    assert!(eoi(33));
    assert!(!eoi(34));
    assert!(!eoi(27));
    // The guest EOIs 33 without exiting; the maintenance exit syncs it back: still
    // asserted, so it is pending again on the next entry.
    s.sync(0, &[Lr::new(33, 0x10, 0), Lr::new(34, 0x20, 0), Lr::new(27, 0x30, 0)]);
    assert_eq!(&*s.flush(0, 4).lrs, &[Lr::new(33, 0x10, Lr::STATE_PENDING).with_eoi_exit()]);
}
