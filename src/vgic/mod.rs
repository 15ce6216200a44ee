//! The virtual GIC as a portable model: an emulated distributor, one redistributor per
//! vCPU, per-interrupt state, routing, and what each vCPU's list registers should hold. One
//! model serves both versions a guest may see ([`Version`]): a GICv3 (IHI 0069), whose
//! registers `regs` decodes and whose SGIs come from a trapped ICC_SGI1R_EL1, and a GICv2
//! (IHI 0048B), whose distributor `v2` decodes (its banked registers for INTIDs 0-31 are
//! this vCPU's [`Redistributor`]) and whose SGIs come from GICD_SGIR, pending per sending
//! CPU. The arch layer moves [`Lr`] values in and out of the list registers (ICH_LR<n>_EL2
//! or GICH_LR<n>); everything else is decided here and host-tested.
//!
//! State is split the way it is locked: each vCPU's [`Redistributor`] (its SGIs and PPIs,
//! lock `Vm::redists[n]`) and one [`Dist`] per VM (the SPIs, GICD_CTLR, the routes; lock
//! `Vm::vgic`, taken after a redistributor's lock when both are needed). A vCPU's entry and
//! exit, its timer and the SGIs sent to it touch only its own redistributor; the
//! distributor is needed only while an SPI is busy for that vCPU. (With one lock for the
//! whole vGIC, every entry of every vCPU took it, and under TCG, where a lock holder's host
//! thread is often descheduled, one Linux boot spent 0.1-0.8 s spinning on it.)
//!
//! An interrupt in a list register is owned by that LR until the vCPU exits and [`sync`]
//! folds the LR's state back in; only then may it be placed again (so it never sits in two
//! LRs).
//!
//! The entry path must be short: the private interrupts and the SPIs each carry a "busy"
//! bitmap, a superset of the interrupts that are pending, line-high, active or in a list
//! register. Every change through `irq_mut` sets the bit, register writes recompute the
//! maps, and [`flush`] looks only at set bits, clearing those of idle interrupts.
#![forbid(unsafe_code)]

use crate::hw::gicv3::{GICD_CTLR, GICD_IROUTER, Sgi1r};
use alloc::vec::Vec;

mod regs;
#[cfg(test)]
mod tests;
pub mod v2;
#[cfg(test)]
mod v2_tests;

/// The GIC a guest sees: the host's own version (a vGICv3 needs the ICH_* system registers,
/// a vGICv2 a GICH/GICV pair).
pub use crate::hw::gic::Version;

/// Bit 0: Group 0 interrupts may be delivered (GICD_CTLR.EnableGrp0); bit 1: Group 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Groups(pub u8);

impl Groups {
    fn allows(self, group1: bool) -> bool {
        self.0 & (1 << group1 as u8) != 0
    }
}

/// The distributor's frame, and one redistributor's RD_base + SGI_base frames.
pub use crate::hw::gicv3::{GICD_SIZE, GICR_SIZE as GICR_FRAME_SIZE};

/// SPIs the virtual distributor implements: INTIDs 32 to 32 + SPI_COUNT - 1.
pub const SPI_COUNT: usize = 96;
pub const INTID_COUNT: usize = 32 + SPI_COUNT;
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Irq {
    pub enabled: bool,
    /// Latched pending state (edge, or a level interrupt's software pending).
    pub pending: bool,
    /// Level-sensitive input line, as the device drives it.
    pub line: bool,
    pub active: bool,
    pub priority: u8,
    pub group1: bool,
    /// Edge-triggered (ICFGR = 0b10) rather than level.
    pub edge: bool,
    /// In a list register of its target vCPU right now.
    pub in_lr: bool,
    /// While in a list register: its pending latch went in with it (an edge, or a level
    /// interrupt's software pending), so a pending state read back is latched again. A level
    /// interrupt that went in pending only by its line is pending afterwards only while the
    /// line is still high.
    pub latch_in_lr: bool,
    /// While in a list register: it went in pending (what a pending read reports meanwhile).
    pub lr_pending: bool,
    /// While in a list register: ICPENDR / ICACTIVER cleared its pending / active state,
    /// which the sync applies to what the LR comes back with (else the write would be
    /// undone at that vCPU's next exit).
    pub cleared_pending_in_lr: bool,
    pub cleared_active_in_lr: bool,
    /// The physical interrupt of the same INTID follows this one while its vCPU is loaded
    /// (a timer PPI, whose physical active state then belongs to the guest): its list
    /// registers tie the two (HW = 1), so the guest's deactivation ends both. See
    /// `vm::timer`.
    pub linked: bool,
}

