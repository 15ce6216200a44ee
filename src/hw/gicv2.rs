//! The GICv2 (GIC architecture specification v1 and v2, IHI 0048B; the GIC-400, DDI 0471):
//! the memory-mapped distributor (GICD), CPU interface (GICC), virtual interface control
//! (GICH) and virtual CPU interface (GICV), GICD_SGIR, the GICv2 list register and the
//! GICC_IIDR check. The physical GICv2 driver and the vGICv2 model both use them; the INTID
//! ranges are the GICv3's (re-exported from [`super::gicv3`]).
#![forbid(unsafe_code)]

use core::mem::{offset_of, size_of};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

/// The INTID ranges and special INTIDs are the same in GICv2 (IHI 0048B 2.2.1, interrupt IDs:
/// SGIs 0-15, PPIs 16-31, SPIs 32-1019, 1020-1023 special), and so are the 255 priority
/// registers and the edge bit of GICD_ICFGR (IHI 0048B 4.3.13).
pub use super::gicv3::{GICD_IPRIORITYR_COUNT, ICFGR_EDGE, INTID_SPECIAL_FIRST, INTID_SPURIOUS, SPI_FIRST};

register_bitfields! {u32,
    /// GICD_CTLR (IHI 0048B 4.3.1) with one security state, or its Secure copy. The Non-secure
    /// copy of a GIC with the Security Extensions has only bit 0, which enables Group 1.
    pub GICD_CTLR [
        /// Forward Group 0 interrupts to the CPU interfaces ("Enable" without grouping).
        ENABLE_GRP0 OFFSET(0) NUMBITS(1) [],
        ENABLE_GRP1 OFFSET(1) NUMBITS(1) []
    ],
    /// GICD_TYPER (IHI 0048B 4.3.2).
    pub GICD_TYPER [
        /// N: the distributor implements INTIDs up to 32 * (N + 1) - 1.
        IT_LINES_NUMBER OFFSET(0) NUMBITS(5) [],
        /// The number of CPU interfaces, minus one.
        CPU_NUMBER OFFSET(5) NUMBITS(3) [],
        /// The GIC implements the Security Extensions.
        SECURITY_EXTN OFFSET(10) NUMBITS(1) [],
        /// Lockable SPIs (with the Security Extensions).
        LSPI OFFSET(11) NUMBITS(5) []
    ],
    /// GICD_IIDR (IHI 0048B 4.3.3). Not GICC_IIDR's layout: see [`GICC_IIDR`].
    pub GICD_IIDR [
        /// JEP106 code of the implementer: 0x43b for Arm.
        IMPLEMENTER OFFSET(0) NUMBITS(12) [],
        REVISION OFFSET(12) NUMBITS(4) [],
        VARIANT OFFSET(16) NUMBITS(4) [],
        PRODUCT_ID OFFSET(24) NUMBITS(8) []
    ],
    /// GICD_SGIR (IHI 0048B 4.3.15); encode and decode it through [`Sgir`].
    pub GICD_SGIR [
        /// The SGI, 0-15.
        SGIINTID OFFSET(0) NUMBITS(4) [],
        /// With the Security Extensions, from Secure software only: forward the SGI only if
        /// it is Group 1 on the target. Otherwise ignored.
        NSATT OFFSET(15) NUMBITS(1) [],
        /// Bit n: CPU interface n, when TargetListFilter is 0.
        CPU_TARGET_LIST OFFSET(16) NUMBITS(8) [],
        /// 0b11 is reserved.
        TARGET_LIST_FILTER OFFSET(24) NUMBITS(2) [
            TargetList = 0,
            AllButSelf = 1,
            SelfOnly = 2
        ]
    ],
    /// GICD_ICPIDR2 (IHI 0048B 4.3, the identification registers): at 0xfe8, as in GICv3.
    pub PIDR2 [
        ARCH_REV OFFSET(4) NUMBITS(4) [
            GICV1 = 1,
            GICV2 = 2
        ]
    ],
    /// GICC_CTLR (IHI 0048B 4.4.1) with one security state, or its Secure copy. For the
    /// Non-secure copy of a GIC with the Security Extensions see [`GICC_CTLR_NS`].
    pub GICC_CTLR [
        ENABLE_GRP0 OFFSET(0) NUMBITS(1) [],
        ENABLE_GRP1 OFFSET(1) NUMBITS(1) [],
        /// A Group 0 acknowledge may return a Group 1 interrupt.
        ACK_CTL OFFSET(2) NUMBITS(1) [],
        /// Signal Group 0 interrupts as FIQ.
        FIQ_EN OFFSET(3) NUMBITS(1) [],
        /// GICC_BPR controls both groups.
        CBPR OFFSET(4) NUMBITS(1) [],
        /// The four bypass-disable bits (5-8): keep the legacy IRQ/FIQ signals from
        /// reaching the processor while the interface is disabled.
        FIQ_BYP_DIS_GRP0 OFFSET(5) NUMBITS(1) [],
        IRQ_BYP_DIS_GRP0 OFFSET(6) NUMBITS(1) [],
        FIQ_BYP_DIS_GRP1 OFFSET(7) NUMBITS(1) [],
        IRQ_BYP_DIS_GRP1 OFFSET(8) NUMBITS(1) [],
        /// 1: a write to GICC_EOIR only drops priority; GICC_DIR deactivates. 0: EOIR does both.
        EOI_MODE_S OFFSET(9) NUMBITS(1) [],
        EOI_MODE_NS OFFSET(10) NUMBITS(1) []
    ],
    /// GICC_CTLR as Non-secure software sees it on a GIC with the Security Extensions
    /// (IHI 0048B 4.4.1).
    pub GICC_CTLR_NS [
        ENABLE_GRP1 OFFSET(0) NUMBITS(1) [],
        FIQ_BYP_DIS_GRP1 OFFSET(5) NUMBITS(1) [],
        IRQ_BYP_DIS_GRP1 OFFSET(6) NUMBITS(1) [],
        EOI_MODE_NS OFFSET(9) NUMBITS(1) []
    ],
    /// GICC_PMR and GICC_RPR (IHI 0048B 4.4.2 and 4.4.6): a priority, lower is more urgent.
    pub GICC_PMR [
        PRIORITY OFFSET(0) NUMBITS(8) []
    ],
    /// GICC_BPR and GICC_ABPR (IHI 0048B 4.4.3 and 4.4.8).
    pub GICC_BPR [
        BINARY_POINT OFFSET(0) NUMBITS(3) []
    ],
    /// GICC_IAR (IHI 0048B 4.4.4), and the same layout in GICC_EOIR, GICC_HPPIR, GICC_AIAR,
    /// GICC_AEOIR, GICC_AHPPIR and GICC_DIR (4.4.5, 4.4.7, 4.4.9-4.4.11, 4.4.15).
    pub GICC_IAR [
        INTERRUPT_ID OFFSET(0) NUMBITS(10) [],
        /// For an SGI: the CPU interface that requested it. Zero otherwise. A write to
        /// GICC_EOIR or GICC_DIR hands back the value the acknowledge returned.
        CPUID OFFSET(10) NUMBITS(3) []
    ],
    /// GICC_IIDR and GICV_IIDR (IHI 0048B 4.4.14). The GIC-400 reads 0x0202_143b.
    pub GICC_IIDR [
        /// JEP106 code of the implementer: 0x43b for Arm.
        IMPLEMENTER OFFSET(0) NUMBITS(12) [],
        REVISION OFFSET(12) NUMBITS(4) [],
        /// 1: GICv1, 2: GICv2.
        ARCH_VERSION OFFSET(16) NUMBITS(4) [],
        PRODUCT_ID OFFSET(20) NUMBITS(12) []
    ],
    /// GICH_HCR (IHI 0048B 5.3, GICH_HCR).
    pub GICH_HCR [
        /// The virtual CPU interface is enabled.
        EN OFFSET(0) NUMBITS(1) [],
        /// Underflow interrupt enable: a maintenance interrupt while at most one list
        /// register holds an interrupt.
        UIE OFFSET(1) NUMBITS(1) [],
        /// List register entry not present: a maintenance interrupt while EOICount is not 0.
        LRENPIE OFFSET(2) NUMBITS(1) [],
        /// No pending: a maintenance interrupt while no list register holds a pending one.
        NPIE OFFSET(3) NUMBITS(1) [],
        /// Maintenance interrupts when the guest enables or disables a virtual group.
        VGRP0EIE OFFSET(4) NUMBITS(1) [],
        VGRP0DIE OFFSET(5) NUMBITS(1) [],
        VGRP1EIE OFFSET(6) NUMBITS(1) [],
        VGRP1DIE OFFSET(7) NUMBITS(1) [],
        /// Counts EOIs the guest made for interrupts no list register held.
        EOI_COUNT OFFSET(27) NUMBITS(5) []
    ],
    /// GICH_VTR (IHI 0048B 5.3, GICH_VTR).
    pub GICH_VTR [
        /// The number of list registers, minus one.
        LIST_REGS OFFSET(0) NUMBITS(6) [],
        /// Preemption bits, minus one.
        PRE_BITS OFFSET(26) NUMBITS(3) [],
        /// Priority bits, minus one (4 on the GIC-400: 5 bits).
        PRI_BITS OFFSET(29) NUMBITS(3) []
    ],
    /// GICH_VMCR (IHI 0048B 5.3, GICH_VMCR): the guest's GICV_CTLR, GICV_PMR, GICV_BPR and
    /// GICV_ABPR, for saving and restoring a vCPU.
    pub GICH_VMCR [
        VM_GRP0_EN OFFSET(0) NUMBITS(1) [],
        VM_GRP1_EN OFFSET(1) NUMBITS(1) [],
        VM_ACK_CTL OFFSET(2) NUMBITS(1) [],
        VM_FIQ_EN OFFSET(3) NUMBITS(1) [],
        VM_CBPR OFFSET(4) NUMBITS(1) [],
        /// GICV_CTLR.EOImode.
        VM_EOI_MODE OFFSET(9) NUMBITS(1) [],
        VM_ABP OFFSET(18) NUMBITS(3) [],
        VM_BP OFFSET(21) NUMBITS(3) [],
        /// The top 5 bits of GICV_PMR.
        VM_PRI_MASK OFFSET(27) NUMBITS(5) []
    ],
    /// GICH_MISR (IHI 0048B 5.3, GICH_MISR): why the maintenance interrupt is asserted.
    pub GICH_MISR [
        /// A list register with EOI set was deactivated (see GICH_EISR0/1).
        EOI OFFSET(0) NUMBITS(1) [],
        /// Underflow (GICH_HCR.UIE).
        U OFFSET(1) NUMBITS(1) [],
        LRENP OFFSET(2) NUMBITS(1) [],
        NP OFFSET(3) NUMBITS(1) [],
        VGRP0E OFFSET(4) NUMBITS(1) [],
        VGRP0D OFFSET(5) NUMBITS(1) [],
        VGRP1E OFFSET(6) NUMBITS(1) [],
        VGRP1D OFFSET(7) NUMBITS(1) []
    ],
    /// GICH_LR<n>, a list register (IHI 0048B 5.3.11); build and read it through [`LrV2`].
    pub GICH_LR [
        /// The INTID the guest sees.
        VIRTUAL_ID OFFSET(0) NUMBITS(10) [],
        /// With HW = 1: the physical INTID the guest's deactivation also deactivates.
        PHYSICAL_ID OFFSET(10) NUMBITS(10) [],
        /// With HW = 0, for an SGI: the CPU interface that requested it, which the guest's
        /// GICV_IAR reports.
        CPUID OFFSET(10) NUMBITS(3) [],
        /// With HW = 0: a maintenance interrupt when the guest deactivates the interrupt.
        EOI OFFSET(19) NUMBITS(1) [],
        /// The top 5 bits of the 8-bit priority.
        PRIORITY OFFSET(23) NUMBITS(5) [],
        STATE OFFSET(28) NUMBITS(2) [
            Invalid = 0,
            Pending = 1,
            Active = 2,
            PendingAndActive = 3
        ],
        /// 1: Group 1 (a vIRQ); 0: Group 0 (a vFIQ if GICV_CTLR.FIQEn, else a vIRQ).
        GRP1 OFFSET(30) NUMBITS(1) [],
        /// 1: the virtual interrupt is tied to the physical one in PhysicalID.
        HW OFFSET(31) NUMBITS(1) []
    ]
}

