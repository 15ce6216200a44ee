//! The GICv3 (GIC architecture specification, IHI 0069): the distributor and redistributor
//! register blocks and their fields, the EL2 virtual interface's list registers and
//! controls (ICH_*_EL2), ICC_SGI1R_EL1 and the special INTIDs. The physical driver
//! (`arch::aarch64::gic`, `arch::aarch64::vgic`) and the vGIC model (`vgic`) both use them.
#![forbid(unsafe_code)]

use super::el2::mpidr::AFF0 as MPIDR_AFF0;
use core::mem::{offset_of, size_of};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// GICD_CTLR (IHI 0069 12.9, GICD_CTLR), the layout with one security state (DS = 1), whose
    /// EnableGrp1 and ARE are also where the Non-secure view has EnableGrp1A and ARE_NS.
    pub GICD_CTLR [
        ENABLE_GRP0 OFFSET(0) NUMBITS(1) [],
        ENABLE_GRP1 OFFSET(1) NUMBITS(1) [],
        /// Affinity routing enabled.
        ARE OFFSET(4) NUMBITS(1) [],
        /// Disable security: one security state.
        DS OFFSET(6) NUMBITS(1) [],
        /// Register write pending.
        RWP OFFSET(31) NUMBITS(1) []
    ],
    /// GICD_TYPER (IHI 0069 12.9, GICD_TYPER).
    pub GICD_TYPER [
        /// N: the distributor implements INTIDs up to 32 * (N + 1) - 1.
        IT_LINES_NUMBER OFFSET(0) NUMBITS(5) [],
        /// INTID bits - 1.
        ID_BITS OFFSET(19) NUMBITS(5) []
    ],
    /// GICR_WAKER (IHI 0069, GICR_WAKER).
    pub GICR_WAKER [
        PROCESSOR_SLEEP OFFSET(1) NUMBITS(1) [],
        CHILDREN_ASLEEP OFFSET(2) NUMBITS(1) []
    ],
    /// GICD_PIDR2 and GICR_PIDR2 (IHI 0069, GICD_PIDR2 and GICR_PIDR2).
    pub PIDR2 [
        ARCH_REV OFFSET(4) NUMBITS(4) [
            GICV3 = 3,
            GICV4 = 4
        ]
    ]
}

register_bitfields! {u64,
    /// GICR_TYPER (IHI 0069, GICR_TYPER).
    pub GICR_TYPER [
        /// The redistributor has the GICv4 VLPI frames (two more 64 KiB frames).
        VLPIS OFFSET(1) NUMBITS(1) [],
        /// The last redistributor of its region.
        LAST OFFSET(4) NUMBITS(1) [],
        PROCESSOR_NUMBER OFFSET(8) NUMBITS(16) [],
        /// Aff3.Aff2.Aff1.Aff0 of the PE ([`typer_affinity`]).
        AFFINITY OFFSET(32) NUMBITS(32) []
    ],
    /// GICD_IROUTER<n> (IHI 0069 12.9, GICD_IROUTER<n>).
    pub GICD_IROUTER [
        /// Aff2.Aff1.Aff0 [23:0], as in MPIDR.
        AFF210 OFFSET(0) NUMBITS(24) [],
        /// Interrupt routing mode 1: any PE that participates.
        IRM OFFSET(31) NUMBITS(1) [],
        /// Aff3 [39:32], as in MPIDR.
        AFF3 OFFSET(32) NUMBITS(8) []
    ],
    /// ICH_LR<n>_EL2, a list register (IHI 0069 12.4.6).
    pub ICH_LR [
        /// The virtual INTID the guest sees.
        VINTID OFFSET(0) NUMBITS(32) [],
        /// With HW = 1: the physical INTID the guest's deactivation also deactivates.
        PINTID OFFSET(32) NUMBITS(13) [],
        /// With HW = 0, bit 41 of pINTID is EOI: a maintenance interrupt when the guest
        /// deactivates the interrupt.
        EOI OFFSET(41) NUMBITS(1) [],
        PRIORITY OFFSET(48) NUMBITS(8) [],
        /// 1: Group 1.
        GROUP OFFSET(60) NUMBITS(1) [],
        /// 1: the virtual interrupt is tied to a physical one (pINTID).
        HW OFFSET(61) NUMBITS(1) [],
        STATE OFFSET(62) NUMBITS(2) [
            Invalid = 0,
            Pending = 1,
            Active = 2,
            PendingAndActive = 3
        ]
    ],
    /// ICH_HCR_EL2 (IHI 0069 12.4, ICH_HCR_EL2).
    pub ICH_HCR [
        /// The virtual CPU interface is enabled.
        EN OFFSET(0) NUMBITS(1) [],
        /// Underflow interrupt enable: a maintenance interrupt while at most one list
        /// register holds an interrupt.
        UIE OFFSET(1) NUMBITS(1) []
    ],
    /// ICH_VTR_EL2 (IHI 0069 12.4, ICH_VTR_EL2).
    pub ICH_VTR [
        /// The number of list registers, minus one.
        LIST_REGS OFFSET(0) NUMBITS(5) []
    ],
    /// ICC_SGI1R_EL1 (IHI 0069 12.11.9); encode and decode it through [`Sgi1r`].
    pub ICC_SGI1R [
        /// Bit n: the PE whose Aff0 is 16 * RS + n.
        TARGET_LIST OFFSET(0) NUMBITS(16) [],
        AFF1 OFFSET(16) NUMBITS(8) [],
        INTID OFFSET(24) NUMBITS(4) [],
        AFF2 OFFSET(32) NUMBITS(8) [],
        /// Interrupt routing mode 1: every PE but the one writing.
        IRM OFFSET(40) NUMBITS(1) [],
        /// Range selector: which 16 Aff0 values the target list covers.
        RS OFFSET(44) NUMBITS(4) [],
        AFF3 OFFSET(48) NUMBITS(8) []
    ]
}

