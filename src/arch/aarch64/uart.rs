//! The console UART: the portable drivers (`hw::uart`: PL011, 16550 family, Cadence) over
//! MMIO, and an unlocked writer for early and panic messages.

use super::mmio::Window;
use crate::hw::uart::Port;
use crate::platform::{self, Region, UartKind};
use core::fmt::{self, Write};

/// Last-resort UART for messages before (or without) a usable DTB: QEMU virt's PL011. Used
/// only to say why the hypervisor cannot start.
pub const FALLBACK_UART: platform::Uart = platform::Uart {
    kind: UartKind::Pl011,
    region: Region { base: 0x0900_0000, size: 0x1000 },
    from_stdout_path: false,
    intid: None,
};

/// The console UART of whatever kind the DTB named.
pub struct Uart(Port<Window>);

impl Uart {
    /// # Safety
    /// `uart` must be the DTB's console UART (or the fallback), reachable as device memory.
    pub unsafe fn new(uart: platform::Uart) -> Self {
        // SAFETY: forwarded from the caller.
        Self(Port::new(uart.kind, unsafe { Window::new(uart.region) }))
    }

    /// For a port that another writer may share (the panic path's fallback): the status
    /// register before every byte.
    pub fn shared_with_others(self) -> Self {
        Self(self.0.shared_with_others())
    }

    /// Makes the UART usable without changing its baud rate (`hw::uart::Port::init`).
    pub fn init(&mut self) {
        self.0.init();
    }

    /// Waits (bounded) until everything written has left the UART. False if it did not.
    pub fn wait_idle(&mut self) -> bool {
        self.0.wait_idle()
    }

    pub fn put(&mut self, b: u8) {
        self.0.put(b);
    }

    /// Bytes `put` can send now without waiting.
    pub fn tx_room(&mut self) -> usize {
        self.0.tx_room()
    }

    /// A received byte, if the FIFO holds one.
    pub fn get(&mut self) -> Option<u8> {
        self.0.get()
    }

    /// Turns on the receive interrupts (data and timeout).
    pub fn enable_receive_interrupt(&mut self) {
        self.0.enable_receive_interrupt();
    }

    /// Quiets the receive interrupt's other causes; then read with `get` until empty.
    pub fn ack_receive_interrupt(&mut self) {
        self.0.ack_receive_interrupt();
    }
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(s)
    }
}

/// Prints without locks: for errors before the MMU is on, when locks cannot be trusted yet,
/// and for the panic path when the console's holder never lets go. `uart` is the DTB's
/// console, or QEMU virt's PL011 when there is none.
pub fn early_print(uart: Option<platform::Uart>, args: fmt::Arguments<'_>) {
    let uart = uart.unwrap_or(FALLBACK_UART);
    // SAFETY: the DTB's console UART or QEMU's; with the MMU off every access is a device
    // access, with it on the EL2 map has the console as device memory.
    let mut port = unsafe { Uart::new(uart) }.shared_with_others();
    port.0.enable_transmitter();
    let _ = port.write_fmt(args);
}
