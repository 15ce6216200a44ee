//! The memory layout, the heap and the frame allocator.

use super::{Ctx, check, check_eq};
use crate::arch::{alloc_frames, free_frames};
use crate::mm::PAGE_SIZE;
use crate::mm::heap::heap_stats;
use crate::start::boot_info;
use alloc::boxed::Box;
use alloc::vec::Vec;

pub fn run(ctx: &mut Ctx) {
    let b = boot_info();
    let l = &b.layout;
    let p = &b.platform;

    // Layout: ours, the DTB and the modules never overlap, and none of it is free for guests.
    let mut taken = Vec::new();
    taken.push(("image", l.image.whole));
    taken.push(("reserved", l.reserved));
    taken.push(("dtb", p.dtb.range()));
    for m in p.modules.iter() {
        taken.push(("module", m.region.range()));
    }
    for (i, (na, a)) in taken.iter().enumerate() {
        check!(ctx, !l.free.overlaps(a), "{na} {a:?} is not free RAM");
        for (nb, bb) in &taken[i + 1..] {
            check!(ctx, !a.overlaps(bb), "{na} {a:?} and {nb} {bb:?} overlap");
        }
    }
    check_eq!(ctx, l.reserved.start % (2 << 20), 0, "reserved region 2 MiB-aligned");

    // Heap.
    let (used_before, total) = heap_stats();
    check_eq!(ctx, total as u64, l.heap.size(), "heap size");
    let boxed = Box::new(0x5a5a_u64);
    let addr = &*boxed as *const u64 as u64;
    check!(ctx, l.heap.contains(addr) && *boxed == 0x5a5a, "Box lives in the heap range");
    let v: Vec<u32> = (0..100_000).collect();
    check_eq!(ctx, v.iter().map(|&x| x as u64).sum::<u64>(), 4_999_950_000u64, "100k-element Vec");
    let aligned = alloc::alloc::Layout::from_size_align(8192, 4096).unwrap();
    // SAFETY: a non-zero-size layout; freed right after with the same layout.
    let ptr = unsafe { alloc::alloc::alloc(aligned) };
    check!(ctx, !ptr.is_null() && (ptr as u64).is_multiple_of(4096), "4 KiB-aligned allocation");
    // SAFETY: allocated above with this layout.
    unsafe { alloc::alloc::dealloc(ptr, aligned) };
    drop(v);
    drop(boxed);
    check_eq!(ctx, heap_stats().0, used_before, "heap returns to its previous use");

    // Frames.
    let frames_total = l.frames.size() / PAGE_SIZE;
    let a = alloc_frames(1);
    let c = alloc_frames(1);
    check!(ctx, a.is_some_and(|a| l.frames.contains(a.0) && a.0 % PAGE_SIZE == 0), "frame inside the pool: {a:?}");
    check!(ctx, a != c, "two frames differ");
    let big = alloc_frames(64);
    check!(ctx, big.is_some_and(|f| f.0 % (256 << 10) == 0), "64 frames come 256 KiB-aligned: {big:?}");
    if let Some(f) = big {
        let words = crate::arch::aarch64::exception::probe_store(f.0 + 0x3_fff8, 0xabcd);
        check!(
            ctx,
            words && crate::arch::aarch64::exception::probe_load(f.0 + 0x3_fff8) == Some(0xabcd),
            "frames are writable RAM"
        );
        free_frames(f, 64);
    }
    for f in [a, c].into_iter().flatten() {
        free_frames(f, 1);
    }
    // Exhaustion is an answer, not a crash, and everything comes back.
    let mut all = Vec::with_capacity(frames_total as usize);
    while let Some(f) = alloc_frames(1) {
        all.push(f);
        if all.len() as u64 > frames_total {
            break;
        }
    }
    check_eq!(ctx, all.len() as u64, frames_total, "every frame can be allocated once, then None");
    for f in all.drain(..) {
        free_frames(f, 1);
    }
    let again = alloc_frames(64);
    check!(ctx, again.is_some(), "after freeing, a 256 KiB block is available again");
    if let Some(f) = again {
        free_frames(f, 64);
    }

    // The bulk copy that loads guest images: every length around its 64-byte stride, at
    // odd source and destination offsets, writes exactly the bytes asked for.
    if let Some(f) = alloc_frames(1) {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut exact = true;
        for (len, so, d) in [(0, 0, 0), (1, 1, 3), (63, 5, 1), (64, 0, 0), (65, 3, 7), (200, 9, 2), (256, 1, 1)] {
            // SAFETY: a frame of ours alone; every access stays inside its 4 KiB.
            unsafe {
                core::ptr::write_bytes(f.0 as *mut u8, 0xee, 512);
                crate::arch::aarch64::cpu::copy_to(f.0 + d, &src[so..so + len]);
                let out = core::slice::from_raw_parts(f.0 as *const u8, 512);
                exact &= out[..d as usize].iter().all(|&b| b == 0xee)
                    && out[d as usize..d as usize + len] == src[so..so + len]
                    && out[d as usize + len..].iter().all(|&b| b == 0xee);
            }
        }
        check!(ctx, exact, "copy_to: 0 to 256 bytes at odd offsets, nothing outside touched");
        free_frames(f, 1);
    }
}