/// GICD_IPRIORITYR<n>: 255 registers, a byte per INTID below 1020 (IHI 0069 12.9,
/// GICD_IPRIORITYR<n>).
pub const GICD_IPRIORITYR_COUNT: usize = 255;
/// GICD_IROUTER<n>: one per SPI, INTIDs 32-1019 (IHI 0069 12.9, GICD_IROUTER<n>).
pub const GICD_IROUTER_COUNT: usize = 988;

register_structs! {
    /// GICv3 distributor (GICD_*), 64 KiB (IHI 0069 12.9, the distributor register map).
    pub Distributor {
        (0x0000 => pub ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        (0x0004 => pub typer: ReadOnly<u32, GICD_TYPER::Register>),
        (0x0008 => pub iidr: ReadOnly<u32>),
        (0x000c => _reserved0),
        (0x0080 => pub igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => pub isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => pub icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => pub ispendr: [ReadWrite<u32>; 32]),
        (0x0280 => pub icpendr: [ReadWrite<u32>; 32]),
        (0x0300 => pub isactiver: [ReadWrite<u32>; 32]),
        (0x0380 => pub icactiver: [ReadWrite<u32>; 32]),
        (0x0400 => pub ipriorityr: [ReadWrite<u32>; GICD_IPRIORITYR_COUNT]),
        (0x07fc => _reserved1),
        (0x0c00 => pub icfgr: [ReadWrite<u32>; 64]),
        (0x0d00 => pub igrpmodr: [ReadWrite<u32>; 32]),
        (0x0d80 => _reserved2),
        (0x6100 => pub irouter: [ReadWrite<u64>; GICD_IROUTER_COUNT]),
        (0x7fe0 => _reserved3),
        (0xffe8 => pub pidr2: ReadOnly<u32, PIDR2::Register>),
        (0xffec => _reserved4),
        (0x10000 => @END),
    }
}

register_structs! {
    /// One GICv3 redistributor: the RD_base frame and the SGI_base frame, 128 KiB (IHI 0069
    /// 12.10, the redistributor register map).
    pub Redistributor {
        (0x0_0000 => pub ctlr: ReadWrite<u32>),
        (0x0_0004 => pub iidr: ReadOnly<u32>),
        (0x0_0008 => pub typer: ReadOnly<u64, GICR_TYPER::Register>),
        (0x0_0010 => pub statusr: ReadWrite<u32>),
        (0x0_0014 => pub waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x0_0018 => _reserved0),
        (0x0_ffe8 => pub pidr2: ReadOnly<u32, PIDR2::Register>),
        (0x0_ffec => _reserved1),
        (0x1_0080 => pub igroupr0: ReadWrite<u32>),
        (0x1_0084 => _reserved2),
        (0x1_0100 => pub isenabler0: ReadWrite<u32>),
        (0x1_0104 => _reserved3),
        (0x1_0180 => pub icenabler0: ReadWrite<u32>),
        (0x1_0184 => _reserved4),
        (0x1_0200 => pub ispendr0: ReadWrite<u32>),
        (0x1_0204 => _reserved5),
        (0x1_0280 => pub icpendr0: ReadWrite<u32>),
        (0x1_0284 => _reserved6),
        (0x1_0300 => pub isactiver0: ReadWrite<u32>),
        (0x1_0304 => _reserved7),
        (0x1_0380 => pub icactiver0: ReadWrite<u32>),
        (0x1_0384 => _reserved8),
        (0x1_0400 => pub ipriorityr: [ReadWrite<u32>; 8]),
        (0x1_0420 => _reserved9),
        (0x1_0c00 => pub icfgr: [ReadWrite<u32>; 2]),
        (0x1_0c08 => _reserved10),
        (0x1_0d00 => pub igrpmodr0: ReadWrite<u32>),
        (0x1_0d04 => _reserved11),
        (0x2_0000 => @END),
    }
}

/// The distributor's frame: 64 KiB.
pub const GICD_SIZE: u64 = size_of::<Distributor>() as u64;
/// A redistributor's RD_base and SGI_base frames: 128 KiB.
pub const GICR_SIZE: u64 = size_of::<Redistributor>() as u64;
/// A redistributor with GICR_TYPER.VLPIS has two more frames (VLPI_base and a reserved
/// one): 256 KiB.
pub const GICR_SIZE_VLPIS: u64 = 2 * GICR_SIZE;
/// The SGI_base frame, 64 KiB into a redistributor.
pub const GICR_SGI_BASE: usize = 0x1_0000;

// The SGI_base frame holds the private interrupts' registers at the offsets the distributor
// has for the same INTIDs (IHI 0069 12.10, the SGI_base frame), so one decode serves both.
const _: () = {
    let sgi = GICR_SGI_BASE;
    assert!(offset_of!(Redistributor, igroupr0) == sgi + offset_of!(Distributor, igroupr));
    assert!(offset_of!(Redistributor, isenabler0) == sgi + offset_of!(Distributor, isenabler));
    assert!(offset_of!(Redistributor, icenabler0) == sgi + offset_of!(Distributor, icenabler));
    assert!(offset_of!(Redistributor, ispendr0) == sgi + offset_of!(Distributor, ispendr));
    assert!(offset_of!(Redistributor, icpendr0) == sgi + offset_of!(Distributor, icpendr));
    assert!(offset_of!(Redistributor, isactiver0) == sgi + offset_of!(Distributor, isactiver));
    assert!(offset_of!(Redistributor, icactiver0) == sgi + offset_of!(Distributor, icactiver));
    assert!(offset_of!(Redistributor, ipriorityr) == sgi + offset_of!(Distributor, ipriorityr));
    assert!(offset_of!(Redistributor, icfgr) == sgi + offset_of!(Distributor, icfgr));
    assert!(offset_of!(Redistributor, igrpmodr0) == sgi + offset_of!(Distributor, igrpmodr));
    assert!(offset_of!(Redistributor, pidr2) == offset_of!(Distributor, pidr2));
};

/// GICD_IIDR and GICR_IIDR.Implementer [11:0] of Arm: JEP106 identity code 0x3b with
/// continuation code 0x4 (IHI 0069, GICD_IIDR).
pub const IIDR_ARM: u32 = 0x43b;

/// GICD_ICFGR<n> and GICR_ICFGR<n>: two bits per INTID, of which bit 1 (Int_config[1]) set
/// means edge-triggered (IHI 0069, GICD_ICFGR<n>).
pub const ICFGR_EDGE: u32 = 0b10;

/// The INTID ranges, the same on both versions (IHI 0069 2.2, INTIDs).
pub use super::gic::{INTID_SPECIAL_FIRST, INTID_SPURIOUS, SPI_FIRST};

/// Most list registers there can be: ICH_LR0_EL2 to ICH_LR15_EL2 (IHI 0069 12.4.6).
pub const MAX_LRS: usize = 16;

/// An MPIDR's affinity as GICR_TYPER.Affinity holds it: Aff3.Aff2.Aff1.Aff0, 8 bits each
/// (MPIDR has Aff3 at [39:32], above bit 31).
pub const fn typer_affinity(mpidr: u64) -> u64 {
    ((mpidr >> 8) & 0xff00_0000) | (mpidr & 0xff_ffff)
}

/// MPIDR's Aff3.Aff2.Aff1, above Aff0.
const MPIDR_AFF321: u64 = super::el2::mpidr::AFFINITY & !MPIDR_AFF0;

/// A write to ICC_SGI1R_EL1 (IHI 0069 12.11.9): which SGI, and which PEs it goes to. One
/// encoding for the physical driver's `send_sgi`, one decoding for the vGIC's trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sgi1r {
    /// The SGI, 0-15.
    pub intid: u32,
    pub targets: SgiTargets,
}

