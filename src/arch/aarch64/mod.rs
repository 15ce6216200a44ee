//! AArch64 at EL2: boot glue, exception vectors, the EL2 MMU, the GICv3, firmware calls and
//! small CPU helpers.

pub mod boot;
pub mod cpu;
pub mod exception;
pub mod gic;
pub mod idregs;
pub mod mmio;
pub mod mmu;
pub mod psci;
pub mod semihosting;
pub mod vcpu;
pub mod vgic;