impl Irq {
    fn is_pending(&self) -> bool {
        self.pending || (!self.edge && self.line)
    }

    /// The input line goes to `high`; a rising edge latches an edge interrupt's pending.
    fn drive(&mut self, high: bool) {
        if self.edge && high && !self.line {
            self.pending = true;
        }
        self.line = high;
    }

    /// Nothing for anyone to do: not pending, line low, not active, in no list register.
    fn is_idle(&self) -> bool {
        !self.pending && !self.line && !self.active && !self.in_lr
    }
}

/// Bit i set where `irqs[i]` is not idle.
fn bitmap(irqs: &[Irq]) -> u128 {
    irqs.iter().enumerate().filter(|(_, irq)| !irq.is_idle()).fold(0, |map, (i, _)| map | 1 << i)
}

/// The positions of the set bits of `map`, lowest first.
fn bits(mut map: u128) -> impl Iterator<Item = u32> {
    core::iter::from_fn(move || {
        (map != 0).then(|| {
            let i = map.trailing_zeros();
            map &= map - 1;
            i
        })
    })
}

pub use crate::hw::gic::Lr;

/// Which vCPUs need a kick after a change (bit n = vCPU n).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kicks(pub u64);

impl Kicks {
    fn add(&mut self, vcpu: usize) {
        if vcpu < 64 {
            self.0 |= 1 << vcpu;
        }
    }
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..64).filter(move |i| self.0 & (1 << i) != 0)
    }
}

/// Most list registers a [`Flush`] fills (the architecture's maximum).
pub use crate::hw::gicv3::MAX_LRS;

/// What should be in a vCPU's list registers on entry. Built without allocating: this is
/// on every guest entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flush {
    pub lrs: crate::util::FixedVec<Lr, MAX_LRS>,
    /// More interrupts are pending than fit: ask for a maintenance interrupt when the LRs
    /// drain (ICH_HCR_EL2.UIE) so the rest can follow.
    pub underflow: bool,
}

/// A vCPU's redistributor and private interrupts (SGIs 0-15, PPIs 16-31); on a GICv2,
/// the distributor's banked registers of that vCPU's CPU interface.
#[derive(Debug, Clone)]
pub struct Redistributor {
    pub version: Version,
    pub private: [Irq; 32],
    /// GICv2: bit n of `sgi_sources[i]` set while SGI i from CPU interface n is pending
    /// (each sender's SGI is an interrupt of its own, IHI 0048B 3.2.1; GICD_SPENDSGIR). An
    /// SGI's `pending` is these bits not all clear. Unused on a GICv3.
    pub sgi_sources: [u8; 16],
    /// GICv2: the sender of SGI i while it is active.
    pub sgi_active_source: [u8; 16],
    /// Bit n set: private interrupt n may be busy (see the module comment).
    busy: u32,
    /// GICR_WAKER.ProcessorSleep.
    pub sleep: bool,
}

impl Default for Redistributor {
    fn default() -> Self {
        Self::new(Version::V3)
    }
}

impl Redistributor {
    pub fn new(version: Version) -> Self {
        let mut private = [Irq::default(); 32];
        for (i, irq) in private.iter_mut().enumerate() {
            // SGIs are edge-triggered; PPIs default to level.
            irq.edge = i < 16;
        }
        Self { version, private, sgi_sources: [0; 16], sgi_active_source: [0; 16], busy: 0, sleep: true }
    }

    /// SGI `intid` from vCPU `source` becomes pending here. On a GICv3 an SGI is one
    /// interrupt whoever sent it; on a GICv2 each sender's is its own. `false` if `intid`
    /// is not an SGI.
    pub fn send_sgi(&mut self, intid: u32, source: usize) -> bool {
        if intid >= crate::hw::gic::SGI_COUNT {
            return false;
        }
        if self.version == Version::V2 {
            self.sgi_sources[intid as usize] |= 1 << (source & 7);
        }
        self.set_pending(intid)
    }

