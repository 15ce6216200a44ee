//! What the two GIC versions the hypervisor drives have in common: the INTID ranges, and a
//! list register's contents in neither version's encoding. The portable vGIC model decides
//! [`Lr`] values; the arch layer encodes them for the hardware it has (ICH_LR<n>_EL2 on a
//! GICv3, `hw::gicv3::encode_lr`; GICH_LR<n> on a GICv2) and decodes them after an exit.
#![forbid(unsafe_code)]

/// A GIC architecture version: the board's, and so the one every guest sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Version {
    /// GICv2 (IHI 0048B): a memory-mapped CPU interface; GICH/GICV for virtualization.
    V2,
    /// GICv3 or GICv4 (IHI 0069): system-register CPU interface; ICH_* for virtualization.
    #[default]
    V3,
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::V2 => "GICv2",
            Self::V3 => "GICv3",
        })
    }
}

/// SGIs are INTIDs 0-15, PPIs 16-31, SPIs from 32 (IHI 0048B 2.2.1, IHI 0069 2.2).
pub const SGI_COUNT: u32 = 16;
pub const SPI_FIRST: u32 = 32;
/// INTIDs 1020-1023 are special; 1023 is what an acknowledge that finds nothing returns.
pub const INTID_SPECIAL_FIRST: u32 = 1020;
pub const INTID_SPURIOUS: u32 = 1023;

/// Virtual priorities have 5 bits on both versions as the hypervisor uses them: a GICv2
/// list register holds priority [7:3] (IHI 0048B 5.3.11), and ICH_VTR_EL2.PRIbits is 4 on
/// QEMU and most GICv3 cores. We keep the guest's 8-bit value and place the top 5 bits.
pub const PRIORITY_MASK: u8 = 0xf8;

/// One list register's contents, decoded: a virtual interrupt, with no physical one behind
/// it (HW = 0 in both encodings) or tied to one ([`Lr::with_hw`]: HW = 1, the guest's
/// deactivation also deactivates the physical interrupt).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lr {
    intid: u32,
    /// [`Lr::STATE_PENDING`] and [`Lr::STATE_ACTIVE`] bits.
    state: u8,
    priority: u8,
    group1: bool,
    /// The CPU interface that sent an SGI, which a GICv2 guest reads in GICC_IAR.CPUID
    /// (0-7). A GICv3 list register has no such field; there it is always 0.
    source: u8,
    /// A maintenance interrupt when the guest deactivates the interrupt (the EOI bit).
    eoi_exit: bool,
    /// HW = 1: the physical INTID the guest's deactivation deactivates too (the EOI and
    /// source bits share its field, so it excludes both).
    pintid: Option<u32>,
}

impl Lr {
    /// Values of the State field (the same in both encodings).
    pub const STATE_INVALID: u64 = 0;
    pub const STATE_PENDING: u64 = 1;
    pub const STATE_ACTIVE: u64 = 2;

    /// A Group 1 interrupt `intid` at `priority` (its top 5 bits) in `state`.
    pub fn new(intid: u32, priority: u8, state: u64) -> Self {
        Self {
            intid,
            state: (state & 3) as u8,
            priority: priority & PRIORITY_MASK,
            group1: true,
            source: 0,
            eoi_exit: false,
            pintid: None,
        }
    }
    /// The same, and the guest's EOI makes the vCPU exit (HW = 0 only: clears the link).
    pub fn with_eoi_exit(self) -> Self {
        Self { eoi_exit: true, pintid: None, ..self }
    }
    /// The same, tied to physical interrupt `pintid` (HW = 1; IHI 0069 12.4.6, IHI 0048B
    /// 5.3.11): when the guest deactivates the virtual interrupt the GIC deactivates the
    /// physical one, with no exit. Clears the EOI exit and the source, whose bits it uses.
    pub fn with_hw(self, pintid: u32) -> Self {
        Self { pintid: Some(pintid), eoi_exit: false, source: 0, ..self }
    }
    /// The same in Group 0 (`false`) or Group 1.
    pub fn with_group1(self, group1: bool) -> Self {
        Self { group1, ..self }
    }
    /// The same, sent by CPU interface `source` (an SGI on a GICv2; 0-7).
    pub fn with_source(self, source: u8) -> Self {
        Self { source: source & 7, pintid: None, ..self }
    }
    pub fn intid(self) -> u32 {
        self.intid
    }
    pub fn state(self) -> u64 {
        self.state as u64
    }
    pub fn priority(self) -> u8 {
        self.priority
    }
    pub fn group1(self) -> bool {
        self.group1
    }
    pub fn source(self) -> u8 {
        self.source
    }
    pub fn eoi_exit(self) -> bool {
        self.eoi_exit
    }
    /// With HW = 1, the physical INTID.
    pub fn pintid(self) -> Option<u32> {
        self.pintid
    }
}
