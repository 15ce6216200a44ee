//! The GIC as QEMU virt places it, in either version, found at boot (`detect`):
//!
//! - GICv3 (IHI 0069): distributor 0x08000000, redistributors from 0x080a0000 (RD_base +
//!   SGI_base, 0x20000 apart without VLPIs), the CPU interface through the ICC system
//!   registers. One security state (GICD_CTLR.DS = 1), everything Group 1.
//! - GICv2 (IHI 0048B): distributor 0x08000000, its registers for INTIDs 0-31 banked per CPU
//!   (each CPU sees its own SGIs' and PPIs' state), the memory-mapped CPU interface (GICC) at
//!   0x08010000, SGIs through GICD_SGIR with a CPU target list, each sender's SGI its own
//!   interrupt (GICC_IAR bits 12:10 name the source CPU). No Security Extensions seen (QEMU
//!   virt's non-secure view, an armvisor VM's), everything Group 0 as Linux leaves it.
//!
//! The functions below take the same arguments for both; `rd` (a CPU's RD_base) means
//! nothing on a GICv2, where a CPU reaches only its own bank of INTIDs 0-31.

use crate::cpu::cpu;
use crate::sys::{self, mrs, msr, read32, write32};
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

pub const GICD: usize = 0x0800_0000;
pub const GICR0: usize = 0x080a_0000;
pub const SGI_BASE: usize = 0x1_0000;

pub const GICD_CTLR: usize = 0x0;
pub const GICD_TYPER: usize = 0x4;
pub const IGROUPR: usize = 0x080;
pub const ISENABLER: usize = 0x100;
pub const ICENABLER: usize = 0x180;
pub const ISPENDR: usize = 0x200;
pub const ICPENDR: usize = 0x280;
pub const ISACTIVER: usize = 0x300;
pub const ICACTIVER: usize = 0x380;
pub const IPRIORITYR: usize = 0x400;
pub const ICFGR: usize = 0xc00;
pub const IROUTER: usize = 0x6000;
pub const ITARGETSR: usize = 0x800;
pub const GICD_SGIR: usize = 0xf00;
pub const CPENDSGIR: usize = 0xf10;
pub const SPENDSGIR: usize = 0xf20;
/// The GICv2 CPU interface and its registers.
pub const GICC: usize = 0x0801_0000;
pub const GICC_CTLR: usize = 0x0;
pub const GICC_PMR: usize = 0x4;
pub const GICC_BPR: usize = 0x8;
pub const GICC_IAR: usize = 0xc;
pub const GICC_EOIR: usize = 0x10;
const GICR_TYPER: usize = 0x8;
const GICR_WAKER: usize = 0x14;

/// Priorities: the test interrupts, and the worker doorbell (SGI 0), which must get through
/// while a test interrupt is held active.
pub const PRIO: u8 = 0xa0;
pub const PRIO_DOORBELL: u8 = 0x80;
pub const DOORBELL: u32 = 0;
pub const SPURIOUS: u32 = 1023;

static V2: AtomicBool = AtomicBool::new(false);

/// A GICv2 (else a GICv3).
pub fn v2() -> bool {
    V2.load(Relaxed)
}

pub fn version() -> u32 {
    if v2() { 2 } else { 3 }
}

/// Which GIC this is, by the boot CPU before any other use: the device tree's interrupt
/// controller, or (if it names neither) ID_AA64PFR0_EL1.GIC (0: no system registers).
pub fn detect() {
    let v2 = match crate::facts().gic {
        2 => true,
        3 => false,
        _ => sys::field(mrs!("id_aa64pfr0_el1"), 24, 4) == 0,
    };
    V2.store(v2, Relaxed);
}

fn wait_rwp(reg: usize, bit: u32) {
    for _ in 0..1_000_000 {
        if read32(reg) & (1 << bit) == 0 {
            return;
        }
    }
}

