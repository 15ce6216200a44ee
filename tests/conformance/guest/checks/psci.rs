//! PSCI (DEN0022, version 1.1) by HVC: the device tree's /psci node, PSCI_VERSION,
//! PSCI_FEATURES, CPU_ON (with the entry state the spec gives a CPU it starts: EL1h, DAIF
//! masked, MMU and caches off, x0 = the context id), ALREADY_ON, AFFINITY_INFO, CPU_OFF and
//! CPU_ON again, CPU_ON with an MPIDR whose reserved bits are set (INVALID_PARAMETERS, and
//! nothing starts), CPU_SUSPEND to standby (returns SUCCESS after the wake-up interrupt) and
//! to power-down (in the power_state format PSCI_FEATURES(CPU_SUSPEND) says). For
//! power-down PSCI allows two outcomes ("CPU_SUSPEND", and "the implementation may choose a
//! shallower state"): a return with SUCCESS at the call, as after standby (what QEMU's own
//! PSCI does), or a warm boot at the entry point with x0 = the context id and the CPU_ON
//! entry state; either passes, anything else fails.

use crate::cpu::{CPUS, cpu};
use crate::gic::{self, ICPENDR, ICACTIVER, ICENABLER, ISENABLER};
use crate::psci::{self, *};
use crate::report::{Verdict, note, want};
use crate::smp::{self, cpu_on_raw, mode};
use crate::sys::{self, mrs};
use crate::{Ctx, Group};
use core::sync::atomic::Ordering::{Relaxed, SeqCst};

pub static GROUP: Group = Group {
    name: "psci",
    rows: &[
        "psci-device-tree",
        "psci-version",
        "psci-features",
        "psci-cpu-on",
        "psci-cpu-on-entry-state",
        "psci-cpu-on-already-on",
        "psci-affinity-info",
        "psci-cpu-off",
        "psci-cpu-on-again",
        "psci-cpu-on-reserved-mpidr",
        "psci-cpu-suspend-standby",
        "psci-cpu-suspend-powerdown",
    ],
    run,
};

/// suspend_ctx's fields (entry.S SUS_*): resumed, entry EL, DAIF, SCTLR, x0.
#[repr(C)]
struct SuspendCtx {
    regs: [u64; 20],
    resumed: u64,
    el: u64,
    daif: u64,
    sctlr: u64,
    x0: u64,
    _rest: [u64; 7],
}
const _: () = assert!(core::mem::offset_of!(SuspendCtx, resumed) == 160 && core::mem::size_of::<SuspendCtx>() == 256);

unsafe extern "C" {
    static suspend_ctx: SuspendCtx;
    fn suspend_call(fid: u64, power_state: u64) -> i64;
}

/// The CPU the on/off checks use: the last one.
const TARGET: usize = 3;

fn entry_state_ok(v: &mut Verdict, el: u64, daif: u64, sctlr: u64, x0: u64, want_x0: u64, what: &str) {
    note!(v, "{what}: CurrentEL {el:#x} DAIF {daif:#x} SCTLR {sctlr:#x} x0 {x0:#x}");
    want!(v, el == 0x4, "{what}: CurrentEL {el:#x} (want EL1)");
    want!(v, daif == 0x3c0, "{what}: DAIF {daif:#x} (want all masked)");
    want!(v, sctlr & 0b101 == 0, "{what}: SCTLR_EL1 {sctlr:#x} (want M = C = 0)");
    want!(v, x0 == want_x0, "{what}: x0 {x0:#x} (want the context id {want_x0:#x})");
}

