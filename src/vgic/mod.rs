//! The virtual GICv3 as a portable model: an emulated distributor, one redistributor per
//! vCPU, per-interrupt state, routing, and what each vCPU's list registers should hold
//! (GIC architecture spec IHI 0069). The arch layer moves [`Lr`] values in and out of
//! ICH_LR<n>_EL2 and traps ICC_SGI1R_EL1; everything else is decided here and host-tested.
//!
//! State is SGIs and PPIs per vCPU, SPIs per VM. An interrupt in a list register is owned by
//! that LR until the vCPU exits and [`State::sync`] folds the LR's state back in; only then
//! may it be placed again (so it never sits in two LRs).
//!
//! The model runs under the VM's vGIC lock on every guest entry that has interrupt work,
//! so the entry path must be short: each vCPU's private interrupts and the SPIs carry a
//! "busy" bitmap, a superset of the interrupts that are pending, line-high, active or in a
//! list register. Every mutation through [`State::irq_mut`] sets the bit, register writes
//! recompute the maps, and [`State::flush`] looks only at set bits, clearing those of idle
//! interrupts. (A full scan of 128 INTIDs under the lock made lock holders likely to be
//! descheduled by the host, and every other pCPU spun meanwhile.)
#![forbid(unsafe_code)]

use alloc::vec;
use alloc::vec::Vec;

mod regs;
#[cfg(test)]
mod tests;

pub use regs::{GICD_SIZE, GICR_FRAME_SIZE};

/// SPIs the virtual distributor implements: INTIDs 32 to 32 + SPI_COUNT - 1.
pub const SPI_COUNT: usize = 96;
pub const INTID_COUNT: usize = 32 + SPI_COUNT;
/// Virtual priorities have 5 bits (ICH_VTR_EL2.PRIbits = 4 means 5 bits on QEMU and most
/// cores); lower is more urgent. We keep the guest's 8-bit value and place the top 5 bits.
const PRIORITY_MASK: u8 = 0xf8;

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
}

impl Irq {
    fn is_pending(&self) -> bool {
        self.pending || (!self.edge && self.line)
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

/// List-register contents (ICH_LR<n>_EL2, IHI 0069 12.4.6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lr(pub u64);

impl Lr {
    pub const STATE_PENDING: u64 = 1;
    pub const STATE_ACTIVE: u64 = 2;

    pub fn new(intid: u32, priority: u8, state: u64) -> Self {
        Lr((state << 62) | (1 << 60) | (((priority & PRIORITY_MASK) as u64) << 48) | intid as u64)
    }
    pub fn intid(self) -> u32 {
        self.0 as u32
    }
    pub fn state(self) -> u64 {
        self.0 >> 62
    }
}

/// A vCPU's redistributor and private interrupts.
#[derive(Debug, Clone)]
pub struct Redistributor {
    pub private: [Irq; 32],
    /// Bit n set: private interrupt n may be busy (see the module comment).
    busy: u32,
    /// GICR_WAKER.ProcessorSleep.
    pub sleep: bool,
}

/// One VM's virtual GIC.
#[derive(Debug, Clone)]
pub struct State {
    /// GICD_CTLR: EnableGrp1 (bit 1) and ARE (bit 4, always 1).
    pub ctlr: u32,
    pub spis: [Irq; SPI_COUNT],
    /// GICD_IROUTER<n> for each SPI, as written (Aff3.Aff2.Aff1.Aff0, IRM in bit 31).
    pub irouter: [u64; SPI_COUNT],
    pub redists: Vec<Redistributor>,
    /// Bit n set: SPI 32 + n may be busy (see the module comment).
    spi_busy: u128,
    /// Each vCPU's MPIDR affinity (for routing and GICR_TYPER).
    pub mpidrs: Vec<u64>,
}

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
pub const MAX_LRS: usize = 16;

/// What should be in a vCPU's list registers on entry. Built without allocating: this is
/// on every guest entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flush {
    pub lrs: crate::util::FixedVec<Lr, MAX_LRS>,
    /// More interrupts are pending than fit: ask for a maintenance interrupt when the LRs
    /// drain (ICH_HCR_EL2.UIE) so the rest can follow.
    pub underflow: bool,
}

impl State {
    pub fn new(mpidrs: &[u64]) -> Self {
        let mut redist = Redistributor { private: [Irq::default(); 32], busy: 0, sleep: true };
        for (i, irq) in redist.private.iter_mut().enumerate() {
            // SGIs are edge-triggered; PPIs default to level.
            irq.edge = i < 16;
            irq.group1 = false;
        }
        Self {
            ctlr: 1 << 4,
            spis: [Irq::default(); SPI_COUNT],
            irouter: [0; SPI_COUNT],
            redists: vec![redist; mpidrs.len()],
            spi_busy: 0,
            mpidrs: mpidrs.to_vec(),
        }
    }

