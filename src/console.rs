//! The console: the physical UART behind one lock, and the `log` backend that prefixes
//! every line with a timestamp, the level and the pCPU id. The UART drivers are portable
//! register logic (`hw::uart`: PL011, 16550 family, Cadence); `arch::Uart` gives them MMIO.
#![forbid(unsafe_code)]

use crate::arch::{self, Uart};
use crate::platform;
use crate::sync::IrqLock;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

/// The console; `None` until the MMU is on (or when the DTB names no console UART).
static CONSOLE: IrqLock<Option<Uart>> = IrqLock::new(None);
/// The console UART (kind and registers), for the panic path's unlocked writer.
static UART: spin::Once<platform::Uart> = spin::Once::new();
/// Counter value at boot, for timestamps.
static BOOT_COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn set_boot_time(counter: u64) {
    BOOT_COUNTER.store(counter, Ordering::Relaxed);
}

/// Prints without locks or the log prefix, on the DTB's console UART (`uart`) or QEMU
/// virt's PL011: for errors before the MMU is on, when locks cannot be trusted yet.
pub fn early_print(uart: Option<platform::Uart>, args: fmt::Arguments<'_>) {
    arch::early_print(uart, args);
}

/// Installs the console (made usable: FIFOs on, transmitter enabled) and the logger.
/// Called once by the primary with the MMU on, with the UART the boot flow made from the
/// platform's console (`uart`, its description).
pub fn init(uart: Option<(Uart, platform::Uart)>) {
    if let Some((mut port, uart)) = uart {
        port.init();
        UART.call_once(|| uart);
        *CONSOLE.lock() = Some(port);
    }
    // Fails only if a logger is already set, which would be a second call: ignore.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

/// Turns on the receive interrupts (RX and RX timeout) of the physical UART.
pub fn enable_receive_interrupt() {
    if let Some(port) = CONSOLE.lock().as_mut() {
        port.enable_receive_interrupt();
    }
}

/// Quiets the physical UART's receive interrupt other than by reading (a DesignWare
/// UART's busy detect, a Cadence UART's sticky status). Call it first in the interrupt's
/// handler, then [`receive`] until it returns 0.
pub fn ack_receive_interrupt() {
    if let Some(port) = CONSOLE.lock().as_mut() {
        port.ack_receive_interrupt();
    }
}

/// Takes every byte waiting in the physical UART's receive FIFO (at most `buf.len()`).
pub fn receive(buf: &mut [u8]) -> usize {
    let mut n = 0;
    if let Some(port) = CONSOLE.lock().as_mut() {
        while n < buf.len() {
            match port.get() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
    }
    n
}

/// Writes raw bytes (a guest's console output) to the physical UART.
pub fn write_bytes(bytes: &[u8]) {
    if let Some(port) = CONSOLE.lock().as_mut() {
        for &b in bytes {
            port.put(b);
        }
    }
}

/// Writes `args` to the console as they are (the self-test report uses this).
pub fn print(args: fmt::Arguments<'_>) {
    if let Some(port) = CONSOLE.lock().as_mut() {
        let _ = port.write_fmt(args);
    }
}

/// Waits (bounded) until the console's last byte has left the UART: before powering off or
/// resetting the machine, which would cut off what is still in the transmit FIFO.
pub fn flush() {
    if let Some(mut guard) = CONSOLE.try_lock_for(1_000_000)
        && let Some(port) = guard.as_mut()
    {
        port.wait_idle();
    }
}

/// For the panic handler: waits a bounded time for the console, then writes regardless.
pub fn print_panic(args: fmt::Arguments<'_>) {
    match CONSOLE.try_lock_for(1_000_000) {
        Some(mut guard) => {
            if let Some(port) = guard.as_mut() {
                let _ = port.write_fmt(args);
            }
        }
        None => early_print(UART.get().copied(), args),
    }
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `cpuN`, or `cpu?` before per-pCPU data exists.
pub struct CpuLabel(pub Option<usize>);

impl fmt::Display for CpuLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "cpu{n}"),
            None => write!(f, "cpu?"),
        }
    }
}

struct Logger;
static LOGGER: Logger = Logger;

/// Microseconds since boot.
pub fn uptime_us() -> u64 {
    let ticks = arch::counter().wrapping_sub(BOOT_COUNTER.load(Ordering::Relaxed));
    (ticks as u128 * 1_000_000 / arch::counter_frequency() as u128) as u64
}

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let us = uptime_us();
        let level = match record.level() {
            log::Level::Error => 'E',
            log::Level::Warn => 'W',
            log::Level::Info => 'I',
            log::Level::Debug => 'D',
            log::Level::Trace => 'T',
        };
        let cpu = arch::cpu_index();
        let cpu = CpuLabel(cpu);
        print(format_args!("[{:5}.{:06}] {level} {cpu}: {}\n", us / 1_000_000, us % 1_000_000, record.args()));
    }

    fn flush(&self) {}
}
