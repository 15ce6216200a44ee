//! The other CPUs: started by PSCI CPU_ON at secondary_entry (entry.S) with their CpuBoot
//! as the context id. A worker waits in WFI for commands in its mailbox, which the boot CPU
//! rings with the doorbell SGI (SGI 0, at a priority above the test interrupts', so it gets
//! through while one of those is held active).

use crate::cpu::{CPUS, CPUS_MAX, Cpu, cpu, stack_top};
use crate::gic;
use crate::psci;
use crate::sys::{self, mrs};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

/// CpuBoot::mode.
pub mod mode {
    /// Run the worker loop.
    pub const WORKER: u64 = 0;
    /// Note the arrival, then CPU_OFF at once.
    pub const OFF: u64 = 1;
}

/// Worker commands (Mailbox::cmd); args and results in the mailbox.
pub mod cmd {
    /// ret [MPIDR, CPU index].
    pub const PING: u64 = 0;
    /// SGI args[0] to the CPU with MPIDR args[1].
    pub const SEND_SGI: u64 = 1;
    /// The priority mask 0xff, then poll ICC_IAR1_EL1 (GICC_IAR) (IRQs masked) for up to args[0] µs: ret
    /// [INTID or 1023, IAR]. Not EOId. (The doorbell, if it comes, is EOId and skipped.)
    pub const ACK: u64 = 2;
    /// ICC_EOIR1_EL1 (GICC_EOIR) = args[0].
    pub const EOI: u64 = 3;
    /// ICC_PMR_EL1 (GICC_PMR) = args[0].
    pub const PMR: u64 = 4;
    /// PSCI_VERSION by HVC: under a hypervisor, an exit (and so a sync of the vGIC state).
    pub const HVC: u64 = 5;
    /// ret [the 32-bit register at args[0]].
    pub const READ32: u64 = 6;
    /// The 32-bit register at args[0] = args[1].
    pub const WRITE32: u64 = 9;
    /// PSCI CPU_OFF (no answer).
    pub const OFF: u64 = 7;
    /// The priority mask 0xff, then for args[0] µs with IRQs masked acknowledge and EOI
    /// whatever comes: ret [count, first INTID or 1023], the doorbell not counted.
    pub const DRAIN: u64 = 8;
}

pub fn boot_of(n: usize) -> &'static crate::cpu::CpuBoot {
    &CPUS[n].boot
}

/// Starts CPU `n` (MPIDR `mpidr`) at secondary_entry in `m` mode: the PSCI result.
pub fn cpu_on_raw(n: usize, target: u64, m: u64) -> i64 {
    unsafe extern "C" {
        fn secondary_entry();
    }
    let b = boot_of(n);
    b.sp.store(stack_top(n), Relaxed);
    b.cpu.store(n as u64, Relaxed);
    b.mair.store(mrs!("mair_el1"), Relaxed);
    b.tcr.store(mrs!("tcr_el1"), Relaxed);
    b.ttbr0.store(mrs!("ttbr0_el1"), Relaxed);
    b.sctlr.store(mrs!("sctlr_el1"), Relaxed);
    b.mode.store(m, Relaxed);
    // secondary_entry reads it with the MMU off: to the point of coherency.
    let at = b as *const _ as u64;
    crate::mmu::dc_range("cvac", at, at + core::mem::size_of::<crate::cpu::CpuBoot>() as u64);
    psci::call(psci::CPU_ON_64, target, secondary_entry as *const () as u64, at)
}

/// The MPIDR of CPU n: QEMU virt and armvisor number them Aff0 = n (the PSCI check reads
/// each worker's own MPIDR_EL1 and checks that).
pub fn mpidr_of(n: usize) -> u64 {
    let m = CPUS[n].mpidr.load(Relaxed);
    if m != 0 || n == 0 { m } else { n as u64 }
}

/// CPU `n` as a running worker: started if it is not. Err says why not.
pub fn worker(n: usize) -> Result<(), &'static str> {
    if n == 0 || n >= CPUS_MAX || n >= crate::facts().cpus {
        return Err("no such CPU");
    }
    let c = &CPUS[n];
    if c.worker.load(SeqCst) {
        return Ok(());
    }
    let before = c.boot.arrivals.load(SeqCst);
    let r = cpu_on_raw(n, n as u64, mode::WORKER);
    if r != psci::SUCCESS {
        return Err("CPU_ON failed");
    }
    if sys::wait_until(2_000_000, || c.worker.load(SeqCst) && c.boot.arrivals.load(SeqCst) != before).is_none() {
        return Err("the CPU did not come up within 2 s");
    }
    Ok(())
}

