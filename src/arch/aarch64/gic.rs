//! The physical GICv3: distributor and redistributor set-up, the EL2 view of the CPU
//! interface, and SGIs between pCPUs (GIC architecture spec IHI 0069, chapters 12 and 13).

use super::mmio;
use crate::platform::{GicVersion, Platform, Region};
use core::arch::asm;
use spin::Once;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    pub GICD_CTLR [
        ENABLE_GRP0 OFFSET(0) NUMBITS(1) [],
        ENABLE_GRP1 OFFSET(1) NUMBITS(1) [],
        ARE OFFSET(4) NUMBITS(1) [],
        DS OFFSET(6) NUMBITS(1) [],
        RWP OFFSET(31) NUMBITS(1) []
    ],
    pub GICD_TYPER [
        IT_LINES_NUMBER OFFSET(0) NUMBITS(5) []
    ],
    pub GICR_WAKER [
        PROCESSOR_SLEEP OFFSET(1) NUMBITS(1) [],
        CHILDREN_ASLEEP OFFSET(2) NUMBITS(1) []
    ],
    pub PIDR2 [
        ARCH_REV OFFSET(4) NUMBITS(4) []
    ]
}

register_bitfields! {u64,
    pub GICR_TYPER [
        VLPIS OFFSET(1) NUMBITS(1) [],
        LAST OFFSET(4) NUMBITS(1) [],
        PROCESSOR_NUMBER OFFSET(8) NUMBITS(16) [],
        AFFINITY OFFSET(32) NUMBITS(32) []
    ]
}

register_structs! {
    /// GICv3 distributor (GICD_*), 64 KiB.
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
        (0x0400 => pub ipriorityr: [ReadWrite<u32>; 255]),
        (0x07fc => _reserved1),
        (0x0c00 => pub icfgr: [ReadWrite<u32>; 64]),
        (0x0d00 => pub igrpmodr: [ReadWrite<u32>; 32]),
        (0x0d80 => _reserved2),
        (0x6100 => pub irouter: [ReadWrite<u64>; 988]),
        (0x7fe0 => _reserved3),
        (0xffe8 => pub pidr2: ReadOnly<u32, PIDR2::Register>),
        (0xffec => _reserved4),
        (0x10000 => @END),
    }
}

register_structs! {
    /// One GICv3 redistributor: the RD_base frame and the SGI_base frame, 128 KiB.
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

/// SGI the hypervisor reserves for kicking another pCPU (GIC SGIs 0-15; Linux guests only
/// see virtual SGIs, so any physical one is ours).
pub const SGI_KICK: u32 = 8;
/// Priority of the kick: higher (numerically lower) than anything a guest gets later.
const KICK_PRIORITY: u32 = 0x80;
/// INTIDs 1020-1023 are special (spurious, etc.).
pub const INTID_SPURIOUS: u32 = 1023;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicError {
    /// The DTB describes a GICv2; this hypervisor drives GICv3 only.
    NotV3,
    /// The distributor's PIDR2 does not say GICv3 or GICv4.
    BadArchRev(u32),
    /// No redistributor frame has this pCPU's affinity.
    NoRedistributor(u64),
    /// GICR_WAKER.ChildrenAsleep did not clear.
    WakeTimeout,
}

impl core::fmt::Display for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotV3 => write!(
                f,
                "the interrupt controller is a GICv2; this hypervisor needs a GICv3 (QEMU: -machine gic-version=3)"
            ),
            Self::BadArchRev(r) => write!(f, "GICD_PIDR2 reports architecture revision {r}, not GICv3/v4"),
            Self::NoRedistributor(m) => write!(f, "no GICv3 redistributor for MPIDR {m:#x}"),
            Self::WakeTimeout => write!(f, "GICv3 redistributor did not wake up"),
        }
    }
}

struct Gic {
    distributor: mmio::Mmio<Distributor>,
    redistributors: crate::util::FixedVec<Region, { crate::platform::MAX_REDIST_REGIONS }>,
    stride: u64,
}

/// Written once by the primary before any secondary starts; read-only afterwards.
static GIC: Once<Gic> = Once::new();

fn wait_rwp(d: &Distributor) {
    let deadline = super::cpu::counter() + super::cpu::ticks_from_us(100_000);
    while d.ctlr.is_set(GICD_CTLR::RWP) && super::cpu::counter() < deadline {}
}

