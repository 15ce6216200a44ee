//! The scheduler: which vCPU each pCPU runs, and the typed messages pCPUs send each other.
//!
//! A VM's vCPUs are handed to the pCPUs its [`Placement`](crate::vm::Placement) names, as
//! [`Message::RunVcpu`] into the target's bounded mailbox (enqueue, then the kick SGI; a
//! full mailbox is an error to the sender). Each pCPU keeps its vCPUs in its own run queue
//! (lock `sched::queue[n]`, taken only by pCPU n, so never contended) and runs them in
//! turn: a vCPU runs until it powers off, waits for an interrupt (a trapped WFI,
//! CPU_SUSPEND) or its time slice ends (the EL2 physical timer, armed only while another
//! vCPU on the pCPU can run, or for the earliest timer of a vCPU that is not loaded).
//!
//! A vCPU's state lives in the hardware while it is loaded. Only when the pCPU switches to
//! another vCPU is it saved into the vCPU's [`VcpuContext`] (EL1 registers, FP/SIMD, the
//! EL1 timers, the virtual CPU interface) and the other's restored: a vCPU alone on its
//! pCPU, as with one vCPU per pCPU, is never saved, and its WFI is not trapped. The list
//! registers are not part of the context: the vGIC model holds their state after every exit
//! and refills them on every entry.
//!
//! While a vCPU is not loaded its timers cannot interrupt: its pCPU looks at their saved
//! deadlines whenever it schedules, and arms the EL2 timer for the earliest, so a
//! descheduled vCPU's timer line goes high when it is due (`vm::timer`).
#![forbid(unsafe_code)]

use crate::arch::{self, VcpuContext};
use crate::ids::CpuId;
use crate::percpu;
use crate::psci::PowerState;
use crate::sync::IrqLock;
use crate::vm::instance::Vm;
use crate::vm::timer;
use crate::vm::vcpu::{self, Stop, Vcpu, VcpuEnd};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use spin::Once;

/// Messages one pCPU sends another. (Waking a pCPU needs no message: see
/// [`percpu::kick`].)
pub enum Message {
    /// Round-trip check: answer with `Pong`.
    Ping {
        from: CpuId,
    },
    Pong {
        from: CpuId,
    },
    /// Run this vCPU here from now on (until its VM ends).
    RunVcpu(Box<Slot>),
}

/// Messages a mailbox holds before a sender is told it is full.
pub const MAILBOX_DEPTH: usize = 16;
/// vCPUs one pCPU can hold in its run queue.
pub const MAX_SLOTS: usize = 16;
/// A time slice while another vCPU on the pCPU can run (Xen's credit scheduler uses 30 ms,
/// KVM Linux's CFS a few ms; these are test guests and interactive Linux shells).
const SLICE_US: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    NoSuchCpu,
    MailboxFull,
}

/// How a vCPU in a run queue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Powered off: runs once PSCI CPU_ON makes it OnPending.
    Off,
    /// About to start from reset: its registers are set, the hardware state is reset when
    /// it is loaded.
    Fresh,
    /// Can run.
    Runnable,
    /// Waits until an interrupt for it may be pending.
    Waiting,
}

/// One vCPU as its pCPU's scheduler holds it.
pub struct Slot {
    vm: Arc<Vm>,
    /// The VM's count of placed vCPUs, and the pCPU to wake when it reaches 0.
    placed: Arc<core::sync::atomic::AtomicUsize>,
    waiter: CpuId,
    vcpu: Vcpu,
    ctx: VcpuContext,
    lrs: arch::Loaded,
    state: State,
}

impl Slot {
    /// vCPU `index` of `vm`: vCPU 0 starts at the VM's entry, the others when CPU_ON says.
    pub fn new(vm: Arc<Vm>, index: usize) -> Self {
        let (entry, arg) = (vm.config.entry.0, vm.config.arg);
        let state = if index == 0 { State::Fresh } else { State::Off };
        let placed = vm.placed.clone();
        let waiter = CpuId(vm.waiter.load(Ordering::Relaxed));
        Self {
            vm,
            placed,
            waiter,
            vcpu: Vcpu::new(index, entry, arg),
            ctx: VcpuContext::default(),
            lrs: Default::default(),
            state,
        }
    }

