//! The CPU a guest sees: ID registers (trapped with HCR_EL2.TID3) with the features we do
//! not virtualize removed, so that a guest never probes them and then faults. Hidden: SVE
//! and SME (CPTR_EL2 traps them; their register state is not switched), MTE (HCR_EL2.ATA
//! is 0), the PMU and statistical
//! profiling, trace and the trace filter controls, AMU, MPAM, RME, and the debug
//! architecture beyond Armv8.8 (FEAT_Debugv8p9's breakpoint banks and ID_AA64DFR1_EL1,
//! as KVM limits it). Everything else is the hardware's value: the breakpoints and
//! watchpoints (the guest owns the real ones), pointer authentication (its keys are part
//! of the vCPU's context), RAS and LORegions (their registers trap and are answered as KVM
//! does, vm::dispatch). CSV2 says at most 1, as KVM says it: no SCXTNUM_ELx, which trap
//! (HCR_EL2.EnSCXT is 0) and are UNDEFINED.
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

/// `value` with its 4-bit field at `shift` limited to `max`.
fn at_most(value: u64, shift: u32, max: u64) -> u64 {
    let f = ((value >> shift) & 0xf).min(max);
    (value & !(0xf << shift)) | (f << shift)
}

/// ID_AA64DFR0_EL1.DebugVer: its place, and the value of FEAT_Debugv8p8.
const DEBUGVER: u32 = crate::hw::features::shift::DFR0_DEBUGVER;
const DEBUG_V8P8: u64 = 0b1010;

/// What the guest's ID registers say it has, for the answers that depend on it (the
/// LORegion and RAS registers), in a VM whose vGIC is `gic`.
pub fn guest_features(gic: crate::vgic::Version) -> crate::hw::features::Features {
    let id = |crm, op2| sanitize(IdReg { crm, op2 }, crate::arch::read_id_reg(crm, op2), gic);
    crate::hw::features::Features {
        pfr0: id(4, 0),
        pfr1: id(4, 1),
        dfr0: id(5, 0),
        mmfr1: id(7, 1),
        isar1: id(6, 1),
        isar2: id(6, 2),
    }
}

/// The value the guest reads for ID register `r` whose hardware value is `hw`, in a VM whose
/// vGIC is `gic`.
pub fn sanitize(r: IdReg, hw: u64, gic: crate::vgic::Version) -> u64 {
    match (r.crm, r.op2) {
        // ID_AA64PFR0_EL1.GIC [27:24]: a vGICv2 has no system-register interface (KVM hides
        // it the same way), whatever the core's GIC CPU interface could do.
        (4, 0) if gic == crate::vgic::Version::V2 => at_most(clear(hw, &[24, 32, 40, 44, 52]), 56, 1),
        // ID_AA64PFR0_EL1: SVE [35:32], MPAM [43:40], AMU [47:44], RME [55:52]; CSV2
        // [59:56] at most 1.
        (4, 0) => at_most(clear(hw, &[32, 40, 44, 52]), 56, 1),
        // ID_AA64PFR1_EL1: MTE [11:8], MPAM_frac [19:16], SME [27:24], NMI [39:36],
        // MTE_frac [43:40], GCS [47:44]; CSV2_frac [35:32] at most 1 (2 would mean
        // SCXTNUM_ELx).
        (4, 1) => at_most(clear(hw, &[8, 16, 24, 36, 40, 44]), 32, 1),
        // ID_AA64ZFR0_EL1 (SVE) and ID_AA64SMFR0_EL1 (SME).
        (4, 4) | (4, 5) => 0,
        // ID_AA64DFR0_EL1: TraceVer [7:4], PMUVer [11:8], PMSS [19:16], SEBEP [27:24],
        // PMSVer [35:32], TraceFilt [43:40], TraceBuffer [47:44], MTPMU [51:48], BRBE
        // [55:52], ExtTrcBuff [59:56], HPMN0 [63:60]; DebugVer [3:0] at most Armv8.8.
        (5, 0) => {
            let v = clear(hw, &[4, 8, 16, 24, 32, 40, 44, 48, 52, 56, 60]);
            let version = (v >> DEBUGVER) & 0xf;
            (v & !(0xf << DEBUGVER)) | (version.min(DEBUG_V8P8) << DEBUGVER)
        }
        // ID_AA64DFR1_EL1: Debugv8p9's and the PMU's and trace's extensions, none given.
        (5, 1) => 0,
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
        assert_eq!(dfr0 & 0xf, 0b1010, "DebugVer at most Armv8.8");
        assert_eq!((dfr0 >> 12) & 0xf, 0xf, "BRPs kept");
        assert_eq!((dfr0 >> 20) & 0xf, 0xf, "WRPs kept");
        assert_eq!((dfr0 >> 28) & 0xf, 0xf, "CTX_CMPs kept");
        assert_eq!((dfr0 >> 36) & 0xf, 0xf, "DoubleLock kept");
        assert_eq!((dfr0 >> 40) & 0xf, 0, "TraceFilt: no TRFCR_EL1");
        assert_eq!(dfr0 >> 56, 0, "ExtTrcBuff, HPMN0");
        for (shift, what) in [(4, "TraceVer"), (16, "PMSS"), (24, "SEBEP"), (32, "PMSVer")] {
            assert_eq!((dfr0 >> shift) & 0xf, 0, "{what} hidden");
        }
        // QEMU's -cpu max (Debugv8p4) and a Cortex-A53 (Armv8.0) as they are, less the PMU.
        assert_eq!(sanitize(IdReg { crm: 5, op2: 0 }, 0x1030_5609, V3), 0x1030_5009);
        assert_eq!(sanitize(IdReg { crm: 5, op2: 0 }, 0x1030_5106, V3), 0x1030_5006);
        assert_eq!(sanitize(IdReg { crm: 5, op2: 1 }, all, V3), 0, "ID_AA64DFR1_EL1");
        let pfr0 = sanitize(IdReg { crm: 4, op2: 0 }, all, V3);
        assert_eq!((pfr0 >> 44) & 0xf, 0, "AMU hidden");
        assert_eq!((pfr0 >> 28) & 0xf, 0xf, "RAS kept: its registers answer as KVM's");
        assert_eq!((sanitize(IdReg { crm: 7, op2: 1 }, all, V3) >> 16) & 0xf, 0xf, "LO kept");
        let isar1 = sanitize(IdReg { crm: 6, op2: 1 }, all, V3);
        assert_eq!(isar1 & 0xff0, 0xff0, "APA, API: the guest has its own keys");
        assert_eq!((isar1 >> 24) & 0xff, 0xff, "GPA, GPI");
        assert_eq!((pfr0 >> 56) & 0xf, 1, "CSV2 at most 1: no SCXTNUM_ELx");
        assert_eq!((pfr1 >> 32) & 0xf, 1, "CSV2_frac at most 1");
        assert_eq!(sanitize(IdReg { crm: 4, op2: 0 }, 0, V3), 0, "no CSV2 stays none");
        assert_eq!(sanitize(IdReg { crm: 6, op2: 0 }, 0x1234, V3), 0x1234, "ISAR0 untouched");
    }
}