/// The distributor, once, by the boot CPU: affinity routing, Group 1 on; every SPI Group 1
/// at PRIO, disabled, not pending, not active, routed to the boot CPU.
pub fn init_dist() {
    if v2() {
        return init_dist_v2();
    }
    write32(GICD + GICD_CTLR, 1 << 4); // ARE
    wait_rwp(GICD + GICD_CTLR, 31);
    write32(GICD + GICD_CTLR, (1 << 4) | (1 << 1)); // ARE | EnableGrp1
    wait_rwp(GICD + GICD_CTLR, 31);
    let lines = ((read32(GICD + GICD_TYPER) & 0x1f) as usize + 1) * 32;
    for n in (32..lines.min(1020)).step_by(32) {
        let r = n / 32 * 4;
        write32(GICD + ICENABLER + r, !0);
        write32(GICD + ICPENDR + r, !0);
        write32(GICD + ICACTIVER + r, !0);
        write32(GICD + IGROUPR + r, !0);
    }
    for n in (32..lines.min(1020)).step_by(4) {
        write32(GICD + IPRIORITYR + n, u32::from_ne_bytes([PRIO; 4]));
    }
    let me = sys::mpidr();
    for n in 32..lines.min(1020) {
        set_route(n as u32, me);
    }
    wait_rwp(GICD + GICD_CTLR, 31);
}

/// The GICv2 distributor: off, every SPI disabled, not pending, not active, at PRIO,
/// targeting the boot CPU; on. (Group 0: IGROUPR as reset.)
fn init_dist_v2() {
    write32(GICD + GICD_CTLR, 0);
    let lines = ((read32(GICD + GICD_TYPER) & 0x1f) as usize + 1) * 32;
    for n in (32..lines.min(1020)).step_by(32) {
        let r = n / 32 * 4;
        write32(GICD + ICENABLER + r, !0);
        write32(GICD + ICPENDR + r, !0);
        write32(GICD + ICACTIVER + r, !0);
    }
    let me = my_mask_v2();
    for n in (32..lines.min(1020)).step_by(4) {
        write32(GICD + IPRIORITYR + n, u32::from_ne_bytes([PRIO; 4]));
        write32(GICD + ITARGETSR + n, u32::from_ne_bytes([me; 4]));
    }
    write32(GICD + GICD_CTLR, 1);
}

/// This CPU's CPU interface bit (GICD_ITARGETSR0-7 read it, IHI 0048B 4.3.12; zero on a
/// uniprocessor, which has only interface 0).
fn my_mask_v2() -> u8 {
    match read32(GICD + ITARGETSR) as u8 {
        0 => 1,
        m => m,
    }
}

/// A GICv2 CPU interface bit of the CPU whose MPIDR is `mpidr` (each CPU notes its own in
/// init_cpu; by Aff0 for one that has not).
pub fn mask_of(mpidr: u64) -> u8 {
    crate::cpu::CPUS
        .iter()
        .find(|c| c.gic_mask.load(Relaxed) != 0 && c.mpidr.load(Relaxed) == mpidr)
        .map_or(1 << (mpidr & 7), |c| c.gic_mask.load(Relaxed) as u8)
}

/// The SPIs the distributor has (INTID 32 up to this).
pub fn spi_end() -> u32 {
    ((read32(GICD + GICD_TYPER) & 0x1f) + 1) * 32
}

fn aff_of_typer(t: u64) -> u64 {
    let aff = t >> 32;
    ((aff >> 24) << 32) | (aff & 0xff_ffff)
}

/// The RD_base whose GICR_TYPER affinity is `mpidr`.
pub fn gicr_of(mpidr: u64) -> Option<usize> {
    let mut rd = GICR0;
    for _ in 0..64 {
        let t = sys::read64(rd + GICR_TYPER);
        if aff_of_typer(t) == mpidr {
            return Some(rd);
        }
        if t & (1 << 4) != 0 {
            return None;
        }
        rd += if t & (1 << 1) != 0 { 0x4_0000 } else { 0x2_0000 };
    }
    None
}

