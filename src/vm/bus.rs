//! The VM's MMIO bus: a decoded load or store becomes one device access through the one
//! device interface (`devices::Mmio`), and its [`Effects`] are applied here, in one place
//! and in the lock order: the device's lock, then (for a changed interrupt line)
//! `Vm::vgic`; the console and the kicks after both are dropped. The RTC's match, which
//! comes due with no access, is applied the same way when a scheduler finds it due
//! ([`rtc_due`]).
#![forbid(unsafe_code)]

use super::exit::Access;
use super::instance::{Vm, VmMemory, uart_changed};
use super::vcpu::Vcpu;
use crate::devices::pl031::Pl031;
use crate::devices::{self, Ctx, Device, Effects, Mmio, Signal};
use crate::vgic::{self, Kicks, v2::GicdAccess};
use core::sync::atomic::Ordering;

/// Drives SPI `intid` as `signal` says. Returns the vCPUs to kick, already marked in
/// `Vm::spi_work`.
pub(super) fn spi_line(vm: &Vm, intid: u32, signal: Signal) -> Kicks {
    let mut dist = vm.vgic.lock();
    let kicks = match signal {
        Signal::Level(high) => dist.set_line(intid, high),
        Signal::Edge => dist.set_pending(intid),
    };
    vm.spi_work.mark(kicks);
    kicks
}

/// Marks the vCPUs in `kicks` as having vGIC work and kicks the pCPUs the placement puts
/// them on (other than this one, whose scheduler looks at the marks itself) so they
/// refill their list registers.
pub(super) fn kick(vm: &Vm, kicks: Kicks) {
    vm.vgic_work.mark(kicks);
    for v in kicks.iter().filter(|&v| v < vm.config.vcpu_count) {
        vm.kick_pcpu_of(v);
    }
}

/// A distributor access outside the registers banked per vCPU (lock `Vm::vgic`).
fn distributor(vm: &Vm, access: &RegisterAccess) -> Effects {
    let mut dist = vm.vgic.lock();
    let e = device_access(vm, &mut *dist, None, access);
    if access.write {
        vm.groups.store(dist.enabled_groups().0, Ordering::Release);
        vm.spi_work.mark(e.kick);
    }
    e
}

/// SGI `sgi` from vCPU `sender` becomes pending for each vCPU in `targets` (each
/// redistributor's lock in turn), which are then kicked.
pub(super) fn send_sgis(vm: &Vm, sender: usize, sgi: u32, targets: Kicks) {
    for t in targets.iter() {
        if let Some(redist) = vm.redists.get(t) {
            redist.lock().send_sgi(sgi, sender);
        }
    }
    kick(vm, targets);
}

/// Accesses to offsets no device implements (RAZ/WI): counted, and the first few logged.
fn unknown_access(vm: &Vm, device: Device, offset: u64, write: bool) {
    use super::loglimit::{Suppressed, Verdict};
    vm.unknown_accesses.fetch_add(1, Ordering::Relaxed);
    if let Verdict::Print { suppressed } = vm.logs.unknown_access.check(crate::arch::counter()) {
        let what = if write { "write to" } else { "read of" };
        log::warn!(
            "VM '{}': {what} {device:?} offset {offset:#x}, which it does not implement (RAZ/WI){}",
            vm.name,
            Suppressed(suppressed)
        );
    }
}

/// One register access: `frame` names the vCPU frame for banked registers.
#[derive(Clone, Copy)]
struct RegisterAccess {
    offset: u64,
    size: u8,
    value: u64,
    write: bool,
    frame: usize,
}

/// Runs access `a` on device `dev` (the caller holds its lock). A changed interrupt line is
/// applied while the device's lock is still held, so a device's edges reach the vGIC in
/// order.
fn device_access<D: Mmio>(vm: &Vm, dev: &mut D, intid: Option<u32>, a: &RegisterAccess) -> Effects {
    let mut mem = VmMemory(vm);
    let mut ctx = Ctx { mem: &mut mem, frame: a.frame, mpidrs: &vm.mpidrs };
    let mut effects =
        if a.write { dev.write(a.offset, a.size, a.value, &mut ctx) } else { dev.read(a.offset, a.size, &mut ctx) };
    if let (Some(signal), Some(intid)) = (effects.line, intid) {
        let kicks = spi_line(vm, intid, signal);
        effects.kick.0 |= kicks.0;
    }
    effects
}

