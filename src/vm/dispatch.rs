//! Exit dispatch: one exhaustive `match` on a decoded [`Exit`]; every handler returns what
//! happens next ([`Next`]), and [`advance`] is the one place the guest's PC moves past a
//! trapped instruction. Guest-caused failures become injected aborts or UNDEFINED
//! exceptions, never a hypervisor halt.
#![forbid(unsafe_code)]

use super::bus;
use super::exit::{DataAbort, Exit};
use super::instance::Vm;
use super::vcpu::{Vcpu, VcpuEnd};
use crate::arch;
use crate::hw::debug::Reg as DebugReg;
use crate::psci::{self, Outcome};
use crate::vgic;
use core::sync::atomic::Ordering;

/// What happens after an exit was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Enter the guest again where it is (its PC already points where it continues: an
    /// HVC's return address, an injected exception's vector, an interrupted instruction).
    Resume,
    /// The trapped instruction was emulated: step over it, then resume.
    Skip,
    /// The vCPU has nothing to do until an interrupt for it is pending; `skip` steps over
    /// the trapped instruction first (a WFI; a CPU_SUSPEND by HVC is past already).
    WaitForInterrupt { skip: bool },
    /// The vCPU may continue, but its pCPU has other work first (its time slice ended).
    Yield,
    /// The vCPU accessed a debug register it does not own (MDCR_EL2.TDA trapped it): it is
    /// given the debug hardware with its saved debug state, and the access runs again.
    TakeDebug,
    /// The vCPU stops (CPU_OFF) or the VM ends.
    End(VcpuEnd),
}

/// A trapped system register, by name (Arm ARM C5.3 encodings, GIC IHI 0069 12.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysReg {
    /// ICC_SGI1R_EL1, or ICC_ASGI1R_EL1 (with one security state, the same thing).
    IccSgi1r,
    /// ICC_SGI0R_EL1: Group 0 SGIs.
    IccSgi0r,
    /// ICC_SRE_EL1 (ICC_SRE_EL2.Enable = 0 traps it, where the GIC lets it).
    IccSre,
    /// An ID register of the group HCR_EL2.TID3 traps (op0 3, op1 0, CRn 0, CRm 1-7).
    IdReg { crm: u8, op2: u8 },
    /// A debug register (op0 2): MDCR_EL2.TDA traps the first access of a vCPU that does
    /// not own the debug hardware yet, TDOSA and TDRA trap theirs always.
    Debug(DebugReg),
    /// LORSA_EL1, LOREA_EL1, LORN_EL1, LORC_EL1, or LORID_EL1 (`id`) (HCR_EL2.TLOR).
    Lor { id: bool },
    /// The RAS error record registers ERRIDR_EL1, ERRSELR_EL1 and ERX*_EL1 (HCR_EL2.TERR,
    /// and FIEN = 0 for ERXPFG*); `read_only`: ERRIDR_EL1, ERXFR_EL1, ERXPFGF_EL1.
    Ras { read_only: bool },
    /// An activity monitor register, AM*_EL0 (CPTR_EL2.TAM).
    Amu,
    /// TRFCR_EL1, the trace filter controls (MDCR_EL2.TTRF).
    Trfcr,
    /// Anything else: not emulated.
    Unknown,
}

