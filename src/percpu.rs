//! Per-pCPU data, reached through TPIDR_EL2 (which holds the pCPU's index), and the kick.
//!
//! Each [`PerCpu`] splits into an owned half (written only by its pCPU, or fixed at
//! creation) and a shared half (atomics or a lock) that other pCPUs reach as `&PerCpu`.
//! Another pCPU's state is never changed directly: a sender posts a typed message to the
//! target's bounded mailbox (`crate::sched`: enqueue, barrier, then the kick SGI), and the
//! target acts on it.
#![forbid(unsafe_code)]

use crate::arch;
use crate::platform::MAX_CPUS;
use crate::sync::IrqLock;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use spin::Once;

pub use crate::ids::CpuId;

/// A job the primary hands a parked pCPU.
pub type Job = fn();

pub struct PerCpu {
    // Owned half: fixed at creation.
    pub id: CpuId,
    pub mpidr: u64,

    // Shared half.
    /// Set (Release) once this pCPU has finished its bring-up; read with Acquire.
    pub online: AtomicBool,
    /// Kick SGIs this pCPU has taken (Relaxed: a statistic).
    pub kicks: AtomicU64,
    /// Times this pCPU saved one vCPU's context to run another (Relaxed: a statistic).
    pub switches: AtomicU64,
    /// A kick SGI is on its way and not yet taken: set (swap, AcqRel) by [`kick`], which
    /// sends the SGI only if it was clear, and cleared (swap, AcqRel) by this pCPU's IRQ
    /// handler before it looks for work. So a burst of kicks costs one SGI, and whatever a
    /// kicker published before its swap is visible to this pCPU after its clear.
    pub kick_pending: AtomicBool,
    /// Pings received from each pCPU, and pongs received from each (Relaxed counters, read
    /// after the job that produced them completed, which orders them).
    pub pings: [AtomicU32; MAX_CPUS],
    pub pongs: [AtomicU32; MAX_CPUS],
    /// A job posted for this pCPU (lock `PerCpu::job`, a leaf).
    pub job: IrqLock<Option<Job>>,
    /// Jobs this pCPU completed (Release after the job; the poster reads with Acquire).
    pub jobs_done: AtomicU64,
}

impl PerCpu {
    fn new(id: CpuId, mpidr: u64) -> Self {
        Self {
            id,
            mpidr,
            online: AtomicBool::new(false),
            kicks: AtomicU64::new(0),
            switches: AtomicU64::new(0),
            kick_pending: AtomicBool::new(false),
            pings: [const { AtomicU32::new(0) }; MAX_CPUS],
            pongs: [const { AtomicU32::new(0) }; MAX_CPUS],
            job: IrqLock::new(None),
            jobs_done: AtomicU64::new(0),
        }
    }
}

/// All pCPUs, boot pCPU first. Set once by the primary before any secondary starts.
static CPUS: Once<&'static [PerCpu]> = Once::new();

/// Creates the per-pCPU data for `mpidrs` (boot pCPU first) and installs entry 0 on this
/// pCPU.
pub fn init(mpidrs: &[u64]) {
    let cpus: Vec<PerCpu> = mpidrs.iter().enumerate().map(|(i, &m)| PerCpu::new(CpuId(i), m)).collect();
    CPUS.call_once(|| cpus.leak());
    crate::sched::init(mpidrs.len());
    install(CpuId(0));
}

/// Records this pCPU's index in TPIDR_EL2, which [`this_cpu`] reads.
pub fn install(id: CpuId) {
    arch::set_cpu_index(id.0);
}

pub fn all() -> &'static [PerCpu] {
    CPUS.get().copied().unwrap_or(&[])
}

pub fn get(id: CpuId) -> Option<&'static PerCpu> {
    all().get(id.0)
}

/// This pCPU's entry, if per-pCPU data is set up here.
pub fn try_this_cpu() -> Option<&'static PerCpu> {
    all().get(arch::cpu_index()?)
}

/// This pCPU's entry. Every pCPU installs it before doing anything else in Rust.
pub fn this_cpu() -> &'static PerCpu {
    try_this_cpu().expect("per-pCPU data installed")
}

/// The pCPU named is not one of this machine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSuchCpu(pub CpuId);

/// Makes `target` take an IRQ soon (waking it from WFI, or making its guest exit), unless
/// a kick SGI is already on its way to it: repeated kicks coalesce, so they never fail
/// for lack of room. What the caller stored before is visible to `target` when it runs
/// its IRQ handler.
pub fn kick(target: CpuId) -> Result<(), NoSuchCpu> {
    let cpu = get(target).ok_or(NoSuchCpu(target))?;
    if !cpu.kick_pending.swap(true, Ordering::AcqRel) {
        // send_kick has a dsb before the SGI write.
        arch::send_kick(cpu.mpidr);
    }
    Ok(())
}

/// This pCPU took its kick SGI (from the IRQ handler): later kicks must send a new one, so
/// `kick_pending` is cleared before the scheduler looks at its mailbox and for work.
pub fn kick_taken() {
    let Some(this) = try_this_cpu() else { return };
    this.kicks.fetch_add(1, Ordering::Relaxed);
    this.kick_pending.swap(false, Ordering::AcqRel);
}

/// Posts `job` to pCPU `id` and kicks it. Returns the job count to wait for.
pub fn post(id: CpuId, job: Job) -> u64 {
    let cpu = &all()[id.0];
    let target = cpu.jobs_done.load(Ordering::Acquire) + 1;
    *cpu.job.lock() = Some(job);
    if let Err(e) = kick(id) {
        log::error!("kick for pCPU {}: {e:?}", id.0);
    }
    target
}

/// Runs `job` on every online pCPU (this one included) and waits for all of them.
pub fn run_on_all(job: Job) {
    let me = this_cpu().id;
    let mut waits = [0u64; MAX_CPUS];
    for c in all().iter().filter(|c| c.id != me && c.online.load(Ordering::Acquire)) {
        waits[c.id.0] = post(c.id, job);
    }
    job();
    for c in all().iter().filter(|c| c.id != me && c.online.load(Ordering::Acquire)) {
        wait_for_jobs(c, waits[c.id.0]);
    }
}

/// Waits until `cpu` has completed `count` jobs (the value [`post`] returned).
pub fn wait_for_jobs(cpu: &PerCpu, count: u64) {
    while cpu.jobs_done.load(Ordering::Acquire) < count {
        core::hint::spin_loop();
    }
}