/// The PEs an [`Sgi1r`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SgiTargets {
    /// IRM = 1: every PE but the one that writes the register.
    Others,
    /// IRM = 0: the PEs whose affinity is `aff321` (Aff3.Aff2.Aff1 in MPIDR's layout, Aff0
    /// zero) with Aff0 = 16 * `range` + n, for each bit n set in `list`.
    List { aff321: u64, range: u8, list: u16 },
}

impl Sgi1r {
    /// SGI `intid` for the one PE with MPIDR affinity `mpidr`.
    pub const fn to(intid: u32, mpidr: u64) -> Self {
        let aff0 = mpidr & MPIDR_AFF0;
        let targets =
            SgiTargets::List { aff321: mpidr & MPIDR_AFF321, range: (aff0 / 16) as u8, list: 1 << (aff0 % 16) };
        Self { intid, targets }
    }

    /// The register value.
    pub const fn encode(self) -> u64 {
        let intid = ICC_SGI1R::INTID.val(self.intid as u64).value;
        match self.targets {
            SgiTargets::Others => intid | ICC_SGI1R::IRM::SET.value,
            SgiTargets::List { aff321, range, list } => {
                intid
                    | ICC_SGI1R::TARGET_LIST.val(list as u64).value
                    | ICC_SGI1R::AFF1.val(aff321 >> 8).value
                    | ICC_SGI1R::AFF2.val(aff321 >> 16).value
                    | ICC_SGI1R::AFF3.val(aff321 >> 32).value
                    | ICC_SGI1R::RS.val(range as u64).value
            }
        }
    }