    /// Private interrupt `intid` for changing; marks it busy.
    fn irq_mut(&mut self, intid: u32) -> Option<&mut Irq> {
        let irq = self.private.get_mut(intid as usize)?;
        self.busy |= 1 << intid;
        Some(irq)
    }

    /// Makes private interrupt `intid` pending (an SGI, or a PPI's software pending).
    /// `false` if `intid` is not private.
    pub fn set_pending(&mut self, intid: u32) -> bool {
        self.irq_mut(intid).map(|irq| irq.pending = true).is_some()
    }

    /// Drives a private interrupt's input line (a timer PPI).
    pub fn set_line(&mut self, intid: u32, high: bool) -> bool {
        self.irq_mut(intid).map(|irq| irq.drive(high)).is_some()
    }

    /// Ties private interrupt `intid` to the physical one of the same number (see
    /// [`Irq::linked`]).
    pub fn link_physical(&mut self, intid: u32) {
        if let Some(irq) = self.private.get_mut(intid as usize) {
            irq.linked = true;
        }
    }

    /// Whether anything private is active, or pending and enabled (a cheap
    /// over-approximation of "flush would fill a list register").
    pub fn may_have_work(&mut self) -> bool {
        self.busy_intids().iter().any(|&i| {
            let irq = &self.private[i as usize];
            irq.active || (irq.is_pending() && irq.enabled)
        })
    }

    /// The busy private interrupts; clears the bits of those found idle.
    fn busy_intids(&mut self) -> crate::util::FixedVec<u32, 32> {
        let mut out = crate::util::FixedVec::new();
        for intid in bits(self.busy as u128) {
            if self.private[intid as usize].is_idle() {
                self.busy &= !(1 << intid);
            } else {
                let _ = out.push(intid);
            }
        }
        out
    }

    /// An MMIO read of this redistributor's frames (`offset` inside them); `vcpu` and
    /// `mpidrs` for GICR_TYPER.
    pub fn read(&self, vcpu: usize, mpidrs: &[u64], offset: u64, size: u8) -> u64 {
        regs::redist_read(self, vcpu, mpidrs, offset, size)
    }

    /// The vCPUs a read at `offset` of vCPU `vcpu`'s frames asks to exit: a read of the
    /// pending or active registers while one of its interrupts sits in its list registers
    /// (it syncs on that exit, so a reader that polls, as Linux's `synchronize_irq` does,
    /// sees the guest's progress). Linux on another vCPU reads the value meanwhile.
    pub fn read_kicks(&self, vcpu: usize, offset: u64) -> Kicks {
        let sgi_base = crate::hw::gicv3::GICR_SGI_BASE as u64;
        let state = offset.checked_sub(sgi_base).is_some_and(regs::is_state_read);
        let mut kicks = Kicks::default();
        if state && self.private.iter().any(|irq| irq.in_lr) {
            kicks.add(vcpu);
        }
        kicks
    }

    /// An MMIO write; whether the vCPU must look at its list registers again.
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> bool {
        let changed = regs::redist_write(self, offset, size, value);
        self.recompute_busy();
        changed
    }

    /// After register writes: every private interrupt's busy bit from its state.
    fn recompute_busy(&mut self) {
        self.busy = bitmap(&self.private) as u32;
    }
}

/// One VM's distributor: the SPIs and their routes.
#[derive(Debug, Clone)]
pub struct Dist {
    pub version: Version,
    /// GICD_CTLR. GICv3: EnableGrp1, and ARE and DS (always 1, from reset on). GICv2: EnableGrp0 and
    /// EnableGrp1.
    pub ctlr: u32,
    pub spis: [Irq; SPI_COUNT],
    /// GICD_IROUTER<n> for each SPI, as written (Aff3.Aff2.Aff1.Aff0, IRM in bit 31).
    pub irouter: [u64; SPI_COUNT],
    /// GICv2: GICD_ITARGETSR's byte for each SPI (bit n: CPU interface n, i.e. vCPU n).
    pub itargets: [u8; SPI_COUNT],
    /// Bit n set: SPI 32 + n may be busy (see the module comment).
    spi_busy: u128,
    /// Each vCPU's MPIDR affinity (for routing and GICR_TYPER).
    pub mpidrs: Vec<u64>,
}

