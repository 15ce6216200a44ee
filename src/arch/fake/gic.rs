//! The fake physical GIC: SGIs between pCPUs (the kick), and the level interrupts of this
//! pCPU's timers and vGIC maintenance, acknowledged in INTID order.

use super::{Event, lock, machine, record, vcpu};

/// The kick SGI, as on the hardware.
pub const SGI_KICK: u32 = 8;
/// The architected PPIs (the fake's platform uses the defaults).
pub const PPI_MAINTENANCE: u32 = 25;
pub const PPI_VIRTUAL_TIMER: u32 = 27;
pub const PPI_HYP_TIMER: u32 = 26;
pub const PPI_PHYSICAL_TIMER: u32 = 30;
const SPURIOUS: u32 = 1023;

/// The GIC version the fake machine has (tests of a GICv2 board set it, holding
/// `fake::exclusive`).
static VERSION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes the fake machine's GIC a GICv2 (`true`) or a GICv3.
pub fn set_gic_v2(v2: bool) {
    VERSION.store(v2, std::sync::atomic::Ordering::SeqCst);
}

pub fn version() -> crate::hw::gic::Version {
    if VERSION.load(std::sync::atomic::Ordering::SeqCst) {
        crate::hw::gic::Version::V2
    } else {
        crate::hw::gic::Version::V3
    }
}

/// Where the fake's GICV would be: a physical range no fake memory pool uses. Guests of the
/// fake do not touch it (their CPU interface is `Guest::ack` and `Guest::eoi`).
pub fn guest_cpu_interface() -> Option<u64> {
    (version() == crate::hw::gic::Version::V2).then_some(0x2c00_0000)
}

/// Sends the kick SGI to the pCPU with MPIDR `mpidr` (its index) and logs it.
pub fn send_kick(mpidr: u64) {
    let to = mpidr as usize;
    let Some(cpu) = machine().cpus.get(to) else { return };
    record(Event::Kick { from: super::cpu::cpu_index(), to });
    lock(&cpu.irq).sgis |= 1 << SGI_KICK;
    cpu.wake.notify_all();
}

/// The interrupts pending for `cpu` given its hardware state `hw` (bit n = INTID n, n < 32).
pub(crate) fn pending_map(cpu: usize, hw: &vcpu::Hw) -> u32 {
    let levels = hw.levels();
    let state = lock(&machine().cpus[cpu].irq);
    let mut map = state.sgis as u32 | levels;
    for a in &state.active {
        if *a < 32 {
            map &= !(1 << a);
        }
    }
    map
}

pub fn irq_pending() -> bool {
    let me = super::cpu::this();
    vcpu::with_hw(|hw| pending_map(me, hw)) != 0
}

pub fn irq_ack() -> crate::arch::Acked {
    let intid = ack();
    crate::arch::Acked { intid, iar: intid }
}

fn ack() -> u32 {
    let me = super::cpu::this();
    let map = vcpu::with_hw(|hw| pending_map(me, hw));
    if map == 0 {
        return SPURIOUS;
    }
    let intid = map.trailing_zeros();
    let mut state = lock(&machine().cpus[me].irq);
    state.sgis &= !(1u16.checked_shl(intid).unwrap_or(0));
    state.active.push(intid);
    intid
}

pub fn irq_eoi(acked: crate::arch::Acked) {
    let intid = acked.intid;
    let me = super::cpu::this();
    let mut state = lock(&machine().cpus[me].irq);
    if let Some(i) = state.active.iter().position(|&a| a == intid) {
        state.active.remove(i);
    }
}

pub fn irq_eoi_to_guest(acked: crate::arch::Acked) {
    irq_eoi(acked);
    set_private_active(acked.intid, true);
}

/// The active state of this pCPU's private interrupt `intid` (GICR_IS/ICACTIVER0).
pub fn set_private_active(intid: u32, active: bool) {
    set_active_on(super::cpu::this(), intid, active);
}

/// The active state of private interrupt `intid` on pCPU `cpu` (also what a guest's
/// deactivation of a list register with HW = 1 does to the physical one).
pub(crate) fn set_active_on(cpu: usize, intid: u32, active: bool) {
    if intid >= 32 {
        return;
    }
    let mut state = lock(&machine().cpus[cpu].irq);
    let at = state.active.iter().position(|&a| a == intid);
    match (at, active) {
        (None, true) => state.active.push(intid),
        (Some(i), false) => {
            state.active.remove(i);
        }
        _ => {}
    }
}
