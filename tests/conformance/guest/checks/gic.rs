//! GICv3 interrupt state seen across vCPUs (IHI 0069, 4.1 "Interrupt states" and the
//! GICD/GICR set/clear registers): an SPI (edge, routed to CPU 1) and an SGI (to CPU 1)
//! that CPU 1 acknowledged and has not EOId read as active in GICD_ISACTIVER /
//! GICR_ISACTIVER0 from CPU 0 (within 100 ms: the acknowledge reaches the distributor
//! asynchronously); CPU 0's ICACTIVER write makes it inactive for everyone (CPU 1 reads it
//! inactive after an exit of its own, an HVC, and nothing is delivered after its EOI); and
//! with the interrupt pending at CPU 1 but masked by its priority mask, CPU 0's ICPENDR
//! write withdraws it (CPU 1, after an HVC and with the mask open, never gets it).
//!
//! On a GICv2 (IHI 0048B) the SPI rows are the same (GICD_ITARGETSR for the routing). An
//! SGI's pending and active state there is banked: GICD_ISPENDR0/ISACTIVER0 and
//! GICD_SPENDSGIR/CPENDSGIR show and change only the accessing CPU's own SGIs and PPIs
//! (4.3.7-4.3.10, 4.3.16-17), so CPU 0 cannot see or change CPU 1's. The SGI rows check what
//! applies there instead: CPU 1 acknowledges SGI 5 with CPU 0 as its source (GICC_IAR
//! 12:10) and reads it active in its own GICD_ISACTIVER0, not pending (GICD_ISPENDR0,
//! SPENDSGIR1), while CPU 0's bank shows it neither (`active-seen-by-other-cpu`); CPU 0's
//! ICACTIVER0 write leaves CPU 1's active SGI alone, CPU 1's own write makes it inactive (after
//! an exit too) and nothing comes after its EOI (`icactiver-sticks`); pending at CPU 1
//! behind its priority mask (ISPENDR0 and CPU 0's bit in SPENDSGIR1), CPU 0's CPENDSGIR1 write
//! leaves it pending, CPU 1's own CPENDSGIR1 write withdraws it and CPU 1 (after an HVC, mask
//! open) never gets it (`icpendr-sticks`).

use crate::cpu::CPUS;
use crate::gic::{self, GICD, ICACTIVER, ICENABLER, ICPENDR, ISACTIVER, ISENABLER, ISPENDR, PRIO};
use crate::report::{Verdict, note, want};
use crate::smp::{self, cmd};
use crate::sys;
use crate::{Ctx, Group};
use core::sync::atomic::Ordering::Relaxed;

pub static GROUP: Group = Group {
    name: "gic",
    rows: &[
        "gic-spi-active-seen-by-other-cpu",
        "gic-spi-icactiver-sticks",
        "gic-spi-icpendr-sticks",
        "gic-sgi-active-seen-by-other-cpu",
        "gic-sgi-icactiver-sticks",
        "gic-sgi-icpendr-sticks",
    ],
    run,
};

const SPI: u32 = 100;
const SGI: u32 = 5;
const W: usize = 1;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Spi,
    Sgi,
}

struct Target {
    kind: Kind,
    intid: u32,
    /// CPU 1's RD_base and MPIDR.
    rd: usize,
    mpidr: u64,
}

