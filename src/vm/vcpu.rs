//! A vCPU on its pCPU: `run_vcpu`, the loop of enter, read the exit once, decode, handle,
//! resume; the life of a vCPU through PSCI power states (`vcpu_loop`); and running a VM on
//! its pCPUs (`run_vm`).
#![forbid(unsafe_code)]

use super::MAX_VCPUS;
use super::bus;
use super::dispatch::{self, Next};
use super::exit::Exit;
use super::instance::{READ_ONLY_PAGE, Vm};
use crate::arch::{self, GuestRegs};
use crate::psci::PowerState;
use crate::util::FixedVec;
use crate::vgic;
use alloc::sync::Arc;
use core::sync::atomic::Ordering;

/// One vCPU: owned by the pCPU that runs it.
pub struct Vcpu {
    pub index: usize,
    pub regs: GuestRegs,
}

impl Vcpu {
    /// vCPU `index` about to start at `entry` with x0 = `arg`, at EL1h with interrupts
    /// masked and its MMU off (the arm64 boot protocol's state).
    pub fn new(index: usize, entry: u64, arg: u64) -> Self {
        let mut regs = GuestRegs { pc: entry, pstate: 0x3c5, ..Default::default() };
        regs.x[0] = arg;
        Self { index, regs }
    }
}

/// Why a vCPU's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuEnd {
    SystemOff,
    SystemReset,
    CpuOff,
    /// The guest did something that stops the VM (an SError).
    Failed(u64),
}