/// Names the register an MSR/MRS trap accessed.
pub fn sysreg(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> SysReg {
    match (op0, op1, crn, crm, op2) {
        (3, 0, 12, 11, 5 | 6) => SysReg::IccSgi1r,
        (3, 0, 12, 11, 7) => SysReg::IccSgi0r,
        (3, 0, 12, 12, 5) => SysReg::IccSre,
        (3, 0, 0, 1..=7, _) => SysReg::IdReg { crm, op2 },
        (3, 0, 10, 4, 0..=3) => SysReg::Lor { id: false },
        (3, 0, 10, 4, 7) => SysReg::Lor { id: true },
        (3, 0, 5, 3, 0) | (3, 0, 5, 4, 0 | 4) => SysReg::Ras { read_only: true },
        (3, 0, 5, 3..=5, _) => SysReg::Ras { read_only: false },
        (3, 3, 13, 2..=15, _) => SysReg::Amu,
        (3, 0, 1, 2, 1) => SysReg::Trfcr,
        (2, ..) => DebugReg::decode(op0, op1, crn, crm, op2).map_or(SysReg::Unknown, SysReg::Debug),
        _ => SysReg::Unknown,
    }
}

/// How a trapped access of a debug register, or of a register of a feature the ID
/// registers make optional, is answered. Pure: host-tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An access of a TDA register by a vCPU that does not own the debug hardware: it takes
    /// it over ([`Next::TakeDebug`]) and the instruction runs again, on the hardware.
    TakeDebug,
    /// OSLAR_EL1, OSLSR_EL1, OSDLR_EL1: the hardware's OS lock registers, written and read
    /// on the guest's behalf (`arch::debug_os_read`, `debug_os_write`).
    OsLock,
    /// Reads as zero, writes ignored.
    RazWi,
    /// The guest takes an UNDEFINED exception.
    Undefined,
}

/// The answer to an access (`read`, else a write) of debug register `r` on a core whose
/// ID_AA64DFR0_EL1 is `dfr0` (the guest's, which counts the hardware's breakpoints).
pub fn debug_answer(r: DebugReg, read: bool, dfr0: u64) -> Answer {
    use crate::hw::debug::{self, Trap};
    if !r.allows(read) {
        // MRS of a write-only register, MSR of a read-only one: unallocated encodings.
        return Answer::Undefined;
    }
    if let Some((n, watchpoint)) = r.point() {
        let count = if watchpoint { debug::watchpoints(dfr0) } else { debug::breakpoints(dfr0) };
        if n >= count {
            return Answer::Undefined;
        }
    }
    match (r.trap(), r) {
        (Trap::Tda, _) => Answer::TakeDebug,
        (Trap::Tdosa, DebugReg::Oslar | DebugReg::Oslsr | DebugReg::Osdlr) => Answer::OsLock,
        // DBGPRCR_EL1: RAZ/WI, as KVM has it. Its one control, CORENPDRQ, asks the power
        // controller not to power the core down, and that is the hypervisor's business (a
        // guest's power-down is PSCI's, emulated); reading 0 says the core may power down.
        // MDRAR_EL1 (TDRA): 0, no debug ROM table to find, as KVM has it.
        (Trap::Tdosa | Trap::Tdra, _) => Answer::RazWi,
    }
}

/// The answer to an access of one of the feature registers [`SysReg::Lor`], [`SysReg::Ras`],
/// [`SysReg::Amu`], [`SysReg::Trfcr`] when the guest's ID registers say `guest`; `None` for
/// any other register.
pub fn feature_answer(reg: SysReg, read: bool, guest: &crate::hw::features::Features) -> Option<Answer> {
    Some(match reg {
        // Armv8.1 makes the LORegions mandatory, with a trivial implementation allowed: no
        // regions (LORID_EL1 0) and every other register RES0, which KVM gives as RAZ/WI.
        // Without FEAT_LOR they are UNDEFINED. LORID_EL1 is read-only.
        SysReg::Lor { .. } if !guest.lor() => Answer::Undefined,
        SysReg::Lor { id: true } if !read => Answer::Undefined,
        SysReg::Lor { .. } => Answer::RazWi,
        // RAS: no error records (ERRIDR_EL1.NUM 0), so ERRSELR_EL1 selects nothing (WI) and
        // the ERX* registers read 0, as KVM has them; UNDEFINED without FEAT_RAS.
        SysReg::Ras { .. } if !guest.ras() => Answer::Undefined,
        SysReg::Ras { read_only: true } if !read => Answer::Undefined,
        SysReg::Ras { .. } => Answer::RazWi,
        // The activity monitors and the trace filter controls are hidden in the ID
        // registers (AMU, TraceFilt): UNDEFINED, as KVM's undef_access.
        SysReg::Amu | SysReg::Trfcr => Answer::Undefined,
        _ => return None,
    })
}

use crate::hw::el2::pstate;
use crate::hw::esr::{ec, fsc, syndrome};