impl Target {
    /// Where the bit of `reg` is for this interrupt: the distributor (SPI) or CPU 1's
    /// redistributor (SGI).
    fn reg(&self, reg: usize) -> (usize, u32) {
        gic::bit_reg(self.rd, reg, self.intid)
    }
    fn get(&self, reg: usize) -> bool {
        let (a, b) = self.reg(reg);
        sys::read32(a) & b != 0
    }
    fn write(&self, reg: usize) {
        let (a, b) = self.reg(reg);
        sys::write32(a, b);
        sys::dsb_sy();
    }
    fn make_pending(&self) {
        match self.kind {
            Kind::Spi => self.write(ISPENDR),
            Kind::Sgi => gic::send_sgi(self.intid, self.mpidr),
        }
    }
    /// Not pending, not active, enabled; CPU 1 drained, then its priority mask at 0x90, so
    /// that its idle loop does not take the test interrupt (PRIO 0xa0; the doorbell, 0x80,
    /// gets through): it is taken only by the ACK and DRAIN commands, which open the mask.
    fn reset(&self) {
        self.write(ICPENDR);
        self.write(ICACTIVER);
        self.write(ISENABLER);
        let _ = w(cmd::DRAIN, 2000);
        let _ = w(cmd::PMR, 0x90);
        CPUS[W].irq_count[self.intid as usize].store(0, Relaxed);
    }

    /// CPU 1's IRQ handler took it (it never should: the mask is closed while idle).
    fn taken_by_handler(&self) -> u32 {
        CPUS[W].count(self.intid)
    }
}

fn w(k: u64, a: u64) -> Option<[u64; 4]> {
    smp::run(W, k, [a, 0, 0, 0], 500_000)
}

fn run(ctx: &mut Ctx) {
    let setup = smp::worker(W);
    let rd = CPUS[W].gicr.load(Relaxed);
    let mpidr = CPUS[W].mpidr.load(Relaxed);
    for kind in [Kind::Spi, Kind::Sgi] {
        let t = Target { kind, intid: if kind == Kind::Spi { SPI } else { SGI }, rd, mpidr };
        let rows = [
            ["gic-spi-active-seen-by-other-cpu", "gic-spi-icactiver-sticks", "gic-spi-icpendr-sticks"],
            ["gic-sgi-active-seen-by-other-cpu", "gic-sgi-icactiver-sticks", "gic-sgi-icpendr-sticks"],
        ][(kind == Kind::Sgi) as usize];
        if let Err(e) = setup {
            for r in rows {
                let mut v = Verdict::new();
                v.fail(format_args!("CPU 1: {e}"));
                ctx.row(r, &v);
            }
            continue;
        }
        if kind == Kind::Spi {
            if gic::spi_end() <= SPI {
                for r in rows {
                    let mut v = Verdict::new();
                    v.fail(format_args!("GICD_TYPER has no INTID {SPI}"));
                    ctx.row(r, &v);
                }
                continue;
            }
            gic::set_edge(SPI, true);
            gic::set_priority(SPI, PRIO);
            gic::set_route(SPI, mpidr);
        }
        if kind == Kind::Sgi && gic::v2() {
            sgi_v2(ctx, rows, mpidr);
        } else {
            let (a, b) = active_and_clear(&t);
            ctx.row(rows[0], &a);
            ctx.row(rows[1], &b);
            let p = pending_cleared(&t);
            ctx.row(rows[2], &p);
            t.reset();
        }
        let _ = w(cmd::PMR, 0xff);
        if kind == Kind::Spi {
            gic::set_route(SPI, sys::mpidr());
            sys::write32(GICD + ICENABLER + (SPI as usize / 32) * 4, 1 << (SPI % 32));
        }
    }
}

