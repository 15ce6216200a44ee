//! AArch64 at EL2, the real implementation of the arch interface (`crate::arch`): boot glue,
//! exception vectors, the EL2 MMU, physical memory, the GICv3 and its virtual CPU interface,
//! guest entry, firmware calls, the console UART, the board's RTC and small CPU helpers.

/// `mrs!("reg")`: reads a system register by name (or `sN_N_cN_cN_N` encoding).
macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: used only for registers of the guest context loaded on this pCPU (EL1/EL0,
        // its debug registers, the virtual CPU interface) and EL2 registers, whose reads
        // have no side effects (the DCC's data registers are read only through their OS
        // views, which consume nothing).
        unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// `msr!("reg", value)`: writes a system register by name.
macro_rules! msr {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: used only for registers of the guest context loaded on this pCPU (EL1/EL0,
        // its debug registers, the virtual CPU interface and EL1 timers it owns) and the EL2
        // trap controls for it; the hypervisor at EL2 depends on none of them.
        unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nomem, nostack, preserves_flags)) };
    }};
}

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
