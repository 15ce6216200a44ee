//! The EL2 stage-1 MMU: identity tables built from the layout's plan, and the register
//! values that turn translation and caches on (for the primary and, via SecondaryBoot, for
//! every secondary).

use crate::mm::layout::Mapping;
use crate::mm::pagetable::{ENTRIES, MapError, PageTable, TableMemory, s1};
use crate::mm::range::Range;
use crate::mm::{PAGE_SIZE, PhysAddr};
use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, Readable};
use core::arch::asm;

/// Tables carved from a fixed pool of identity-mapped (or, before the MMU is on, physical)
/// RAM that the hypervisor owns.
pub struct PoolTables {
    pool: Range,
    next: u64,
}

impl PoolTables {
    pub fn new(pool: Range) -> Self {
        Self { pool, next: pool.start }
    }

    pub fn used(&self) -> u64 {
        self.next - self.pool.start
    }
}

impl TableMemory for PoolTables {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        if self.next + PAGE_SIZE > self.pool.end {
            return None;
        }
        let table = self.next;
        self.next += PAGE_SIZE;
        // SAFETY: the page is inside the pool the layout reserved for tables, which nothing
        // else uses, and accessible at its physical address (MMU off or identity map).
        unsafe { core::ptr::write_bytes(table as *mut u64, 0, ENTRIES) };
        Some(PhysAddr(table))
    }

    fn read(&self, table: PhysAddr, index: usize) -> u64 {
        assert!(self.pool.contains(table.0) && index < ENTRIES, "table outside the pool");
        // SAFETY: checked above: an entry of a table this pool handed out.
        unsafe { core::ptr::read_volatile((table.0 as *const u64).add(index)) }
    }

    fn write(&mut self, table: PhysAddr, index: usize, desc: u64) {
        assert!(self.pool.contains(table.0) && index < ENTRIES, "table outside the pool");
        // SAFETY: as for read.
        unsafe { core::ptr::write_volatile((table.0 as *mut u64).add(index), desc) };
    }
}

/// The MMU register values for one set of tables.
#[derive(Debug, Clone, Copy)]
pub struct MmuConfig {
    pub mair: u64,
    pub tcr: u64,
    pub ttbr0: u64,
    pub sctlr: u64,
    pub pa_bits: u32,
}

/// Physical address size from ID_AA64MMFR0_EL1.PARange, capped at 48 bits (we use 4 KiB
/// granule, 48-bit tables). Returns (bits, PS encoding).
pub fn pa_range() -> (u32, u64) {
    let parange = ID_AA64MMFR0_EL1.get() & 0xf;
    let bits = match parange {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        _ => 48,
    };
    (bits, parange.min(5))
}

/// Builds the identity map from `plan` in `tables`.
pub fn build(plan: &[Mapping], tables: &mut PoolTables) -> Result<MmuConfig, MapError> {
    let mut pt = PageTable::new(tables)?;
    for m in plan {
        pt.map(tables, m.range.start, m.range.start, m.range.size(), m.attrs)?;
    }
    let (pa_bits, ps) = pa_range();
    // TCR_EL2 (Arm ARM D19.2): T0SZ = 16 (48-bit VA), inner/outer write-back write-allocate
    // walks, inner shareable, 4 KiB granule, PS from PARange, RES1 bits 31 and 23.
    let tcr = 16 | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) | (ps << 16) | (1 << 23) | (1 << 31);
    // SCTLR_EL2: RES1 bits for the non-VHE layout, plus M, C, SA and I.
    const SCTLR_RES1: u64 =
        (1 << 4) | (1 << 5) | (1 << 11) | (1 << 16) | (1 << 18) | (1 << 22) | (1 << 23) | (1 << 28) | (1 << 29);
    let sctlr = SCTLR_RES1 | 1 | (1 << 2) | (1 << 3) | (1 << 12);
    Ok(MmuConfig { mair: s1::MAIR_VALUE, tcr, ttbr0: pt.root().0, sctlr, pa_bits })
}

unsafe extern "C" {
    fn el2_mmu_enable(mair: u64, tcr: u64, ttbr0: u64, sctlr: u64);
}

/// Turns on this pCPU's EL2 MMU and caches.
///
/// # Safety
/// The MMU must be off, and `config`'s tables must identity-map all code, stack and data
/// this pCPU uses from here on.
pub unsafe fn enable(config: &MmuConfig) {
    // SAFETY: the caller upholds the contract; el2_mmu_enable only writes EL2 MMU registers.
    unsafe { el2_mmu_enable(config.mair, config.tcr, config.ttbr0, config.sctlr) }
}

/// Walks the live tables (for tests of the map the MMU uses).
pub fn translate(config: &MmuConfig, va: u64) -> Option<(u64, u64)> {
    struct Live;
    impl TableMemory for Live {
        fn alloc_table(&mut self) -> Option<PhysAddr> {
            None
        }
        fn read(&self, table: PhysAddr, index: usize) -> u64 {
            // SAFETY: `table` comes from a descriptor of the live, identity-mapped tables.
            unsafe { core::ptr::read_volatile((table.0 as *const u64).add(index % ENTRIES)) }
        }
        fn write(&mut self, _: PhysAddr, _: usize, _: u64) {}
    }
    PageTable::from_root(PhysAddr(config.ttbr0)).translate(&Live, va)
}

/// Drops TLB entries that may translate guest-physical page `ipa` for the VM whose
/// VTTBR_EL2 value is `vttbr`, on every pCPU: its stage-2 entry, then the combined
/// stage-1+2 entries (which are tagged by virtual address, so all of the VM's go). Runs
/// with this pCPU's VTTBR_EL2 switched to the VM's for the TLBIs, which name a VMID only
/// through it; the caller has IRQs masked, so no guest entry on this pCPU sees the switch.
pub fn invalidate_ipa(vttbr: u64, ipa: u64) {
    // SAFETY: VTTBR_EL2 is put back before returning; TLB invalidation only makes later
    // walks read the tables again.
    unsafe {
        asm!(
            "mrs {saved}, vttbr_el2",
            "msr vttbr_el2, {vttbr}",
            "isb",
            "tlbi ipas2e1is, {page}",
            "dsb ish",
            "tlbi vmalle1is",
            "dsb ish",
            "msr vttbr_el2, {saved}",
            "isb",
            saved = out(reg) _,
            vttbr = in(reg) vttbr,
            page = in(reg) (ipa >> 12) & ((1 << 40) - 1),
            options(nostack, preserves_flags)
        );
    }
}
