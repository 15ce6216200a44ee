//! Translation tables as portable bit math: 4 KiB granule, levels 0 to 3 (48-bit input
//! addresses), 1 GiB and 2 MiB blocks wherever input, output and size are aligned (or 4 KiB
//! pages only, when the caller asks: see [`Leaves`]). The table
//! memory comes from the caller through [`TableMemory`], so host tests run the same code over
//! a fake. Used for the hypervisor's own EL2 stage-1 map and for VMs' stage-2 tables; the
//! caller supplies the leaf attribute bits (Arm ARM D8.3, "Translation table descriptor
//! formats").
#![forbid(unsafe_code)]

use super::addr::{PAGE_SIZE, PhysAddr};

/// Entries in one 4 KiB table.
pub const ENTRIES: usize = 512;
pub const DESC_VALID: u64 = 1 << 0;
/// Bit 1 set: table descriptor at levels 0-2, page descriptor at level 3.
const DESC_TABLE_OR_PAGE: u64 = 1 << 1;
/// Output address bits [47:12].
const OA_MASK: u64 = 0x0000_ffff_ffff_f000;

/// Stage-1 leaf attributes for the EL2 translation regime (single VA range, no user access).
pub mod s1 {
    /// MAIR_EL2 slot of Normal, inner/outer write-back read/write-allocate memory.
    pub const MAIR_NORMAL_IDX: u64 = 0;
    /// MAIR_EL2 slot of Device-nGnRE memory.
    pub const MAIR_DEVICE_IDX: u64 = 1;
    /// MAIR_EL2 value matching the two slots above: Attr0 = 0xff, Attr1 = 0x04.
    pub const MAIR_VALUE: u64 = 0xff | (0x04 << 8);
    const ATTR_INDX_SHIFT: u64 = 2;
    const SH_INNER: u64 = 0b11 << 8;
    const AF: u64 = 1 << 10;
    /// Execute-never for EL2 (bit 54, "XN" in a single-range regime).
    pub const XN: u64 = 1 << 54;
    /// RAM, writable, not executable.
    pub const NORMAL: u64 = (MAIR_NORMAL_IDX << ATTR_INDX_SHIFT) | SH_INNER | AF | XN;
    /// The hypervisor image: writable and executable.
    pub const NORMAL_EXEC: u64 = (MAIR_NORMAL_IDX << ATTR_INDX_SHIFT) | SH_INNER | AF;
    /// Read-only (AP[2]).
    pub const AP_RO: u64 = 1 << 7;
    /// The hypervisor's code: read-only and executable.
    pub const NORMAL_RO_EXEC: u64 = NORMAL_EXEC | AP_RO;
    /// MMIO.
    pub const DEVICE: u64 = (MAIR_DEVICE_IDX << ATTR_INDX_SHIFT) | AF | XN;
}

/// Stage-2 leaf attributes and the VTCR_EL2 value for tables from [`PageTable`] (4 KiB
/// granule; three levels from level 1 for a 39-bit IPA space, else four from level 0).
pub mod s2 {
    /// MemAttr[3:0] = 0b1111: Normal, inner and outer write-back cacheable (Arm ARM D8.5.5);
    /// combined with the guest's own stage-1 attributes, the stricter wins.
    const MEMATTR_NORMAL_WB: u64 = 0b1111 << 2;
    /// S2AP = 0b11: read and write.
    const S2AP_RW: u64 = 0b11 << 6;
    const SH_INNER: u64 = 0b11 << 8;
    const AF: u64 = 1 << 10;
    /// Guest RAM: normal memory, read-write, executable at EL1 and EL0.
    pub const RAM: u64 = MEMATTR_NORMAL_WB | S2AP_RW | SH_INNER | AF;
    /// S2AP = 0b01: read-only (a write is a stage-2 permission fault).
    const S2AP_RO: u64 = 0b01 << 6;
    /// XN[1:0] = 0b10: not executable at EL1 or EL0.
    const XN: u64 = 0b10 << 53;
    /// A page of device register values the guest may read but not write or execute
    /// (writes exit as permission faults and are emulated).
    pub const REGISTER_PAGE: u64 = MEMATTR_NORMAL_WB | S2AP_RO | SH_INNER | AF | XN;
    /// MemAttr = 0b0001: Device-nGnRE. A device passed through to the guest (the GICv2's
    /// virtual CPU interface), read-write, never executable.
    pub const DEVICE: u64 = (0b0001 << 2) | S2AP_RW | AF | XN;