/// This CPU's redistributor and CPU interface: awake; SGIs and PPIs Group 1, SGI 0 at
/// PRIO_DOORBELL and the rest at PRIO; all SGIs enabled, PPIs disabled; nothing pending or
/// active; ICC_SRE_EL1.SRE, PMR 0xff, BPR1 0, Group 1 on. Returns false if no
/// redistributor has this CPU's affinity.
pub fn init_cpu() -> bool {
    if v2() {
        init_cpu_v2();
        return true;
    }
    let me = sys::mpidr();
    let Some(rd) = gicr_of(me) else { return false };
    let c = cpu();
    c.gicr.store(rd, Relaxed);
    c.mpidr.store(me, Relaxed);
    let w = read32(rd + GICR_WAKER);
    write32(rd + GICR_WAKER, w & !(1 << 1));
    for _ in 0..1_000_000 {
        if read32(rd + GICR_WAKER) & (1 << 2) == 0 {
            break;
        }
    }
    let sgi = rd + SGI_BASE;
    write32(sgi + ICENABLER, !0);
    wait_rwp(rd, 3);
    write32(sgi + ICPENDR, !0);
    write32(sgi + ICACTIVER, !0);
    write32(sgi + IGROUPR, !0);
    for n in (0..32).step_by(4) {
        write32(sgi + IPRIORITYR + n, u32::from_ne_bytes([PRIO; 4]));
    }
    set_priority(DOORBELL, PRIO_DOORBELL);
    write32(sgi + ISENABLER, 0xffff);
    cpu_interface();
    true
}

/// The GICv2 side of init_cpu: this CPU's bank of the distributor (SGIs and PPIs, their
/// per-sender SGI pending state too), its interface bit noted, the CPU interface.
fn init_cpu_v2() {
    let c = cpu();
    c.gicr.store(0, Relaxed);
    c.mpidr.store(sys::mpidr(), Relaxed);
    c.gic_mask.store(my_mask_v2() as u32, Relaxed);
    write32(GICD + ICENABLER, !0);
    write32(GICD + ICPENDR, !0);
    write32(GICD + ICACTIVER, !0);
    for n in (0..16).step_by(4) {
        write32(GICD + CPENDSGIR + n, !0);
    }
    for n in (0..32).step_by(4) {
        write32(GICD + IPRIORITYR + n, u32::from_ne_bytes([PRIO; 4]));
    }
    set_priority(DOORBELL, PRIO_DOORBELL);
    write32(GICD + ISENABLER, 0xffff);
    cpu_interface();
}

/// The priority mask (ICC_PMR_EL1, GICC_PMR).
pub fn set_pmr(v: u64) {
    if v2() {
        write32(GICC + GICC_PMR, v as u32);
        sys::dsb_sy();
    } else {
        msr!("icc_pmr_el1", v);
    }
    sys::isb();
}

/// The CPU interface alone (again after a power-down).
pub fn cpu_interface() {
    if v2() {
        // EnableGrp0, EOImode 0 (EOIR drops priority and deactivates), as Linux has it.
        write32(GICC + GICC_PMR, 0xff);
        write32(GICC + GICC_BPR, 0);
        write32(GICC + GICC_CTLR, 1);
        sys::dsb_sy();
        return;
    }
    msr!("icc_sre_el1", mrs!("icc_sre_el1") | 1);
    sys::isb();
    msr!("icc_pmr_el1", 0xff);
    msr!("icc_bpr1_el1", 0);
    msr!("icc_ctlr_el1", 0); // EOImode 0: EOIR drops priority and deactivates
    msr!("icc_igrpen1_el1", 1);
    sys::isb();
}

/// The SGI_base frame of this CPU's redistributor.
pub fn my_sgi_base() -> usize {
    if v2() { GICD } else { cpu().gicr.load(Relaxed) + SGI_BASE }
}

/// Register `reg` (a bit-array base) and the bit for `intid`: in the distributor for an
/// SPI, in `rd`'s SGI_base frame for a private one.
/// On a GICv2 always in the distributor (this CPU's bank for a private one).
pub fn bit_reg(rd: usize, reg: usize, intid: u32) -> (usize, u32) {
    if intid < 32 && !v2() { (rd + SGI_BASE + reg, 1 << intid) } else { (GICD + reg + (intid as usize / 32) * 4, 1 << (intid % 32)) }
}