/// ESR ISS.WnR of a data abort: the access was a write.
const WNR: u64 = 1 << 6;

/// Handles one exit of `vcpu`.
pub fn handle(vm: &Vm, vcpu: &mut Vcpu, exit: Exit) -> Next {
    match exit {
        Exit::Irq => interrupt(vm, vcpu),
        Exit::Fiq => Next::Resume,
        // HVC's return address is already past it.
        Exit::Hvc { .. } => call(vm, vcpu),
        // A trapped SMC has not executed: answered like HVC, then stepped over.
        Exit::Smc { .. } => match call(vm, vcpu) {
            Next::Resume => Next::Skip,
            Next::WaitForInterrupt { .. } => Next::WaitForInterrupt { skip: true },
            other => other,
        },
        // A trapped WFI (HCR_EL2.TWI, set while the pCPU has other vCPUs to run): the vCPU
        // waits. WFE is not trapped; if it were, it may complete at once.
        Exit::Wfx { wfe: false } => Next::WaitForInterrupt { skip: true },
        Exit::Wfx { wfe: true } => Next::Skip,
        // Cache maintenance by VA of an address stage 2 does not map as RAM (an emulated
        // device's registers, or nothing): there is no cached copy of it to maintain, so it
        // completes and does nothing, as KVM answers it (on hardware, maintenance of a
        // Device address does not fault). Before the MMIO arms: it is not an access.
        Exit::DataAbort(DataAbort { cache_maintenance: true, s1ptw: false, .. }) => Next::Skip,
        Exit::DataAbort(DataAbort { ipa, access: Some(a), write, s1ptw: false, .. })
            if bus::mmio(vm, vcpu, ipa.0, &a, write) =>
        {
            Next::Skip
        }
        Exit::DataAbort(DataAbort { ipa, access: None, s1ptw: false, .. })
            if bus::decode_and_emulate(vm, vcpu, ipa.0) =>
        {
            Next::Skip
        }
        Exit::DataAbort(d) => {
            // Outside guest RAM and every device, an access neither the syndrome nor the
            // instruction describes, or the guest's page tables outside its RAM (S1PTW): a
            // bus error for the guest.
            rate_limited_warn(vm, "data abort", d.ipa.0);
            let wnr = if d.write { WNR } else { 0 };
            inject_external_abort(vcpu, ec::DATA_ABORT_LOWER, ec::DATA_ABORT_SAME_EL, wnr, d.va);
            Next::Resume
        }
        Exit::InstructionAbort { ipa, va } => {
            rate_limited_warn(vm, "instruction abort", ipa.0);
            inject_external_abort(vcpu, ec::INSN_ABORT_LOWER, ec::INSN_ABORT_SAME_EL, 0, va);
            Next::Resume
        }
        Exit::SysReg { op0, op1, crn, crm, op2, reg, read } => {
            system_register(vm, vcpu, sysreg(op0, op1, crn, crm, op2), reg, read)
        }
        Exit::Other { .. } => undefined(vm, vcpu),
        Exit::SError { esr } => {
            log::error!("VM '{}' vCPU {}: SError (ESR {esr:#x}); stopping the VM", vm.name, vcpu.index);
            Next::End(VcpuEnd::Failed(esr))
        }
    }
}

/// Applies `next` to the vCPU's PC: the one place a trapped instruction is stepped over.
///
/// An instruction stepped over has completed, so PSTATE moves on as after any instruction
/// that is not a branch: BTYPE becomes 0, and a software step in progress (MDSCR_EL1.SS
/// with PSTATE.SS = 1, active-not-pending) has stepped it, so PSTATE.SS becomes 0 and the
/// guest takes its step exception before the next instruction, not after it (Arm ARM D2.12,
/// "Software Step exceptions"; KVM's `kvm_skip_instr`). A trap that resumes at the same
/// instruction (an injected exception, an access to run again) leaves both alone.
pub fn advance(vcpu: &mut Vcpu, next: Next) {
    if matches!(next, Next::Skip | Next::WaitForInterrupt { skip: true }) {
        vcpu.regs.pc = vcpu.regs.pc.wrapping_add(4);
        vcpu.regs.pstate &= !(pstate::SS | pstate::BTYPE);
    }
}