    /// A value written to the register. With IRM set, the other fields name nobody.
    pub fn decode(value: u64) -> Self {
        let intid = ICC_SGI1R::INTID.read(value) as u32;
        if ICC_SGI1R::IRM.is_set(value) {
            return Self { intid, targets: SgiTargets::Others };
        }
        let aff321 = (ICC_SGI1R::AFF3.read(value) << 32)
            | (ICC_SGI1R::AFF2.read(value) << 16)
            | (ICC_SGI1R::AFF1.read(value) << 8);
        let range = ICC_SGI1R::RS.read(value) as u8;
        let list = ICC_SGI1R::TARGET_LIST.read(value) as u16;
        Self { intid, targets: SgiTargets::List { aff321, range, list } }
    }

    /// Whether the PE with MPIDR affinity `mpidr` takes the SGI; `sender`: it is the PE
    /// that wrote the register.
    pub fn reaches(self, mpidr: u64, sender: bool) -> bool {
        match self.targets {
            SgiTargets::Others => !sender,
            SgiTargets::List { aff321, range, list } => {
                let aff0 = mpidr & MPIDR_AFF0;
                (mpidr & !MPIDR_AFF0) == aff321 && aff0 / 16 == range as u64 && list & (1 << (aff0 % 16)) != 0
            }
        }
    }
}

pub use super::gic::{Lr, PRIORITY_MASK};

/// `lr` as ICH_LR<n>_EL2 holds it (IHI 0069 12.4.6; the fields are [`ICH_LR`]): HW = 1 and
/// pINTID for a linked interrupt, else HW = 0 and the EOI bit. A GICv3 list register has no
/// source CPU: [`Lr::source`] is not encoded.
pub fn encode_lr(lr: Lr) -> u64 {
    let link = match lr.pintid() {
        Some(p) => ICH_LR::HW::SET + ICH_LR::PINTID.val(p as u64),
        None => ICH_LR::EOI.val(lr.eoi_exit() as u64),
    };
    (ICH_LR::STATE.val(lr.state())
        + ICH_LR::GROUP.val(lr.group1() as u64)
        + link
        + ICH_LR::PRIORITY.val(lr.priority() as u64)
        + ICH_LR::VINTID.val(lr.intid() as u64))
    .value
}

