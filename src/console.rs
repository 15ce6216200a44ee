//! The console: the physical UART and the VMs' output multiplexer behind one lock, and the
//! `log` backend that prefixes every line with a timestamp, the level and the pCPU id. The
//! UART drivers are portable register logic (`hw::uart`: PL011, 16550 family, Cadence);
//! `arch::Uart` gives them MMIO.
//!
//! Several VMs share the one UART (`vm::console_mux`, Xen's convention): input goes to one
//! VM at a time, Ctrl-A three times moves it; the VM with input prints as it comes, the
//! others in whole lines behind `(name) `. A guest's byte never waits for the UART: it goes
//! into its VM's buffer, which is drained into what the transmit FIFO has free, on every
//! guest byte, every hypervisor line, and from the scheduler ([`poll`], at [`deadline`]).
#![forbid(unsafe_code)]

use crate::arch::{self, Uart};
use crate::platform;
use crate::sync::IrqLock;
use crate::vm::console_mux::{Mux, Route};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

/// The port and the multiplexer (lock `console::CONSOLE`, a leaf: taken after `Vm::uart`,
/// never before it).
struct Console {
    /// `None` until the MMU is on (or when the DTB names no console UART).
    port: Option<Uart>,
    mux: Mux,
}

static CONSOLE: IrqLock<Console> = IrqLock::new(Console { port: None, mux: Mux::new(0) });
/// A held partial line of a VM without the input goes out at most this long after it began.
const PARTIAL_LINE_US: u64 = 100_000;
/// While output waits for room in the transmit FIFO, look again this often (a 32-byte FIFO
/// at 115200 baud empties in 2.8 ms).
const RETRY_US: u64 = 1_000;
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
    let mut console = CONSOLE.lock();
    console.mux = Mux::new(arch::ticks_from_us(PARTIAL_LINE_US));
    if let Some((mut port, uart)) = uart {
        port.init();
        UART.call_once(|| uart);
        console.port = Some(port);
    }
    drop(console);
    // Fails only if a logger is already set, which would be a second call: ignore.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

/// Turns on the receive interrupts (RX and RX timeout) of the physical UART.
pub fn enable_receive_interrupt() {
    if let Some(port) = CONSOLE.lock().port.as_mut() {
        port.enable_receive_interrupt();
    }
}

/// Quiets the physical UART's receive interrupt other than by reading (a DesignWare
/// UART's busy detect, a Cadence UART's sticky status). Call it first in the interrupt's
/// handler, then [`receive`] until it returns 0.
pub fn ack_receive_interrupt() {
    if let Some(port) = CONSOLE.lock().port.as_mut() {
        port.ack_receive_interrupt();
    }
}

/// Takes every byte waiting in the physical UART's receive FIFO (at most `buf.len()`).
pub fn receive(buf: &mut [u8]) -> usize {
    let mut n = 0;
    if let Some(port) = CONSOLE.lock().port.as_mut() {
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

/// Writes raw bytes to the physical UART (a guest that is not one of the console's VMs: the
/// self-test's).
pub fn write_bytes(bytes: &[u8]) {
    own_line(|port, _| put_all(port, bytes));
}

/// Writes `bytes` as they are, waiting (bounded) for room as needed.
fn put_all(port: &mut Uart, bytes: &[u8]) {
    for &b in bytes {
        port.put(b);
    }
}

/// Writes a line of the hypervisor's own with `write` (the lock held): a VM's line in the
/// making is ended first, so the two do not share a line.
fn own_line(write: impl FnOnce(&mut Uart, &Mux)) {
    let mut console = CONSOLE.lock();
    let Console { port, mux } = &mut *console;
    if let Some(port) = port.as_mut() {
        mux.before_external_line(&mut |b: &[u8]| put_all(port, b));
        write(port, mux);
    }
}

/// Makes `name` one of the console's VMs (`input`: it takes part in console input); its
/// index for [`guest_output`], `None` past the mux's limit.
pub fn add_vm(name: &str, input: bool) -> Option<usize> {
    CONSOLE.lock().mux.add(name, input)
}

/// Logs the line that says where console input goes and how to move it, when there are
/// several VMs.
pub fn log_start_notice() {
    let mut line = crate::util::FixedVec::<u8, 160>::new();
    if let Some(n) = CONSOLE.lock().mux.start_notice() {
        // Formatted into a fixed buffer under the lock (no allocation while holding it),
        // logged after it is dropped.
        let _ = write!(ByteWriter(&mut line), "{n}");
    }
    if !line.is_empty() {
        log::info!("{}", core::str::from_utf8(&line).unwrap_or("console: several VMs"));
    }
}

/// `fmt::Write` into a fixed buffer; what does not fit is cut.
struct ByteWriter<'a, const N: usize>(&'a mut crate::util::FixedVec<u8, N>);

impl<const N: usize> Write for ByteWriter<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            let _ = self.0.push(b);
        }
        Ok(())
    }
}