    pub fn vcpu_count(&self) -> usize {
        self.redists.len()
    }

    fn enabled_grp1(&self) -> bool {
        self.ctlr & 0b10 != 0
    }

    /// The interrupt `intid` as seen by `vcpu` (private ones are per vCPU).
    pub fn irq(&self, vcpu: usize, intid: u32) -> Option<&Irq> {
        match intid {
            0..=31 => self.redists.get(vcpu).map(|r| &r.private[intid as usize]),
            32.. => self.spis.get(intid as usize - 32),
        }
    }

    /// The interrupt for changing; marks it busy (every change goes through here or
    /// through a register write, which recomputes the maps).
    fn irq_mut(&mut self, vcpu: usize, intid: u32) -> Option<&mut Irq> {
        match intid {
            0..=31 => self.redists.get_mut(vcpu).map(|r| {
                r.busy |= 1 << intid;
                &mut r.private[intid as usize]
            }),
            32.. => {
                let irq = self.spis.get_mut(intid as usize - 32)?;
                self.spi_busy |= 1 << (intid - 32);
                Some(irq)
            }
        }
    }

    /// Recomputes the busy maps from the interrupt state (after a register write).
    fn refresh_busy(&mut self) {
        for r in &mut self.redists {
            r.busy = bitmap(&r.private) as u32;
        }
        self.spi_busy = bitmap(&self.spis);
    }

    /// The busy interrupts `vcpu` may have to handle, as INTIDs: its private ones, then
    /// the SPIs routed to it. Clears the bits of interrupts found idle.
    fn busy_intids(&mut self, vcpu: usize) -> crate::util::FixedVec<u32, INTID_COUNT> {
        let mut out = crate::util::FixedVec::new();
        let Some(r) = self.redists.get_mut(vcpu) else { return out };
        for intid in bits(r.busy as u128) {
            if r.private[intid as usize].is_idle() {
                r.busy &= !(1 << intid);
            } else {
                let _ = out.push(intid);
            }
        }
        for n in bits(self.spi_busy) {
            if self.spis[n as usize].is_idle() {
                self.spi_busy &= !(1 << n);
            } else if self.spi_target(32 + n) == vcpu {
                let _ = out.push(32 + n);
            }
        }
        out
    }

    /// The vCPU an SPI is routed to (IROUTER with IRM = 0: the named affinity; IRM = 1 or a
    /// name that matches nobody: vCPU 0).
    pub fn spi_target(&self, intid: u32) -> usize {
        let Some(&route) = self.irouter.get((intid as usize).wrapping_sub(32)) else { return 0 };
        if route & (1 << 31) != 0 {
            return 0;
        }
        let aff = (route & 0xff_ffff) | ((route >> 32 & 0xff) << 32);
        self.mpidrs.iter().position(|&m| m == aff).unwrap_or(0)
    }

    /// Who must look at its list registers after `intid` changed.
    fn target_of(&self, vcpu: usize, intid: u32) -> usize {
        if intid < 32 { vcpu } else { self.spi_target(intid) }
    }

    /// Makes an edge interrupt pending (or sets a level interrupt's software pending).
    pub fn set_pending(&mut self, vcpu: usize, intid: u32) -> Kicks {
        let mut kicks = Kicks::default();
        let target = self.target_of(vcpu, intid);
        if let Some(irq) = self.irq_mut(vcpu, intid) {
            irq.pending = true;
            kicks.add(target);
        }
        kicks
    }

    /// Drives a level-sensitive line (a device's SPI, a timer PPI).
    pub fn set_line(&mut self, vcpu: usize, intid: u32, high: bool) -> Kicks {
        let mut kicks = Kicks::default();
        let target = self.target_of(vcpu, intid);
        if let Some(irq) = self.irq_mut(vcpu, intid) {
            let rose = high && !irq.line;
            irq.line = high;
            if irq.edge && rose {
                irq.pending = true;
            }
            if high {
                kicks.add(target);
            }
        }
        kicks
    }