/// Primary only, once: checks the GIC and enables affinity routing and Group 1.
pub fn init_distributor(p: &Platform<'_>) -> Result<(), GicError> {
    if p.gic.version != GicVersion::V3 {
        return Err(GicError::NotV3);
    }
    // SAFETY: the distributor region comes from the DTB and is mapped as device memory.
    let d: mmio::Mmio<Distributor> = unsafe { mmio::block(p.gic.distributor) };
    let rev = d.pidr2.read(PIDR2::ARCH_REV);
    if rev != 3 && rev != 4 {
        return Err(GicError::BadArchRev(rev));
    }
    // All SPIs off until a VM routes them (SPIs start at INTID 32: register 1 onwards).
    let lines = (d.typer.read(GICD_TYPER::IT_LINES_NUMBER) as usize + 1).min(32);
    for i in 1..lines {
        d.icenabler[i].set(u32::MAX);
        d.icpendr[i].set(u32::MAX);
        d.igroupr[i].set(u32::MAX);
    }
    wait_rwp(&d);
    d.ctlr.modify(GICD_CTLR::ARE::SET + GICD_CTLR::ENABLE_GRP1::SET);
    wait_rwp(&d);
    GIC.call_once(|| Gic { distributor: d, redistributors: p.gic.redistributors, stride: p.gic.redistributor_stride });
    Ok(())
}

/// INTIDs the distributor implements (GICD_TYPER.ITLinesNumber), for the boot log.
pub fn intid_count() -> u32 {
    GIC.get().map_or(0, |g| 32 * (g.distributor.typer.read(GICD_TYPER::IT_LINES_NUMBER) + 1).min(32))
}

/// Enables SPI `intid` in Group 1, routed to the pCPU with affinity `mpidr` (the
/// hypervisor's own device interrupts: the console's receive interrupt).
pub fn enable_spi(intid: u32, mpidr: u64) {
    let Some(gic) = GIC.get() else { return };
    if !(32..1020).contains(&intid) {
        return;
    }
    let d = &gic.distributor;
    let (reg, bit) = ((intid / 32) as usize, 1u32 << (intid % 32));
    d.igroupr[reg].set(d.igroupr[reg].get() | bit);
    let prio = &d.ipriorityr[(intid / 4) as usize];
    let shift = (intid % 4) * 8;
    prio.set((prio.get() & !(0xff << shift)) | (KICK_PRIORITY << shift));
    d.irouter[(intid - 32) as usize].set(mpidr & crate::platform::MPIDR_AFFINITY_MASK);
    d.isenabler[reg].set(bit);
}

/// Affinity as GICR_TYPER encodes it: Aff3.Aff2.Aff1.Aff0.
fn packed_affinity(mpidr: u64) -> u64 {
    ((mpidr >> 8) & 0xff00_0000) | (mpidr & 0xff_ffff)
}

fn find_redistributor(gic: &Gic, mpidr: u64) -> Option<mmio::Mmio<Redistributor>> {
    let want = packed_affinity(mpidr);
    for region in gic.redistributors.iter() {
        let mut base = region.base;
        while base + 0x2_0000 <= region.base + region.size {
            // SAFETY: every frame inside a DTB redistributor region is mapped device memory.
            let r: mmio::Mmio<Redistributor> = unsafe { mmio::block(Region { base, size: 0x2_0000 }) };
            let typer = r.typer.extract();
            if typer.read(GICR_TYPER::AFFINITY) == want {
                return Some(r);
            }
            if typer.is_set(GICR_TYPER::LAST) {
                break;
            }
            base += match (gic.stride, typer.is_set(GICR_TYPER::VLPIS)) {
                (0, false) => 0x2_0000,
                (0, true) => 0x4_0000,
                (s, _) => s,
            };
        }
    }
    None
}