/// Runs `vcpu` of `vm` on this pCPU until it powers off or the VM ends. IRQs stay masked in
/// the loop: a physical interrupt makes the guest exit and is handled here.
pub fn run_vcpu(vm: &Vm, vcpu: &mut Vcpu) -> VcpuEnd {
    arch::load_guest_config(vm.vttbr(), vm.vtcr, vm.mpidrs[vcpu.index], vm.cntvoff);
    let lr_count = arch::lr_count();
    arch::lrs_reset(lr_count);
    let mut loaded = arch::Loaded::default();
    let me = 1u64 << vcpu.index.min(63);
    let mut exits = 0u64;
    let end = loop {
        let work = vm.vgic_work.load(Ordering::Acquire) & me != 0;
        let mut used = 0;
        if work {
            let flush = flush_vgic(vm, vcpu.index, lr_count);
            arch::lrs_load(&flush.lrs, lr_count, flush.underflow, &mut loaded);
            used = flush.lrs.len();
            if used == 0 {
                // Nothing to inject: stop flushing on every entry, unless something is (or
                // has just become) pending or active, which keeps the bit set. Anyone who
                // makes an interrupt deliverable after this also kicks us.
                let _ = vm.vgic_work.fetch_and(!me, Ordering::AcqRel);
                let spis = vm.spi_work.load(Ordering::Acquire) & me != 0;
                if spis || vm.redists[vcpu.index].lock().may_have_work() {
                    vm.vgic_work.fetch_or(me, Ordering::AcqRel);
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
                vm.spi_work.fetch_or(kicks.0, Ordering::Release);
                drop(dist);
                drop(redist);
                bus::kick(vm, vcpu.index, kicks);
            } else {
                vgic::sync(None, &mut redist, vcpu.index, &lrs);
            }
        }
        let mut exit = super::exit::decode(s.vector, s.esr, s.far, s.hpfar);
        if let Exit::DataAbort(d) = &mut exit {
            // Stage 2 maps one page read-only, the UART's register page (`new_in_place`):
            // a permission fault is a write there, most of them to DR. Knowing that saves
            // translating the guest's address again (AT) on every byte the guest prints.
            *d = d.with_permission_fault_at(READ_ONLY_PAGE);
        }
        let next = dispatch::handle(vm, vcpu, exit);
        dispatch::advance(vcpu, next);
        if let Next::End(end) = next {
            break end;
        }
    };
    if let Some(count) = vm.exits.get(vcpu.index) {
        count.store(exits, Ordering::Relaxed);
    }
    arch::lrs_disable(lr_count);
    arch::unload_guest_config();
    end
}

/// Chooses vCPU `index`'s list registers: its own redistributor, and the distributor too
/// while an SPI may be busy for it (see `Vm::spi_work`).
fn flush_vgic(vm: &Vm, index: usize, lr_count: usize) -> vgic::Flush {
    let me = 1u64 << index.min(63);
    let mut redist = vm.redists[index].lock();
    if vm.spi_work.load(Ordering::Acquire) & me == 0 {
        return vgic::flush(None, &mut redist, index, lr_count, vm.grp1.load(Ordering::Acquire));
    }
    let mut dist = vm.vgic.lock();
    let grp1 = dist.enabled_grp1();
    let flush = vgic::flush(Some(&mut dist), &mut redist, index, lr_count, grp1);
    if !dist.has_work_for(index) {
        vm.spi_work.fetch_and(!me, Ordering::AcqRel);
    }
    flush
}

/// Ends the VM: records why, and kicks every other pCPU so its vCPU loop notices.
fn end_vm(vm: &Vm, why: VcpuEnd, me: usize) {
    vm.end_reason.lock().get_or_insert(why);
    vm.ended.store(true, Ordering::Release);
    for i in (0..vm.config.vcpu_count).filter(|&i| i != me) {
        let _ = crate::percpu::kick(crate::percpu::CpuId(i));
    }
}

/// The life of vCPU `index` on this pCPU: wait (WFI, woken by the kick SGI) until it is
/// powered on, run it, and after CPU_OFF wait again; return when the VM ends.
pub fn vcpu_loop(vm: &Vm, index: usize) {
    loop {
        // IRQs masked from these checks to the WFI below: a kick that comes in between
        // stays pending and WFI returns at once.
        arch::irq_save();
        if vm.ended.load(Ordering::Acquire) {
            arch::irq_enable();
            return;
        }
        let start = {
            let mut power = vm.power.lock();
            match power.get(index).copied() {
                Some(PowerState::OnPending { entry, context }) => {
                    power[index] = PowerState::On;
                    Some((entry, context))
                }
                Some(PowerState::On) if index == 0 => Some((vm.config.entry.0, vm.config.arg)),
                _ => None,
            }
        };
        let Some((entry, context)) = start else {
            arch::wfi();
            arch::irq_enable();
            continue;
        };
        let mut vcpu = Vcpu::new(index, entry, context);
        log::info!("VM '{}': vCPU {index} running on this pCPU from {entry:#x}", vm.name);
        match run_vcpu(vm, &mut vcpu) {
            VcpuEnd::CpuOff => {
                let all_off = vm.power.lock().iter().all(|s| *s == PowerState::Off);
                if all_off {
                    end_vm(vm, VcpuEnd::CpuOff, index);
                }
            }
            why => end_vm(vm, why, index),
        }
        arch::irq_enable();
    }
}

/// Runs `vm` to its end: vCPU n on pCPU n, this pCPU (which must be pCPU 0) running vCPU 0.
/// Returns why the VM ended once every vCPU loop has returned.
pub fn run_vm(vm: Arc<Vm>) -> VcpuEnd {
    let n = vm.config.vcpu_count;
    let mut waits = [0u64; MAX_VCPUS];
    for (i, wait) in waits.iter_mut().enumerate().take(n).skip(1) {
        let Some(cpu) = crate::percpu::get(crate::percpu::CpuId(i)) else { continue };
        *cpu.assignment.lock() = Some((vm.clone(), i));
        *wait = crate::percpu::post(cpu.id, vcpu_job);
    }
    vcpu_loop(&vm, 0);
    for (i, wait) in waits.iter().enumerate().take(n).skip(1) {
        if let Some(cpu) = crate::percpu::get(crate::percpu::CpuId(i)) {
            crate::percpu::wait_for_jobs(cpu, *wait);
        }
    }
    let why = *vm.end_reason.lock();
    let mut exits = FixedVec::<u64, MAX_VCPUS>::new();
    for e in vm.exits.iter().take(n) {
        let _ = exits.push(e.load(Ordering::Relaxed));
    }
    log::info!("VM '{}' stopped; exits per vCPU: {:?}", vm.name, exits);
    why.unwrap_or(VcpuEnd::SystemOff)
}

/// The job a secondary pCPU runs for its assigned vCPU.
fn vcpu_job() {
    let this = crate::percpu::this_cpu();
    let assignment = this.assignment.lock().take();
    if let Some((vm, index)) = assignment {
        vcpu_loop(&vm, index);
    }
}
