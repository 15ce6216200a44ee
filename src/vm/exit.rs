//! Why a guest exited: the syndrome registers of one exit decoded into an [`Exit`], purely
//! (Arm ARM D17.2.37, ESR_EL2). Host-tested with raw syndromes.
#![forbid(unsafe_code)]

use crate::hw::esr::{ESR, ISS_CALL, ISS_DATA_ABORT, ISS_SYSREG, ISS_WFX, ec, is_permission_fault};
use crate::mm::GuestPhysAddr;

/// Vector indices of guest exits (lower EL, AArch64 and AArch32).
pub const VECTOR_LOWER_SYNC: u64 = 8;
pub const VECTOR_LOWER_IRQ: u64 = 9;
pub const VECTOR_LOWER_FIQ: u64 = 10;
pub const VECTOR_LOWER_SERROR: u64 = 11;

/// A data abort on an address stage-2 does not map (or maps read-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataAbort {
    pub ipa: GuestPhysAddr,
    /// The guest's virtual address (FAR_EL2), for an injected abort.
    pub va: u64,
    pub write: bool,
    /// The access as ESR's instruction syndrome describes it (ISV = 1); `None` when the
    /// instruction must be decoded (ISV = 0).
    pub access: Option<Access>,
    /// Data fault status code (ESR ISS[5:0]).
    pub dfsc: u8,
    /// The fault was on the guest's stage-1 table walk (S1PTW), not on the access: the
    /// guest put its page tables outside its RAM, and nothing is emulated.
    pub s1ptw: bool,
    /// A cache maintenance instruction by VA (DC CIVAC, ...) faulted, not a load or store.
    pub cache_maintenance: bool,
}

impl DataAbort {
    /// A stage-2 permission fault's address. HPFAR_EL2 is UNKNOWN for it (HPFAR holds the
    /// IPA for translation, access flag and address size faults, and for any fault on a
    /// stage-1 table walk; KVM translates FAR with AT instead), but a VM whose stage 2 maps
    /// exactly one page read-only, `read_only_page`, knows where such a fault was; the page
    /// offset is FAR's under any granule. Other aborts keep the address HPFAR gave.
    pub fn with_permission_fault_at(self, read_only_page: u64) -> Self {
        if self.s1ptw || !is_permission_fault(self.dfsc) {
            return self;
        }
        Self { ipa: GuestPhysAddr(read_only_page | (self.va & 0xfff)), ..self }
    }
}

/// A load or store of one register, from the syndrome (ISS: SAS, SSE, SRT, SF, AR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// 1, 2, 4 or 8 bytes.
    pub size: u8,
    /// Sign-extend a load (SSE).
    pub sign_extend: bool,
    /// Register number; 31 means xzr/wzr.
    pub reg: u8,
    /// The register is 64 bits wide (SF); a 32-bit load clears the top half.
    pub sixty_four: bool,
    /// Acquire/release semantics.
    pub acquire_release: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Hvc {
        imm: u16,
    },
    /// The PC points at the SMC (it traps before executing): skip it after handling.
    Smc {
        imm: u16,
    },
    /// WFI (`wfe` false) or WFE.
    Wfx {
        wfe: bool,
    },
    /// An MSR/MRS trapped by HCR_EL2 (ESR ISS fields).
    SysReg {
        op0: u8,
        op1: u8,
        crn: u8,
        crm: u8,
        op2: u8,
        reg: u8,
        read: bool,
    },
    DataAbort(DataAbort),
    InstructionAbort {
        ipa: GuestPhysAddr,
        va: u64,
    },
    Irq,
    Fiq,
    SError {
        esr: u64,
    },
    /// A class we do not handle: the guest gets an UNDEFINED exception.
    Other {
        ec: u8,
        iss: u32,
    },
}

fn ipa(far: u64, hpfar: u64) -> GuestPhysAddr {
    // HPFAR_EL2.FIPA [43:4] holds IPA[55:12]; the page offset comes from FAR.
    GuestPhysAddr(((hpfar & 0x0fff_ffff_ffff_fff0) << 8) | (far & 0xfff))
}