/// A physical interrupt made the guest exit: handle it; the timer PPIs belong to the vCPU
/// loaded on this pCPU. The EL2 timer ends its time slice, and a message for this pCPU
/// (a vCPU to run) makes it yield too.
fn interrupt(vm: &Vm, vcpu: &mut Vcpu) -> Next {
    let events = crate::irq::handle();
    super::timer::fired(vm, vcpu, events);
    if vm.ended.load(Ordering::Acquire) {
        Next::End(vm.end_reason.lock().unwrap_or(VcpuEnd::SystemOff))
    } else if events.hyp_timer || events.messages {
        Next::Yield
    } else {
        Next::Resume
    }
}

fn system_register(vm: &Vm, vcpu: &mut Vcpu, reg: SysReg, rt: u8, read: bool) -> Next {
    let value = if rt == 31 { 0 } else { vcpu.regs.x[rt as usize] };
    let result = match (reg, read) {
        // A vGICv2 has no system-register interface: ICC_* is UNDEFINED, as on a GICv2.
        (SysReg::IccSgi1r | SysReg::IccSgi0r | SysReg::IccSre, _) if vm.gic == vgic::Version::V2 => {
            return undefined(vm, vcpu);
        }
        (SysReg::IccSgi1r, false) => {
            let (sgi, targets) = vgic::sgi_targets(&vm.mpidrs, vcpu.index, value);
            super::bus::send_sgis(vm, vcpu.index, sgi, targets);
            None
        }
        // Group 0 SGIs: the VM has only Group 1. Ignored.
        (SysReg::IccSgi0r, false) => None,
        // An ID register (HCR_EL2.TID3): the hardware's value minus what we hide.
        (SysReg::IdReg { crm, op2 }, true) => {
            let hw = arch::read_id_reg(crm, op2);
            Some(super::idregs::sanitize(super::idregs::IdReg { crm, op2 }, hw, vm.gic))
        }
        // ICC_SRE_EL1: system registers on, IRQ and FIQ bypass off (SRE, DFB, DIB), which a
        // guest cannot change: KVM's vgic_sre for a GICv3 guest, and QEMU's constant.
        (SysReg::IccSre, true) => Some(0b111),
        (SysReg::IccSre, false) => None,
        (SysReg::Debug(r), _) => match debug_answer(r, read, arch::read_id_reg(5, 0)) {
            Answer::TakeDebug if !arch::debug_owned() => return Next::TakeDebug,
            // The hardware trapped a vCPU that owns the debug registers: not a state the
            // architecture has; the guest gets an UNDEFINED rather than a retry for ever.
            Answer::TakeDebug | Answer::Undefined => return undefined(vm, vcpu),
            Answer::OsLock if read => Some(arch::debug_os_read(r)),
            Answer::OsLock => {
                arch::debug_os_write(r, value);
                None
            }
            Answer::RazWi => read.then_some(0),
        },
        (SysReg::Lor { .. } | SysReg::Ras { .. } | SysReg::Amu | SysReg::Trfcr, _) => {
            match feature_answer(reg, read, &super::idregs::guest_features(vm.gic)) {
                Some(Answer::RazWi) => read.then_some(0),
                _ => return undefined(vm, vcpu),
            }
        }
        _ => return undefined(vm, vcpu),
    };
    if let Some(v) = result
        && rt != 31
    {
        vcpu.regs.x[rt as usize] = v;
    }
    Next::Skip
}

fn undefined(vm: &Vm, vcpu: &mut Vcpu) -> Next {
    rate_limited_warn(vm, "undefined instruction", vcpu.regs.pc);
    super::inject::inject_sync(&mut vcpu.regs, syndrome(ec::UNKNOWN, 0), None);
    Next::Resume
}

