//! Switching a pCPU from one vCPU to another: saving and restoring a vCPU's EL1 system
//! registers, FP/SIMD registers, EL1 timers, virtual GIC CPU interface state and debug
//! state (`debug.rs`: all of it once the vCPU owns the debug hardware) ([`VcpuContext`]),
//! the VM's stage-2 and counter offset, WFI trapping, and the EL2 physical timer that ends
//! a time slice. Only done when a pCPU really switches: a vCPU alone on its pCPU keeps all
//! of it live in the hardware.

use crate::arch::{El1Regs, FpRegs, GicCpuRegs, TimerRegs, VcpuContext};
use core::arch::asm;
use core::mem::offset_of;

// V0-V31, FPSR and FPCR to and from an FpRegs (x0). The hypervisor itself is softfloat and
// never touches them, so this is the only code that does.
core::arch::global_asm!(
    ".arch_extension fp",
    ".arch_extension simd",
    ".section .text.vcpu, \"ax\"",
    ".global fp_save",
    "fp_save:",
    "    stp q0, q1, [x0, #0]",
    "    stp q2, q3, [x0, #32]",
    "    stp q4, q5, [x0, #64]",
    "    stp q6, q7, [x0, #96]",
    "    stp q8, q9, [x0, #128]",
    "    stp q10, q11, [x0, #160]",
    "    stp q12, q13, [x0, #192]",
    "    stp q14, q15, [x0, #224]",
    "    stp q16, q17, [x0, #256]",
    "    stp q18, q19, [x0, #288]",
    "    stp q20, q21, [x0, #320]",
    "    stp q22, q23, [x0, #352]",
    "    stp q24, q25, [x0, #384]",
    "    stp q26, q27, [x0, #416]",
    "    stp q28, q29, [x0, #448]",
    "    stp q30, q31, [x0, #480]",
    "    mrs x1, fpsr",
    "    str x1, [x0, #{fpsr}]",
    "    mrs x1, fpcr",
    "    str x1, [x0, #{fpcr}]",
    "    ret",
    ".global fp_restore",
    "fp_restore:",
    "    ldp q0, q1, [x0, #0]",
    "    ldp q2, q3, [x0, #32]",
    "    ldp q4, q5, [x0, #64]",
    "    ldp q6, q7, [x0, #96]",
    "    ldp q8, q9, [x0, #128]",
    "    ldp q10, q11, [x0, #160]",
    "    ldp q12, q13, [x0, #192]",
    "    ldp q14, q15, [x0, #224]",
    "    ldp q16, q17, [x0, #256]",
    "    ldp q18, q19, [x0, #288]",
    "    ldp q20, q21, [x0, #320]",
    "    ldp q22, q23, [x0, #352]",
    "    ldp q24, q25, [x0, #384]",
    "    ldp q26, q27, [x0, #416]",
    "    ldp q28, q29, [x0, #448]",
    "    ldp q30, q31, [x0, #480]",
    "    ldr x1, [x0, #{fpsr}]",
    "    msr fpsr, x1",
    "    ldr x1, [x0, #{fpcr}]",
    "    msr fpcr, x1",
    "    ret",
    fpsr = const offset_of!(FpRegs, fpsr),
    fpcr = const offset_of!(FpRegs, fpcr),
);

const _: () = assert!(offset_of!(FpRegs, q) == 0 && offset_of!(FpRegs, fpsr) == 512);

unsafe extern "C" {
    fn fp_save(regs: *mut FpRegs);
    fn fp_restore(regs: *const FpRegs);
}

/// Active-priority registers this CPU interface has per group: 1, 2 or 4 for 5, 6 or 7
/// bits of preemption (ICH_VTR_EL2.PREbits + 1; IHI 0069 12.4.1). The others are UNDEFINED.
pub(super) fn apr_count() -> usize {
    match (mrs!("ich_vtr_el2") >> 26) & 7 {
        6 => 4,
        5 => 2,
        _ => 1,
    }
}

fn save_el1(r: &mut El1Regs) {
    r.sctlr = mrs!("sctlr_el1");
    r.cpacr = mrs!("cpacr_el1");
    r.ttbr0 = mrs!("ttbr0_el1");
    r.ttbr1 = mrs!("ttbr1_el1");
    r.tcr = mrs!("tcr_el1");
    r.esr = mrs!("esr_el1");
    r.afsr0 = mrs!("afsr0_el1");
    r.afsr1 = mrs!("afsr1_el1");
    r.far = mrs!("far_el1");
    r.mair = mrs!("mair_el1");
    r.amair = mrs!("amair_el1");
    r.vbar = mrs!("vbar_el1");
    r.contextidr = mrs!("contextidr_el1");
    r.cntkctl = mrs!("cntkctl_el1");
    r.elr = mrs!("elr_el1");
    r.spsr = mrs!("spsr_el1");
    r.csselr = mrs!("csselr_el1");
    r.tpidr_el0 = mrs!("tpidr_el0");
    r.tpidrro_el0 = mrs!("tpidrro_el0");
    r.tpidr_el1 = mrs!("tpidr_el1");
    r.sp_el0 = mrs!("sp_el0");
    r.sp_el1 = mrs!("sp_el1");
    r.par = mrs!("par_el1");
    let f = super::idregs::features();
    if f.sme() {
        r.tpidr2_el0 = mrs!("s3_3_c13_c0_5");
    }
    if f.ras() {
        r.vdisr = mrs!("s3_4_c12_c1_1");
    }
    if f.pauth() {
        save_pauth_keys(&mut r.pauth_keys);
    }
}