    /// The level stage-2 walks start at for `ipa_bits` of guest-physical address space:
    /// 1 for 39 bits (three levels, one descriptor fewer per walk than four), else 0.
    pub fn start_level(ipa_bits: u32) -> usize {
        if ipa_bits == 39 { 1 } else { 0 }
    }

    /// VTCR_EL2 for `ipa_bits` of guest physical address space (39, starting at level 1,
    /// or 40 to 48, starting at level 0) and the PS encoding of the machine's PARange.
    /// `None` outside that range.
    pub fn vtcr(ipa_bits: u32, ps: u64) -> Option<u64> {
        if !(39..=48).contains(&ipa_bits) {
            return None;
        }
        // T0SZ, SL0 (with 4 KiB granules 2 starts at level 0, 1 at level 1), inner/outer
        // write-back walks, inner shareable, TG0 = 4 KiB, PS, RES1 bit 31.
        let sl0 = 2 - start_level(ipa_bits) as u64;
        Some(
            (64 - ipa_bits as u64)
                | (sl0 << 6)
                | (0b01 << 8)
                | (0b01 << 10)
                | (0b11 << 12)
                | ((ps & 0b111) << 16)
                | (1 << 31),
        )
    }
}

/// Where a table's entries live: the identity-mapped RAM on target, a map of boxes in tests.
pub trait TableMemory {
    /// A new zeroed, 4 KiB-aligned table, or `None` when no frame is left.
    fn alloc_table(&mut self) -> Option<PhysAddr>;
    fn read(&self, table: PhysAddr, index: usize) -> u64;
    fn write(&mut self, table: PhysAddr, index: usize, desc: u64);

    /// Writes `count` page descriptors from `index` on: `first`, then each one page further
    /// on. `Err(i)` when entry `index + i` is valid already (the ones before it are written,
    /// it and the rest are not). Implementations may do this in one checked loop: mapping 1
    /// GiB with pages writes 262,144 descriptors.
    fn write_pages(&mut self, table: PhysAddr, index: usize, count: usize, first: u64) -> Result<(), usize> {
        for i in 0..count {
            if self.read(table, index + i) & DESC_VALID != 0 {
                return Err(i);
            }
            self.write(table, index + i, first + i as u64 * PAGE_SIZE);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// Input address, output address or size is not a multiple of 4 KiB.
    Misaligned,
    /// The range reaches past the 48-bit input address space.
    OutOfRange,
    /// No frame was left for a table.
    OutOfTables,
    /// Part of the range is already mapped (at this input address).
    AlreadyMapped(u64),
}

const fn level_shift(level: usize) -> u32 {
    12 + 9 * (3 - level as u32)
}

/// Which leaf descriptors [`PageTable::map_with`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaves {
    /// 1 GiB and 2 MiB blocks wherever input, output and size are aligned; pages elsewhere.
    Blocks,
    /// 4 KiB pages only.
    Pages,
}

/// A tree of translation tables starting at level 0 (48-bit input addresses) or, for
/// stage 2, at level 1 (39-bit input addresses: one table fewer on every walk).
#[derive(Debug, Clone, Copy)]
pub struct PageTable {
    root: PhysAddr,
    start: usize,
}

impl PageTable {
    pub fn new(mem: &mut impl TableMemory) -> Result<Self, MapError> {
        Self::new_at(mem, 0)
    }

    /// A tree whose root is a level-`start` table (0 or 1).
    pub fn new_at(mem: &mut impl TableMemory, start: usize) -> Result<Self, MapError> {
        Ok(Self { root: mem.alloc_table().ok_or(MapError::OutOfTables)?, start: start.min(1) })
    }

