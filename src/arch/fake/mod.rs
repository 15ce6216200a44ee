//! The host stand-in for the arch interface (Hafnium's `src/arch/fake`): enough of a machine
//! for host `cargo test` to run the real run loop, PSCI wiring, kicks, mailboxes and VM
//! creation and end, and deliberately unlike the hardware where that keeps it simple.
//!
//! - A pCPU is a host thread that called [`spawn_cpu`] (or [`become_cpu`]); its index lives
//!   in a thread-local instead of TPIDR_EL2, and its interrupt mask is a flag. An IRQ that
//!   becomes pending while a pCPU's IRQs are unmasked is taken when it next unmasks them
//!   (there is no asynchronous delivery), by calling the installed handler.
//! - Physical memory is a sparse map of 4 KiB pages, zero until written ([`phys`]).
//! - A guest is a Rust closure running on its own thread ([`guest::Guest`]): its calls
//!   (an HVC, a device load, an ICC_SGI1R write, ...) are the exits that `enter` returns,
//!   with syndromes built as the hardware would build them. Loads and stores walk the VM's
//!   real stage-2 tables in fake physical memory: RAM and the UART's read-only register page
//!   need no exit, anything else faults. Programs are registered by entry address.
//! - List registers are held decoded (intid, priority, state, EOI), not in ICH_LR's layout.
//! - Every kick SGI, TLB invalidation and firmware call is appended to a log the tests read
//!   ([`log`]).
//! - The counter is the host's monotonic clock at 62.5 MHz.

pub mod context;
pub mod cpu;
pub mod debug;
pub mod firmware;
pub mod gic;
pub mod guest;
pub mod mmu;
pub mod phys;
pub mod uart;
pub mod vcpu;
pub mod vgic;

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

/// pCPUs the fake machine has (MPIDR Aff0 = index).
pub const CPU_COUNT: usize = 8;

/// Something the fake machine did that tests may check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// pCPU `from` (if known) sent the kick SGI to pCPU `to`.
    Kick {
        from: Option<usize>,
        to: usize,
    },
    /// TLB entries of the VM with this VTTBR_EL2 value were dropped for `ipa`.
    InvalidateIpa {
        vttbr: u64,
        ipa: u64,
    },
    SystemOff,
    SystemReset,
    /// A failing exit status for the emulator (semihosting).
    ExitFailure,
}

/// One pCPU's interrupt state, shared between threads (kicks come from other pCPUs).
#[derive(Default)]
pub(crate) struct IrqState {
    /// SGIs sent to this pCPU and not yet acknowledged (edge-triggered).
    pub sgis: u16,
    /// Interrupts acknowledged and not yet EOId.
    pub active: Vec<u32>,
}

pub(crate) struct Cpu {
    pub irq: Mutex<IrqState>,
    pub wake: Condvar,
}

pub(crate) struct Machine {
    pub cpus: Vec<Cpu>,
    pub log: Mutex<Vec<Event>>,
}

pub(crate) fn machine() -> &'static Machine {
    static M: OnceLock<Machine> = OnceLock::new();
    M.get_or_init(|| Machine {
        cpus: (0..CPU_COUNT).map(|_| Cpu { irq: Mutex::new(IrqState::default()), wake: Condvar::new() }).collect(),
        log: Mutex::new(Vec::new()),
    })
}

/// Locks a mutex of the fake machine, ignoring poisoning (a failed test must not take the
/// other tests down with it).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Appends `event` to the machine's log.
pub(crate) fn record(event: Event) {
    lock(&machine().log).push(event);
}

/// Everything logged so far.
pub fn log() -> Vec<Event> {
    lock(&machine().log).clone()
}

/// Empties the log (a test starts from nothing).
pub fn clear_log() {
    lock(&machine().log).clear();
}

/// Makes the calling thread pCPU `index` (its MPIDR is `index`).
pub fn become_cpu(index: usize) {
    assert!(index < CPU_COUNT, "the fake machine has {CPU_COUNT} pCPUs");
    cpu::set_cpu_index(index);
}

/// Starts a host thread as pCPU `index`, running `body` (which usually never returns).
pub fn spawn_cpu(index: usize, body: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("pcpu{index}"))
        .spawn(move || {
            become_cpu(index);
            body()
        })
        .expect("spawning a fake pCPU thread")
}

/// Serializes tests that use the one fake machine (its pCPUs, memory pools and per-pCPU
/// data are global, as on the hardware).
pub fn exclusive() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    lock(&ONE)
}
