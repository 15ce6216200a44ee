//! The in-QEMU self-tests (the `selftest` build flavour): suites that run at EL2 on the
//! real machine after boot, one report line per suite and a closing `N passed, N failed`
//! line, then a semihosting exit with status 0 only if every check passed.
//!
//! Expectations come from the DTB and, under `make run`, from `/chosen/bootargs`
//! (`selftest.cpus=`, `selftest.mem=`, `selftest.module=`, `selftest.gic=`), so one binary serves every
//! machine shape.

mod dtb;
mod guests;
mod mm;
mod mmu;
mod smp;

use crate::arch::aarch64::{boot, semihosting};
use crate::println;
use core::fmt;

/// Counts checks, per suite and in total. A suite function may split its checks into
/// several named suites with [`Ctx::section`] (one guest run, several things proven).
pub struct Ctx {
    name: &'static str,
    passed: u32,
    failed: u32,
    total_passed: u32,
    total_failed: u32,
    total_skipped: u32,
}

impl Ctx {
    pub fn check(&mut self, ok: bool, file: &str, line: u32, what: fmt::Arguments<'_>) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            println!("  FAIL {file}:{line}: {what}");
        }
    }

    /// The current suite does not apply on this machine: says why, on its own line, and
    /// counts as skipped (not passed).
    pub fn skip(&mut self, why: fmt::Arguments<'_>) {
        println!("suite {}: skipped ({why})", self.name);
        self.total_skipped += 1;
    }

    /// Ends the current suite's report line and starts the suite `name`.
    pub fn section(&mut self, name: &'static str) {
        self.flush();
        self.name = name;
    }

    fn flush(&mut self) {
        let total = self.passed + self.failed;
        if total == 0 {
            return;
        }
        if self.failed == 0 {
            println!("suite {}: ok ({} checks)", self.name, total);
        } else {
            println!("suite {}: FAILED ({} of {} checks)", self.name, self.failed, total);
        }
        self.total_passed += self.passed;
        self.total_failed += self.failed;
        self.passed = 0;
        self.failed = 0;
    }
}

/// `check!(ctx, condition, "what, with {} args", ...)`.
macro_rules! check {
    ($ctx:expr, $cond:expr, $($what:tt)+) => {
        $ctx.check($cond, file!(), line!(), format_args!($($what)+))
    };
}
pub(crate) use check;

/// `check_eq!(ctx, left, right, "what")`: reports both values on failure.
macro_rules! check_eq {
    ($ctx:expr, $left:expr, $right:expr, $($what:tt)+) => {{
        let (l, r) = (&$left, &$right);
        $ctx.check(l == r, file!(), line!(), format_args!("{}: {:?} != {:?}", format_args!($($what)+), l, r))
    }};
}
pub(crate) use check_eq;

/// What `/chosen/bootargs` says the machine should look like.
#[derive(Debug, Default, Clone, Copy)]
pub struct Expect {
    pub cpus: Option<usize>,
    pub mem: Option<u64>,
    pub module: Option<u64>,
    /// The GIC version the machine has (2 or 3).
    pub gic: Option<u64>,
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, mul) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    parse_u64(num)?.checked_mul(mul)
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

pub fn expectations() -> Expect {
    let mut e = Expect::default();
    let args = crate::start::platform().and_then(|p| p.bootargs).unwrap_or("");
    for word in args.split_ascii_whitespace() {
        if let Some(v) = word.strip_prefix("selftest.cpus=") {
            e.cpus = parse_u64(v).map(|n| n as usize);
        } else if let Some(v) = word.strip_prefix("selftest.mem=") {
            e.mem = parse_size(v);
        } else if let Some(v) = word.strip_prefix("selftest.gic=") {
            e.gic = parse_u64(v);
        } else if let Some(v) = word.strip_prefix("selftest.module=") {
            e.module = parse_u64(v);
        }
    }
    e
}

struct Suite {
    name: &'static str,
    run: fn(&mut Ctx),
}

#[cfg(feature = "selftest-fail")]
fn forced_failure(ctx: &mut Ctx) {
    check!(ctx, 1 + 1 == 3, "a deliberately false assertion (selftest-fail build)");
}

const SUITES: &[Suite] = &[
    Suite { name: "dtb", run: dtb::run },
    Suite { name: "mm", run: mm::run },
    Suite { name: "mmu", run: mmu::run },
    Suite { name: "smp", run: smp::run },
    Suite { name: "guest-hvc-smc", run: guests::run },
    Suite { name: "guest-psci", run: guests::run_smp },
    Suite { name: "guest-mmio", run: guests::run_mmio },
    Suite { name: "guest-sgi", run: guests::run_gic },
    Suite { name: "guest-fp", run: guests::run_cpu },
    Suite { name: "guest-debug", run: guests::run_debug },
    Suite { name: "guest-uart", run: guests::run_uart },
    Suite { name: "guest-stage1", run: guests::run_walk },
    Suite { name: "guest-cache", run: guests::run_cache },
    Suite { name: "guest-suspend", run: guests::run_suspend },
    Suite { name: "guest-placement", run: guests::run_placed },
    Suite { name: "guest-switch", run: guests::run_switch },
    Suite { name: "kernel-in-place", run: guests::run_in_place },
    #[cfg(feature = "selftest-fail")]
    Suite { name: "forced-failure", run: forced_failure },
];

/// `selftest.panic` in the bootargs: a pCPU other than the boot one panics, to show the
/// panic path (message with location and pCPU, the others stopped, QEMU exit status 1).
fn deliberate_panic() {
    panic!("deliberate panic requested with selftest.panic");
}

pub fn run() -> ! {
    let args = crate::start::platform().and_then(|p| p.bootargs).unwrap_or("");
    if args.split_ascii_whitespace().any(|w| w == "selftest.panic") {
        match crate::percpu::get(crate::percpu::CpuId(1)) {
            Some(cpu) => {
                crate::percpu::post(cpu.id, deliberate_panic);
                // The panicking pCPU stops this one with its kick and exits QEMU.
                loop {
                    crate::arch::aarch64::cpu::irq_enable();
                    crate::arch::aarch64::cpu::wfi();
                }
            }
            None => deliberate_panic(),
        }
    }
    let expect = expectations();
    log::info!("self-test: {} suites, expecting {:?}", SUITES.len(), expect);
    let mut ctx = Ctx { name: "", passed: 0, failed: 0, total_passed: 0, total_failed: 0, total_skipped: 0 };
    for suite in SUITES {
        ctx.section(suite.name);
        (suite.run)(&mut ctx);
    }
    ctx.flush();
    let (passed, failed, skipped) = (ctx.total_passed, ctx.total_failed, ctx.total_skipped);
    println!("selftest: {passed} passed, {failed} failed, {skipped} skipped");
    semihosting::exit(if failed == 0 && passed > 0 { 0 } else { 1 });
    println!("selftest: no semihosting to report the result; halting");
    boot::halt()
}
