//! Virtual machines: the configuration a VM is built from, why guests exit, the VM itself
//! and its vCPUs' run loop.
#![forbid(unsafe_code)]

pub mod bus;
pub mod config;
pub mod console_mux;
pub mod decode;
pub mod dispatch;
pub mod domains;
pub mod exit;
pub mod fdt;
pub mod idregs;
pub mod inject;
pub mod instance;
pub mod linux;
pub mod loglimit;
pub mod timer;
pub mod vcpu;
pub mod work;

/// The run loop's entry points and the VM value, as the rest of the hypervisor uses them.
pub mod run {
    pub use super::bus::{console_input, set_console_vm};
    pub use super::instance::{Vm, VmError};
    pub use super::vcpu::{Vcpu, VcpuEnd};
    pub use crate::sched::run_vm;
}

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
    /// Bytes copied to the start of guest RAM (more can be loaded with `Vm::load`).
    pub image: &'static [u8],
    /// Where vCPU 0 starts.
    pub entry: GuestPhysAddr,
    /// x0 of vCPU 0 at entry.
    pub arg: u64,
    /// The pCPU each vCPU runs on.
    pub placement: Placement,
    /// The emulated devices, their windows and interrupts ([`config::virt_devices`] for
    /// QEMU virt's layout).
    pub devices: crate::util::FixedVec<config::DeviceSpec, MAX_DEVICES>,
}

/// Most emulated devices one VM has.
pub const MAX_DEVICES: usize = 8;

/// `specs` as a VM's device table; `None` past [`MAX_DEVICES`].
pub fn device_table(specs: &[config::DeviceSpec]) -> Option<crate::util::FixedVec<config::DeviceSpec, MAX_DEVICES>> {
    let mut table = crate::util::FixedVec::new();
    for d in specs {
        table.push(*d).ok()?;
    }
    Some(table)
}

/// Where a VM's vCPUs run: vCPU i on pCPU `cpus[i]`. Several vCPUs may share a pCPU
/// (they take turns); the guest sees MPIDRs 0..n-1 wherever they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    cpus: crate::util::FixedVec<crate::ids::CpuId, MAX_VCPUS>,
}

impl Placement {
    /// vCPU n on pCPU n, for `count` vCPUs.
    pub fn identity(count: usize) -> Self {
        let mut cpus = crate::util::FixedVec::new();
        for i in 0..count.min(MAX_VCPUS) {
            let _ = cpus.push(crate::ids::CpuId(i));
        }
        Self { cpus }
    }

    /// vCPU i on `cpus[i]`; `None` for more than [`MAX_VCPUS`].
    pub fn on(cpus: &[crate::ids::CpuId]) -> Option<Self> {
        let mut v = crate::util::FixedVec::new();
        for &c in cpus {
            v.push(c).ok()?;
        }
        Some(Self { cpus: v })
    }

    /// The pCPU of vCPU `vcpu`.
    pub fn cpu(&self, vcpu: usize) -> Option<crate::ids::CpuId> {
        self.cpus.get(vcpu).copied()
    }

    /// How many vCPUs are placed.
    pub fn len(&self) -> usize {
        self.cpus.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cpus.is_empty()
    }
}

/// Where things are in every VM's guest-physical address space (the layout of QEMU's
/// `virt` machine, which Linux and our test guests expect).
pub mod memory_map {
    pub const GICD: u64 = 0x0800_0000;
    pub const GICR: u64 = 0x080a_0000;
    /// A GICv2's CPU interface (with a GICv3 the guest has none: ICC_* registers).
    pub const GICC: u64 = 0x0801_0000;
    pub const UART: u64 = 0x0900_0000;
    /// The UART's interrupt: SPI 1.
    pub const UART_INTID: u32 = 33;
    /// The real-time clock (PL031), and its interrupt (SPI 2).
    pub const RTC: u64 = 0x0901_0000;
    pub const RTC_INTID: u32 = 34;
    /// The virtio-mmio block device, and its interrupt (SPI 16).
    pub const VIRTIO_BLK: u64 = 0x0a80_0000;
    pub const VIRTIO_BLK_INTID: u32 = 48;
    /// QEMU virt's virtio-mmio window: 32 transports with no device behind them.
    pub const VIRTIO_WINDOW: u64 = 0x0a00_0000;
    /// The self-test device (test flavour only), where `virt` has nothing.
    pub const TEST_DEVICE: u64 = 0x0b00_0000;
}

/// Hypercalls of the test ABI (SMCCC vendor-specific hypervisor service range, SMC64),
/// answered only by the test flavour.
pub mod test_abi {
    /// REPORT(id, value): the harness records the pair.
    pub const REPORT: u32 = 0xc600_0000;
}

#[cfg(test)]
mod console_mux_tests;
#[cfg(test)]
mod tests;