/// Acknowledged by CPU 1 and held: active from CPU 0; then cleared by CPU 0.
fn active_and_clear(t: &Target) -> (Verdict, Verdict) {
    let (mut a, mut b) = (Verdict::new(), Verdict::new());
    t.reset();
    t.make_pending();
    let Some([intid, iar, ..]) = w(cmd::ACK, 100_000) else {
        a.fail(format_args!("CPU 1 did not answer"));
        b.fail(format_args!("not held active"));
        return (a, b);
    };
    if intid != t.intid as u64 {
        a.fail(format_args!("CPU 1 acknowledged INTID {intid} (want {})", t.intid));
        b.fail(format_args!("not held active"));
        return (a, b);
    }
    let first = t.get(ISACTIVER);
    match sys::wait_until(100_000, || t.get(ISACTIVER)) {
        Some(us) => note!(a, "active in {} from CPU 0 after {us} us", if t.kind == Kind::Spi { "GICD_ISACTIVER" } else { "GICR_ISACTIVER0" }),
        None => a.fail(format_args!("acknowledged by CPU 1, not EOId, but not active from CPU 0 within 100 ms")),
    }
    if !first {
        note!(a, "first read inactive");
    }
    want!(a, !t.get(ISPENDR), "still pending after CPU 1 acknowledged it");

    // CPU 0 deactivates it.
    t.write(ICACTIVER);
    want!(b, !t.get(ISACTIVER), "active from CPU 0 right after its own ICACTIVER write");
    let _ = w(cmd::HVC, 0);
    let own = match t.kind {
        Kind::Spi => t.reg(ISACTIVER),
        Kind::Sgi => (t.rd + gic::SGI_BASE + ISACTIVER, 1 << t.intid),
    };
    match w(cmd::READ32, own.0 as u64) {
        Some([val, ..]) => want!(b, val as u32 & own.1 == 0, "CPU 1 reads it active after CPU 0's ICACTIVER and an exit"),
        None => b.fail(format_args!("CPU 1 did not answer")),
    }
    let _ = w(cmd::EOI, iar);
    let _ = w(cmd::PMR, 0x90);
    match w(cmd::DRAIN, 20_000) {
        Some([0, ..]) => {}
        Some([n, first, ..]) => b.fail(format_args!("CPU 1 got {n} interrupts after its EOI (first INTID {first})")),
        None => b.fail(format_args!("CPU 1 did not answer")),
    }
    want!(b, !t.get(ISACTIVER) && !t.get(ISPENDR), "active {} pending {} after all", t.get(ISACTIVER), t.get(ISPENDR));
    if b.ok {
        note!(b, "inactive for both CPUs, not delivered again");
    }
    (a, b)
}

/// Pending at CPU 1 behind its priority mask, then cleared by CPU 0.
fn pending_cleared(t: &Target) -> Verdict {
    let mut v = Verdict::new();
    // The mask stays at 0x90 from reset until the DRAIN.
    t.reset();
    t.make_pending();
    if sys::wait_until(100_000, || t.get(ISPENDR)).is_none() {
        v.fail(format_args!("not pending from CPU 0 within 100 ms of being made pending"));
    }
    // Time for it to reach CPU 1 (a hypervisor's list registers: an exit and entry).
    let trip = if gic::v2() { GICD + 0x4 } else { t.rd + 0x8 };
    let _ = w(cmd::READ32, trip as u64);
    sys::delay_us(10_000);
    t.write(ICPENDR);
    want!(v, !t.get(ISPENDR), "pending from CPU 0 right after its own ICPENDR write");
    let _ = w(cmd::HVC, 0);
    match w(cmd::DRAIN, 20_000) {
        Some([0, ..]) => {}
        Some([n, first, ..]) => v.fail(format_args!("CPU 1 got {n} interrupts (first INTID {first}) after CPU 0's ICPENDR")),
        None => v.fail(format_args!("CPU 1 did not answer")),
    }
    want!(v, !t.get(ISPENDR) && !t.get(ISACTIVER), "pending {} active {} after all", t.get(ISPENDR), t.get(ISACTIVER));
    want!(v, t.taken_by_handler() == 0, "CPU 1's IRQ handler took it {} times", t.taken_by_handler());
    if v.ok {
        note!(v, "withdrawn for both CPUs, never delivered");
    }
    v
}

/// CPU 1's view of a register of its own bank (GICv2): the value, or None if it did not answer.
fn r1(reg: usize) -> Option<u32> {
    w(cmd::READ32, (GICD + reg) as u64).map(|r| r[0] as u32)
}

/// CPU 1 writes a register of its own bank (GICv2).
fn w1(reg: usize, v: u32) {
    let _ = smp::run(W, cmd::WRITE32, [(GICD + reg) as u64, v as u64, 0, 0], 500_000);
}

