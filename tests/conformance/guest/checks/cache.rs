//! Cache maintenance. The firmware loop (U-Boot's and EDK2's, Linux's old __flush_dcache_all):
//! clean and invalidate by set/way every data or unified cache level up to the level of
//! coherency, its geometry from CLIDR_EL1 and CCSIDR_EL1 (through CSSELR_EL1; the CCSIDR
//! layout ID_AA64MMFR2_EL1.CCIDX says), first with the MMU and caches off, then on; a
//! pattern written before must be intact after. Then by VA: DC CIVAC, DC CVAC, and DC IVAC
//! after a clean, over RAM, and DC CIVAC by VA of the UART's page, which must not abort.

use crate::exc::probe;
use crate::mmu::{self, NC_ALIAS};
use crate::report::{Verdict, note, want};
use crate::sys::{self, field, mrs, msr};
use crate::{Ctx, Group};

pub static MMU_OFF: Group = Group { name: "cache-mmu-off", rows: &["cache-setway-mmu-off"], run: run_mmu_off };
pub static GROUP: Group = Group {
    name: "cache",
    rows: &["cache-geometry", "cache-setway-mmu-on", "cache-by-va", "cache-civac-device"],
    run,
};

const WORDS: usize = 32768; // 256 KiB
#[repr(C, align(4096))]
struct Buf([u64; WORDS]);
static mut BUF: Buf = Buf([0; WORDS]);

fn buf() -> &'static mut [u64; WORDS] {
    // SAFETY: only the boot CPU uses it, one check at a time.
    unsafe { &mut (*core::ptr::addr_of_mut!(BUF)).0 }
}

