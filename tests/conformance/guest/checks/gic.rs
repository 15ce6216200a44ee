//! GICv3 interrupt state seen across vCPUs (IHI 0069, 4.1 "Interrupt states" and the
//! GICD/GICR set/clear registers): an SPI (edge, routed to CPU 1) and an SGI (to CPU 1)
//! that CPU 1 acknowledged and has not EOId read as active in GICD_ISACTIVER /
//! GICR_ISACTIVER0 from CPU 0 (within 100 ms: the acknowledge reaches the distributor
//! asynchronously); CPU 0's ICACTIVER write makes it inactive for everyone (CPU 1 reads it
//! inactive after an exit of its own, an HVC, and nothing is delivered after its EOI); and
//! with the interrupt pending at CPU 1 but masked by its priority mask, CPU 0's ICPENDR
//! write withdraws it (CPU 1, after an HVC and with the mask open, never gets it).

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
        let (a, b) = active_and_clear(&t);
        ctx.row(rows[0], &a);
        ctx.row(rows[1], &b);
        let p = pending_cleared(&t);
        ctx.row(rows[2], &p);
        t.reset();
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
    let _ = w(cmd::READ32, (t.rd + 0x8) as u64);
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
