//! The Cadence UART (r1p8, r1p12) of Zynq-7000 and Zynq UltraScale+ as the hypervisor's
//! console: its registers (Zynq UltraScale+ TRM UG1085, chapter 21 and the register
//! reference; Linux's drivers/tty/serial/xilinx_uartps.c), transmit and receive through the
//! FIFO register, the receive interrupts. The baud rate and mode (MR, BAUDGEN, BAUDDIV) are
//! the bootloader's and are never written.

use super::{Credits, Io, Room, Width, wait};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// Control register.
    pub CR [
        /// Receiver reset (self-clearing).
        RXRST OFFSET(0) NUMBITS(1) [],
        /// Transmitter reset (self-clearing).
        TXRST OFFSET(1) NUMBITS(1) [],
        RX_EN OFFSET(2) NUMBITS(1) [],
        /// Receiver disabled; wins over RX_EN.
        RX_DIS OFFSET(3) NUMBITS(1) [],
        TX_EN OFFSET(4) NUMBITS(1) [],
        /// Transmitter disabled; wins over TX_EN.
        TX_DIS OFFSET(5) NUMBITS(1) [],
        /// Restart the receive timeout counter (self-clearing).
        RSTTO OFFSET(6) NUMBITS(1) [],
        STTBRK OFFSET(7) NUMBITS(1) [],
        STPBRK OFFSET(8) NUMBITS(1) []
    ],
    /// Channel status register.
    pub SR [
        /// The receive FIFO holds at least RXWM bytes.
        RXTRIG OFFSET(0) NUMBITS(1) [],
        RXEMPTY OFFSET(1) NUMBITS(1) [],
        RXFULL OFFSET(2) NUMBITS(1) [],
        /// The transmit FIFO is empty (the shift register may still be sending).
        TXEMPTY OFFSET(3) NUMBITS(1) [],
        TXFULL OFFSET(4) NUMBITS(1) [],
        /// The transmitter state machine is sending.
        TACTIVE OFFSET(11) NUMBITS(1) []
    ],
    /// The interrupt bits, the same in IER, IDR, IMR and ISR. IER and IDR are write-only
    /// set and clear views of IMR; ISR bits are sticky, written 1 to clear.
    pub INT [
        /// The receive FIFO reached RXWM.
        RXTRIG OFFSET(0) NUMBITS(1) [],
        RXEMPTY OFFSET(1) NUMBITS(1) [],
        RXFULL OFFSET(2) NUMBITS(1) [],
        TXEMPTY OFFSET(3) NUMBITS(1) [],
        TXFULL OFFSET(4) NUMBITS(1) [],
        RXOVR OFFSET(5) NUMBITS(1) [],
        FRAME OFFSET(6) NUMBITS(1) [],
        PARE OFFSET(7) NUMBITS(1) [],
        /// Receive timeout: RXTOUT bit periods (times 4) without a new byte.
        TIMEOUT OFFSET(8) NUMBITS(1) [],
        /// All fourteen, [13:0] (up to the receive break, RBRK).
        ALL OFFSET(0) NUMBITS(14) []
    ]
}

register_structs! {
    /// The registers from CR to TXWM (UG1085 register reference, UART module).
    pub Registers {
        (0x00 => pub cr: ReadWrite<u32, CR::Register>),
        (0x04 => pub mr: ReadWrite<u32>),
        (0x08 => pub ier: WriteOnly<u32, INT::Register>),
        (0x0c => pub idr: WriteOnly<u32, INT::Register>),
        (0x10 => pub imr: ReadOnly<u32, INT::Register>),
        (0x14 => pub isr: ReadWrite<u32, INT::Register>),
        (0x18 => pub baudgen: ReadWrite<u32>),
        (0x1c => pub rxtout: ReadWrite<u32>),
        (0x20 => pub rxwm: ReadWrite<u32>),
        (0x24 => pub modemcr: ReadWrite<u32>),
        (0x28 => pub modemsr: ReadOnly<u32>),
        (0x2c => pub sr: ReadOnly<u32, SR::Register>),
        /// Transmit on writes, receive on reads.
        (0x30 => pub fifo: ReadWrite<u32>),
        (0x34 => pub bauddiv: ReadWrite<u32>),
        (0x38 => pub flowdel: ReadWrite<u32>),
        (0x3c => pub irrx_pwidth: ReadWrite<u32>),
        (0x40 => pub irtx_pwidth: ReadWrite<u32>),
        (0x44 => pub txwm: ReadWrite<u32>),
        (0x48 => @END),
    }
}

/// Register offsets, from [`Registers`].
pub mod offset {
    use super::Registers;
    use core::mem::offset_of;

