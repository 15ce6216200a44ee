//! A VM on the machine: guest RAM, its stage-2 tables, vCPU power states; and `run_vcpu`,
//! the loop each pCPU runs for its vCPU: enter, read the exit once, decode, handle, resume.

use super::exit::{self, Exit};
use super::{MAX_VCPUS, VmConfig};
use crate::arch::aarch64::mmu::{self, FrameTables, OwnedRam};
use crate::arch::aarch64::vcpu::{self, GuestRegs};
use crate::mm::pagetable::{MapError, PageTable, s2};
use crate::mm::range::Range;
use crate::psci::{self, Outcome, PowerState};
use crate::sync::IrqLock;
use crate::util::FixedVec;
use core::sync::atomic::{AtomicU8, Ordering};

/// VMIDs handed out so far (VMID 0 is never used for a guest).
static NEXT_VMID: AtomicU8 = AtomicU8::new(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmError {
    NoRam,
    ImageTooLarge,
    BadConfig(&'static str),
    Stage2(MapError),
    /// The machine's physical address range is below the 40 bits this build's stage-2 needs.
    PaRangeTooSmall(u32),
}

pub struct Vm {
    pub name: &'static str,
    pub vmid: u8,
    pub config: VmConfig,
    ram: OwnedRam,
    tables: FrameTables,
    stage2: PageTable,
    vtcr: u64,
    /// Each vCPU's MPIDR as the guest sees it (Aff0 = vCPU index).
    pub mpidrs: FixedVec<u64, MAX_VCPUS>,
    /// vCPU power states (lock `Vm::power`, a leaf).
    pub power: IrqLock<FixedVec<PowerState, MAX_VCPUS>>,
    /// Test-ABI reports (lock `Vm::reports`, a leaf).
    pub reports: IrqLock<FixedVec<(u64, u64), 64>>,
}

impl Vm {
    pub fn new(config: VmConfig) -> Result<Self, VmError> {
        // Starting secondary vCPUs on other pCPUs comes with multi-vCPU VMs; until then a
        // VM has exactly one vCPU and PSCI CPU_ON can only name the caller (ALREADY_ON).
        if config.vcpu_count != 1 {
            return Err(VmError::BadConfig("exactly one vCPU per VM in this version"));
        }
        if !config.ram_base.0.is_multiple_of(2 << 20) || config.ram_size == 0 {
            return Err(VmError::BadConfig("RAM base must be 2 MiB aligned and RAM non-empty"));
        }
        let mut ram = OwnedRam::take(config.ram_size).ok_or(VmError::NoRam)?;
        ram.load(0, config.image).ok_or(VmError::ImageTooLarge)?;
        let (pa_bits, ps) = mmu::pa_range();
        let ipa_bits = pa_bits.min(48);
        let vtcr = s2::vtcr(ipa_bits, ps).ok_or(VmError::PaRangeTooSmall(pa_bits))?;
        let mut tables = FrameTables::default();
        let mut stage2 = PageTable::new(&mut tables).map_err(VmError::Stage2)?;
        let r = ram.range();
        stage2.map(&mut tables, config.ram_base.0, r.start, r.size(), s2::RAM).map_err(VmError::Stage2)?;
        let mut mpidrs = FixedVec::new();
        let mut power = FixedVec::new();
        for i in 0..config.vcpu_count {
            let _ = mpidrs.push(i as u64);
            let _ = power.push(if i == 0 { PowerState::On } else { PowerState::Off });
        }
        let vmid = NEXT_VMID.fetch_add(1, Ordering::Relaxed).max(1);
        log::info!(
            "VM '{}' (VMID {vmid}): {} vCPUs, RAM {:#x}+{:#x} at PA {:?}",
            config.name,
            config.vcpu_count,
            config.ram_base.0,
            config.ram_size,
            r
        );
        Ok(Self {
            name: config.name,
            vmid,
            config,
            ram,
            tables,
            stage2,
            vtcr,
            mpidrs,
            power: IrqLock::new(power),
            reports: IrqLock::new(FixedVec::new()),
        })
    }

    fn vttbr(&self) -> u64 {
        self.stage2.root().0 | ((self.vmid as u64) << 48)
    }

    /// The guest RAM's intermediate physical address range.
    pub fn ram_ipa(&self) -> Range {
        Range { start: self.config.ram_base.0, end: self.config.ram_base.0 + self.config.ram_size }
    }

    /// A 64-bit word of guest RAM at guest physical address `ipa`.
    pub fn read_guest_u64(&self, ipa: u64) -> Option<u64> {
        self.ram.read_u64(ipa.checked_sub(self.config.ram_base.0)?)
    }

    /// The stage-2 walk for `ipa` (tests: what the guest can reach).
    pub fn translate(&self, ipa: u64) -> Option<u64> {
        self.stage2.translate(&self.tables, ipa).map(|(pa, _)| pa)
    }
}

/// One vCPU: owned by the pCPU that runs it.
pub struct Vcpu {
    pub index: usize,
    pub regs: GuestRegs,
}

impl Vcpu {
    /// vCPU `index` about to start at `entry` with x0 = `arg`, at EL1h with interrupts
    /// masked and its MMU off (the arm64 boot protocol's state).
    pub fn new(index: usize, entry: u64, arg: u64) -> Self {
        let mut regs = GuestRegs::default();
        regs.pc = entry;
        regs.x[0] = arg;
        regs.pstate = 0x3c5;
        Self { index, regs }
    }
}

/// Why a vCPU's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuEnd {
    SystemOff,
    SystemReset,
    CpuOff,
    /// The guest did something that stops the VM (an SError).
    Failed(u64),
}

/// What to do after handling an exit.
enum Next {
    Resume,
    End(VcpuEnd),
}

/// ESR_EL1 values for injected exceptions: IL = 1 (32-bit instruction).
const ESR_IL: u64 = 1 << 25;
/// Fault status "synchronous external abort, not on a translation table walk".
const FSC_SEA: u64 = 0x10;

/// Runs `vcpu` of `vm` on this pCPU until it powers off or the VM ends. IRQs stay masked in
/// the loop: a physical interrupt makes the guest exit and is handled here.
pub fn run_vcpu(vm: &Vm, vcpu: &mut Vcpu) -> VcpuEnd {
    vcpu::load_guest_config(vm.vttbr(), vm.vtcr, vm.mpidrs[vcpu.index]);
    let end = loop {
        let s = vcpu::enter(&mut vcpu.regs);
        let next = match exit::decode(s.vector, s.esr, s.far, s.hpfar) {
            Exit::Irq => {
                crate::irq::handle();
                Next::Resume
            }
            Exit::Fiq => Next::Resume,
            Exit::Hvc { .. } => handle_call(vm, vcpu),
            Exit::Smc { .. } => {
                // A trapped SMC has not executed: step over it, then answer like HVC.
                vcpu.regs.pc += 4;
                handle_call(vm, vcpu)
            }
            Exit::Wfx { .. } => {
                vcpu.regs.pc += 4;
                Next::Resume
            }
            Exit::DataAbort(d) => {
                // No emulated devices yet: anything outside guest RAM is a bus error.
                rate_limited_warn(vm, "data abort", d.ipa.0);
                let from_el0 = vcpu.regs.pstate & 0b1111 == 0;
                let ec = if from_el0 { 0x24 } else { vcpu::EC_DATA_ABORT_SAME_EL };
                let wnr = if d.write { 1 << 6 } else { 0 };
                vcpu::inject_sync(&mut vcpu.regs, (ec << 26) | ESR_IL | wnr | FSC_SEA, Some(d.va));
                Next::Resume
            }
            Exit::InstructionAbort { ipa, va } => {
                rate_limited_warn(vm, "instruction abort", ipa.0);
                let from_el0 = vcpu.regs.pstate & 0b1111 == 0;
                let ec = if from_el0 { 0x20 } else { vcpu::EC_INSN_ABORT_SAME_EL };
                vcpu::inject_sync(&mut vcpu.regs, (ec << 26) | ESR_IL | FSC_SEA, Some(va));
                Next::Resume
            }
            Exit::SysReg { .. } | Exit::Other { .. } => {
                rate_limited_warn(vm, "undefined instruction", vcpu.regs.pc);
                vcpu::inject_sync(&mut vcpu.regs, (vcpu::EC_UNKNOWN << 26) | ESR_IL, None);
                Next::Resume
            }
            Exit::SError { esr } => {
                log::error!("VM '{}' vCPU {}: SError (ESR {esr:#x}); stopping the VM", vm.name, vcpu.index);
                Next::End(VcpuEnd::Failed(esr))
            }
        };
        if let Next::End(end) = next {
            break end;
        }
    };
    vcpu::unload_guest_config();
    end
}

fn rate_limited_warn(vm: &Vm, what: &str, addr: u64) {
    static COUNT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    if COUNT.fetch_add(1, Ordering::Relaxed) < 32 {
        log::warn!("VM '{}': {what} at {addr:#x}: injected into the guest", vm.name);
    }
}

/// An SMCCC call (HVC, or SMC already stepped over): PSCI, the test ABI, or NOT_SUPPORTED.
fn handle_call(vm: &Vm, vcpu: &mut Vcpu) -> Next {
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
        Some(Outcome::Suspend) => psci::SUCCESS,
        Some(Outcome::CpuOn { target, .. }) => {
            // Unreachable while VMs have one vCPU (Vm::new); refuse rather than pretend.
            if let Some(s) = vm.power.lock().get_mut(target) {
                *s = PowerState::Off;
            }
            psci::DENIED
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