/// Most INTIDs a GICv2 has: 32 * (31 + 1), of which 1020-1023 are special.
pub const INTID_COUNT: usize = 1024;
/// GICD_ITARGETSR<n>: 255 registers, a byte per INTID below 1020 (IHI 0048B 4.3.12).
pub const GICD_ITARGETSR_COUNT: usize = 255;
/// GICD_ITARGETSR0-7 hold the private interrupts' bytes (INTIDs 0-31) and are read-only.
pub const GICD_ITARGETSR_PRIVATE: usize = 8;

register_structs! {
    /// GICv2 distributor (GICD_*), 4 KiB (IHI 0048B 4.1.2, Table 4-1). A DTB usually gives it
    /// a 64 KiB region; the registers are in the first 4 KiB.
    pub Distributor {
        (0x000 => pub ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        (0x004 => pub typer: ReadOnly<u32, GICD_TYPER::Register>),
        (0x008 => pub iidr: ReadOnly<u32, GICD_IIDR::Register>),
        (0x00c => _reserved0),
        (0x080 => pub igroupr: [ReadWrite<u32>; 32]),
        (0x100 => pub isenabler: [ReadWrite<u32>; 32]),
        (0x180 => pub icenabler: [ReadWrite<u32>; 32]),
        (0x200 => pub ispendr: [ReadWrite<u32>; 32]),
        (0x280 => pub icpendr: [ReadWrite<u32>; 32]),
        (0x300 => pub isactiver: [ReadWrite<u32>; 32]),
        (0x380 => pub icactiver: [ReadWrite<u32>; 32]),
        (0x400 => pub ipriorityr: [ReadWrite<u32>; GICD_IPRIORITYR_COUNT]),
        (0x7fc => _reserved1),
        /// 0-7 read-only ([`banked_itargetsr`]), the SPIs' from 8 on.
        (0x800 => pub itargetsr: [ReadWrite<u32>; GICD_ITARGETSR_COUNT]),
        (0xbfc => _reserved2),
        (0xc00 => pub icfgr: [ReadWrite<u32>; 64]),
        (0xd00 => _reserved3),
        (0xf00 => pub sgir: WriteOnly<u32, GICD_SGIR::Register>),
        (0xf04 => _reserved4),
        /// A byte per SGI: bit n set means pending from CPU interface n.
        (0xf10 => pub cpendsgir: [ReadWrite<u32>; 4]),
        (0xf20 => pub spendsgir: [ReadWrite<u32>; 4]),
        (0xf30 => _reserved5),
        (0xfe8 => pub pidr2: ReadOnly<u32, PIDR2::Register>),
        (0xfec => _reserved6),
        (0x1000 => @END),
    }
}

register_structs! {
    /// GICv2 CPU interface (GICC_*), 8 KiB: GICC_DIR is in the second 4 KiB page (IHI 0048B
    /// 4.1.3, Table 4-2). Also the layout of the virtual CPU interface, [`VirtualCpuInterface`].
    pub CpuInterface {
        (0x0000 => pub ctlr: ReadWrite<u32>),
        (0x0004 => pub pmr: ReadWrite<u32, GICC_PMR::Register>),
        (0x0008 => pub bpr: ReadWrite<u32, GICC_BPR::Register>),
        (0x000c => pub iar: ReadOnly<u32, GICC_IAR::Register>),
        (0x0010 => pub eoir: WriteOnly<u32, GICC_IAR::Register>),
        (0x0014 => pub rpr: ReadOnly<u32, GICC_PMR::Register>),
        (0x0018 => pub hppir: ReadOnly<u32, GICC_IAR::Register>),
        (0x001c => pub abpr: ReadWrite<u32, GICC_BPR::Register>),
        (0x0020 => pub aiar: ReadOnly<u32, GICC_IAR::Register>),
        (0x0024 => pub aeoir: WriteOnly<u32, GICC_IAR::Register>),
        (0x0028 => pub ahppir: ReadOnly<u32, GICC_IAR::Register>),
        (0x002c => _reserved0),
        /// GICC_APR0-3: active priorities (IMPLEMENTATION DEFINED layout; Linux zeroes them).
        (0x00d0 => pub apr: [ReadWrite<u32>; 4]),
        /// GICC_NSAPR0-3; reserved in the virtual CPU interface.
        (0x00e0 => pub nsapr: [ReadWrite<u32>; 4]),
        (0x00f0 => _reserved1),
        (0x00fc => pub iidr: ReadOnly<u32, GICC_IIDR::Register>),
        (0x0100 => _reserved2),
        (0x1000 => pub dir: WriteOnly<u32, GICC_IAR::Register>),
        (0x1004 => _reserved3),
        (0x2000 => @END),
    }
}

/// The virtual CPU interface (GICV_*, IHI 0048B chapter 5, the virtual CPU interface register
/// map) has GICC's layout: a guest is given GICV where its device tree puts its GICC, and
/// its GICC_DIR is GICV_DIR at 0x1000.
pub type VirtualCpuInterface = CpuInterface;

/// Most list registers there can be: GICH_LR0 to GICH_LR63 (IHI 0048B 5.3.11).
pub const MAX_LRS: usize = 64;

register_structs! {
    /// GICv2 virtual interface control (GICH_*, IHI 0048B 5.3, the virtual interface control
    /// register map): 0x200 bytes, the registers of the CPU that accesses them. The GIC-400
    /// puts them in a 4 KiB page (and every CPU's at 0x200 intervals in the next one).
    pub VirtualInterfaceControl {
        (0x000 => pub hcr: ReadWrite<u32, GICH_HCR::Register>),
        (0x004 => pub vtr: ReadOnly<u32, GICH_VTR::Register>),
        (0x008 => pub vmcr: ReadWrite<u32, GICH_VMCR::Register>),
        (0x00c => _reserved0),
        (0x010 => pub misr: ReadOnly<u32, GICH_MISR::Register>),
        (0x014 => _reserved1),
        /// GICH_EISR0/1: bit n, list register 32 * i + n was deactivated with EOI set.
        (0x020 => pub eisr: [ReadOnly<u32>; 2]),
        (0x028 => _reserved2),
        /// GICH_ELRSR0/1: bit n, list register 32 * i + n is empty (usable).
        (0x030 => pub elrsr: [ReadOnly<u32>; 2]),
        (0x038 => _reserved3),
        /// GICH_APR: bit n, an active virtual interrupt at priority group n (5-bit priorities).
        (0x0f0 => pub apr: ReadWrite<u32>),
        (0x0f4 => _reserved4),
        (0x100 => pub lr: [ReadWrite<u32, GICH_LR::Register>; MAX_LRS]),
        (0x200 => @END),
    }
}

/// The distributor's registers: 4 KiB.
pub const GICD_SIZE: u64 = size_of::<Distributor>() as u64;
/// A CPU interface, physical or virtual: 8 KiB, two 4 KiB pages.
pub const GICC_SIZE: u64 = size_of::<CpuInterface>() as u64;
/// The CPU interface's first page: every register but GICC_DIR. Enough for a driver that
/// runs in EOImode 0 (a write to GICC_EOIR drops priority and deactivates).
pub const GICC_PAGE_SIZE: u64 = 0x1000;
/// The virtual interface control registers: 0x200 bytes (a DTB gives a 4 KiB page or more).
pub const GICH_SIZE: u64 = size_of::<VirtualInterfaceControl>() as u64;

/// A GIC-400 integrated with each 4 KiB page of its CPU interfaces repeated over 64 KiB (the
/// Zynq UltraScale+: GICC at 0xf902_0000 and GICV at 0xf906_0000, 128 KiB each in its DTB).
/// The 8 KiB interface is then contiguous only from the last alias of the first page,
/// 0xf000 in (Linux drivers/irqchip/irq-gic.c gic_check_eoimode, Xen xen/arch/arm/gic-v2.c).
pub const ALIASED_REGION_SIZE: u64 = 0x2_0000;
/// Where in such a region the contiguous 8 KiB interface starts: 64 KiB - 4 KiB.
pub const ALIASED_OFFSET: u64 = 0xf000;

/// A GICv2 has at most eight CPU interfaces: GICD_TYPER.CPUNumber has 3 bits and a target
/// mask (GICD_ITARGETSR, GICD_SGIR) 8 bits (IHI 0048B 4.3.2, 4.3.12, 4.3.15).
pub const MAX_CPU_INTERFACES: usize = 8;

const _: () = {
    assert!(offset_of!(Distributor, itargetsr) == 0x800);
    assert!(offset_of!(Distributor, icfgr) == 0xc00);
    assert!(offset_of!(Distributor, sgir) == 0xf00);
    assert!(offset_of!(Distributor, cpendsgir) == 0xf10);
    assert!(offset_of!(Distributor, spendsgir) == 0xf20);
    assert!(offset_of!(Distributor, pidr2) == 0xfe8);
    assert!(offset_of!(CpuInterface, apr) == 0xd0);
    assert!(offset_of!(CpuInterface, nsapr) == 0xe0);
    assert!(offset_of!(CpuInterface, iidr) == 0xfc);
    assert!(offset_of!(CpuInterface, dir) == 0x1000);
    assert!(offset_of!(VirtualInterfaceControl, apr) == 0xf0);
    assert!(offset_of!(VirtualInterfaceControl, lr) == 0x100);
    // The GICv2 distributor's private and shared interrupt registers sit where the GICv3
    // distributor has them, so the two decode them with one set of offsets.
    use super::gicv3::Distributor as V3;
    assert!(offset_of!(Distributor, igroupr) == offset_of!(V3, igroupr));
    assert!(offset_of!(Distributor, isenabler) == offset_of!(V3, isenabler));
    assert!(offset_of!(Distributor, icenabler) == offset_of!(V3, icenabler));
    assert!(offset_of!(Distributor, ispendr) == offset_of!(V3, ispendr));
    assert!(offset_of!(Distributor, icpendr) == offset_of!(V3, icpendr));
    assert!(offset_of!(Distributor, isactiver) == offset_of!(V3, isactiver));
    assert!(offset_of!(Distributor, icactiver) == offset_of!(V3, icactiver));
    assert!(offset_of!(Distributor, ipriorityr) == offset_of!(V3, ipriorityr));
    assert!(offset_of!(Distributor, icfgr) == offset_of!(V3, icfgr));
};

/// GICC_IIDR (or GICV_IIDR) names an Arm GICv2 CPU interface, such as the GIC-400's
/// 0x0202_143b: Implementer Arm (0x43b), Architecture version 2 and bits [23:20] of the
/// ProductID 0; the revision and the rest of the ProductID are ignored. The test Linux makes
/// (drivers/irqchip/irq-gic.c gic_check_gicv2) before trusting a CPU interface's layout.
pub const fn iidr_is_gicv2(iidr: u32) -> bool {
    iidr & 0x00ff_0fff == 0x0002_043b
}

/// The GIC-400's GICC_IIDR and GICV_IIDR, r0p1 (DDI 0471B, the CPU interface and virtual CPU
/// interface register summaries).
pub const GIC400_GICC_IIDR: u32 = 0x0202_143b;

/// Where INTID `intid`'s target byte is: the GICD_ITARGETSR<n> index and the byte's shift in
/// it (IHI 0048B 4.3.12). As a byte offset into the distributor: 0x800 + `intid`.
pub const fn itargetsr_position(intid: u32) -> (usize, u32) {
    ((intid / 4) as usize, (intid % 4) * 8)
}

/// INTID `intid`'s target mask in `value`, a GICD_ITARGETSR<n> read (bit n: CPU interface n).
pub const fn itargetsr_byte(value: u32, intid: u32) -> u8 {
    (value >> itargetsr_position(intid).1) as u8
}

/// `value` with INTID `intid`'s target mask replaced by `mask`.
pub const fn with_itargetsr_byte(value: u32, intid: u32, mask: u8) -> u32 {
    let shift = itargetsr_position(intid).1;
    (value & !(0xff << shift)) | ((mask as u32) << shift)
}

/// What a read of GICD_ITARGETSR0-7 (the SGIs' and PPIs' bytes) returns to CPU interface
/// `cpu_interface` (below [`MAX_CPU_INTERFACES`]): in a multiprocessor GIC these registers
/// are read-only and each byte reads as the mask of the interface that reads it (IHI 0048B
/// 4.3.12). Software learns its CPU interface number this way (Linux gic_get_cpumask); the
/// vGICv2 answers a guest's read with this, for the reading vCPU's index.
pub const fn banked_itargetsr(cpu_interface: usize) -> u32 {
    (1u32 << cpu_interface) * 0x0101_0101
}

/// The CPU interface a read of GICD_ITARGETSR0-7 names: the lowest set bit of its lowest
/// non-zero byte (a byte of an unimplemented PPI reads 0). None if all are 0, as on a
/// uniprocessor GIC, where these registers are RAZ.
pub fn cpu_interface_from_itargetsr(value: u32) -> Option<usize> {
    let mask = (value | (value >> 8) | (value >> 16) | (value >> 24)) as u8;
    (mask != 0).then(|| mask.trailing_zeros() as usize)
}

/// A write to GICD_SGIR (IHI 0048B 4.3.15): which SGI, and which CPU interfaces it goes to.
/// One encoding for the physical driver, one decoding for the vGICv2's emulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sgir {
    /// The SGI, 0-15.
    pub intid: u32,
    pub targets: SgirTargets,
    /// NSATT: meaningful only in a Secure write on a GIC with the Security Extensions.
    pub nsatt: bool,
}