    pub const CR: usize = offset_of!(Registers, cr);
    pub const MR: usize = offset_of!(Registers, mr);
    pub const IER: usize = offset_of!(Registers, ier);
    pub const IDR: usize = offset_of!(Registers, idr);
    pub const IMR: usize = offset_of!(Registers, imr);
    pub const ISR: usize = offset_of!(Registers, isr);
    pub const BAUDGEN: usize = offset_of!(Registers, baudgen);
    pub const RXTOUT: usize = offset_of!(Registers, rxtout);
    pub const RXWM: usize = offset_of!(Registers, rxwm);
    pub const SR: usize = offset_of!(Registers, sr);
    pub const FIFO: usize = offset_of!(Registers, fifo);
    pub const BAUDDIV: usize = offset_of!(Registers, bauddiv);
    pub const TXWM: usize = offset_of!(Registers, txwm);
}

/// Bytes of registers from the base this driver needs: CR to the FIFO register.
pub const SPAN: u64 = (offset::FIFO + 4) as u64;

/// Bytes written per SR read that shows the transmit FIFO empty. The FIFOs hold 64 bytes
/// (UG1085; Linux's CDNS_UART_FIFO_SIZE); 16, as for the PL011, leaves room for a model or
/// revision with less.
const TX_CREDITS: u8 = 16;

/// RXWM for the console: the receive interrupt for every byte (Linux's default is 56, for
/// throughput; a console wants each key at once).
const RX_TRIGGER: u32 = 1;
/// RXTOUT: Linux's default of 10 (times 4 bit periods).
const RX_TIMEOUT: u32 = 10;

pub struct Port<I> {
    pub(super) io: I,
    credits: Credits,
}

impl<I: Io> Port<I> {
    pub fn new(io: I) -> Self {
        Self { io, credits: Credits::new(TX_CREDITS) }
    }

    pub fn shared_with_others(mut self) -> Self {
        self.credits.depth = 1;
        self
    }

    fn read(&mut self, offset: usize) -> u32 {
        self.io.read(offset, Width::U32)
    }

    fn write(&mut self, offset: usize, value: u32) {
        self.io.write(offset, Width::U32, value);
    }

    /// Enables the transmitter and receiver if either is off: CR with TX_DIS and RX_DIS
    /// clear and TX_EN and RX_EN set, the other bits as read (the self-clearing resets
    /// never written back). Nothing else changes: the baud rate is the bootloader's.
    pub fn init(&mut self) {
        let enabled = (CR::TX_EN::SET + CR::RX_EN::SET).value;
        let disabled = (CR::TX_DIS::SET + CR::RX_DIS::SET).value;
        let cr = self.read(offset::CR);
        if cr & disabled != 0 || cr & enabled != enabled {
            let keep = !(disabled | (CR::RXRST::SET + CR::TXRST::SET + CR::RSTTO::SET).value);
            self.write(offset::CR, (cr & keep) | enabled);
        }
    }

    /// SR.TXEMPTY and not SR.TACTIVE.
    pub fn wait_idle(&mut self) -> bool {
        wait(&mut self.io, |io| {
            let sr = io.read(offset::SR, Width::U32);
            sr & SR::TXEMPTY::SET.value != 0 && sr & SR::TACTIVE::SET.value == 0
        })
    }

    /// Sends a byte, waiting (bounded) for room.
    pub fn put(&mut self, b: u8) {
        if self.credits.take(&mut self.io, tx_space) {
            self.write(offset::FIFO, b as u32);
        }
    }

    /// Bytes [`Port::put`] can send now without waiting.
    pub fn tx_room(&mut self) -> usize {
        self.credits.room(&mut self.io, tx_space)
    }

    /// The FIFO register while SR.RXEMPTY is clear.
    pub fn get(&mut self) -> Option<u8> {
        if self.read(offset::SR) & SR::RXEMPTY::SET.value != 0 {
            return None;
        }
        Some(self.read(offset::FIFO) as u8)
    }

    /// Every interrupt masked (IDR), the trigger at one byte and the timeout at Linux's
    /// default, stale status cleared, then RXTRIG and TIMEOUT unmasked (IER). The order of
    /// Linux's cdns_uart_startup.
    pub fn enable_receive_interrupt(&mut self) {
        self.write(offset::IDR, INT::ALL::SET.value);
        self.write(offset::RXWM, RX_TRIGGER);
        self.write(offset::RXTOUT, RX_TIMEOUT);
        self.write(offset::ISR, INT::ALL::SET.value);
        self.write(offset::IER, (INT::RXTRIG::SET + INT::TIMEOUT::SET).value);
    }

    /// ISR's sticky bits written back to clear them, before the FIFO is read (as Linux's
    /// cdns_uart_isr does): a byte that arrives after this raises RXTRIG again, one that
    /// arrived before is read by the caller's drain, so none waits without an interrupt.
    pub fn ack_receive_interrupt(&mut self) {
        let isr = self.read(offset::ISR);
        if isr != 0 {
            self.write(offset::ISR, isr);
        }
    }
}

/// SR.TXEMPTY: [`TX_CREDITS`] bytes of room; not SR.TXFULL: one byte's.
fn tx_space<I: Io>(io: &mut I) -> Room {
    let sr = io.read(offset::SR, Width::U32);
    if sr & SR::TXEMPTY::SET.value != 0 {
        Room::Empty
    } else if sr & SR::TXFULL::SET.value == 0 {
        Room::One
    } else {
        Room::Full
    }
}
