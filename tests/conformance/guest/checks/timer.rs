//! The EL1 timers as the architecture has them (Arm ARM D11.2, "The Generic Timer"): each
//! drives a level-sensitive PPI (virtual timer 27, EL1 physical timer 30) that is asserted
//! exactly while CTL.ENABLE = 1, CTL.IMASK = 0 and the condition (counter >= CVAL, which
//! CTL.ISTATUS shows) holds. So the interrupt is pending in the GIC while, and only while,
//! that is true: disabling the timer, masking it, or moving CVAL into the future withdraws
//! it; an EOI with the condition still true makes it pending again at once; and nothing
//! but the guest writes CTL (IMASK stays as written).

use crate::cpu::cpu;
use crate::exc::irq_hook;
use crate::gic::{self, ICACTIVER, ICENABLER, ICPENDR, ISENABLER, ISPENDR};
use crate::report::{Verdict, note, want};
use crate::sys::{self, ENABLE, IMASK, ISTATUS, Timer};
use crate::{Ctx, Group};
use core::sync::atomic::Ordering::Relaxed;

pub static GROUP: Group = Group {
    name: "timer",
    rows: &[
        "vtimer-fires",
        "vtimer-irq-taken-once",
        "vtimer-ctl-readback",
        "vtimer-no-second-irq",
        "vtimer-level-retaken",
        "vtimer-disable-clears-pending",
        "vtimer-rearm-clears-pending",
        "vtimer-imask-clears-pending",
        "ptimer-fires",
        "ptimer-irq-taken-once",
        "ptimer-ctl-readback",
        "ptimer-no-second-irq",
        "ptimer-level-retaken",
        "ptimer-disable-clears-pending",
        "ptimer-rearm-clears-pending",
        "ptimer-imask-clears-pending",
    ],
    run,
};

fn rd() -> usize {
    cpu().gicr.load(Relaxed)
}

/// Where a PPI's pending bit is, for the messages.
fn ispendr0() -> &'static str {
    if gic::v2() { "GICD_ISPENDR0" } else { "GICR_ISPENDR0" }
}

fn pending(t: Timer) -> bool {
    gic::get_bit(rd(), ISPENDR, t.intid())
}

/// The timer off, its PPI enabled, not pending, not active, no IRQs counted; IRQs masked.
fn reset(t: Timer) {
    sys::irqs(false);
    t.set_ctl(0);
    t.set_cval(u64::MAX);
    sys::isb();
    let r = rd();
    gic::set_bit(r, ICPENDR, t.intid());
    gic::set_bit(r, ICACTIVER, t.intid());
    gic::set_bit(r, ISENABLER, t.intid());
    cpu().irq_hook.store(irq_hook::EOI, Relaxed);
    cpu().reset_counts();
}

/// Arms the timer 1 ms ahead and waits (IRQs masked) for ISTATUS, then for the PPI to be
/// pending in GICR_ISPENDR0 (this CPU's bank of GICD_ISPENDR0 on a GICv2). Err says which did not happen within 200 ms.
fn fire(t: Timer, v: &mut Verdict) -> bool {
    t.set_cval(t.now() + sys::ticks_us(1000));
    t.set_ctl(ENABLE);
    sys::isb();
    if sys::wait_until(200_000, || t.ctl() & ISTATUS != 0).is_none() {
        v.fail(format_args!("ISTATUS not set 200 ms after the deadline (CTL {:#x})", t.ctl()));
        return false;
    }
    match sys::wait_until(200_000, || pending(t)) {
        Some(us) => {
            if us > 0 {
                note!(v, "pending after {us} us");
            }
            true
        }
        None => {
            v.fail(format_args!("not pending in {} 200 ms after ISTATUS", ispendr0()));
            false
        }
    }
}

/// IRQs unmasked until `want` IRQs of the timer's PPI were taken (at most 200 ms), then
/// for 20 ms more: how many were taken.
fn take(t: Timer, want: u32) -> u32 {
    let before = cpu().count(t.intid());
    sys::irqs(true);
    let _ = sys::wait_until(200_000, || cpu().count(t.intid()) - before >= want);
    sys::delay_us(20_000);
    sys::irqs(false);
    cpu().count(t.intid()) - before
}

/// IRQs unmasked for `us` µs: the IRQs of the timer's PPI taken meanwhile.
fn window(t: Timer, us: u64) -> u32 {
    let before = cpu().count(t.intid());
    sys::irqs(true);
    sys::delay_us(us);
    sys::irqs(false);
    cpu().count(t.intid()) - before
}

