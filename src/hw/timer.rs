//! The Generic Timer controls (Arm ARM D11, "The Generic Timer in AArch64 state"): the
//! EL1 timers' control registers and what EL2 lets EL1 use.
#![forbid(unsafe_code)]

/// CNTV_CTL_EL0 and CNTP_CTL_EL0 (Arm ARM, CNTV_CTL_EL0 and CNTP_CTL_EL0: the same layout).
pub mod ctl {
    /// The timer is enabled.
    pub const ENABLE: u64 = 1 << 0;
    /// The timer's interrupt is masked: it does not assert while the condition holds.
    pub const IMASK: u64 = 1 << 1;
    /// The timer condition is met (read-only).
    pub const ISTATUS: u64 = 1 << 2;
}

/// CNTHCTL_EL2 with HCR_EL2.E2H = 0 (Arm ARM, CNTHCTL_EL2).
pub mod cnthctl {
    /// EL1 and EL0 may read the physical counter (no trap to EL2).
    pub const EL1PCTEN: u64 = 1 << 0;
    /// EL1 and EL0 may use the EL1 physical timer (no trap to EL2).
    pub const EL1PCEN: u64 = 1 << 1;
}
