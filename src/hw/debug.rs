//! Self-hosted debug as the Arm ARM describes it (DDI 0487, D2 "AArch64 Self-hosted Debug",
//! and the register descriptions of the debug registers, op0 = 2): the debug system
//! registers by encoding, which MDCR_EL2 bit traps each of them (MDCR_EL2.TDA, TDOSA,
//! TDRA), which way each may be accessed, and the fields of MDSCR_EL1, the OS lock
//! registers and the breakpoint and watchpoint controls the hypervisor and its tests use.
#![forbid(unsafe_code)]

/// Breakpoints and watchpoints the AArch64 debug registers can name (DBGBVR0-15 and
/// DBGWVR0-15 without FEAT_Debugv8p9's banks).
pub const MAX_POINTS: usize = 16;

/// A debug system register a guest at EL1 or EL0 can name (op0 = 2, Arm ARM C5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reg {
    /// DBGBVR<n>_EL1: breakpoint value.
    Bvr(u8),
    /// DBGBCR<n>_EL1: breakpoint control.
    Bcr(u8),
    /// DBGWVR<n>_EL1: watchpoint value.
    Wvr(u8),
    /// DBGWCR<n>_EL1: watchpoint control.
    Wcr(u8),
    /// MDSCR_EL1: the monitor debug controls (MDE, KDE, SS, TDCC, ...).
    Mdscr,
    /// MDCCINT_EL1: the DCC interrupt enables.
    Mdccint,
    /// OSECCR_EL1: the OS lock view of EDECCR (exception catch).
    Oseccr,
    /// OSDTRRX_EL1 and OSDTRTX_EL1: the OS save/restore views of the DCC data registers.
    Osdtrrx,
    Osdtrtx,
    /// MDCCSR_EL0: the DCC status, read-only.
    Mdccsr,
    /// DBGDTR_EL0: both DCC data registers at once.
    Dbgdtr,
    /// DBGDTRRX_EL0 (read) and DBGDTRTX_EL0 (write): one encoding.
    DbgdtrRxTx,
    /// DBGCLAIMSET_EL1 and DBGCLAIMCLR_EL1: the claim tags.
    ClaimSet,
    ClaimClr,
    /// DBGAUTHSTATUS_EL1: what debug the authentication interface allows, read-only.
    AuthStatus,
    /// MDRAR_EL1: the debug ROM address, read-only.
    Mdrar,
    /// OSLAR_EL1: the OS lock, write-only.
    Oslar,
    /// OSLSR_EL1: the OS lock status, read-only.
    Oslsr,
    /// OSDLR_EL1: the OS double lock.
    Osdlr,
    /// DBGPRCR_EL1: the core power-down request control.
    Dbgprcr,
}

/// The MDCR_EL2 bit that traps a debug register's accesses from EL1 and EL0 (Arm ARM,
/// MDCR_EL2; KVM's `encoding_to_cgt` groups them the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    /// TDA: the breakpoints and watchpoints, MDSCR_EL1, the DCC, the claim tags, OSECCR_EL1,
    /// DBGAUTHSTATUS_EL1.
    Tda,
    /// TDOSA: the OS lock and power-down registers.
    Tdosa,
    /// TDRA: the debug ROM address register.
    Tdra,
}

/// Which accesses a register has. The other direction is an unallocated encoding: UNDEFINED
/// at EL1, which the hardware raises without asking EL2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
    WriteOnly,
}

