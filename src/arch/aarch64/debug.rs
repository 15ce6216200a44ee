//! The self-hosted debug hardware as the vCPU loaded on this pCPU has it ([`DebugRegs`]).
//!
//! KVM's lazy scheme. MDCR_EL2.TDA traps a vCPU's debug registers until it touches one;
//! then its saved state (reset values, for a vCPU that never had any) goes into the
//! hardware ([`debug_take`], from the scheduler), the trap stops, and the guest runs the
//! access again on the hardware. From then on its breakpoints, watchpoints, MDSCR_EL1 and
//! the rest are live in the hardware across exits (the hypervisor never uses them: debug
//! exceptions target EL1, which EL2 code cannot take) and are saved and restored only when
//! the pCPU switches vCPUs ([`save`], [`restore`], from context.rs), and only while the
//! vCPU is "dirty": one switched out with MDSCR_EL1's MDE, KDE and SS clear, so that
//! nothing of it can fire, goes back to being trapped, and costs a switch nothing more
//! until it touches a debug register again. (Measured under QEMU's TCG with the switch
//! test guest: an owner's debug state adds some 14 us to a switch's 47 us of saving and
//! restoring, a vCPU that does not own it 2 us for its OS lock.) KVM also switches on every
//! exit while dirty, because its host uses the same registers; ours does not.
//!
//! The OS lock and the OS double lock are the hardware's, written on the guest's behalf
//! ([`debug_os_read`], [`debug_os_write`]; MDCR_EL2.TDOSA traps them so that DBGPRCR_EL1
//! does not reach the power controller): while its OS lock is locked, the hardware ignores
//! the guest's breakpoints, watchpoints and steps exactly as the architecture says, and the
//! save and restore run under a locked OS lock, as an OS's own save and restore sequence
//! does, so that every field of MDSCR_EL1 and OSECCR_EL1 is writable.
//!
//! QEMU 7.2 does not implement DBGCLAIMSET/CLR_EL1, OSECCR_EL1 or OSDTRRX/TX_EL1 (it
//! UNDEFs them, though the architecture requires them): [`present`] finds out once which of
//! them the core has, by reading each under an UNDEF fixup of the EL2 vectors.

use crate::arch::DebugRegs;
use crate::hw::debug::{self, CLAIM_TAGS, Reg, mdscr, oslock};
use crate::hw::el2::mdcr;
use core::arch::asm;
use core::sync::atomic::{AtomicU8, Ordering};

fn isb() {
    // SAFETY: a barrier only.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Saving and loading the breakpoints and watchpoints the core implements (DBGBVR<n> and
/// DBGBCR<n> for n < `bps`, DBGWVR<n> and DBGWCR<n> for n < `wps`; the others are
/// UNDEFINED). The register names are literals, so one block per number.
macro_rules! points {
    ($($n:literal)*) => {
        fn save_points(r: &mut DebugRegs, bps: usize, wps: usize) {
            $(
                if $n < bps {
                    // SAFETY: reads of breakpoint $n, which the core implements; no side effects.
                    unsafe {
                        asm!(
                            concat!("mrs {v}, dbgbvr", $n, "_el1"),
                            concat!("mrs {c}, dbgbcr", $n, "_el1"),
                            v = out(reg) r.bvr[$n],
                            c = out(reg) r.bcr[$n],
                            options(nomem, nostack, preserves_flags)
                        )
                    };
                }
                if $n < wps {
                    // SAFETY: reads of watchpoint $n, which the core implements.
                    unsafe {
                        asm!(
                            concat!("mrs {v}, dbgwvr", $n, "_el1"),
                            concat!("mrs {c}, dbgwcr", $n, "_el1"),
                            v = out(reg) r.wvr[$n],
                            c = out(reg) r.wcr[$n],
                            options(nomem, nostack, preserves_flags)
                        )
                    };
                }
            )*
        }

        fn load_points(r: &DebugRegs, bps: usize, wps: usize) {
            $(
                if $n < bps {
                    // SAFETY: breakpoint $n of the guest loaded here; breakpoints never match
                    // at EL2.
                    unsafe {
                        asm!(
                            concat!("msr dbgbvr", $n, "_el1, {v}"),
                            concat!("msr dbgbcr", $n, "_el1, {c}"),
                            v = in(reg) r.bvr[$n],
                            c = in(reg) r.bcr[$n],
                            options(nomem, nostack, preserves_flags)
                        )
                    };
                }
                if $n < wps {
                    // SAFETY: watchpoint $n of the guest loaded here; watchpoints never
                    // match at EL2.
                    unsafe {
                        asm!(
                            concat!("msr dbgwvr", $n, "_el1, {v}"),
                            concat!("msr dbgwcr", $n, "_el1, {c}"),
                            v = in(reg) r.wvr[$n],
                            c = in(reg) r.wcr[$n],
                            options(nomem, nostack, preserves_flags)
                        )
                    };
                }
            )*
        }
    };
}

points!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);