    fn id(&self) -> (usize, usize) {
        (Arc::as_ptr(&self.vm) as usize, self.vcpu.index)
    }

    fn bit(&self) -> u64 {
        1 << self.vcpu.index.min(63)
    }

    /// Whether this vCPU's timers are in its saved context (it ran, and is not the one
    /// `loaded` in the hardware), so the scheduler watches them.
    fn timers_saved(&self, loaded: Option<(usize, usize)>) -> bool {
        Some(self.id()) != loaded && matches!(self.state, State::Runnable | State::Waiting)
    }
}

/// One pCPU's run queue.
struct Queue {
    #[expect(
        clippy::vec_box,
        reason = "a vCPU arrives boxed in a message; moving the box in and out of the queue moves a pointer, and the IRQ handler that files it neither allocates nor frees"
    )]
    slots: Vec<Box<Slot>>,
    /// The vCPU whose state is in the hardware (it may be in `slots` or running).
    loaded: Option<(usize, usize)>,
    /// HCR_EL2.TWI as last set.
    wfi_trapped: bool,
}

struct Cpu {
    /// Inbound messages (lock `sched::mailbox[n]`, a leaf).
    mailbox: IrqLock<VecDeque<Message>>,
    /// This pCPU's vCPUs (lock `sched::queue[n]`, taken only by pCPU n; a leaf).
    queue: IrqLock<Queue>,
}

static CPUS: Once<Vec<Cpu>> = Once::new();

/// Creates the mailboxes and run queues of `count` pCPUs (once, at boot).
pub fn init(count: usize) {
    CPUS.call_once(|| {
        (0..count)
            .map(|_| Cpu {
                mailbox: IrqLock::new(VecDeque::with_capacity(MAILBOX_DEPTH)),
                queue: IrqLock::new(Queue { slots: Vec::with_capacity(MAX_SLOTS), loaded: None, wfi_trapped: false }),
            })
            .collect()
    });
}

fn cpu(id: CpuId) -> Option<&'static Cpu> {
    CPUS.get()?.get(id.0)
}

/// Posts `msg` to `target` and kicks it. A full mailbox hands the message back.
pub fn send(target: CpuId, msg: Message) -> Result<(), (SendError, Message)> {
    let Some(c) = cpu(target) else { return Err((SendError::NoSuchCpu, msg)) };
    {
        let mut mailbox = c.mailbox.lock();
        if mailbox.len() >= MAILBOX_DEPTH {
            return Err((SendError::MailboxFull, msg));
        }
        mailbox.push_back(msg);
    }
    // The scheduler's table and the per-pCPU data have the same pCPUs (both made by
    // `percpu::init`), so this finds its target.
    if let Err(e) = percpu::kick(target) {
        log::error!("kick for pCPU {}: {e:?}", target.0);
    }
    Ok(())
}

/// Files `slot` in this pCPU's run queue `c`; a full queue refuses it (its VM ends).
fn enqueue(c: &Cpu, slot: Box<Slot>) {
    let mut q = c.queue.lock();
    if q.slots.len() < MAX_SLOTS {
        q.slots.push(slot);
        return;
    }
    drop(q);
    log::error!("VM '{}': this pCPU already runs {MAX_SLOTS} vCPUs", slot.vm.name);
    refuse(*slot);
}

