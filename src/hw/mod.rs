//! The hardware as the architecture documents describe it: register layouts, field
//! positions and architectural values, each written once.
//!
//! Both sides of the hypervisor import these: the physical drivers in `arch::aarch64` and
//! `console`, and the portable models of the same hardware a guest sees (`vm`, `vgic`,
//! `devices`, `psci`). Nothing here touches a register; every item names the section of the
//! Arm ARM (DDI 0487), the GICv2 and GICv3 specifications (IHI 0048, IHI 0069), PSCI
//! (DEN0022), the PL011 TRM (DDI 0183) or the PL031 TRM (DDI 0224) it comes from. Register
//! blocks and fields are tock-registers types, which compile on the host like everything
//! else here.
//!
//! [`uart`] is the one exception to "definitions only": the console UARTs' drivers (PL011,
//! 16550 family, Cadence) at register level, written against a register-access trait so
//! that they are portable and host-tested; the arch layer supplies the MMIO.
#![forbid(unsafe_code)]

pub mod debug;
pub mod el2;
pub mod esr;
pub mod features;
pub mod gic;
pub mod gicv2;
pub mod gicv3;
pub mod pl011;
pub mod pl031;
pub mod psci;
pub mod timer;
pub mod uart;