/// The CPU interfaces an [`Sgir`] names (GICD_SGIR.TargetListFilter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SgirTargets {
    /// 0b00: the interfaces in CPUTargetList, bit n for CPU interface n.
    List(u8),
    /// 0b01: every interface but the requesting one.
    AllButSelf,
    /// 0b10: only the requesting interface.
    SelfOnly,
}

impl Sgir {
    /// SGI `intid` for the CPU interfaces in `mask`.
    pub const fn to(intid: u32, mask: u8) -> Self {
        Self { intid, targets: SgirTargets::List(mask), nsatt: false }
    }

    /// The register value.
    pub const fn encode(self) -> u32 {
        let filter = match self.targets {
            SgirTargets::List(mask) => {
                GICD_SGIR::TARGET_LIST_FILTER::TargetList.value | GICD_SGIR::CPU_TARGET_LIST.val(mask as u32).value
            }
            SgirTargets::AllButSelf => GICD_SGIR::TARGET_LIST_FILTER::AllButSelf.value,
            SgirTargets::SelfOnly => GICD_SGIR::TARGET_LIST_FILTER::SelfOnly.value,
        };
        let nsatt = if self.nsatt { GICD_SGIR::NSATT::SET.value } else { 0 };
        filter | nsatt | GICD_SGIR::SGIINTID.val(self.intid).value
    }

