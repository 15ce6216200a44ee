//! Log budgets: how often one kind of message about one VM may reach the console. A guest
//! that faults, starts and stops vCPUs, or probes unimplemented registers in a loop would
//! otherwise flood the console (with IRQs masked on the exit path) and crowd out every other
//! VM's lines; one budget shared by everything would instead let one noisy VM silence the
//! warnings about all the others.
//!
//! A budget lets `burst` lines through, then one more each `period`. What it holds back is
//! counted, and the next line it lets through says how many were suppressed, so nothing is
//! lost silently.
#![forbid(unsafe_code)]

use crate::sync::IrqLock;

/// One budget (lock: a leaf, held only to update three counters).
pub struct LogLimit {
    state: IrqLock<State>,
    burst: u32,
    /// Counter ticks per line once the burst is spent.
    period: u64,
}

#[derive(Clone, Copy)]
struct State {
    /// Lines that may go out now.
    tokens: u32,
    /// When the last token was added (counter ticks).
    refilled: u64,
    /// Lines held back since the last one let through.
    suppressed: u32,
}

/// The verdict on one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Print it; `suppressed` lines of its kind were held back before it.
    Print { suppressed: u32 },
    /// Hold it back (counted).
    Suppress,
}

impl LogLimit {
    /// `burst` lines at once, then one per `period` counter ticks.
    pub const fn new(burst: u32, period: u64) -> Self {
        Self { state: IrqLock::new(State { tokens: burst, refilled: 0, suppressed: 0 }), burst, period }
    }

    /// Whether a line may go out at counter value `now`.
    pub fn check(&self, now: u64) -> Verdict {
        let mut s = self.state.lock();
        if s.tokens < self.burst && self.period > 0 {
            let earned = now.saturating_sub(s.refilled) / self.period;
            if earned > 0 {
                s.tokens = (s.tokens as u64 + earned).min(self.burst as u64) as u32;
                s.refilled = now;
            }
        }
        if s.tokens == 0 {
            s.suppressed = s.suppressed.saturating_add(1);
            return Verdict::Suppress;
        }
        if s.tokens == self.burst {
            // Spending from a full bucket starts its refill clock.
            s.refilled = now;
        }
        s.tokens -= 1;
        let suppressed = core::mem::take(&mut s.suppressed);
        Verdict::Print { suppressed }
    }
}

/// A VM's budgets, one per kind of message.
pub struct VmLogLimits {
    /// "vCPU n running on this pCPU": a CPU_ON/CPU_OFF loop must not flood the console.
    pub vcpu_start: LogLimit,
    /// Faults and undefined instructions injected back into the guest.
    pub guest_fault: LogLimit,
    /// Accesses to device offsets no register answers.
    pub unknown_access: LogLimit,
}

impl VmLogLimits {
    /// 16 lines of each kind at once, then one a second, with counter frequency `hz`.
    pub fn new(hz: u64) -> Self {
        Self {
            vcpu_start: LogLimit::new(16, hz),
            guest_fault: LogLimit::new(16, hz),
            unknown_access: LogLimit::new(16, hz),
        }
    }
}

/// What to add to a line let through after `suppressed` were held back.
pub struct Suppressed(pub u32);

impl core::fmt::Display for Suppressed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " ({n} more like it suppressed)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_period_and_the_count_of_what_was_held_back() {
        let l = LogLimit::new(3, 100);
        for _ in 0..3 {
            assert_eq!(l.check(10), Verdict::Print { suppressed: 0 });
        }
        for t in [11, 50, 109] {
            assert_eq!(l.check(t), Verdict::Suppress);
        }
        // One period after the burst began: one line, which reports the three held back.
        assert_eq!(l.check(110), Verdict::Print { suppressed: 3 });
        assert_eq!(l.check(111), Verdict::Suppress);
        assert_eq!(l.check(210), Verdict::Print { suppressed: 1 });
        // A long quiet spell refills to the burst, not beyond.
        for _ in 0..3 {
            assert!(matches!(l.check(10_000), Verdict::Print { .. }));
        }
        assert_eq!(l.check(10_001), Verdict::Suppress);
        assert_eq!(format!("x{}", Suppressed(0)), "x");
        assert_eq!(format!("x{}", Suppressed(5)), "x (5 more like it suppressed)");
    }

    #[test]
    fn budgets_are_per_vm_and_per_kind() {
        let a = VmLogLimits::new(1000);
        let b = VmLogLimits::new(1000);
        for _ in 0..16 {
            assert!(matches!(a.guest_fault.check(0), Verdict::Print { .. }));
        }
        assert_eq!(a.guest_fault.check(0), Verdict::Suppress, "VM a spent its fault budget");
        assert!(matches!(a.vcpu_start.check(0), Verdict::Print { .. }), "its other kinds are untouched");
        assert!(matches!(b.guest_fault.check(0), Verdict::Print { .. }), "VM b's faults still print");
    }
}