/// The pointer authentication keys (APIAKeyLo_EL1 .. APGAKeyHi_EL1), in El1Regs' order.
fn save_pauth_keys(k: &mut [u64; 10]) {
    k[0] = mrs!("s3_0_c2_c1_0");
    k[1] = mrs!("s3_0_c2_c1_1");
    k[2] = mrs!("s3_0_c2_c1_2");
    k[3] = mrs!("s3_0_c2_c1_3");
    k[4] = mrs!("s3_0_c2_c2_0");
    k[5] = mrs!("s3_0_c2_c2_1");
    k[6] = mrs!("s3_0_c2_c2_2");
    k[7] = mrs!("s3_0_c2_c2_3");
    k[8] = mrs!("s3_0_c2_c3_0");
    k[9] = mrs!("s3_0_c2_c3_1");
}

/// Loads the pointer authentication keys (only where FEAT_PAuth is).
pub(super) fn restore_pauth_keys(k: &[u64; 10]) {
    msr!("s3_0_c2_c1_0", k[0]);
    msr!("s3_0_c2_c1_1", k[1]);
    msr!("s3_0_c2_c1_2", k[2]);
    msr!("s3_0_c2_c1_3", k[3]);
    msr!("s3_0_c2_c2_0", k[4]);
    msr!("s3_0_c2_c2_1", k[5]);
    msr!("s3_0_c2_c2_2", k[6]);
    msr!("s3_0_c2_c2_3", k[7]);
    msr!("s3_0_c2_c3_0", k[8]);
    msr!("s3_0_c2_c3_1", k[9]);
}

fn restore_el1(r: &El1Regs) {
    msr!("sctlr_el1", r.sctlr);
    msr!("cpacr_el1", r.cpacr);
    msr!("ttbr0_el1", r.ttbr0);
    msr!("ttbr1_el1", r.ttbr1);
    msr!("tcr_el1", r.tcr);
    msr!("esr_el1", r.esr);
    msr!("afsr0_el1", r.afsr0);
    msr!("afsr1_el1", r.afsr1);
    msr!("far_el1", r.far);
    msr!("mair_el1", r.mair);
    msr!("amair_el1", r.amair);
    msr!("vbar_el1", r.vbar);
    msr!("contextidr_el1", r.contextidr);
    msr!("cntkctl_el1", r.cntkctl);
    msr!("elr_el1", r.elr);
    msr!("spsr_el1", r.spsr);
    msr!("csselr_el1", r.csselr);
    msr!("tpidr_el0", r.tpidr_el0);
    msr!("tpidrro_el0", r.tpidrro_el0);
    msr!("tpidr_el1", r.tpidr_el1);
    msr!("sp_el0", r.sp_el0);
    msr!("sp_el1", r.sp_el1);
    msr!("par_el1", r.par);
    let f = super::idregs::features();
    if f.sme() {
        msr!("s3_3_c13_c0_5", r.tpidr2_el0);
    }
    if f.ras() {
        msr!("s3_4_c12_c1_1", r.vdisr);
    }
    if f.pauth() {
        restore_pauth_keys(&r.pauth_keys);
    }
}

fn save_timers(t: &mut TimerRegs) {
    t.cntv_ctl = mrs!("cntv_ctl_el0");
    t.cntv_cval = mrs!("cntv_cval_el0");
    t.cntp_ctl = mrs!("cntp_ctl_el0");
    t.cntp_cval = mrs!("cntp_cval_el0");
    // Off while the vCPU is away, so its interrupt does not fire on the next vCPU's
    // behalf; the scheduler watches the saved deadline instead.
    msr!("cntv_ctl_el0", 0);
    msr!("cntp_ctl_el0", 0);
}

fn restore_timers(t: &TimerRegs) {
    msr!("cntv_cval_el0", t.cntv_cval);
    msr!("cntv_ctl_el0", t.cntv_ctl);
    msr!("cntp_cval_el0", t.cntp_cval);
    msr!("cntp_ctl_el0", t.cntp_ctl);
}