/// Runs command `k` on worker `n` and waits up to `us` µs for its answer.
pub fn run(n: usize, k: u64, args: [u64; 4], us: u64) -> Option<[u64; 4]> {
    let c = &CPUS[n];
    if !c.worker.load(SeqCst) {
        return None;
    }
    let mb = &c.mailbox;
    for (slot, v) in mb.args.iter().zip(args) {
        slot.store(v, Relaxed);
    }
    mb.cmd.store(k, Relaxed);
    let seq = mb.seq.load(Relaxed) + 1;
    mb.seq.store(seq, Release);
    gic::send_sgi(gic::DOORBELL, mpidr_of(n));
    if k == cmd::OFF {
        return Some([0; 4]);
    }
    sys::wait_until(us, || mb.done.load(Acquire) == seq)?;
    Some(core::array::from_fn(|i| mb.ret[i].load(Relaxed)))
}

/// Called by secondary_entry with the MMU on: note the entry state, then the mode's work.
#[unsafe(no_mangle)]
extern "C" fn secondary_main(boot: u64, el: u64, daif: u64, sctlr: u64) -> ! {
    let c = cpu();
    let b = &c.boot;
    b.entry_el.store(el, Relaxed);
    b.entry_daif.store(daif, Relaxed);
    b.entry_sctlr.store(sctlr, Relaxed);
    b.entry_x0.store(boot, Relaxed);
    b.entry_mpidr.store(sys::mpidr(), Relaxed);
    c.mpidr.store(sys::mpidr(), Relaxed);
    if b.mode.load(Relaxed) == mode::OFF {
        b.arrivals.fetch_add(1, SeqCst);
        psci::call(psci::CPU_OFF, 0, 0, 0);
        loop {
            sys::wfi();
        }
    }
    crate::enable_fp_sve();
    if !gic::init_cpu() {
        b.arrivals.fetch_add(1, SeqCst);
        loop {
            sys::wfi();
        }
    }
    c.worker.store(true, SeqCst);
    b.arrivals.fetch_add(1, SeqCst);
    worker_loop(c)
}

fn worker_loop(c: &Cpu) -> ! {
    let mb = &c.mailbox;
    loop {
        sys::irqs(false);
        let seq = mb.seq.load(Acquire);
        if seq != mb.done.load(Relaxed) {
            let k = mb.cmd.load(Relaxed);
            let a: [u64; 4] = core::array::from_fn(|i| mb.args[i].load(Relaxed));
            if k == cmd::OFF {
                c.worker.store(false, SeqCst);
                mb.done.store(seq, Release);
                psci::call(psci::CPU_OFF, 0, 0, 0);
            }
            let r = command(k, a);
            for (slot, v) in mb.ret.iter().zip(r) {
                slot.store(v, Relaxed);
            }
            mb.done.store(seq, Release);
        } else {
            sys::wfi();
        }
        sys::irqs(true);
    }
}

fn command(k: u64, a: [u64; 4]) -> [u64; 4] {
    match k {
        cmd::PING => [sys::mpidr(), sys::cpu_index() as u64, 0, 0],
        cmd::SEND_SGI => {
            gic::send_sgi(a[0] as u32, a[1]);
            [0; 4]
        }
        cmd::ACK => {
            gic::set_pmr(0xff);
            let mut iar = gic::SPURIOUS as u64;
            sys::wait_until(a[0], || {
                iar = gic::ack();
                if gic::intid(iar) == gic::DOORBELL {
                    // The doorbell of this very command, not yet taken: not what is asked.
                    gic::eoi(iar);
                    return false;
                }
                gic::intid(iar) < 1020
            });
            [gic::intid(iar) as u64, iar, 0, 0]
        }
        cmd::EOI => {
            gic::eoi(a[0]);
            [0; 4]
        }
        cmd::PMR => {
            gic::set_pmr(a[0]);
            [0; 4]
        }
        cmd::HVC => [psci::call(psci::VERSION, 0, 0, 0) as u64, 0, 0, 0],
        cmd::READ32 => [sys::read32(a[0] as usize) as u64, 0, 0, 0],
        cmd::WRITE32 => {
            sys::write32(a[0] as usize, a[1] as u32);
            sys::dsb_sy();
            [0; 4]
        }
        cmd::DRAIN => {
            gic::set_pmr(0xff);
            let (mut n, mut first) = (0u64, gic::SPURIOUS as u64);
            let end = sys::now() + sys::ticks_us(a[0]);
            while sys::now() < end {
                let iar = gic::ack();
                if gic::intid(iar) == gic::DOORBELL {
                    gic::eoi(iar);
                } else if gic::intid(iar) < 1020 {
                    if n == 0 {
                        first = gic::intid(iar) as u64;
                    }
                    n += 1;
                    gic::eoi(iar);
                }
            }
            [n, first, 0, 0]
        }
        _ => [u64::MAX; 4],
    }
}