fn pattern(i: usize, seed: u64) -> u64 {
    (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed
}

fn fill(seed: u64) {
    for (i, w) in buf().iter_mut().enumerate() {
        // SAFETY: a plain store; volatile so it is not elided.
        unsafe { core::ptr::write_volatile(w, pattern(i, seed)) };
    }
    sys::dsb_sy();
}

/// The first word that differs from the pattern, read at `offset` from the buffer
/// (0: through the cacheable map; NC_ALIAS: the non-cacheable alias).
fn first_bad(seed: u64, offset: u64) -> Option<(usize, u64)> {
    let base = buf().as_ptr() as u64 + offset;
    (0..WORDS).find_map(|i| {
        let v = sys::read64((base + 8 * i as u64) as usize);
        (v != pattern(i, seed)).then_some((i, v))
    })
}

/// One cache level's geometry.
#[derive(Clone, Copy, Default)]
pub struct Level {
    pub level: u32,
    pub line: u64,
    pub ways: u64,
    pub sets: u64,
    pub ccsidr: u64,
}

/// The data/unified levels up to the LoC, as the firmware loop finds them.
pub fn levels() -> ([Level; 7], usize) {
    let clidr = mrs!("clidr_el1");
    let loc = field(clidr, 24, 3) as u32;
    let ccidx = field(mrs!("s3_0_c0_c7_2"), 20, 4) != 0;
    let mut out = [Level::default(); 7];
    let mut n = 0;
    for level in 0..loc {
        let ctype = field(clidr, 3 * level, 3);
        if ctype < 2 {
            continue; // none, or instruction only
        }
        msr!("csselr_el1", (level as u64) << 1);
        sys::isb();
        let c = mrs!("ccsidr_el1");
        let (ways, sets) = if ccidx { (field(c, 3, 21) + 1, field(c, 32, 24) + 1) } else { (field(c, 3, 10) + 1, field(c, 13, 15) + 1) };
        out[n] = Level { level, line: 16 << field(c, 0, 3), ways, sets, ccsidr: c };
        n += 1;
    }
    msr!("csselr_el1", 0);
    sys::isb();
    (out, n)
}

fn log2_ceil(n: u64) -> u32 {
    if n <= 1 { 0 } else { 64 - (n - 1).leading_zeros() }
}

/// DC CISW over every set and way of every level.
fn clean_invalidate_all() -> u64 {
    let (lv, n) = levels();
    let mut ops = 0;
    for l in &lv[..n] {
        let a = log2_ceil(l.ways);
        let way_shift = 32 - a;
        let set_shift = l.line.trailing_zeros();
        for way in 0..l.ways {
            for set in 0..l.sets {
                let w = if a == 0 { 0 } else { way << way_shift };
                let v = w | (set << set_shift) | ((l.level as u64) << 1);
                // SAFETY: set/way maintenance: cleans and invalidates, loses nothing.
                unsafe { core::arch::asm!("dc cisw, {}", in(reg) v, options(nostack)) };
                ops += 1;
            }
        }
    }
    sys::dsb_sy();
    sys::isb();
    ops
}

fn run_mmu_off(ctx: &mut Ctx) {
    let mut v = Verdict::new();
    want!(v, mrs!("sctlr_el1") & 0b101 == 0, "SCTLR_EL1.M/C set at entry");
    fill(0x5a5a);
    let ops = clean_invalidate_all();
    note!(v, "{ops} DC CISW");
    if let Some((i, got)) = first_bad(0x5a5a, 0) {
        v.fail(format_args!("word {i} is {got:#x}, wrote {:#x}", pattern(i, 0x5a5a)));
    }
    ctx.row("cache-setway-mmu-off", &v);
}

fn run(ctx: &mut Ctx) {
    // The geometry: plausible for every level, with CTR_EL0.DminLine no larger than any
    // data line, and the CCSIDR fields the format leaves reserved zero.
    let mut v = Verdict::new();
    let (lv, n) = levels();
    let ccidx = field(mrs!("s3_0_c0_c7_2"), 20, 4) != 0;
    let dmin = mmu::dline();
    note!(v, "CLIDR {:#x} CCIDX {} DminLine {dmin}", mrs!("clidr_el1"), ccidx as u8);
    for l in &lv[..n] {
        note!(v, "L{} {}x{}x{}B", l.level + 1, l.sets, l.ways, l.line);
        let reserved = if ccidx { l.ccsidr & 0xff00_0000_ff00_0000 } else { l.ccsidr >> 32 };
        want!(v, reserved == 0, "L{} CCSIDR {:#x} has reserved bits set", l.level + 1, l.ccsidr);
        want!(v, l.line >= dmin, "L{} line {} < DminLine {dmin}", l.level + 1, l.line);
        want!(v, l.line * l.ways * l.sets <= 256 << 20, "L{} over 256 MiB", l.level + 1);
    }
    ctx.row("cache-geometry", &v);

    let mut v = Verdict::new();
    want!(v, mrs!("sctlr_el1") & 0b101 == 0b101, "MMU/caches not on");
    fill(0xa5a5);
    let ops = clean_invalidate_all();
    note!(v, "{ops} DC CISW");
    if let Some((i, got)) = first_bad(0xa5a5, 0) {
        v.fail(format_args!("cached word {i} is {got:#x}"));
    }
    if let Some((i, got)) = first_bad(0xa5a5, NC_ALIAS) {
        v.fail(format_args!("word {i} at the point of coherency is {got:#x}"));
    }
    ctx.row("cache-setway-mmu-on", &v);

    let mut v = Verdict::new();
    let (start, end) = (buf().as_ptr() as u64, buf().as_ptr() as u64 + 8 * WORDS as u64);
    fill(1);
    let p = probe(|| mmu::dc_range("civac", start, end));
    want!(v, p.ok(), "DC CIVAC: {p}");
    if let Some((i, got)) = first_bad(1, NC_ALIAS) {
        v.fail(format_args!("after DC CIVAC word {i} at the PoC is {got:#x}"));
    }
    if let Some((i, got)) = first_bad(1, 0) {
        v.fail(format_args!("after DC CIVAC cached word {i} is {got:#x}"));
    }
    fill(2);
    let p = probe(|| mmu::dc_range("cvac", start, end));
    want!(v, p.ok(), "DC CVAC: {p}");
    if let Some((i, got)) = first_bad(2, NC_ALIAS) {
        v.fail(format_args!("after DC CVAC word {i} at the PoC is {got:#x}"));
    }
    fill(3);
    mmu::dc_range("cvac", start, end);
    let p = probe(|| mmu::dc_range("ivac", start, end));
    want!(v, p.ok(), "DC IVAC: {p}");
    if let Some((i, got)) = first_bad(3, 0) {
        v.fail(format_args!("after DC CVAC + DC IVAC word {i} is {got:#x}"));
    }
    if v.ok {
        note!(v, "DC CIVAC, CVAC, IVAC over 256 KiB");
    }
    ctx.row("cache-by-va", &v);

    let mut v = Verdict::new();
    let p = probe(|| {
        // SAFETY: maintenance by VA of a Device page: no data moves.
        unsafe { core::arch::asm!("dc civac, {}", "dsb sy", in(reg) 0x0900_0000u64, options(nostack)) }
    });
    want!(v, p.ok(), "DC CIVAC of the UART page 0x09000000: {p}");
    ctx.row("cache-civac-device", &v);
}
