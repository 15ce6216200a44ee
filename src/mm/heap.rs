//! The global heap and the frame allocator, both `buddy_system_allocator`, over ranges of
//! the region the hypervisor reserved for itself (see [`super::layout`]).

use super::PhysAddr;
use super::range::Range;
use crate::sync::IrqLock;
use buddy_system_allocator::{FrameAllocator, LockedHeap};

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// 4 KiB frames (lock `mm::frames`; its BTreeSet bookkeeping allocates from the heap, so
/// the order is frames, then the heap's own lock).
static FRAMES: IrqLock<FrameAllocator<32>> = IrqLock::new(FrameAllocator::new());

/// Hands `range` to the global allocator. Called once, by the primary, with the MMU on.
pub fn init_heap(range: Range) {
    // SAFETY: the range is RAM reserved for the heap by the layout: mapped, unused by
    // anything else, and never handed out twice (this runs once).
    unsafe { HEAP.lock().init(range.start as usize, range.size() as usize) };
}

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

/// Heap statistics: (bytes requested by users, bytes in the heap).
pub fn heap_stats() -> (usize, usize) {
    let h = HEAP.lock();
    (h.stats_alloc_user(), h.stats_total_bytes())
}
