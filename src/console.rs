//! The console: a PL011 UART driver on tock-registers, and the `log` backend that prefixes
//! every line with a timestamp, the level and the pCPU id.

use crate::arch::aarch64::{cpu, mmio};
use crate::hw::pl011::{CR, FR, INT, LCR_H, Registers};
use crate::platform::{Region, Uart};
use crate::sync::IrqLock;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

/// Last-resort UART for messages before (or without) a usable DTB: QEMU virt's PL011. Used
/// only to say why the hypervisor cannot start.
pub const FALLBACK_UART: Region = Region { base: 0x0900_0000, size: 0x1000 };

/// Transmit FIFO depth of every PL011 revision (r1p5 has 32 entries; 16 is safe for all).
const TX_FIFO_DEPTH: u8 = 16;

pub struct Pl011 {
    regs: mmio::Mmio<Registers>,
    /// Bytes that may be written without looking at FR: the free FIFO entries the last FR
    /// read showed, less those written since. Under TCG a FR read per byte cost about
    /// 0.5 us, 15 ms of a Linux boot's 15,000 console bytes. Exact only while this port is
    /// the UART's one writer, as `CONSOLE` is; see [`Pl011::shared_with_others`].
    credits: u8,
    /// Free entries an empty transmit FIFO has: 1 with the FIFOs off.
    depth: u8,
}

impl Pl011 {
    /// # Safety
    /// `region` must be a PL011 from the DTB (or the fallback), reachable as device memory.
    pub unsafe fn new(region: Region) -> Self {
        // SAFETY: forwarded from the caller.
        let regs: mmio::Mmio<Registers> = unsafe { mmio::block(region) };
        let depth = if regs.lcr_h.is_set(LCR_H::FEN) { TX_FIFO_DEPTH } else { 1 };
        Self { regs, credits: 0, depth }
    }

    /// For a port that another writer may share (the panic path's fallback): look at FR
    /// before every byte, as a FIFO someone else is filling has fewer free entries than
    /// this port counted.
    fn shared_with_others(mut self) -> Self {
        self.depth = 1;
        self
    }

    /// Turns on the FIFOs if the bootloader left them off (U-Boot turns them on; QEMU's
    /// reset state has them off). The PL011 TRM (DDI 0183, 3.3.8) forbids changing LCR_H
    /// while the UART is enabled, so: wait until the transmitter is idle, disable the UART,
    /// set FEN, enable it again as it was. Left alone if the UART stays busy. Bytes waiting
    /// in the receive FIFO (typed before the hypervisor started) may be lost.
    fn enable_fifos(&mut self) {
        if self.depth > 1 {
            return;
        }
        if !self.wait_idle() {
            return;
        }
        let cr = self.regs.cr.get();
        self.regs.cr.set(cr & !CR::UARTEN::SET.value);
        self.regs.lcr_h.modify(LCR_H::FEN::SET);
        self.regs.cr.set(cr);
        self.depth = TX_FIFO_DEPTH;
    }

    /// Waits (bounded: 100 ms; a full FIFO drains in under 3 ms at 115200 baud) until
    /// everything written has left the UART. False if it did not.
    fn wait_idle(&self) -> bool {
        let deadline = cpu::counter() + cpu::ticks_from_us(100_000);
        loop {
            let fr = self.regs.fr.extract();
            if fr.is_set(FR::TXFE) && !fr.is_set(FR::BUSY) {
                return true;
            }
            if cpu::counter() > deadline {
                return false;
            }
        }
    }

    fn put(&mut self, b: u8) {
        if self.credits == 0 {
            // Bounded wait: a wedged UART must not hang the hypervisor (a full FIFO
            // drains in under 3 ms at 115200 baud; we give it far more before dropping
            // the byte).
            let deadline = cpu::counter() + cpu::ticks_from_us(100_000);
            loop {
                let fr = self.regs.fr.extract();
                if fr.is_set(FR::TXFE) {
                    self.credits = self.depth;
                    break;
                }
                if !fr.is_set(FR::TXFF) {
                    self.credits = 1;
                    break;
                }
                if cpu::counter() > deadline {
                    return;
                }
            }
        }
        self.regs.dr.set(b as u32);
        self.credits -= 1;
    }
}

impl Pl011 {
    /// A received byte, if the FIFO holds one.
    fn get(&mut self) -> Option<u8> {
        if self.regs.fr.is_set(FR::RXFE) { None } else { Some(self.regs.dr.get() as u8) }
    }
}

impl Write for Pl011 {
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

/// The console; `None` until the MMU is on (or when the DTB names no PL011).
static CONSOLE: IrqLock<Option<Pl011>> = IrqLock::new(None);
/// Counter value at boot, for timestamps.
static BOOT_COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn set_boot_time(counter: u64) {
    BOOT_COUNTER.store(counter, Ordering::Relaxed);
}

/// Prints without locks or the log prefix: for errors before the MMU is on, when locks
/// cannot be trusted yet.
pub fn early_print(uart: Option<Uart>, args: fmt::Arguments<'_>) {
    let region = uart.map_or(FALLBACK_UART, |u| u.region);
    // SAFETY: the region is the DTB's stdout PL011 or QEMU's; with the MMU off every access
    // is a device access.
    let mut port = unsafe { Pl011::new(region) }.shared_with_others();
    let _ = port.write_fmt(args);
}

/// Installs the console and the logger. Called once by the primary with the MMU on.
pub fn init(uart: Option<Uart>) {
    if let Some(u) = uart {
        // SAFETY: the DTB's stdout PL011, mapped as device memory in the EL2 map.
        let mut port = unsafe { Pl011::new(u.region) };
        port.enable_fifos();
        *CONSOLE.lock() = Some(port);
    }
    // Fails only if a logger is already set, which would be a second call: ignore.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

/// Turns on the receive interrupts (RX and RX timeout) of the physical UART.
pub fn enable_receive_interrupt() {
    if let Some(port) = CONSOLE.lock().as_mut() {
        port.regs.icr.write(INT::ALL::SET);
        port.regs.imsc.write(INT::RX::SET + INT::RT::SET);
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
    if let Some(guard) = CONSOLE.try_lock_for(1_000_000)
        && let Some(port) = guard.as_ref()
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
        None => early_print(crate::start::platform().and_then(|p| p.uart), args),
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
    let ticks = cpu::counter().wrapping_sub(BOOT_COUNTER.load(Ordering::Relaxed));
    (ticks as u128 * 1_000_000 / cpu::counter_frequency() as u128) as u64
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
        let cpu = crate::percpu::try_this_cpu().map(|c| c.id.0);
        let cpu = CpuLabel(cpu);
        print(format_args!("[{:5}.{:06}] {level} {cpu}: {}\n", us / 1_000_000, us % 1_000_000, record.args()));
    }

    fn flush(&self) {}
}
