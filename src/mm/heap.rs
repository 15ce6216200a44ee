//! The global heap (`buddy_system_allocator`) over the range of the region the hypervisor
//! reserved for itself (see [`super::layout`]). The frame and guest-RAM pools are physical
//! memory, owned by the arch layer (`arch::phys`).

use super::range::Range;
use buddy_system_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Hands `range` to the global allocator. Called once, by the primary, with the MMU on.
pub fn init_heap(range: Range) {
    // SAFETY: the range is RAM reserved for the heap by the layout: mapped, unused by
    // anything else, and never handed out twice (this runs once).
    unsafe { HEAP.lock().init(range.start as usize, range.size() as usize) };
}

/// Heap statistics: (bytes requested by users, bytes in the heap).
pub fn heap_stats() -> (usize, usize) {
    let h = HEAP.lock();
    (h.stats_alloc_user(), h.stats_total_bytes())
}
