//! Physical memory the hypervisor hands out: the one place a physical address becomes a
//! pointer. The types that own what was taken from the pools (`arch::pool`): a VM's RAM ([`OwnedRam`]), its
//! stage-2 table frames ([`FrameTables`]), a register page ([`RegisterPage`]), a module's
//! pages ([`ModulePages`]). Each gives back and scrubs what it owns when dropped.

use crate::mm::guest_ram::RamMap;
use crate::mm::pagetable::{DESC_VALID, ENTRIES, TableMemory};
use crate::mm::range::Range;
use crate::mm::{PAGE_SIZE, PhysAddr};
use core::arch::asm;

use crate::arch::pool::{alloc_frames, free_frames, give_back_guest_ram, take_guest_ram};

/// The bytes of `range` if it lies wholly in RAM the EL2 map covers (a multiboot module,
/// say); `None` otherwise. Nothing writes such memory while the slice lives: modules and the
/// DTB are read-only inputs.
pub fn ram_bytes(p: &crate::platform::Platform<'_>, range: Range) -> Option<&'static [u8]> {
    let in_ram = p.memory.iter().any(|m| m.range().contains_range(&range));
    let no_map = p.reserved.iter().any(|r| r.no_map && r.region.range().overlaps(&range));
    if !in_ram || no_map || range.is_empty() {
        return None;
    }
    // SAFETY: the range is RAM that the EL2 identity map covers as normal memory (all of
    // RAM except no-map regions and guard pages, which hold no modules), so it is readable.
    Some(unsafe { core::slice::from_raw_parts(range.start as *const u8, range.size() as usize) })
}

/// The disk module's bytes, writable: the virtio-blk device owns them from now on (the
/// claim is never given back: the slice lives as long as the hypervisor). `None` if the
/// range is not plain RAM or any of it is claimed already.
pub fn take_disk(p: &crate::platform::Platform<'_>, range: Range) -> Option<&'static mut [u8]> {
    ram_bytes(p, range)?;
    if !crate::arch::pool::claim(range) {
        return None;
    }
    // SAFETY: the module is RAM in our map, excluded from every free pool (the layout
    // removes modules), and the claim table makes this the only mutable reference to it:
    // its claim is never released.
    Some(unsafe { core::slice::from_raw_parts_mut(range.start as *mut u8, range.size() as usize) })
}

/// Stage-2 table memory: 4 KiB frames from the frame allocator, identity-mapped at EL2.
#[derive(Default)]
pub struct FrameTables {
    /// Frames handed out, sorted by address (every access is checked against them by
    /// binary search: a 1 GiB guest mapped with pages has over 500 tables), given back
    /// when the VM goes away.
    pub frames: alloc::vec::Vec<PhysAddr>,
    /// Where the frames come from first: RAM taken for this VM's tables
    /// ([`FrameTables::for_ram`]); then the hypervisor's frame pool.
    arena: Option<crate::arch::pool::TableArena>,
    /// The table last found in `frames` (Relaxed: only the VM's builder and the pCPU
    /// changing its stage-2 use it, and a stale value is still one of `frames`, which
    /// never shrink while the tables are in use). Mapping writes 512 entries in a row to
    /// one table, so this saves nearly every search.
    last: core::sync::atomic::AtomicU64,
}

impl FrameTables {
    fn owns(&self, table: PhysAddr, index: usize) -> bool {
        use core::sync::atomic::Ordering::Relaxed;
        if index >= ENTRIES {
            return false;
        }
        if table.0 != 0 && self.last.load(Relaxed) == table.0 {
            return true;
        }
        let found = self.frames.binary_search(&table).is_ok();
        if found {
            self.last.store(table.0, Relaxed);
        }
        found
    }
}

impl FrameTables {
    /// The tables of a VM with `ram` bytes of RAM, their frames taken from guest RAM in
    /// proportion to it; `None` when the guest pool has no block for them.
    pub fn for_ram(ram: u64) -> Option<Self> {
        let mut tables = Self::default();
        tables.arena = Some(crate::arch::pool::TableArena::take(ram)?);
        Some(tables)
    }
}

impl TableMemory for FrameTables {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let frame = self.arena.as_mut().and_then(|a| a.alloc()).or_else(|| alloc_frames(1))?;
        // SAFETY: a frame just taken from the frame allocator: ours alone, mapped as RAM.
        unsafe { core::ptr::write_bytes(frame.0 as *mut u64, 0, ENTRIES) };
        let at = self.frames.binary_search(&frame).unwrap_or_else(|at| at);
        self.frames.insert(at, frame);
        Some(frame)
    }

    fn read(&self, table: PhysAddr, index: usize) -> u64 {
        assert!(self.owns(table, index), "not one of this VM's tables");
        // SAFETY: checked above: an entry of a table frame this VM owns.
        unsafe { core::ptr::read_volatile((table.0 as *const u64).add(index)) }
    }

    fn write(&mut self, table: PhysAddr, index: usize, desc: u64) {
        assert!(self.owns(table, index), "not one of this VM's tables");
        // SAFETY: as for read.
        unsafe { core::ptr::write_volatile((table.0 as *mut u64).add(index), desc) };
    }

    /// One ownership check for the run, then a plain loop (a 1 GiB guest's 262,144 page
    /// descriptors took 30 ms under TCG entry by entry).
    fn write_pages(&mut self, table: PhysAddr, index: usize, count: usize, first: u64) -> Result<(), usize> {
        let last = index.checked_add(count).and_then(|end| end.checked_sub(1));
        assert!(
            count == 0 || last.is_some_and(|last| self.owns(table, index) && self.owns(table, last)),
            "not one of this VM's tables"
        );
        let entries = table.0 as *mut u64;
        for i in 0..count {
            // SAFETY: entries index..index + count of a table frame this VM owns (checked).
            unsafe {
                if core::ptr::read_volatile(entries.add(index + i)) & DESC_VALID != 0 {
                    return Err(i);
                }
                core::ptr::write_volatile(entries.add(index + i), first + i as u64 * PAGE_SIZE);
            }
        }
        Ok(())
    }
}

impl FrameTables {
    /// Replaces the descriptor at `index` of `table` while the tables are in use (the VM is
    /// shared, so this takes `&self`), then makes the store visible to table walks in the
    /// inner shareable domain. The caller serializes changes to one descriptor and
    /// invalidates TLBs when it removes or weakens a mapping ([`invalidate_ipa`]).
    pub fn set_entry(&self, table: PhysAddr, index: usize, desc: u64) {
        assert!(self.owns(table, index), "not one of this VM's tables");
        // SAFETY: an entry of a table frame this VM owns (checked); table walks read it
        // concurrently, which an aligned 64-bit store keeps single-copy atomic. No Rust
        // reference to table memory exists (every access is volatile through here).
        unsafe {
            core::ptr::write_volatile((table.0 as *mut u64).add(index), desc);
            asm!("dsb ishst", options(nostack, preserves_flags));
        }
    }
}

/// One 4 KiB frame of device register values that a guest reads through a read-only
/// stage-2 mapping ([`crate::mm::pagetable::s2::REGISTER_PAGE`]): written here, cleaned to
/// the point of coherency after each change (the guest reads it with its own device
/// attributes, which bypass the caches), given back on drop.
pub struct RegisterPage {
    frame: PhysAddr,
}

impl RegisterPage {
    /// A zeroed frame (every register the page does not name reads as 0).
    pub fn new() -> Option<Self> {
        let frame = alloc_frames(1)?;
        // SAFETY: a frame just taken from the frame allocator: ours alone, mapped as RAM.
        unsafe { core::ptr::write_bytes(frame.0 as *mut u8, 0, PAGE_SIZE as usize) };
        super::cpu::dcache_clean(frame.0, frame.0 + PAGE_SIZE);
        Some(Self { frame })
    }

    pub fn frame(&self) -> PhysAddr {
        self.frame
    }

    /// Stores `words` at byte `offset` (4-byte aligned; words past the page are dropped)
    /// and cleans them to the point of coherency.
    pub fn write(&self, offset: u64, words: &[u32]) {
        let offset = offset & !3;
        let room = (PAGE_SIZE.saturating_sub(offset) / 4) as usize;
        let words = &words[..words.len().min(room)];
        for (i, &w) in words.iter().enumerate() {
            // SAFETY: inside this frame (bounded above), which only this value writes; the
            // guest reads it concurrently, and each aligned 32-bit store is single-copy
            // atomic, as a register read is.
            unsafe { core::ptr::write_volatile((self.frame.0 + offset + 4 * i as u64) as *mut u32, w) };
        }
        let start = self.frame.0 + offset;
        super::cpu::dcache_clean(start, start + 4 * words.len() as u64);
    }
}

impl Drop for RegisterPage {
    fn drop(&mut self) {
        free_frames(self.frame, 1);
    }
}

impl Drop for FrameTables {
    fn drop(&mut self) {
        for f in self.frames.drain(..) {
            if !self.arena.as_ref().is_some_and(|a| a.contains(f)) {
                free_frames(f, 1);
            }
        }
        // The tables held this VM's descriptors: scrubbed before the RAM goes back.
        if let Some(arena) = self.arena.take() {
            scrub(arena.range());
            crate::arch::pool::give_back_guest_ram(arena.range());
        }
    }
}

/// RAM the hypervisor took from the free pool for one VM, and at most one module's pages
/// serving part of it ([`RamMap`]): written through here (bounds checked), scrubbed and
/// given back on drop.
pub struct OwnedRam {
    range: Range,
    map: RamMap,
    inset: Option<ModulePages>,
}

impl OwnedRam {
    /// Takes `size` bytes, 2 MiB aligned, from RAM no one else uses. The pool holds RAM
    /// the hypervisor has never written through its caches, or RAM a VM gave back, which
    /// was scrubbed then (see `Drop`): nothing of another VM or of the hypervisor is in it,
    /// and no dirty cache line can later overwrite what a guest writes with its caches off.
    /// (Scrubbing at release rather than here keeps a 1 GiB guest from waiting 7 s under
    /// TCG for memory that is already clean.)
    pub fn take(size: u64) -> Option<Self> {
        let range = take_guest_ram(size)?;
        Some(Self { range, map: RamMap::new(range), inset: None })
    }

    /// Serves offsets `[at, at + pages.size())` from `pages` from now on (before the VM
    /// runs); hands `pages` back if they do not fit (see [`RamMap::with_inset`]).
    pub fn adopt(&mut self, at: u64, pages: ModulePages) -> Result<(), ModulePages> {
        match self.map.with_inset(at, pages.range) {
            Some(map) => {
                self.map = map;
                self.inset = Some(pages);
                Ok(())
            }
            None => Err(pages),
        }
    }

    /// Where each part of the RAM is, for the stage-2 tables.
    pub fn map(&self) -> &RamMap {
        &self.map
    }

    /// Copies `bytes` to `offset`, cleans them to the point of coherency and invalidates
    /// the instruction caches. `None` if they do not fit.
    pub fn load(&mut self, offset: u64, bytes: &[u8]) -> Option<()> {
        for p in self.map.locate(offset, bytes.len() as u64)? {
            let from = (p.offset - offset) as usize;
            // SAFETY: a piece of this VM's RAM (pool RAM or adopted module pages, both
            // this value's alone), identity-mapped normal memory; the copy stays inside it.
            unsafe { super::cpu::copy_to(p.pa, &bytes[from..from + p.len as usize]) };
            super::cpu::dcache_clean(p.pa, p.pa + p.len);
        }
        // SAFETY: instruction cache invalidation has no effect on data.
        unsafe { asm!("ic ialluis", "dsb ish", "isb", options(nostack)) };
        Some(())
    }

    /// The 32-bit word at physical address `pa`, if it lies in this RAM (a guest
    /// instruction to decode).
    pub fn read_u32_at(&self, pa: u64) -> Option<u32> {
        // Pieces are page aligned, so an aligned word lies wholly in one.
        if !pa.is_multiple_of(4) || self.map.offset_of(pa).is_none() {
            return None;
        }
        // SAFETY: inside this VM's RAM (checked), aligned, identity-mapped normal memory.
        Some(unsafe { core::ptr::read_volatile(pa as *const u32) })
    }

    /// Copies guest RAM at `offset` into `buf` (device DMA); false if out of range.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> bool {
        let Some(pieces) = self.map.locate(offset, buf.len() as u64) else { return false };
        for p in pieces {
            let to = &mut buf[(p.offset - offset) as usize..][..p.len as usize];
            // SAFETY: a piece of this VM's RAM (checked by `locate`); guest RAM is plain
            // memory the guest may change concurrently, as with real DMA, which a byte copy
            // tolerates.
            unsafe { core::ptr::copy_nonoverlapping(p.pa as *const u8, to.as_mut_ptr(), to.len()) };
        }
        true
    }

    /// Copies `data` into guest RAM at `offset` (device DMA); false if out of range.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> bool {
        let Some(pieces) = self.map.locate(offset, data.len() as u64) else { return false };
        for p in pieces {
            let from = &data[(p.offset - offset) as usize..][..p.len as usize];
            // SAFETY: as for read_at; no Rust reference into guest RAM exists.
            unsafe { core::ptr::copy_nonoverlapping(from.as_ptr(), p.pa as *mut u8, from.len()) };
        }
        true
    }

    /// Reads a 64-bit word at `offset` (for tests inspecting guest memory).
    pub fn read_u64(&self, offset: u64) -> Option<u64> {
        if !offset.is_multiple_of(8) {
            return None;
        }
        let p = self.map.locate(offset, 8)?.next()?;
        // SAFETY: inside this VM's RAM (checked), aligned (pieces are page aligned), RAM.
        Some(unsafe { core::ptr::read_volatile(p.pa as *const u64) })
    }
}

