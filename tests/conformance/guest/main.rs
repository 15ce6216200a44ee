//! The conformance guest: one arm64 Image that runs directly on QEMU virt at EL1 (QEMU's own
//! GIC, timers, PSCI and devices) and as an armvisor VM, checks what the architecture (and
//! the virt board's devices) say should happen, and prints one row per check for
//! tests/conformance/run.py, which runs it both ways and joins the rows (report.rs has the
//! protocol). No Rust runs before entry.S has relocated the image and zeroed the BSS.
//!
//! The checks come in groups (`GROUPS`, in order); `conf.from=N` in the bootargs skips the
//! groups before the N-th (the runner restarts a run that hung that way), and
//! `conf.hang=GROUP` makes that group hang (to check the runner's handling of a hang). Each group runs
//! under a recovery point: an unexpected exception ends the group with its remaining rows
//! failed, naming the exception.
#![no_std]
#![no_main]

core::arch::global_asm!(include_str!("entry.S"));

mod checks;
mod cpu;
mod exc;
mod fdt;
mod gic;
mod mmu;
mod psci;
mod report;
mod smp;
mod sys;

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use report::record;
use sys::mrs;

/// What the ID registers say, read once by the boot CPU (exception handlers use it).
#[derive(Clone, Copy)]
pub struct Feat {
    pub pan: bool,
    pub uao: bool,
    pub dit: bool,
    /// The SSBS register (FEAT_SSBS2; FEAT_SSBS alone has only the MSR-immediate form).
    pub ssbs_reg: bool,
    pub ssbs: bool,
    pub sve: bool,
    pub sme: bool,
    pub mte: bool,
}

static FEAT_BITS: AtomicU64 = AtomicU64::new(0);

pub fn feat() -> Feat {
    let b = FEAT_BITS.load(Relaxed);
    let f = |i: u32| b & (1 << i) != 0;
    Feat { pan: f(0), uao: f(1), dit: f(2), ssbs_reg: f(3), ssbs: f(4), sve: f(5), sme: f(6), mte: f(7) }
}

fn read_feat() {
    use sys::field;
    let pfr0 = mrs!("id_aa64pfr0_el1");
    let pfr1 = mrs!("s3_0_c0_c4_1");
    let mmfr1 = mrs!("id_aa64mmfr1_el1");
    let mmfr2 = mrs!("s3_0_c0_c7_2");
    let bits = [
        field(mmfr1, 20, 4) != 0,
        field(mmfr2, 4, 4) != 0,
        field(pfr0, 48, 4) != 0,
        field(pfr1, 4, 4) >= 2,
        field(pfr1, 4, 4) >= 1,
        field(pfr0, 32, 4) != 0,
        field(pfr1, 24, 4) != 0,
        field(pfr1, 8, 4) != 0,
    ];
    let v = bits.iter().enumerate().fold(0u64, |v, (i, &b)| v | ((b as u64) << i));
    FEAT_BITS.store(v, Relaxed);
}

/// FP/SIMD on, and SVE and SME not trapped at EL1 (CPACR_EL1 FPEN, ZEN, SMEN = 0b11; on a
/// core without SVE or SME their fields are RES0 and the write changes nothing): what is
/// hidden must then be UNDEFINED, not merely trapped by CPACR (the idregs group).
pub fn enable_fp_sve() {
    sys::msr!("cpacr_el1", (0b11 << 20) | (0b11 << 16) | (0b11 << 24));
    sys::isb();
}

static mut FACTS: fdt::Facts = fdt::Facts::new();

/// The device tree's facts (written once, before any other CPU runs).
pub fn facts() -> &'static fdt::Facts {
    // SAFETY: written only in primary_main before anything reads it.
    unsafe { &*core::ptr::addr_of!(FACTS) }
}

/// A group of checks: the rows it prints, and the function that prints them.
pub struct Group {
    pub name: &'static str,
    pub rows: &'static [&'static str],
    pub run: fn(&mut Ctx),
}

/// The rows of the group running, as printed.
pub struct Ctx {
    group: &'static Group,
    printed: u64,
    pub passed: u32,
    pub failed: u32,
}

impl Ctx {
    /// Prints row `name` with its verdict.
    pub fn row(&mut self, name: &str, v: &report::Verdict) {
        match self.group.rows.iter().position(|r| *r == name) {
            Some(i) => self.printed |= 1 << i,
            None => {
                record!("row {name} fail (not in the group's row list: a bug in the guest)");
                self.failed += 1;
                return;
            }
        }
        if v.ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        if v.ok {
            record!("row {name} pass {}", v.notes.as_str());
        } else {
            record!("row {name} fail {} | {}", v.fails.as_str(), v.notes.as_str());
        }
    }

