//! EL2's controls over a guest, and the EL1 state a vCPU starts in: the HCR_EL2, CPTR_EL2
//! and MDCR_EL2 bits the hypervisor sets (and the values a guest runs under, from what the
//! core implements: a trap bit that is RES0 without its feature is set only where the
//! feature is), SCTLR_EL1's bits, and PSTATE as SPSR_ELx holds it. Each module names its
//! register's description in the Arm ARM (DDI 0487).
#![forbid(unsafe_code)]

use super::features::Features;

/// MPIDR_EL1, as VMPIDR_EL2 gives it to a guest (Arm ARM, MPIDR_EL1).
pub mod mpidr {
    /// Aff0 [7:0].
    pub const AFF0: u64 = 0xff;
    /// The affinity fields: Aff3 [39:32], Aff2 [23:16], Aff1 [15:8], Aff0 [7:0].
    pub const AFFINITY: u64 = 0xff_00ff_ffff;
    /// Bit 31 is RES1.
    pub const RES1: u64 = 1 << 31;
}

/// HCR_EL2, the Hypervisor Configuration Register (Arm ARM, HCR_EL2).
pub mod hcr {
    /// Stage-2 translation for EL1&0 on.
    pub const VM: u64 = 1 << 0;
    /// Set/way invalidation override: DC ISW acts as DC CISW.
    pub const SWIO: u64 = 1 << 1;
    /// Physical FIQs go to EL2.
    pub const FMO: u64 = 1 << 3;
    /// Physical IRQs go to EL2.
    pub const IMO: u64 = 1 << 4;
    /// Physical SErrors go to EL2.
    pub const AMO: u64 = 1 << 5;
    /// Trap WFI.
    pub const TWI: u64 = 1 << 13;
    /// Trap WFE.
    pub const TWE: u64 = 1 << 14;
    /// Trap ID group 3 (the ID_AA64* and ID_* feature registers).
    pub const TID3: u64 = 1 << 18;
    /// Trap SMC.
    pub const TSC: u64 = 1 << 19;
    /// Trap the IMPLEMENTATION DEFINED system registers.
    pub const TIDCP: u64 = 1 << 20;
    /// Trap the auxiliary control registers (ACTLR_EL1).
    pub const TACR: u64 = 1 << 21;
    /// Trap data cache maintenance by set/way.
    pub const TSW: u64 = 1 << 22;
    /// EL1 is AArch64.
    pub const RW: u64 = 1 << 31;
    /// Trap the LORegion registers (FEAT_LOR; RES0 without it).
    pub const TLOR: u64 = 1 << 35;
    /// Trap the RAS error record registers ERR*_EL1 and ERX*_EL1 (FEAT_RAS; RES0 without).
    pub const TERR: u64 = 1 << 36;
    /// 1: pointer authentication key registers do not trap (FEAT_PAuth).
    pub const APK: u64 = 1 << 40;
    /// 1: pointer authentication instructions do not trap (FEAT_PAuth).
    pub const API: u64 = 1 << 41;
    /// 1: the RAS fault injection registers ERXPFG*_EL1 do not trap (left 0).
    pub const FIEN: u64 = 1 << 47;
    /// 1: allocation tag access does not trap (FEAT_MTE2).
    pub const ATA: u64 = 1 << 56;

    /// HCR_EL2 while a guest runs on a core with `f`: stage-2 on (VM), set/way invalidation
    /// as clean+invalidate (SWIO), physical IRQ/FIQ/SError to EL2 (IMO/FMO/AMO), ID group 3
    /// registers trapped (TID3, emulated by vm::idregs), SMC trapped (TSC), implementation
    /// defined and auxiliary control registers trapped (TIDCP, TACR), EL1 is AArch64 (RW).
    /// Set/way cache maintenance is not trapped (TSW = 0): a vCPU never leaves the pCPU its
    /// placement names, so a guest's DC CSW/CISW on its own core's caches is what it would
    /// do on the bare machine (firmware cleans its caches this way before turning them on
    /// or off), and SWIO makes DC ISW a clean and invalidate, so no other VM's or the
    /// hypervisor's dirty lines are thrown away. Where the core has pointer authentication
    /// the guest has it too (API = APK = 1, its keys part of the vCPU's context, as KVM
    /// gives it by default): hiding it cannot be done consistently, since XPACD, XPACI and
    /// XPACLRI do not trap (Arm ARM, HCR_EL2.API) and would work in a VM told there is no
    /// pointer authentication. MTE tag access (ATA = 0) traps and the ID registers hide
    /// MTE. WFI and WFE do not
    /// trap (TWI = TWE = 0). Where the core has them, the LORegion registers (TLOR) and the
    /// RAS error records (TERR, with FIEN = 0 for the fault injection ones) trap, so that
    /// no VM's values reach the hardware's registers (vm::dispatch answers them as KVM
    /// does).
    pub const fn guest(f: &super::Features) -> u64 {
        let mut v = VM | SWIO | FMO | IMO | AMO | TID3 | TSC | TIDCP | TACR | RW;
        if f.lor() {
            v |= TLOR;
        }
        if f.ras() {
            v |= TERR;
        }
        if f.pauth() {
            v |= API | APK;
        }
        v
    }
}