impl Drop for OwnedRam {
    /// Scrubs the RAM (zeroes, cleaned to the point of coherency) before it goes back to
    /// the pool, so the next VM gets nothing of this one. Adopted pages scrub themselves.
    fn drop(&mut self) {
        scrub(self.range);
        give_back_guest_ram(self.range);
    }
}

/// Zeroes `range` and cleans it to the point of coherency.
fn scrub(range: Range) {
    // SAFETY: callers own the range exclusively until they give it away.
    unsafe { super::cpu::zero_range(range.start, range.end) };
    super::cpu::dcache_clean(range.start, range.end);
}

/// The pages of the kernel module, handed to a VM as part of its RAM so that the guest's
/// kernel runs where the bootloader put it instead of from a copy. Claimed while it lives;
/// scrubbed and the claim given back on drop, never given to a pool (modules are no pool's
/// memory).
pub struct ModulePages {
    range: Range,
}

impl ModulePages {
    pub fn range(&self) -> Range {
        self.range
    }
}

impl Drop for ModulePages {
    fn drop(&mut self) {
        scrub(self.range);
        crate::arch::pool::release(self.range);
    }
}

/// The kernel module's pages, writable and exclusively ours: `pages` as
/// [`crate::mm::layout::module_pages`] found them (holding nothing but `module`). The rest
/// of the last page is zeroed, and the whole range cleaned and invalidated to the point of
/// coherency (the guest starts with its MMU off, and a line left from our reads must not
/// later stand in for what it writes). `None` if the range is not plain RAM or was taken.
pub fn take_kernel_pages(p: &crate::platform::Platform<'_>, pages: Range, module: Range) -> Option<ModulePages> {
    ram_bytes(p, pages)?;
    if !pages.contains_range(&module) || !crate::arch::pool::claim(pages) {
        return None;
    }
    // SAFETY: the pages are RAM in our map, excluded from every free pool (the layout
    // removes modules' pages) and shared with nothing else (`module_pages`); the claim
    // makes this the only hand-out until the ModulePages is dropped. The tail past the
    // module is ours to clear.
    unsafe { super::cpu::zero_range(module.end, pages.end) };
    super::cpu::dcache_clean_invalidate(pages.start, pages.end);
    // SAFETY: instruction cache invalidation has no effect on data.
    unsafe { asm!("ic ialluis", "dsb ish", "isb", options(nostack)) };
    Some(ModulePages { range: pages })
}
