//! The EL2 IRQ handler: acknowledges physical interrupts and dispatches them. Interrupts
//! that belong to the guest running on this pCPU come back to the caller as [`Events`].
#![forbid(unsafe_code)]

use crate::arch::aarch64::{boot, gic};
use core::sync::atomic::Ordering;

/// Physical interrupts a guest's vCPU loop must act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// The virtual timer's PPI fired (its condition is met).
    pub virtual_timer: bool,
    /// The EL1 physical timer's PPI fired.
    pub physical_timer: bool,
}

pub fn handle() -> Events {
    let mut events = Events::default();
    let [timer, maintenance, ptimer] = crate::start::guest_ppis();
    let uart = crate::start::platform().and_then(|p| p.uart).and_then(|u| u.intid);
    loop {
        let intid = gic::ack();
        if intid >= gic::INTID_SPURIOUS - 3 {
            return events;
        }
        if crate::start::PANICKING.load(Ordering::Acquire) {
            // Another pCPU panicked and asked everyone to stop.
            gic::eoi(intid);
            boot::halt();
        }
        // The source is quieted before the EOI: the timers and the maintenance interrupt are
        // level-sensitive and would be pending again the moment they are EOId.
        match intid {
            gic::SGI_KICK => crate::percpu::kick_taken(),
            t if t == timer => {
                // Masked until the guest re-arms its timer.
                crate::arch::aarch64::cpu::mask_virtual_timer();
                events.virtual_timer = true;
            }
            t if t == ptimer => {
                crate::arch::aarch64::cpu::mask_physical_timer();
                events.physical_timer = true;
            }
            m if m == maintenance => {
                // Withdraw its causes (the underflow request, EOId list registers that asked
                // for an exit). The exit it caused is the point; the vCPU loop refills the
                // list registers on the way back in.
                crate::arch::aarch64::vgic::answer_maintenance();
            }
            u if Some(u) == uart => {
                // Console input goes to the VM that owns the console.
                let mut buf = [0u8; 32];
                loop {
                    let n = crate::console::receive(&mut buf);
                    if n == 0 {
                        break;
                    }
                    crate::vm::run::console_input(&buf[..n]);
                }
            }
            other => log::warn!("unexpected interrupt {other}"),
        }
        gic::eoi(intid);
        // Usually that was the only one: skip the acknowledge that would say so.
        if !gic::irq_pending() {
            return events;
        }
    }
}