fn run(ctx: &mut Ctx) {
    let f = crate::facts();
    let mut v = Verdict::new();
    note!(v, "method {} compatible {}", f.psci_method.as_str(), f.psci_compat.as_str());
    want!(v, f.psci_method.as_str() == "hvc", "method {:?} (want hvc: EL1 without EL2/EL3, or a VM)", f.psci_method.as_str());
    let compat = f.psci_compat.as_str();
    let dt_1_0 = compat.split(',').any(|c| c == "psci-1.0") || compat.contains("arm,psci-1.0");
    want!(v, compat.contains("arm,psci-0.2") || dt_1_0, "compatible {compat:?} names no PSCI 0.2 or 1.0");
    ctx.row("psci-device-tree", &v);

    let mut v = Verdict::new();
    let ver = psci::call(VERSION, 0, 0, 0);
    let (major, minor) = ((ver >> 16) & 0x7fff, ver & 0xffff);
    note!(v, "PSCI_VERSION {major}.{minor}");
    want!(v, ver >= 0 && major >= 1, "version {ver:#x} (want >= 1.0: PSCI_FEATURES is needed)");
    want!(v, !dt_1_0 || major >= 1, "the device tree says arm,psci-1.0 but the version is {major}.{minor}");
    ctx.row("psci-version", &v);

    let mut v = Verdict::new();
    for (name, fid) in [
        ("PSCI_VERSION", VERSION),
        ("CPU_ON", CPU_ON_64),
        ("CPU_OFF", CPU_OFF),
        ("AFFINITY_INFO", AFFINITY_INFO_64),
        ("SYSTEM_OFF", SYSTEM_OFF),
        ("PSCI_FEATURES", FEATURES),
    ] {
        let r = psci::call(FEATURES, fid, 0, 0);
        want!(v, r == SUCCESS, "FEATURES({name}) = {r} (want 0)");
    }
    let susp = psci::call(FEATURES, CPU_SUSPEND_64, 0, 0);
    note!(v, "FEATURES(CPU_SUSPEND) = {susp:#x}");
    want!(v, susp >= 0 && susp & !0b11 == 0, "FEATURES(CPU_SUSPEND) = {susp:#x} (want flags in bits 1:0)");
    let unknown = psci::call(FEATURES, 0x8400_001f, 0, 0);
    want!(v, unknown == NOT_SUPPORTED, "FEATURES(0x8400001f, not a PSCI function) = {unknown} (want NOT_SUPPORTED)");
    ctx.row("psci-features", &v);
    let extended = susp >= 0 && susp & 0b10 != 0;

    // CPU_ON of TARGET in OFF mode: it notes its entry state and turns itself off.
    let target = TARGET as u64;
    let b = smp::boot_of(TARGET);
    let mut v = Verdict::new();
    let usable = f.cpus > TARGET && !CPUS[TARGET].worker.load(SeqCst);
    let before = b.arrivals.load(SeqCst);
    let r = if usable { cpu_on_raw(TARGET, target, mode::OFF) } else { i64::MIN };
    want!(v, r == SUCCESS, "CPU_ON({target:#x}) = {r} (want 0{})", if usable { "" } else { "; needs 4 CPUs" });
    let arrived = r == SUCCESS && sys::wait_until(2_000_000, || b.arrivals.load(SeqCst) != before).is_some();
    want!(v, arrived || r != SUCCESS, "CPU {TARGET} did not reach its entry point within 2 s");
    let mpidr = b.entry_mpidr.load(Relaxed);
    want!(v, !arrived || mpidr == target, "the started CPU's MPIDR_EL1 is {mpidr:#x} (want {target:#x})");
    ctx.row("psci-cpu-on", &v);
    let mut v = Verdict::new();
    if arrived {
        let ctx_id = b as *const _ as u64;
        entry_state_ok(&mut v, b.entry_el.load(Relaxed), b.entry_daif.load(Relaxed), b.entry_sctlr.load(Relaxed), b.entry_x0.load(Relaxed), ctx_id, "CPU_ON entry");
    } else {
        v.fail(format_args!("the CPU did not start"));
    }
    ctx.row("psci-cpu-on-entry-state", &v);

    // It turns itself off at once.
    let mut v = Verdict::new();
    let off_seen = if arrived {
        sys::wait_until(2_000_000, || psci::call(AFFINITY_INFO_64, target, 0, 0) == AFF_OFF)
    } else {
        None
    };
    // ALREADY_ON, with a CPU that stays on: a worker (CPU 1). Its entry point and context
    // are the real ones, should the call wrongly start it again.
    let w = smp::worker(1);
    match w {
        Ok(()) => {
            unsafe extern "C" {
                fn secondary_entry();
            }
            let ctx1 = smp::boot_of(1) as *const _ as u64;
            let r = psci::call(CPU_ON_64, 1, secondary_entry as *const () as u64, ctx1);
            want!(v, r == ALREADY_ON, "CPU_ON of the running CPU 1 = {r} (want ALREADY_ON -4)");
        }
        Err(e) => v.fail(format_args!("CPU 1: {e}")),
    }
    ctx.row("psci-cpu-on-already-on", &v);

    let mut v = Verdict::new();
    let me = psci::call(AFFINITY_INFO_64, sys::mpidr(), 0, 0);
    want!(v, me == AFF_ON, "AFFINITY_INFO(self) = {me} (want ON 0)");
    if w.is_ok() {
        let one = psci::call(AFFINITY_INFO_64, 1, 0, 0);
        want!(v, one == AFF_ON, "AFFINITY_INFO(CPU 1, running) = {one} (want ON 0)");
    }
    let none = psci::call(AFFINITY_INFO_64, 0x7f, 0, 0);
    want!(v, none == INVALID_PARAMETERS, "AFFINITY_INFO(0x7f, no such CPU) = {none} (want INVALID_PARAMETERS -2)");
    ctx.row("psci-affinity-info", &v);

    let mut v = Verdict::new();
    match off_seen {
        Some(us) => note!(v, "AFFINITY_INFO OFF {us} us after CPU_ON"),
        None => v.fail(format_args!("AFFINITY_INFO({target:#x}) never said OFF after the CPU called CPU_OFF")),
    }
    ctx.row("psci-cpu-off", &v);

    // CPU_ON again after CPU_OFF: it starts again.
    let mut v = Verdict::new();
    let before = b.arrivals.load(SeqCst);
    let r = if off_seen.is_some() { cpu_on_raw(TARGET, target, mode::OFF) } else { i64::MIN };
    want!(v, r == SUCCESS, "second CPU_ON = {r} (want 0)");
    let again = r == SUCCESS && sys::wait_until(2_000_000, || b.arrivals.load(SeqCst) != before).is_some();
    want!(v, again || r != SUCCESS, "the CPU did not start again");
    if again {
        want!(v, sys::wait_until(2_000_000, || psci::call(AFFINITY_INFO_64, target, 0, 0) == AFF_OFF).is_some(), "not OFF again");
    }
    ctx.row("psci-cpu-on-again", &v);

    // Reserved bits in target_cpu: bits 63:40 and 31:24 must be zero (PSCI "CPU_ON").
    let mut v = Verdict::new();
    for bad in [target | 1 << 40, target | 1 << 31, target | 1 << 63] {
        let before = b.arrivals.load(SeqCst);
        let r = cpu_on_raw(TARGET, bad, mode::OFF);
        want!(v, r == INVALID_PARAMETERS, "CPU_ON({bad:#x}) = {r} (want INVALID_PARAMETERS -2)");
        if r == SUCCESS {
            let _ = sys::wait_until(2_000_000, || psci::call(AFFINITY_INFO_64, target, 0, 0) == AFF_OFF);
        }
        sys::delay_us(20_000);
        want!(v, b.arrivals.load(SeqCst) == before, "CPU_ON({bad:#x}) started the CPU");
    }
    ctx.row("psci-cpu-on-reserved-mpidr", &v);

    // CPU_SUSPEND, woken by the virtual timer 2 ms on (IRQs masked: the wake-up is the
    // interrupt pending, not taken).
    let c = cpu();
    let rd = c.gicr.load(Relaxed);
    let wake = |us: u64| {
        msr_cntv(0, 0);
        gic::set_bit(rd, ICPENDR, 27);
        gic::set_bit(rd, ICACTIVER, 27);
        gic::set_bit(rd, ISENABLER, 27);
        msr_cntv(sys::now() + sys::ticks_us(us), 1);
    };
    let quiet = || {
        msr_cntv(0, 0);
        gic::set_bit(rd, ICPENDR, 27);
        gic::set_bit(rd, ICENABLER, 27);
    };
    let mut v = Verdict::new();
    sys::irqs(false);
    wake(2000);
    let t0 = sys::now();
    // SAFETY: standby; returns.
    let r = psci::call(CPU_SUSPEND_64, 0, 0, 0);
    let us = sys::ticks_to_us(sys::now() - t0);
    quiet();
    want!(v, r == SUCCESS, "CPU_SUSPEND(standby) = {r} (want 0)");
    note!(v, "returned after {us} us");
    ctx.row("psci-cpu-suspend-standby", &v);

    let mut v = Verdict::new();
    let state = if extended { 1 << 30 } else { 1 << 16 };
    note!(v, "power_state {state:#x} ({} format)", if extended { "extended" } else { "original" });
    wake(2000);
    // SAFETY: suspend_call saves and restores everything a power-down loses.
    let r = unsafe { suspend_call(CPU_SUSPEND_64, state) };
    // SAFETY: written by suspend_call / resume_entry on this CPU.
    let s = unsafe { &*core::ptr::addr_of!(suspend_ctx) };
    let resumed = unsafe { core::ptr::read_volatile(&s.resumed) };
    if resumed == 1 {
        // A warm boot: the GIC CPU interface and CPACR as they were (the context restore
        // did CPACR; the CPU interface is set up again).
        gic::cpu_interface();
        note!(v, "resumed at the entry point");
        let ctx_id = s as *const SuspendCtx as u64;
        entry_state_ok(&mut v, s.el, s.daif, s.sctlr, s.x0, ctx_id, "resume entry");
    } else {
        note!(v, "returned {r} at the call (a shallower state, which PSCI allows)");
        want!(v, r == SUCCESS, "CPU_SUSPEND(power-down) returned {r} (want 0, or a resume at the entry point)");
    }
    want!(v, mrs!("sctlr_el1") & 1 == 1, "MMU off after CPU_SUSPEND");
    quiet();
    ctx.row("psci-cpu-suspend-powerdown", &v);
}


fn msr_cntv(cval: u64, ctl: u64) {
    sys::msr!("cntv_ctl_el0", 0);
    sys::msr!("cntv_cval_el0", cval);
    sys::msr!("cntv_ctl_el0", ctl);
    sys::isb();
}
