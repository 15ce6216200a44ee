//! Every pCPU: bring-up, per-pCPU data, a shared lock, and SGIs between every pair.

use super::{Ctx, check, check_eq, expectations};
use crate::arch::aarch64::cpu;
use crate::percpu;
use crate::platform::MAX_CPUS;
use crate::sched::{self, Message};
use crate::sync::IrqLock;
use core::sync::atomic::{AtomicU64, Ordering};

/// What each pCPU saw of itself (written by its job, read after all jobs completed).
static SEEN_TPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static SEEN_MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];
static SEEN_SP: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn report_in() {
    let me = percpu::this_cpu();
    let sp: u64;
    // SAFETY: reads the stack pointer into a register.
    unsafe { core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack)) };
    SEEN_TPIDR[me.id.0].store(crate::arch::cpu_index().map_or(u64::MAX, |i| i as u64), Ordering::Relaxed);
    SEEN_MPIDR[me.id.0].store(cpu::mpidr(), Ordering::Relaxed);
    SEEN_SP[me.id.0].store(sp, Ordering::Relaxed);
}

const INCREMENTS: u64 = 100_000;
static COUNTER: IrqLock<u64> = IrqLock::new(0);

fn hammer_lock() {
    for _ in 0..INCREMENTS {
        let mut c = COUNTER.lock();
        // A plain read-modify-write: only the lock makes it exact.
        let v = *c;
        *c = v + 1;
    }
}

/// Pings every other pCPU once and waits (bounded) for all the pongs.
fn ping_everyone() {
    let me = percpu::this_cpu();
    for other in percpu::all().iter().filter(|c| c.id != me.id) {
        if let Err((e, _)) = sched::send(other.id, Message::Ping { from: me.id }) {
            log::error!("ping to pCPU {}: {e:?}", other.id.0);
        }
    }
    let deadline = cpu::counter() + cpu::ticks_from_us(5_000_000);
    while percpu::all().iter().any(|c| c.id != me.id && me.pongs[c.id.0].load(Ordering::Relaxed) == 0) {
        if cpu::counter() > deadline {
            log::error!("pongs missing after 5 s");
            break;
        }
        core::hint::spin_loop();
    }
}

pub fn run(ctx: &mut Ctx) {
    let cpus = percpu::all();
    let n = cpus.len();
    let p = &crate::start::boot_info().platform;
    check_eq!(ctx, n, p.cpus.len(), "per-pCPU data for every DTB CPU");
    if let Some(want) = expectations().cpus {
        check_eq!(ctx, n, want, "pCPU count matches -smp");
    }
    let online = cpus.iter().filter(|c| c.online.load(Ordering::Acquire)).count();
    check_eq!(ctx, online, n, "every pCPU online");

    percpu::run_on_all(report_in);
    let l = &crate::start::boot_info().layout;
    for c in cpus {
        let i = c.id.0;
        check_eq!(ctx, SEEN_TPIDR[i].load(Ordering::Relaxed), i as u64, "pCPU {i}: TPIDR_EL2 names its index");
        check_eq!(ctx, SEEN_MPIDR[i].load(Ordering::Relaxed), c.mpidr, "pCPU {i}: MPIDR");
        let sp = SEEN_SP[i].load(Ordering::Relaxed);
        let stack = if i == 0 {
            crate::mm::range::Range {
                start: l.image.boot_stack_guard.end,
                end: l.image.boot_stack_guard.end + crate::mm::layout::BOOT_STACK_SIZE,
            }
        } else {
            crate::mm::range::Range { start: l.stack_top(i) - crate::mm::layout::STACK_SIZE, end: l.stack_top(i) }
        };
        check!(ctx, stack.contains(sp), "pCPU {i}: SP {sp:#x} on its own stack {stack:?}");
    }
    let distinct = (0..n)
        .all(|a| (a + 1..n).all(|b| SEEN_MPIDR[a].load(Ordering::Relaxed) != SEEN_MPIDR[b].load(Ordering::Relaxed)));
    check!(ctx, distinct, "MPIDRs distinct");

    let start = cpu::counter();
    percpu::run_on_all(hammer_lock);
    let ms = (cpu::counter() - start) * 1000 / cpu::counter_frequency();
    log::info!("{n} pCPUs x {INCREMENTS} locked increments took {ms} ms");
    check_eq!(ctx, *COUNTER.lock(), n as u64 * INCREMENTS, "{n} pCPUs x {INCREMENTS} locked increments ({ms} ms)");

    if n > 1 {
        log::info!("SGI ping-pong between {} ordered pairs", n * (n - 1));
        percpu::run_on_all(ping_everyone);
        // Let any duplicate arrive before counting.
        let settle = cpu::counter() + cpu::ticks_from_us(20_000);
        while cpu::counter() < settle {}
        for a in cpus {
            for b in cpus.iter().filter(|b| b.id != a.id) {
                let pings = b.pings[a.id.0].load(Ordering::Relaxed);
                let pongs = a.pongs[b.id.0].load(Ordering::Relaxed);
                check!(
                    ctx,
                    pings == 1 && pongs == 1,
                    "SGI {} -> {}: ping arrived {pings}x, pong {pongs}x (want 1, 1)",
                    a.id.0,
                    b.id.0
                );
            }
            check!(ctx, a.kicks.load(Ordering::Relaxed) >= 1, "pCPU {} took kick SGIs at its EL2 IRQ vector", a.id.0);
        }
    }

    // Kicks coalesce: 100 kicks while this pCPU has IRQs masked are one SGI, taken once;
    // none fails, and a kick after that sends a new SGI.
    let me = percpu::this_cpu();
    let before = me.kicks.load(Ordering::Relaxed);
    let masked = cpu::irq_save();
    let all_ok = (0..100).all(|_| percpu::kick(me.id).is_ok());
    let pending_while_masked = me.kick_pending.load(Ordering::Acquire);
    cpu::irq_restore(masked);
    let taken = |want: u64| {
        let deadline = cpu::counter() + cpu::ticks_from_us(1_000_000);
        while me.kicks.load(Ordering::Relaxed) < before + want && cpu::counter() < deadline {
            core::hint::spin_loop();
        }
        me.kicks.load(Ordering::Relaxed) - before
    };
    check!(ctx, all_ok, "100 kicks in a burst all succeed");
    check!(ctx, pending_while_masked, "kick_pending set while the SGI waits");
    check_eq!(ctx, taken(1), 1, "a burst of 100 kicks is one kick SGI");
    check!(ctx, !me.kick_pending.load(Ordering::Acquire), "taking the SGI clears kick_pending");
    let _ = percpu::kick(me.id);
    check_eq!(ctx, taken(2), 2, "the next kick sends a new SGI");
}