impl Dist {
    pub fn new(mpidrs: &[u64], version: Version) -> Self {
        Self {
            version,
            // One security state (DS) and affinity routing (ARE) from reset on, as read
            // after any write: both are fixed.
            ctlr: match version {
                Version::V3 => (GICD_CTLR::ARE::SET + GICD_CTLR::DS::SET).value,
                Version::V2 => 0,
            },
            spis: [Irq::default(); SPI_COUNT],
            irouter: [0; SPI_COUNT],
            itargets: [0; SPI_COUNT],
            spi_busy: 0,
            mpidrs: mpidrs.to_vec(),
        }
    }

    pub fn vcpu_count(&self) -> usize {
        self.mpidrs.len()
    }

    /// GICD_CTLR.EnableGrp1: whether any Group 1 interrupt may be delivered.
    pub fn enabled_grp1(&self) -> bool {
        GICD_CTLR::ENABLE_GRP1.is_set(self.ctlr)
    }

    /// The groups GICD_CTLR lets through: on a GICv3 only Group 1 (the VM has no Group 0:
    /// EnableGrp0 is not writable); on a GICv2 EnableGrp0 and EnableGrp1 (bits 0 and 1,
    /// IHI 0048B 4.3.1, the layout without the Security Extensions), as Linux enables
    /// Group 0 and leaves every interrupt in it.
    pub fn enabled_groups(&self) -> Groups {
        match self.version {
            Version::V3 => Groups(if self.enabled_grp1() { 0b10 } else { 0 }),
            Version::V2 => Groups(self.ctlr as u8 & 0b11),
        }
    }

    /// SPI `intid` for changing; marks it busy.
    fn irq_mut(&mut self, intid: u32) -> Option<&mut Irq> {
        let n = intid.checked_sub(32)?;
        let irq = self.spis.get_mut(n as usize)?;
        self.spi_busy |= 1 << n;
        Some(irq)
    }

    pub fn spi(&self, intid: u32) -> Option<&Irq> {
        self.spis.get((intid as usize).checked_sub(32)?)
    }

    /// The vCPU an SPI is routed to, if any. GICv3: IROUTER with IRM = 0 names an affinity,
    /// and an affinity no vCPU has routes to nobody: the SPI stays pending until IROUTER
    /// changes (IHI 0069 "Routing SPIs and SGIs by PE affinity"; KVM does the same). IRM = 1
    /// (1 of N) takes vCPU 0, which is one of the N. GICv2: the lowest-numbered CPU
    /// interface ITARGETSR names (a 1-of-N choice the architecture leaves to the
    /// implementation; KVM makes the same one); none named, no one (IHI 0048B 4.3.12).
    pub fn spi_target(&self, intid: u32) -> Option<usize> {
        let n = (intid as usize).checked_sub(32)?;
        match self.version {
            Version::V3 => {
                let &route = self.irouter.get(n)?;
                if GICD_IROUTER::IRM.is_set(route) {
                    return Some(0);
                }
                let aff = (GICD_IROUTER::AFF3.read(route) << 32) | GICD_IROUTER::AFF210.read(route);
                self.mpidrs.iter().position(|&m| m == aff)
            }
            Version::V2 => {
                let targets = *self.itargets.get(n)?;
                let first = targets.trailing_zeros() as usize;
                (targets != 0 && first < self.vcpu_count()).then_some(first)
            }
        }
    }

    fn kick_target(&self, intid: u32) -> Kicks {
        let mut kicks = Kicks::default();
        if let Some(v) = self.spi_target(intid) {
            kicks.add(v);
        }
        kicks
    }

    /// Makes SPI `intid` pending (edge, or a level SPI's software pending).
    pub fn set_pending(&mut self, intid: u32) -> Kicks {
        match self.irq_mut(intid) {
            Some(irq) => irq.pending = true,
            None => return Kicks::default(),
        }
        self.kick_target(intid)
    }

    /// Drives a device's SPI line.
    pub fn set_line(&mut self, intid: u32, high: bool) -> Kicks {
        match self.irq_mut(intid) {
            Some(irq) => irq.drive(high),
            None => return Kicks::default(),
        }
        if high { self.kick_target(intid) } else { Kicks::default() }
    }

