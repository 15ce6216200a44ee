//! Memory: address newtypes, range sets, portable translation tables, and (on target) the
//! frame allocator and heap over the RAM the hypervisor reserves for itself.

pub mod addr;
pub mod guest_ram;
pub mod layout;
pub mod pagetable;
pub mod range;

pub use addr::{GuestPhysAddr, PAGE_SIZE, PhysAddr};

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod heap;

/// Bytes of the hypervisor's heap in use, and its size; `None` on the host, where the heap
/// is the host process's.
pub fn heap_use() -> Option<(usize, usize)> {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    return Some(heap::heap_stats());
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    None
}
