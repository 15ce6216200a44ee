//! A vCPU's two EL1 timers (virtual, CNTV; physical, CNTP) as the level-sensitive
//! interrupts they are. A timer's output is high while it is enabled, its condition is met
//! and it is not masked (Arm ARM D11.2.4, "ENABLE and ISTATUS and not IMASK"); the vGIC's
//! line for its PPI follows that output, so a guest that disables its timer, masks it or
//! moves its compare value into the future sees the interrupt no longer pending, and the
//! control register it reads back is the one it wrote.
//!
//! While the vCPU is loaded its timers are live in the hardware, and the guest's writes to
//! them do not trap. The hypervisor learns of a rising output from the physical PPI; then,
//! as KVM does with its mapped timer interrupts, the physical interrupt stays active
//! (`arch::irq_eoi_to_guest`) so its level cannot interrupt again, and the virtual
//! interrupt goes into a list register tied to it (HW = 1, [`vgic::Irq::linked`]): the
//! guest's own deactivation deactivates the physical one with no exit, and a level still
//! high then interrupts the hypervisor at once. (On a GICv2 the list register asks for an
//! exit on the guest's EOI instead, and [`after_exit`] does the deactivation: QEMU's GICv2
//! model does not re-signal a level that a HW deactivation leaves pending; see
//! `vgic::flush`.) A falling output is seen at the next exit
//! while the line is high ([`after_exit`] reads the outputs again only then), and a
//! physical interrupt whose virtual one has gone idle is deactivated there.
//!
//! The invariant, while the vCPU is loaded: the physical PPI is active if the virtual one
//! is active or its line is high (set on [`load`]; kept by the acknowledge, the guest's
//! deactivation and [`after_exit`]). While the vCPU is not loaded its timers are in its
//! saved context and the scheduler evaluates them ([`due`], [`next_deadline`]); the lines
//! it raises stay high until the vCPU runs again and its timers say otherwise.
#![forbid(unsafe_code)]

use super::instance::Vm;
use super::vcpu::Vcpu;
use crate::arch::{self, TimerRegs};
use crate::vgic::{self, Kicks, Lr};

/// The loaded vCPU's timer state on its pCPU, bit 0 the virtual timer, bit 1 the physical.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    /// The physical PPI may be active (the hypervisor left or set it active for the guest).
    pub phys_active: u8,
    /// The vGIC line is high (as last driven; for a vCPU not loaded, by [`due`]).
    pub line: u8,
}

/// The PPIs of the two timers, virtual first (the same INTIDs physically and virtually).
fn ppis() -> [u32; 2] {
    let p = crate::irq::ppis();
    [p.virtual_timer, p.physical_timer]
}

/// A vCPU's redistributor with its timer PPIs tied to the physical ones.
pub fn redistributor(version: vgic::Version) -> vgic::Redistributor {
    let mut r = vgic::Redistributor::new(version);
    for ppi in ppis() {
        r.link_physical(ppi);
    }
    r
}

/// Drives the lines in `mask` (bits as in [`Link`]) of vCPU `index` to `high`, and kicks
/// it when one goes high.
fn drive(vm: &Vm, index: usize, link: &mut Link, mask: u8, high: u8) {
    let Some(redist) = vm.redists.get(index) else { return };
    let mut r = redist.lock();
    let mut raised = false;
    for (i, ppi) in ppis().into_iter().enumerate() {
        let bit = 1 << i;
        if mask & bit != 0 {
            r.set_line(ppi, high & bit != 0);
            raised |= high & bit != 0;
        }
    }
    drop(r);
    link.line = (link.line & !mask) | (high & mask);
    if raised {
        super::bus::kick(vm, Kicks(1 << index.min(63)));
    }
}

/// The hypervisor took the timer PPIs in `events` for the vCPU loaded here
/// (`irq::handle` left them active): their lines go high.
pub fn fired(vm: &Vm, vcpu: &mut Vcpu, events: crate::irq::Events) {
    let bits = events.virtual_timer as u8 | (events.physical_timer as u8) << 1;
    if bits != 0 {
        vcpu.timers.phys_active |= bits;
        drive(vm, vcpu.index, &mut vcpu.timers, bits, bits);
    }
}

/// The hypervisor took timer PPIs in `events` with no vCPU loaded to give them to (a level
/// left from a vCPU just put away): they are deactivated.
pub fn orphaned(events: crate::irq::Events) {
    let [v, p] = ppis();
    for (fired, ppi) in [(events.virtual_timer, v), (events.physical_timer, p)] {
        if fired {
            arch::set_private_active(ppi, false);
        }
    }
}

