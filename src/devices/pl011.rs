//! An emulated PL011 UART for a guest (ARM DDI 0183): the registers Linux's amba-pl011
//! driver uses, a receive FIFO fed from the physical console, transmit straight through, and
//! a level interrupt line (UARTINTR) the VM connects to an SPI.
#![forbid(unsafe_code)]

use crate::hw::pl011::offset::{CR, DMACR, DR, FBRD, FR, IBRD, ICR, IFLS, ILPR, IMSC, LCR_H, MIS, RIS, RSR};
use crate::hw::pl011::{CR_RESET, ID, ID_OFFSET, IFLS_RESET, INT};
use crate::util::FixedVec;

/// The UART's register frame.
pub const SIZE: u64 = crate::hw::pl011::SIZE;
/// Receive FIFO depth (PL011: 32 entries).
pub const FIFO_DEPTH: usize = 32;

/// How many 32-bit registers, from DR at offset 0 to DMACR, [`Pl011::registers`] gives
/// for the register page (the peripheral IDs, [`ID_REGISTERS`], never change).
pub const REGISTER_WORDS: usize = (DMACR / 4 + 1) as usize;
/// Offset and values of the peripheral and cell ID registers.
pub const ID_REGISTERS: (u64, [u32; 8]) = (ID_OFFSET, ID);
/// The last ID register.
const ID_END: u64 = ID_OFFSET + 4 * (ID.len() as u64 - 1);

/// FR bits: receive FIFO empty, transmit FIFO empty.
const FR_RXFE: u32 = crate::hw::pl011::FR::RXFE::SET.value;
const FR_TXFE: u32 = crate::hw::pl011::FR::TXFE::SET.value;
/// Interrupt bits: receive, transmit, receive timeout.
pub const INT_RX: u32 = INT::RX::SET.value;
pub const INT_TX: u32 = INT::TX::SET.value;
pub const INT_RT: u32 = INT::RT::SET.value;

/// Console input the hypervisor holds while the guest's FIFO is full: a line pasted or
/// sent at once is longer than 32 bytes, and the physical UART has already been drained.
pub const BACKLOG: usize = 4096;

#[derive(Debug, Default)]
pub struct Pl011 {
    rx: FixedVec<u8, FIFO_DEPTH>,
    /// Input waiting for room in the FIFO, oldest first. Its capacity is allocated when the
    /// UART is created and never grows: input arrives in an interrupt handler, which must
    /// not allocate.
    backlog: alloc::collections::VecDeque<u8>,
    /// Bytes dropped because the FIFO and the backlog were full.
    pub overruns: u64,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    dmacr: u32,
    /// The line level last handed to the interrupt controller.
    reported_line: bool,
}

/// What a register access did besides returning a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effect {
    /// A byte the guest transmitted (a DR write). Transmission is immediate, so such a
    /// write changes no register: [`Pl011::registers`] reads the same after it.
    pub tx: Option<u8>,
}

impl Pl011 {
    pub fn new() -> Self {
        // Reset values: UART off with TX and RX enabled bits set, IFLS halfway.
        Self {
            cr: CR_RESET,
            ifls: IFLS_RESET,
            backlog: alloc::collections::VecDeque::with_capacity(BACKLOG),
            ..Default::default()
        }
    }

    /// Raw interrupt status: transmit always ready (the physical console is never behind),
    /// receive while the FIFO holds data.
    fn ris(&self) -> u32 {
        let rx = if self.rx.is_empty() { 0 } else { INT_RX | INT_RT };
        INT_TX | rx
    }

    /// The interrupt line: any unmasked raw interrupt.
    pub fn line(&self) -> bool {
        self.ris() & self.imsc != 0
    }

    /// The new line level if it changed since the last call (so the caller touches the
    /// interrupt controller only on edges of the line).
    pub fn line_change(&mut self) -> Option<bool> {
        let line = self.line();
        (line != self.reported_line).then(|| {
            self.reported_line = line;
            line
        })
    }

    /// A byte from the physical console. Returns false if the FIFO was full (the byte is
    /// dropped and counted as an overrun, as the hardware would).
    pub fn receive(&mut self, byte: u8) -> bool {
        if self.backlog.is_empty() && self.rx.push(byte).is_ok() {
            return true;
        }
        if self.backlog.len() < BACKLOG {
            self.backlog.push_back(byte);
            return true;
        }
        self.overruns += 1;
        false
    }

