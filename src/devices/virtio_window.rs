//! QEMU `virt`'s virtio-mmio window as a guest probing it finds it: 32 transports 0x200 apart
//! from 0x0a000000, each answering the virtio-mmio identification registers with device ID
//! 0, "no device here" (virtio 1.2, 4.2.2 and 4.2.3.1.1: a driver must ignore a device with
//! ID 0), every other register reading 0 and ignoring writes. The VM's own virtio devices sit
//! elsewhere and are named in its device tree.
#![forbid(unsafe_code)]

use super::{Ctx, Effects, Mmio};

/// Transports in the window, and the bytes between them.
pub const TRANSPORTS: u64 = 32;
pub const STRIDE: u64 = 0x200;
pub const SIZE: u64 = TRANSPORTS * STRIDE;

/// "virt" in little-endian ASCII; version 2 (virtio 1.x, not legacy); QEMU's vendor ID.
const MAGIC: u64 = 0x7472_6976;
const VERSION: u64 = 2;
const VENDOR_ID: u64 = 0x554d_4551;

/// The window's registers: stateless.
#[derive(Debug, Default)]
pub struct EmptyTransports;

impl EmptyTransports {
    pub fn read(offset: u64, size: u8) -> u64 {
        if size != 4 || !offset.is_multiple_of(4) {
            return 0;
        }
        match offset % STRIDE {
            0x000 => MAGIC,
            0x004 => VERSION,
            0x00c => VENDOR_ID,
            // DeviceID 0 and everything else.
            _ => 0,
        }
    }
}

impl Mmio for EmptyTransports {
    fn read(&mut self, offset: u64, size: u8, _: &mut Ctx<'_>) -> Effects {
        Effects::value(Self::read(offset, size))
    }

    fn write(&mut self, _: u64, _: u8, _: u64, _: &mut Ctx<'_>) -> Effects {
        Effects::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transport_says_no_device() {
        for t in [0, 1, 31] {
            let base = t * STRIDE;
            assert_eq!(EmptyTransports::read(base, 4), 0x7472_6976, "transport {t}: MagicValue");
            assert_eq!(EmptyTransports::read(base + 4, 4), 2, "Version");
            assert_eq!(EmptyTransports::read(base + 8, 4), 0, "DeviceID 0: nothing here");
            assert_eq!(EmptyTransports::read(base + 0xc, 4), 0x554d_4551, "VendorID");
            assert_eq!(EmptyTransports::read(base + 0x70, 4), 0, "Status");
        }
        assert_eq!(EmptyTransports::read(0, 1), 0, "only 32-bit reads");
        assert_eq!(EmptyTransports::read(2, 4), 0, "unaligned");
        assert_eq!(SIZE, 0x4000);
    }
}
