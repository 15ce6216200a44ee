//! Fake physical memory: a sparse map of 4 KiB pages, zero until written, and the same
//! ownership types the hardware implementation has (`OwnedRam`, `FrameTables`,
//! `RegisterPage`, `ModulePages`), backed by it.

use super::lock;
use crate::arch::pool::{alloc_frames, free_frames, give_back_guest_ram, take_guest_ram};
use crate::mm::guest_ram::RamMap;
use crate::mm::pagetable::{ENTRIES, TableMemory};
use crate::mm::range::Range;
use crate::mm::{PAGE_SIZE, PhysAddr};
use crate::platform::Platform;
use std::collections::BTreeMap;
use std::sync::Mutex;

type Page = Box<[u8; PAGE_SIZE as usize]>;

static MEMORY: Mutex<BTreeMap<u64, Page>> = Mutex::new(BTreeMap::new());

/// Copies physical memory at `pa` into `buf`.
pub fn read(pa: u64, buf: &mut [u8]) {
    let mem = lock(&MEMORY);
    for (i, b) in buf.iter_mut().enumerate() {
        let a = pa + i as u64;
        *b = mem.get(&(a / PAGE_SIZE)).map_or(0, |p| p[(a % PAGE_SIZE) as usize]);
    }
}

/// Copies `data` to physical memory at `pa`.
pub fn write(pa: u64, data: &[u8]) {
    let mut mem = lock(&MEMORY);
    for (i, &b) in data.iter().enumerate() {
        let a = pa + i as u64;
        mem.entry(a / PAGE_SIZE).or_insert_with(|| Box::new([0; PAGE_SIZE as usize]))[(a % PAGE_SIZE) as usize] = b;
    }
}

pub fn read_u64(pa: u64) -> u64 {
    let mut b = [0; 8];
    read(pa, &mut b);
    u64::from_le_bytes(b)
}

pub fn write_u64(pa: u64, value: u64) {
    write(pa, &value.to_le_bytes());
}

/// Zeroes `range` (page-aligned ranges drop their pages).
pub fn zero(range: Range) {
    let mut mem = lock(&MEMORY);
    let first = range.start.div_ceil(PAGE_SIZE);
    let last = range.end / PAGE_SIZE;
    let whole: Vec<u64> = mem.range(first..last.max(first)).map(|(k, _)| *k).collect();
    for k in whole {
        mem.remove(&k);
    }
    drop(mem);
    let head_end = (first * PAGE_SIZE).min(range.end);
    write(range.start, &vec![0; (head_end - range.start) as usize]);
    let tail_start = (last * PAGE_SIZE).max(head_end);
    if tail_start < range.end {
        write(tail_start, &vec![0; (range.end - tail_start) as usize]);
    }
}

fn in_ram(p: &Platform<'_>, range: Range) -> bool {
    p.memory.iter().any(|m| m.range().contains_range(&range))
        && !p.reserved.iter().any(|r| r.no_map && r.region.range().overlaps(&range))
        && !range.is_empty()
}

