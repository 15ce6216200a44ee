//! The ARM PrimeCell UART, PL011 (Technical Reference Manual DDI 0183, chapter 3,
//! "Programmers Model"): its registers, the bits the hypervisor uses, reset values and the
//! identification registers. The physical console driver (`console`) and the guest's
//! emulated UART (`devices::pl011`) both use these.
#![forbid(unsafe_code)]

use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// UARTFR, the flag register (DDI 0183 3.3.3).
    pub FR [
        /// Busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Transmit FIFO empty.
        TXFE OFFSET(7) NUMBITS(1) []
    ],
    /// UARTLCR_H, the line control register (DDI 0183 3.3.7).
    pub LCR_H [
        /// FIFOs enabled (else each is one byte deep).
        FEN OFFSET(4) NUMBITS(1) []
    ],
    /// UARTCR, the control register (DDI 0183 3.3.8).
    pub CR [
        /// UART enabled.
        UARTEN OFFSET(0) NUMBITS(1) [],
        /// Transmit enabled.
        TXE OFFSET(8) NUMBITS(1) [],
        /// Receive enabled.
        RXE OFFSET(9) NUMBITS(1) []
    ],
    /// The interrupt bits, in the same place in UARTIMSC, UARTRIS, UARTMIS and UARTICR
    /// (DDI 0183 3.3.10-3.3.13).
    pub INT [
        /// Receive.
        RX OFFSET(4) NUMBITS(1) [],
        /// Transmit.
        TX OFFSET(5) NUMBITS(1) [],
        /// Receive timeout.
        RT OFFSET(6) NUMBITS(1) [],
        /// All eleven interrupts, [10:0].
        ALL OFFSET(0) NUMBITS(11) []
    ]
}

register_structs! {
    /// The PL011's registers from UARTDR to UARTDMACR (DDI 0183 3.2, Table 3-1). The
    /// identification registers at [`ID_OFFSET`] are left out of the block, so that it fits
    /// a UART whose DTB region is shorter than the 4 KiB frame.
    pub Registers {
        (0x00 => pub dr: ReadWrite<u32>),
        /// UARTRSR on reads, UARTECR on writes.
        (0x04 => pub rsr: ReadWrite<u32>),
        (0x08 => _reserved0),
        (0x18 => pub fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x20 => pub ilpr: ReadWrite<u32>),
        (0x24 => pub ibrd: ReadWrite<u32>),
        (0x28 => pub fbrd: ReadWrite<u32>),
        (0x2c => pub lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x30 => pub cr: ReadWrite<u32, CR::Register>),
        (0x34 => pub ifls: ReadWrite<u32>),
        (0x38 => pub imsc: ReadWrite<u32, INT::Register>),
        (0x3c => pub ris: ReadOnly<u32, INT::Register>),
        (0x40 => pub mis: ReadOnly<u32, INT::Register>),
        (0x44 => pub icr: WriteOnly<u32, INT::Register>),
        (0x48 => pub dmacr: ReadWrite<u32>),
        (0x4c => @END),
    }
}

/// Register offsets, from [`Registers`] (the bitfield modules of the same names describe
/// the registers' contents).
pub mod offset {
    use super::Registers;
    use core::mem::offset_of;

    pub const DR: u64 = offset_of!(Registers, dr) as u64;
    pub const RSR: u64 = offset_of!(Registers, rsr) as u64;
    pub const FR: u64 = offset_of!(Registers, fr) as u64;
    pub const ILPR: u64 = offset_of!(Registers, ilpr) as u64;
    pub const IBRD: u64 = offset_of!(Registers, ibrd) as u64;
    pub const FBRD: u64 = offset_of!(Registers, fbrd) as u64;
    pub const LCR_H: u64 = offset_of!(Registers, lcr_h) as u64;
    pub const CR: u64 = offset_of!(Registers, cr) as u64;
    pub const IFLS: u64 = offset_of!(Registers, ifls) as u64;
    pub const IMSC: u64 = offset_of!(Registers, imsc) as u64;
    pub const RIS: u64 = offset_of!(Registers, ris) as u64;
    pub const MIS: u64 = offset_of!(Registers, mis) as u64;
    pub const ICR: u64 = offset_of!(Registers, icr) as u64;
    pub const DMACR: u64 = offset_of!(Registers, dmacr) as u64;
}

/// The UART's frame: 4 KiB.
pub const SIZE: u64 = 0x1000;

/// UARTPeriphID0-3 and UARTPCellID0-3, at 0xfe0-0xffc (DDI 0183 3.2, Table 3-1).
pub const ID_OFFSET: u64 = 0xfe0;
/// Their values, as QEMU's PL011 has them: part number 0x011, designer 0x41 (Arm),
/// revision 1, configuration 0; then the PrimeCell identification 0xb105f00d (DDI 0183,
/// UARTPeriphID0-3 and UARTPCellID0-3).
pub const ID: [u32; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// UARTCR at reset: transmit and receive enabled, the UART not (DDI 0183 3.3.8).
pub const CR_RESET: u32 = CR::TXE::SET.value | CR::RXE::SET.value;
/// UARTIFLS at reset: both FIFO interrupt levels at half full (DDI 0183 3.3.9).
pub const IFLS_RESET: u32 = 0x12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_reset_values() {
        use offset::*;
        assert_eq!((DR, FR, LCR_H, CR, IMSC, ICR, DMACR), (0x00, 0x18, 0x2c, 0x30, 0x38, 0x44, 0x48));
        assert_eq!(CR_RESET, 0x300);
        assert_eq!(INT::ALL::SET.value, 0x7ff);
        assert_eq!((INT::RX::SET + INT::RT::SET).value, (1 << 4) | (1 << 6));
    }
}