    /// A row the runner decides (rtc-wallclock): `key=value` for it.
    pub fn host_row(&mut self, name: &str, args: core::fmt::Arguments<'_>) {
        if let Some(i) = self.group.rows.iter().position(|r| *r == name) {
            self.printed |= 1 << i;
        }
        record!("row {name} host {args}");
    }

    /// Every row not printed yet fails with `why`.
    fn fail_rest(&mut self, why: core::fmt::Arguments<'_>) {
        for (i, r) in self.group.rows.iter().enumerate() {
            if self.printed & (1 << i) == 0 {
                self.printed |= 1 << i;
                self.failed += 1;
                record!("row {r} fail {why}");
            }
        }
    }
}

fn run_group(g: &'static Group, passed: &mut u32, failed: &mut u32) {
    let mut line = report::Line::new();
    for r in g.rows {
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" {r}"));
    }
    record!("begin {}{}", g.name, line.as_str());
    if arg("conf.hang") == Some(g.name) {
        // The runner's own test: a group that never ends.
        loop {
            sys::irqs(false);
            sys::wfi();
        }
    }
    let mut ctx = Ctx { group: g, printed: 0, passed: 0, failed: 0 };
    let ctx_ptr = &mut ctx as *mut Ctx;
    // SAFETY: the closure is the only user of ctx while it runs; after a recovery it is
    // used again only here.
    let r = exc::guarded(|| (g.run)(unsafe { &mut *ctx_ptr }));
    checks::cleanup();
    match r {
        Ok(()) => ctx.fail_rest(format_args!("not reported by the group (a bug in the guest)")),
        Err(f) => ctx.fail_rest(format_args!("{f} in group {}", g.name)),
    }
    for (n, c) in cpu::CPUS.iter().enumerate().skip(1) {
        if c.fatal.swap(false, core::sync::atomic::Ordering::SeqCst) {
            record!("note CPU {n} stopped in group {}: {}", g.name, c.last_fault());
        }
    }
    record!("end {}", g.name);
    *passed += ctx.passed;
    *failed += ctx.failed;
}

/// The value of `key=` in the bootargs.
fn arg(key: &str) -> Option<&'static str> {
    facts().bootargs.as_str().split(' ').find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

unsafe extern "C" {
    static _image_start: u8;
    static _image_end: u8;
}

#[unsafe(no_mangle)]
extern "C" fn primary_main(dtb: u64, _load: u64) -> ! {
    sys::msr!("sctlr_el1", mmu::SCTLR_OFF);
    sys::isb();
    let Some(f) = fdt::parse(dtb as usize) else {
        record!("fatal no device tree at x0 = {dtb:#x}");
        psci::system_off();
    };
    // SAFETY: nothing else runs yet.
    unsafe { FACTS = f };
    read_feat();
    enable_fp_sve();
    gic::detect();
    let f = facts();
    record!(
        "start groups={} cpus={} gic={} ram={:#x}+{:#x} psci={} args={}",
        checks::GROUPS.len(),
        f.cpus,
        gic::version(),
        f.ram_base,
        f.ram_size,
        f.psci_method.as_str(),
        f.bootargs.as_str()
    );
    for g in checks::GROUPS {
        let mut line = report::Line::new();
        for r in g.rows {
            let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" {r}"));
        }
        record!("plan {}{}", g.name, line.as_str());
    }
    let from = arg("conf.from").and_then(|n| n.parse().ok()).unwrap_or(0);
    let (mut passed, mut failed) = (0, 0);
    // The first group runs with the MMU and caches off; the rest with them on.
    for (i, g) in checks::GROUPS.iter().enumerate() {
        if i == checks::MMU_ON_BEFORE {
            // SAFETY: only the addresses are taken.
            let image = unsafe { (&_image_start as *const u8 as u64, &_image_end as *const u8 as u64) };
            mmu::enable(f.ram_base, f.ram_size, image);
            gic::init_dist();
            if !gic::init_cpu() {
                record!("fatal no redistributor for MPIDR {:#x}", sys::mpidr());
                psci::system_off();
            }
        }
        if i >= from {
            run_group(g, &mut passed, &mut failed);
        }
    }
    record!("done {passed} {failed}");
    psci::system_off();
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if sys::cpu_index() == 0 {
        record!("fatal panic: {info}");
        psci::system_off();
    }
    loop {
        sys::wfi();
    }
}
