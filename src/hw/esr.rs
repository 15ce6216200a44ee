//! The exception syndrome, ESR_EL2 and ESR_EL1 (Arm ARM D17.2.37, ESR_EL2; ESR_EL1 has the
//! same layout): the exception class, the instruction-length bit, the ISS encodings the
//! hypervisor decodes or injects, and the fault status codes.
#![forbid(unsafe_code)]

use tock_registers::register_bitfields;

register_bitfields! {u64,
    /// ESR_ELx: EC [31:26], IL [25], ISS [24:0].
    pub ESR [
        /// Exception class: one of [`ec`].
        EC OFFSET(26) NUMBITS(6) [],
        /// Instruction length: 1 for a 32-bit instruction.
        IL OFFSET(25) NUMBITS(1) [],
        /// Instruction-specific syndrome; its encoding depends on EC.
        ISS OFFSET(0) NUMBITS(25) []
    ],
    /// ISS for a Data Abort (EC 0x24, 0x25): "ISS encoding for an exception from a Data
    /// Abort".
    pub ISS_DATA_ABORT [
        /// Instruction syndrome valid: SAS, SSE, SRT, SF and AR hold the access.
        ISV OFFSET(24) NUMBITS(1) [],
        /// Syndrome access size: log2 of the access's bytes.
        SAS OFFSET(22) NUMBITS(2) [],
        /// Syndrome sign extend: the load sign-extends.
        SSE OFFSET(21) NUMBITS(1) [],
        /// Syndrome register transfer: the register number (31: xzr/wzr).
        SRT OFFSET(16) NUMBITS(5) [],
        /// Sixty-four: the register is 64 bits wide.
        SF OFFSET(15) NUMBITS(1) [],
        /// Acquire/release semantics.
        AR OFFSET(14) NUMBITS(1) [],
        /// Cache maintenance: the abort came from a cache maintenance or address
        /// translation instruction (DC, IC, AT), not a load or store.
        CM OFFSET(8) NUMBITS(1) [],
        /// The fault was on a stage-2 translation of a stage-1 table walk.
        S1PTW OFFSET(7) NUMBITS(1) [],
        /// Write not read.
        WNR OFFSET(6) NUMBITS(1) [],
        /// Data fault status code: one of [`fsc`].
        DFSC OFFSET(0) NUMBITS(6) []
    ],
    /// ISS for a trapped MSR, MRS or System instruction (EC 0x18): "ISS encoding for an
    /// exception from MSR, MRS, or System instruction execution in AArch64 state".
    pub ISS_SYSREG [
        OP0 OFFSET(20) NUMBITS(2) [],
        OP2 OFFSET(17) NUMBITS(3) [],
        OP1 OFFSET(14) NUMBITS(3) [],
        CRN OFFSET(10) NUMBITS(4) [],
        /// The general register transferred.
        RT OFFSET(5) NUMBITS(5) [],
        CRM OFFSET(1) NUMBITS(4) [],
        /// 1: a read (MRS), 0: a write (MSR).
        DIRECTION OFFSET(0) NUMBITS(1) []
    ],
    /// ISS for a trapped WFI or WFE (EC 0x01): "ISS encoding for an exception from a WF*
    /// instruction".
    pub ISS_WFX [
        /// TI[0]: 1 for WFE (and WFET), 0 for WFI (and WFIT).
        WFE OFFSET(0) NUMBITS(1) []
    ],
    /// ISS for HVC and SMC (EC 0x16, 0x17): "ISS encoding for an exception from HVC or SVC
    /// instruction execution", "... from SMC instruction execution in AArch64 state".
    pub ISS_CALL [
        /// The instruction's immediate.
        IMM16 OFFSET(0) NUMBITS(16) []
    ]
}

/// Exception classes (ESR_ELx.EC) the hypervisor acts on or injects.
pub mod ec {
    /// Unknown reason: what an UNDEFINED instruction raises.
    pub const UNKNOWN: u64 = 0x00;
    /// A trapped WFI or WFE.
    pub const WFX: u64 = 0x01;
    /// HVC in AArch64 state.
    pub const HVC64: u64 = 0x16;
    /// A trapped SMC in AArch64 state.
    pub const SMC64: u64 = 0x17;
    /// A trapped MSR, MRS or System instruction in AArch64 state.
    pub const SYSREG: u64 = 0x18;
    /// Instruction Abort from a lower Exception level.
    pub const INSN_ABORT_LOWER: u64 = 0x20;
    /// Instruction Abort without a change of Exception level.
    pub const INSN_ABORT_SAME_EL: u64 = 0x21;
    /// Data Abort from a lower Exception level.
    pub const DATA_ABORT_LOWER: u64 = 0x24;
    /// Data Abort without a change of Exception level.
    pub const DATA_ABORT_SAME_EL: u64 = 0x25;
}

/// Fault status codes (DFSC and IFSC, ISS[5:0] of an abort).
pub mod fsc {
    /// Synchronous External abort, not on a translation table walk or hardware update of
    /// translation table.
    pub const SEA: u64 = 0b01_0000;
    /// Permission fault, at the level in bits [1:0].
    pub const PERMISSION: u64 = 0b00_1100;
    /// The fault type, bits [5:2], without the level bits of translation, access flag and
    /// permission faults.
    pub const TYPE_MASK: u64 = 0b11_1100;
}

/// Whether a data or instruction fault status code is a permission fault (any level).
pub fn is_permission_fault(code: u8) -> bool {
    u64::from(code) & fsc::TYPE_MASK == fsc::PERMISSION
}

/// The ESR of an exception the hypervisor injects: class `class`, IL = 1 (a 32-bit
/// instruction), syndrome `iss`.
pub const fn syndrome(class: u64, iss: u64) -> u64 {
    ESR::EC.val(class).value | ESR::IL::SET.value | ESR::ISS.val(iss).value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(ESR::EC.read(0xffff_ffff), 0x3f);
        assert_eq!(ESR::EC.read(0x9600_0050), ec::DATA_ABORT_SAME_EL);
        assert_eq!(ESR::ISS.read(0x9600_0050), 0x50);
        assert_eq!(ESR::IL::SET.value, 1 << 25);
        assert_eq!(syndrome(ec::DATA_ABORT_SAME_EL, ISS_DATA_ABORT::WNR::SET.value | fsc::SEA), 0x9600_0050);
        assert_eq!(syndrome(ec::UNKNOWN, 0), 0x0200_0000);
    }

    #[test]
    fn permission_faults() {
        // DFSC 0b0011LL: permission fault at level LL; translation (0b0001LL) and access flag
        // (0b0010LL) faults are not.
        assert!((0x0c..=0x0f).all(is_permission_fault));
        assert!(!(0x00..0x0c).chain(0x10..0x40).any(is_permission_fault));
    }
}
