//! The groups of checks, in the order they run. Each row's verdict is what the
//! architecture (Arm ARM, GICv3, PSCI, the PL031 and virtio-mmio specifications) requires;
//! the rows say which part when it is not obvious.

pub mod abort;
pub mod cache;
pub mod debug;
pub mod gic;
pub mod idregs;
pub mod psci;
pub mod rtc;
pub mod sgi;
pub mod timer;
pub mod virtio;

use crate::Group;
use crate::cpu::cpu;
use crate::exc::{hook, irq_hook};
use crate::sys::{self, msr};
use core::sync::atomic::Ordering::Relaxed;

/// The groups; the MMU goes on before GROUPS[MMU_ON_BEFORE].
pub static GROUPS: &[&Group] = &[
    &cache::MMU_OFF,
    &cache::GROUP,
    &timer::GROUP,
    &abort::GROUP,
    &debug::GROUP,
    &idregs::GROUP,
    &virtio::GROUP,
    &psci::GROUP,
    &gic::GROUP,
    &sgi::GROUP,
    &rtc::GROUP,
];
pub const MMU_ON_BEFORE: usize = 1;

/// After each group (also one that ended in an exception): IRQs and debug exceptions
/// masked, no hooks, the timers off, breakpoint and watchpoint 0 off, no software step.
pub fn cleanup() {
    // SAFETY: PSTATE.I and D masked.
    unsafe { core::arch::asm!("msr daifset, #0xa", options(nostack)) };
    let c = cpu();
    c.sync_hook.store(hook::NONE, Relaxed);
    c.irq_hook.store(irq_hook::EOI, Relaxed);
    msr!("cntv_ctl_el0", 0);
    msr!("cntp_ctl_el0", 0);
    msr!("mdscr_el1", 0);
    msr!("dbgbcr0_el1", 0);
    msr!("dbgwcr0_el1", 0);
    sys::isb();
}
