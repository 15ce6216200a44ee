//! armvisor: a small bare-metal ARM64 type-1 hypervisor.
//!
//! Portable modules (`platform`, `mm`, `util`, `hw`) are plain Rust, unit-tested on the host
//! with `cargo test`; `hw` holds the hardware's register layouts and values, once, for the
//! drivers and the models alike. The EL2 code (`arch::aarch64`, boot, console, per-pCPU
//! data, the in-QEMU self-tests) is compiled only for the bare-metal target.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod arch;
pub mod devices;
pub mod hw;
pub mod ids;
pub mod mm;
pub mod platform;
pub mod psci;
pub mod util;
pub mod vgic;
pub mod vm;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod console;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod guest;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod irq;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod percpu;
#[cfg(all(target_arch = "aarch64", target_os = "none", feature = "selftest"))]
pub mod selftest;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod start;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod sync;
