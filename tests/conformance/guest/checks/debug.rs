//! Self-hosted debug at EL1 (Arm ARM D2, "AArch64 Self-hosted Debug"): with the OS lock
//! clear (OSLAR_EL1 = 0), MDSCR_EL1.KDE and MDE set and PSTATE.D clear, debug exceptions are
//! taken from EL1 to EL1. A hardware breakpoint on an instruction hits once per execution
//! (EC 0x31, IFSC 0x22, ELR = the instruction; FAR is UNKNOWN for breakpoints and not
//! compared); software step of N instructions takes exactly N step exceptions (EC 0x33,
//! ISV 1, IFSC 0x22, ELR = each next instruction); a watchpoint on a doubleword hits a load
//! and a store once each (EC 0x35, DFSC 0x22, WnR, FAR within the watched bytes, ELR = the
//! access).

use crate::cpu::cpu;
use crate::exc::{hook, slot};
use crate::report::{Verdict, note, want};
use crate::sys::{self, field, mrs, msr};
use crate::{Ctx, Group};
use core::sync::atomic::Ordering::Relaxed;

pub static GROUP: Group = Group {
    name: "debug",
    rows: &["debug-registers", "debug-breakpoint", "debug-single-step", "debug-watchpoint-load", "debug-watchpoint-store"],
    run,
};

unsafe extern "C" {
    fn bp_target();
    fn step_run() -> u64;
    fn step_start();
    fn step_end();
    fn wp_load(addr: u64) -> u64;
    fn wp_store(addr: u64, v: u64);
    fn wp_load_insn();
    fn wp_store_insn();
}

const MDSCR_SS: u64 = 1;
const MDSCR_KDE: u64 = 1 << 13;
const MDSCR_MDE: u64 = 1 << 15;
/// DBGBCR: E, PMC = 0b01 (EL1), BAS = 0b1111 (A64), unlinked address match.
const BCR: u64 = 1 | (0b01 << 1) | (0b1111 << 5);
/// DBGWCR: E, PAC = 0b01 (EL1), LSC = 0b11 (load and store), BAS = 0xff (8 bytes).
const WCR: u64 = 1 | (0b01 << 1) | (0b11 << 3) | (0xff << 5);

#[repr(C, align(64))]
struct Watched(u64);
static mut WATCHED: Watched = Watched(0x1122_3344_5566_7788);

/// The OS lock and double lock clear, KDE and MDE set (and `ss`: MDSCR_EL1.SS); PSTATE.D
/// cleared unless stepping (which starts with the ERET in step_run: with MDSCR_EL1.SS set,
/// D clear and PSTATE.SS 0 a step exception would be due at once).
fn debug_on(ss: bool) {
    msr!("oslar_el1", 0);
    msr!("osdlr_el1", 0);
    msr!("mdscr_el1", MDSCR_KDE | MDSCR_MDE | if ss { MDSCR_SS } else { 0 });
    sys::isb();
    if !ss {
        // SAFETY: debug exceptions unmasked (D), IRQs stay masked.
        unsafe { core::arch::asm!("msr daifclr, #8", "isb", options(nostack)) };
    }
}

fn debug_off() {
    unsafe { core::arch::asm!("msr daifset, #8", options(nostack)) };
    msr!("mdscr_el1", 0);
    msr!("dbgbcr0_el1", 0);
    msr!("dbgwcr0_el1", 0);
    sys::isb();
}

fn hits() -> u64 {
    cpu().fault[slot::COUNT].load(Relaxed)
}