/// After the condition was withdrawn by `what` with the PPI pending: it must not be
/// pending any more, and unmasking must not take it.
fn withdrawn(t: Timer, v: &mut Verdict, what: &str) {
    match sys::wait_until(100_000, || !pending(t)) {
        Some(us) => note!(v, "not pending {us} us after {what}"),
        None => v.fail(format_args!("still pending in {} 100 ms after {what}", ispendr0())),
    }
    let n = window(t, 20_000);
    want!(v, n == 0, "the IRQ was taken {n} times after {what}");
}

fn run(ctx: &mut Ctx) {
    for t in [Timer::Virt, Timer::Phys] {
        run_timer(ctx, t);
    }
}

fn row(ctx: &mut Ctx, t: Timer, what: &str, v: &Verdict) {
    let mut name = crate::report::Line::new();
    let _ = core::fmt::Write::write_fmt(&mut name, format_args!("{}-{what}", t.name()));
    ctx.row(name.as_str(), v);
}

fn run_timer(ctx: &mut Ctx, t: Timer) {
    let c = cpu();
    // Fires: ISTATUS and pending; unmasked, taken once (the handler moves CVAL on, so the
    // line drops); CTL as written; no second one.
    reset(t);
    let mut v = Verdict::new();
    let fired = fire(t, &mut v);
    row(ctx, t, "fires", &v);
    let mut v = Verdict::new();
    let mut taken = 0;
    if fired {
        c.irq_hook.store(irq_hook::TIMER_QUIET, Relaxed);
        taken = take(t, 1);
        want!(v, taken == 1, "taken {taken} times (want 1)");
    } else {
        v.fail(format_args!("did not fire"));
    }
    row(ctx, t, "irq-taken-once", &v);
    let mut v = Verdict::new();
    let in_handler = c.rec[0].load(Relaxed);
    let after = t.ctl();
    if taken >= 1 {
        want!(v, in_handler == ENABLE | ISTATUS, "CTL in the handler {in_handler:#x} (want ENABLE|ISTATUS = 0x5: IMASK set by someone else?)");
    } else {
        v.fail(format_args!("no interrupt taken"));
    }
    want!(v, after == ENABLE, "CTL after the handler moved CVAL on {after:#x} (want ENABLE = 0x1)");
    if v.ok {
        note!(v, "CTL {in_handler:#x} in the handler, {after:#x} after");
    }
    row(ctx, t, "ctl-readback", &v);
    let mut v = Verdict::new();
    if taken >= 1 {
        let n = window(t, 50_000);
        want!(v, n == 0, "{n} more IRQs in 50 ms after the handler moved CVAL on and EOId");
        want!(v, !pending(t), "pending again after the handler moved CVAL on");
    } else {
        v.fail(format_args!("no interrupt taken"));
    }
    row(ctx, t, "no-second-irq", &v);

    // Level: an EOI with the condition still true makes it pending again, taken again; the
    // second time the handler disables the timer.
    reset(t);
    let mut v = Verdict::new();
    if fire(t, &mut v) {
        c.irq_hook.store(irq_hook::TIMER_LEVEL, Relaxed);
        let n = take(t, 2);
        want!(v, n == 2, "taken {n} times (want 2: again after the first EOI, while the condition held, then disabled)");
    }
    row(ctx, t, "level-retaken", &v);

    // Withdrawn while pending (IRQs masked): disabled, CVAL in the future, IMASK.
    reset(t);
    let mut v = Verdict::new();
    if fire(t, &mut v) {
        t.set_ctl(0);
        sys::isb();
        withdrawn(t, &mut v, "CTL = 0");
    }
    row(ctx, t, "disable-clears-pending", &v);
    reset(t);
    let mut v = Verdict::new();
    if fire(t, &mut v) {
        t.set_cval(t.now() + sys::ticks_us(10_000_000));
        sys::isb();
        withdrawn(t, &mut v, "CVAL = now + 10 s");
    }
    row(ctx, t, "rearm-clears-pending", &v);
    reset(t);
    let mut v = Verdict::new();
    if fire(t, &mut v) {
        t.set_ctl(ENABLE | IMASK);
        sys::isb();
        let ctl = t.ctl();
        want!(v, ctl == ENABLE | IMASK | ISTATUS, "CTL {ctl:#x} with IMASK (want 0x7: ISTATUS does not depend on IMASK)");
        withdrawn(t, &mut v, "IMASK");
    }
    row(ctx, t, "imask-clears-pending", &v);
    reset(t);
    gic::set_bit(rd(), ICENABLER, t.intid());
}
