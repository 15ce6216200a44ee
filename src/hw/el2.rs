//! EL2's controls over a guest, and the EL1 state a vCPU starts in: the HCR_EL2, CPTR_EL2
//! and MDCR_EL2 bits the hypervisor sets, SCTLR_EL1's bits, and PSTATE as SPSR_ELx holds
//! it. Each module names its register's description in the Arm ARM (DDI 0487).
#![forbid(unsafe_code)]

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
    /// 1: pointer authentication key registers do not trap (FEAT_PAuth).
    pub const APK: u64 = 1 << 40;
    /// 1: pointer authentication instructions do not trap (FEAT_PAuth).
    pub const API: u64 = 1 << 41;
    /// 1: allocation tag access does not trap (FEAT_MTE2).
    pub const ATA: u64 = 1 << 56;
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
}