    /// The tree rooted at an existing level-0 table.
    pub fn from_root(root: PhysAddr) -> Self {
        Self { root, start: 0 }
    }

    /// The tree rooted at an existing level-`start` table (0 or 1).
    pub fn from_root_at(root: PhysAddr, start: usize) -> Self {
        Self { root, start: start.min(1) }
    }

    /// One past the highest input address the tree can map.
    fn input_limit(&self) -> u64 {
        1 << (level_shift(self.start) + 9)
    }

    /// The value for TTBR0_EL2 / VTTBR_EL2's base address field.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// Maps `[va, va + size)` to `[pa, pa + size)` with leaf attributes `attrs`, using the
    /// largest blocks alignment allows. Fails without overwriting an existing mapping.
    pub fn map(&mut self, mem: &mut impl TableMemory, va: u64, pa: u64, size: u64, attrs: u64) -> Result<(), MapError> {
        self.map_with(mem, va, pa, size, attrs, Leaves::Blocks)
    }

    /// As [`PageTable::map`], with the choice of leaf sizes.
    pub fn map_with(
        &mut self,
        mem: &mut impl TableMemory,
        va: u64,
        pa: u64,
        size: u64,
        attrs: u64,
        leaves: Leaves,
    ) -> Result<(), MapError> {
        let page = super::addr::PAGE_SIZE;
        if !va.is_multiple_of(page) || !pa.is_multiple_of(page) || !size.is_multiple_of(page) {
            return Err(MapError::Misaligned);
        }
        let va_end = va.checked_add(size).ok_or(MapError::OutOfRange)?;
        let pa_end = pa.checked_add(size).ok_or(MapError::OutOfRange)?;
        if va_end > self.input_limit() || pa_end > 1 << 48 {
            return Err(MapError::OutOfRange);
        }
        let first_block_level = match leaves {
            Leaves::Blocks => 1,
            Leaves::Pages => 3,
        };
        let leaf = LeafSpec { attrs: attrs & !OA_MASK & !0b11, first_block_level };
        map_level(mem, self.root, self.start, va, pa, size, leaf)
    }

    /// Walks the tables for `va`: the output address and the leaf descriptor, if mapped.
    pub fn translate(&self, mem: &impl TableMemory, va: u64) -> Option<(u64, u64)> {
        let leaf = self.leaf(mem, va)?;
        let span = (1u64 << level_shift(leaf.level)) - 1;
        Some(((leaf.desc & OA_MASK & !span) | (va & span), leaf.desc))
    }

    /// Where the page descriptor for `va` lives: its level-3 table and index, if `va` is
    /// mapped by a 4 KiB page (not a block). Tables are never freed while the tree lives,
    /// so the spot stays valid and a caller may later change just that descriptor.
    pub fn page_entry(&self, mem: &impl TableMemory, va: u64) -> Option<(PhysAddr, usize)> {
        let leaf = self.leaf(mem, va)?;
        (leaf.level == 3 && leaf.desc & DESC_TABLE_OR_PAGE != 0).then_some((leaf.table, leaf.index))
    }

