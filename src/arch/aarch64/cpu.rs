//! Small CPU helpers: identity, the generic counter, interrupt masking, events, caches.

use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTPCT_EL0, DAIF, ID_AA64MMFR1_EL1, MPIDR_EL1, Readable, TPIDR_EL2, Writeable,
};
use core::arch::asm;

use crate::hw::timer::ctl;
use crate::platform::MPIDR_AFFINITY_MASK;

/// This pCPU's MPIDR affinity fields.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & MPIDR_AFFINITY_MASK
}

/// Whether the CPU has FEAT_PAN (guests see the hardware's ID_AA64MMFR1_EL1.PAN).
pub fn has_pan() -> bool {
    ID_AA64MMFR1_EL1.read(ID_AA64MMFR1_EL1::PAN) != 0
}

pub fn counter() -> u64 {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTPCT_EL0.get()
}

pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get().max(1)
}

/// Counter ticks in `us` microseconds.
pub fn ticks_from_us(us: u64) -> u64 {
    counter_frequency() * us / 1_000_000
}

/// Masks IRQs; returns whether they were unmasked before.
pub fn irq_save() -> bool {
    let was_enabled = !DAIF.is_set(DAIF::I);
    // SAFETY: setting PSTATE.I only masks interrupts; no memory is touched.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack, preserves_flags)) };
    was_enabled
}

pub fn irq_restore(enabled: bool) {
    if enabled {
        irq_enable();
    }
}

pub fn irq_enable() {
    // SAFETY: unmasking IRQs is sound once VBAR_EL2 holds our vectors (set in boot.S before
    // any Rust runs); the compiler barrier keeps memory accesses on their side.
    unsafe { asm!("msr daifclr, #2", options(nostack, preserves_flags)) };
}

pub fn wfe() {
    aarch64_cpu::asm::wfe();
}

pub fn wfi() {
    aarch64_cpu::asm::wfi();
}

pub fn sev() {
    // SAFETY: dsb orders earlier stores before the event; sev only signals other pCPUs.
    unsafe { asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
}

fn dcache_line() -> u64 {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    4 << ((ctr >> 16) & 0xf)
}

/// Applies `op` to every data-cache line of `[start, end)`, then waits for completion.
fn dcache_lines(start: u64, end: u64, op: impl Fn(u64)) {
    let line = dcache_line();
    let mut a = start & !(line - 1);
    while a < end {
        op(a);
        a += line;
    }
    // SAFETY: barrier only.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Cleans `[start, end)` to the point of coherency, for a reader with its MMU off.
pub fn dcache_clean(start: u64, end: u64) {
    // SAFETY: a clean writes back dirty lines and never changes memory contents.
    dcache_lines(start, end, |a| unsafe { asm!("dc cvac, {}", in(reg) a, options(nostack, preserves_flags)) });
}

/// Cleans and invalidates `[start, end)` to the point of coherency: memory holds the data
/// and no cache line is left that a later cacheable read could take instead.
pub fn dcache_clean_invalidate(start: u64, end: u64) {
    // SAFETY: a clean and invalidate writes back dirty lines first, so no data is lost.
    dcache_lines(start, end, |a| unsafe { asm!("dc civac, {}", in(reg) a, options(nostack, preserves_flags)) });
}

/// Invalidates `[start, end)` from the data caches. Only called with the MMU off on memory
/// that was written with the MMU off (so no cache line holds newer data).
pub fn dcache_invalidate(start: u64, end: u64) {
    // SAFETY: see the function comment: no dirty line can be lost.
    dcache_lines(start, end, |a| unsafe { asm!("dc ivac, {}", in(reg) a, options(nostack, preserves_flags)) });
}

/// The outputs of this pCPU's two EL1 timers (the loaded guest's): virtual, then physical.
/// A timer asserts its interrupt while ENABLE and ISTATUS are set and IMASK is clear (Arm
/// ARM D11.2.4: the output is a level).
pub fn timer_outputs() -> (bool, bool) {
    let (v, p): (u64, u64);
    // SAFETY: reads of this pCPU's EL1 timer controls; no side effects.
    unsafe {
        asm!("mrs {}, cntv_ctl_el0", "mrs {}, cntp_ctl_el0", out(reg) v, out(reg) p, options(nostack, preserves_flags))
    };
    let asserts = |c: u64| c & (ctl::ENABLE | ctl::IMASK | ctl::ISTATUS) == ctl::ENABLE | ctl::ISTATUS;
    (asserts(v), asserts(p))
}

/// Zeroes `[start, end)` (identity-mapped RAM the caller owns) with DC ZVA where the CPU
/// allows it (one instruction per block, typically 64 bytes), with stores otherwise.
///
/// # Safety
/// The range must be normal memory the caller owns exclusively.
pub unsafe fn zero_range(start: u64, end: u64) {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack, preserves_flags)) };
    let block = 4u64 << (dczid & 0xf);
    let prohibited = dczid & (1 << 4) != 0;
    let mut a = start;
    if !prohibited {
        // Byte stores up to the first block boundary, blocks, then the tail.
        let first = start.next_multiple_of(block).min(end);
        // SAFETY: inside the caller's range.
        unsafe { core::ptr::write_bytes(a as *mut u8, 0, (first - a) as usize) };
        a = first;
        while a + block <= end {
            // SAFETY: a whole block inside the caller's range.
            unsafe { asm!("dc zva, {}", in(reg) a, options(nostack, preserves_flags)) };
            a += block;
        }
    }
    // SAFETY: the rest of the caller's range.
    unsafe { core::ptr::write_bytes(a as *mut u8, 0, (end - a) as usize) };
}