impl Reg {
    /// The debug register (op0, op1, CRn, CRm, op2) names, if it is one.
    pub fn decode(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Option<Self> {
        let n = crm & 0xf;
        Some(match (op0, op1, crn, crm, op2) {
            (2, 0, 0, _, 4) => Self::Bvr(n),
            (2, 0, 0, _, 5) => Self::Bcr(n),
            (2, 0, 0, _, 6) => Self::Wvr(n),
            (2, 0, 0, _, 7) => Self::Wcr(n),
            (2, 0, 0, 0, 2) => Self::Osdtrrx,
            (2, 0, 0, 2, 0) => Self::Mdccint,
            (2, 0, 0, 2, 2) => Self::Mdscr,
            (2, 0, 0, 3, 2) => Self::Osdtrtx,
            (2, 0, 0, 6, 2) => Self::Oseccr,
            (2, 0, 1, 0, 0) => Self::Mdrar,
            (2, 0, 1, 0, 4) => Self::Oslar,
            (2, 0, 1, 1, 4) => Self::Oslsr,
            (2, 0, 1, 3, 4) => Self::Osdlr,
            (2, 0, 1, 4, 4) => Self::Dbgprcr,
            (2, 0, 7, 8, 6) => Self::ClaimSet,
            (2, 0, 7, 9, 6) => Self::ClaimClr,
            (2, 0, 7, 14, 6) => Self::AuthStatus,
            (2, 3, 0, 1, 0) => Self::Mdccsr,
            (2, 3, 0, 4, 0) => Self::Dbgdtr,
            (2, 3, 0, 5, 0) => Self::DbgdtrRxTx,
            _ => return None,
        })
    }

    /// The MDCR_EL2 bit that traps it.
    pub fn trap(self) -> Trap {
        match self {
            Self::Oslar | Self::Oslsr | Self::Osdlr | Self::Dbgprcr => Trap::Tdosa,
            Self::Mdrar => Trap::Tdra,
            _ => Trap::Tda,
        }
    }

    pub fn access(self) -> Access {
        match self {
            Self::Mdccsr | Self::AuthStatus | Self::Mdrar | Self::Oslsr => Access::ReadOnly,
            Self::Oslar => Access::WriteOnly,
            _ => Access::ReadWrite,
        }
    }

    /// Whether an MRS (`read`) or MSR of it is an allocated instruction.
    pub fn allows(self, read: bool) -> bool {
        match self.access() {
            Access::ReadWrite => true,
            Access::ReadOnly => read,
            Access::WriteOnly => !read,
        }
    }

    /// The breakpoint or watchpoint it belongs to, and whether a watchpoint.
    pub fn point(self) -> Option<(usize, bool)> {
        match self {
            Self::Bvr(n) | Self::Bcr(n) => Some((n as usize, false)),
            Self::Wvr(n) | Self::Wcr(n) => Some((n as usize, true)),
            _ => None,
        }
    }
}

/// ID_AA64DFR0_EL1's breakpoint and watchpoint counts: BRPs [15:12] and WRPs [23:20] hold
/// the number minus one.
pub fn breakpoints(dfr0: u64) -> usize {
    ((dfr0 >> 12) & 0xf) as usize + 1
}

pub fn watchpoints(dfr0: u64) -> usize {
    ((dfr0 >> 20) & 0xf) as usize + 1
}

/// MDSCR_EL1, the Monitor Debug System Control Register.
pub mod mdscr {
    /// Software step enable.
    pub const SS: u64 = 1 << 0;
    /// EL0 accesses to the DCC trap to EL1.
    pub const TDCC: u64 = 1 << 12;
    /// Local (kernel) debug enable: debug exceptions at the EL they target.
    pub const KDE: u64 = 1 << 13;
    /// Monitor debug events: breakpoints and watchpoints enabled.
    pub const MDE: u64 = 1 << 15;
}

/// OSLAR_EL1, OSLSR_EL1 and OSDLR_EL1.
pub mod oslock {
    /// OSLAR_EL1.OSLK: 1 locks the OS lock.
    pub const OSLAR_OSLK: u64 = 1 << 0;
    /// OSLSR_EL1.OSLK: the OS lock is locked (cold reset value 1).
    pub const OSLSR_OSLK: u64 = 1 << 1;
    /// OSLSR_EL1.OSLM [3, 0]: 0b10, the OS lock is implemented (as FEAT_Debugv8 requires).
    pub const OSLSR_OSLM: u64 = 1 << 3;
    /// OSDLR_EL1.DLK: the double lock (RES0 without FEAT_DoubleLock).
    pub const OSDLR_DLK: u64 = 1 << 0;
}

/// DBGBCR<n>_EL1 and DBGWCR<n>_EL1 fields the test guests program.
pub mod point {
    /// E: enabled.
    pub const E: u64 = 1 << 0;
    /// PMC / PAC [2:1] = 0b11: match at EL1 and EL0.
    pub const EL1_EL0: u64 = 0b11 << 1;
    /// DBGBCR.BAS [8:5] = 0b1111: match the A64 instruction at the address.
    pub const BCR_BAS_A64: u64 = 0b1111 << 5;
}

/// The claim tags DBGCLAIMSET_EL1 and DBGCLAIMCLR_EL1 hold: CLAIM [7:0].
pub const CLAIM_TAGS: u64 = 0xff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_by_name() {
        assert_eq!(Reg::decode(2, 0, 0, 0, 4), Some(Reg::Bvr(0)), "DBGBVR0_EL1");
        assert_eq!(Reg::decode(2, 0, 0, 15, 5), Some(Reg::Bcr(15)), "DBGBCR15_EL1");
        assert_eq!(Reg::decode(2, 0, 0, 3, 6), Some(Reg::Wvr(3)), "DBGWVR3_EL1");
        assert_eq!(Reg::decode(2, 0, 0, 1, 7), Some(Reg::Wcr(1)), "DBGWCR1_EL1");
        assert_eq!(Reg::decode(2, 0, 0, 2, 2), Some(Reg::Mdscr));
        assert_eq!(Reg::decode(2, 0, 0, 2, 0), Some(Reg::Mdccint));
        assert_eq!(Reg::decode(2, 0, 0, 6, 2), Some(Reg::Oseccr));
        assert_eq!(Reg::decode(2, 0, 0, 0, 2), Some(Reg::Osdtrrx));
        assert_eq!(Reg::decode(2, 0, 0, 3, 2), Some(Reg::Osdtrtx));
        assert_eq!(Reg::decode(2, 0, 1, 0, 0), Some(Reg::Mdrar));
        assert_eq!(Reg::decode(2, 0, 1, 0, 4), Some(Reg::Oslar));
        assert_eq!(Reg::decode(2, 0, 1, 1, 4), Some(Reg::Oslsr));
        assert_eq!(Reg::decode(2, 0, 1, 3, 4), Some(Reg::Osdlr));
        assert_eq!(Reg::decode(2, 0, 1, 4, 4), Some(Reg::Dbgprcr));
        assert_eq!(Reg::decode(2, 0, 7, 8, 6), Some(Reg::ClaimSet));
        assert_eq!(Reg::decode(2, 0, 7, 9, 6), Some(Reg::ClaimClr));
        assert_eq!(Reg::decode(2, 0, 7, 14, 6), Some(Reg::AuthStatus));
        assert_eq!(Reg::decode(2, 3, 0, 1, 0), Some(Reg::Mdccsr));
        assert_eq!(Reg::decode(2, 3, 0, 4, 0), Some(Reg::Dbgdtr));
        assert_eq!(Reg::decode(2, 3, 0, 5, 0), Some(Reg::DbgdtrRxTx));
        // Trace unit registers (op1 1), DBGVCR32_EL2 (op1 4), MDSELR_EL1 (Debugv8p9) and
        // anything with op0 3 are not debug registers here.
        assert_eq!(Reg::decode(2, 1, 0, 0, 0), None, "TRC*");
        assert_eq!(Reg::decode(2, 4, 0, 7, 0), None, "DBGVCR32_EL2");
        assert_eq!(Reg::decode(2, 0, 0, 4, 2), None, "MDSELR_EL1");
        assert_eq!(Reg::decode(3, 0, 0, 2, 2), None);
    }