/// This pCPU took its kick SGI (from the IRQ handler): clears the kick flag, then handles
/// the mailbox. Whether a vCPU arrived (the running one should yield).
pub fn kick_taken() -> bool {
    percpu::kick_taken();
    let Some(me) = percpu::try_this_cpu() else { return false };
    let Some(c) = cpu(me.id) else { return false };
    let mut arrived = false;
    loop {
        let Some(msg) = c.mailbox.lock().pop_front() else { return arrived };
        match msg {
            Message::Ping { from } => {
                if let Some(n) = me.pings.get(from.0) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                if let Err((e, _)) = send(from, Message::Pong { from: me.id }) {
                    log::error!("pong to pCPU {}: {e:?}", from.0);
                }
            }
            Message::Pong { from } => {
                if let Some(n) = me.pongs.get(from.0) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
            Message::RunVcpu(slot) => {
                arrived = true;
                enqueue(c, slot);
            }
        }
    }
}

/// A vCPU that cannot be placed: its VM ends.
fn refuse(slot: Slot) {
    end_vm(&slot.vm, VcpuEnd::Failed(0));
    retire(slot);
}

/// Runs `vm` to its end ([`start_vm`], then [`wait_vm`] on this pCPU).
pub fn run_vm(vm: Arc<Vm>) -> VcpuEnd {
    start_vm(&vm);
    wait_vm(&vm)
}

/// Starts `vm`: each vCPU goes to the pCPU its placement names (this one's straight into its
/// run queue). This pCPU is the one [`wait_vm`] runs on.
pub fn start_vm(vm: &Arc<Vm>) {
    let me = percpu::this_cpu().id;
    vm.waiter.store(me.0, Ordering::Relaxed);
    for v in 0..vm.config.vcpu_count {
        let Some(target) = vm.config.placement.cpu(v) else { continue };
        vm.placed.fetch_add(1, Ordering::AcqRel);
        let slot = Box::new(Slot::new(vm.clone(), v));
        if target == me {
            enqueue(cpu(me).expect("scheduler initialised"), slot);
        } else if let Err((e, msg)) = send(target, Message::RunVcpu(slot)) {
            log::error!("VM '{}': vCPU {v} to pCPU {}: {e:?}", vm.name, target.0);
            if let Message::RunVcpu(slot) = msg {
                refuse(*slot);
            }
        }
    }
}

/// Runs this pCPU's vCPUs (of any VM) until `vm` has ended and no pCPU holds any of its
/// vCPUs any more; returns why it ended.
pub fn wait_vm(vm: &Arc<Vm>) -> VcpuEnd {
    run(&|| vm.ended.load(Ordering::Acquire) && vm.placed.load(Ordering::Acquire) == 0);
    let why = *vm.end_reason.lock();
    let exits: Vec<u64> = vm.exits.iter().take(vm.config.vcpu_count).map(|e| e.load(Ordering::Relaxed)).collect();
    log::info!("VM '{}' stopped; exits per vCPU: {:?}", vm.name, exits);
    why.unwrap_or(VcpuEnd::SystemOff)
}

/// Ends `vm`: records why, and kicks every pCPU it is placed on so its scheduler notices.
pub fn end_vm(vm: &Vm, why: VcpuEnd) {
    vm.end_reason.lock().get_or_insert(why);
    vm.ended.store(true, Ordering::Release);
    for v in 0..vm.config.vcpu_count {
        vm.kick_pcpu_of(v);
    }
}

/// A vCPU leaves its pCPU for good: its hold on the VM goes first, then the count of
/// placed vCPUs, and the last one wakes the pCPU in `run_vm` (which then holds the only
/// scheduler-side reference: none).
fn retire(slot: Slot) {
    let (placed, waiter) = (slot.placed.clone(), slot.waiter);
    drop(slot);
    if placed.fetch_sub(1, Ordering::AcqRel) == 1 && arch::cpu_index() != Some(waiter.0) {
        let _ = percpu::kick(waiter);
    }
}

/// This pCPU's scheduler loop, until `until()` holds (never, for a parked pCPU). IRQs are
/// masked throughout except while a posted job runs: interrupts are taken explicitly, so
/// a loaded vCPU's timer interrupt is never lost in between.
pub fn run(until: &dyn Fn() -> bool) {
    let me = percpu::this_cpu();
    let c = cpu(me.id).expect("scheduler initialised");
    loop {
        arch::irq_save();
        crate::console::poll();
        retire_ended(c);
        if until() {
            arch::irq_enable();
            return;
        }
        match pick(c) {
            Some(slot) => run_slot(c, slot),
            None => idle(c, me),
        }
    }
}

/// Drops the vCPUs of VMs that ended (unloading the one in the hardware).
fn retire_ended(c: &Cpu) {
    let mut gone: Vec<Box<Slot>> = Vec::new();
    {
        let mut q = c.queue.lock();
        let mut i = 0;
        while i < q.slots.len() {
            if q.slots[i].vm.ended.load(Ordering::Acquire) {
                let slot = q.slots.remove(i);
                if q.loaded == Some(slot.id()) {
                    arch::lrs_disable(arch::lr_count());
                    arch::unload_guest_config();
                    q.loaded = None;
                }
                gone.push(slot);
            } else {
                i += 1;
            }
        }
    }
    for slot in gone {
        retire(*slot);
    }
}

/// Raises the timer lines of vCPUs that are not loaded whose timers have come due (their
/// saved state is not touched: a guest reads back what it wrote).
fn software_timers(q: &mut Queue) {
    let loaded = q.loaded;
    for s in q.slots.iter_mut().filter(|s| s.timers_saved(loaded)) {
        timer::due(&s.vm, &mut s.vcpu, &s.ctx.timer);
    }
}

/// The earliest counter value at which a vCPU here that is not loaded has a timer due.
fn next_deadline(q: &Queue) -> Option<u64> {
    q.slots
        .iter()
        .filter(|s| s.timers_saved(q.loaded))
        .filter_map(|s| timer::next_deadline(&s.vm, &s.vcpu, &s.ctx.timer))
        .min()
}

/// When this pCPU must look again even if nothing else happens: the earliest timer due of a
/// vCPU here that is not loaded, console output left waiting, or the RTC match this pCPU
/// watches of a VM with a vCPU here (the queue's, and `running`, which is out of it).
fn wake_at(q: &Queue, running: Option<&Slot>) -> Option<u64> {
    let rtc = arch::cpu_index()
        .and_then(|me| q.slots.iter().map(|s| &**s).chain(running).filter_map(|s| s.vm.rtc_alarm.watched_by(me)).min());
    [next_deadline(q), crate::console::deadline(), rtc].into_iter().flatten().min()
}

/// Takes the next vCPU that can run out of the queue (round robin: the queue's order, each
/// one put back at the end), starting one that PSCI CPU_ON turned on.
fn pick(c: &Cpu) -> Option<Box<Slot>> {
    let mut q = c.queue.lock();
    software_timers(&mut q);
    // A VM's RTC match that came due: its line goes high now, whoever is waiting for it.
    let now = arch::counter();
    for s in q.slots.iter() {
        crate::vm::bus::rtc_due(&s.vm, now);
    }
    let i = q.slots.iter_mut().position(|s| {
        if s.vm.ended.load(Ordering::Acquire) {
            return false;
        }
        match s.state {
            State::Off => {
                let mut power = s.vm.power.lock();
                match power.get(s.vcpu.index).copied() {
                    Some(PowerState::OnPending { entry, context }) => {
                        power[s.vcpu.index] = PowerState::On;
                        s.vcpu = Vcpu::new(s.vcpu.index, entry, context);
                        // Nothing it saved before it went off comes back (its debug state
                        // is loaded from here when it next takes the debug hardware).
                        s.ctx = VcpuContext::default();
                        s.state = State::Fresh;
                        true
                    }
                    _ => false,
                }
            }
            State::Fresh | State::Runnable => true,
            // Woken by anything that marks vGIC work for it (an interrupt made pending,
            // its timer): WFI may wake spuriously, so a superset is right.
            State::Waiting => s.vm.vgic_work.has(s.bit()),
        }
    })?;
    Some(q.slots.remove(i))
}

/// Loads `slot` into the hardware, saving the vCPU there before (only if it is another).
fn switch_to(c: &Cpu, slot: &mut Slot) {
    let mut q = c.queue.lock();
    let others = q.slots.len();
    if q.loaded != Some(slot.id()) || slot.state == State::Fresh {
        if let Some(prev) = q.loaded.take()
            && prev != slot.id()
            && let Some(p) = q.slots.iter_mut().find(|s| s.id() == prev)
        {
            arch::save_context(&mut p.ctx);
            timer::unload(&p.vm, &mut p.vcpu, &p.ctx.timer);
            if let Some(me) = percpu::try_this_cpu() {
                me.switches.fetch_add(1, Ordering::Relaxed);
            }
        }
        let vm = &slot.vm;
        let v = slot.vcpu.index;
        if slot.state == State::Fresh {
            arch::load_guest_config(vm.vttbr(), vm.vtcr, vm.mpidrs[v], vm.cntvoff);
            arch::lrs_reset(arch::lr_count());
            q.wfi_trapped = false;
            if let crate::vm::loglimit::Verdict::Print { suppressed } = vm.logs.vcpu_start.check(arch::counter()) {
                log::info!(
                    "VM '{}': vCPU {v} running on this pCPU from {:#x}{}",
                    vm.name,
                    slot.vcpu.regs.pc,
                    crate::vm::loglimit::Suppressed(suppressed)
                );
            }
        } else {
            arch::switch_guest_config(vm.vttbr(), vm.vtcr, vm.mpidrs[v], vm.cntvoff);
            // Empty list registers (the model refills them), then the interface's own state.
            arch::lrs_reset(arch::lr_count());
            arch::restore_context(&slot.ctx);
        }
        timer::load(vm, &mut slot.vcpu, slot.state == State::Fresh);
        slot.lrs = Default::default();
        q.loaded = Some(slot.id());
        slot.state = State::Runnable;
    }
    // WFI traps only while another vCPU here could use the pCPU meanwhile.
    let trap = others > 0;
    if trap != q.wfi_trapped {
        arch::set_wfi_trap(trap);
        q.wfi_trapped = trap;
    }
    // The slice ends at the next due timer of a vCPU not loaded, or after SLICE_US while
    // another vCPU here could run.
    let slice = (others > 0).then(|| arch::counter() + arch::ticks_from_us(SLICE_US));
    match [slice, wake_at(&q, Some(slot))].into_iter().flatten().min() {
        Some(at) => arch::hyp_timer_arm(at),
        None => arch::hyp_timer_cancel(),
    }
}

fn run_slot(c: &Cpu, mut slot: Box<Slot>) {
    switch_to(c, &mut slot);
    let stop = loop {
        match vcpu::run(&slot.vm, &mut slot.vcpu, &mut slot.lrs) {
            // Still the vCPU loaded here: its saved debug state into the hardware, untrapped,
            // and on at once (switched out before the access ran, it could lose it again).
            Stop::TakeDebug => arch::debug_take(&mut slot.ctx.debug),
            stop => break stop,
        }
    };
    arch::hyp_timer_cancel();
    match stop {
        Stop::Yield | Stop::TakeDebug => slot.state = State::Runnable,
        Stop::Wait => slot.state = State::Waiting,
        Stop::End(VcpuEnd::CpuOff) => {
            slot.state = State::Off;
            if slot.vm.power.lock().iter().all(|s| *s == PowerState::Off) {
                end_vm(&slot.vm, VcpuEnd::CpuOff);
            }
        }
        Stop::End(why) => {
            slot.state = State::Off;
            end_vm(&slot.vm, why);
        }
    }
    c.queue.lock().slots.push(slot);
}

/// Nothing to run: a posted job if the run queue is empty, else wait for an interrupt (or
/// the EL2 timer, for a vCPU's timer that is due while it is not loaded).
fn idle(c: &Cpu, me: &percpu::PerCpu) {
    let (empty, deadline) = {
        let q = c.queue.lock();
        (q.slots.is_empty(), wake_at(&q, None))
    };
    // The job lock is not held while the job runs: a job that runs a scheduler loop of
    // its own (a VM's home, `guest::keep`) comes back here, and must find it free.
    let job = if empty { me.job.lock().take() } else { None };
    if let Some(job) = job {
        arch::irq_enable();
        job();
        me.jobs_done.fetch_add(1, Ordering::Release);
        return;
    }
    if let Some(at) = deadline {
        arch::hyp_timer_arm(at);
    }
    // Masked from the checks to here: an interrupt that came in between is still pending,
    // and WFI returns at once.
    arch::wfi();
    let events = crate::irq::handle();
    arch::hyp_timer_cancel();
    // A timer of the vCPU still loaded here (waiting) fired: its line goes high.
    let mut q = c.queue.lock();
    let loaded = q.loaded;
    match loaded.and_then(|l| q.slots.iter_mut().find(|s| s.id() == l)) {
        Some(s) => timer::fired(&s.vm, &mut s.vcpu, events),
        None => timer::orphaned(events),
    }
}

/// Where a pCPU waits once it is up: its scheduler loop, forever.
pub fn park_loop() -> ! {
    loop {
        run(&|| false);
    }
}