/// GICv3: ICH_VMCR_EL2 and the ICH_AP*R registers the CPU implements. GICv2: GICH_VMCR in
/// `vmcr` and GICH_APR in `ap0r[0]`.
fn save_gic(g: &mut GicCpuRegs) {
    if super::gic::version() == crate::hw::gic::Version::V2 {
        let (vmcr, apr) = super::vgic::v2::save_cpu_regs();
        (g.vmcr, g.ap0r[0]) = (vmcr as u64, apr as u64);
        return;
    }
    g.vmcr = mrs!("ich_vmcr_el2");
    let n = apr_count();
    g.ap0r[0] = mrs!("ich_ap0r0_el2");
    g.ap1r[0] = mrs!("ich_ap1r0_el2");
    if n >= 2 {
        g.ap0r[1] = mrs!("ich_ap0r1_el2");
        g.ap1r[1] = mrs!("ich_ap1r1_el2");
    }
    if n >= 4 {
        g.ap0r[2] = mrs!("ich_ap0r2_el2");
        g.ap1r[2] = mrs!("ich_ap1r2_el2");
        g.ap0r[3] = mrs!("ich_ap0r3_el2");
        g.ap1r[3] = mrs!("ich_ap1r3_el2");
    }
}

fn restore_gic(g: &GicCpuRegs) {
    if super::gic::version() == crate::hw::gic::Version::V2 {
        super::vgic::v2::restore_cpu_regs(g.vmcr as u32, g.ap0r[0] as u32);
        return;
    }
    msr!("ich_vmcr_el2", g.vmcr);
    let n = apr_count();
    msr!("ich_ap0r0_el2", g.ap0r[0]);
    msr!("ich_ap1r0_el2", g.ap1r[0]);
    if n >= 2 {
        msr!("ich_ap0r1_el2", g.ap0r[1]);
        msr!("ich_ap1r1_el2", g.ap1r[1]);
    }
    if n >= 4 {
        msr!("ich_ap0r2_el2", g.ap0r[2]);
        msr!("ich_ap1r2_el2", g.ap1r[2]);
        msr!("ich_ap0r3_el2", g.ap0r[3]);
        msr!("ich_ap1r3_el2", g.ap1r[3]);
    }
}

/// Saves the vCPU loaded on this pCPU into `ctx` (its list registers are not saved: the
/// vGIC model holds their state after every exit and refills them on entry).
pub fn save_context(ctx: &mut VcpuContext) {
    save_el1(&mut ctx.el1);
    // SAFETY: fp_save writes exactly one FpRegs through the pointer, which is valid and
    // exclusively borrowed; it touches only FP/SIMD registers and x1.
    unsafe { fp_save(&mut ctx.fp) };
    save_timers(&mut ctx.timer);
    save_gic(&mut ctx.gic);
    super::debug::save(&mut ctx.debug);
}

/// Loads `ctx` into this pCPU (after [`switch_guest_config`] for its VM).
pub fn restore_context(ctx: &VcpuContext) {
    restore_el1(&ctx.el1);
    // SAFETY: fp_restore reads exactly one FpRegs through the pointer, which is valid; it
    // writes only FP/SIMD registers (the guest's, which no hypervisor code uses) and x1.
    unsafe { fp_restore(&ctx.fp) };
    restore_timers(&ctx.timer);
    restore_gic(&ctx.gic);
    super::debug::restore(&ctx.debug);
    // SAFETY: a barrier only.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Puts another VM's (or vCPU's) stage 2, affinity and counter offset on this pCPU without
/// resetting anything (the vCPU's own state comes from [`restore_context`]). VMIDs keep the
/// VMs' TLB entries apart, so no invalidation is needed.
pub fn switch_guest_config(vttbr: u64, vtcr: u64, vmpidr: u64, cntvoff: u64) {
    msr!("vtcr_el2", vtcr);
    msr!("vttbr_el2", vttbr);
    msr!("vmpidr_el2", vmpidr | (1 << 31));
    msr!("cntvoff_el2", cntvoff);
    // SAFETY: a barrier only.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// HCR_EL2.TWI: trap the guest's WFI (when this pCPU has other vCPUs to run meanwhile).
pub fn set_wfi_trap(trap: bool) {
    const TWI: u64 = 1 << 13;
    let hcr = super::vcpu::hcr_guest() | if trap { TWI } else { 0 };
    msr!("hcr_el2", hcr);
    // SAFETY: a barrier only.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Arms the EL2 physical timer (CNTHP_CVAL_EL2) for counter value `at`, unmasked.
pub fn hyp_timer_arm(at: u64) {
    msr!("cnthp_cval_el2", at);
    msr!("cnthp_ctl_el2", 1);
    // SAFETY: a barrier only.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Arms the EL2 physical timer for `at` unless it is armed for sooner already.
pub fn hyp_timer_arm_by(at: u64) {
    if mrs!("cnthp_ctl_el2") & 1 == 0 || mrs!("cnthp_cval_el2") > at {
        hyp_timer_arm(at);
    }
}

/// Turns the EL2 physical timer off (its interrupt stops).
pub fn hyp_timer_cancel() {
    msr!("cnthp_ctl_el2", 0);
    // SAFETY: a barrier only.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}
