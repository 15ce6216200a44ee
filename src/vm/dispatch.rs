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
    /// An ID register of the group HCR_EL2.TID3 traps (op0 3, op1 0, CRn 0, CRm 1-7).
    IdReg { crm: u8, op2: u8 },
    /// A debug or OS-lock register (op0 2, trapped by MDCR_EL2.TDA/TDOSA/TDRA).
    Debug,
    /// Anything else: not emulated.
    Unknown,
}

/// Names the register an MSR/MRS trap accessed.
pub fn sysreg(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> SysReg {
    match (op0, op1, crn, crm, op2) {
        (3, 0 | 1, 12, 11, 5 | 6) => SysReg::IccSgi1r,
        (3, 2, 12, 11, 7) => SysReg::IccSgi0r,
        (3, 0, 0, 1..=7, _) => SysReg::IdReg { crm, op2 },
        (2, ..) => SysReg::Debug,
        _ => SysReg::Unknown,
    }
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
        (SysReg::IccSgi1r | SysReg::IccSgi0r, _) if vm.gic == vgic::Version::V2 => return undefined(vm, vcpu),
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
        // Debug and OS-lock registers: RAZ/WI, so a guest sees debug hardware with nothing
        // armed and cannot arm any.
        (SysReg::Debug, true) => Some(0),
        (SysReg::Debug, false) => None,
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
        assert_eq!(sysreg(3, 1, 12, 11, 6), SysReg::IccSgi1r, "ICC_ASGI1R_EL1");
        assert_eq!(sysreg(3, 2, 12, 11, 7), SysReg::IccSgi0r, "ICC_SGI0R_EL1");
        assert_eq!(sysreg(3, 0, 0, 4, 0), SysReg::IdReg { crm: 4, op2: 0 }, "ID_AA64PFR0_EL1");
        assert_eq!(sysreg(3, 0, 0, 0, 5), SysReg::Unknown, "MPIDR_EL1 is not trapped as an ID register");
        assert_eq!(sysreg(2, 0, 0, 2, 2), SysReg::Debug, "MDSCR_EL1");
        assert_eq!(sysreg(3, 3, 9, 12, 0), SysReg::Unknown, "PMCR_EL0");
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
        for next in [Next::Resume, Next::WaitForInterrupt { skip: false }, Next::Yield] {
            let mut v = Vcpu::new(0, 0x1000, 0);
            v.regs.pstate = stepping;
            advance(&mut v, next);
            assert_eq!((v.regs.pc, v.regs.pstate), (0x1000, stepping), "{next:?}: the same instruction, SS kept");
        }
    }
}
