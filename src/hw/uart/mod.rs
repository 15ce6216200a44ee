//! The console UARTs' drivers at register level: the PL011, the 16550 family and the
//! Cadence UART, each written against [`Io`] (a register file read and written at byte
//! offsets with a width) and a [`Clock`] for bounded waits. Nothing here touches the
//! hardware: the arch layer hands the drivers real MMIO (`arch::aarch64::mmio::Window`), the
//! host tests hand them register-level fakes that model the FIFOs and status bits.
//!
//! Every wait is bounded ([`WAIT_US`]): a wedged UART must not hang the hypervisor, so a
//! byte that cannot be sent in time is dropped. The receive path is the same for all three:
//! [`Port::ack_receive_interrupt`] first, then [`Port::get`] until it says empty.
#![forbid(unsafe_code)]

pub mod cadence;
pub mod ns16550;
pub mod pl011;

use core::fmt;

/// How wide one register access is: a byte, or a 32-bit word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Width {
    #[default]
    U8,
    U32,
}

impl Width {
    pub const fn bytes(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::U32 => 4,
        }
    }
}

/// A monotonic counter for bounded waits.
pub trait Clock {
    /// The counter now, in ticks.
    fn now(&self) -> u64;
    /// Ticks in `us` microseconds.
    fn ticks_from_us(&self, us: u64) -> u64;
}

/// One UART's registers: what a driver needs from below.
pub trait Io: Clock {
    /// Reads `width` bytes at `offset` bytes from the UART's base (zero-extended).
    fn read(&mut self, offset: usize, width: Width) -> u32;
    /// Writes the low `width` bytes of `value` at `offset` bytes from the UART's base.
    fn write(&mut self, offset: usize, width: Width, value: u32);
}

/// How long a driver waits for its transmitter before it gives up: 100 ms. A full FIFO
/// drains in under 3 ms at 115200 baud; this is far more, and still not a hang.
pub const WAIT_US: u64 = 100_000;

/// Which UART the console is, with what the driver must know about its registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// The Arm PL011 (`arm,pl011`).
    #[default]
    Pl011,
    /// The 16550/8250 family: register `n` at byte offset `n << reg_shift`, each accessed
    /// `io_width` wide (the `reg-shift` and `reg-io-width` properties).
    Ns16550 { variant: ns16550::Variant, reg_shift: u8, io_width: Width },
    /// The Cadence UART of Zynq and Zynq UltraScale+ (`cdns,uart-r1p12`, `xlnx,xuartps`).
    Cadence,
}

impl Kind {
    /// Bytes of register space the driver touches from the base: a region shorter than
    /// this cannot be driven.
    pub fn span(&self) -> u64 {
        match *self {
            Self::Pl011 => pl011::SPAN,
            Self::Ns16550 { variant, reg_shift, io_width } => ns16550::span(variant, reg_shift, io_width),
            Self::Cadence => cadence::SPAN,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pl011 => write!(f, "pl011"),
            Self::Ns16550 { variant, reg_shift, io_width } => write!(
                f,
                "ns16550 ({}, reg-shift {reg_shift}, reg-io-width {})",
                match variant {
                    ns16550::Variant::NoFifo => "no FIFO",
                    ns16550::Variant::Fifo => "16550A",
                    ns16550::Variant::DesignWare => "DesignWare APB",
                },
                io_width.bytes()
            ),
            Self::Cadence => write!(f, "cadence"),
        }
    }
}

/// A console UART of any [`Kind`], over the register file `I`.
pub enum Port<I> {
    Pl011(pl011::Port<I>),
    Ns16550(ns16550::Port<I>),
    Cadence(cadence::Port<I>),
}

impl<I: Io> Port<I> {
    /// The driver for a UART of `kind` whose registers `io` reaches. Only the PL011's reads
    /// a register here (whether its FIFOs are on).
    pub fn new(kind: Kind, io: I) -> Self {
        match kind {
            Kind::Pl011 => Self::Pl011(pl011::Port::new(io)),
            Kind::Ns16550 { variant, reg_shift, io_width } => {
                Self::Ns16550(ns16550::Port::new(io, variant, reg_shift, io_width))
            }
            Kind::Cadence => Self::Cadence(cadence::Port::new(io)),
        }
    }

    /// For a port that another writer may share (the panic path's fallback): look at the
    /// status register before every byte, as a FIFO someone else is filling has fewer free
    /// entries than this port counted.
    pub fn shared_with_others(self) -> Self {
        match self {
            Self::Pl011(p) => Self::Pl011(p.shared_with_others()),
            Self::Ns16550(p) => Self::Ns16550(p.shared_with_others()),
            Self::Cadence(p) => Self::Cadence(p.shared_with_others()),
        }
    }

    /// Makes the UART usable as the console without changing its line settings (the
    /// bootloader chose the baud rate): the PL011's FIFOs on, the 16550's divisor latch
    /// closed and FIFOs on, the Cadence UART's transmitter and receiver enabled.
    pub fn init(&mut self) {
        match self {
            Self::Pl011(p) => p.enable_fifos(),
            Self::Ns16550(p) => p.init(),
            Self::Cadence(p) => p.init(),
        }
    }

