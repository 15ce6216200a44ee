//! The 16550/8250 family as the hypervisor's console: National Semiconductor's PC16550D
//! register set (registers 0-7, in units of the board's register stride), the FIFO that
//! the 16550A made usable, and the Synopsys DesignWare APB UART's additions (the USR
//! register and its "busy" behaviour), following Linux's drivers/tty/serial/8250/
//! (8250_port.c, 8250_dw.c) where the datasheets leave a choice.
//!
//! Register `n` is at byte offset `n << reg_shift` and accessed `io_width` wide; only the
//! low byte of a 32-bit access means anything. The line settings (divisor, LCR) are the
//! bootloader's and are not changed, except to close a divisor latch left open.

use super::{Credits, Io, Room, Width, wait};
use tock_registers::register_bitfields;

/// Register numbers, in units of the register stride (PC16550D, Table II; DesignWare APB
/// UART databook for USR).
pub mod reg {
    /// Receiver buffer (read; THR on writes, DLL while LCR.DLAB).
    pub const RBR: usize = 0;
    /// Transmitter holding register (write).
    pub const THR: usize = 0;
    /// Interrupt enable (DLM while LCR.DLAB).
    pub const IER: usize = 1;
    /// Interrupt identification (read).
    pub const IIR: usize = 2;
    /// FIFO control (write).
    pub const FCR: usize = 2;
    pub const LCR: usize = 3;
    pub const MCR: usize = 4;
    pub const LSR: usize = 5;
    /// DesignWare: UART status, at byte offset 0x7c with the usual reg-shift 2.
    pub const USR: usize = 0x1f;
}

register_bitfields! {u8,
    /// IER (PC16550D 8.5; bit 7 is DesignWare's PTIME).
    pub IER [
        /// Received data available (and, with FIFOs, character timeout).
        ERBFI OFFSET(0) NUMBITS(1) [],
        /// Transmitter holding register empty.
        ETBEI OFFSET(1) NUMBITS(1) [],
        /// Receiver line status.
        ELSI OFFSET(2) NUMBITS(1) [],
        /// Modem status.
        EDSSI OFFSET(3) NUMBITS(1) [],
        /// DesignWare: programmable THRE mode, which turns LSR.THRE into "FIFO full".
        PTIME OFFSET(7) NUMBITS(1) []
    ],
    /// FCR (PC16550D 8.4).
    pub FCR [
        /// FIFOs enabled. Changing it empties both.
        FIFOE OFFSET(0) NUMBITS(1) [],
        /// Empty the receive FIFO (self-clearing).
        RFIFOR OFFSET(1) NUMBITS(1) [],
        /// Empty the transmit FIFO (self-clearing).
        XFIFOR OFFSET(2) NUMBITS(1) [],
        /// Receive trigger level: 0 is one byte.
        RT OFFSET(6) NUMBITS(2) []
    ],
    /// LCR (PC16550D 8.6).
    pub LCR [
        /// Stick parity: not every DesignWare part implements it, so a read-back may
        /// differ here (Linux's dw8250_check_lcr ignores it too).
        SPAR OFFSET(5) NUMBITS(1) [],
        /// Divisor latch access: registers 0 and 1 are the baud divisor while set.
        DLAB OFFSET(7) NUMBITS(1) []
    ],
    /// MCR (PC16550D 8.7).
    pub MCR [
        /// OUT2: on PC-style boards it gates the interrupt line; Linux raises it on every
        /// port with an interrupt (serial8250_do_startup).
        OUT2 OFFSET(3) NUMBITS(1) []
    ],
    /// LSR (PC16550D 8.8).
    pub LSR [
        /// Data ready: the receive FIFO holds a byte.
        DR OFFSET(0) NUMBITS(1) [],
        /// Break interrupt.
        BI OFFSET(4) NUMBITS(1) [],
        /// Transmitter holding register (with FIFOs: the transmit FIFO) empty.
        THRE OFFSET(5) NUMBITS(1) [],
        /// Transmitter empty: holding register and shift register both.
        TEMT OFFSET(6) NUMBITS(1) []
    ],
    /// DesignWare USR.
    pub USR [
        /// Serial transfer in progress: an LCR write now is ignored.
        BUSY OFFSET(0) NUMBITS(1) []
    ]
}