/// The list registers `lrs` came back after an exit: a linked one that came back invalid
/// was deactivated by the guest, and its physical interrupt with it.
pub fn synced(vcpu: &mut Vcpu, lrs: &[Lr]) {
    if vcpu.timers.phys_active == 0 {
        return;
    }
    let [v, p] = ppis();
    for lr in lrs.iter().filter(|lr| lr.pintid().is_some() && lr.state() == Lr::STATE_INVALID) {
        if lr.intid() == v {
            vcpu.timers.phys_active &= !1;
        } else if lr.intid() == p {
            vcpu.timers.phys_active &= !2;
        }
    }
}

/// After an exit's list registers are folded back, and again after the exit is handled:
/// while a line is high or a physical PPI active, the lines follow the timers' outputs
/// again (the guest may have disabled, masked or re-armed a timer, or changed the vGIC
/// state), and a physical PPI whose virtual one is neither line-high nor active any more is
/// deactivated.
pub fn after_exit(vm: &Vm, vcpu: &mut Vcpu) {
    let link = vcpu.timers;
    if link.line | link.phys_active == 0 {
        return;
    }
    let (v, p) = arch::timer_outputs();
    let out = v as u8 | (p as u8) << 1;
    let changed = (link.line ^ out) & 3;
    if changed != 0 {
        drive(vm, vcpu.index, &mut vcpu.timers, changed, out);
    }
    let busy = vcpu.timers.phys_active & !vcpu.timers.line;
    if busy == 0 {
        return;
    }
    let Some(redist) = vm.redists.get(vcpu.index) else { return };
    let r = redist.lock();
    for (i, ppi) in ppis().into_iter().enumerate() {
        let bit = 1 << i;
        if busy & bit != 0 && !r.private[ppi as usize].active {
            arch::set_private_active(ppi, false);
            vcpu.timers.phys_active &= !bit;
        }
    }
}

/// vCPU `vcpu` is loaded on this pCPU (its timers restored, or reset for a `fresh` start):
/// each physical PPI is made active exactly when its virtual one is active or line-high.
pub fn load(vm: &Vm, vcpu: &mut Vcpu, fresh: bool) {
    let Some(redist) = vm.redists.get(vcpu.index) else { return };
    let mut r = redist.lock();
    let mut link = Link::default();
    for (i, ppi) in ppis().into_iter().enumerate() {
        if fresh {
            // A timer is off at reset: its output is low.
            r.set_line(ppi, false);
        }
        let irq = r.private[ppi as usize];
        let bit = 1 << i;
        if irq.line {
            link.line |= bit;
        }
        let active = irq.line || irq.active;
        if active {
            link.phys_active |= bit;
        }
        arch::set_private_active(ppi, active);
    }
    vcpu.timers = link;
}

/// The outputs of saved timers `t` of a vCPU of `vm` at counter value `now` (bits as in
/// [`Link`]).
fn outputs(vm: &Vm, t: &TimerRegs, now: u64) -> u8 {
    let v = TimerRegs::fires(t.cntv_ctl, t.cntv_cval, now.wrapping_sub(vm.cntvoff));
    let p = TimerRegs::fires(t.cntp_ctl, t.cntp_cval, now);
    v as u8 | (p as u8) << 1
}

/// vCPU `vcpu` was put away, its timers saved in `t`: its lines follow what they say now
/// (the physical PPIs are the next vCPU's, which [`load`] sets).
pub fn unload(vm: &Vm, vcpu: &mut Vcpu, t: &TimerRegs) {
    let out = outputs(vm, t, arch::counter());
    let changed = (vcpu.timers.line ^ out) & 3;
    if changed != 0 {
        drive(vm, vcpu.index, &mut vcpu.timers, changed, out);
    }
    vcpu.timers.phys_active = 0;
}

/// A vCPU not loaded, its timers saved in `t`: the lines of timers that have come due go
/// high (they stay high: a saved timer cannot change until the vCPU runs).
pub fn due(vm: &Vm, vcpu: &mut Vcpu, t: &TimerRegs) {
    let rising = outputs(vm, t, arch::counter()) & !vcpu.timers.line;
    if rising != 0 {
        drive(vm, vcpu.index, &mut vcpu.timers, rising, rising);
    }
}

/// The earliest counter value at which a saved timer of a vCPU not loaded comes due, of
/// those whose line is still low.
pub fn next_deadline(vm: &Vm, vcpu: &Vcpu, t: &TimerRegs) -> Option<u64> {
    let v = TimerRegs::deadline(t.cntv_ctl, t.cntv_cval)
        .filter(|_| vcpu.timers.line & 1 == 0)
        .map(|c| c.wrapping_add(vm.cntvoff));
    let p = TimerRegs::deadline(t.cntp_ctl, t.cntp_cval).filter(|_| vcpu.timers.line & 2 == 0);
    [v, p].into_iter().flatten().min()
}
