//! Architecture layer: the only place with inline assembly and system-register access.
//! Compiled for the bare-metal target only; portable code never reaches in here.

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod aarch64;
