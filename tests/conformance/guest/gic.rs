//! The GICv3 (IHI 0069) as QEMU virt places it: distributor 0x08000000, redistributors from
//! 0x080a0000 (RD_base + SGI_base, 0x20000 apart without VLPIs), the CPU interface through
//! the ICC system registers. One security state (GICD_CTLR.DS = 1), everything Group 1.

use crate::cpu::cpu;
use crate::sys::{self, mrs, msr, read32, write32};
use core::sync::atomic::Ordering::Relaxed;

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
const GICR_TYPER: usize = 0x8;
const GICR_WAKER: usize = 0x14;

/// Priorities: the test interrupts, and the worker doorbell (SGI 0), which must get through
/// while a test interrupt is held active.
pub const PRIO: u8 = 0xa0;
pub const PRIO_DOORBELL: u8 = 0x80;
pub const DOORBELL: u32 = 0;
pub const SPURIOUS: u32 = 1023;

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

/// The CPU interface alone (again after a power-down).
pub fn cpu_interface() {
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
    cpu().gicr.load(Relaxed) + SGI_BASE
}

/// Register `reg` (a bit-array base) and the bit for `intid`: in the distributor for an
/// SPI, in `rd`'s SGI_base frame for a private one.
pub fn bit_reg(rd: usize, reg: usize, intid: u32) -> (usize, u32) {
    if intid < 32 { (rd + SGI_BASE + reg, 1 << intid) } else { (GICD + reg + (intid as usize / 32) * 4, 1 << (intid % 32)) }
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

pub fn set_route(intid: u32, mpidr: u64) {
    let aff = ((mpidr >> 32) & 0xff) << 32 | (mpidr & 0xff_ffff);
    sys::write64(GICD + IROUTER + intid as usize * 8, aff);
}

/// Sends SGI `intid` to the CPU whose MPIDR is `target` (ICC_SGI1R_EL1: Aff3.Aff2.Aff1 and
/// a target list of Aff0 0-15).
pub fn send_sgi(intid: u32, target: u64) {
    let v = (((target >> 32) & 0xff) << 48)
        | (((target >> 16) & 0xff) << 32)
        | (((target >> 8) & 0xff) << 16)
        | ((intid as u64 & 0xf) << 24)
        | (1 << (target & 0xf));
    sys::dsb_ish();
    msr!("icc_sgi1r_el1", v);
    sys::isb();
}

/// ICC_IAR1_EL1 (acknowledges what it returns).
pub fn ack() -> u64 {
    let v = mrs!("icc_iar1_el1");
    sys::dsb_sy();
    v
}

pub fn eoi(iar: u64) {
    msr!("icc_eoir1_el1", iar);
    sys::isb();
}