/// A copy of the bytes of `range` if it lies in the platform's RAM (the fake hands out
/// copies: its memory is not one slice).
pub fn ram_bytes(p: &Platform<'_>, range: Range) -> Option<&'static [u8]> {
    if !in_ram(p, range) {
        return None;
    }
    let mut buf = vec![0; range.size() as usize];
    read(range.start, &mut buf);
    Some(Box::leak(buf.into_boxed_slice()))
}

use crate::arch::pool::claim as take_once;

/// The disk module's bytes, writable, once (a copy; the device owns it).
pub fn take_disk(p: &Platform<'_>, range: Range) -> Option<&'static mut [u8]> {
    if !in_ram(p, range) || !take_once(range) {
        return None;
    }
    let mut buf = vec![0; range.size() as usize];
    read(range.start, &mut buf);
    Some(Box::leak(buf.into_boxed_slice()))
}

/// A VM's stage-2 table frames, in fake physical memory.
#[derive(Default)]
pub struct FrameTables {
    pub frames: Vec<PhysAddr>,
    /// Where the frames come from first (see the hardware implementation's).
    arena: Option<crate::arch::pool::TableArena>,
}

impl FrameTables {
    fn owns(&self, table: PhysAddr, index: usize) -> bool {
        index < ENTRIES && self.frames.binary_search(&table).is_ok()
    }

    pub fn set_entry(&self, table: PhysAddr, index: usize, desc: u64) {
        assert!(self.owns(table, index), "not one of this VM's tables");
        write_u64(table.0 + 8 * index as u64, desc);
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
        zero(Range { start: frame.0, end: frame.0 + PAGE_SIZE });
        let at = self.frames.binary_search(&frame).unwrap_or_else(|at| at);
        self.frames.insert(at, frame);
        Some(frame)
    }

    fn read(&self, table: PhysAddr, index: usize) -> u64 {
        assert!(self.owns(table, index), "not one of this VM's tables");
        read_u64(table.0 + 8 * index as u64)
    }

    fn write(&mut self, table: PhysAddr, index: usize, desc: u64) {
        self.set_entry(table, index, desc);
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
            zero(arena.range());
            crate::arch::pool::give_back_guest_ram(arena.range());
        }
    }
}

/// A frame of register values a guest reads through a read-only stage-2 mapping.
pub struct RegisterPage {
    frame: PhysAddr,
}

impl RegisterPage {
    pub fn new() -> Option<Self> {
        let frame = alloc_frames(1)?;
        zero(Range { start: frame.0, end: frame.0 + PAGE_SIZE });
        Some(Self { frame })
    }

    pub fn frame(&self) -> PhysAddr {
        self.frame
    }

    pub fn write(&self, offset: u64, words: &[u32]) {
        let offset = offset & !3;
        let room = (PAGE_SIZE.saturating_sub(offset) / 4) as usize;
        for (i, w) in words.iter().take(room).enumerate() {
            write(self.frame.0 + offset + 4 * i as u64, &w.to_le_bytes());
        }
    }
}

impl Drop for RegisterPage {
    fn drop(&mut self) {
        free_frames(self.frame, 1);
    }
}

/// A VM's RAM: taken from the pool, zeroed and given back on drop.
pub struct OwnedRam {
    range: Range,
    map: RamMap,
    inset: Option<ModulePages>,
}

impl OwnedRam {
    pub fn take(size: u64) -> Option<Self> {
        let range = take_guest_ram(size)?;
        Some(Self { range, map: RamMap::new(range), inset: None })
    }

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

    pub fn map(&self) -> &RamMap {
        &self.map
    }

    pub fn load(&mut self, offset: u64, bytes: &[u8]) -> Option<()> {
        self.write_at(offset, bytes).then_some(())
    }

    pub fn read_u32_at(&self, pa: u64) -> Option<u32> {
        if !pa.is_multiple_of(4) || self.map.offset_of(pa).is_none() {
            return None;
        }
        let mut b = [0; 4];
        read(pa, &mut b);
        Some(u32::from_le_bytes(b))
    }

    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> bool {
        let Some(pieces) = self.map.locate(offset, buf.len() as u64) else { return false };
        for p in pieces {
            read(p.pa, &mut buf[(p.offset - offset) as usize..][..p.len as usize]);
        }
        true
    }

    pub fn write_at(&self, offset: u64, data: &[u8]) -> bool {
        let Some(pieces) = self.map.locate(offset, data.len() as u64) else { return false };
        for p in pieces {
            write(p.pa, &data[(p.offset - offset) as usize..][..p.len as usize]);
        }
        true
    }

    pub fn read_u64(&self, offset: u64) -> Option<u64> {
        let mut b = [0; 8];
        (offset.is_multiple_of(8) && self.read_at(offset, &mut b)).then(|| u64::from_le_bytes(b))
    }
}

impl Drop for OwnedRam {
    fn drop(&mut self) {
        zero(self.range);
        give_back_guest_ram(self.range);
    }
}

/// The kernel module's pages, serving part of a VM's RAM; zeroed on drop.
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
        zero(self.range);
        crate::arch::pool::release(self.range);
    }
}

/// The kernel module's pages, once; the rest of the last page zeroed.
pub fn take_kernel_pages(p: &Platform<'_>, pages: Range, module: Range) -> Option<ModulePages> {
    if !in_ram(p, pages) || !pages.contains_range(&module) || !take_once(pages) {
        return None;
    }
    zero(Range { start: module.end, end: pages.end });
    Some(ModulePages { range: pages })
}
