//! The PL011 as the hypervisor's console (ARM DDI 0183): transmit with the FIFO, receive,
//! the receive interrupt. Register layout and bits: [`crate::hw::pl011`].

use super::{Credits, Io, Room, Width, wait};
use crate::hw::pl011::{CR, FR, INT, LCR_H, Registers, offset};
use tock_registers::LocalRegisterCopy;

/// Transmit FIFO depth of every PL011 revision (r1p5 has 32 entries; 16 is safe for all).
const TX_FIFO_DEPTH: u8 = 16;

/// Bytes of registers from the base this driver needs: UARTDR to UARTDMACR.
pub const SPAN: u64 = core::mem::size_of::<Registers>() as u64;

pub struct Port<I> {
    pub(super) io: I,
    credits: Credits,
}

impl<I: Io> Port<I> {
    /// Reads LCR_H: with the FIFOs off, the transmit FIFO is one byte deep.
    pub fn new(mut io: I) -> Self {
        let lcr_h = LocalRegisterCopy::<u32, LCR_H::Register>::new(io.read(offset::LCR_H as usize, Width::U32));
        let depth = if lcr_h.is_set(LCR_H::FEN) { TX_FIFO_DEPTH } else { 1 };
        Self { io, credits: Credits::new(depth) }
    }

    pub fn shared_with_others(mut self) -> Self {
        self.credits.depth = 1;
        self
    }

    fn read(&mut self, offset: u64) -> u32 {
        self.io.read(offset as usize, Width::U32)
    }

    fn write(&mut self, offset: u64, value: u32) {
        self.io.write(offset as usize, Width::U32, value);
    }

    /// Turns on the FIFOs if the bootloader left them off (U-Boot turns them on; QEMU's
    /// reset state has them off). The PL011 TRM (DDI 0183, 3.3.8) forbids changing LCR_H
    /// while the UART is enabled, so: wait until the transmitter is idle, disable the UART,
    /// set FEN, enable it again as it was. Left alone if the UART stays busy. Bytes waiting
    /// in the receive FIFO (typed before the hypervisor started) may be lost.
    pub fn enable_fifos(&mut self) {
        if self.credits.depth > 1 {
            return;
        }
        if !self.wait_idle() {
            return;
        }
        let cr = self.read(offset::CR);
        self.write(offset::CR, cr & !CR::UARTEN::SET.value);
        let lcr_h = self.read(offset::LCR_H);
        self.write(offset::LCR_H, lcr_h | LCR_H::FEN::SET.value);
        self.write(offset::CR, cr);
        self.credits.depth = TX_FIFO_DEPTH;
    }

    /// Everything written has left: FR.TXFE and not FR.BUSY.
    pub fn wait_idle(&mut self) -> bool {
        wait(&mut self.io, |io| {
            let fr = flags(io);
            fr.is_set(FR::TXFE) && !fr.is_set(FR::BUSY)
        })
    }

    /// Sends a byte, waiting (bounded) for room.
    pub fn put(&mut self, b: u8) {
        if self.credits.take(&mut self.io, tx_space) {
            self.write(offset::DR, b as u32);
        }
    }

    /// Bytes [`Port::put`] can send now without waiting.
    pub fn tx_room(&mut self) -> usize {
        self.credits.room(&mut self.io, tx_space)
    }

    /// DR while FR.RXFE is clear.
    pub fn get(&mut self) -> Option<u8> {
        if flags(&mut self.io).is_set(FR::RXFE) { None } else { Some(self.read(offset::DR) as u8) }
    }

    /// Clears all eleven interrupts, then unmasks RX and RX timeout. Both are cleared by
    /// reading the FIFO empty (DDI 0183 3.4), so there is nothing to acknowledge.
    pub fn enable_receive_interrupt(&mut self) {
        self.write(offset::ICR, INT::ALL::SET.value);
        self.write(offset::IMSC, (INT::RX::SET + INT::RT::SET).value);
    }
}

fn flags<I: Io>(io: &mut I) -> LocalRegisterCopy<u32, FR::Register> {
    LocalRegisterCopy::new(io.read(offset::FR as usize, Width::U32))
}

/// FR.TXFE: a FIFO's worth of room; not FR.TXFF: one byte's.
fn tx_space<I: Io>(io: &mut I) -> Room {
    let fr = flags(io);
    if fr.is_set(FR::TXFE) {
        Room::Empty
    } else if !fr.is_set(FR::TXFF) {
        Room::One
    } else {
        Room::Full
    }
}
