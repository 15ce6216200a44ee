//! Locks shared between pCPUs.
//!
//! One kind of lock: [`IrqLock`] (defined with the arch interface, `arch::lock`, because it
//! masks IRQs): a test-and-test-and-set spinlock that masks IRQs on this pCPU while held.
//!
//! The locks, what each protects and the allowed nestings (`Vm::uart` and `Vm::virtio`
//! before `Vm::vgic`; a `Vm::redists[n]` before `Vm::vgic`; the frame pool before the heap)
//! are listed in docs/design.md, under the lock-order table. Every other lock is a leaf. No
//! lock is held across a guest entry, and none while allocating, except the allocators' own.
#![forbid(unsafe_code)]

pub use crate::arch::{IrqGuard, IrqLock};