/// IIR's interrupt identification values (PC16550D Table IV) and the FIFO bits.
pub mod iir {
    /// Bits 7:6 both set: FIFOs enabled (16550A and later).
    pub const FIFOS_ENABLED: u8 = 0xc0;
    /// Character timeout, matched against bits 5:0.
    pub const RX_TIMEOUT: u8 = 0x0c;
    /// DesignWare busy detect: LCR was written while USR.BUSY; cleared by reading USR.
    /// Bit 0 is set, which to a plain 16550 driver means "no interrupt", so one that only
    /// looks at bit 0 takes the interrupt forever. Matched against bits 2:0, as Linux does.
    pub const BUSY: u8 = 0x07;
}

/// Which member of the family: what the driver may assume about FIFOs and USR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// `ns8250`, `ns16450`, `ns16550`: no FIFOs used (the original 16550's are broken;
    /// Linux drives "ns16550" as PORT_16550 with a one-byte FIFO).
    NoFifo,
    /// `ns16550a` and later (`ns16750`, `ns16850`, ...): FIFOs of at least 16 bytes.
    Fifo,
    /// Synopsys DesignWare APB UART (`snps,dw-apb-uart`): a 16550A with the USR register,
    /// an LCR that ignores writes while busy, and the busy-detect interrupt.
    DesignWare,
}

/// Transmit FIFO depth assumed when IIR says the FIFOs are on: the 16550A's 16 bytes, the
/// smallest of the family (DesignWare parts have 16 or more).
const TX_FIFO_DEPTH: u8 = 16;

/// Times an LCR write is retried on a DesignWare part (Linux's dw8250_check_lcr: 1000).
const LCR_TRIES: usize = 1000;

/// Bytes of registers from the base this driver needs: up to LSR, or USR on DesignWare.
pub fn span(variant: Variant, reg_shift: u8, io_width: Width) -> u64 {
    let last = if variant == Variant::DesignWare { reg::USR } else { reg::LSR };
    ((last << reg_shift) + io_width.bytes()) as u64
}

pub struct Port<I> {
    pub(super) io: I,
    variant: Variant,
    reg_shift: u8,
    io_width: Width,
    credits: Credits,
    /// The FIFOs are on (IIR said so after the FCR write in [`Port::init`]).
    fifos: bool,
    /// False if the divisor latch was open and could not be closed: registers 0 and 1 are
    /// then the baud divisor, and the port leaves them alone.
    usable: bool,
}

impl<I: Io> Port<I> {
    /// No register is touched until the first call; until [`Port::init`] has seen the
    /// FIFOs on, one byte is written per LSR.THRE.
    pub fn new(io: I, variant: Variant, reg_shift: u8, io_width: Width) -> Self {
        Self { io, variant, reg_shift, io_width, credits: Credits::new(1), fifos: false, usable: true }
    }

    pub fn shared_with_others(mut self) -> Self {
        self.credits.depth = 1;
        self
    }

    fn read(&mut self, reg: usize) -> u8 {
        self.io.read(reg << self.reg_shift, self.io_width) as u8
    }

    fn write(&mut self, reg: usize, value: u8) {
        self.io.write(reg << self.reg_shift, self.io_width, value as u32);
    }

    /// Once the transmitter is idle (else the UART is left as it is): FIFOs on with a
    /// one-byte receive trigger, without emptying them (members without usable FIFOs are
    /// left alone), and IIR asked whether they are; the divisor latch closed if it was
    /// left open; all interrupts off until [`Port::enable_receive_interrupt`] (which also
    /// clears DesignWare's PTIME, which would invert LSR.THRE). Bytes waiting in the
    /// receive FIFO may be lost if the FIFOs were off.
    pub fn init(&mut self) {
        if !self.wait_idle() {
            return;
        }
        if self.variant != Variant::NoFifo {
            self.write(reg::FCR, FCR::FIFOE::SET.value);
            self.fifos = self.read(reg::IIR) & iir::FIFOS_ENABLED == iir::FIFOS_ENABLED;
            if self.fifos {
                self.credits.depth = TX_FIFO_DEPTH;
            }
        }
        let lcr = self.read(reg::LCR);
        if lcr & LCR::DLAB::SET.value != 0 {
            self.usable = self.write_lcr(lcr & !LCR::DLAB::SET.value);
        }
        if self.usable {
            self.write(reg::IER, 0);
        }
    }

