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