// One MRS each of the debug registers QEMU 7.2 lacks, between two labels the EL2 vectors
// know (`in_undef_probe`): an UNDEFINED one comes back with x1 = 1.
core::arch::global_asm!(
    ".section .text.undef_probe, \"ax\"",
    ".global undef_probe_start",
    "undef_probe_start:",
    "probe_claim:",
    "    mov x1, #0",
    "    mrs x0, dbgclaimclr_el1",
    "    mov x0, x1",
    "    ret",
    "probe_oseccr:",
    "    mov x1, #0",
    "    mrs x0, oseccr_el1",
    "    mov x0, x1",
    "    ret",
    "probe_osdtr:",
    "    mov x1, #0",
    "    mrs x0, osdtrrx_el1",
    "    mov x0, x1",
    "    ret",
    ".global undef_probe_end",
    "undef_probe_end:",
);

unsafe extern "C" {
    fn probe_claim() -> u64;
    fn probe_oseccr() -> u64;
    fn probe_osdtr() -> u64;
    static undef_probe_start: u8;
    static undef_probe_end: u8;
}

/// Whether an UNDEFINED instruction at `elr` is one of the probes (the EL2 vectors then
/// set x1 and step over it).
pub fn in_undef_probe(elr: u64) -> bool {
    (&raw const undef_probe_start as u64..&raw const undef_probe_end as u64).contains(&elr)
}

/// The optional-in-practice registers this core has (bits below), probed once.
static PRESENT: AtomicU8 = AtomicU8::new(0);
const CLAIM: u8 = 1 << 0;
const OSECCR: u8 = 1 << 1;
const OSDTR: u8 = 1 << 2;
const PROBED: u8 = 1 << 7;

fn present() -> u8 {
    let known = PRESENT.load(Ordering::Relaxed);
    if known & PROBED != 0 {
        return known;
    }
    let mut p = PROBED;
    // SAFETY: each probe is one read of a debug register at EL2, without side effects; an
    // UNDEFINED one is stepped over by the EL2 vectors (`in_undef_probe`), which then
    // report it in x1.
    let (claim, oseccr, osdtr) = unsafe { (probe_claim(), probe_oseccr(), probe_osdtr()) };
    for (missing, bit) in [(claim, CLAIM), (oseccr, OSECCR), (osdtr, OSDTR)] {
        if missing == 0 {
            p |= bit;
        }
    }
    // Every pCPU finds the same (one core type); a race stores the same value twice.
    PRESENT.store(p, Ordering::Relaxed);
    p
}

fn breakpoints() -> usize {
    debug::breakpoints(super::idregs::read(5, 0))
}

fn watchpoints() -> usize {
    debug::watchpoints(super::idregs::read(5, 0))
}

fn os_locked() -> bool {
    mrs!("oslsr_el1") & oslock::OSLSR_OSLK != 0
}

/// MDCR_EL2.TDA: the loaded vCPU's debug registers trap (it does not own them).
fn trapped() -> bool {
    mrs!("mdcr_el2") & mdcr::TDA != 0
}

fn set_trapped(on: bool) {
    let v = mrs!("mdcr_el2") & !mdcr::TDA;
    msr!("mdcr_el2", if on { v | mdcr::TDA } else { v });
    isb();
}

/// Puts `r` into the hardware: with the double lock clear and the OS lock locked, so that
/// every field takes the value (MDSCR_EL1's DCC flags, OSECCR_EL1), then the guest's own
/// double lock and OS lock.
fn load(r: &DebugRegs) {
    let p = present();
    msr!("osdlr_el1", 0);
    msr!("oslar_el1", oslock::OSLAR_OSLK);
    isb();
    load_points(r, breakpoints(), watchpoints());
    msr!("mdccint_el1", r.mdccint);
    if p & OSDTR != 0 {
        msr!("osdtrrx_el1", r.dtrrx);
        msr!("osdtrtx_el1", r.dtrtx);
    }
    if p & OSECCR != 0 {
        msr!("oseccr_el1", r.oseccr);
    }
    if p & CLAIM != 0 {
        msr!("dbgclaimclr_el1", CLAIM_TAGS);
        msr!("dbgclaimset_el1", r.claim & CLAIM_TAGS);
    }
    msr!("mdscr_el1", r.mdscr);
    msr!("osdlr_el1", r.osdlr);
    msr!("oslar_el1", u64::from(r.oslk));
    isb();
}