    /// A value written to the register; None for the reserved TargetListFilter 0b11. With a
    /// filter other than 0b00, CPUTargetList names nobody.
    pub fn decode(value: u32) -> Option<Self> {
        let targets = match GICD_SGIR::TARGET_LIST_FILTER.read(value) {
            0 => SgirTargets::List(GICD_SGIR::CPU_TARGET_LIST.read(value) as u8),
            1 => SgirTargets::AllButSelf,
            2 => SgirTargets::SelfOnly,
            _ => return None,
        };
        let intid = GICD_SGIR::SGIINTID.read(value);
        Some(Self { intid, targets, nsatt: GICD_SGIR::NSATT.is_set(value) })
    }

    /// The CPU interfaces that take the SGI when CPU interface `sender` writes it, among the
    /// first `cpu_count` (for the vGICv2: vCPU n is interface n): bit n for interface n.
    /// Bits of interfaces that do not exist are dropped, as the hardware drops them.
    pub fn targets(self, sender: usize, cpu_count: usize) -> u8 {
        let present = if cpu_count >= MAX_CPU_INTERFACES { 0xff } else { (1u8 << cpu_count) - 1 };
        let me = 1u8.checked_shl(sender as u32).unwrap_or(0);
        let mask = match self.targets {
            SgirTargets::List(mask) => mask,
            SgirTargets::AllButSelf => !me,
            SgirTargets::SelfOnly => me,
        };
        mask & present
    }
}

