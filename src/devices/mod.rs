//! Emulated devices and the MMIO bus: which guest-physical ranges belong to which device,
//! and how a decoded load or store becomes a device read or write and a register value.
//!
//! Every device is reached through one interface, [`Mmio`]: `read`/`write(offset, size,
//! value, &mut Ctx)` returning [`Effects`] (the value read, the device's interrupt line
//! raised, lowered or pulsed, a byte transmitted, vCPUs to kick, an offset it does not
//! implement). The VM's bus (`vm::bus`) applies the effects in one place, in the lock order.
#![forbid(unsafe_code)]

pub mod gic;
pub mod pl011;
pub mod pl031;
pub mod testdev;
pub mod virtio_blk;
pub mod virtio_window;

use crate::mm::range::Range;
use crate::vgic::Kicks;
use crate::vm::exit::Access;

/// A guest-physical range that is not (wholly) guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfGuestRam;

/// What a device needs from guest memory (its DMA): bounds-checked copies by guest-physical
/// address.
pub trait GuestMemory {
    /// Fills `buf` from guest-physical `gpa`; `Err` if any byte is outside guest RAM.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), OutOfGuestRam>;
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), OutOfGuestRam>;
}

impl<T: GuestMemory + ?Sized> GuestMemory for &mut T {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), OutOfGuestRam> {
        (**self).read(gpa, buf)
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), OutOfGuestRam> {
        (**self).write(gpa, data)
    }
}

/// A change of a device's interrupt output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A level-sensitive line goes high (`true`) or low.
    Level(bool),
    /// An edge: the interrupt becomes pending once.
    Edge,
}

/// What one register access did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effects {
    /// The value a read returns (the low `size` bytes count); 0 for writes.
    pub value: u64,
    /// The device's interrupt line changed.
    pub line: Option<Signal>,
    /// A byte the guest transmitted (to the console).
    pub tx: Option<u8>,
    /// vCPUs that must look at their list registers again.
    pub kick: Kicks,
    /// The offset is not a register the device implements (RAZ/WI); the bus counts it and
    /// warns, rate-limited.
    pub unknown: bool,
}

impl Effects {
    /// A read returning `value`, nothing else.
    pub fn value(value: u64) -> Self {
        Self { value, ..Self::default() }
    }
}

/// What a device may need besides its own state: the VM's memory (for DMA), which vCPU's
/// frame an access is in (for banked registers), and every vCPU's MPIDR.
pub struct Ctx<'a> {
    pub mem: &'a mut dyn GuestMemory,
    pub frame: usize,
    pub mpidrs: &'a [u64],
}

/// The one device interface: a state machine over register reads and writes.
pub trait Mmio {
    fn read(&mut self, offset: u64, size: u8, ctx: &mut Ctx<'_>) -> Effects;
    fn write(&mut self, offset: u64, size: u8, value: u64, ctx: &mut Ctx<'_>) -> Effects;
}

/// The devices a VM can have. The table of regions is fixed when the VM is built; only
/// device state changes afterwards (under each device's lock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Device {
    /// The vGIC distributor.
    #[default]
    GicDistributor,
    /// The vGIC redistributors, one 128 KiB frame pair per vCPU.
    GicRedistributors,
    /// The GICv2 distributor (its banked registers are the accessing vCPU's
    /// redistributor state).
    GicV2Distributor,
    /// The self-test register file ([`testdev`]).
    Test,
    /// The guest's console UART ([`pl011`]).
    Pl011,
    /// The guest's real-time clock ([`pl031`]).
    Pl031,
    /// A virtio-mmio block device ([`virtio_blk`]).
    VirtioBlk,
    /// QEMU virt's virtio-mmio window with no device behind its transports
    /// ([`virtio_window`]).
    VirtioWindow,
}

/// One guest-physical range and the device behind it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MmioRegion {
    pub range: Range,
    pub device: Device,
    /// The INTID the device's interrupt line drives, if it has one.
    pub intid: Option<u32>,
}

/// The region containing the whole access `[ipa, ipa + size)`, and the offset into it.
pub fn lookup(regions: &[MmioRegion], ipa: u64, size: u8) -> Option<(MmioRegion, u64)> {
    let end = ipa.checked_add(size as u64)?;
    regions.iter().find(|r| r.range.contains_range(&Range { start: ipa, end })).map(|r| (*r, ipa - r.range.start))
}

/// The value a load puts in its register: `raw` holds `size` bytes read from the device;
/// sign-extended if the instruction says so, then cut to 32 bits for a W register.
pub fn load_value(access: &Access, raw: u64) -> u64 {
    let bits = access.size as u32 * 8;
    let raw = if bits < 64 { raw & ((1u64 << bits) - 1) } else { raw };
    let value = if access.sign_extend && bits < 64 {
        let shift = 64 - bits;
        (((raw << shift) as i64) >> shift) as u64
    } else {
        raw
    };
    if access.sixty_four { value } else { value & 0xffff_ffff }
}

/// The bytes a store writes: the low `size` bytes of the register.
pub fn store_value(access: &Access, reg: u64) -> u64 {
    match access.size {
        8 => reg,
        n => reg & ((1u64 << (n as u32 * 8)) - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(size: u8, sign_extend: bool, sixty_four: bool) -> Access {
        Access { size, sign_extend, reg: 0, sixty_four, acquire_release: false }
    }

    #[test]
    fn lookup_requires_the_whole_access_inside() {
        let regions = [
            MmioRegion {
                range: Range { start: 0x800_0000, end: 0x801_0000 },
                device: Device::GicDistributor,
                intid: None,
            },
            MmioRegion { range: Range { start: 0xa00_0000, end: 0xa00_1000 }, device: Device::Test, intid: None },
        ];
        assert_eq!(lookup(&regions, 0xa00_0ff8, 8), Some((regions[1], 0xff8)));
        assert_eq!(lookup(&regions, 0xa00_0ffc, 8), None, "straddles the end");
        assert_eq!(lookup(&regions, 0x800_0004, 4), Some((regions[0], 4)));
        assert_eq!(lookup(&regions, 0x900_0000, 4), None);
        assert_eq!(lookup(&regions, u64::MAX - 2, 8), None);
    }

    #[test]
    fn load_values_extend_and_truncate() {
        assert_eq!(load_value(&access(1, false, true), 0x1ff), 0xff);
        assert_eq!(load_value(&access(1, true, true), 0x80), 0xffff_ffff_ffff_ff80);
        assert_eq!(load_value(&access(1, true, false), 0x80), 0xffff_ff80, "LDRSB Wt");
        assert_eq!(load_value(&access(2, true, true), 0x7fff), 0x7fff);
        assert_eq!(load_value(&access(2, true, true), 0x8001), 0xffff_ffff_ffff_8001);
        assert_eq!(load_value(&access(4, true, true), 0x8000_0000), 0xffff_ffff_8000_0000, "LDRSW");
        assert_eq!(load_value(&access(4, false, false), 0xdead_beef_1234_5678), 0x1234_5678);
        assert_eq!(load_value(&access(8, false, true), u64::MAX), u64::MAX);
        assert_eq!(store_value(&access(2, false, false), 0x1234_5678), 0x5678);
        assert_eq!(store_value(&access(8, false, true), u64::MAX), u64::MAX);
    }
}