/// Injects a synchronous external abort at `va` into the guest: exception class
/// `same_el` if it was at EL1, `lower` if at EL0; `iss` adds to the fault status (WnR for
/// data).
fn inject_external_abort(vcpu: &mut Vcpu, lower: u64, same_el: u64, iss: u64, va: u64) {
    let from_el0 = vcpu.regs.pstate & pstate::M == pstate::EL0T;
    let class = if from_el0 { lower } else { same_el };
    super::inject::inject_sync(&mut vcpu.regs, syndrome(class, iss | fsc::SEA), Some(va));
}

fn rate_limited_warn(vm: &Vm, what: &str, addr: u64) {
    use super::loglimit::{Suppressed, Verdict};
    if let Verdict::Print { suppressed } = vm.logs.guest_fault.check(arch::counter()) {
        log::warn!("VM '{}': {what} at {addr:#x}: injected into the guest{}", vm.name, Suppressed(suppressed));
    }
}

/// An SMCCC call (HVC, or a trapped SMC): PSCI, the test ABI, or NOT_SUPPORTED.
fn call(vm: &Vm, vcpu: &mut Vcpu) -> Next {
    let fid = vcpu.regs.x[0] as u32;
    let args = [vcpu.regs.x[1], vcpu.regs.x[2], vcpu.regs.x[3]];
    let ram = vm.ram_ipa();
    let valid_entry = |a: u64| ram.contains(a);
    let outcome = {
        let mut power = vm.power.lock();
        let mut m = psci::Machine { mpidrs: &vm.mpidrs, states: &mut power, valid_entry: &valid_entry };
        psci::call(&mut m, vcpu.index, fid, args)
    };
    let ret = match outcome {
        Some(Outcome::Return(v)) => v,
        Some(Outcome::SystemOff) => return Next::End(VcpuEnd::SystemOff),
        Some(Outcome::SystemReset) => return Next::End(VcpuEnd::SystemReset),
        Some(Outcome::CpuOff) => return Next::End(VcpuEnd::CpuOff),
        Some(Outcome::Suspend) => {
            // Standby: return SUCCESS once an interrupt for the vCPU is pending, like WFI.
            vcpu.regs.x[0] = psci::SUCCESS as u64;
            return Next::WaitForInterrupt { skip: false };
        }
        Some(Outcome::SuspendPowerDown { entry, context }) => {
            // Power down: the wake-up is a warm boot at `entry`, in the state CPU_ON gives (EL1h,
            // DAIF masked, MMU and caches off, x0 = context id; PSCI "CPU_SUSPEND" and
            // "Initial core configuration"). KVM treats this as standby, which PSCI allows;
            // resuming at the entry point is what a firmware does, and what a guest that
            // checks it expects.
            vcpu.regs = arch::GuestRegs { pc: entry, pstate: pstate::EL1H | pstate::DAIF, ..Default::default() };
            vcpu.regs.x[0] = context;
            arch::el1_warm_boot();
            return Next::WaitForInterrupt { skip: false };
        }
        Some(Outcome::CpuOn { target, .. }) => {
            // The target's pCPU (the placement's) finds it OnPending when kicked.
            vm.kick_pcpu_of(target);
            psci::SUCCESS
        }
        None if cfg!(feature = "selftest") && fid == super::test_abi::REPORT => {
            if vm.reports.lock().push((args[0], args[1])).is_err() {
                log::warn!("VM '{}': report buffer full", vm.name);
            }
            psci::SUCCESS
        }
        None => psci::NOT_SUPPORTED,
    };
    vcpu.regs.x[0] = ret as u64;
    Next::Resume
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_registers_by_name() {
        assert_eq!(sysreg(3, 0, 12, 11, 5), SysReg::IccSgi1r, "ICC_SGI1R_EL1");
        assert_eq!(sysreg(3, 0, 12, 11, 6), SysReg::IccSgi1r, "ICC_ASGI1R_EL1");
        assert_eq!(sysreg(3, 0, 12, 11, 7), SysReg::IccSgi0r, "ICC_SGI0R_EL1");
        assert_eq!(sysreg(3, 2, 12, 11, 7), SysReg::Unknown, "op1 2: nothing");
        assert_eq!(sysreg(3, 0, 0, 4, 0), SysReg::IdReg { crm: 4, op2: 0 }, "ID_AA64PFR0_EL1");
        assert_eq!(sysreg(3, 0, 0, 0, 5), SysReg::Unknown, "MPIDR_EL1 is not trapped as an ID register");
        assert_eq!(sysreg(2, 0, 0, 2, 2), SysReg::Debug(DebugReg::Mdscr), "MDSCR_EL1");
        assert_eq!(sysreg(2, 0, 0, 5, 4), SysReg::Debug(DebugReg::Bvr(5)), "DBGBVR5_EL1");
        assert_eq!(sysreg(2, 0, 1, 0, 4), SysReg::Debug(DebugReg::Oslar), "OSLAR_EL1");
        assert_eq!(sysreg(2, 1, 0, 0, 0), SysReg::Unknown, "a trace unit register (CPTR_EL2.TTA)");
        assert_eq!(sysreg(3, 3, 9, 12, 0), SysReg::Unknown, "PMCR_EL0");
        assert_eq!(sysreg(3, 0, 12, 12, 5), SysReg::IccSre, "ICC_SRE_EL1");
        assert_eq!(sysreg(3, 0, 10, 4, 0), SysReg::Lor { id: false }, "LORSA_EL1");
        assert_eq!(sysreg(3, 0, 10, 4, 3), SysReg::Lor { id: false }, "LORC_EL1");
        assert_eq!(sysreg(3, 0, 10, 4, 7), SysReg::Lor { id: true }, "LORID_EL1");
        assert_eq!(sysreg(3, 0, 10, 4, 4), SysReg::Unknown, "MPAMIDR_EL1 is not a LOR register");
        assert_eq!(sysreg(3, 0, 5, 3, 0), SysReg::Ras { read_only: true }, "ERRIDR_EL1");
        assert_eq!(sysreg(3, 0, 5, 3, 1), SysReg::Ras { read_only: false }, "ERRSELR_EL1");
        assert_eq!(sysreg(3, 0, 5, 4, 0), SysReg::Ras { read_only: true }, "ERXFR_EL1");
        assert_eq!(sysreg(3, 0, 5, 4, 2), SysReg::Ras { read_only: false }, "ERXSTATUS_EL1");
        assert_eq!(sysreg(3, 0, 5, 4, 4), SysReg::Ras { read_only: true }, "ERXPFGF_EL1");
        assert_eq!(sysreg(3, 0, 5, 5, 1), SysReg::Ras { read_only: false }, "ERXMISC1_EL1");
        assert_eq!(sysreg(3, 0, 5, 2, 0), SysReg::Unknown, "ESR_EL1 is not a RAS register");
        assert_eq!(sysreg(3, 3, 13, 2, 0), SysReg::Amu, "AMCR_EL0");
        assert_eq!(sysreg(3, 3, 13, 2, 5), SysReg::Amu, "AMCNTENSET0_EL0");
        assert_eq!(sysreg(3, 3, 13, 15, 7), SysReg::Amu, "AMEVTYPER1<15>_EL0");
        assert_eq!(sysreg(3, 3, 13, 0, 2), SysReg::Unknown, "TPIDR_EL0 is not an AMU register");
        assert_eq!(sysreg(3, 0, 1, 2, 1), SysReg::Trfcr, "TRFCR_EL1");
    }

    #[test]
    fn debug_registers_are_taken_over_or_answered() {
        // A Cortex-A53: 6 breakpoints, 4 watchpoints.
        let dfr0 = 0x1030_5006;
        for r in [DebugReg::Mdscr, DebugReg::Bvr(5), DebugReg::Wcr(3), DebugReg::ClaimSet, DebugReg::Dbgdtr] {
            assert_eq!(debug_answer(r, true, dfr0), Answer::TakeDebug, "{r:?} read");
            assert_eq!(debug_answer(r, false, dfr0), Answer::TakeDebug, "{r:?} write");
        }
        assert_eq!(debug_answer(DebugReg::Bcr(6), true, dfr0), Answer::Undefined, "breakpoint 6 is not there");
        assert_eq!(debug_answer(DebugReg::Wvr(4), false, dfr0), Answer::Undefined, "watchpoint 4 is not there");
        assert_eq!(debug_answer(DebugReg::Oslar, false, dfr0), Answer::OsLock);
        assert_eq!(debug_answer(DebugReg::Oslar, true, dfr0), Answer::Undefined, "OSLAR_EL1 is write-only");
        assert_eq!(debug_answer(DebugReg::Oslsr, true, dfr0), Answer::OsLock);
        assert_eq!(debug_answer(DebugReg::Oslsr, false, dfr0), Answer::Undefined, "OSLSR_EL1 is read-only");
        assert_eq!(debug_answer(DebugReg::Osdlr, false, dfr0), Answer::OsLock);
        assert_eq!(debug_answer(DebugReg::Osdlr, true, dfr0), Answer::OsLock);
        assert_eq!(debug_answer(DebugReg::Dbgprcr, true, dfr0), Answer::RazWi);
        assert_eq!(debug_answer(DebugReg::Dbgprcr, false, dfr0), Answer::RazWi);
        assert_eq!(debug_answer(DebugReg::Mdrar, true, dfr0), Answer::RazWi);
        assert_eq!(debug_answer(DebugReg::Mdrar, false, dfr0), Answer::Undefined, "MDRAR_EL1 is read-only");
        assert_eq!(debug_answer(DebugReg::Mdccsr, false, dfr0), Answer::Undefined, "MDCCSR_EL0 is read-only");
    }

    #[test]
    fn optional_feature_registers_answer_as_kvm() {
        use crate::hw::features::Features;
        let none = Features::default();
        let all = Features::ALL;
        let lor = SysReg::Lor { id: false };
        let lorid = SysReg::Lor { id: true };
        let errselr = SysReg::Ras { read_only: false };
        let erridr = SysReg::Ras { read_only: true };
        for read in [true, false] {
            assert_eq!(feature_answer(lor, read, &none), Some(Answer::Undefined), "no FEAT_LOR");
            assert_eq!(feature_answer(lor, read, &all), Some(Answer::RazWi), "a trivial LORegion implementation");
            assert_eq!(feature_answer(errselr, read, &none), Some(Answer::Undefined), "no FEAT_RAS");
            assert_eq!(feature_answer(errselr, read, &all), Some(Answer::RazWi), "ERRSELR_EL1: WI");
            for f in [none, all] {
                assert_eq!(feature_answer(SysReg::Amu, read, &f), Some(Answer::Undefined), "AMU hidden");
                assert_eq!(feature_answer(SysReg::Trfcr, read, &f), Some(Answer::Undefined), "TRF hidden");
            }
        }
        assert_eq!(feature_answer(lorid, true, &all), Some(Answer::RazWi), "LORID_EL1: no LORegions");
        assert_eq!(feature_answer(lorid, false, &all), Some(Answer::Undefined), "LORID_EL1 is read-only");
        assert_eq!(feature_answer(erridr, true, &all), Some(Answer::RazWi), "ERRIDR_EL1: no error records");
        assert_eq!(feature_answer(erridr, false, &all), Some(Answer::Undefined), "ERRIDR_EL1 is read-only");
        assert_eq!(feature_answer(SysReg::IccSre, true, &all), None);
    }

    #[test]
    fn a_skipped_instruction_completes_a_step_and_clears_btype() {
        let stepping = pstate::EL1H | pstate::SS | pstate::BTYPE;
        for next in [Next::Skip, Next::WaitForInterrupt { skip: true }] {
            let mut v = Vcpu::new(0, 0x1000, 0);
            v.regs.pstate = stepping;
            advance(&mut v, next);
            assert_eq!((v.regs.pc, v.regs.pstate), (0x1004, pstate::EL1H), "{next:?}: stepped over, SS and BTYPE 0");
        }
        for next in [Next::Resume, Next::WaitForInterrupt { skip: false }, Next::Yield, Next::TakeDebug] {
            let mut v = Vcpu::new(0, 0x1000, 0);
            v.regs.pstate = stepping;
            advance(&mut v, next);
            assert_eq!((v.regs.pc, v.regs.pstate), (0x1000, stepping), "{next:?}: the same instruction, SS kept");
        }
    }
}
