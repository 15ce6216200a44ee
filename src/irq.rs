//! The EL2 IRQ handler: acknowledges physical interrupts and dispatches them.

use crate::arch::aarch64::{boot, gic};
use core::sync::atomic::Ordering;

pub fn handle() {
    loop {
        let intid = gic::ack();
        if intid >= 1020 {
            return;
        }
        gic::eoi(intid);
        if crate::start::PANICKING.load(Ordering::Acquire) {
            // Another pCPU panicked and asked everyone to stop.
            boot::halt();
        }
        match intid {
            gic::SGI_KICK => {
                if let Some(this) = crate::percpu::try_this_cpu() {
                    this.kicks.fetch_add(1, Ordering::Relaxed);
                    crate::percpu::drain_mailbox();
                }
            }
            other => log::warn!("unexpected interrupt {other}"),
        }
    }
}