    pub fn read(&mut self, offset: u64, size: u8) -> u64 {
        if size != 4 && !(size == 1 || size == 2) {
            return 0;
        }
        if offset == DR && !self.rx.is_empty() {
            let byte = self.rx.remove(0);
            if let Some(next) = self.backlog.pop_front() {
                let _ = self.rx.push(next);
            }
            return byte as u64;
        }
        self.peek(offset) as u64
    }

    /// The 32-bit register at `offset` as a read would return it, without the read's side
    /// effect (only a DR read has one, taking a received byte). 0 for offsets that are not
    /// registers.
    pub fn peek(&self, offset: u64) -> u32 {
        match offset {
            DR => self.rx.first().map_or(0, |&b| b as u32),
            RSR => 0,
            FR => FR_TXFE | if self.rx.is_empty() { FR_RXFE } else { 0 },
            ILPR => 0,
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr_h,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc,
            RIS => self.ris(),
            MIS => self.ris() & self.imsc,
            DMACR => self.dmacr,
            ID_OFFSET..=ID_END if offset.is_multiple_of(4) => ID[((offset - ID_OFFSET) / 4) as usize],
            _ => 0,
        }
    }

    /// Whether some read changes the UART (DR while received bytes wait). While it does
    /// not, every read is [`peek`](Self::peek), and the VM lets the guest read a page of
    /// register values instead of trapping each read (see [`REGISTER_WORDS`]).
    pub fn reads_have_effects(&self) -> bool {
        !self.rx.is_empty()
    }

    /// The values of the registers from DR to DMACR, in order of offset, for the register
    /// page.
    pub fn registers(&self) -> [u32; REGISTER_WORDS] {
        core::array::from_fn(|i| self.peek(4 * i as u64))
    }

    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Effect {
        let mut effect = Effect::default();
        if size != 4 && !(size == 1 || size == 2) {
            return effect;
        }
        let v = value as u32;
        match offset {
            DR => effect.tx = Some(v as u8),
            RSR => {}
            IBRD => self.ibrd = v & 0xffff,
            FBRD => self.fbrd = v & 0x3f,
            LCR_H => self.lcr_h = v & 0xff,
            CR => self.cr = v & 0xff87,
            IFLS => self.ifls = v & 0x3f,
            IMSC => self.imsc = v & INT::ALL::SET.value,
            // Receive interrupts clear only when the FIFO drains; transmit is always ready.
            ICR => {}
            DMACR => self.dmacr = v & 0x7,
            _ => {}
        }
        effect
    }
}

/// Whether `offset` is one of the registers above (else it reads as 0 and ignores writes).
fn is_register(offset: u64) -> bool {
    matches!(offset, DR | RSR | FR | ILPR | IBRD | FBRD | LCR_H | CR | IFLS | IMSC | RIS | MIS | ICR | DMACR)
        || (ID_OFFSET..=ID_END).contains(&offset) && offset.is_multiple_of(4)
}

