//! Entering and leaving a guest: the guest's general registers, `vcpu_run`, the lower-EL
//! exit path, exception injection into EL1, and the EL1/EL2 register state a vCPU starts
//! with.
//!
//! With one vCPU pinned to each pCPU, the guest's EL1 system registers, FP/SIMD registers
//! and timer stay live in the hardware between exits: the hypervisor (built without FP/SIMD
//! code) never touches them. They are reset whenever a vCPU starts, so nothing leaks from
//! one guest to the next on the same pCPU.

use crate::hw::el2::{cptr, hcr, mdcr, mpidr, sctlr_el1};
use crate::hw::timer::cnthctl;
use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, HPFAR_EL2, Readable};
use core::arch::asm;
use core::mem::offset_of;

pub use crate::arch::{GuestRegs, Syndrome};

/// Bytes vcpu_run keeps on the EL2 stack: x19-x30 and the GuestRegs pointer.
const HOST_FRAME: usize = 112;
const HOST_CTX: usize = 96;

core::arch::global_asm!(
    ".section .text.vcpu, \"ax\"",
    ".global vcpu_run",
    "vcpu_run:",
    "    sub sp, sp, #{frame}",
    "    stp x19, x20, [sp, #0]",
    "    stp x21, x22, [sp, #16]",
    "    stp x23, x24, [sp, #32]",
    "    stp x25, x26, [sp, #48]",
    "    stp x27, x28, [sp, #64]",
    "    stp x29, x30, [sp, #80]",
    "    str x0, [sp, #{ctx}]",
    "    ldr x1, [x0, #{pc}]",
    "    ldr x2, [x0, #{pstate}]",
    "    msr elr_el2, x1",
    "    msr spsr_el2, x2",
    "    ldp x2, x3, [x0, #16]",
    "    ldp x4, x5, [x0, #32]",
    "    ldp x6, x7, [x0, #48]",
    "    ldp x8, x9, [x0, #64]",
    "    ldp x10, x11, [x0, #80]",
    "    ldp x12, x13, [x0, #96]",
    "    ldp x14, x15, [x0, #112]",
    "    ldp x16, x17, [x0, #128]",
    "    ldp x18, x19, [x0, #144]",
    "    ldp x20, x21, [x0, #160]",
    "    ldp x22, x23, [x0, #176]",
    "    ldp x24, x25, [x0, #192]",
    "    ldp x26, x27, [x0, #208]",
    "    ldp x28, x29, [x0, #224]",
    "    ldr x30, [x0, #240]",
    "    ldp x0, x1, [x0, #0]",
    "    eret",
    // Reached from a GUEST_VENTRY with the guest's x0/x1 pushed and the vector index in x1.
    ".global guest_exit",
    "guest_exit:",
    "    ldr x0, [sp, #(16 + {ctx})]",
    "    stp x2, x3, [x0, #16]",
    "    stp x4, x5, [x0, #32]",
    "    stp x6, x7, [x0, #48]",
    "    stp x8, x9, [x0, #64]",
    "    stp x10, x11, [x0, #80]",
    "    stp x12, x13, [x0, #96]",
    "    stp x14, x15, [x0, #112]",
    "    stp x16, x17, [x0, #128]",
    "    stp x18, x19, [x0, #144]",
    "    stp x20, x21, [x0, #160]",
    "    stp x22, x23, [x0, #176]",
    "    stp x24, x25, [x0, #192]",
    "    stp x26, x27, [x0, #208]",
    "    stp x28, x29, [x0, #224]",
    "    str x30, [x0, #240]",
    "    ldp x2, x3, [sp], #16",
    "    stp x2, x3, [x0, #0]",
    "    mrs x2, elr_el2",
    "    str x2, [x0, #{pc}]",
    "    mrs x2, spsr_el2",
    "    str x2, [x0, #{pstate}]",
    "    mov x0, x1",
    "    ldp x19, x20, [sp, #0]",
    "    ldp x21, x22, [sp, #16]",
    "    ldp x23, x24, [sp, #32]",
    "    ldp x25, x26, [sp, #48]",
    "    ldp x27, x28, [sp, #64]",
    "    ldp x29, x30, [sp, #80]",
    "    add sp, sp, #{frame}",
    "    ret",
    frame = const HOST_FRAME,
    ctx = const HOST_CTX,
    pc = const offset_of!(GuestRegs, pc),
    pstate = const offset_of!(GuestRegs, pstate),
);