/// The GICv2 SGI rows (the module's comment): SGI 5 from CPU 0 to CPU 1, its state in CPU
/// 1's bank.
fn sgi_v2(ctx: &mut Ctx, rows: [&str; 3], mpidr1: u64) {
    let bit = 1u32 << SGI;
    let src = gic::mask_of(sys::mpidr()).trailing_zeros();
    // GICD_SPENDSGIR1/CPENDSGIR1: SGIs 4-7, a byte each, a bit per source CPU.
    let sgir_reg = (SGI as usize / 4) * 4;
    let sgir_bit = 1u32 << ((SGI % 4) * 8 + src);
    let reset = || {
        w1(ICACTIVER, bit);
        w1(gic::CPENDSGIR + sgir_reg, 0xff << ((SGI % 4) * 8));
        w1(ISENABLER, bit);
        let _ = w(cmd::DRAIN, 2000);
        let _ = w(cmd::PMR, 0x90);
        CPUS[W].irq_count[SGI as usize].store(0, Relaxed);
    };
    let mine = |reg: usize| sys::read32(GICD + reg) & bit != 0;
    let theirs = |v: &mut Verdict, reg: usize, what: &str| -> bool {
        match r1(reg) {
            Some(x) => x & bit != 0,
            None => {
                v.fail(format_args!("CPU 1 did not answer reading {what}"));
                false
            }
        }
    };

    // Acknowledged by CPU 1 and held: active in its bank, not in CPU 0's.
    let (mut a, mut b) = (Verdict::new(), Verdict::new());
    reset();
    gic::send_sgi(SGI, mpidr1);
    let iar = match w(cmd::ACK, 100_000) {
        Some([intid, iar, ..]) if intid == SGI as u64 => Some(iar),
        Some([intid, ..]) => {
            a.fail(format_args!("CPU 1 acknowledged INTID {intid} (want {SGI})"));
            None
        }
        None => {
            a.fail(format_args!("CPU 1 did not answer"));
            None
        }
    };
    if let Some(iar) = iar {
        let s = gic::source(iar);
        want!(a, s == src, "GICC_IAR {iar:#x}: source CPU {s} (want CPU 0's interface {src})");
        let mut seen = None;
        let t0 = sys::now();
        while sys::ticks_to_us(sys::now() - t0) < 100_000 {
            if theirs(&mut a, ISACTIVER, "GICD_ISACTIVER0") {
                seen = Some(sys::ticks_to_us(sys::now() - t0));
                break;
            }
        }
        match seen {
            Some(us) => note!(a, "active in CPU 1's GICD_ISACTIVER0 after {us} us"),
            None => a.fail(format_args!("acknowledged, not EOId, but not active in CPU 1's GICD_ISACTIVER0 within 100 ms")),
        }
        let x = theirs(&mut a, ISPENDR, "GICD_ISPENDR0");
        want!(a, !x, "still pending in CPU 1's GICD_ISPENDR0 after it acknowledged it");
        match r1(gic::SPENDSGIR + sgir_reg) {
            Some(x) => want!(a, x & sgir_bit == 0, "CPU 1's GICD_SPENDSGIR1 {x:#x}: CPU 0's SGI {SGI} still pending after the acknowledge"),
            None => a.fail(format_args!("CPU 1 did not answer")),
        }
        want!(a, !mine(ISACTIVER) && !mine(ISPENDR), "CPU 0's own bank shows SGI {SGI} active {} pending {} (it is CPU 1's)", mine(ISACTIVER), mine(ISPENDR));

        // CPU 0's ICACTIVER0 is its own bank: CPU 1's SGI stays active; CPU 1's own write
        // deactivates it.
        sys::write32(GICD + ICACTIVER, bit);
        sys::dsb_sy();
        let _ = w(cmd::HVC, 0);
        let x = theirs(&mut b, ISACTIVER, "GICD_ISACTIVER0");
        want!(b, x, "CPU 0's GICD_ICACTIVER0 write made CPU 1's SGI {SGI} inactive (banked: it must not)");
        w1(ICACTIVER, bit);
        let x = theirs(&mut b, ISACTIVER, "GICD_ISACTIVER0");
        want!(b, !x, "active for CPU 1 right after its own GICD_ICACTIVER0 write");
        let _ = w(cmd::HVC, 0);
        let x = theirs(&mut b, ISACTIVER, "GICD_ISACTIVER0");
        want!(b, !x, "CPU 1 reads it active after its ICACTIVER0 write and an exit");
        let _ = w(cmd::EOI, iar);
        let _ = w(cmd::PMR, 0x90);
        match w(cmd::DRAIN, 20_000) {
            Some([0, ..]) => {}
            Some([n, first, ..]) => b.fail(format_args!("CPU 1 got {n} interrupts after its EOI (first INTID {first})")),
            None => b.fail(format_args!("CPU 1 did not answer")),
        }
        let (act, pend) = (theirs(&mut b, ISACTIVER, "GICD_ISACTIVER0"), theirs(&mut b, ISPENDR, "GICD_ISPENDR0"));
        want!(b, !act && !pend, "CPU 1's bank: active {act} pending {pend} after all");
        if b.ok {
            note!(b, "CPU 0's write left it active, CPU 1's made it inactive, not delivered again");
        }
    } else {
        b.fail(format_args!("not held active"));
    }
    ctx.row(rows[0], &a);
    ctx.row(rows[1], &b);

    // Pending at CPU 1 behind its mask; CPU 0's CPENDSGIR1 leaves it, CPU 1's withdraws it.
    let mut v = Verdict::new();
    reset();
    gic::send_sgi(SGI, mpidr1);
    let mut pend = false;
    let t0 = sys::now();
    while !pend && sys::ticks_to_us(sys::now() - t0) < 100_000 {
        pend = theirs(&mut v, ISPENDR, "GICD_ISPENDR0");
    }
    want!(v, pend, "not pending in CPU 1's GICD_ISPENDR0 within 100 ms of GICD_SGIR");
    match r1(gic::SPENDSGIR + sgir_reg) {
        Some(x) => want!(v, x & sgir_bit != 0, "CPU 1's GICD_SPENDSGIR1 {x:#x}: no bit for CPU 0's SGI {SGI} (want {sgir_bit:#x})"),
        None => v.fail(format_args!("CPU 1 did not answer")),
    }
    sys::delay_us(10_000);
    sys::write32(GICD + gic::CPENDSGIR + sgir_reg, sgir_bit);
    sys::dsb_sy();
    let _ = w(cmd::HVC, 0);
    let x = theirs(&mut v, ISPENDR, "GICD_ISPENDR0");
    want!(v, x, "CPU 0's GICD_CPENDSGIR1 write withdrew CPU 1's SGI {SGI} (banked: it must not)");
    w1(gic::CPENDSGIR + sgir_reg, sgir_bit);
    let x = theirs(&mut v, ISPENDR, "GICD_ISPENDR0");
    want!(v, !x, "pending for CPU 1 right after its own GICD_CPENDSGIR1 write");
    let _ = w(cmd::HVC, 0);
    match w(cmd::DRAIN, 20_000) {
        Some([0, ..]) => {}
        Some([n, first, ..]) => v.fail(format_args!("CPU 1 got {n} interrupts (first INTID {first}) after its CPENDSGIR1 write")),
        None => v.fail(format_args!("CPU 1 did not answer")),
    }
    let (act, pend) = (theirs(&mut v, ISACTIVER, "GICD_ISACTIVER0"), theirs(&mut v, ISPENDR, "GICD_ISPENDR0"));
    want!(v, !act && !pend, "CPU 1's bank: pending {pend} active {act} after all");
    let n = CPUS[W].count(SGI);
    want!(v, n == 0, "CPU 1's IRQ handler took it {n} times");
    if v.ok {
        note!(v, "CPU 0's write left it pending, CPU 1's withdrew it, never delivered");
    }
    ctx.row(rows[2], &v);
    reset();
}
