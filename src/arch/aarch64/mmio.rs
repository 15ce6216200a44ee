//! The one place where an MMIO address becomes a reference to a register block.

use crate::platform::Region;
use core::ops::Deref;

/// A `'static` reference to a device's register block (Tock's `StaticRef`).
pub struct Mmio<T: 'static>(&'static T);

// SAFETY: a register block is device memory, accessed only through tock-registers' volatile
// reads and writes; sharing the reference between pCPUs is no different from two CPUs
// writing the device, which the device defines. Read-modify-write sequences that must be
// atomic are the owner's business (the console is behind a lock; GIC set/clear registers
// are designed for concurrent writers).
unsafe impl<T> Sync for Mmio<T> {}
// SAFETY: as above.
unsafe impl<T> Send for Mmio<T> {}

impl<T> Deref for Mmio<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0
    }
}

/// A register block of type `T` at `region.base`.
///
/// # Safety
/// `region` must be a device region from the platform description, mapped as device memory
/// in the EL2 map (or the MMU off), at least `size_of::<T>()` long, and `T` must describe its
/// registers (tock-registers blocks contain only volatile cells).
pub unsafe fn block<T>(region: Region) -> Mmio<T> {
    assert!(region.size >= core::mem::size_of::<T>() as u64, "MMIO region smaller than its register block");
    // SAFETY: see the function's contract.
    Mmio(unsafe { &*(region.base as *const T) })
}

/// A register block of type `T` at `region.base` of which only the first `region.size`
/// bytes exist (a GICv2 CPU interface the device tree gives as its first 4 KiB page).
///
/// # Safety
/// As [`block`], except that `region` may be shorter than `T`: the caller must never touch
/// a register at or past `region.size`.
pub unsafe fn block_prefix<T>(region: Region) -> Mmio<T> {
    // SAFETY: see the function's contract; the registers past the region are never
    // accessed, and device memory is never read speculatively.
    Mmio(unsafe { &*(region.base as *const T) })
}
