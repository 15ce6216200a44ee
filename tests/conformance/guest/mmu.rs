//! The guest's stage 1: an identity map with 4 KiB granules and a 39-bit VA (TCR_EL1.T0SZ =
//! 25, the walk starts at level 1). 0-1 GiB (the devices, and the holes between them) is
//! Device-nGnRnE; the RAM the device tree names, in 2 MiB blocks, is Normal write-back
//! (inner shareable); and the same RAM again at RAM + NC_ALIAS as Normal non-cacheable, to
//! look at the point of coherency behind the caches. Nothing else is mapped.

use crate::sys::{self, mrs, msr};

/// VA of the non-cacheable alias: PA + NC_ALIAS.
pub const NC_ALIAS: u64 = 0x1_0000_0000;
const GIB: u64 = 1 << 30;
const MIB2: u64 = 2 << 20;

/// MAIR_EL1: attr0 Device-nGnRnE, attr1 Normal WB RW-allocate, attr2 Normal non-cacheable.
pub const MAIR: u64 = 0x00 | (0xff << 8) | (0x44 << 16);
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const ATTR_NC: u64 = 2 << 2;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 3 << 8;
const SH_OUTER: u64 = 2 << 8;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const BLOCK: u64 = 0b01;
const TABLE: u64 = 0b11;

/// SCTLR_EL1 with the MMU off: the RES1 bits of ARMv8.0 (EOS, TSCXT, EIS, SPAN, nTLSMD,
/// LSMAOE), SA, SA0, nTWI, nTWE; no alignment check, no pointer authentication, DSSBS 0.
pub const SCTLR_OFF: u64 = 0x30d0_0800 | (1 << 3) | (1 << 4) | (1 << 16) | (1 << 18);
/// And on: M, C, I.
pub const SCTLR_ON: u64 = SCTLR_OFF | 1 | (1 << 2) | (1 << 12);

#[repr(C, align(4096))]
struct Table([u64; 512]);
static mut L1: Table = Table([0; 512]);
static mut L2_RAM: Table = Table([0; 512]);
static mut L2_NC: Table = Table([0; 512]);

pub fn tcr() -> u64 {
    let pa = sys::field(mrs!("id_aa64mmfr0_el1"), 0, 4).min(5);
    25 | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) | (1 << 23) | (pa << 32)
}

pub fn ttbr0() -> u64 {
    core::ptr::addr_of!(L1) as u64
}

/// Builds the tables for RAM [base, base + size) (clipped to 1-2 GiB) and turns the MMU
/// and caches on. Called once, by the boot CPU, with the MMU off.
pub fn enable(ram_base: u64, ram_size: u64, image: (u64, u64)) {
    let start = ram_base.max(GIB);
    let end = (ram_base + ram_size).min(2 * GIB);
    // SAFETY: the tables are written once, here, before any CPU walks them.
    unsafe {
        let l1 = &mut *core::ptr::addr_of_mut!(L1);
        let l2 = &mut *core::ptr::addr_of_mut!(L2_RAM);
        let nc = &mut *core::ptr::addr_of_mut!(L2_NC);
        l1.0[0] = ATTR_DEVICE | AF | PXN | UXN | BLOCK;
        let mut pa = start & !(MIB2 - 1);
        while pa + MIB2 <= end {
            let i = ((pa - GIB) / MIB2) as usize;
            l2.0[i] = pa | ATTR_NORMAL | SH_INNER | AF | UXN | BLOCK;
            nc.0[i] = pa | ATTR_NC | SH_OUTER | AF | PXN | UXN | BLOCK;
            pa += MIB2;
        }
        l1.0[1] = core::ptr::addr_of!(L2_RAM) as u64 | TABLE;
        l1.0[((GIB + NC_ALIAS) / GIB) as usize] = core::ptr::addr_of!(L2_NC) as u64 | TABLE;
    }
    sys::dsb_sy();
    // Whatever a cache may hold of the image (tables, data, BSS written with the MMU off)
    // is stale: invalidate it to the point of coherency before caching is on.
    dc_range("ivac", image.0, image.1);
    msr!("mair_el1", MAIR);
    msr!("tcr_el1", tcr());
    msr!("ttbr0_el1", ttbr0());
    sys::isb();
    // SAFETY: TLB and instruction-cache maintenance, then the MMU on over the identity map
    // of the code that runs.
    unsafe {
        core::arch::asm!("tlbi vmalle1", "dsb nsh", "isb", options(nostack));
    }
    msr!("sctlr_el1", SCTLR_ON);
    sys::isb();
    unsafe {
        core::arch::asm!("ic iallu", "dsb nsh", "isb", options(nostack));
    }
}

/// The smallest data cache line (CTR_EL0.DminLine), in bytes.
pub fn dline() -> u64 {
    4 << sys::field(mrs!("ctr_el0"), 16, 4)
}

/// DC `op` (civac, cvac, ivac) by VA over [start, end).
pub fn dc_range(op: &str, start: u64, end: u64) {
    let line = dline();
    let mut a = start & !(line - 1);
    while a < end {
        // SAFETY: cache maintenance by VA of memory the caller names.
        unsafe {
            match op {
                "civac" => core::arch::asm!("dc civac, {}", in(reg) a, options(nostack)),
                "cvac" => core::arch::asm!("dc cvac, {}", in(reg) a, options(nostack)),
                _ => core::arch::asm!("dc ivac, {}", in(reg) a, options(nostack)),
            }
        }
        a += line;
    }
    sys::dsb_sy();
}
