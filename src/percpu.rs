//! Per-pCPU data, reached through TPIDR_EL2, and the cross-pCPU mailbox.
//!
//! Each [`PerCpu`] splits into an owned half (written only by its pCPU, or fixed at
//! creation) and a shared half (atomics or a lock) that other pCPUs reach as `&PerCpu`.
//! Another pCPU's state is never changed directly: a sender posts a typed [`Message`] to the
//! target's bounded mailbox (enqueue, barrier, then the kick SGI), and the target acts on it
//! in its IRQ handler.
#![forbid(unsafe_code)]

use crate::arch;
use crate::platform::MAX_CPUS;
use crate::sync::IrqLock;
use crate::util::FixedVec;
use crate::vm::run::Vm;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use spin::Once;

pub use crate::ids::CpuId;

/// Messages one pCPU sends another. (Waking a pCPU needs no message: see [`kick`].)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// Round-trip check: answer with `Pong`.
    Ping {
        from: CpuId,
    },
    Pong {
        from: CpuId,
    },
}

impl Default for Message {
    /// Filler for a mailbox's unused slots; never sent.
    fn default() -> Self {
        Message::Pong { from: CpuId(usize::MAX) }
    }
}

/// Messages a mailbox holds before a sender is told it is full.
pub const MAILBOX_DEPTH: usize = 16;

/// A job the primary hands a parked pCPU.
pub type Job = fn();

pub struct PerCpu {
    // Owned half: fixed at creation.
    pub id: CpuId,
    pub mpidr: u64,

    // Shared half.
    /// Inbound messages (lock `PerCpu::mailbox`, a leaf).
    pub mailbox: IrqLock<FixedVec<Message, MAILBOX_DEPTH>>,
    /// Set (Release) once this pCPU has finished its bring-up; read with Acquire.
    pub online: AtomicBool,
    /// Kick SGIs this pCPU has taken (Relaxed: a statistic).
    pub kicks: AtomicU64,
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
    /// The VM and vCPU index this pCPU runs (lock `PerCpu::assignment`, a leaf; set by the
    /// pCPU starting the VM before it posts the vCPU job).
    pub assignment: IrqLock<Option<(Arc<Vm>, usize)>>,
}

impl PerCpu {
    fn new(id: CpuId, mpidr: u64) -> Self {
        Self {
            id,
            mpidr,
            mailbox: IrqLock::new(FixedVec::new()),
            online: AtomicBool::new(false),
            kicks: AtomicU64::new(0),
            kick_pending: AtomicBool::new(false),
            pings: [const { AtomicU32::new(0) }; MAX_CPUS],
            pongs: [const { AtomicU32::new(0) }; MAX_CPUS],
            job: IrqLock::new(None),
            jobs_done: AtomicU64::new(0),
            assignment: IrqLock::new(None),
        }
    }
}

/// All pCPUs, boot pCPU first. Set once by the primary before any secondary starts.
static CPUS: Once<&'static [PerCpu]> = Once::new();

/// Creates the per-pCPU data for `mpidrs` (boot pCPU first) and installs entry 0 on this
/// pCPU.
pub fn init(mpidrs: &[u64]) {
    let cpus: Vec<PerCpu> = mpidrs.iter().enumerate().map(|(i, &m)| PerCpu::new(CpuId(i), m)).collect();
    let cpus = CPUS.call_once(|| cpus.leak());
    install(CpuId(0));
    let _ = cpus;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    NoSuchCpu,
    MailboxFull,
}

/// Posts `msg` to `target` and kicks it.
pub fn send(target: CpuId, msg: Message) -> Result<(), SendError> {
    let cpu = get(target).ok_or(SendError::NoSuchCpu)?;
    cpu.mailbox.lock().push(msg).map_err(|_| SendError::MailboxFull)?;
    kick(target)
}

/// Makes `target` take an IRQ soon (waking it from WFI, or making its guest exit), unless
/// a kick SGI is already on its way to it: repeated kicks coalesce, so they never fail
/// for lack of room. What the caller stored before is visible to `target` when it runs
/// its IRQ handler.
pub fn kick(target: CpuId) -> Result<(), SendError> {
    let cpu = get(target).ok_or(SendError::NoSuchCpu)?;
    if !cpu.kick_pending.swap(true, Ordering::AcqRel) {
        // send_kick has a dsb before the SGI write.
        arch::send_kick(cpu.mpidr);
    }
    Ok(())
}

/// This pCPU took its kick SGI (from the IRQ handler): later kicks must send a new one,
/// so `kick_pending` is cleared before the mailbox is drained and before the caller
/// returns to look for work.
pub fn kick_taken() {
    let Some(this) = try_this_cpu() else { return };
    this.kicks.fetch_add(1, Ordering::Relaxed);
    this.kick_pending.swap(false, Ordering::AcqRel);
    drain_mailbox(this);
}

/// Handles everything in `this` pCPU's mailbox.
fn drain_mailbox(this: &PerCpu) {
    loop {
        let batch = core::mem::take(&mut *this.mailbox.lock());
        if batch.is_empty() {
            return;
        }
        for msg in batch.iter() {
            match *msg {
                Message::Ping { from } => {
                    if let Some(c) = this.pings.get(from.0) {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Err(e) = send(from, Message::Pong { from: this.id }) {
                        log::error!("pong to pCPU {} failed: {e:?}", from.0);
                    }
                }
                Message::Pong { from } => {
                    if let Some(c) = this.pongs.get(from.0) {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// Where a secondary waits once it is up: in WFI until the kick SGI, running the jobs it is
/// given. (WFI, not WFE: under QEMU TCG a WFE loop keeps a host thread busy, while WFI
/// sleeps until an interrupt; on hardware both idle the core.)
pub fn park_loop() -> ! {
    let this = this_cpu();
    loop {
        // Masked from the check to the WFI, so a kick in between leaves an interrupt pending
        // and WFI returns at once (WFI wakes on a pending interrupt even when masked).
        arch::irq_save();
        let job = this.job.lock().take();
        match job {
            Some(job) => {
                arch::irq_enable();
                job();
                this.jobs_done.fetch_add(1, Ordering::Release);
            }
            None => {
                arch::wfi();
                arch::irq_enable();
            }
        }
    }
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