    /// Whether an SPI routed to `vcpu` may be busy (a superset: the vCPU takes this lock in
    /// its flush only while this holds).
    pub fn has_work_for(&mut self, vcpu: usize) -> bool {
        !self.busy_spis(vcpu).is_empty()
    }

    /// The busy SPIs routed to `vcpu`; clears the bits of SPIs found idle.
    fn busy_spis(&mut self, vcpu: usize) -> crate::util::FixedVec<u32, SPI_COUNT> {
        let mut out = crate::util::FixedVec::new();
        for n in bits(self.spi_busy) {
            if self.spis[n as usize].is_idle() {
                self.spi_busy &= !(1 << n);
            } else if self.spi_target(32 + n) == Some(vcpu) {
                let _ = out.push(32 + n);
            }
        }
        out
    }

    /// An MMIO read of the distributor (on a GICv2, of its registers not banked per CPU:
    /// [`v2::classify`] says which those are).
    pub fn read(&self, offset: u64, size: u8) -> u64 {
        match self.version {
            Version::V3 => regs::dist_read(self, offset, size),
            Version::V2 => v2::dist_read(self, offset, size),
        }
    }

    /// The vCPUs a read at `offset` asks to exit: a read of the pending or active registers
    /// while an SPI sits in a list register (every vCPU: which one holds it is not kept, and
    /// such reads are rare), so the holder syncs and a polling reader sees its progress.
    pub fn read_kicks(&self, offset: u64) -> Kicks {
        if regs::is_state_read(offset) && self.spis.iter().any(|irq| irq.in_lr) {
            Kicks((1u64 << self.vcpu_count().min(63)) - 1)
        } else {
            Kicks::default()
        }
    }

    /// An MMIO write; the vCPUs that must look at their list registers again.
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Kicks {
        let kicks = match self.version {
            Version::V3 => regs::dist_write(self, offset, size, value),
            Version::V2 => v2::dist_write(self, offset, size, value),
        };
        self.spi_busy = bitmap(&self.spis);
        kicks
    }
}

/// A guest write to ICC_SGI1R_EL1 from `sender` (IHI 0069 12.11.9, decoded by
/// [`Sgi1r::decode`]): the SGI and the vCPUs it goes to (their MPIDRs are `mpidrs`); the
/// caller makes it pending in each target's redistributor.
pub fn sgi_targets(mpidrs: &[u64], sender: usize, value: u64) -> (u32, Kicks) {
    let sgi = Sgi1r::decode(value);
    let mut kicks = Kicks::default();
    for (v, &m) in mpidrs.iter().enumerate() {
        if sgi.reaches(m, v == sender) {
            kicks.add(v);
        }
    }
    (sgi.intid, kicks)
}