/// CPTR_EL2 with HCR_EL2.E2H = 0, the Architectural Feature Trap Register (Arm ARM,
/// CPTR_EL2).
pub mod cptr {
    /// The RES1 bits: 13, 12, 9 and 7-0.
    pub const RES1: u64 = 0b11_0010_1111_1111;
    /// Trap SVE (and SME's streaming SVE) instructions and registers.
    pub const TZ: u64 = 1 << 8;
    /// Trap FP/SIMD instructions and registers.
    pub const TFP: u64 = 1 << 10;
    /// Trap the trace registers.
    pub const TTA: u64 = 1 << 20;
    /// Trap the activity monitor registers (FEAT_AMUv1; RES0 without it).
    pub const TAM: u64 = 1 << 30;

    /// CPTR_EL2 while a guest runs on a core with `f`: TFP = 0 (FP/SIMD is the guest's), TZ
    /// = 1 (SVE trapped: we do not switch its state; TSM, bit 12, is among the RES1 bits and
    /// traps SME), TTA = 1 (trace trapped), and where the core has activity monitors TAM =
    /// 1: the ID registers hide them, so their registers are UNDEFINED for the guest.
    pub const fn guest(f: &super::Features) -> u64 {
        let v = RES1 | TZ | TTA;
        if f.amu() { v | TAM } else { v }
    }
}

/// MDCR_EL2, the Monitor Debug Configuration Register (Arm ARM, MDCR_EL2).
pub mod mdcr {
    /// HPMN [4:0]: how many PMU event counters EL1 and EL0 may use.
    pub const HPMN_MASK: u64 = 0b1_1111;
    /// Trap PMCR_EL0.
    pub const TPMCR: u64 = 1 << 5;
    /// Trap the other Performance Monitors registers.
    pub const TPM: u64 = 1 << 6;
    /// Trap the debug registers other than those TDOSA and TDRA name.
    pub const TDA: u64 = 1 << 9;
    /// Trap the OS lock and power-down registers.
    pub const TDOSA: u64 = 1 << 10;
    /// Trap the debug ROM registers (MDRAR_EL1).
    pub const TDRA: u64 = 1 << 11;
    /// Route debug exceptions to EL2. Never set: a guest's breakpoints, watchpoints and
    /// steps are taken at its own EL1.
    pub const TDE: u64 = 1 << 8;
    /// Trap the statistical profiling registers (FEAT_SPE; RES0 without it).
    pub const TPMS: u64 = 1 << 14;
    /// Trap TRFCR_EL1, the trace filter controls (FEAT_TRF; RES0 without it).
    pub const TTRF: u64 = 1 << 19;

    /// MDCR_EL2 while a guest runs on a core with `f`: TPM and TPMCR trap the PMU (HPMN = 0:
    /// no event counters for the guest); TDOSA traps the OS lock and power-down registers
    /// and TDRA the debug ROM address, always; TDA traps the other debug registers until
    /// the vCPU owns the debug hardware (`owns_debug`, after its first access). Where the
    /// core has them, TPMS traps statistical profiling and TTRF the trace filter controls,
    /// which the ID registers hide. TDE = 0: debug exceptions go to the guest's EL1; E2PB
    /// and E2TB = 0: the profiling and trace buffers' registers trap where they exist.
    pub const fn guest(f: &super::Features, owns_debug: bool) -> u64 {
        let mut v = TDRA | TDOSA | TPM | TPMCR;
        if !owns_debug {
            v |= TDA;
        }
        if f.spe() {
            v |= TPMS;
        }
        if f.trf() {
            v |= TTRF;
        }
        v
    }
}

/// SCTLR_EL1, the EL1 System Control Register (Arm ARM, SCTLR_EL1).
pub mod sctlr_el1 {
    /// Exception exit is context synchronizing (RES1 in Armv8.0).
    pub const EOS: u64 = 1 << 11;
    /// EL0 reads of SCXTNUM_EL0 trap (RES1 in Armv8.0).
    pub const TSCXT: u64 = 1 << 20;
    /// Exception entry is context synchronizing (RES1 in Armv8.0).
    pub const EIS: u64 = 1 << 22;
    /// Set privileged access never: 0 means "set PSTATE.PAN on taking an exception to EL1"
    /// (RES1 in Armv8.0).
    pub const SPAN: u64 = 1 << 23;
    /// No trap of LDM/STM to device memory at EL0, AArch32 (RES1 in Armv8.0).
    pub const NTLSMD: u64 = 1 << 28;
    /// Load/store multiple atomicity and ordering at EL0, AArch32 (RES1 in Armv8.0).
    pub const LSMAOE: u64 = 1 << 29;
    /// The PSTATE.SSBS value on taking an exception to EL1.
    pub const DSSBS: u64 = 1 << 44;
    /// SCTLR_EL1 of a vCPU that starts: MMU, caches and alignment checks off, little-endian,
    /// and the bits that were RES1 in Armv8.0 set, which keeps every later feature's
    /// Armv8.0 behaviour.
    pub const MMU_OFF: u64 = LSMAOE | NTLSMD | SPAN | EIS | TSCXT | EOS;
}

