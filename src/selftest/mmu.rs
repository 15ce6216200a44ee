//! The EL2 stage-1 map as the MMU uses it.

use super::{Ctx, check, check_eq};
use crate::arch::aarch64::exception::{probe_load, probe_store};
use crate::arch::aarch64::mmu::translate;
use crate::mm::pagetable::s1;
use crate::start::boot_info;
use aarch64_cpu::registers::{Readable, SCTLR_EL2, TCR_EL2};

const ATTR_INDX: u64 = 0b111 << 2;

pub fn run(ctx: &mut Ctx) {
    let b = boot_info();
    let l = &b.layout;
    let p = &b.platform;
    let sctlr = SCTLR_EL2.get();
    check_eq!(ctx, sctlr & 0b101, 0b101, "SCTLR_EL2: MMU and data cache on");
    check!(ctx, sctlr & (1 << 12) != 0, "SCTLR_EL2: instruction cache on");
    check_eq!(ctx, TCR_EL2.get() & 0x3f, 16, "TCR_EL2.T0SZ: 48-bit VA");

    let text = l.image.text.start + 0x100;
    match translate(&b.mmu, text) {
        Some((pa, desc)) => {
            check_eq!(ctx, pa, text, "code is identity-mapped");
            check!(ctx, desc & s1::AP_RO != 0 && desc & s1::XN == 0, "code is read-only and executable: {desc:#x}");
        }
        None => check!(ctx, false, "code is mapped"),
    }
    check!(ctx, !probe_store(text, 0), "a store to code faults");

    let boxed = alloc::boxed::Box::new(7u64);
    let heap = &*boxed as *const u64 as u64;
    match translate(&b.mmu, heap) {
        Some((pa, desc)) => {
            check_eq!(ctx, pa, heap, "heap is identity-mapped");
            check!(ctx, desc & s1::XN != 0 && desc & s1::AP_RO == 0, "heap is writable, not executable: {desc:#x}");
            check_eq!(ctx, desc & ATTR_INDX, s1::MAIR_NORMAL_IDX << 2, "heap is normal memory");
        }
        None => check!(ctx, false, "heap is mapped"),
    }
    check!(ctx, probe_store(heap, 0x1234) && probe_load(heap) == Some(0x1234), "heap store and load");

    for (name, region) in [("UART", p.uart.map(|u| u.region)), ("GIC distributor", Some(p.gic.distributor))] {
        let Some(r) = region else { continue };
        let attrs = translate(&b.mmu, r.base).map(|(_, d)| d & ATTR_INDX);
        check_eq!(ctx, attrs, Some(s1::MAIR_DEVICE_IDX << 2), "{name} is device memory");
    }

    check!(ctx, probe_load(l.image.boot_stack_guard.start).is_none(), "boot stack guard page faults");
    if crate::percpu::all().len() > 1 {
        check!(ctx, probe_load(l.stack_guard(1).start).is_none(), "pCPU 1 stack guard page faults");
    }
    let ram_end = p.memory.iter().map(|m| m.base + m.size).max().unwrap_or(0);
    check!(ctx, probe_load(ram_end).is_none(), "first address past RAM faults");
    check!(ctx, translate(&b.mmu, ram_end).is_none(), "nothing mapped past RAM");
    let dtb_magic = probe_load(p.dtb.base).map(|w| (w as u32).swap_bytes());
    check_eq!(ctx, dtb_magic, Some(0xd00d_feed), "DTB readable through the map");
}