    /// The least that makes a byte written come out, for the early and panic paths that do
    /// not [`Port::init`]: a Cadence UART's transmitter is disabled at reset (QEMU's
    /// `xlnx-zcu102` started without a bootloader), and enabling it touches nothing else. A
    /// PL011 or a 16550 transmits from reset (or from the bootloader's set-up) as it is.
    pub fn enable_transmitter(&mut self) {
        if let Self::Cadence(p) = self {
            p.init();
        }
    }

    /// Waits (bounded) until everything written has left the UART. False if it did not.
    pub fn wait_idle(&mut self) -> bool {
        match self {
            Self::Pl011(p) => p.wait_idle(),
            Self::Ns16550(p) => p.wait_idle(),
            Self::Cadence(p) => p.wait_idle(),
        }
    }

    /// Sends one byte, waiting (bounded) for room in the transmit FIFO.
    pub fn put(&mut self, b: u8) {
        match self {
            Self::Pl011(p) => p.put(b),
            Self::Ns16550(p) => p.put(b),
            Self::Cadence(p) => p.put(b),
        }
    }

    /// Bytes [`Port::put`] can send now without waiting: what the transmit FIFO has free
    /// as its status register says (a whole FIFO when empty, else one byte or none).
    pub fn tx_room(&mut self) -> usize {
        match self {
            Self::Pl011(p) => p.tx_room(),
            Self::Ns16550(p) => p.tx_room(),
            Self::Cadence(p) => p.tx_room(),
        }
    }

    /// A received byte, if the receive FIFO holds one.
    pub fn get(&mut self) -> Option<u8> {
        match self {
            Self::Pl011(p) => p.get(),
            Self::Ns16550(p) => p.get(),
            Self::Cadence(p) => p.get(),
        }
    }

    /// Turns on the receive interrupts (data and timeout).
    pub fn enable_receive_interrupt(&mut self) {
        match self {
            Self::Pl011(p) => p.enable_receive_interrupt(),
            Self::Ns16550(p) => p.enable_receive_interrupt(),
            Self::Cadence(p) => p.enable_receive_interrupt(),
        }
    }

    /// Quiets what raised the receive interrupt, other than the received bytes themselves;
    /// call it first, then [`Port::get`] until empty (which quiets the rest). An interrupt
    /// left asserted would be taken again at once, forever.
    pub fn ack_receive_interrupt(&mut self) {
        match self {
            Self::Pl011(_) => {}
            Self::Ns16550(p) => p.ack_receive_interrupt(),
            Self::Cadence(p) => p.ack_receive_interrupt(),
        }
    }

    /// The register file (for the host tests' fakes).
    pub fn io(&self) -> &I {
        match self {
            Self::Pl011(p) => &p.io,
            Self::Ns16550(p) => &p.io,
            Self::Cadence(p) => &p.io,
        }
    }
}

/// Text with `\n` sent as `\r\n`.
impl<I: Io> fmt::Write for Port<I> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
        Ok(())
    }
}

/// What a transmitter's status register says about room in its FIFO.
enum Room {
    /// Empty: a whole FIFO's worth ([`Credits::depth`]) may be written.
    Empty,
    /// Not full: one byte may be written.
    One,
    Full,
}

/// Bytes that may be written without looking at the status register: the free FIFO
/// entries the last status read showed, less those written since. Under TCG a status read
/// per byte cost about 0.5 us, 15 ms of a Linux boot's 15,000 console bytes. Exact only
/// while the port is the UART's one writer, as the console is; see
/// [`Port::shared_with_others`].
struct Credits {
    left: u8,
    /// Free entries an empty transmit FIFO has: 1 with the FIFOs off.
    depth: u8,
}

impl Credits {
    const fn new(depth: u8) -> Self {
        Self { left: 0, depth }
    }

    /// The credits left, after reading the status register (once) if there were none.
    fn room<I: Io>(&mut self, io: &mut I, room: impl FnOnce(&mut I) -> Room) -> usize {
        if self.left == 0 {
            self.left = match room(io) {
                Room::Empty => self.depth,
                Room::One => 1,
                Room::Full => 0,
            };
        }
        self.left as usize
    }

    /// Takes one credit, waiting (bounded: [`WAIT_US`]) for room when none is left. False
    /// if the transmitter never had room: the caller drops the byte.
    fn take<I: Io>(&mut self, io: &mut I, mut room: impl FnMut(&mut I) -> Room) -> bool {
        if self.left == 0 {
            let deadline = io.now() + io.ticks_from_us(WAIT_US);
            loop {
                match room(io) {
                    Room::Empty => {
                        self.left = self.depth;
                        break;
                    }
                    Room::One => {
                        self.left = 1;
                        break;
                    }
                    Room::Full => {}
                }
                if io.now() > deadline {
                    return false;
                }
            }
        }
        self.left -= 1;
        true
    }
}

/// Polls `done` until it says so (true) or [`WAIT_US`] pass (false).
fn wait<I: Io>(io: &mut I, mut done: impl FnMut(&mut I) -> bool) -> bool {
    let deadline = io.now() + io.ticks_from_us(WAIT_US);
    loop {
        if done(io) {
            return true;
        }
        if io.now() > deadline {
            return false;
        }
    }
}

#[cfg(test)]
mod tests;