    /// The valid block or page descriptor that maps `va`, and where it lives; `None` when
    /// `va` is past the tree's reach, a walk meets an invalid descriptor, or level 0 holds
    /// something other than a table.
    fn leaf(&self, mem: &impl TableMemory, va: u64) -> Option<Leaf> {
        if va >= self.input_limit() {
            return None;
        }
        let mut table = self.root;
        for level in self.start..4 {
            let index = ((va >> level_shift(level)) as usize) % ENTRIES;
            let desc = mem.read(table, index);
            if desc & DESC_VALID == 0 {
                return None;
            }
            if desc & DESC_TABLE_OR_PAGE == 0 || level == 3 {
                return (level > 0).then_some(Leaf { level, table, index, desc });
            }
            table = PhysAddr(desc & OA_MASK);
        }
        None
    }
}

/// A leaf descriptor found by [`PageTable::leaf`]: its level, table, index and value.
struct Leaf {
    level: usize,
    table: PhysAddr,
    index: usize,
    desc: u64,
}

/// What leaf descriptors [`map_level`] writes: their attribute bits, and the first level
/// at which a block may stand in for a table.
#[derive(Clone, Copy)]
struct LeafSpec {
    attrs: u64,
    first_block_level: usize,
}

fn map_level(
    mem: &mut impl TableMemory,
    table: PhysAddr,
    level: usize,
    mut va: u64,
    mut pa: u64,
    mut size: u64,
    leaf: LeafSpec,
) -> Result<(), MapError> {
    let LeafSpec { attrs, first_block_level } = leaf;
    let shift = level_shift(level);
    let block = 1u64 << shift;
    while size > 0 {
        let index = ((va >> shift) as usize) % ENTRIES;
        let desc = mem.read(table, index);
        let step;
        if level == 3 {
            let count = ((ENTRIES - index) as u64).min(size / block);
            mem.write_pages(table, index, count as usize, pa | attrs | DESC_VALID | DESC_TABLE_OR_PAGE)
                .map_err(|i| MapError::AlreadyMapped(va + i as u64 * block))?;
            step = count * block;
        } else if level >= first_block_level && va.is_multiple_of(block) && pa.is_multiple_of(block) && size >= block {
            if desc & DESC_VALID != 0 {
                return Err(MapError::AlreadyMapped(va));
            }
            mem.write(table, index, pa | attrs | DESC_VALID);
            step = block;
        } else {
            let next = if desc & DESC_VALID == 0 {
                let next = mem.alloc_table().ok_or(MapError::OutOfTables)?;
                mem.write(table, index, next.0 | DESC_VALID | DESC_TABLE_OR_PAGE);
                next
            } else if desc & DESC_TABLE_OR_PAGE != 0 {
                PhysAddr(desc & OA_MASK)
            } else {
                return Err(MapError::AlreadyMapped(va));
            };
            step = size.min(block - (va % block));
            map_level(mem, next, level + 1, va, pa, step, leaf)?;
        }
        va += step;
        pa += step;
        size -= step;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::collections::HashMap;

    /// Tables in a hash map, handed out at odd, ascending addresses; counts allocations.
    pub struct FakeMemory {
        pub tables: HashMap<u64, Box<[u64; ENTRIES]>>,
        pub next: u64,
        pub limit: usize,
    }

    impl FakeMemory {
        pub fn new(limit: usize) -> Self {
            Self { tables: HashMap::new(), next: 0x7_0000_0000, limit }
        }
    }

    impl TableMemory for FakeMemory {
        fn alloc_table(&mut self) -> Option<PhysAddr> {
            if self.tables.len() >= self.limit {
                return None;
            }
            let pa = self.next;
            self.next += 0x3000;
            self.tables.insert(pa, Box::new([0; ENTRIES]));
            Some(PhysAddr(pa))
        }
        fn read(&self, table: PhysAddr, index: usize) -> u64 {
            self.tables[&table.0][index]
        }
        fn write(&mut self, table: PhysAddr, index: usize, desc: u64) {
            self.tables.get_mut(&table.0).unwrap()[index] = desc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeMemory;
    use super::*;

    const GIB: u64 = 1 << 30;
    const MIB2: u64 = 2 << 20;

    #[test]
    fn uses_gib_blocks_when_aligned() {
        let mut mem = FakeMemory::new(16);
        let mut pt = PageTable::new(&mut mem).unwrap();
        pt.map(&mut mem, 0x4000_0000, 0x4000_0000, 2 * GIB, s1::NORMAL).unwrap();
        // Root plus one level-1 table; the two GiB are blocks.
        assert_eq!(mem.tables.len(), 2);
        let (pa, desc) = pt.translate(&mem, 0x8000_1234).unwrap();
        assert_eq!(pa, 0x8000_1234);
        assert_eq!(desc & 0b11, 0b01, "a block descriptor");
        assert_eq!(desc & s1::XN, s1::XN);
        assert!(pt.translate(&mem, 0xc000_0000).is_none());
    }

    #[test]
    fn splits_unaligned_ranges_into_2m_and_4k() {
        let mut mem = FakeMemory::new(16);
        let mut pt = PageTable::new(&mut mem).unwrap();
        // 4 KiB past a 2 MiB boundary up to 4 MiB + 8 KiB: pages, one block, pages.
        let start = 0x4020_0000 - 0x1000;
        let size = 0x1000 + MIB2 + 0x2000;
        pt.map(&mut mem, start, start + 0x1_0000_0000, size, s1::DEVICE).unwrap();
        for off in [0, 0x1000, 0x1000 + MIB2 - 1, size - 1] {
            let (pa, _) = pt.translate(&mem, start + off).unwrap();
            assert_eq!(pa, start + off + 0x1_0000_0000);
        }
        assert!(pt.translate(&mem, start - 1).is_none());
        assert!(pt.translate(&mem, start + size).is_none());
        let (_, block) = pt.translate(&mem, 0x4020_0000).unwrap();
        assert_eq!(block & 0b11, 0b01);
        let (_, page) = pt.translate(&mem, start).unwrap();
        assert_eq!(page & 0b11, 0b11);
    }

    #[test]
    fn pages_only_when_asked() {
        let mut mem = FakeMemory::new(16);
        let mut pt = PageTable::new(&mut mem).unwrap();
        pt.map_with(&mut mem, 0x4000_0000, 0x8000_0000, 2 * MIB2, s1::NORMAL, Leaves::Pages).unwrap();
        // Root, level 1, level 2 and two level-3 tables: 1024 page descriptors, no block.
        assert_eq!(mem.tables.len(), 5);
        for off in [0, 0x1000, MIB2, 2 * MIB2 - 1] {
            let (pa, desc) = pt.translate(&mem, 0x4000_0000 + off).unwrap();
            assert_eq!(pa, 0x8000_0000 + off);
            assert_eq!(desc & 0b11, 0b11, "a page descriptor");
        }
        assert!(pt.translate(&mem, 0x4000_0000 + 2 * MIB2).is_none());
    }

    /// A stage-2 tree starting at level 1 covers 512 GiB with three levels of tables.
    #[test]
    fn three_levels_from_level_one() {
        let mut mem = FakeMemory::new(16);
        let mut pt = PageTable::new_at(&mut mem, 1).unwrap();
        pt.map_with(&mut mem, 0x4000_0000, 0x8000_0000, 2 * MIB2, s2::RAM, Leaves::Pages).unwrap();
        // Root (level 1), one level-2 table, two level-3 tables: no level 0.
        assert_eq!(mem.tables.len(), 4);
        let (pa, desc) = pt.translate(&mem, 0x4000_0000 + MIB2 + 0x123).unwrap();
        assert_eq!(pa, 0x8000_0000 + MIB2 + 0x123);
        assert_eq!(desc & 0b11, 0b11, "a page descriptor");
        assert!(pt.page_entry(&mem, 0x4000_1000).is_some());
        // The last page below 512 GiB can be mapped; the next address is out of range.
        let top = (1u64 << 39) - 0x1000;
        pt.map_with(&mut mem, top, 0x1000, 0x1000, s2::RAM, Leaves::Pages).unwrap();
        assert_eq!(pt.translate(&mem, top).map(|t| t.0), Some(0x1000));
        assert_eq!(pt.map(&mut mem, 1 << 39, 0, 0x1000, s2::RAM), Err(MapError::OutOfRange));
        assert!(pt.translate(&mem, 1 << 39).is_none(), "not aliased onto index 0");
        assert!(pt.page_entry(&mem, (1 << 39) + 0x4000_1000).is_none());
        // A 1 GiB block is a level-1 descriptor here, in the root itself.
        let mut mem = FakeMemory::new(4);
        let mut pt = PageTable::new_at(&mut mem, 1).unwrap();
        pt.map(&mut mem, GIB, 2 * GIB, GIB, s2::RAM).unwrap();
        assert_eq!(mem.tables.len(), 1);
        assert_eq!(pt.translate(&mem, GIB + 5).map(|t| t.0), Some(2 * GIB + 5));
    }

    /// The register page's descriptor can be found once and then switched off and on.
    #[test]
    fn page_entry_finds_one_descriptor() {
        let mut mem = FakeMemory::new(16);
        let mut pt = PageTable::new(&mut mem).unwrap();
        pt.map(&mut mem, 0x4000_0000, 0x8000_0000, MIB2, s1::NORMAL).unwrap();
        pt.map_with(&mut mem, 0x0900_0000, 0x7000_0000, 0x1000, s2::REGISTER_PAGE, Leaves::Pages).unwrap();
        assert_eq!(pt.page_entry(&mem, 0x4000_0000), None, "inside a block");
        assert_eq!(pt.page_entry(&mem, 0x0900_1000), None, "not mapped");
        let (table, index) = pt.page_entry(&mem, 0x0900_0fff).unwrap();
        let desc = mem.read(table, index);
        assert_eq!(desc & OA_MASK, 0x7000_0000);
        assert_eq!(desc & s2::REGISTER_PAGE, s2::REGISTER_PAGE);
        mem.write(table, index, 0);
        assert!(pt.translate(&mem, 0x0900_0000).is_none(), "switched off");
        mem.write(table, index, desc);
        assert_eq!(pt.translate(&mem, 0x0900_0010).map(|t| t.0), Some(0x7000_0010), "and on again");
    }

    #[test]
    fn refuses_overlap_misalignment_and_overflow() {
        let mut mem = FakeMemory::new(16);
        let mut pt = PageTable::new(&mut mem).unwrap();
        pt.map(&mut mem, 0, 0, MIB2, s1::NORMAL).unwrap();
        assert_eq!(pt.map(&mut mem, 0x1000, 0x1000, 0x1000, s1::NORMAL), Err(MapError::AlreadyMapped(0x1000)));
        assert_eq!(pt.map(&mut mem, 0, 0, GIB, s1::NORMAL), Err(MapError::AlreadyMapped(0)));
        assert_eq!(pt.map(&mut mem, 0x800, 0, 0x1000, 0), Err(MapError::Misaligned));
        assert_eq!(pt.map(&mut mem, (1 << 48) - 0x1000, 0, 0x2000, 0), Err(MapError::OutOfRange));
        assert_eq!(pt.map(&mut mem, !0xfff, 0, 0x2000, 0), Err(MapError::OutOfRange));
    }

    #[test]
    fn reports_exhausted_tables() {
        let mut mem = FakeMemory::new(2);
        let mut pt = PageTable::new(&mut mem).unwrap();
        assert_eq!(pt.map(&mut mem, 0x1000, 0x1000, 0x1000, 0), Err(MapError::OutOfTables));
    }

    #[test]
    fn stage2_vtcr_and_attributes() {
        assert_eq!(s2::vtcr(48, 5), Some(0x8005_3590));
        assert_eq!(s2::vtcr(40, 2).map(|v| v & 0x3f), Some(24));
        // 39 bits: T0SZ 25, SL0 1 (three levels from level 1).
        assert_eq!(s2::vtcr(39, 2).map(|v| (v & 0x3f, (v >> 6) & 3)), Some((25, 1)));
        assert_eq!(s2::start_level(39), 1);
        assert_eq!(s2::start_level(40), 0);
        assert_eq!(s2::vtcr(38, 2), None);
        assert_eq!(s2::vtcr(52, 6), None);
        let mut mem = FakeMemory::new(8);
        let mut pt = PageTable::new(&mut mem).unwrap();
        pt.map(&mut mem, 0x4000_0000, 0x8020_0000, MIB2, s2::RAM).unwrap();
        let (pa, desc) = pt.translate(&mem, 0x4000_0010).unwrap();
        assert_eq!(pa, 0x8020_0010);
        assert_eq!(desc & 0x7fc, 0x7fc, "MemAttr WB, S2AP RW, inner shareable, AF");
    }

    #[test]
    fn attribute_bits_cannot_corrupt_the_output_address() {
        let mut mem = FakeMemory::new(8);
        let mut pt = PageTable::new(&mut mem).unwrap();
        pt.map(&mut mem, 0x1000, 0x5000, 0x1000, u64::MAX).unwrap();
        assert_eq!(pt.translate(&mem, 0x1000).unwrap().0, 0x5000);
    }
}