/// Reads the hardware into `r`, under a locked OS lock (left locked: the next vCPU's
/// [`restore`], or a starting vCPU's [`reset`], sets its own).
fn store(r: &mut DebugRegs) {
    let p = present();
    r.oslk = os_locked();
    r.osdlr = mrs!("osdlr_el1");
    msr!("osdlr_el1", 0);
    msr!("oslar_el1", oslock::OSLAR_OSLK);
    isb();
    save_points(r, breakpoints(), watchpoints());
    r.mdscr = mrs!("mdscr_el1");
    r.mdccint = mrs!("mdccint_el1");
    if p & OSDTR != 0 {
        r.dtrrx = mrs!("osdtrrx_el1");
        r.dtrtx = mrs!("osdtrtx_el1");
    }
    if p & OSECCR != 0 {
        r.oseccr = mrs!("oseccr_el1");
    }
    if p & CLAIM != 0 {
        r.claim = mrs!("dbgclaimclr_el1") & CLAIM_TAGS;
    }
}

/// A vCPU starts on this pCPU (after `load_guest_config` set MDCR_EL2.TDA): nothing of the
/// last one's debug state fires for it (MDSCR_EL1 0), and its OS lock is locked and its
/// double lock clear, as after a cold reset.
pub fn reset() {
    msr!("mdscr_el1", 0);
    msr!("osdlr_el1", 0);
    msr!("oslar_el1", oslock::OSLAR_OSLK);
    isb();
}

/// The vCPU loaded here is switched out: its debug state into `r` (all of it if it owns the
/// hardware, else its OS lock and double lock, the rest being there already). It keeps
/// owning the hardware only while something of it can fire: a breakpoint or watchpoint
/// (MDE, KDE) or a step (SS).
pub fn save(r: &mut DebugRegs) {
    if trapped() {
        r.owned = false;
        r.oslk = os_locked();
        r.osdlr = mrs!("osdlr_el1");
        return;
    }
    store(r);
    r.owned = r.mdscr & (mdscr::MDE | mdscr::KDE | mdscr::SS) != 0;
}

/// The vCPU whose state `r` is comes back: its debug registers if it owns them (and no
/// trap), else nothing of the previous vCPU's enabled (and the trap).
pub fn restore(r: &DebugRegs) {
    if r.owned {
        load(r);
    } else {
        msr!("mdscr_el1", 0);
        msr!("osdlr_el1", r.osdlr);
        msr!("oslar_el1", u64::from(r.oslk));
    }
    set_trapped(!r.owned);
}

/// Whether the vCPU loaded here owns the debug hardware (MDCR_EL2.TDA clear).
pub fn debug_owned() -> bool {
    !trapped()
}

/// The loaded vCPU, whose saved debug state is `r`, touched a debug register while
/// MDCR_EL2.TDA trapped it: `r` goes into the hardware, with the OS lock and double lock as
/// the hardware has them (they are the guest's, written on its behalf), and the trap stops.
pub fn debug_take(r: &mut DebugRegs) {
    r.oslk = os_locked();
    r.osdlr = mrs!("osdlr_el1");
    load(r);
    r.owned = true;
    set_trapped(false);
}

/// A guest's trapped read of an OS lock register (MDCR_EL2.TDOSA): OSLSR_EL1 or OSDLR_EL1
/// as the hardware holds them for it. Other registers read 0.
pub fn debug_os_read(reg: Reg) -> u64 {
    match reg {
        Reg::Oslsr => mrs!("oslsr_el1"),
        Reg::Osdlr => mrs!("osdlr_el1"),
        _ => 0,
    }
}

/// A guest's trapped write of OSLAR_EL1 or OSDLR_EL1: into the hardware, which applies it
/// (OSDLR_EL1.DLK is RES0 where FEAT_DoubleLock is not). Other registers: ignored.
pub fn debug_os_write(reg: Reg, value: u64) {
    match reg {
        Reg::Oslar => msr!("oslar_el1", value & oslock::OSLAR_OSLK),
        Reg::Osdlr => msr!("osdlr_el1", value & oslock::OSDLR_DLK),
        _ => return,
    }
    isb();
}
