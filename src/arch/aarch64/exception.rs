//! EL2 exception entry: the register frame vectors.S saves, and the dispatcher it calls.
//!
//! Guests do not run yet, so every exception here is the hypervisor's own: an IRQ (the
//! cross-pCPU kick), a fault taken by a deliberate probe ([`probe_load`], [`probe_store`],
//! the debug registers' `debug::present`), a semihosting trap where there is no
//! semihosting, or a bug, which is fatal.

use crate::hw::esr::{ESR, ec};
use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, Readable};
use core::mem::{offset_of, size_of};

/// General registers and exception state, as saved by `el2_trap_common`.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

const _: () = assert!(size_of::<TrapFrame>() == 272 && size_of::<TrapFrame>().is_multiple_of(16));
const _: () = assert!(offset_of!(TrapFrame, elr) == 248 && offset_of!(TrapFrame, spsr) == 256);

core::arch::global_asm!(
    include_str!("../../../arch/aarch64/vectors.S"),
    TF_SIZE = const size_of::<TrapFrame>(),
    TF_ELR = const offset_of!(TrapFrame, elr),
    TF_SPSR = const offset_of!(TrapFrame, spsr),
);

core::arch::global_asm!(
    ".section .text.probe, \"ax\"",
    // probe_load(addr) -> (value, faulted): x1 becomes 1 if the load faults.
    ".global probe_load_raw",
    "probe_load_raw:",
    "    mov x1, #0",
    ".global probe_load_insn",
    "probe_load_insn:",
    "    ldr x0, [x0]",
    "    ret",
    // probe_store(addr, value) -> faulted
    ".global probe_store_raw",
    "probe_store_raw:",
    "    mov x2, x1",
    "    mov x1, #0",
    ".global probe_store_insn",
    "probe_store_insn:",
    "    str x2, [x0]",
    "    mov x0, x1",
    "    ret",
);

#[repr(C)]
struct ProbeResult {
    value: u64,
    faulted: u64,
}

unsafe extern "C" {
    fn probe_load_raw(addr: u64) -> ProbeResult;
    fn probe_store_raw(addr: u64, value: u64) -> u64;
    static probe_load_insn: u8;
    static probe_store_insn: u8;
}

/// Reads 8 bytes at `addr` (identity-mapped), or `None` if the access faults. For tests of
/// the EL2 map: guard pages, unmapped holes, read-only code.
pub fn probe_load(addr: u64) -> Option<u64> {
    // SAFETY: the probe instruction is listed in the fault fixups below; a fault becomes
    // `faulted = 1` instead of a crash. A successful load reads memory we may read.
    let r = unsafe { probe_load_raw(addr) };
    (r.faulted == 0).then_some(r.value)
}

/// Writes 8 bytes at `addr`; `false` if the access faults. The caller must own the memory.
pub fn probe_store(addr: u64, value: u64) -> bool {
    // SAFETY: as for probe_load; callers pass addresses they own or expect to fault.
    unsafe { probe_store_raw(addr, value) == 0 }
}

/// Vector index: Arm's table order (current EL SP0, current EL SPx, lower EL A64, lower A32).
const CURRENT_SPX_SYNC: u64 = 4;
const CURRENT_SPX_IRQ: u64 = 5;

#[unsafe(no_mangle)]
extern "C" fn el2_trap(frame: &mut TrapFrame, index: u64) {
    match index {
        // Outside a guest's run loop there is no vCPU to hand guest interrupts to.
        CURRENT_SPX_IRQ => {
            crate::arch::irq_entry();
        }
        CURRENT_SPX_SYNC => sync_at_el2(frame),
        _ => fatal(frame, index, "unexpected exception"),
    }
}

fn sync_at_el2(frame: &mut TrapFrame) {
    let class = ESR::EC.read(ESR_EL2.get());
    let load_insn = &raw const probe_load_insn as u64;
    let store_insn = &raw const probe_store_insn as u64;
    if class == ec::DATA_ABORT_SAME_EL && (frame.elr == load_insn || frame.elr == store_insn) {
        frame.x[1] = 1;
        frame.x[0] = 0;
        frame.elr += 4;
        return;
    }
    // SAFETY: ELR points at the instruction that trapped, inside our mapped image.
    let insn = unsafe { core::ptr::read_volatile(frame.elr as *const u32) };
    if class == ec::UNKNOWN && insn == super::semihosting::HLT_SEMIHOSTING {
        frame.elr += 4;
        return;
    }
    // A debug register the core turned out not to have (debug::present's probes).
    if class == ec::UNKNOWN && super::debug::in_undef_probe(frame.elr) {
        frame.x[1] = 1;
        frame.elr += 4;
        return;
    }
    fatal(frame, CURRENT_SPX_SYNC, "synchronous exception at EL2")
}

fn fatal(frame: &TrapFrame, index: u64, what: &str) -> ! {
    panic!(
        "{what} (vector {index}): ESR_EL2 {:#x} FAR_EL2 {:#x} ELR_EL2 {:#x} SPSR_EL2 {:#x} x29 {:#x} x30 {:#x}",
        ESR_EL2.get(),
        FAR_EL2.get(),
        frame.elr,
        frame.spsr,
        frame.x[29],
        frame.x[30]
    )
}
