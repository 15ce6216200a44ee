//! The CPU a guest sees: ID registers (trapped with HCR_EL2.TID3) with the features we do
//! not virtualize removed, so that a guest never probes them and then faults. Hidden: SVE
//! and SME (CPTR_EL2 traps them; their register state is not switched), MTE (HCR_EL2.ATA
//! is 0), pointer authentication (HCR_EL2.API/APK are 0), the PMU and statistical
//! profiling, trace, AMU, MPAM, RME. Everything else is the hardware's value.
#![forbid(unsafe_code)]

/// An ID register in the trapped group: op0 = 3, op1 = 0, CRn = 0, CRm = 1-7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdReg {
    pub crm: u8,
    pub op2: u8,
}

fn clear(value: u64, fields: &[u32]) -> u64 {
    fields.iter().fold(value, |v, &shift| v & !(0xf << shift))
}

/// The value the guest reads for ID register `r` whose hardware value is `hw`, in a VM whose
/// vGIC is `gic`.
pub fn sanitize(r: IdReg, hw: u64, gic: crate::vgic::Version) -> u64 {
    match (r.crm, r.op2) {
        // ID_AA64PFR0_EL1.GIC [27:24]: a vGICv2 has no system-register interface (KVM hides
        // it the same way), whatever the core's GIC CPU interface could do.
        (4, 0) if gic == crate::vgic::Version::V2 => clear(hw, &[24, 32, 40, 44, 52]),
        // ID_AA64PFR0_EL1: SVE [35:32], MPAM [43:40], AMU [47:44], RME [55:52].
        (4, 0) => clear(hw, &[32, 40, 44, 52]),
        // ID_AA64PFR1_EL1: MTE [11:8], MPAM_frac [19:16], SME [27:24], NMI [39:36],
        // MTE_frac [43:40], GCS [47:44].
        (4, 1) => clear(hw, &[8, 16, 24, 36, 40, 44]),
        // ID_AA64ZFR0_EL1 (SVE) and ID_AA64SMFR0_EL1 (SME).
        (4, 4) | (4, 5) => 0,
        // ID_AA64DFR0_EL1: TraceVer [7:4], PMUVer [11:8], PMSVer [35:32], TraceFilt [43:40],
        // TraceBuffer [47:44], MTPMU [51:48], BRBE [55:52].
        (5, 0) => clear(hw, &[4, 8, 32, 40, 44, 48, 52]),
        // ID_AA64ISAR1_EL1: APA [7:4], API [11:8], GPA [27:24], GPI [31:28].
        (6, 1) => clear(hw, &[4, 8, 24, 28]),
        // ID_AA64ISAR2_EL1: GPA3 [11:8], APA3 [15:12].
        (6, 2) => clear(hw, &[8, 12]),
        _ => hw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_what_we_do_not_virtualize() {
        let all = u64::MAX;
        use crate::vgic::Version::{V2, V3};
        let pfr0 = sanitize(IdReg { crm: 4, op2: 0 }, all, V3);
        assert_eq!((pfr0 >> 32) & 0xf, 0, "SVE");
        assert_eq!(pfr0 & 0xffff_ffff, 0xffff_ffff, "EL0-3, FP, AdvSIMD, GIC kept");
        let pfr0_v2 = sanitize(IdReg { crm: 4, op2: 0 }, all, V2);
        assert_eq!(pfr0_v2 & 0xffff_ffff, 0xf0ff_ffff, "a vGICv2: no GIC system registers");
        assert_eq!((pfr0_v2 >> 32) & 0xf, 0, "and still no SVE");
        let pfr1 = sanitize(IdReg { crm: 4, op2: 1 }, all, V3);
        assert_eq!((pfr1 >> 8) & 0xf, 0, "MTE");
        assert_eq!((pfr1 >> 24) & 0xf, 0, "SME");
        assert_eq!(sanitize(IdReg { crm: 4, op2: 4 }, all, V3), 0);
        assert_eq!(sanitize(IdReg { crm: 4, op2: 5 }, all, V3), 0);
        let dfr0 = sanitize(IdReg { crm: 5, op2: 0 }, all, V3);
        assert_eq!((dfr0 >> 8) & 0xf, 0, "PMU");
        assert_eq!(dfr0 & 0xf, 0xf, "DebugVer kept");
        let isar1 = sanitize(IdReg { crm: 6, op2: 1 }, all, V3);
        assert_eq!(isar1 & 0xff0, 0, "APA, API");
        assert_eq!((isar1 >> 24) & 0xff, 0, "GPA, GPI");
        assert_eq!(sanitize(IdReg { crm: 6, op2: 0 }, 0x1234, V3), 0x1234, "ISAR0 untouched");
    }
}