/// Reads `intid`'s bit of bit-array `reg` (ISPENDR, ISACTIVER, ...), private ones in `rd`.
pub fn get_bit(rd: usize, reg: usize, intid: u32) -> bool {
    let (a, b) = bit_reg(rd, reg, intid);
    read32(a) & b != 0
}

/// Writes only `intid`'s bit of a set/clear register.
pub fn set_bit(rd: usize, reg: usize, intid: u32) {
    let (a, b) = bit_reg(rd, reg, intid);
    write32(a, b);
    sys::dsb_sy();
}

pub fn set_priority(intid: u32, prio: u8) {
    let (base, n) = if intid < 32 { (my_sgi_base(), intid as usize) } else { (GICD, intid as usize) };
    let a = base + IPRIORITYR + (n & !3);
    let shift = (n % 4) * 8;
    let v = read32(a) & !(0xff << shift) | ((prio as u32) << shift);
    write32(a, v);
}

/// An SPI's trigger: edge (true) or level.
pub fn set_edge(intid: u32, edge: bool) {
    let a = GICD + ICFGR + (intid as usize / 16) * 4;
    let shift = (intid % 16) * 2 + 1;
    let v = read32(a) & !(1 << shift) | ((edge as u32) << shift);
    write32(a, v);
}

/// An SPI to the CPU whose MPIDR is `mpidr` (GICD_IROUTER; GICD_ITARGETSR on a GICv2).
pub fn set_route(intid: u32, mpidr: u64) {
    if v2() {
        let a = GICD + ITARGETSR + (intid as usize & !3);
        let shift = (intid % 4) * 8;
        write32(a, read32(a) & !(0xff << shift) | ((mask_of(mpidr) as u32) << shift));
        return;
    }
    let aff = ((mpidr >> 32) & 0xff) << 32 | (mpidr & 0xff_ffff);
    sys::write64(GICD + IROUTER + intid as usize * 8, aff);
}

/// Sends SGI `intid` to the CPU whose MPIDR is `target` (ICC_SGI1R_EL1: Aff3.Aff2.Aff1 and
/// a target list of Aff0 0-15; on a GICv2 GICD_SGIR with its CPU interface as the target
/// list).
pub fn send_sgi(intid: u32, target: u64) {
    if v2() {
        sys::dsb_ish();
        write32(GICD + GICD_SGIR, ((mask_of(target) as u32) << 16) | (intid & 0xf));
        sys::dsb_sy();
        return;
    }
    let v = (((target >> 32) & 0xff) << 48)
        | (((target >> 16) & 0xff) << 32)
        | (((target >> 8) & 0xff) << 16)
        | ((intid as u64 & 0xf) << 24)
        | (1 << (target & 0xf));
    sys::dsb_ish();
    msr!("icc_sgi1r_el1", v);
    sys::isb();
}

/// ICC_IAR1_EL1 or GICC_IAR (acknowledges what it returns).
pub fn ack() -> u64 {
    let v = if v2() { read32(GICC + GICC_IAR) as u64 } else { mrs!("icc_iar1_el1") };
    sys::dsb_sy();
    v
}

/// The INTID of an IAR value.
pub fn intid(iar: u64) -> u32 {
    (if v2() { iar & 0x3ff } else { iar & 0xff_ffff }) as u32
}

/// The source CPU interface of an SGI's GICC_IAR value (GICv2; 0 on a GICv3).
pub fn source(iar: u64) -> u32 {
    if v2() { ((iar >> 10) & 7) as u32 } else { 0 }
}

/// EOI of what `ack` returned (the whole GICC_IAR value on a GICv2, source included).
pub fn eoi(iar: u64) {
    if v2() {
        write32(GICC + GICC_EOIR, iar as u32);
        sys::dsb_sy();
        return;
    }
    msr!("icc_eoir1_el1", iar);
    sys::isb();
}
