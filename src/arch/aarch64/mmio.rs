//! The one place where an MMIO address becomes a reference to a register block ([`block`]),
//! or loads and stores at byte offsets ([`Window`], for the console UART drivers).

use crate::hw::uart::{Clock, Io, Width};
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

impl<T> Mmio<T> {
    /// The block's physical address (the EL2 map is the identity).
    pub fn base(&self) -> u64 {
        core::ptr::from_ref(self.0) as u64
    }
}

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

/// A device's registers by byte offset and width, for the console drivers
/// (`hw::uart::Io`): the one place their accesses become loads and stores. An access outside
/// the region, or misaligned for its width (a fault on Device memory), is not made: a read
/// sees 0, a write is dropped. Discovery refuses a console whose region does not cover its
/// driver's registers, so none is expected.
pub struct Window {
    base: u64,
    size: u64,
}

impl Window {
    /// # Safety
    /// `region` must be a device region from the platform description (or QEMU virt's
    /// PL011), mapped as device memory in the EL2 map (or the MMU off), whose registers only
    /// this window's owner reads and writes meaningfully (a UART's reads have effects).
    pub unsafe fn new(region: Region) -> Self {
        Self { base: region.base, size: region.size }
    }

    /// The address of `width` bytes at `offset`, if inside the region and aligned.
    fn address(&self, offset: usize, width: Width) -> Option<u64> {
        let bytes = width.bytes() as u64;
        let end = (offset as u64).checked_add(bytes)?;
        let address = self.base.checked_add(offset as u64)?;
        (end <= self.size && address.is_multiple_of(bytes)).then_some(address)
    }
}

impl Io for Window {
    fn read(&mut self, offset: usize, width: Width) -> u32 {
        let Some(address) = self.address(offset, width) else { return 0 };
        // SAFETY: `address` lies inside the device region `new`'s caller vouched for and is
        // aligned for the access; a volatile access is exactly one load of that width.
        unsafe {
            match width {
                Width::U8 => core::ptr::read_volatile(address as *const u8) as u32,
                Width::U32 => core::ptr::read_volatile(address as *const u32),
            }
        }
    }

    fn write(&mut self, offset: usize, width: Width, value: u32) {
        let Some(address) = self.address(offset, width) else { return };
        // SAFETY: as for `read`: inside the vouched-for device region, aligned, one store.
        unsafe {
            match width {
                Width::U8 => core::ptr::write_volatile(address as *mut u8, value as u8),
                Width::U32 => core::ptr::write_volatile(address as *mut u32, value),
            }
        }
    }
}

/// The generic counter, for the drivers' bounded waits.
impl Clock for Window {
    fn now(&self) -> u64 {
        super::cpu::counter()
    }

    fn ticks_from_us(&self, us: u64) -> u64 {
        super::cpu::ticks_from_us(us)
    }
}