/// Copies `src` to physical address `dst` in 64-byte strides of load/store pairs, then
/// the tail. (The generic `memcpy` of this softfloat target moves 8 bytes per iteration;
/// a 32 MiB kernel took 0.25 s under TCG, this takes a fraction of that.)
///
/// # Safety
/// `[dst, dst + src.len())` must be identity-mapped normal memory the caller owns
/// exclusively, not overlapping `src`.
pub unsafe fn copy_to(dst: u64, src: &[u8]) {
    let bulk = src.len() & !63;
    if bulk > 0 {
        // SAFETY: reads `bulk` bytes of `src` and writes as many at `dst` (the caller's
        // range); unaligned pairs are allowed on normal memory.
        unsafe {
            asm!(
                "2:",
                "ldp {a}, {b}, [{s}]",
                "ldp {c}, {d}, [{s}, #16]",
                "stp {a}, {b}, [{t}]",
                "stp {c}, {d}, [{t}, #16]",
                "ldp {a}, {b}, [{s}, #32]",
                "ldp {c}, {d}, [{s}, #48]",
                "stp {a}, {b}, [{t}, #32]",
                "stp {c}, {d}, [{t}, #48]",
                "add {s}, {s}, #64",
                "add {t}, {t}, #64",
                "subs {n}, {n}, #64",
                "b.ne 2b",
                s = inout(reg) src.as_ptr() => _,
                t = inout(reg) dst => _,
                n = inout(reg) bulk => _,
                a = out(reg) _,
                b = out(reg) _,
                c = out(reg) _,
                d = out(reg) _,
                options(nostack)
            )
        };
    }
    // SAFETY: the remaining bytes, inside the same ranges.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr().add(bulk), (dst + bulk as u64) as *mut u8, src.len() - bulk) };
}

/// This pCPU's index, if its per-pCPU data is installed: TPIDR_EL2 holds index + 1 (boot.S
/// zeroes it before any Rust runs, so 0 means "not yet").
pub fn cpu_index() -> Option<usize> {
    TPIDR_EL2.get().checked_sub(1).map(|i| i as usize)
}

/// Records this pCPU's index in TPIDR_EL2.
pub fn set_cpu_index(index: usize) {
    TPIDR_EL2.set(index as u64 + 1);
}

/// Stops this pCPU for good (interrupts masked, WFE loop).
pub fn halt() -> ! {
    super::boot::halt()
}

/// The value of ID register S3_0_C0_C<crm>_<op2> (CRm 1-7); reserved encodings read 0.
pub fn read_id_reg(crm: u8, op2: u8) -> u64 {
    super::idregs::read(crm, op2)
}
