//! The fake pCPU: its index, interrupt mask, idling, the counter and the guest timers'
//! masks, ID registers.

use super::{lock, machine};
use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
    static MASKED: Cell<bool> = const { Cell::new(false) };
}

pub fn cpu_index() -> Option<usize> {
    INDEX.with(|i| i.get())
}

pub fn set_cpu_index(index: usize) {
    INDEX.with(|i| i.set(Some(index)));
}

pub(crate) fn this() -> usize {
    cpu_index().expect("a fake pCPU thread (arch::fake::become_cpu)")
}

pub fn mpidr() -> u64 {
    this() as u64
}

pub fn irq_save() -> bool {
    MASKED.with(|m| !m.replace(true))
}

pub fn irq_restore(enabled: bool) {
    if enabled {
        irq_enable();
    }
}

/// Unmasks IRQs; one that is pending is taken now, as the hardware would on unmasking.
pub fn irq_enable() {
    MASKED.with(|m| m.set(false));
    if cpu_index().is_some() && super::gic::irq_pending() {
        let _ = irq_save();
        crate::arch::irq_entry();
        MASKED.with(|m| m.set(false));
    }
}

/// Waits until an interrupt is pending for this pCPU (WFI wakes on a pending interrupt
/// even with IRQs masked).
pub fn wfi() {
    let me = this();
    let cpu = &machine().cpus[me];
    let mut state = lock(&cpu.irq);
    loop {
        drop(state);
        if super::gic::irq_pending() {
            return;
        }
        state = lock(&cpu.irq);
        // Timers are levels computed from the clock: look again now and then.
        let (s, _) = cpu.wake.wait_timeout(state, Duration::from_millis(2)).unwrap_or_else(|e| e.into_inner());
        state = s;
    }
}

pub fn halt() -> ! {
    loop {
        std::thread::park();
    }
}

/// Ticks per second: QEMU's generic timer frequency.
pub const FREQUENCY: u64 = 62_500_000;

fn epoch() -> Instant {
    static E: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *E.get_or_init(Instant::now)
}

pub fn counter() -> u64 {
    (epoch().elapsed().as_nanos() * FREQUENCY as u128 / 1_000_000_000) as u64
}

pub fn counter_frequency() -> u64 {
    FREQUENCY
}

pub fn ticks_from_us(us: u64) -> u64 {
    FREQUENCY * us / 1_000_000
}

/// CNTx_CTL_EL0.IMASK.
pub(crate) const TIMER_IMASK: u64 = 1 << 1;

pub fn timer_outputs() -> (bool, bool) {
    super::vcpu::with_hw(|hw| {
        let now = counter();
        let voff = hw.config.map_or(0, |c| c.cntvoff);
        (hw.vtimer.fires(now.wrapping_sub(voff)), hw.ptimer.fires(now))
    })
}

pub fn has_pan() -> bool {
    true
}

/// ID registers of a CPU with everything the sanitizer hides (so tests see it hidden):
/// ID_AA64PFR0_EL1 with SVE and GICv3 system registers; the rest all ones or zero.
pub fn read_id_reg(crm: u8, op2: u8) -> u64 {
    match (crm, op2) {
        (4, 0) => (1 << 32) | (1 << 24) | 0x1111,
        (4, 4) => 1,
        // ID_AA64DFR0_EL1: DebugVer v8, PMUVer IMPLEMENTATION DEFINED, 6 breakpoints,
        // 4 watchpoints.
        (5, 0) => 0x0000_0000_0030_5f06,
        _ => 0,
    }
}
