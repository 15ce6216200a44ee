//! What the core implements, as its ID registers say (Arm ARM D19.2, the ID_AA64PFR0_EL1,
//! ID_AA64PFR1_EL1, ID_AA64DFR0_EL1 and ID_AA64MMFR1_EL1 descriptions):
//! the features whose EL2 trap controls are RES0 where they are absent, so that the
//! hypervisor sets a trap bit only where the feature is ([`crate::hw::el2`]'s `guest`
//! values).
#![forbid(unsafe_code)]

/// The ID registers the trap controls depend on, as read from the hardware.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    pub pfr0: u64,
    pub pfr1: u64,
    pub dfr0: u64,
    pub mmfr1: u64,
    /// ID_AA64ISAR1_EL1 and ID_AA64ISAR2_EL1 (pointer authentication).
    pub isar1: u64,
    pub isar2: u64,
}

/// The 4-bit ID field at `shift` (all the fields used here are unsigned).
const fn field(value: u64, shift: u32) -> u64 {
    (value >> shift) & 0xf
}

/// Where the fields are.
pub mod shift {
    /// ID_AA64PFR0_EL1.RAS [31:28]: FEAT_RAS (1), RASv1p1 (2), RASv2 (3).
    pub const PFR0_RAS: u32 = 28;
    /// ID_AA64PFR0_EL1.AMU [47:44]: FEAT_AMUv1 (1), AMUv1p1 (2).
    pub const PFR0_AMU: u32 = 44;
    /// ID_AA64PFR1_EL1.SME [27:24]: FEAT_SME.
    pub const PFR1_SME: u32 = 24;
    /// ID_AA64DFR0_EL1.DebugVer [3:0].
    pub const DFR0_DEBUGVER: u32 = 0;
    /// ID_AA64DFR0_EL1.PMSVer [35:32]: FEAT_SPE.
    pub const DFR0_PMSVER: u32 = 32;
    /// ID_AA64DFR0_EL1.TraceFilt [43:40]: FEAT_TRF.
    pub const DFR0_TRACEFILT: u32 = 40;
    /// ID_AA64MMFR1_EL1.LO [19:16]: FEAT_LOR.
    pub const MMFR1_LO: u32 = 16;
    /// ID_AA64ISAR1_EL1: APA [7:4], API [11:8] (address authentication), GPA [27:24], GPI
    /// [31:28] (generic authentication).
    pub const ISAR1_PAUTH: [u32; 4] = [4, 8, 24, 28];
    /// ID_AA64ISAR2_EL1: GPA3 [11:8], APA3 [15:12] (the QARMA3 algorithm).
    pub const ISAR2_PAUTH: [u32; 2] = [8, 12];
}

impl Features {
    /// Every field at its highest value: a core with every feature here (for tests).
    #[cfg(test)]
    pub const ALL: Features =
        Features { pfr0: u64::MAX, pfr1: u64::MAX, dfr0: u64::MAX, mmfr1: u64::MAX, isar1: u64::MAX, isar2: u64::MAX };

    /// FEAT_RAS: the error record registers (HCR_EL2.TERR), VDISR_EL2.
    pub const fn ras(&self) -> bool {
        field(self.pfr0, shift::PFR0_RAS) != 0
    }

    /// FEAT_AMUv1: the activity monitors (CPTR_EL2.TAM).
    pub const fn amu(&self) -> bool {
        field(self.pfr0, shift::PFR0_AMU) != 0
    }

    /// FEAT_SME: TPIDR2_EL0 among others.
    pub const fn sme(&self) -> bool {
        field(self.pfr1, shift::PFR1_SME) != 0
    }

    /// FEAT_SPE: the statistical profiling registers (MDCR_EL2.TPMS).
    pub const fn spe(&self) -> bool {
        field(self.dfr0, shift::DFR0_PMSVER) != 0
    }

    /// FEAT_TRF: TRFCR_EL1 (MDCR_EL2.TTRF).
    pub const fn trf(&self) -> bool {
        field(self.dfr0, shift::DFR0_TRACEFILT) != 0
    }

    /// FEAT_LOR: the LORegion registers (HCR_EL2.TLOR).
    pub const fn lor(&self) -> bool {
        field(self.mmfr1, shift::MMFR1_LO) != 0
    }

    /// FEAT_PAuth, by any algorithm: the pointer authentication instructions and keys
    /// (HCR_EL2.API and APK).
    pub const fn pauth(&self) -> bool {
        let [a, b, c, d] = shift::ISAR1_PAUTH;
        let [e, g] = shift::ISAR2_PAUTH;
        field(self.isar1, a) | field(self.isar1, b) | field(self.isar1, c) | field(self.isar1, d) != 0
            || field(self.isar2, e) | field(self.isar2, g) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_max_and_cortex_a53() {
        // What QEMU 7.2 shows at EL2 for -cpu max and -cpu cortex-a53.
        let max = Features {
            pfr0: 0x1201_0011_2111_0222,
            pfr1: 0x0100_0021,
            dfr0: 0x1030_5609,
            mmfr1: 0x0110_1021_1122,
            // APA 1 and GPA 1 (QARMA5 authentication), the other fields left out.
            isar1: (1 << 4) | (1 << 24),
            isar2: 0,
        };
        assert!(max.ras() && max.sme() && max.lor() && max.pauth());
        assert!(!max.amu() && !max.trf() && !max.spe());
        let a53 = Features { pfr0: 0x0100_0222, pfr1: 0, dfr0: 0x1030_5106, mmfr1: 0, isar1: 0, isar2: 0 };
        assert!(!a53.ras() && !a53.sme() && !a53.lor() && !a53.amu() && !a53.trf() && !a53.spe() && !a53.pauth());
        // QARMA3 only (ID_AA64ISAR2_EL1.APA3) is pointer authentication too.
        assert!(Features { isar2: 1 << 12, ..a53 }.pauth());
        let all = Features::ALL;
        assert!(all.ras() && all.amu() && all.sme() && all.spe() && all.trf() && all.lor() && all.pauth());
    }
}