impl super::Mmio for Pl011 {
    fn read(&mut self, offset: u64, size: u8, _: &mut super::Ctx<'_>) -> super::Effects {
        let value = Pl011::read(self, offset, size);
        let line = self.line_change().map(super::Signal::Level);
        super::Effects { value, line, unknown: !is_register(offset), ..Default::default() }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64, _: &mut super::Ctx<'_>) -> super::Effects {
        let tx = Pl011::write(self, offset, size, value).tx;
        let line = self.line_change().map(super::Signal::Level);
        super::Effects { tx, line, unknown: !is_register(offset), ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_as_a_pl011() {
        let mut u = Pl011::new();
        let ids: Vec<u64> = (0..8).map(|i| u.read(0xfe0 + 4 * i, 4)).collect();
        assert_eq!(ids, vec![0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        assert_eq!(u.read(CR, 4), 0x300);
    }

    #[test]
    fn line_changes_are_reported_once() {
        let mut u = Pl011::new();
        assert_eq!(u.line_change(), None);
        u.write(IMSC, 4, INT_TX as u64);
        assert_eq!(u.line_change(), Some(true));
        assert_eq!(u.line_change(), None);
        u.write(IMSC, 4, 0);
        assert_eq!(u.line_change(), Some(false));
    }

    #[test]
    fn transmit_goes_straight_out() {
        let mut u = Pl011::new();
        assert_eq!(u.write(DR, 4, 0x141), Effect { tx: Some(0x41) });
        assert_eq!(u.read(FR, 4) as u32 & FR_TXFE, FR_TXFE);
        assert!(!u.line(), "no interrupt unmasked");
        u.write(IMSC, 4, INT_TX as u64);
        assert!(u.line(), "transmit interrupt when unmasked");
    }

    #[test]
    fn receive_fifo_interrupt_and_overrun() {
        let mut u = Pl011::new();
        u.write(IMSC, 4, (INT_RX | INT_RT) as u64);
        assert!(!u.line());
        assert_eq!(u.read(FR, 4) as u32 & FR_RXFE, FR_RXFE);
        assert!(u.receive(b'a') && u.receive(b'b'));
        assert!(u.line());
        assert_eq!(u.read(MIS, 4) as u32, INT_RX | INT_RT);
        assert_eq!(u.read(DR, 4), b'a' as u64);
        assert_eq!(u.read(DR, 4), b'b' as u64);
        assert!(!u.line(), "FIFO drained");
        assert_eq!(u.read(DR, 4), 0, "empty FIFO reads 0");
        // Beyond the FIFO, input waits in the backlog and arrives in order.
        for i in 0..FIFO_DEPTH + BACKLOG {
            assert!(u.receive(i as u8));
        }
        assert!(!u.receive(0xff));
        assert_eq!(u.overruns, 1);
        for i in 0..FIFO_DEPTH + BACKLOG {
            assert_eq!(u.read(DR, 4), (i as u8) as u64, "byte {i}");
        }
        assert_eq!(u.read(FR, 4) as u32 & FR_RXFE, FR_RXFE);
    }

    /// The register page the guest reads instead of trapping must say exactly what reads
    /// would, and may stand in only while no read has an effect.
    #[test]
    fn peek_and_the_register_image_match_reads() {
        let mut u = Pl011::new();
        u.write(IMSC, 4, (INT_RX | INT_TX) as u64);
        u.write(IBRD, 4, 13);
        let check = |u: &mut Pl011| {
            assert!(!u.reads_have_effects());
            let image = u.registers();
            for off in (0..SIZE).step_by(4) {
                let peeked = u.peek(off);
                assert_eq!(u.read(off, 4) as u32, peeked, "offset {off:#x}");
                if off <= DMACR {
                    assert_eq!(image[(off / 4) as usize], peeked, "offset {off:#x} in the image");
                } else if (ID_REGISTERS.0..SIZE).contains(&off) {
                    assert_eq!(ID_REGISTERS.1[((off - ID_REGISTERS.0) / 4) as usize], peeked);
                } else {
                    assert_eq!(peeked, 0, "offset {off:#x} outside the image reads 0");
                }
            }
        };
        check(&mut u);
        assert!(u.receive(b'x'));
        assert!(u.reads_have_effects(), "a DR read would take the byte");
        assert_eq!(u.peek(DR), b'x' as u32);
        assert_eq!(u.peek(FR) & FR_RXFE, 0);
        assert_eq!(u.read(DR, 4), b'x' as u64, "peek left it there");
        check(&mut u);
        assert_eq!(u.registers()[(MIS / 4) as usize], INT_TX, "RX cleared, TX still unmasked");
        // What the VM relies on to skip rewriting the page after each character.
        let before = u.registers();
        assert!(u.write(DR, 4, b'y' as u64).tx.is_some());
        assert_eq!(u.registers(), before, "a transmitted byte changes no register");
    }

    #[test]
    fn bad_offsets_and_widths_are_harmless() {
        let mut u = Pl011::new();
        for off in 0..SIZE {
            for size in [1u8, 2, 4, 8] {
                let _ = u.read(off, size);
                let _ = u.write(off, size, u64::MAX);
            }
        }
        assert_eq!(u.write(DR, 8, 0x41), Effect::default(), "64-bit access ignored");
    }
}
