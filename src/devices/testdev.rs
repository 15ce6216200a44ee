//! The self-test device: eight 64-bit registers a guest can read and write at any width,
//! a log of the accesses it saw, and a register that drives an SPI line (to test routing
//! an emulated device's interrupt to another pCPU).
#![forbid(unsafe_code)]

use crate::util::FixedVec;

pub const SIZE: u64 = 0x1000;
/// Offset of the register whose bit 0 drives [`TestDevice::spi`].
pub const LINE: u64 = 0x100;
/// The SPI the device drives.
pub const SPI: u32 = 40;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub offset: u64,
    pub size: u8,
    pub write: bool,
    pub value: u64,
}

#[derive(Debug, Default)]
pub struct TestDevice {
    pub regs: [u64; 8],
    pub seen: FixedVec<Seen, 64>,
    pub line: bool,
}

impl TestDevice {
    pub fn read(&mut self, offset: u64, size: u8) -> u64 {
        let value = match offset {
            0..0x40 => {
                let reg = self.regs[(offset / 8) as usize];
                let shift = (offset % 8) * 8;
                let v = reg >> shift;
                if size >= 8 { v } else { v & ((1u64 << (size as u32 * 8)) - 1) }
            }
            LINE => self.line as u64,
            _ => 0,
        };
        let _ = self.seen.push(Seen { offset, size, write: false, value });
        value
    }

    /// Returns the new level of the SPI line if this write changed it.
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Option<bool> {
        let _ = self.seen.push(Seen { offset, size, write: true, value });
        match offset {
            0..0x40 => {
                let i = (offset / 8) as usize;
                let shift = (offset % 8) * 8;
                let mask = if size >= 8 { u64::MAX } else { ((1u64 << (size as u32 * 8)) - 1) << shift };
                self.regs[i] = (self.regs[i] & !mask) | ((value << shift) & mask);
                None
            }
            LINE => {
                let level = value & 1 != 0;
                let changed = level != self.line;
                self.line = level;
                changed.then_some(level)
            }
            _ => None,
        }
    }
}

impl super::Mmio for TestDevice {
    fn read(&mut self, offset: u64, size: u8, _: &mut super::Ctx<'_>) -> super::Effects {
        let unknown = !(offset < 0x40 || offset == LINE);
        super::Effects { value: TestDevice::read(self, offset, size), unknown, ..Default::default() }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64, _: &mut super::Ctx<'_>) -> super::Effects {
        let unknown = !(offset < 0x40 || offset == LINE);
        let line = TestDevice::write(self, offset, size, value).map(super::Signal::Level);
        super::Effects { line, unknown, ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_lanes_and_line() {
        let mut d = TestDevice::default();
        d.write(0x8, 8, 0x1122_3344_5566_7788);
        assert_eq!(d.read(0x8, 1), 0x88);
        assert_eq!(d.read(0xa, 2), 0x5566);
        assert_eq!(d.read(0xc, 4), 0x1122_3344);
        d.write(0x9, 1, 0xff);
        assert_eq!(d.read(0x8, 8), 0x1122_3344_5566_ff88);
        assert_eq!(d.write(LINE, 4, 1), Some(true));
        assert_eq!(d.write(LINE, 4, 1), None);
        assert_eq!(d.write(LINE, 4, 0), Some(false));
        assert_eq!(d.read(0x800, 4), 0);
        assert_eq!(d.seen.len(), 10);
    }
}
