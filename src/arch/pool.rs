//! The physical memory pools, shared by both arch implementations: 4 KiB frames (stage-2
//! tables, register pages) and 2 MiB-aligned RAM free for guests. Plain bookkeeping over
//! addresses; the types that own what is taken (`phys::OwnedRam`, `phys::FrameTables`, ...)
//! are each implementation's own.
#![forbid(unsafe_code)]

use super::IrqLock;
use crate::mm::PhysAddr;
use crate::mm::layout::MAX_FREE_RANGES;
use crate::mm::range::{Range, RangeSet};
use buddy_system_allocator::FrameAllocator;

/// 4 KiB frames (lock `arch::pool::FRAMES`; its BTreeSet bookkeeping allocates from the heap, so
/// the order is frames, then the heap's own lock).
static FRAMES: IrqLock<FrameAllocator<32>> = IrqLock::new(FrameAllocator::new());

/// Hands `range` to the frame pool. Called once, by the primary, with the MMU on.
pub fn init_frames(range: Range) {
    FRAMES.lock().add_frame((range.start >> 12) as usize, (range.end >> 12) as usize);
}

/// `count` contiguous frames, aligned to the next power of two of `count`; `None` when none
/// are left.
pub fn alloc_frames(count: usize) -> Option<PhysAddr> {
    FRAMES.lock().alloc(count).map(|f| PhysAddr((f as u64) << 12))
}

/// Returns frames from [`alloc_frames`].
pub fn free_frames(pa: PhysAddr, count: usize) {
    FRAMES.lock().dealloc((pa.0 >> 12) as usize, count);
}

/// Bytes of stage-2 tables a VM with `ram` bytes of RAM at most needs, in the guest pool's
/// 2 MiB granules: RAM mapped with 4 KiB pages under a three-level walk (39-bit IPA) takes
/// the root, a level-2 table per GiB it touches (one more for the device window below
/// 1 GiB), a level-3 table per 2 MiB, and a few for the device pages (the UART's register
/// page, a GICv2's GICV) and for RAM not aligned to a GiB.
pub fn stage2_table_bytes(ram: u64) -> u64 {
    const SPARE: u64 = 8;
    let tables = (1 + 2 + SPARE) + ram.div_ceil(1 << 30) + ram.div_ceil(2 << 20);
    tables.saturating_mul(crate::mm::PAGE_SIZE).checked_next_multiple_of(2 << 20).unwrap_or(u64::MAX)
}

/// One VM's stage-2 table frames: guest RAM taken for them alone ([`stage2_table_bytes`]
/// of the VM's RAM), handed out in order. What a VM costs the board in tables is then in
/// proportion to its RAM, and the hypervisor's own frame pool stays small. The owner
/// scrubs the range and gives it back ([`give_back_guest_ram`]) when the VM goes away.
pub struct TableArena {
    range: Range,
    next: u64,
}

impl TableArena {
    /// The arena for a VM of `ram` bytes; `None` when the guest pool has no such block.
    pub fn take(ram: u64) -> Option<Self> {
        let range = take_guest_ram(stage2_table_bytes(ram))?;
        Some(Self { range, next: range.start })
    }

    /// The next frame (not zeroed); `None` when all are handed out.
    pub fn alloc(&mut self) -> Option<PhysAddr> {
        let frame = self.next;
        if frame.checked_add(crate::mm::PAGE_SIZE)? > self.range.end {
            return None;
        }
        self.next = frame + crate::mm::PAGE_SIZE;
        Some(PhysAddr(frame))
    }

    /// Whether `frame` came from this arena.
    pub fn contains(&self, frame: PhysAddr) -> bool {
        self.range.contains(frame.0)
    }

    /// All of it, handed out or not.
    pub fn range(&self) -> Range {
        self.range
    }
}

/// RAM free for guests (lock `arch::pool::GUEST_RAM`, a leaf), filled from the layout at boot.
static GUEST_RAM: IrqLock<Option<RangeSet<MAX_FREE_RANGES>>> = IrqLock::new(None);

pub fn init_guest_ram(free: &RangeSet<MAX_FREE_RANGES>) {
    *GUEST_RAM.lock() = Some(*free);
}

/// `size` bytes (rounded up to 2 MiB), 2 MiB aligned, removed from the free pool.
pub fn take_guest_ram(size: u64) -> Option<Range> {
    let size = size.checked_next_multiple_of(2 << 20)?;
    let mut guard = GUEST_RAM.lock();
    let free = guard.as_mut()?;
    // 1 GiB alignment where it fits lets stage 2 use 1 GiB blocks (shorter walks).
    let r = free.find_free(size, 1 << 30, 0).or_else(|| free.find_free(size, 2 << 20, 0))?;
    free.remove(r).ok()?;
    Some(r)
}

pub fn give_back_guest_ram(r: Range) {
    if GUEST_RAM.lock().as_mut().is_none_or(|free| free.insert(r).is_err()) {
        log::warn!("guest RAM {r:?} not returned: free list too fragmented");
    }
}

/// Size of the largest free block of guest RAM.
pub fn largest_guest_ram() -> u64 {
    GUEST_RAM.lock().as_ref().map_or(0, |free| free.ranges().iter().map(|r| r.size()).max().unwrap_or(0))
}

/// Module memory handed out for writing (a disk's bytes, a kernel's pages), by range (lock
/// `arch::pool::CLAIMS`, a leaf): each range at most once at a time, so at most one
/// mutable view of it exists. Not a one-shot flag: a range given back can be taken again.
static CLAIMS: IrqLock<[Option<Range>; CLAIM_SLOTS]> = IrqLock::new([None; CLAIM_SLOTS]);
/// Module ranges that can be held at once (the DTB has at most `platform::MAX_MODULES`).
const CLAIM_SLOTS: usize = 2 * crate::platform::MAX_MODULES;

/// Takes `range` for exclusive use; `false` if any of it is taken already (or the table is
/// full, which would take more modules than a DTB has).
pub fn claim(range: Range) -> bool {
    let mut claims = CLAIMS.lock();
    if claims.iter().flatten().any(|c| c.overlaps(&range)) {
        return false;
    }
    match claims.iter_mut().find(|c| c.is_none()) {
        Some(slot) => {
            *slot = Some(range);
            true
        }
        None => false,
    }
}

/// Gives back a range [`claim`] handed out.
pub fn release(range: Range) {
    if let Some(slot) = CLAIMS.lock().iter_mut().find(|c| **c == Some(range)) {
        *slot = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_claimed_once_until_given_back() {
        let r = Range { start: 0x7_0000_0000, end: 0x7_0000_2000 };
        assert!(claim(r));
        assert!(!claim(r), "claimed twice");
        assert!(!claim(Range { start: 0x7_0000_1000, end: 0x7_0000_3000 }), "overlapping");
        assert!(claim(Range { start: 0x7_0000_2000, end: 0x7_0000_3000 }), "adjacent is another range");
        release(r);
        assert!(claim(r), "claimed again after it was given back");
        release(r);
        release(Range { start: 0x7_0000_2000, end: 0x7_0000_3000 });
    }
}