/// An ICH_LR<n>_EL2 value read back after an exit.
pub fn decode_lr(v: u64) -> Lr {
    let lr = Lr::new(ICH_LR::VINTID.read(v) as u32, ICH_LR::PRIORITY.read(v) as u8, ICH_LR::STATE.read(v))
        .with_group1(ICH_LR::GROUP.is_set(v));
    if ICH_LR::HW.is_set(v) {
        lr.with_hw(ICH_LR::PINTID.read(v) as u32)
    } else if ICH_LR::EOI.is_set(v) {
        lr.with_eoi_exit()
    } else {
        lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_blocks_have_the_architected_sizes() {
        assert_eq!(GICD_SIZE, 0x1_0000);
        assert_eq!(GICR_SIZE, 0x2_0000);
        assert_eq!(offset_of!(Distributor, irouter) + 8 * GICD_IROUTER_COUNT, 0x7fe0);
        assert_eq!(PIDR2::ARCH_REV::GICV3.value, 0x30);
        assert_eq!(typer_affinity(0x12_0034_5678), 0x1234_5678);
    }

    #[test]
    fn sgi1r_encoding() {
        // SGI 8 to MPIDR Aff3 0x12, Aff2 0x34, Aff1 0x56, Aff0 0x27: RS 2, target bit 7.
        let value = Sgi1r::to(8, 0x12_0034_5627).encode();
        assert_eq!(value, (0x12 << 48) | (2 << 44) | (0x34 << 32) | (8 << 24) | (0x56 << 16) | (1 << 7));
        assert_eq!(Sgi1r { intid: 3, targets: SgiTargets::Others }.encode(), (1 << 40) | (3 << 24));
    }

    #[test]
    fn sgi1r_round_trip() {
        let mpidrs = [0u64, 1, 15, 16, 0x27, 0xff, 0x100, 0x1_0000, 0x12_0034_5627, 0xff_00ff_ffff];
        for &mpidr in &mpidrs {
            for intid in 0..16 {
                let sgi = Sgi1r::to(intid, mpidr);
                assert_eq!(Sgi1r::decode(sgi.encode()), sgi, "SGI {intid} to {mpidr:#x}");
                for &other in &mpidrs {
                    assert_eq!(sgi.reaches(other, false), other == mpidr, "SGI to {mpidr:#x} reaches {other:#x}?");
                }
            }
        }
        let others = Sgi1r { intid: 15, targets: SgiTargets::Others };
        assert_eq!(Sgi1r::decode(others.encode()), others);
        // IRM ignores the target fields.
        assert_eq!(Sgi1r::decode(others.encode() | 0xffff | (0xff << 16)), others);
        assert!(others.reaches(5, false) && !others.reaches(5, true));
        // Every field with IRM clear comes back; the RES0 bits are not read.
        let all_but_irm = !ICC_SGI1R::IRM::SET.value;
        assert_eq!(Sgi1r::decode(all_but_irm).encode(), all_but_irm & !RES0);
    }

    #[test]
    fn list_register_round_trip() {
        let lr = Lr::new(40, 0xa7, Lr::STATE_PENDING | Lr::STATE_ACTIVE).with_eoi_exit();
        let v = encode_lr(lr);
        // State [63:62], Group [60], priority [55:48] (top 5 bits), EOI [41], vINTID.
        assert_eq!(v, (3 << 62) | (1 << 60) | (0xa0 << 48) | (1 << 41) | 40);
        assert_eq!(decode_lr(v), lr);
        let group0 = Lr::new(27, 0, Lr::STATE_PENDING).with_group1(false);
        assert_eq!(decode_lr(encode_lr(group0)), group0);
        // No source field: a GICv2 sender does not survive, and is not invented.
        assert_eq!(decode_lr(encode_lr(Lr::new(3, 0, 1).with_source(5))).source(), 0);
        // A linked interrupt: HW [61] and pINTID [44:32] instead of EOI.
        let timer = Lr::new(27, 0xa0, Lr::STATE_PENDING).with_eoi_exit().with_hw(27);
        let v = encode_lr(timer);
        assert_eq!(v, (1 << 62) | (1 << 61) | (1 << 60) | (0xa0 << 48) | (27 << 32) | 27);
        assert_eq!(decode_lr(v), timer);
        assert!(!decode_lr(v).eoi_exit() && decode_lr(v).pintid() == Some(27));
    }

    /// The bits of ICC_SGI1R_EL1 no field holds: RES0 [63:56], [43:41] and [31:28].
    const RES0: u64 = (0xff << 56) | (0b111 << 41) | (0xf << 28);
}
