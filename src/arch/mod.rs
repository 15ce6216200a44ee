//! The arch interface: the one door from portable code to the CPU, the physical GIC, the
//! timers, physical memory, the MMU and guest entry.
//!
//! A module chosen at compile time, not a trait object: on the bare-metal target it is
//! [`aarch64`] (system registers, MMIO, assembly), everywhere else [`fake`], a deliberately
//! simple stand-in that host `cargo test` runs the portable code over (Hafnium's
//! `src/arch/fake`). Both provide the names re-exported below; portable code names only
//! these, so whatever compiles against the fake compiles against the hardware.
//!
//! Types both implementations share (the guest's general registers, one exit's syndrome,
//! the IRQ-masking lock) are defined here, once. Nothing under `src/arch` imports from the
//! layers above it: the hardware definitions and the console UARTs' register-level drivers
//! (`crate::hw`) and plain portable types (`crate::ids`,
//! `crate::mm::{addr, range, pagetable, guest_ram}`, `crate::util`, `crate::platform`
//! descriptions) only. The exception vectors reach the core through one
//! entry point, the IRQ handler installed with [`set_irq_handler`].

pub mod lock;
pub mod pool;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod aarch64;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
use aarch64 as imp;

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
pub mod fake;
#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
use fake as imp;

pub use lock::{IrqGuard, IrqLock};

/// Switching a pCPU between vCPUs: their saved context, the VM's registers, WFI trapping,
/// and the EL2 physical timer (CNTHP) that ends a time slice and wakes an idle pCPU for a
/// descheduled vCPU's timer.
pub use imp::context::{
    hyp_timer_arm, hyp_timer_arm_by, hyp_timer_cancel, restore_context, save_context, set_wfi_trap, switch_guest_config,
};
/// The guest's EL1 timers: their outputs, which the vGIC follows as levels.
pub use imp::cpu::timer_outputs;
/// The generic counter (CNTPCT_EL0) and its frequency.
pub use imp::cpu::{counter, counter_frequency, ticks_from_us};
/// This pCPU: its index (`TPIDR_EL2`), affinity, interrupt mask, idling and stopping.
pub use imp::cpu::{cpu_index, halt, irq_enable, irq_restore, irq_save, mpidr, set_cpu_index, wfi};
/// ID registers (for the trapped-ID-register emulation) and features the core asks about.
pub use imp::cpu::{has_pan, read_id_reg};
/// The debug hardware of the vCPU loaded on this pCPU: whether it owns it, taking it over
/// when it touches a debug register, and the OS lock registers written on its behalf.
pub use imp::debug::{debug_os_read, debug_os_write, debug_owned, debug_take};
/// The firmware: powering the machine off or resetting it.
pub use imp::firmware::{exit_failure, system_off, system_reset};
/// The physical GIC as the hypervisor uses it: the kick SGI, acknowledge and EOI.
pub use imp::gic::{SGI_KICK, irq_ack, irq_eoi, irq_eoi_to_guest, irq_pending, send_kick, set_private_active};
/// The board's GIC version (every guest sees the same), and on a GICv2 the physical address
/// of the 8 KiB virtual CPU interface (GICV) that stage 2 maps at a guest's GICC.
pub use imp::gic::{guest_cpu_interface, version as gic_version};
/// Stage 2: the machine's physical address range and TLB invalidation.
pub use imp::mmu::{invalidate_ipa, pa_range};
/// Physical memory the hypervisor hands to guests: the pools and the ownership types.
pub use imp::phys::{FrameTables, ModulePages, OwnedRam, RegisterPage, ram_bytes, take_disk, take_kernel_pages};
/// The physical console UART (a PL011, 16550 or Cadence UART, as the DTB says) and the
/// unlocked writer for early and panic messages.
pub use imp::uart::{Uart, early_print};
/// Entering a guest and the EL1 state an injected exception needs.
pub use imp::vcpu::{
    el1_vector_state, el1_warm_boot, enter, guest_va_to_pa, load_guest_config, set_el1_exception, unload_guest_config,
};
/// The virtual GIC CPU interface: list registers in and out.
pub use imp::vgic::{Loaded, answer_maintenance, lr_count, lrs_disable, lrs_load, lrs_reset, lrs_save};
pub use pool::{alloc_frames, free_frames, init_frames, init_guest_ram, largest_guest_ram, stage2_table_bytes};

/// A guest's general registers, PC and PSTATE, as guest entry loads them and the exit path
/// saves them (the assembly on the target checks this layout with `offset_of!`).
#[repr(C)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestRegs {
    pub x: [u64; 31],
    pub pc: u64,
    pub pstate: u64,
    pub _pad: u64,
}

const _: () = assert!(core::mem::size_of::<GuestRegs>() == 272);
const _: () = assert!(core::mem::offset_of!(GuestRegs, pc) == 248 && core::mem::offset_of!(GuestRegs, pstate) == 256);

