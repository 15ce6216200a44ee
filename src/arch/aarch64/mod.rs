//! AArch64 at EL2, the real implementation of the arch interface (`crate::arch`): boot glue,
//! exception vectors, the EL2 MMU, physical memory, the GICv3 and its virtual CPU interface,
//! guest entry, firmware calls, the console UART, the board's RTC and small CPU helpers.

pub mod boot;
pub mod context;
pub mod cpu;
pub mod debug;
pub mod exception;
pub mod firmware;
pub mod gic;
pub mod idregs;
pub mod mmio;
pub mod mmu;
pub mod phys;
pub mod psci;
pub mod rtc;
pub mod semihosting;
pub mod uart;
pub mod vcpu;
pub mod vgic;
