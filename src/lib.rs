//! armvisor: a small bare-metal ARM64 type-1 hypervisor.
//!
//! `hw` holds the hardware's register layouts and values, once, for the drivers and the
//! models alike. Everything but the boot flow (`start`), the global heap (`mm::heap`), the arch layer's
//! hardware implementation (`arch::aarch64`) and the in-QEMU self-tests is portable: on the
//! host, `cargo test` compiles it over the fake arch (`arch::fake`) and runs its unit tests,
//! the run loop's included.
#![cfg_attr(all(target_arch = "aarch64", target_os = "none"), no_std)]

extern crate alloc;

pub mod arch;
pub mod console;
pub mod devices;
pub mod guest;
pub mod hw;
pub mod ids;
pub mod irq;
pub mod mm;
pub mod percpu;
pub mod platform;
pub mod psci;
pub mod sched;
pub mod sync;
pub mod util;
pub mod vgic;
pub mod vm;
pub mod wallclock;

#[cfg(all(target_arch = "aarch64", target_os = "none", feature = "selftest"))]
pub mod selftest;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod start;