// Zeroes the FP/SIMD registers, FPCR and FPSR for a vCPU that starts, so no FP state
// passes from one guest to the next on a pCPU. The hypervisor itself is built without
// FP/SIMD code (aarch64-unknown-none-softfloat) and never touches these registers, which is
// why they need no saving on exits.
core::arch::global_asm!(
    ".arch_extension fp",
    ".arch_extension simd",
    ".section .text.vcpu, \"ax\"",
    ".global fp_reset",
    "fp_reset:",
    "    movi v0.16b, #0",
    "    movi v1.16b, #0",
    "    movi v2.16b, #0",
    "    movi v3.16b, #0",
    "    movi v4.16b, #0",
    "    movi v5.16b, #0",
    "    movi v6.16b, #0",
    "    movi v7.16b, #0",
    "    movi v8.16b, #0",
    "    movi v9.16b, #0",
    "    movi v10.16b, #0",
    "    movi v11.16b, #0",
    "    movi v12.16b, #0",
    "    movi v13.16b, #0",
    "    movi v14.16b, #0",
    "    movi v15.16b, #0",
    "    movi v16.16b, #0",
    "    movi v17.16b, #0",
    "    movi v18.16b, #0",
    "    movi v19.16b, #0",
    "    movi v20.16b, #0",
    "    movi v21.16b, #0",
    "    movi v22.16b, #0",
    "    movi v23.16b, #0",
    "    movi v24.16b, #0",
    "    movi v25.16b, #0",
    "    movi v26.16b, #0",
    "    movi v27.16b, #0",
    "    movi v28.16b, #0",
    "    movi v29.16b, #0",
    "    movi v30.16b, #0",
    "    movi v31.16b, #0",
    "    msr fpcr, xzr",
    "    msr fpsr, xzr",
    "    ret",
);

unsafe extern "C" {
    fn vcpu_run(regs: *mut GuestRegs) -> u64;
    fn fp_reset();
}

/// Runs the guest until it exits to EL2; returns what the exit registers say.
///
/// The caller has loaded the VM's stage-2 and trap configuration on this pCPU
/// ([`load_guest_config`]) and runs with IRQs masked (they cause an exit instead).
pub fn enter(regs: &mut GuestRegs) -> Syndrome {
    // SAFETY: vcpu_run saves the callee-saved registers, runs the guest at EL1 under the
    // VM's stage-2 tables (which map only guest RAM) and comes back through guest_exit with
    // them restored; the guest cannot reach EL2 state.
    let vector = unsafe { vcpu_run(regs) };
    Syndrome { vector, esr: ESR_EL2.get(), far: FAR_EL2.get(), hpfar: HPFAR_EL2.get() }
}

/// HCR_EL2 while a guest runs on this core: `hw::el2::hcr::guest`, which says what each
/// bit is for (the LORegion and RAS traps only where the core has them).
pub fn hcr_guest() -> u64 {
    hcr::guest(&super::idregs::features())
}

/// HCR_EL2 while no guest runs (from boot on, and after a VM finished on this pCPU): EL1
/// is AArch64, and physical IRQ/FIQ/SError go to EL2.
pub const HCR_HOST: u64 = hcr::RW | hcr::FMO | hcr::IMO | hcr::AMO;

/// CNTHCTL_EL2 while a guest runs: EL1 may use the physical counter and timer (EL1PCTEN,
/// EL1PCEN), as the architecture gives them to EL1; the hypervisor uses neither. Their
/// interrupts come to EL2 (HCR_EL2.IMO) and are injected.
const CNTHCTL_GUEST: u64 = cnthctl::EL1PCTEN | cnthctl::EL1PCEN;