    /// Writes LCR. A DesignWare UART ignores an LCR write while USR.BUSY (a byte in a FIFO
    /// or on the line) and raises its busy-detect interrupt instead. As Linux's 8250_dw
    /// does (dw8250_check_lcr, dw8250_force_idle): read it back; if it did not take, empty
    /// the FIFOs and the receive buffer and write it again, at most [`LCR_TRIES`] times.
    /// True if the value took.
    fn write_lcr(&mut self, value: u8) -> bool {
        self.write(reg::LCR, value);
        if self.variant != Variant::DesignWare {
            return true;
        }
        let ignored = !LCR::SPAR::SET.value;
        for _ in 0..LCR_TRIES {
            if (self.read(reg::LCR) ^ value) & ignored == 0 {
                return true;
            }
            self.force_idle();
            self.write(reg::LCR, value);
        }
        false
    }

    /// Linux's dw8250_force_idle: empty both FIFOs, then take a byte from the receive
    /// buffer, which with the FIFOs on only if LSR.DR says there is one (a part built with
    /// PSLVERR_RESP_EN answers a read of an empty FIFO with a bus error).
    fn force_idle(&mut self) {
        if self.fifos {
            self.write(reg::FCR, (FCR::FIFOE::SET + FCR::RFIFOR::SET + FCR::XFIFOR::SET).value);
            if self.read(reg::LSR) & LSR::DR::SET.value == 0 {
                return;
            }
        }
        self.read(reg::RBR);
    }

    /// LSR.TEMT: holding and shift register empty.
    pub fn wait_idle(&mut self) -> bool {
        let (shift, width) = (self.reg_shift, self.io_width);
        wait(&mut self.io, |io| line_status(io, shift, width) & LSR::TEMT::SET.value != 0)
    }

    /// LSR.THRE says the transmit FIFO is empty: a FIFO's worth of room. There is no "not
    /// full" bit, so nothing is written while THRE is clear and no credits are left.
    pub fn put(&mut self, b: u8) {
        if !self.usable {
            return;
        }
        let (shift, width) = (self.reg_shift, self.io_width);
        let room = |io: &mut I| {
            if line_status(io, shift, width) & LSR::THRE::SET.value != 0 { Room::Empty } else { Room::Full }
        };
        if self.credits.take(&mut self.io, room) {
            self.write(reg::THR, b);
        }
    }

    /// Bytes [`Port::put`] can send now without waiting.
    pub fn tx_room(&mut self) -> usize {
        if !self.usable {
            return 0;
        }
        let (shift, width) = (self.reg_shift, self.io_width);
        let room = |io: &mut I| {
            if line_status(io, shift, width) & LSR::THRE::SET.value != 0 { Room::Empty } else { Room::Full }
        };
        self.credits.room(&mut self.io, room)
    }

    /// RBR while LSR.DR is set; never RBR of an empty FIFO.
    pub fn get(&mut self) -> Option<u8> {
        if !self.usable || self.read(reg::LSR) & LSR::DR::SET.value == 0 {
            return None;
        }
        Some(self.read(reg::RBR))
    }

    /// MCR.OUT2 raised (see [`MCR::OUT2`]), then IER.ERBFI alone: received data and
    /// character timeout.
    pub fn enable_receive_interrupt(&mut self) {
        if !self.usable {
            return;
        }
        let mcr = self.read(reg::MCR);
        if mcr & MCR::OUT2::SET.value == 0 {
            self.write(reg::MCR, mcr | MCR::OUT2::SET.value);
        }
        self.write(reg::IER, IER::ERBFI::SET.value);
    }

    /// Received data and the character timeout are quieted by reading RBR until LSR.DR is
    /// clear. A DesignWare part has two more causes, handled as Linux's dw8250_handle_irq
    /// does: a character timeout with nothing to read (one read of RBR ends it), and busy
    /// detect (reading USR ends it).
    pub fn ack_receive_interrupt(&mut self) {
        if self.variant != Variant::DesignWare || !self.usable {
            return;
        }
        let id = self.read(reg::IIR);
        if id & 0x3f == iir::RX_TIMEOUT && self.read(reg::LSR) & (LSR::DR::SET + LSR::BI::SET).value == 0 {
            self.read(reg::RBR);
        }
        if id & iir::BUSY == iir::BUSY {
            self.read(reg::USR);
        }
    }
}

fn line_status<I: Io>(io: &mut I, shift: u8, width: Width) -> u8 {
    io.read(reg::LSR << shift, width) as u8
}