/// One emulated load or store described by the syndrome; `false`, with nothing done, when
/// no device of the VM covers it.
pub(super) fn mmio(vm: &Vm, vcpu: &mut Vcpu, ipa: u64, a: &Access, write: bool) -> bool {
    let Some((region, offset)) = devices::lookup(&vm.regions, ipa, a.size) else { return false };
    let reg_value = if a.reg == 31 { 0 } else { vcpu.regs.x[a.reg as usize] };
    let access = RegisterAccess { offset, size: a.size, value: devices::store_value(a, reg_value), write, frame: 0 };
    let effects = match region.device {
        Device::GicDistributor => distributor(vm, &access),
        Device::GicV2Distributor => match vgic::v2::classify(offset) {
            GicdAccess::Shared => distributor(vm, &access),
            GicdAccess::Banked => {
                // This vCPU's registers: its redistributor state.
                let me = vcpu.index;
                let mut redist = vm.redists[me].lock();
                if write {
                    let changed = vgic::v2::banked_write(&mut redist, me, offset, a.size, access.value);
                    Effects {
                        kick: if changed { Kicks(1 << me.min(63)) } else { Kicks::default() },
                        ..Default::default()
                    }
                } else {
                    Effects::value(vgic::v2::banked_read(&redist, me, offset, a.size))
                }
            }
            GicdAccess::Sgir => {
                if write && a.size == 4 {
                    let (sgi, targets) = vgic::v2::sgir_targets(vm.config.vcpu_count, vcpu.index, access.value);
                    send_sgis(vm, vcpu.index, sgi, targets);
                }
                Effects::default()
            }
        },
        Device::GicRedistributors => {
            // The region holds one frame pair per vCPU, so `n` names one (else RAZ/WI).
            let n = (offset / vgic::GICR_FRAME_SIZE) as usize;
            let frame = RegisterAccess { offset: offset % vgic::GICR_FRAME_SIZE, frame: n, ..access };
            match vm.redists.get(n) {
                Some(redist) => device_access(vm, &mut *redist.lock(), None, &frame),
                None => Effects::default(),
            }
        }
        Device::Pl011 => {
            let mut uart = vm.uart.lock();
            let e = device_access(vm, &mut *uart, region.intid, &access);
            // A transmitted byte changes no register (most of the UART's exits).
            if e.tx.is_none() {
                uart_changed(vm, &uart);
            }
            e
        }
        Device::Pl031 => {
            let mut rtc = vm.rtc.lock();
            let e = device_access(vm, &mut *rtc, region.intid, &access);
            rtc_changed(vm, &rtc, write);
            e
        }
        Device::VirtioBlk => match vm.virtio.as_ref() {
            Some(dev) => device_access(vm, &mut *dev.lock(), region.intid, &access),
            None => Effects::default(),
        },
        Device::Test => device_access(vm, &mut *vm.testdev.lock(), region.intid, &access),
        Device::VirtioWindow => device_access(vm, &mut crate::devices::virtio_window::EmptyTransports, None, &access),
    };
    if effects.unknown {
        unknown_access(vm, region.device, offset, write);
    }
    if let Some(byte) = effects.tx {
        match vm.console {
            Some(index) => crate::console::guest_output(index, byte),
            None => crate::console::write_bytes(&[byte]),
        }
        let _ = vm.console_log.lock().push(byte);
    }
    if !write && a.reg != 31 {
        vcpu.regs.x[a.reg as usize] = devices::load_value(a, effects.value);
    }
    kick(vm, effects.kick);
    true
}