/// Chooses what vCPU `vcpu`'s `lr_count` list registers hold on entry: every active
/// interrupt it owns (so the guest can deactivate it), then pending, enabled ones by
/// priority. `dist` is `None` when no SPI is busy for this vCPU (then only its private
/// interrupts are looked at); `groups` is what GICD_CTLR enables.
pub fn flush(
    mut dist: Option<&mut Dist>,
    redist: &mut Redistributor,
    vcpu: usize,
    lr_count: usize,
    groups: Groups,
) -> Flush {
    let mut flush = Flush::default();
    let mut candidates: crate::util::FixedVec<(bool, u8, u32), INTID_COUNT> = crate::util::FixedVec::new();
    let mut consider = |intid: u32, irq: &Irq| {
        let deliverable = irq.is_pending() && irq.enabled && groups.allows(irq.group1);
        // In another vCPU's list register (an SPI routed here since): not until it comes
        // back.
        if !irq.in_lr && (irq.active || deliverable) {
            // Active first, then by priority, then by INTID.
            let _ = candidates.push((!irq.active, irq.priority, intid));
        }
    };
    for &intid in redist.busy_intids().iter() {
        consider(intid, &redist.private[intid as usize]);
    }
    if let Some(d) = dist.as_deref_mut() {
        for &intid in d.busy_spis(vcpu).iter() {
            consider(intid, &d.spis[intid as usize - 32]);
        }
    }
    candidates.sort_unstable();
    flush.underflow = candidates.len() > lr_count;
    let version = redist.version;
    for &(_, _, intid) in candidates.iter().take(lr_count.min(MAX_LRS)) {
        if redist.version == Version::V2 && intid < crate::hw::gic::SGI_COUNT {
            let _ = flush.lrs.push(v2::place_sgi(redist, intid));
            continue;
        }
        let irq = if intid < 32 { redist.irq_mut(intid) } else { dist.as_deref_mut().and_then(|d| d.irq_mut(intid)) };
        let Some(irq) = irq else { continue };
        let pending = irq.is_pending() && irq.enabled;
        let state = (if pending { Lr::STATE_PENDING } else { 0 }) | (if irq.active { Lr::STATE_ACTIVE } else { 0 });
        irq.in_lr = true;
        // The LR now holds the pending state; the latch is re-derived on sync.
        irq.latch_in_lr = irq.pending;
        irq.lr_pending = pending;
        irq.pending = false;
        let mut lr = Lr::new(intid, irq.priority, state).with_group1(irq.group1);
        if irq.linked && version == Version::V3 {
            // The guest's deactivation deactivates the physical interrupt too; a level
            // still high then interrupts the hypervisor again, with no exit on the EOI.
            lr = lr.with_hw(intid);
        } else if irq.linked {
            // On a GICv2 the guest's EOI makes it exit instead, and the hypervisor
            // deactivates the physical interrupt itself once the line is low (or keeps it
            // active and the virtual one pending while it is high: `vm::timer::after_exit`).
            // QEMU's GICv2 model does not signal a physical interrupt that a list
            // register's HW deactivation leaves pending (its gic_complete_irq updates only
            // the virtual CPU interfaces), so a timer still asserting after the guest's EOI
            // came back only at the hypervisor's next GIC access. One exit per timer
            // interrupt, on a GICv2 only.
            lr = lr.with_eoi_exit();
        } else if !irq.edge && irq.line {
            // A level interrupt whose line is high: if it is still high when the guest
            // EOIs, it must be pending again at once, as on a real GIC. Ask for an exit on
            // that EOI (the sync then sees the line), or the guest could sleep in WFI with
            // its device still asserting (the PL011's TX interrupt stalled tty output).
            lr = lr.with_eoi_exit();
        }
        let _ = flush.lrs.push(lr);
    }
    flush
}

/// Folds vCPU `vcpu`'s list registers, as read on exit, back into the model. `dist` must
/// be given when any of them holds an SPI. Returns the other vCPUs that must look at their
/// list registers: an SPI still busy that was routed elsewhere while it sat in ours.
pub fn sync(mut dist: Option<&mut Dist>, redist: &mut Redistributor, vcpu: usize, lrs: &[Lr]) -> Kicks {
    let mut kicks = Kicks::default();
    for lr in lrs {
        let intid = lr.intid();
        if redist.version == Version::V2 && intid < crate::hw::gic::SGI_COUNT {
            v2::sync_sgi(redist, *lr);
            continue;
        }
        let irq = if intid < 32 { redist.irq_mut(intid) } else { dist.as_deref_mut().and_then(|d| d.irq_mut(intid)) };
        let Some(irq) = irq else { continue };
        let state = lr.state();
        irq.in_lr = false;
        irq.active = state & Lr::STATE_ACTIVE != 0;
        // Still pending in the LR (not acknowledged): an edge or a software-pended level
        // interrupt stays latched; a level interrupt pending by its line alone follows the
        // line, which may have dropped meanwhile (no spurious interrupt for a device that
        // has gone quiet). Acknowledged, the latch is consumed either way.
        if state & Lr::STATE_PENDING != 0 && (irq.edge || irq.latch_in_lr) && !irq.cleared_pending_in_lr {
            irq.pending = true;
        }
        if irq.cleared_active_in_lr {
            irq.active = false;
        }
        irq.latch_in_lr = false;
        irq.lr_pending = false;
        irq.cleared_pending_in_lr = false;
        irq.cleared_active_in_lr = false;
        let idle = irq.is_idle();
        if let Some(d) = dist.as_deref()
            && intid >= 32
            && !idle
            && let Some(target) = d.spi_target(intid)
            && target != vcpu
        {
            kicks.add(target);
        }
    }
    kicks
}