/// PSTATE as SPSR_ELx holds it for an exception from AArch64 state (Arm ARM, SPSR_EL2,
/// and "Process state, PSTATE").
pub mod pstate {
    /// M[3:0]: the Exception level and stack pointer.
    pub const M: u64 = 0b1111;
    /// M[3:0] of EL0 (always SP_EL0).
    pub const EL0T: u64 = 0b0000;
    /// M[3:0] of EL1 with SP_EL0 (EL1t).
    pub const EL1T: u64 = 0b0100;
    /// M[3:0] of EL1 with SP_EL1 (EL1h).
    pub const EL1H: u64 = 0b0101;
    /// M[4]: the interrupted state was AArch32.
    pub const NRW: u64 = 1 << 4;
    /// D, A, I, F: debug, SError, IRQ and FIQ masked.
    pub const DAIF: u64 = 0b1111 << 6;
    /// Speculative store bypass safe (FEAT_SSBS).
    pub const SSBS: u64 = 1 << 12;
    /// Privileged access never (FEAT_PAN).
    pub const PAN: u64 = 1 << 22;
    /// Data independent timing (FEAT_DIT).
    pub const DIT: u64 = 1 << 24;
    /// BTYPE [11:10]: the branch type of the last instruction (FEAT_BTI); 0 after any other.
    pub const BTYPE: u64 = 0b11 << 10;
    /// Software step: 1 while the next instruction is to be stepped (active-not-pending),
    /// 0 once it has been (active-pending: the step exception is taken next).
    pub const SS: u64 = 1 << 21;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_the_architecture_numbers_them() {
        // The value vCPUs have always started with.
        assert_eq!(sctlr_el1::MMU_OFF, 0x30d0_0800);
        assert_eq!(cptr::RES1 | cptr::TZ, 0x33ff);
        assert_eq!(pstate::EL1H | pstate::DAIF, 0x3c5);
    }

    #[test]
    fn guest_controls_set_a_trap_only_where_its_feature_is() {
        let v80 = Features::default();
        // An ARMv8.0 core: the values vCPUs have always run under (MDCR_EL2 with TDA).
        assert_eq!(hcr::guest(&v80), 0x803c_003b);
        assert_eq!(cptr::guest(&v80), 0x10_33ff);
        assert_eq!(mdcr::guest(&v80, false), 0xe60);
        assert_eq!(mdcr::guest(&v80, true), 0xc60, "TDA off once the vCPU owns the debug registers");
        let all = Features::ALL;
        assert_eq!(hcr::guest(&all), 0x803c_003b | hcr::TLOR | hcr::TERR | hcr::API | hcr::APK);
        assert_eq!(hcr::guest(&all) & hcr::FIEN, 0, "fault injection registers trap too");
        assert_eq!(cptr::guest(&all), 0x10_33ff | cptr::TAM);
        assert_eq!(mdcr::guest(&all, false), 0xe60 | mdcr::TPMS | mdcr::TTRF);
        for f in [v80, all] {
            assert_eq!(mdcr::guest(&f, false) & mdcr::TDE, 0, "debug exceptions stay at EL1");
        }
        // One feature at a time: only its own bit.
        let ras = Features { pfr0: 1 << 28, ..v80 };
        assert_eq!(hcr::guest(&ras), hcr::guest(&v80) | hcr::TERR);
        let lor = Features { mmfr1: 1 << 16, ..v80 };
        assert_eq!(hcr::guest(&lor), hcr::guest(&v80) | hcr::TLOR);
        let pauth = Features { isar1: 1 << 4, ..v80 };
        assert_eq!(hcr::guest(&pauth), hcr::guest(&v80) | hcr::API | hcr::APK, "the guest's own keys and instructions");
        let amu = Features { pfr0: 1 << 44, ..v80 };
        assert_eq!(cptr::guest(&amu), cptr::guest(&v80) | cptr::TAM);
        let trf = Features { dfr0: 1 << 40, ..v80 };
        assert_eq!(mdcr::guest(&trf, true), mdcr::guest(&v80, true) | mdcr::TTRF);
        let spe = Features { dfr0: 1 << 32, ..v80 };
        assert_eq!(mdcr::guest(&spe, true), mdcr::guest(&v80, true) | mdcr::TPMS);
    }
}