/// A byte console VM `vm` transmitted: buffered, and as much as the UART has room for
/// written now. Never waits for the UART.
pub fn guest_output(vm: usize, byte: u8) {
    let now = arch::counter();
    let mut console = CONSOLE.lock();
    console.mux.push(vm, byte, now);
    drain(&mut console, now);
    let again = retry_at(&console, now);
    drop(console);
    if let Some(at) = again {
        arch::hyp_timer_arm_by(at);
    }
}

/// Writes what waits and fits into the transmit FIFO (the lock held).
fn drain(console: &mut Console, now: u64) {
    let Console { port, mux } = console;
    match port.as_mut() {
        Some(port) => {
            let room = port.tx_room();
            mux.drain(now, room, &mut |b: &[u8]| put_all(port, b));
        }
        // No UART: what the VMs print goes nowhere, as on a board without one.
        None => mux.drain(now, usize::MAX, &mut |_: &[u8]| {}),
    }
}

/// When output still waiting should be looked at again: its partial line's deadline, or
/// shortly when it waits for room in the FIFO.
fn retry_at(console: &Console, now: u64) -> Option<u64> {
    if console.mux.is_empty() {
        return None;
    }
    let retry = now + arch::ticks_from_us(RETRY_US);
    Some(match console.mux.deadline() {
        Some(d) if !console.mux.pending(now) => d.max(now),
        _ => retry,
    })
}

/// Drains waiting output if any is due (the scheduler calls this between vCPUs).
pub fn poll() {
    let now = arch::counter();
    let Some(mut console) = CONSOLE.try_lock_for(1) else { return };
    if console.mux.pending(now) {
        drain(&mut console, now);
    }
}

/// When [`poll`] should next run, if output waits.
pub fn deadline() -> Option<u64> {
    let now = arch::counter();
    let console = CONSOLE.try_lock_for(1)?;
    retry_at(&console, now)
}

/// Bytes typed on the physical console: routed by the mux (Ctrl-A three times moves the
/// input to the next VM, which is announced), each delivered through `deliver(vm, bytes)`
/// with the console lock dropped (a VM's UART lock comes first in the lock order).
pub fn input(bytes: &[u8], deliver: &mut dyn FnMut(usize, &[u8])) {
    for &b in bytes {
        let route = CONSOLE.lock().mux.feed(b);
        match route {
            Route::Deliver { vm, bytes } => deliver(vm, &bytes),
            Route::Switched { .. } => own_line(|port, mux| {
                if let Some(n) = mux.switch_notice() {
                    let _ = writeln!(port, "{n}");
                }
            }),
            Route::Held | Route::Dropped => {}
        }
    }
}

/// Writes `args` to the console as they are (the self-test report and the log use this),
/// on a line of its own: a VM's line in the making is ended first.
pub fn print(args: fmt::Arguments<'_>) {
    own_line(|port, _| {
        let _ = port.write_fmt(args);
    });
}

/// Waits (bounded) until the console's last byte has left the UART: before powering off or
/// resetting the machine, which would cut off what is still in the transmit FIFO.
pub fn flush() {
    if let Some(mut guard) = CONSOLE.try_lock_for(1_000_000) {
        let now = arch::counter();
        // What the VMs still have waiting goes out first, as far as it can without waiting
        // long: a bounded number of rounds, each waiting for the FIFO to empty.
        for _ in 0..64 {
            if guard.mux.is_empty() {
                break;
            }
            drain(&mut guard, now.wrapping_add(u64::MAX / 2));
            if let Some(port) = guard.port.as_mut() {
                port.wait_idle();
            }
        }
        if let Some(port) = guard.port.as_mut() {
            port.wait_idle();
        }
    }
}

/// For the panic handler: waits a bounded time for the console, then writes regardless.
pub fn print_panic(args: fmt::Arguments<'_>) {
    match CONSOLE.try_lock_for(1_000_000) {
        Some(mut guard) => {
            if let Some(port) = guard.port.as_mut() {
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