/// Publishes the RTC's match for the schedulers (`Vm::rtc_alarm`; the caller holds
/// `Vm::rtc`). A write may have armed it: this pCPU watches it from now on, and arms its
/// EL2 timer for it at once (the guest may wait in WFI with no exit until then; the
/// scheduler keeps it among its deadlines after that, `sched::wake_at`).
fn rtc_changed(vm: &Vm, rtc: &Pl031, write: bool) {
    let me = if write { crate::arch::cpu_index() } else { None };
    vm.rtc_alarm.publish(rtc.alarm(), me);
    if let (Some(at), Some(_)) = (rtc.alarm(), me) {
        crate::arch::hyp_timer_arm_by(at);
    }
}

/// The RTC match of `vm`, if it is due at counter value `now`: its raw interrupt set and
/// its line driven, the vCPUs it is routed to kicked. The scheduler of every pCPU that
/// holds one of the VM's vCPUs calls this when it looks for work; without the due time
/// reached it costs one atomic load, and it never allocates (lock order: `Vm::rtc`, then
/// `Vm::vgic`).
pub fn rtc_due(vm: &Vm, now: u64) {
    if !vm.rtc_alarm.due(now) {
        return;
    }
    let intid = vm.regions.iter().find(|r| r.device == Device::Pl031).and_then(|r| r.intid);
    let kicks = {
        let mut rtc = vm.rtc.lock();
        let line = rtc.poll(now);
        rtc_changed(vm, &rtc, false);
        match (line, intid) {
            (Some(high), Some(intid)) => spi_line(vm, intid, Signal::Level(high)),
            _ => Kicks::default(),
        }
    };
    kick(vm, kicks);
}

/// A device access the syndrome did not describe (ISV = 0, e.g. a writeback form): fetch
/// the instruction from guest RAM, decode it, emulate it and update the base register.
/// `false` (the guest gets an abort) when any step fails.
pub(super) fn decode_and_emulate(vm: &Vm, vcpu: &mut Vcpu, ipa: u64) -> bool {
    let Some(insn) = crate::arch::guest_va_to_pa(vcpu.regs.pc).and_then(|pa| vm.ram.read_u32_at(pa)) else {
        return false;
    };
    let Some(d) = super::decode::decode(insn) else { return false };
    if !mmio(vm, vcpu, ipa, &d.access, d.write) {
        return false;
    }
    vm.decoded_accesses.fetch_add(1, Ordering::Relaxed);
    if let Some((rn, offset)) = d.writeback {
        let r = &mut vcpu.regs.x[rn as usize];
        *r = r.wrapping_add(offset as u64);
    }
    true
}

/// The console's VMs by their console index (lock `vm::CONSOLE_VMS`, a leaf), for input.
static CONSOLE_VMS: crate::sync::IrqLock<[Option<alloc::sync::Weak<Vm>>; crate::vm::console_mux::MAX_VMS]> =
    crate::sync::IrqLock::new([const { None }; crate::vm::console_mux::MAX_VMS]);

/// Makes `vm` (this run of it: a restarted VM is registered again) the one that gets the
/// console input routed to its console index.
pub fn set_console_vm(vm: &alloc::sync::Arc<Vm>) {
    if let Some(i) = vm.console
        && let Some(slot) = CONSOLE_VMS.lock().get_mut(i)
    {
        *slot = Some(alloc::sync::Arc::downgrade(vm));
    }
}

/// Bytes typed on the physical console: routed by the console (Ctrl-A three times moves
/// the input), each VM's into its UART, raising its interrupt.
pub fn console_input(bytes: &[u8]) {
    crate::console::input(bytes, &mut |index, bytes| {
        let vm = CONSOLE_VMS.lock().get(index).and_then(|w| w.as_ref()).and_then(|w| w.upgrade());
        if let Some(vm) = vm {
            receive(&vm, bytes);
        }
    });
}

/// `bytes` into `vm`'s UART, raising its interrupt.
fn receive(vm: &Vm, bytes: &[u8]) {
    let kicks = {
        let mut uart = vm.uart.lock();
        for &b in bytes {
            uart.receive(b);
        }
        uart_changed(vm, &uart);
        match uart.line_change() {
            Some(line) => spi_line(vm, super::memory_map::UART_INTID, Signal::Level(line)),
            None => Kicks::default(),
        }
    };
    kick(vm, kicks);
}