fn run(ctx: &mut Ctx) {
    let c = cpu();
    let g = |s: usize| c.fault[s].load(Relaxed);
    sys::irqs(false);

    // What ID_AA64DFR0_EL1 advertises works: the debug registers hold what is written.
    let mut v = Verdict::new();
    let dfr0 = mrs!("s3_0_c0_c5_0");
    let (ver, brps, wrps) = (field(dfr0, 0, 4), field(dfr0, 12, 4) + 1, field(dfr0, 20, 4) + 1);
    note!(v, "DebugVer {ver} BRPs {brps} WRPs {wrps}");
    want!(v, ver >= 6, "DebugVer {ver} (want >= 6, ARMv8 debug)");
    msr!("oslar_el1", 0);
    sys::isb();
    let oslsr = mrs!("oslsr_el1");
    want!(v, oslsr & 0b10 == 0, "OSLSR_EL1 {oslsr:#x}: OS lock still set after OSLAR_EL1 = 0");
    msr!("mdscr_el1", MDSCR_KDE | MDSCR_MDE);
    msr!("dbgbvr0_el1", bp_target as *const () as u64);
    msr!("dbgwvr0_el1", 0x4000_1000);
    sys::isb();
    let (mdscr, bvr, wvr) = (mrs!("mdscr_el1"), mrs!("dbgbvr0_el1"), mrs!("dbgwvr0_el1"));
    want!(v, mdscr & (MDSCR_KDE | MDSCR_MDE) == MDSCR_KDE | MDSCR_MDE, "MDSCR_EL1 reads {mdscr:#x} after writing KDE|MDE");
    want!(v, bvr == bp_target as *const () as u64, "DBGBVR0_EL1 reads {bvr:#x}");
    want!(v, wvr == 0x4000_1000, "DBGWVR0_EL1 reads {wvr:#x}");
    msr!("mdscr_el1", 0);
    sys::isb();
    ctx.row("debug-registers", &v);

    // Breakpoint: hits once (the handler disables it and returns to it).
    let mut v = Verdict::new();
    debug_on(false);
    msr!("dbgbvr0_el1", bp_target as *const () as u64);
    msr!("dbgbcr0_el1", BCR);
    sys::isb();
    c.sync_hook.store(hook::BREAKPOINT, Relaxed);
    let before = hits();
    // SAFETY: nop; ret.
    unsafe { bp_target() };
    unsafe { bp_target() };
    c.sync_hook.store(hook::NONE, Relaxed);
    debug_off();
    let n = hits() - before;
    want!(v, n == 1, "{n} breakpoint exceptions for two calls, the first disabling it (want 1)");
    if n >= 1 {
        let (esr, elr) = (g(slot::ESR), g(slot::ELR));
        note!(v, "ESR {esr:#x} ELR {elr:#x}");
        want!(v, field(esr, 26, 6) == 0x31, "EC {:#x} (want 0x31)", field(esr, 26, 6));
        want!(v, field(esr, 0, 6) == 0x22, "IFSC {:#x} (want 0x22)", field(esr, 0, 6));
        want!(v, elr == bp_target as *const () as u64, "ELR {elr:#x} (want {:#x})", bp_target as *const () as usize);
    }
    ctx.row("debug-breakpoint", &v);

    // Software step over the eight additions between step_start and step_end.
    let mut v = Verdict::new();
    c.hook_arg.store(step_end as *const () as u64, Relaxed);
    let before = hits();
    c.step_base.store(before, Relaxed);
    c.sync_hook.store(hook::STEP, Relaxed);
    debug_on(true);
    // SAFETY: eight additions to x9, entered by ERET with SPSR.SS set.
    let sum = unsafe { step_run() };
    c.sync_hook.store(hook::NONE, Relaxed);
    debug_off();
    let n = hits() - before;
    want!(v, sum == 8, "the stepped code computed {sum}");
    want!(v, n == 8, "{n} step exceptions over 8 instructions (want 8)");
    if n >= 1 {
        let esr = g(slot::ESR);
        note!(v, "last ESR {esr:#x}");
        want!(v, field(esr, 26, 6) == 0x33, "EC {:#x} (want 0x33)", field(esr, 26, 6));
        want!(v, field(esr, 24, 1) == 1 && field(esr, 0, 6) == 0x22, "ISV/IFSC of {esr:#x} (want ISV 1, IFSC 0x22)");
        for i in 0..(n as usize).min(8) {
            let want = step_start as *const () as u64 + 4 * (i as u64 + 1);
            let got = c.steps[i].load(Relaxed);
            want!(v, got == want, "step {} ELR {got:#x} (want {want:#x})", i + 1);
        }
    }
    ctx.row("debug-single-step", &v);

    // Watchpoint: a load, then (armed again) a store; each hits once and completes after.
    let addr = core::ptr::addr_of!(WATCHED) as u64;
    for store in [false, true] {
        let mut v = Verdict::new();
        debug_on(false);
        msr!("dbgwvr0_el1", addr);
        msr!("dbgwcr0_el1", WCR);
        sys::isb();
        c.sync_hook.store(hook::WATCHPOINT, Relaxed);
        let before = hits();
        // SAFETY: an aligned access to WATCHED.
        let val = unsafe {
            if store {
                wp_store(addr, 0x99);
                wp_store(addr, 0x55aa);
                wp_load(addr)
            } else {
                wp_load(addr) ^ wp_load(addr) ^ wp_load(addr)
            }
        };
        c.sync_hook.store(hook::NONE, Relaxed);
        debug_off();
        let n = hits() - before;
        let want_val = if store { 0x55aa } else { 0x1122_3344_5566_7788 };
        want!(v, val == want_val, "the accesses gave {val:#x} (want {want_val:#x})");
        want!(v, n == 1, "{n} watchpoint exceptions, the first disabling it (want 1)");
        if n >= 1 {
            let (esr, far, elr) = (g(slot::ESR), g(slot::FAR), g(slot::ELR));
            note!(v, "ESR {esr:#x} FAR {far:#x}");
            let insn = if store { wp_store_insn as *const () as usize } else { wp_load_insn as *const () as usize } as u64;
            want!(v, field(esr, 26, 6) == 0x35, "EC {:#x} (want 0x35)", field(esr, 26, 6));
            want!(v, field(esr, 0, 6) == 0x22, "DFSC {:#x} (want 0x22)", field(esr, 0, 6));
            want!(v, field(esr, 6, 1) == store as u64, "WnR {}", field(esr, 6, 1));
            want!(v, (addr..addr + 8).contains(&far), "FAR {far:#x} (want within {addr:#x}+8)");
            want!(v, elr == insn, "ELR {elr:#x} (want the access, {insn:#x})");
        }
        // SAFETY: WATCHED back to its value for the load check of a later run.
        unsafe { (*core::ptr::addr_of_mut!(WATCHED)).0 = 0x1122_3344_5566_7788 };
        ctx.row(if store { "debug-watchpoint-store" } else { "debug-watchpoint-load" }, &v);
    }
}