    #[test]
    fn traps_and_directions() {
        assert_eq!(Reg::Bvr(0).trap(), Trap::Tda);
        assert_eq!(Reg::Mdscr.trap(), Trap::Tda);
        assert_eq!(Reg::DbgdtrRxTx.trap(), Trap::Tda);
        assert_eq!(Reg::AuthStatus.trap(), Trap::Tda);
        assert_eq!(Reg::Oslar.trap(), Trap::Tdosa);
        assert_eq!(Reg::Dbgprcr.trap(), Trap::Tdosa);
        assert_eq!(Reg::Mdrar.trap(), Trap::Tdra);
        assert!(Reg::Oslar.allows(false) && !Reg::Oslar.allows(true), "OSLAR_EL1 is write-only");
        assert!(Reg::Oslsr.allows(true) && !Reg::Oslsr.allows(false), "OSLSR_EL1 is read-only");
        assert!(!Reg::Mdccsr.allows(false) && !Reg::Mdrar.allows(false) && !Reg::AuthStatus.allows(false));
        assert!(Reg::Bcr(3).allows(true) && Reg::Bcr(3).allows(false));
        assert_eq!(Reg::Wcr(2).point(), Some((2, true)));
        assert_eq!(Reg::Bvr(5).point(), Some((5, false)));
        assert_eq!(Reg::Mdscr.point(), None);
    }

    #[test]
    fn point_counts() {
        // Cortex-A53: 6 breakpoints, 4 watchpoints (ID_AA64DFR0_EL1 0x10305106).
        assert_eq!((breakpoints(0x1030_5106), watchpoints(0x1030_5106)), (6, 4));
        assert_eq!((breakpoints(0), watchpoints(0)), (1, 1));
        assert_eq!((breakpoints(u64::MAX), watchpoints(u64::MAX)), (16, 16));
    }
}
