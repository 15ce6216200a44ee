//! The ARM PrimeCell real-time clock, PL031 (Technical Reference Manual DDI 0224, chapter 3,
//! "Programmers Model"): a 32-bit seconds counter, a match register that raises an interrupt
//! when the counter reaches it, and the PrimeCell identification registers. The hypervisor's
//! own reader of the board's RTC (`arch::aarch64::rtc`) and the guest's emulated RTC
//! (`devices::pl031`) both use these.
#![forbid(unsafe_code)]

use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    /// The PL031's registers from RTCDR to RTCICR (DDI 0224 3.2, Table 3-1). The
    /// identification registers at [`ID_OFFSET`] are left out of the block, so that it fits
    /// an RTC whose DTB region is shorter than the 4 KiB frame.
    pub Registers {
        /// RTCDR: the counter, in seconds (read-only).
        (0x00 => pub dr: ReadOnly<u32>),
        /// RTCMR: the match value.
        (0x04 => pub mr: ReadWrite<u32>),
        /// RTCLR: a write loads the counter.
        (0x08 => pub lr: ReadWrite<u32>),
        /// RTCCR: bit 0 starts the counter (once started, writes have no effect).
        (0x0c => pub cr: ReadWrite<u32>),
        /// RTCIMSC: the interrupt mask (1: the match interrupt reaches the line).
        (0x10 => pub imsc: ReadWrite<u32>),
        /// RTCRIS: the raw match interrupt (read-only).
        (0x14 => pub ris: ReadOnly<u32>),
        /// RTCMIS: RTCRIS masked by RTCIMSC (read-only).
        (0x18 => pub mis: ReadOnly<u32>),
        /// RTCICR: writing 1 to bit 0 clears the match interrupt (write-only).
        (0x1c => pub icr: WriteOnly<u32>),
        (0x20 => @END),
    }
}

/// Register offsets, from [`Registers`].
pub mod offset {
    use super::Registers;
    use core::mem::offset_of;

    pub const DR: u64 = offset_of!(Registers, dr) as u64;
    pub const MR: u64 = offset_of!(Registers, mr) as u64;
    pub const LR: u64 = offset_of!(Registers, lr) as u64;
    pub const CR: u64 = offset_of!(Registers, cr) as u64;
    pub const IMSC: u64 = offset_of!(Registers, imsc) as u64;
    pub const RIS: u64 = offset_of!(Registers, ris) as u64;
    pub const MIS: u64 = offset_of!(Registers, mis) as u64;
    pub const ICR: u64 = offset_of!(Registers, icr) as u64;
}

/// Bytes of the register block a driver needs: RTCDR to RTCICR.
pub const REGISTERS_SPAN: u64 = core::mem::size_of::<Registers>() as u64;

/// The RTC's frame: 4 KiB.
pub const SIZE: u64 = 0x1000;

/// RTCCR.RTCstart (DDI 0224 3.3.4).
pub const CR_START: u32 = 1 << 0;
/// The match interrupt's bit in RTCIMSC, RTCRIS, RTCMIS and RTCICR (DDI 0224 3.3.5-3.3.8).
pub const INT_MATCH: u32 = 1 << 0;

/// RTCPeriphID0-3 and RTCPCellID0-3, at 0xfe0-0xffc (DDI 0224 3.2, Table 3-1).
pub const ID_OFFSET: u64 = 0xfe0;
/// Their values: part number 0x031, designer 0x41 (Arm), revision 1, configuration 0 (the
/// peripheral ID 0x00141031 of the PL031 r1 that QEMU's `virt` models, and that Linux's
/// rtc-pl031 matches ignoring the revision); then the PrimeCell identification 0xb105f00d,
/// one byte per register (DDI 0224 3.3.9 and 3.3.10).
pub const ID: [u32; 8] = [0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_identification() {
        use offset::*;
        assert_eq!((DR, MR, LR, CR, IMSC, RIS, MIS, ICR), (0x00, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c));
        assert_eq!(REGISTERS_SPAN, 0x20);
        let byte_word = |ids: &[u32]| ids.iter().rev().fold(0u32, |w, &b| (w << 8) | b);
        assert_eq!(byte_word(&ID[..4]), 0x0014_1031, "peripheral ID");
        assert_eq!(byte_word(&ID[4..]), 0xb105_f00d, "PrimeCell ID");
    }
}
