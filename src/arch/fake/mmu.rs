//! Fake stage 2: the walk a fake guest's loads and stores take through the VM's real tables,
//! and a TLB that needs no invalidation (the invalidations are logged).

use super::vcpu::Config;
use super::{Event, record};
use crate::mm::PhysAddr;
use crate::mm::pagetable::{PageTable, TableMemory};

/// 40-bit physical addresses (PARange 2).
pub fn pa_range() -> (u32, u64) {
    (40, 2)
}

pub fn invalidate_ipa(vttbr: u64, ipa: u64) {
    record(Event::InvalidateIpa { vttbr, ipa });
}

/// Table memory read straight from fake physical memory (for walks).
struct Walk;

impl TableMemory for Walk {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        None
    }
    fn read(&self, table: PhysAddr, index: usize) -> u64 {
        super::phys::read_u64(table.0 + 8 * index as u64)
    }
    fn write(&mut self, _: PhysAddr, _: usize, _: u64) {}
}

/// S2AP (stage-2 descriptor bits 7:6): bit 6 allows reads, bit 7 writes.
pub const S2AP_READ: u64 = 1 << 6;
pub const S2AP_WRITE: u64 = 1 << 7;

/// The stage-2 translation of `ipa` under `config`: the physical address and the leaf
/// descriptor, if mapped.
pub fn stage2(config: &Config, ipa: u64) -> Option<(u64, u64)> {
    let root = config.vttbr & 0x0000_ffff_ffff_f000;
    // VTCR_EL2.SL0 with a 4 KiB granule: 0 starts at level 2, 1 at level 1, 2 at level 0.
    let start = match (config.vtcr >> 6) & 3 {
        2 => 0,
        _ => 1,
    };
    PageTable::from_root_at(PhysAddr(root), start).translate(&Walk, ipa)
}