/// Virtual priorities in a GICv2 list register have 5 bits; lower is more urgent. We keep the
/// guest's 8-bit value and place its top 5 bits (the same on both versions, `hw::gic`).
pub use super::gic::PRIORITY_MASK;

/// GICv2 list-register contents (GICH_LR<n>, IHI 0048B 5.3.11; the fields are [`GICH_LR`]).
/// `new` makes a Group 0 interrupt with HW = 0; the `with_*` methods add the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LrV2(pub u32);

impl LrV2 {
    /// Values of the State field.
    pub const STATE_INVALID: u32 = GICH_LR::STATE::Value::Invalid as u32;
    pub const STATE_PENDING: u32 = GICH_LR::STATE::Value::Pending as u32;
    pub const STATE_ACTIVE: u32 = GICH_LR::STATE::Value::Active as u32;
    pub const STATE_PENDING_AND_ACTIVE: u32 = GICH_LR::STATE::Value::PendingAndActive as u32;

    /// Virtual INTID `intid` (below 1020) in `state` at the top 5 bits of `priority`.
    pub const fn new(intid: u32, priority: u8, state: u32) -> Self {
        LrV2(
            GICH_LR::STATE.val(state).value
                | GICH_LR::PRIORITY.val((priority >> 3) as u32).value
                | GICH_LR::VIRTUAL_ID.val(intid).value,
        )
    }
    /// The same in Group 1: a vIRQ, which a guest enables with GICV_CTLR.EnableGrp1. A GICv2
    /// guest that configures no groups (Linux) leaves every interrupt in Group 0.
    pub const fn with_group1(self) -> Self {
        LrV2(self.0 | GICH_LR::GRP1::SET.value)
    }
    /// The same, and the guest's deactivation raises a maintenance interrupt (HW = 0 only).
    pub const fn with_eoi_maintenance(self) -> Self {
        LrV2(self.0 | GICH_LR::EOI::SET.value)
    }
    /// The same, as an SGI from CPU interface (vCPU) `cpu`, which the guest's GICV_IAR
    /// reports (HW = 0 only; below [`MAX_CPU_INTERFACES`]).
    pub const fn with_source_cpu(self, cpu: u32) -> Self {
        LrV2((self.0 & !(GICH_LR::CPUID.mask << GICH_LR::CPUID.shift)) | GICH_LR::CPUID.val(cpu).value)
    }
    /// The same, tied to physical INTID `pintid`: the guest's deactivation deactivates it.
    /// Replaces CPUID and EOI, which share the PhysicalID bits.
    pub const fn with_hw(self, pintid: u32) -> Self {
        let cleared = self.0 & !(GICH_LR::PHYSICAL_ID.mask << GICH_LR::PHYSICAL_ID.shift);
        LrV2(cleared | GICH_LR::HW::SET.value | GICH_LR::PHYSICAL_ID.val(pintid).value)
    }
    pub fn intid(self) -> u32 {
        GICH_LR::VIRTUAL_ID.read(self.0)
    }
    /// The 8-bit priority, of which the list register holds the top 5 bits.
    pub fn priority(self) -> u8 {
        (GICH_LR::PRIORITY.read(self.0) << 3) as u8
    }
    pub fn state(self) -> u32 {
        GICH_LR::STATE.read(self.0)
    }
    pub fn is_group1(self) -> bool {
        GICH_LR::GRP1.is_set(self.0)
    }
    pub fn is_hw(self) -> bool {
        GICH_LR::HW.is_set(self.0)
    }
    /// With HW = 1, the physical INTID; None with HW = 0.
    pub fn physical_id(self) -> Option<u32> {
        self.is_hw().then(|| GICH_LR::PHYSICAL_ID.read(self.0))
    }
    /// With HW = 0, the SGI's source CPU interface; None with HW = 1.
    pub fn source_cpu(self) -> Option<u32> {
        (!self.is_hw()).then(|| GICH_LR::CPUID.read(self.0))
    }
    /// With HW = 0, whether the guest's deactivation raises a maintenance interrupt.
    pub fn eoi_maintenance(self) -> bool {
        !self.is_hw() && GICH_LR::EOI.is_set(self.0)
    }
    /// The same with another state (the guest's progress, read back, or the next one).
    pub const fn with_state(self, state: u32) -> Self {
        LrV2((self.0 & !(GICH_LR::STATE.mask << GICH_LR::STATE.shift)) | GICH_LR::STATE.val(state).value)
    }
}