/// Every pCPU, once: wakes its redistributor, enables the kick SGI, the PPIs in `ppis`
/// (the virtual timer and the vGIC maintenance interrupt) and the CPU interface.
pub fn init_cpu(mpidr: u64, ppis: &[u32]) -> Result<(), GicError> {
    let gic = GIC.get().expect("init_distributor runs before init_cpu");
    let r = find_redistributor(gic, mpidr).ok_or(GicError::NoRedistributor(mpidr))?;
    r.waker.modify(GICR_WAKER::PROCESSOR_SLEEP::CLEAR);
    let deadline = super::cpu::counter() + super::cpu::ticks_from_us(100_000);
    while r.waker.is_set(GICR_WAKER::CHILDREN_ASLEEP) {
        if super::cpu::counter() > deadline {
            return Err(GicError::WakeTimeout);
        }
    }
    // SGIs and PPIs: all Group 1, all disabled except the kick.
    r.icenabler0.set(u32::MAX);
    r.icpendr0.set(u32::MAX);
    r.igroupr0.set(u32::MAX);
    r.igrpmodr0.set(0);
    let mut enable = 0u32;
    for intid in core::iter::once(SGI_KICK).chain(ppis.iter().copied().filter(|&i| (16..32).contains(&i))) {
        let reg = &r.ipriorityr[(intid / 4) as usize];
        let shift = (intid % 4) * 8;
        reg.set((reg.get() & !(0xff << shift)) | (KICK_PRIORITY << shift));
        enable |= 1 << intid;
    }
    r.isenabler0.set(enable);

    // CPU interface (ICC_*): system-register access at EL2 and for EL1 (SRE, DFB, DIB,
    // Enable), all priorities unmasked, EOI drops priority and deactivates, Group 1 on.
    // SAFETY: GICv3 CPU interface set-up for this pCPU, in the order IHI 0069 12.1 gives.
    unsafe {
        asm!(
            "msr icc_sre_el2, {sre}",
            "isb",
            "msr icc_pmr_el1, {pmr}",
            "msr icc_bpr1_el1, xzr",
            "msr icc_ctlr_el1, xzr",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            sre = in(reg) 0b1111u64,
            pmr = in(reg) 0xffu64,
            one = in(reg) 1u64,
            options(nostack)
        );
    }
    Ok(())
}

/// Sends SGI `intid` to the pCPU with affinity `mpidr` (ICC_SGI1R_EL1, IHI 0069 12.11.9).
pub fn send_sgi(intid: u32, mpidr: u64) {
    let aff0 = mpidr & 0xff;
    let value = (1u64 << (aff0 % 16))
        | (((mpidr >> 8) & 0xff) << 16)
        | ((intid as u64 & 0xf) << 24)
        | (((mpidr >> 16) & 0xff) << 32)
        | ((aff0 / 16) << 44)
        | (((mpidr >> 32) & 0xff) << 48);
    // SAFETY: writing ICC_SGI1R_EL1 only raises an SGI; the dsb makes earlier stores (the
    // message the target will read) visible first.
    unsafe { asm!("dsb ishst", "msr icc_sgi1r_el1, {}", "isb", in(reg) value, options(nostack)) };
}

/// Acknowledges the highest-priority pending Group 1 interrupt.
pub fn ack() -> u32 {
    let intid: u64;
    // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt; the caller EOIs it.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) intid, options(nostack)) };
    intid as u32 & 0xff_ffff
}

/// Whether a physical IRQ is pending for this pCPU (ISR_EL1.I read at EL2). Cheaper than
/// an acknowledge that finds nothing: under QEMU's TCG every ICC_* access takes the
/// emulator's global lock, ISR_EL1 does not.
pub fn irq_pending() -> bool {
    let isr: u64;
    // SAFETY: reading ISR_EL1 has no side effect.
    unsafe { asm!("mrs {}, isr_el1", out(reg) isr, options(nostack, preserves_flags)) };
    isr & (1 << 7) != 0
}

pub fn eoi(intid: u32) {
    // SAFETY: ends the interrupt this pCPU acknowledged (priority drop and deactivation).
    unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) intid as u64, options(nostack)) };
}

/// Sends the kick SGI to the pCPU with affinity `mpidr` (after a `dsb`, so what the caller
/// stored first is visible to the target's handler).
pub fn send_kick(mpidr: u64) {
    send_sgi(SGI_KICK, mpidr);
}

/// Acknowledges the highest-priority pending interrupt (ICC_IAR1_EL1).
pub fn irq_ack() -> u32 {
    ack()
}

/// Ends interrupt `intid` (priority drop and deactivation).
pub fn irq_eoi(intid: u32) {
    eoi(intid)
}
