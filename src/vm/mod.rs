//! Virtual machines: the configuration a VM is built from, why guests exit, and (on target)
//! the VM itself and the `run_vcpu` loop.

pub mod exit;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod run;

use crate::mm::GuestPhysAddr;

/// Most vCPUs one VM may have (one per pCPU).
pub const MAX_VCPUS: usize = crate::platform::MAX_CPUS;

/// Everything a VM is built from. A second VM is a second `VmConfig`.
#[derive(Debug, Clone, Copy)]
pub struct VmConfig {
    pub name: &'static str,
    /// Guest physical address and size of the VM's RAM (2 MiB multiples).
    pub ram_base: GuestPhysAddr,
    pub ram_size: u64,
    pub vcpu_count: usize,
    /// Bytes copied to the start of guest RAM; vCPU 0 starts there.
    pub image: &'static [u8],
    /// x0 of vCPU 0 at entry.
    pub arg: u64,
}

/// Hypercalls of the test ABI (SMCCC vendor-specific hypervisor service range, SMC64),
/// answered only by the test flavour.
pub mod test_abi {
    /// REPORT(id, value): the harness records the pair.
    pub const REPORT: u32 = 0xc600_0000;
}