/// `lr` as GICH_LR<n> holds it, HW = 0: the SGI's source in CPUID (bits [12:10] are RES0
/// for the other interrupts, where the source is 0).
pub fn encode_lr(lr: super::gic::Lr) -> u32 {
    let mut v = LrV2::new(lr.intid(), lr.priority(), lr.state() as u32);
    if lr.group1() {
        v = v.with_group1();
    }
    if lr.eoi_exit() {
        v = v.with_eoi_maintenance();
    }
    if lr.intid() < super::gic::SGI_COUNT {
        v = v.with_source_cpu(lr.source() as u32);
    }
    if let Some(p) = lr.pintid() {
        v = v.with_hw(p);
    }
    v.0
}

/// A GICH_LR<n> value read back after an exit.
pub fn decode_lr(v: u32) -> super::gic::Lr {
    let l = LrV2(v);
    let lr = super::gic::Lr::new(l.intid(), l.priority(), l.state() as u64).with_group1(l.is_group1());
    let lr = if l.intid() < super::gic::SGI_COUNT { lr.with_source(l.source_cpu().unwrap_or(0) as u8) } else { lr };
    if let Some(p) = l.physical_id() {
        lr.with_hw(p)
    } else if l.eoi_maintenance() {
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
        assert_eq!(GICD_SIZE, 0x1000);
        assert_eq!(GICC_SIZE, 0x2000);
        assert_eq!(GICH_SIZE, 0x200);
        assert_eq!(offset_of!(Distributor, itargetsr) + 4 * GICD_ITARGETSR_COUNT, 0xbfc);
        assert_eq!(offset_of!(Distributor, ipriorityr) + 4 * GICD_IPRIORITYR_COUNT, 0x7fc);
        assert_eq!(offset_of!(VirtualInterfaceControl, lr) + 4 * MAX_LRS, 0x200);
        assert_eq!(offset_of!(VirtualInterfaceControl, elrsr), 0x30);
        assert_eq!(PIDR2::ARCH_REV::GICV2.value, 0x20);
        assert_eq!(ALIASED_OFFSET + GICC_SIZE, 0x1_1000, "the 8 KiB straddles the first 64 KiB boundary");
    }

    #[test]
    fn typer_fields() {
        // A GIC-400 with 4 CPUs, 256 INTIDs and the Security Extensions.
        let typer = 0b1_0110_0111u32;
        assert_eq!(GICD_TYPER::IT_LINES_NUMBER.read(typer), 7);
        assert_eq!(GICD_TYPER::CPU_NUMBER.read(typer), 3);
        assert!(GICD_TYPER::SECURITY_EXTN.is_set(typer | 1 << 10));
        assert_eq!(GICC_IAR::CPUID.read(0x0c05), 3);
        assert_eq!(GICC_IAR::INTERRUPT_ID.read(0x0c05), 5);
    }

    #[test]
    fn gicv2_iidr_check() {
        assert!(iidr_is_gicv2(GIC400_GICC_IIDR));
        // QEMU's GICv2 CPU interface: no ProductID, revision 0.
        assert!(iidr_is_gicv2(0x0002_043b));
        // Another revision and upper ProductID bits are ignored.
        assert!(iidr_is_gicv2(0xff02_f43b));
        // GICv1, another implementer, RAZ.
        assert!(!iidr_is_gicv2(0x0201_143b));
        assert!(!iidr_is_gicv2(0x0202_1070));
        assert!(!iidr_is_gicv2(0));
        assert_eq!(GICC_IIDR::ARCH_VERSION.read(GIC400_GICC_IIDR), 2);
        assert_eq!(GICC_IIDR::IMPLEMENTER.read(GIC400_GICC_IIDR), super::super::gicv3::IIDR_ARM);
    }

    #[test]
    fn itargetsr_bytes() {
        assert_eq!(itargetsr_position(0), (0, 0));
        assert_eq!(itargetsr_position(35), (8, 24));
        assert_eq!(itargetsr_position(1019), (254, 24));
        let v = with_itargetsr_byte(0x1122_3344, 34, 0x80);
        assert_eq!(v, 0x1180_3344);
        assert_eq!(itargetsr_byte(v, 34), 0x80);
        assert_eq!(itargetsr_byte(v, 32), 0x44);
        for cpu in 0..MAX_CPU_INTERFACES {
            let read = banked_itargetsr(cpu);
            for intid in 0..32 {
                assert_eq!(itargetsr_byte(read, intid), 1 << cpu);
            }
            assert_eq!(cpu_interface_from_itargetsr(read), Some(cpu));
            // SGIs only: the PPI bytes RAZ.
            assert_eq!(cpu_interface_from_itargetsr(read & 0xff00), Some(cpu));
        }
        assert_eq!(cpu_interface_from_itargetsr(0), None);
    }

    #[test]
    fn sgir_encoding() {
        assert_eq!(Sgir::to(8, 0b0000_0110).encode(), (0b110 << 16) | 8);
        let others = Sgir { intid: 3, targets: SgirTargets::AllButSelf, nsatt: false };
        assert_eq!(others.encode(), (1 << 24) | 3);
        let me = Sgir { intid: 15, targets: SgirTargets::SelfOnly, nsatt: true };
        assert_eq!(me.encode(), (2 << 24) | (1 << 15) | 15);
        assert_eq!(Sgir::decode(3 << 24), None, "TargetListFilter 0b11 is reserved");
    }

    #[test]
    fn sgir_round_trip() {
        for intid in 0..16 {
            for nsatt in [false, true] {
                let mut all = [SgirTargets::AllButSelf, SgirTargets::SelfOnly].to_vec();
                all.extend((0..=255u8).map(SgirTargets::List));
                for targets in all {
                    let sgir = Sgir { intid, targets, nsatt };
                    assert_eq!(Sgir::decode(sgir.encode()), Some(sgir), "{sgir:?}");
                }
            }
        }
        // Every field comes back; the RES0 bits [31:26], [14:4] are not read, and a filter
        // other than 0 ignores CPUTargetList.
        let fields = (0b11 << 24) | (0xff << 16) | (1 << 15) | 0xf;
        for filter in 0..3u32 {
            let value = (fields & !(0b11 << 24)) | (filter << 24);
            let back = Sgir::decode(value | RES0).unwrap().encode();
            let want = if filter == 0 { value } else { value & !(0xff << 16) };
            assert_eq!(back, want, "filter {filter}");
        }
    }

    /// The bits of GICD_SGIR no field holds.
    const RES0: u32 = (0x3f << 26) | (0x7ff << 4);

    #[test]
    fn sgir_targets_for_a_sender() {
        let list = Sgir::to(1, 0b1010_0101);
        assert_eq!(list.targets(0, 8), 0b1010_0101);
        assert_eq!(list.targets(0, 4), 0b0101, "interfaces past the count are dropped");
        let others = Sgir { intid: 1, targets: SgirTargets::AllButSelf, nsatt: false };
        assert_eq!(others.targets(2, 4), 0b1011);
        assert_eq!(others.targets(7, 8), 0b0111_1111);
        assert_eq!(others.targets(0, 1), 0, "alone: nobody else");
        let me = Sgir { intid: 1, targets: SgirTargets::SelfOnly, nsatt: false };
        assert_eq!(me.targets(3, 4), 0b1000);
        assert_eq!(me.targets(9, 8), 0, "a sender past the interfaces has no bit");
    }

    #[test]
    fn list_register_fields() {
        let lr = LrV2::new(27, 0xa8, LrV2::STATE_PENDING);
        assert_eq!(lr.0, (1 << 28) | (0x15 << 23) | 27);
        assert_eq!((lr.intid(), lr.priority(), lr.state()), (27, 0xa8, LrV2::STATE_PENDING));
        assert!(!lr.is_group1() && !lr.is_hw() && !lr.eoi_maintenance());
        assert_eq!(LrV2::new(1, 0xff, 0).priority(), 0xf8, "the low 3 bits are not kept");
        assert_eq!(lr.with_group1().0, lr.0 | 1 << 30);
        assert!(lr.with_group1().is_group1());

        let sgi = LrV2::new(5, 0x80, LrV2::STATE_PENDING).with_source_cpu(6).with_eoi_maintenance();
        assert_eq!(sgi.0, (1 << 28) | (0x10 << 23) | (1 << 19) | (6 << 10) | 5);
        assert_eq!(sgi.source_cpu(), Some(6));
        assert!(sgi.eoi_maintenance());
        assert_eq!(sgi.physical_id(), None);
        assert_eq!(sgi.with_source_cpu(1).source_cpu(), Some(1));

        let hw = LrV2::new(48, 0, LrV2::STATE_PENDING).with_eoi_maintenance().with_hw(1019);
        assert_eq!(hw.0, (1 << 31) | (1 << 28) | (1019 << 10) | 48);
        assert_eq!(hw.physical_id(), Some(1019));
        assert_eq!(hw.source_cpu(), None);
        assert!(!hw.eoi_maintenance(), "EOI is a PhysicalID bit with HW = 1");

        let both = lr.with_state(LrV2::STATE_PENDING_AND_ACTIVE);
        assert_eq!(both.0, lr.0 | 1 << 29);
        assert_eq!(both.with_state(LrV2::STATE_INVALID).state(), LrV2::STATE_INVALID);
        assert_eq!(LrV2::new(1023, 0, 0).intid(), 1023);
    }

    #[test]
    fn hcr_vtr_misr_fields() {
        assert_eq!(GICH_HCR::EN::SET.value | GICH_HCR::UIE::SET.value | GICH_HCR::NPIE::SET.value, 0b1011);
        assert_eq!(GICH_HCR::EOI_COUNT.read(0xf800_0000), 31);
        // The GIC-400: 4 list registers, 5 priority and preemption bits.
        let vtr = (4 << 29) | (4 << 26) | 3;
        assert_eq!(GICH_VTR::LIST_REGS.read(vtr) + 1, 4);
        assert_eq!(GICH_VTR::PRI_BITS.read(vtr) + 1, 5);
        assert_eq!(GICH_VTR::PRE_BITS.read(vtr) + 1, 5);
        assert!(GICH_MISR::EOI.is_set(1) && GICH_MISR::U.is_set(2));
        assert_eq!(GICH_VMCR::VM_PRI_MASK.val(0x1f).value, 0xf800_0000);
    }
}