// The values these had as raw numbers (before `hw`), so that naming them changed nothing.
// (The guest's HCR_EL2, CPTR_EL2 and MDCR_EL2 depend on the core: hw::el2's tests.)
const _: () = assert!(HCR_HOST == 0x8000_0038 && CNTHCTL_GUEST == 0b11);

/// Loads a VM's stage-2 tables and traps on this pCPU, its virtual counter offset (the same
/// for all its vCPUs), and resets the EL1 state the guest will see (MMU off, no vector
/// table, timers off, debug registers trapped until it touches them and its OS lock
/// locked, as after a cold reset).
pub fn load_guest_config(vttbr: u64, vtcr: u64, vmpidr: u64, cntvoff: u64) {
    let features = super::idregs::features();
    // SAFETY: only FP/SIMD registers change, which no hypervisor code uses (softfloat).
    unsafe { fp_reset() };
    // SAFETY: EL2 control registers for the guest about to run; the TLB invalidation drops
    // stage-1+2 entries of this VMID (a previous VM may have used it on this pCPU).
    unsafe {
        asm!(
            "msr vtcr_el2, {vtcr}",
            "msr vttbr_el2, {vttbr}",
            "isb",
            "tlbi vmalls12e1",
            "dsb nsh",
            "msr hcr_el2, {hcr}",
            "msr vmpidr_el2, {vmpidr}",
            "mrs {tmp}, midr_el1",
            "msr vpidr_el2, {tmp}",
            "msr cptr_el2, {cptr}",
            "msr mdcr_el2, {mdcr}",
            "msr cnthctl_el2, {cnthctl}",
            "msr cntvoff_el2, {cntvoff}",
            "msr sctlr_el1, {sctlr}",
            "msr vbar_el1, xzr",
            "msr cntv_ctl_el0, xzr",
            "msr cntp_ctl_el0, xzr",
            // Nothing of the last VM on this pCPU may show: the compare values, the last
            // address translation, the cache selection, the auxiliary registers.
            "msr cntv_cval_el0, xzr",
            "msr cntp_cval_el0, xzr",
            "msr par_el1, xzr",
            "msr csselr_el1, xzr",
            "msr afsr0_el1, xzr",
            "msr afsr1_el1, xzr",
            "msr amair_el1, xzr",
            "msr cntkctl_el1, xzr",
            "msr cpacr_el1, xzr",
            "msr tcr_el1, xzr",
            "msr ttbr0_el1, xzr",
            "msr ttbr1_el1, xzr",
            "msr mair_el1, xzr",
            "msr tpidr_el1, xzr",
            "msr tpidr_el0, xzr",
            "msr tpidrro_el0, xzr",
            "msr contextidr_el1, xzr",
            "msr sp_el0, xzr",
            "msr sp_el1, xzr",
            "msr elr_el1, xzr",
            "msr spsr_el1, xzr",
            "msr esr_el1, xzr",
            "msr far_el1, xzr",
            "isb",
            vtcr = in(reg) vtcr,
            vttbr = in(reg) vttbr,
            hcr = in(reg) hcr::guest(&features),
            vmpidr = in(reg) vmpidr | mpidr::RES1,
            tmp = out(reg) _,
            cptr = in(reg) cptr::guest(&features),
            mdcr = in(reg) mdcr::guest(&features, false),
            cnthctl = in(reg) CNTHCTL_GUEST,
            cntvoff = in(reg) cntvoff,
            sctlr = in(reg) sctlr_el1::MMU_OFF,
            options(nostack)
        );
    }
    // The registers only some cores have, which a guest reaches without a trap.
    // SAFETY: TPIDR2_EL0 (FEAT_SME) and VDISR_EL2 (FEAT_RAS; the guest's DISR_EL1 while
    // HCR_EL2.AMO is set) of the guest about to run, each written only where it exists.
    unsafe {
        if features.sme() {
            asm!("msr s3_3_c13_c0_5, xzr", options(nostack));
        }
        if features.ras() {
            asm!("msr s3_4_c12_c1_1, xzr", options(nostack));
        }
    }
    if features.pauth() {
        // A new vCPU's keys are zero, never the last VM's on this pCPU.
        super::context::restore_pauth_keys(&[0; 10]);
    }
    super::debug::reset();
}