/// The EL1 system registers a vCPU owns (Arm ARM D19.2), saved when its pCPU switches to
/// another vCPU (Hafnium's `arch_regs.lazy`). Registers the guest cannot reach (trapped
/// and emulated, or hidden) are not here: ACTLR (HCR_EL2.TACR), the PMU, SVE/SME state,
/// the LORegion and RAS error record registers (HCR_EL2.TLOR, TERR). The debug registers
/// are in [`DebugRegs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct El1Regs {
    pub sctlr: u64,
    pub cpacr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub tcr: u64,
    pub esr: u64,
    pub afsr0: u64,
    pub afsr1: u64,
    pub far: u64,
    pub mair: u64,
    pub amair: u64,
    pub vbar: u64,
    pub contextidr: u64,
    pub cntkctl: u64,
    pub elr: u64,
    pub spsr: u64,
    pub csselr: u64,
    pub tpidr_el0: u64,
    pub tpidrro_el0: u64,
    pub tpidr_el1: u64,
    pub sp_el0: u64,
    pub sp_el1: u64,
    pub par: u64,
    /// TPIDR2_EL0, where FEAT_SME is: no trap reaches it without fine-grained traps, so it
    /// is the guest's even though the ID registers hide SME.
    pub tpidr2_el0: u64,
    /// DISR_EL1 as the guest sees it, VDISR_EL2 (HCR_EL2.AMO is set), where FEAT_RAS is.
    pub vdisr: u64,
    /// The pointer authentication keys, where FEAT_PAuth is: APIAKey, APIBKey, APDAKey,
    /// APDBKey, APGAKey, each Lo then Hi.
    pub pauth_keys: [u64; 10],
}

/// FP/SIMD state: V0-V31, FPSR, FPCR.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FpRegs {
    pub q: [u128; 32],
    pub fpsr: u64,
    pub fpcr: u64,
}

/// The two EL1 timers (CNTV_*, CNTP_*).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerRegs {
    pub cntv_ctl: u64,
    pub cntv_cval: u64,
    pub cntp_ctl: u64,
    pub cntp_cval: u64,
}

impl TimerRegs {
    /// CNTx_CTL_EL0: ENABLE, IMASK.
    const ENABLE: u64 = 1;
    const IMASK: u64 = 1 << 1;

    /// Whether a timer with `ctl` and `cval` asserts its interrupt at count `now`.
    pub fn fires(ctl: u64, cval: u64, now: u64) -> bool {
        ctl & Self::ENABLE != 0 && ctl & Self::IMASK == 0 && now >= cval
    }

    /// The count at which a timer with `ctl` and `cval` will assert, if it is armed.
    pub fn deadline(ctl: u64, cval: u64) -> Option<u64> {
        (ctl & Self::ENABLE != 0 && ctl & Self::IMASK == 0).then_some(cval)
    }
}

/// The virtual GIC CPU interface state that is not in the list registers (which the vGIC
/// model refills on every entry): ICH_VMCR_EL2 and the active-priority registers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GicCpuRegs {
    pub vmcr: u64,
    pub ap0r: [u64; 4],
    pub ap1r: [u64; 4],
}

/// A vCPU's self-hosted debug state (Arm ARM D2, "AArch64 Self-hosted Debug", and the
/// registers an OS keeps over a power-down, "The OS Save and Restore mechanism"): the
/// breakpoints and watchpoints ID_AA64DFR0_EL1 counts, MDSCR_EL1, MDCCINT_EL1, the claim
/// tags, OSECCR_EL1, the DCC's data registers (by their OS views, which leave the flags in
/// MDSCR_EL1 alone), the OS lock and the OS double lock.
///
/// `owned` (KVM's "dirty"): the vCPU touched a debug register, so MDCR_EL2.TDA no longer
/// traps it and all of this is live in the hardware while it runs, saved and restored when
/// the pCPU switches vCPUs. A vCPU switched out with none of MDSCR_EL1's MDE, KDE and SS set
/// (no breakpoint, watchpoint or step can fire for it) stops owning it: its state stays
/// here, the hardware does nothing for it (MDSCR_EL1 0) while TDA traps it again, and its
/// next access loads this back. A starting vCPU's state is the reset one (all zero). The OS
/// lock and double lock are the hardware's, written on the guest's behalf (MDCR_EL2.TDOSA
/// traps them), owned or not; here they are what was saved with the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DebugRegs {
    pub owned: bool,
    pub bvr: [u64; crate::hw::debug::MAX_POINTS],
    pub bcr: [u64; crate::hw::debug::MAX_POINTS],
    pub wvr: [u64; crate::hw::debug::MAX_POINTS],
    pub wcr: [u64; crate::hw::debug::MAX_POINTS],
    pub mdscr: u64,
    pub mdccint: u64,
    /// The claim tags set (DBGCLAIMCLR_EL1 reads them).
    pub claim: u64,
    pub oseccr: u64,
    pub dtrrx: u64,
    pub dtrtx: u64,
    /// OSLSR_EL1.OSLK.
    pub oslk: bool,
    pub osdlr: u64,
}

/// Everything of a vCPU that lives in the hardware while it runs, besides [`GuestRegs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VcpuContext {
    pub el1: El1Regs,
    pub fp: FpRegs,
    pub timer: TimerRegs,
    pub gic: GicCpuRegs,
    pub debug: DebugRegs,
}

/// One acknowledged physical interrupt: its INTID, and the acknowledge value its EOI writes
/// back (on a GICv2 an SGI's includes the CPU that sent it, IHI 0048B 4.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub intid: u32,
    pub iar: u32,
}

/// The syndrome registers of one exit, read once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Syndrome {
    /// Exception vector index (8-15: lower EL).
    pub vector: u64,
    pub esr: u64,
    pub far: u64,
    pub hpfar: u64,
}

/// The core's IRQ handler, called by the exception vectors for an IRQ taken at EL2 outside
/// a guest (set once at boot, by the boot flow).
static IRQ_HANDLER: spin::Once<fn()> = spin::Once::new();

/// Installs the one entry point the exception vectors call for an IRQ at EL2.
pub fn set_irq_handler(handler: fn()) {
    IRQ_HANDLER.call_once(|| handler);
}

/// Called by the exception vectors: the installed IRQ handler, if any.
pub fn irq_entry() {
    if let Some(handler) = IRQ_HANDLER.get() {
        handler();
    }
}