#[cfg(test)]
mod lr_encoding_tests {
    use super::super::gic::Lr;
    use super::*;

    #[test]
    fn list_register_round_trip() {
        let sgi = Lr::new(3, 0xa7, Lr::STATE_PENDING).with_group1(false).with_source(5).with_eoi_exit();
        let v = encode_lr(sgi);
        // State [29:28], priority [27:23] (0xa7 >> 3), EOI [19], CPUID [12:10], VirtualID.
        assert_eq!(v, (1 << 28) | (0x14 << 23) | (1 << 19) | (5 << 10) | 3);
        assert_eq!(decode_lr(v), Lr::new(3, 0xa0, Lr::STATE_PENDING).with_group1(false).with_source(5).with_eoi_exit());
        let spi = Lr::new(40, 0x10, Lr::STATE_PENDING | Lr::STATE_ACTIVE);
        assert_eq!(encode_lr(spi), (3 << 28) | (1 << 30) | (2 << 23) | 40);
        assert_eq!(decode_lr(encode_lr(spi)), spi);
        // A source only for SGIs: for an SPI those bits are RES0 and are not written.
        assert_eq!(encode_lr(Lr::new(40, 0, 1).with_source(7)) & (7 << 10), 0);
        // A linked PPI: HW [31] and PhysicalID [19:10], no EOI bit.
        let timer = Lr::new(27, 0xa0, Lr::STATE_ACTIVE).with_eoi_exit().with_hw(30);
        let v = encode_lr(timer);
        assert_eq!(v, (1 << 31) | (1 << 30) | (2 << 28) | (0x14 << 23) | (30 << 10) | 27);
        assert_eq!(decode_lr(v), timer);
    }
}