    /// A guest write to ICC_SGI1R_EL1 from `sender` (IHI 0069 12.11.9): SGI INTID [27:24],
    /// TargetList [15:0] within Aff3.Aff2.Aff1 [55:48].[39:32].[23:16] with RS [47:44], or
    /// IRM [40] = every vCPU but the sender.
    pub fn write_sgi1r(&mut self, sender: usize, value: u64) -> Kicks {
        let intid = ((value >> 24) & 0xf) as u32;
        let mut kicks = Kicks::default();
        let aff321 = (((value >> 48) & 0xff) << 32) | (((value >> 32) & 0xff) << 16) | (((value >> 16) & 0xff) << 8);
        let rs = (value >> 44) & 0xf;
        for v in 0..self.vcpu_count() {
            let m = self.mpidrs[v];
            let aff0 = m & 0xff;
            let targeted = if value & (1 << 40) != 0 {
                v != sender
            } else {
                (m & !0xff) == aff321 && aff0 / 16 == rs && value & (1 << (aff0 % 16)) != 0
            };
            if targeted {
                kicks.0 |= self.set_pending(v, intid).0;
            }
        }
        kicks
    }

    /// Whether anything is active, or pending and enabled, among `vcpu`'s private
    /// interrupts or the SPIs routed to it (a cheap over-approximation of "flush would
    /// fill a list register"; it only looks at busy interrupts).
    pub fn may_have_work(&mut self, vcpu: usize) -> bool {
        self.busy_intids(vcpu)
            .iter()
            .any(|&intid| self.irq(vcpu, intid).is_some_and(|irq| irq.active || (irq.is_pending() && irq.enabled)))
    }

    /// Chooses what `vcpu`'s `lr_count` list registers hold on entry: every active interrupt
    /// it owns (so the guest can deactivate it), then pending, enabled ones by priority.
    pub fn flush(&mut self, vcpu: usize, lr_count: usize) -> Flush {
        let mut flush = Flush::default();
        if vcpu >= self.vcpu_count() {
            return flush;
        }
        let grp1 = self.enabled_grp1();
        let mut candidates: crate::util::FixedVec<(bool, u8, u32), INTID_COUNT> = crate::util::FixedVec::new();
        for &intid in self.busy_intids(vcpu).iter() {
            let Some(irq) = self.irq(vcpu, intid) else { continue };
            let deliverable = irq.is_pending() && irq.enabled && irq.group1 && grp1;
            // In another vCPU's list register (an SPI routed here since): not until it
            // comes back.
            if irq.in_lr {
                continue;
            }
            if irq.active || deliverable {
                // Active first, then by priority, then by INTID.
                let _ = candidates.push((!irq.active, irq.priority, intid));
            }
        }
        candidates.sort_unstable();
        flush.underflow = candidates.len() > lr_count;
        for &(_, _, intid) in candidates.iter().take(lr_count.min(MAX_LRS)) {
            let Some(irq) = self.irq_mut(vcpu, intid) else { continue };
            let pending = irq.is_pending() && irq.enabled;
            let state = (if pending { Lr::STATE_PENDING } else { 0 }) | (if irq.active { Lr::STATE_ACTIVE } else { 0 });
            irq.in_lr = true;
            // The LR now holds the pending state; the latch is re-derived on sync.
            irq.pending = false;
            let _ = flush.lrs.push(Lr::new(intid, irq.priority, state));
        }
        flush
    }

    /// Folds `vcpu`'s list registers, as read on exit, back into the model.
    pub fn sync(&mut self, vcpu: usize, lrs: &[Lr]) {
        for lr in lrs {
            let Some(irq) = self.irq_mut(vcpu, lr.intid()) else { continue };
            let state = lr.state();
            irq.in_lr = false;
            irq.active = state & Lr::STATE_ACTIVE != 0;
            if state & Lr::STATE_PENDING != 0 {
                irq.pending = true;
            }
        }
    }

    /// An MMIO read of the distributor.
    pub fn dist_read(&self, offset: u64, size: u8) -> u64 {
        regs::dist_read(self, offset, size)
    }

    pub fn dist_write(&mut self, offset: u64, size: u8, value: u64) -> Kicks {
        let kicks = regs::dist_write(self, offset, size, value);
        self.refresh_busy();
        kicks
    }

    /// An MMIO read of the redistributor region (`offset` from the first vCPU's frame).
    pub fn redist_read(&self, offset: u64, size: u8) -> u64 {
        regs::redist_read(self, offset, size)
    }

    pub fn redist_write(&mut self, offset: u64, size: u8, value: u64) -> Kicks {
        let kicks = regs::redist_write(self, offset, size, value);
        self.refresh_busy();
        kicks
    }
}