/// Decodes one exit. Pure: the caller read the registers once.
pub fn decode(vector: u64, esr: u64, far: u64, hpfar: u64) -> Exit {
    match vector & 0b11 {
        1 => return Exit::Irq,
        2 => return Exit::Fiq,
        3 => return Exit::SError { esr },
        _ => {}
    }
    let class = ESR::EC.read(esr);
    let iss = ESR::ISS.read(esr);
    match class {
        ec::HVC64 => Exit::Hvc { imm: ISS_CALL::IMM16.read(iss) as u16 },
        ec::SMC64 => Exit::Smc { imm: ISS_CALL::IMM16.read(iss) as u16 },
        ec::WFX => Exit::Wfx { wfe: ISS_WFX::WFE.is_set(iss) },
        ec::SYSREG => Exit::SysReg {
            op0: ISS_SYSREG::OP0.read(iss) as u8,
            op2: ISS_SYSREG::OP2.read(iss) as u8,
            op1: ISS_SYSREG::OP1.read(iss) as u8,
            crn: ISS_SYSREG::CRN.read(iss) as u8,
            reg: ISS_SYSREG::RT.read(iss) as u8,
            crm: ISS_SYSREG::CRM.read(iss) as u8,
            read: ISS_SYSREG::DIRECTION.is_set(iss),
        },
        ec::DATA_ABORT_LOWER => {
            let access = ISS_DATA_ABORT::ISV.is_set(iss).then(|| Access {
                size: 1 << ISS_DATA_ABORT::SAS.read(iss),
                sign_extend: ISS_DATA_ABORT::SSE.is_set(iss),
                reg: ISS_DATA_ABORT::SRT.read(iss) as u8,
                sixty_four: ISS_DATA_ABORT::SF.is_set(iss),
                acquire_release: ISS_DATA_ABORT::AR.is_set(iss),
            });
            Exit::DataAbort(DataAbort {
                ipa: ipa(far, hpfar),
                va: far,
                write: ISS_DATA_ABORT::WNR.is_set(iss),
                access,
                dfsc: ISS_DATA_ABORT::DFSC.read(iss) as u8,
                s1ptw: ISS_DATA_ABORT::S1PTW.is_set(iss),
                cache_maintenance: ISS_DATA_ABORT::CM.is_set(iss),
            })
        }
        ec::INSN_ABORT_LOWER => Exit::InstructionAbort { ipa: ipa(far, hpfar), va: far },
        _ => Exit::Other { ec: class as u8, iss: iss as u32 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esr(class: u64, iss: u64) -> u64 {
        crate::hw::esr::syndrome(class, iss)
    }

    #[test]
    fn interrupts_by_vector() {
        assert_eq!(decode(VECTOR_LOWER_IRQ, 0, 0, 0), Exit::Irq);
        assert_eq!(decode(VECTOR_LOWER_FIQ, 0, 0, 0), Exit::Fiq);
        assert_eq!(decode(VECTOR_LOWER_SERROR, 0xbe00_0000, 0, 0), Exit::SError { esr: 0xbe00_0000 });
        assert_eq!(decode(13, 0, 0, 0), Exit::Irq, "AArch32 lower-EL IRQ vector");
    }

    #[test]
    fn calls_and_wfx() {
        assert_eq!(decode(8, esr(0x16, 0x1234), 0, 0), Exit::Hvc { imm: 0x1234 });
        assert_eq!(decode(8, esr(0x17, 0), 0, 0), Exit::Smc { imm: 0 });
        assert_eq!(decode(8, esr(0x01, 0), 0, 0), Exit::Wfx { wfe: false });
        assert_eq!(decode(8, esr(0x01, 1), 0, 0), Exit::Wfx { wfe: true });
    }

    #[test]
    fn sysreg_fields() {
        // MRS x5, ICC_SGI1R_EL1 would be a write; take MSR ICC_SGI1R_EL1, x3:
        // op0=3 op1=0 CRn=12 CRm=11 op2=5, Rt=3, direction 0 (write).
        let op1 = 0;
        let iss = (3 << 20) | (5 << 17) | (op1 << 14) | (12 << 10) | (3 << 5) | (11 << 1);
        assert_eq!(
            decode(8, esr(0x18, iss), 0, 0),
            Exit::SysReg { op0: 3, op1: 0, crn: 12, crm: 11, op2: 5, reg: 3, read: false }
        );
        let read = decode(8, esr(0x18, iss | 1), 0, 0);
        assert!(matches!(read, Exit::SysReg { read: true, .. }));
    }

    #[test]
    fn data_abort_with_syndrome() {
        // ISV, SAS=2 (4 bytes), SSE, SRT=7, SF, WnR, DFSC=translation fault level 3.
        let iss = (1 << 24) | (2 << 22) | (1 << 21) | (7 << 16) | (1 << 15) | (1 << 6) | 0x07;
        let hpfar = 0x0900_0000u64 >> 8;
        match decode(8, esr(0x24, iss), 0xffff_0000_1234_5678, hpfar) {
            Exit::DataAbort(d) => {
                assert_eq!(d.ipa, GuestPhysAddr(0x0900_0678));
                assert!(d.write);
                assert_eq!(d.dfsc, 7);
                assert_eq!(
                    d.access,
                    Some(Access { size: 4, sign_extend: true, reg: 7, sixty_four: true, acquire_release: false })
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cache_maintenance_aborts_are_told_apart() {
        // DC CIVAC of a device address: CM set, WnR set (cache maintenance reports as a
        // write), DFSC translation fault level 3.
        let Exit::DataAbort(d) = decode(8, esr(0x24, (1 << 8) | (1 << 6) | 0x07), 0x0800_0040, 0x0800_0000 >> 8) else {
            panic!()
        };
        assert!(d.cache_maintenance);
        let Exit::DataAbort(d) = decode(8, esr(0x24, (1 << 6) | 0x07), 0x0800_0040, 0x0800_0000 >> 8) else { panic!() };
        assert!(!d.cache_maintenance, "a store");
    }

    #[test]
    fn data_abort_without_syndrome_needs_decoding() {
        match decode(8, esr(0x24, 0x07), 0x8000_0010, 0x8000_0000 >> 8) {
            Exit::DataAbort(d) => {
                assert_eq!(d.access, None);
                assert!(!d.write);
                assert_eq!(d.ipa, GuestPhysAddr(0x8000_0010));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn permission_faults_are_on_the_read_only_page() {
        // A byte store (ISV, SAS=0, WnR) to the UART's DR through a kernel VA; DFSC 0x0f
        // (permission, level 3); HPFAR holds garbage, as it may for a permission fault.
        let store = esr(0x24, (1 << 24) | (1 << 6) | 0x0f);
        let Exit::DataAbort(d) = decode(8, store, 0xffff_7dff_bfe0_0000, 0xdead_0000) else { panic!() };
        assert!(!d.s1ptw);
        assert_eq!(d.with_permission_fault_at(0x0900_0000).ipa, GuestPhysAddr(0x0900_0000));
        let Exit::DataAbort(d) = decode(8, store, 0xffff_0000_0000_0f2c, 0) else { panic!() };
        assert_eq!(d.with_permission_fault_at(0x0900_0000).ipa, GuestPhysAddr(0x0900_0f2c));
        // Translation faults keep HPFAR's address.
        let Exit::DataAbort(d) = decode(8, esr(0x24, (1 << 24) | 0x07), 0x10, 0x0800_0000 >> 8) else { panic!() };
        assert_eq!(d.with_permission_fault_at(0x0900_0000).ipa, GuestPhysAddr(0x0800_0010));
        // A fault on the stage-1 walk (S1PTW): HPFAR is valid and names the table, which
        // is left for the caller to refuse.
        let Exit::DataAbort(d) = decode(8, esr(0x24, (1 << 7) | 0x0f), 0x10, 0x0900_0000 >> 8) else { panic!() };
        assert!(d.s1ptw);
        assert_eq!(d.with_permission_fault_at(0x0900_0000).ipa, GuestPhysAddr(0x0900_0010));
    }

    #[test]
    fn unknown_classes_are_other() {
        assert_eq!(decode(8, esr(0x3f, 5), 0, 0), Exit::Other { ec: 0x3f, iss: 5 });
        assert_eq!(decode(8, 0, 0, 0), Exit::Other { ec: 0, iss: 0 });
        let ia = decode(8, esr(0x20, 0x0f), 0x10, 0x4000_0000 >> 8);
        assert_eq!(ia, Exit::InstructionAbort { ipa: GuestPhysAddr(0x4000_0010), va: 0x10 });
    }
}
