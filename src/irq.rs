//! The EL2 IRQ handler: acknowledges physical interrupts and dispatches them. Interrupts
//! that belong to the guest running on this pCPU come back to the caller as [`Events`].
#![forbid(unsafe_code)]

use crate::arch;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Once;

/// Set (Release) by the first pCPU that panics; every other pCPU stops on its next IRQ.
pub static PANICKING: AtomicBool = AtomicBool::new(false);

/// The physical interrupts a pCPU takes at EL2 besides the kick SGI: the guest's timer PPIs,
/// the vGIC maintenance interrupt, and the console UART's SPI if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ppis {
    pub virtual_timer: u32,
    pub maintenance: u32,
    pub physical_timer: u32,
    /// The EL2 physical timer (CNTHP).
    pub hyp_timer: u32,
    pub uart: Option<u32>,
}

impl Ppis {
    /// The architected numbers (Arm's recommended PPI assignments, BSA): virtual timer 27,
    /// maintenance 25, EL1 physical timer 30, EL2 physical timer 26; no console interrupt.
    pub const DEFAULT: Ppis =
        Ppis { virtual_timer: 27, maintenance: 25, physical_timer: 30, hyp_timer: 26, uart: None };
}

static PPIS: Once<Ppis> = Once::new();

/// Sets the interrupt numbers, once, from the platform (the boot flow does this).
pub fn init(ppis: Ppis) {
    PPIS.call_once(|| ppis);
}

/// The interrupt numbers [`init`] set, or [`Ppis::DEFAULT`] before that.
pub fn ppis() -> Ppis {
    PPIS.get().copied().unwrap_or(Ppis::DEFAULT)
}

/// Physical interrupts a guest's vCPU loop must act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// The virtual timer's PPI fired (its output is high). It is left active: the caller
    /// hands it to the loaded vCPU (`vm::timer::fired`) or deactivates it.
    pub virtual_timer: bool,
    /// The EL1 physical timer's PPI fired, as for the virtual one.
    pub physical_timer: bool,
    /// The EL2 physical timer fired (a time slice ended, or a descheduled vCPU's timer is
    /// due); it is turned off.
    pub hyp_timer: bool,
    /// The kick SGI brought messages for this pCPU's scheduler.
    pub messages: bool,
}

/// The IRQ entry point the exception vectors call outside a guest (no vCPU to hand guest
/// interrupts to: a timer PPI taken here is deactivated again).
pub fn entry() {
    crate::vm::timer::orphaned(handle());
}

pub fn handle() -> Events {
    let mut events = Events::default();
    let ppis = ppis();
    loop {
        let acked = arch::irq_ack();
        let intid = acked.intid;
        if intid >= crate::hw::gicv3::INTID_SPECIAL_FIRST {
            return events;
        }
        if PANICKING.load(Ordering::Acquire) {
            // Another pCPU panicked and asked everyone to stop.
            arch::irq_eoi(acked);
            arch::halt();
        }
        // The source is quieted before the EOI: the hypervisor's timer and the maintenance
        // interrupt are level-sensitive and would be pending again the moment they are EOId.
        // The guest's timers are not touched: their PPIs stay active for the guest.
        match intid {
            arch::SGI_KICK => events.messages |= crate::sched::kick_taken(),
            h if h == ppis.hyp_timer => {
                arch::hyp_timer_cancel();
                events.hyp_timer = true;
            }
            t if t == ppis.virtual_timer => events.virtual_timer = true,
            t if t == ppis.physical_timer => events.physical_timer = true,
            m if m == ppis.maintenance => {
                // Withdraw its causes (the underflow request, EOId list registers that asked
                // for an exit). The exit it caused is the point; the vCPU loop refills the
                // list registers on the way back in.
                arch::answer_maintenance();
            }
            u if Some(u) == ppis.uart => {
                // Console input goes to the VM that owns the console. Quiet the UART's other
                // causes first (a level left up would be taken again at once), then read
                // until empty, which quiets the rest.
                crate::console::ack_receive_interrupt();
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
        if intid == ppis.virtual_timer || intid == ppis.physical_timer {
            arch::irq_eoi_to_guest(acked);
        } else {
            arch::irq_eoi(acked);
        }
        // Usually that was the only one: skip the acknowledge that would say so.
        if !arch::irq_pending() {
            return events;
        }
    }
}
