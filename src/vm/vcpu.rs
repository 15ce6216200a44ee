//! A vCPU on its pCPU: [`run`], the loop of enter, read the exit once, decode, handle,
//! resume, until the vCPU stops, waits for an interrupt or yields its pCPU. Which vCPU a
//! pCPU runs, and switching between them, is the scheduler's (`crate::sched`).
#![forbid(unsafe_code)]

use super::bus;
use super::dispatch::{self, Next};
use super::exit::Exit;
use super::instance::{READ_ONLY_PAGE, Vm};
use crate::arch::{self, GuestRegs};
use crate::vgic;
use core::sync::atomic::Ordering;

/// One vCPU's general registers: owned by the pCPU that runs it.
pub struct Vcpu {
    pub index: usize,
    pub regs: GuestRegs,
    /// Its timers' interrupt lines, and on the pCPU it is loaded on their physical side.
    pub timers: super::timer::Link,
}

impl Vcpu {
    /// vCPU `index` about to start at `entry` with x0 = `arg`, at EL1h with interrupts
    /// masked and its MMU off (the arm64 boot protocol's state).
    pub fn new(index: usize, entry: u64, arg: u64) -> Self {
        use super::inject::pstate;
        let mut regs = GuestRegs { pc: entry, pstate: pstate::EL1H | pstate::DAIF, ..Default::default() };
        regs.x[0] = arg;
        Self { index, regs, timers: Default::default() }
    }
}

/// Why a vCPU stopped for good, or the VM ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuEnd {
    SystemOff,
    SystemReset,
    CpuOff,
    /// The guest did something that stops the VM (an SError).
    Failed(u64),
}

/// Why [`run`] gave the pCPU back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The vCPU powered off, or the VM ended.
    End(VcpuEnd),
    /// The vCPU waits for an interrupt (a trapped WFI, CPU_SUSPEND).
    Wait,
    /// Its time slice is over, or the scheduler has work: run something else meanwhile.
    Yield,
    /// It touched a debug register it does not own: its scheduler, which holds its saved
    /// context, gives it the debug hardware (`arch::debug_take`), and it runs again from
    /// the same instruction.
    TakeDebug,
}

/// Runs vCPU `vcpu` of `vm`, whose state the scheduler has loaded on this pCPU, until it
/// stops, waits or yields. IRQs stay masked: a physical interrupt makes the guest exit and
/// is handled here. `lrs` is what the list registers hold since the last entry.
pub fn run(vm: &Vm, vcpu: &mut Vcpu, lrs: &mut arch::Loaded) -> Stop {
    let lr_count = arch::lr_count();
    let me = 1u64 << vcpu.index.min(63);
    let mut exits = 0u64;
    let stop = loop {
        let work = vm.vgic_work.has(me);
        let mut used = 0;
        if work {
            let flush = flush_vgic(vm, vcpu.index, lr_count);
            arch::lrs_load(&flush.lrs, lr_count, flush.underflow, lrs);
            used = flush.lrs.len();
            if used == 0 {
                // Nothing to inject: stop flushing on every entry, unless something is (or
                // has just become) pending or active, which keeps the bit set. Anyone who
                // makes an interrupt deliverable after this also kicks us.
                vm.vgic_work.clear(me);
                let spis = vm.spi_work.has(me);
                if spis || vm.redists[vcpu.index].lock().may_have_work() {
                    vm.vgic_work.remark(me);
                }
            }
        }
        // With our bit clear the list registers are empty: they were loaded empty when the
        // bit was cleared, and only this vCPU clears it.
        let s = arch::enter(&mut vcpu.regs);
        exits += 1;
        if used > 0 {
            let lrs = arch::lrs_save(used);
            let mut redist = vm.redists[vcpu.index].lock();
            if lrs.iter().any(|lr| lr.intid() >= 32) {
                let mut dist = vm.vgic.lock();
                let kicks = vgic::sync(Some(&mut dist), &mut redist, vcpu.index, &lrs);
                vm.spi_work.mark(kicks);
                drop(dist);
                drop(redist);
                bus::kick(vm, kicks);
            } else {
                vgic::sync(None, &mut redist, vcpu.index, &lrs);
            }
            super::timer::synced(vcpu, &lrs);
        }
        // Before the exit is handled, so what it reads of the vGIC follows the timers.
        super::timer::after_exit(vm, vcpu);
        let mut exit = super::exit::decode(s.vector, s.esr, s.far, s.hpfar);
        if let Exit::DataAbort(d) = &mut exit {
            // Stage 2 maps one page read-only, the UART's register page (`new_in_place`):
            // a permission fault is a write there, most of them to DR. Knowing that saves
            // translating the guest's address again (AT) on every byte the guest prints.
            *d = d.with_permission_fault_at(READ_ONLY_PAGE);
        }
        let next = dispatch::handle(vm, vcpu, exit);
        // And after, for what it changed (an interrupt taken, a vGIC register written).
        super::timer::after_exit(vm, vcpu);
        dispatch::advance(vcpu, next);
        match next {
            Next::Resume | Next::Skip => {}
            Next::WaitForInterrupt { .. } => break Stop::Wait,
            Next::Yield => break Stop::Yield,
            Next::TakeDebug => break Stop::TakeDebug,
            Next::End(end) => break Stop::End(end),
        }
    };
    if let Some(count) = vm.exits.get(vcpu.index) {
        count.fetch_add(exits, Ordering::Relaxed);
    }
    stop
}

/// Chooses vCPU `index`'s list registers: its own redistributor, and the distributor too
/// while an SPI may be busy for it (see `Vm::spi_work`).
fn flush_vgic(vm: &Vm, index: usize, lr_count: usize) -> vgic::Flush {
    let me = 1u64 << index.min(63);
    let mut redist = vm.redists[index].lock();
    if !vm.spi_work.has(me) {
        return vgic::flush(None, &mut redist, index, lr_count, vgic::Groups(vm.groups.load(Ordering::Acquire)));
    }
    let mut dist = vm.vgic.lock();
    let groups = dist.enabled_groups();
    let flush = vgic::flush(Some(&mut dist), &mut redist, index, lr_count, groups);
    if !dist.has_work_for(index) {
        vm.spi_work.clear(me);
    }
    flush
}
