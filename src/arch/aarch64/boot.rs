//! Boot glue between boot.S and Rust: the data secondaries read with their MMU off. The
//! `extern "C"` entry points boot.S calls (`primary_main`, `secondary_main`, `wrong_el_main`)
//! are defined by the boot flow (`crate::start`), which links to them by name, so arch does
//! not call up into it.

use crate::platform::MAX_CPUS;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU64, Ordering};

/// One secondary pCPU's slot: boot.S matches `mpidr` and loads `stack_top`.
#[repr(C)]
pub struct SecondarySlot {
    pub mpidr: AtomicU64,
    pub stack_top: AtomicU64,
}

/// What a secondary needs before its MMU is on: its stack and the primary's EL2 MMU settings.
/// Written by the primary before any CPU_ON and cleaned to the point of coherency.
#[repr(C)]
pub struct SecondaryBoot {
    pub mair: AtomicU64,
    pub tcr: AtomicU64,
    pub ttbr0: AtomicU64,
    pub sctlr: AtomicU64,
    pub count: AtomicU64,
    pub slots: [SecondarySlot; MAX_CPUS],
}

#[unsafe(no_mangle)]
pub static SECONDARY_BOOT: SecondaryBoot = SecondaryBoot {
    mair: AtomicU64::new(0),
    tcr: AtomicU64::new(0),
    ttbr0: AtomicU64::new(0),
    sctlr: AtomicU64::new(0),
    count: AtomicU64::new(0),
    slots: [const { SecondarySlot { mpidr: AtomicU64::new(u64::MAX), stack_top: AtomicU64::new(0) } }; MAX_CPUS],
};

core::arch::global_asm!(
    include_str!("../../../arch/aarch64/boot.S"),
    SB_MAIR = const offset_of!(SecondaryBoot, mair),
    SB_TCR = const offset_of!(SecondaryBoot, tcr),
    SB_TTBR0 = const offset_of!(SecondaryBoot, ttbr0),
    SB_SCTLR = const offset_of!(SecondaryBoot, sctlr),
    SB_COUNT = const offset_of!(SecondaryBoot, count),
    SB_SLOTS = const offset_of!(SecondaryBoot, slots),
    SB_SLOT_MPIDR = const offset_of!(SecondarySlot, mpidr),
    SB_SLOT_STACK = const offset_of!(SecondarySlot, stack_top),
    SB_SLOT_SIZE = const size_of::<SecondarySlot>(),
);

unsafe extern "C" {
    fn secondary_entry();
    fn park() -> !;
    static __image_start: u8;
    static __image_end: u8;
    static __rodata_start: u8;
    static boot_stack_guard: u8;
    static boot_stack_bottom: u8;
}

/// Physical (= virtual) address of the secondary entry point, for CPU_ON and spin-tables.
pub fn secondary_entry_address() -> u64 {
    secondary_entry as *const () as u64
}

/// The image's extent as linked and relocated.
pub fn image() -> crate::mm::layout::Image {
    use crate::mm::range::Range;
    let a = |p: *const u8| p as u64;
    let guard = a(&raw const boot_stack_guard);
    crate::mm::layout::Image {
        whole: Range { start: a(&raw const __image_start), end: a(&raw const __image_end) },
        text: Range { start: a(&raw const __image_start), end: a(&raw const __rodata_start) },
        boot_stack_guard: Range { start: guard, end: a(&raw const boot_stack_bottom) },
    }
}

/// Fills SECONDARY_BOOT for pCPU `index` and cleans it for a reader with its MMU off.
pub fn set_secondary(index: usize, mpidr: u64, stack_top: u64) {
    let slot = &SECONDARY_BOOT.slots[index];
    slot.mpidr.store(mpidr, Ordering::Relaxed);
    slot.stack_top.store(stack_top, Ordering::Relaxed);
    SECONDARY_BOOT.count.fetch_max(index as u64 + 1, Ordering::Relaxed);
    let start = &raw const SECONDARY_BOOT as u64;
    super::cpu::dcache_clean(start, start + size_of::<SecondaryBoot>() as u64);
}

/// Stops this pCPU for good (interrupts masked, WFE loop).
pub fn halt() -> ! {
    // SAFETY: `park` masks interrupts and loops on WFE; it never returns.
    unsafe { park() }
}