/// Puts HCR_EL2 back to its no-guest value after a VM finished on this pCPU, and turns the
/// EL1 timers it left off (their interrupts have no one to go to).
pub fn unload_guest_config() {
    // SAFETY: EL2 control register; stage-2 off, physical interrupts still to EL2. The EL1
    // timers belong to no guest any more.
    unsafe {
        asm!(
            "msr hcr_el2, {}",
            "msr cntv_ctl_el0, xzr",
            "msr cntp_ctl_el0, xzr",
            "isb",
            in(reg) HCR_HOST,
            options(nostack)
        )
    };
}

/// ESR_EL1 exception classes for injected exceptions, by the names `vm::run` uses.
pub use crate::hw::esr::ec::{
    DATA_ABORT_SAME_EL as EC_DATA_ABORT_SAME_EL, INSN_ABORT_SAME_EL as EC_INSN_ABORT_SAME_EL, UNKNOWN as EC_UNKNOWN,
};

/// VBAR_EL1 and SCTLR_EL1 of the guest on this pCPU: where an injected exception enters,
/// and the controls that decide its PSTATE.
pub fn el1_vector_state() -> (u64, u64) {
    let (vbar, sctlr): (u64, u64);
    // SAFETY: reads EL1 registers of the running guest; no side effects.
    unsafe { asm!("mrs {}, vbar_el1", "mrs {}, sctlr_el1", out(reg) vbar, out(reg) sctlr, options(nostack)) };
    (vbar, sctlr)
}

/// The guest on this pCPU wakes from a power-down state at its entry point: its MMU and
/// caches off (SCTLR_EL1 as a vCPU starts), as after a warm boot.
pub fn el1_warm_boot() {
    // SAFETY: an EL1 register of the running guest, which the hypervisor does not use.
    unsafe { asm!("msr sctlr_el1, {}", "isb", in(reg) sctlr_el1::MMU_OFF, options(nostack)) };
}

/// Writes what the hardware writes on taking a synchronous exception to EL1: ELR_EL1 (the
/// interrupted PC), SPSR_EL1 (the interrupted PSTATE), ESR_EL1 and, for aborts, FAR_EL1.
pub fn set_el1_exception(elr: u64, spsr: u64, esr: u64, far: Option<u64>) {
    // SAFETY: EL1 registers of the running guest; the hypervisor does not use them.
    unsafe {
        asm!(
            "msr elr_el1, {elr}",
            "msr spsr_el1, {spsr}",
            "msr esr_el1, {esr}",
            elr = in(reg) elr,
            spsr = in(reg) spsr,
            esr = in(reg) esr,
            options(nostack)
        );
        if let Some(far) = far {
            asm!("msr far_el1, {}", in(reg) far, options(nostack));
        }
    }
}

/// Translates a guest virtual address through the guest's stage 1 and its stage 2 (AT
/// S12E1R, with the VM's registers loaded on this pCPU). `None` if either stage faults.
pub fn guest_va_to_pa(va: u64) -> Option<u64> {
    let par: u64;
    // SAFETY: an address translation instruction; it only writes PAR_EL1, whose guest value
    // is put back (as KVM does), so a guest reading PAR_EL1 after its own AT sees its own.
    unsafe {
        asm!(
            "mrs {saved}, par_el1",
            "at s12e1r, {va}",
            "isb",
            "mrs {par}, par_el1",
            "msr par_el1, {saved}",
            va = in(reg) va,
            par = out(reg) par,
            saved = out(reg) _,
            options(nostack)
        )
    };
    translated(par, va)
}

/// The address an AT instruction found for `va`, from PAR_EL1 (F, bit 0: it faulted).
fn translated(par: u64, va: u64) -> Option<u64> {
    if par & 1 != 0 {
        return None;
    }
    Some((par & 0x0000_ffff_ffff_f000) | (va & 0xfff))
}
