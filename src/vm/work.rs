//! Per-vCPU work bits shared between pCPUs (`Vm::vgic_work`, `Vm::spi_work`), with the
//! orderings of their protocol in the method names' contracts instead of at every call.
#![forbid(unsafe_code)]

use crate::vgic::Kicks;
use core::sync::atomic::{AtomicU64, Ordering};

/// Bit n: vCPU n may have work of one kind. Whoever makes work marks it (Release) before it
/// kicks; the vCPU reads its bit (Acquire) and clears it only when it found none, rechecking
/// after the clear (AcqRel), so a mark racing with the clear is never lost.
#[derive(Debug)]
pub struct WorkBits(AtomicU64);

impl WorkBits {
    /// Every vCPU marked: a new VM looks at everything once.
    pub const fn all() -> Self {
        Self(AtomicU64::new(u64::MAX))
    }

    /// Marks the vCPUs in `kicks` (Release: what the marker stored before is visible to the
    /// vCPU that sees its bit).
    pub fn mark(&self, kicks: Kicks) {
        self.0.fetch_or(kicks.0, Ordering::Release);
    }

    /// Marks vCPU bit `bit` again after a clear whose recheck found work (AcqRel).
    pub fn remark(&self, bit: u64) {
        self.0.fetch_or(bit, Ordering::AcqRel);
    }

    /// Whether bit `bit` is marked (Acquire).
    pub fn has(&self, bit: u64) -> bool {
        self.0.load(Ordering::Acquire) & bit != 0
    }

    /// Clears bit `bit` (AcqRel): the caller then rechecks its work and remarks if any.
    pub fn clear(&self, bit: u64) {
        self.0.fetch_and(!bit, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_clears_per_vcpu() {
        let w = WorkBits::all();
        assert!(w.has(1 << 5));
        w.clear(1 << 5);
        assert!(!w.has(1 << 5) && w.has(1 << 4), "one bit cleared");
        w.mark(Kicks(1 << 5));
        assert!(w.has(1 << 5));
        w.clear(1 << 5);
        w.remark(1 << 5);
        assert!(w.has(1 << 5));
    }
}
