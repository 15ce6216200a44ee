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
//! layers above it: the hardware definitions (`crate::hw`) and plain portable types
//! (`crate::ids`, `crate::mm::{addr, range, pagetable, guest_ram}`, `crate::util`,
//! `crate::platform` descriptions) only. The exception vectors reach the core through one
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

/// The generic counter (CNTPCT_EL0) and its frequency.
pub use imp::cpu::{counter, counter_frequency, ticks_from_us};
/// This pCPU: its index (`TPIDR_EL2`), affinity, interrupt mask, idling and stopping.
pub use imp::cpu::{cpu_index, halt, irq_enable, irq_restore, irq_save, mpidr, set_cpu_index, wfi};
/// ID registers (for the trapped-ID-register emulation) and features the core asks about.
pub use imp::cpu::{has_pan, read_id_reg};
/// The guest's EL1 timers, which are taken at EL2 and masked at the source.
pub use imp::cpu::{mask_physical_timer, mask_virtual_timer};
/// The firmware: powering the machine off or resetting it.
pub use imp::firmware::{system_off, system_reset};
/// The physical GIC as the hypervisor uses it: the kick SGI, acknowledge and EOI.
pub use imp::gic::{SGI_KICK, irq_ack, irq_eoi, irq_pending, send_kick};
/// Stage 2: the machine's physical address range and TLB invalidation.
pub use imp::mmu::{invalidate_ipa, pa_range};
/// Physical memory the hypervisor hands to guests: the pools and the ownership types.
pub use imp::phys::{FrameTables, ModulePages, OwnedRam, RegisterPage, ram_bytes, take_disk, take_kernel_pages};
/// The physical console UART.
pub use imp::uart::{Uart, early_print};
/// Entering a guest and the EL1 state an injected exception needs.
pub use imp::vcpu::{
    el1_vector_state, enter, guest_va_to_pa, load_guest_config, set_el1_exception, unload_guest_config,
};
/// The virtual GIC CPU interface: list registers in and out.
pub use imp::vgic::{Loaded, answer_maintenance, lr_count, lrs_disable, lrs_load, lrs_reset, lrs_save};
pub use pool::{alloc_frames, free_frames, init_frames, init_guest_ram, largest_guest_ram};

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
