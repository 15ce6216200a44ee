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
