//! Host tests of the real run loop over the fake arch (`arch::fake`): guests are Rust
//! programs whose HVCs, device accesses, SGIs and faults are the exits the loop handles, on
//! a fake machine of eight pCPUs (threads) that run their scheduler loops (`sched::park_loop`) between tests.

use super::run::{VcpuEnd, Vm, run_vm};
use super::{VmConfig, memory_map};
use crate::arch::fake::guest::{Guest, Taken, program, take_failures};
use crate::arch::fake::{self, Event};
use crate::hw::psci;
use crate::mm::GuestPhysAddr;
use crate::mm::range::{Range, RangeSet};
use alloc::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

mod debug;

/// Guest RAM of every test VM: QEMU virt's, 2 MiB.
const RAM: u64 = 0x4000_0000;

/// The fake machine, set up once: per-pCPU data for eight pCPUs, this thread pCPU 0 and
/// the others parked, frame and guest-RAM pools, the console. Tests hold the guard.
fn machine() -> MutexGuard<'static, ()> {
    let guard = fake::exclusive();
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let mpidrs: Vec<u64> = (0..fake::CPU_COUNT as u64).collect();
        crate::percpu::init(&mpidrs);
        crate::arch::init_frames(Range { start: 0x1_0000_0000, end: 0x1_0400_0000 });
        let mut free = RangeSet::new();
        free.insert(Range { start: 0x1_4000_0000, end: 0x1_8000_0000 }).expect("one free range");
        crate::arch::init_guest_ram(&free);
        crate::arch::set_irq_handler(crate::irq::entry);
        let uart = crate::platform::Uart {
            region: crate::platform::Region { base: 0x900_0000, size: 0x1000 },
            ..Default::default()
        };
        crate::console::init(Some((crate::arch::Uart::new(), uart)));
        for i in 1..fake::CPU_COUNT {
            fake::spawn_cpu(i, || {
                crate::percpu::this_cpu().online.store(true, Ordering::Release);
                crate::sched::park_loop()
            });
        }
        crate::percpu::this_cpu().online.store(true, Ordering::Release);
    });
    fake::become_cpu(0);
    fake::clear_log();
    let _ = take_failures();
    guard
}

/// A 2 MiB VM whose vCPU 0 starts at `entry` (a fake program registered there).
fn vm(name: &'static str, vcpus: usize, entry: u64) -> Vm {
    let config = VmConfig {
        name,
        ram_base: GuestPhysAddr(RAM),
        ram_size: 2 << 20,
        vcpu_count: vcpus,
        image: &[],
        entry: GuestPhysAddr(entry),
        arg: 0x1234,
        placement: super::Placement::identity(vcpus),
        devices: super::device_table(&super::config::virt_devices(
            crate::arch::gic_version(),
            vcpus,
            Some(super::config::ModuleRef(0)),
            true,
        ))
        .unwrap(),
    };
    Vm::new(config).expect("a test VM")
}

/// Runs `vm` to its end from this pCPU, failing the test after 30 s.
fn run(vm: &Arc<Vm>) -> VcpuEnd {
    let end = run_with_watchdog(|| run_vm(vm.clone()));
    let failures = take_failures();
    assert!(failures.is_empty(), "guest programs failed: {failures:?}");
    end
}

/// `f()`, or the test process aborts after 30 s (a VM that never ends would hang it).
fn run_with_watchdog<T>(f: impl FnOnce() -> T) -> T {
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            for _ in 0..3000 {
                if done.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            eprintln!("run loop test: the VM did not end within 30 s");
            std::process::abort();
        })
    };
    let r = f();
    done.store(true, Ordering::Release);
    let _ = watchdog.join();
    r
}

/// Values guest programs hand back to the test.
#[derive(Default)]
struct Seen(Mutex<Vec<(&'static str, u64)>>);

impl Seen {
    fn put(&self, what: &'static str, value: u64) {
        self.0.lock().unwrap().push((what, value));
    }
    fn get(&self, what: &str) -> Option<u64> {
        self.0.lock().unwrap().iter().find(|(w, _)| *w == what).map(|(_, v)| *v)
    }
}

/// A vCPU's GIC set up as Linux does it: the distributor's Group 1 on, all of its SGIs and
/// PPIs in Group 1 and enabled, its redistributor awake.
fn gic_on(g: &mut Guest, vcpu: u64) {
    let rd = memory_map::GICR + vcpu * crate::vgic::GICR_FRAME_SIZE;
    g.store(memory_map::GICD, 4, 0b10).unwrap();
    g.store(rd + 0x14, 4, 0).unwrap();
    g.store(rd + 0x1_0080, 4, u32::MAX as u64).unwrap();
    g.store(rd + 0x1_0100, 4, u32::MAX as u64).unwrap();
}

#[test]
fn hvc_and_smc_reach_psci_and_system_off_ends_the_vm() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    program(0x4000_0000, move |g| {
        s.put("x0 at entry", g.regs.x[0]);
        s.put("version by hvc", g.hvc(psci::VERSION, &[]));
        s.put("version by smc", g.smc(psci::VERSION, &[]));
        s.put("unknown", g.hvc(0x8400_0012, &[]));
        s.put("features cpu_on", g.hvc(psci::FEATURES, &[psci::CPU_ON_64 as u64]));
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let vm = Arc::new(vm("psci", 1, RAM));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    assert_eq!(seen.get("x0 at entry"), Some(0x1234), "vCPU 0 starts with the config's x0");
    assert_eq!(seen.get("version by hvc"), Some(psci::VERSION_1_1 as u64));
    assert_eq!(seen.get("version by smc"), Some(psci::VERSION_1_1 as u64), "a trapped SMC is stepped over");
    assert_eq!(seen.get("unknown"), Some(psci::NOT_SUPPORTED as u64));
    assert_eq!(seen.get("features cpu_on"), Some(0));
    assert_eq!(*vm.end_reason.lock(), Some(VcpuEnd::SystemOff));
    assert!(vm.ended.load(Ordering::Acquire));
}

#[test]
fn cpu_on_starts_another_vcpu_on_its_pcpu() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    program(0x4000_1000, move |g| {
        s.put("cpu_on", g.hvc(psci::CPU_ON_64, &[1, 0x4000_2000, 0x77]));
        s.put("cpu_on again", g.hvc(psci::CPU_ON_64, &[1, 0x4000_2000, 0x77]));
        while g.hvc(psci::AFFINITY_INFO_64, &[1, 0]) != psci::AFFINITY_OFF as u64 {}
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let s = seen.clone();
    program(0x4000_2000, move |g| {
        s.put("secondary x0", g.regs.x[0]);
        s.put("secondary mpidr", g.mpidr());
        s.put("secondary pcpu", g.cpu() as u64);
        g.hvc(psci::CPU_OFF, &[]);
    });
    let vm = Arc::new(vm("cpu-on", 2, 0x4000_1000));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    assert_eq!(seen.get("cpu_on"), Some(0), "CPU_ON succeeded");
    let again = seen.get("cpu_on again").map(|v| v as i64);
    assert!(
        again == Some(psci::ON_PENDING) || again == Some(psci::ALREADY_ON) || again == Some(psci::SUCCESS),
        "a second CPU_ON: {again:?}"
    );
    assert_eq!(seen.get("secondary x0"), Some(0x77), "context id in x0");
    assert_eq!(seen.get("secondary mpidr"), Some(1), "the guest sees MPIDR 1");
    assert_eq!(seen.get("secondary pcpu"), Some(1), "vCPU 1 ran on pCPU 1");
    assert!(fake::log().contains(&Event::Kick { from: Some(0), to: 1 }), "CPU_ON kicked pCPU 1: {:?}", fake::log());
}

#[test]
fn an_sgi_to_another_vcpu_kicks_its_pcpu_and_is_delivered() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let ready = Arc::new(AtomicBool::new(false));
    let r = ready.clone();
    program(0x4000_3000, move |g| {
        gic_on(g, 0);
        g.hvc(psci::CPU_ON_64, &[1, 0x4000_4000, 0]);
        while !r.load(Ordering::Acquire) {
            g.hvc(psci::VERSION, &[]);
        }
        // SGI 3 to vCPU 1: Aff1-3 = 0, TargetList bit 1.
        g.send_sgi((3 << 24) | 0b10).unwrap();
        while g.hvc(psci::AFFINITY_INFO_64, &[1, 0]) != psci::AFFINITY_OFF as u64 {}
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let s2 = seen.clone();
    let r = ready.clone();
    program(0x4000_4000, move |g| {
        gic_on(g, 1);
        r.store(true, Ordering::Release);
        let intid = g.wait_interrupt();
        g.eoi(intid);
        s2.put("intid", intid as u64);
        g.hvc(psci::CPU_OFF, &[]);
    });
    let _ = s;
    let vm = Arc::new(vm("sgi", 2, 0x4000_3000));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    assert_eq!(seen.get("intid"), Some(3), "vCPU 1 took SGI 3");
    let kicks: Vec<Event> = fake::log().into_iter().filter(|e| matches!(e, Event::Kick { to: 1, .. })).collect();
    assert!(kicks.contains(&Event::Kick { from: Some(0), to: 1 }), "the SGI kicked pCPU 1: {:?}", fake::log());
}

/// Makes the fake machine's GIC a GICv2 while it lives (a GICv3 again afterwards, also when
/// the test fails).
struct GicV2Board;

impl GicV2Board {
    fn new() -> Self {
        fake::gic::set_gic_v2(true);
        Self
    }
}

impl Drop for GicV2Board {
    fn drop(&mut self) {
        fake::gic::set_gic_v2(false);
    }
}

/// On a GICv2 board: vCPUs 0 and 1 each send SGI 5 to vCPU 2 through GICD_SGIR (a store
/// the bus decodes as the sender's), and vCPU 2 takes two interrupts, each list register
/// naming its sender.
#[test]
fn gicv2_sgis_from_two_senders_are_two_interrupts() {
    let _m = machine();
    let _board = GicV2Board::new();
    let seen = Arc::new(Seen::default());
    let ready = Arc::new(AtomicBool::new(false));
    let sgir = |target: u64, intid: u64| (1 << (16 + target)) | intid;
    let r = ready.clone();
    program(0x4000_3000, move |g| {
        g.store(memory_map::GICD, 4, 1).unwrap();
        g.hvc(psci::CPU_ON_64, &[2, 0x4000_4800, 0]);
        while !r.load(Ordering::Acquire) {
            g.hvc(psci::VERSION, &[]);
        }
        g.hvc(psci::CPU_ON_64, &[1, 0x4000_4000, 0]);
        g.store(memory_map::GICD + 0xf00, 4, sgir(2, 5)).unwrap();
        while g.hvc(psci::AFFINITY_INFO_64, &[2, 0]) != psci::AFFINITY_OFF as u64 {}
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    program(0x4000_4000, move |g| {
        g.store(memory_map::GICD + 0xf00, 4, sgir(2, 5)).unwrap();
        g.hvc(psci::CPU_OFF, &[]);
    });
    let s = seen.clone();
    let r = ready.clone();
    program(0x4000_4800, move |g| {
        g.store(memory_map::GICD + 0x100, 4, 0xffff).unwrap();
        r.store(true, Ordering::Release);
        let mut senders = 0u64;
        for _ in 0..2 {
            loop {
                if let Some(lr) = g.lrs().into_iter().find(|l| l.pending && !l.active) {
                    senders |= 1 << lr.source;
                    assert_eq!(lr.intid, 5);
                    assert!(!lr.group1, "Group 0, as the guest left it");
                    break;
                }
                g.wfi();
            }
            let intid = g.ack().unwrap();
            g.eoi(intid);
        }
        s.put("senders", senders);
        g.hvc(psci::CPU_OFF, &[]);
    });
    let vm = Arc::new(vm("gicv2-sgi", 3, 0x4000_3000));
    assert_eq!(vm.gic, crate::vgic::Version::V2);
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    assert_eq!(seen.get("senders"), Some(0b11), "one SGI 5 from vCPU 0 and one from vCPU 1");
}

/// The virtual timer's interrupt is injected tied to the physical PPI (HW = 1), which stays
/// active for the guest until its own deactivation ends both; the guest's CNTV_CTL reads
/// back as it wrote it (no IMASK from the hypervisor).
#[test]
fn a_timer_interrupt_is_injected() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    program(0x4000_5000, move |g| {
        gic_on(g, 0);
        g.arm_virtual_timer(crate::arch::ticks_from_us(2_000));
        let intid = g.wait_interrupt();
        s.put("intid", intid as u64);
        s.put("ctl", g.hw.vtimer.ctl);
        s.put("linked to", g.lrs().iter().find(|l| l.intid == 27).and_then(|l| l.hw).map_or(0, u64::from));
        s.put("physical active while handled", g.physical_active(27) as u64);
        g.stop_virtual_timer();
        g.eoi(intid);
        s.put("physical active after the EOI", g.physical_active(27) as u64);
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let vm = Arc::new(vm("timer", 1, 0x4000_5000));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    assert_eq!(seen.get("intid"), Some(27), "the virtual timer's PPI");
    assert_eq!(seen.get("ctl"), Some(1), "CNTV_CTL as the guest wrote it: ENABLE, no IMASK");
    assert_eq!(seen.get("linked to"), Some(27), "its list register has HW = 1, pINTID 27");
    assert_eq!(
        seen.get("physical active while handled"),
        Some(1),
        "the physical PPI is the guest's while it handles it"
    );
    assert_eq!(seen.get("physical active after the EOI"), Some(0), "the guest's deactivation ended the physical one");
}

/// Reads GICR_ISPENDR0 (an exit, so the hypervisor looks at the timer first) until
/// `pending` says yes about the virtual timer's PPI, or gives up after 2 s.
fn vtimer_pending_becomes(g: &mut Guest, pending: bool) -> bool {
    let ispendr0 = memory_map::GICR + 0x1_0200;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        if (g.load(ispendr0, 4).unwrap() & (1 << 27) != 0) == pending {
            return true;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    false
}

/// The interrupts the guest takes (and EOIs) in about 10 ms of work that makes no exit of
/// its own (a physical interrupt still makes it exit, and the hypervisor injects).
fn interrupts_in_10_ms(g: &mut Guest) -> u64 {
    let mut taken = 0;
    for _ in 0..200 {
        g.tick();
        if let Some(intid) = g.ack() {
            taken += 1;
            g.eoi(intid);
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    taken
}

/// The timer's interrupt follows its output, a level (Arm ARM D11.2.4: ENABLE and ISTATUS
/// and not IMASK): pending once it fires, and no longer pending once the guest disables the
/// timer, moves its compare value into the future or masks it, without taking it.
#[test]
fn a_timer_line_follows_its_output() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    program(0x4000_5400, move |g| {
        gic_on(g, 0);
        let ticks = crate::arch::ticks_from_us(300);
        g.arm_virtual_timer(ticks);
        s.put("fired: pending", vtimer_pending_becomes(g, true) as u64);
        g.stop_virtual_timer();
        s.put("disabled: not pending", vtimer_pending_becomes(g, false) as u64);
        s.put("disabled: physical inactive", !g.physical_active(27) as u64);
        g.arm_virtual_timer(ticks);
        s.put("fired again: pending", vtimer_pending_becomes(g, true) as u64);
        g.hw.vtimer.cval = g.virtual_count() + crate::arch::ticks_from_us(60_000_000);
        s.put("re-armed later: not pending", vtimer_pending_becomes(g, false) as u64);
        g.arm_virtual_timer(ticks);
        s.put("fired a third time: pending", vtimer_pending_becomes(g, true) as u64);
        g.hw.vtimer.ctl |= 2;
        s.put("masked: not pending", vtimer_pending_becomes(g, false) as u64);
        s.put("ctl", g.hw.vtimer.ctl);
        s.put("delivered", g.ack().is_some() as u64);
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let vm = Arc::new(vm("timer-line", 1, 0x4000_5400));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    for what in [
        "fired: pending",
        "disabled: not pending",
        "disabled: physical inactive",
        "fired again: pending",
        "re-armed later: not pending",
        "fired a third time: pending",
        "masked: not pending",
    ] {
        assert_eq!(seen.get(what), Some(1), "{what}");
    }
    assert_eq!(seen.get("ctl"), Some(3), "ENABLE and IMASK, as the guest wrote them");
    assert_eq!(seen.get("delivered"), Some(0), "nothing left to take once the line is low");
}

/// A timer still asserting when the guest EOIs interrupts it again at once (a level, not an
/// edge); once the handler moves the compare value into the future, it does not.
#[test]
fn a_timer_still_asserting_after_its_eoi_interrupts_again() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    program(0x4000_5800, move |g| {
        gic_on(g, 0);
        g.arm_virtual_timer(crate::arch::ticks_from_us(300));
        let first = g.wait_interrupt();
        g.eoi(first);
        let second = g.wait_interrupt();
        s.put("again", u64::from(first == 27 && second == 27));
        g.hw.vtimer.cval = g.virtual_count() + crate::arch::ticks_from_us(60_000_000);
        g.eoi(second);
        s.put("after re-arming", interrupts_in_10_ms(g));
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let vm = Arc::new(vm("timer-level", 1, 0x4000_5800));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    assert_eq!(seen.get("again"), Some(1), "the PPI came back after an EOI with the timer still asserting");
    assert_eq!(seen.get("after re-arming"), Some(0), "no interrupt once the compare value is in the future");
}

/// On a GICv2 the timer's list register is not tied to the physical PPI: it asks for an
/// exit on the guest's EOI, and the hypervisor keeps the physical PPI active while the
/// timer asserts (the virtual one pending again at once) and deactivates it once the timer
/// is re-armed (QEMU's GICv2 model does not re-signal a level a HW deactivation leaves).
#[test]
fn on_a_gicv2_a_timer_still_asserting_after_its_eoi_interrupts_again() {
    let _m = machine();
    let _board = GicV2Board::new();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    program(0x4000_5c00, move |g| {
        // The distributor on, and this CPU interface's banked SGIs and PPIs enabled.
        g.store(memory_map::GICD, 4, 0b11).unwrap();
        g.store(memory_map::GICD + 0x100, 4, u32::MAX as u64).unwrap();
        g.arm_virtual_timer(crate::arch::ticks_from_us(300));
        let first = g.wait_interrupt();
        let lr = g.lrs().into_iter().find(|l| l.intid == 27);
        s.put("exit on EOI, no HW link", u64::from(lr.is_some_and(|l| l.eoi && l.hw.is_none())));
        s.put("physical active while handled", g.physical_active(27) as u64);
        g.eoi(first);
        let second = g.wait_interrupt();
        s.put("again", u64::from(first == 27 && second == 27));
        g.hw.vtimer.cval = g.virtual_count() + crate::arch::ticks_from_us(60_000_000);
        g.eoi(second);
        s.put("after re-arming", interrupts_in_10_ms(g));
        s.put("physical active at the end", g.physical_active(27) as u64);
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let vm = Arc::new(vm("timer-gicv2", 1, 0x4000_5c00));
    assert_eq!(vm.gic, crate::vgic::Version::V2);
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    assert_eq!(seen.get("exit on EOI, no HW link"), Some(1), "the GICv2 list register asks for an exit on EOI");
    assert_eq!(seen.get("physical active while handled"), Some(1), "the physical PPI kept active for the guest");
    assert_eq!(seen.get("again"), Some(1), "the PPI came back after an EOI with the timer still asserting");
    assert_eq!(seen.get("after re-arming"), Some(0), "no interrupt once the compare value is in the future");
    assert_eq!(seen.get("physical active at the end"), Some(0), "the hypervisor deactivated the physical PPI");
}

#[test]
fn guest_faults_are_injected_back() {
    let _m = machine();
    let seen = Arc::new(Mutex::new(Vec::<Result<u64, Taken>>::new()));
    let s = seen.clone();
    program(0x4000_6000, move |g| {
        let unmapped = g.load(0x1000_0000, 8);
        let undefined = g.undefined().map(|()| 0);
        let store = g.store(0x1000_0000, 4, 5).map(|()| 0);
        s.lock().unwrap().extend([unmapped, undefined, store]);
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let vm = Arc::new(vm("faults", 1, 0x4000_6000));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    let seen = seen.lock().unwrap();
    let ec = |r: &Result<u64, Taken>| r.as_ref().err().map(|t| (t.esr >> 26, t.esr & 0x3f, t.vector_offset));
    assert_eq!(ec(&seen[0]), Some((0x25, 0x10, 0x200)), "load outside RAM and devices: external abort at EL1h");
    assert_eq!(seen[0].as_ref().err().map(|t| t.far), Some(0x1000_0000), "FAR of that abort");
    assert_eq!(ec(&seen[1]).map(|(e, _, o)| (e, o)), Some((0x00, 0x200)), "unemulated instruction: UNDEFINED");
    assert_eq!(seen[2].as_ref().err().map(|t| t.esr & (1 << 6)), Some(1 << 6), "store fault has WnR");
}

#[test]
fn mmio_reaches_each_device() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    program(0x4000_7000, move |g| {
        s.put("gicd typer", g.load(memory_map::GICD + 0x4, 4).unwrap());
        s.put("gicr typer", g.load(memory_map::GICR + 0x8, 8).unwrap());
        s.put("uart periph id 2", g.load(memory_map::UART + 0xfe8, 4).unwrap());
        s.put("rtc periph id 0", g.load(memory_map::RTC + 0xfe0, 4).unwrap());
        g.store(memory_map::UART, 4, b'Z' as u64).unwrap();
        s.put("virtio magic", g.load(memory_map::VIRTIO_BLK, 4).unwrap());
        s.put("virtio device id", g.load(memory_map::VIRTIO_BLK + 8, 4).unwrap());
        s.put("window magic", g.load(memory_map::VIRTIO_WINDOW + 31 * 0x200, 4).unwrap());
        s.put("window device id", g.load(memory_map::VIRTIO_WINDOW + 31 * 0x200 + 8, 4).unwrap());
        g.store(memory_map::VIRTIO_WINDOW + 0x70, 4, 0xff).unwrap();
        g.store(memory_map::TEST_DEVICE + 8, 2, 0xbeef).unwrap();
        s.put("test device", g.load(memory_map::TEST_DEVICE + 8, 8).unwrap());
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let mut v = vm("mmio", 1, 0x4000_7000);
    v.attach_disk(Vec::leak(vec![0u8; 4096])).unwrap();
    let vm = Arc::new(v);
    let before = crate::arch::fake::uart::output().len();
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    assert_eq!(seen.get("gicd typer").map(|t| t & 0x1f), Some(3), "GICD_TYPER.ITLinesNumber: 128 INTIDs");
    assert_eq!(seen.get("gicr typer").map(|t| t & (1 << 4)), Some(1 << 4), "GICR_TYPER.Last on the only frame");
    assert_eq!(seen.get("uart periph id 2"), Some(0x14), "read from the UART's register page");
    assert_eq!(seen.get("rtc periph id 0"), Some(0x31), "the PL031's part number");
    assert_eq!(&vm.console_log.lock()[..], b"Z", "the DR write reached the console");
    assert!(crate::arch::fake::uart::output()[before..].contains(&b'Z'), "and the physical UART");
    assert_eq!(seen.get("virtio magic"), Some(0x7472_6976), "virtio-mmio magic 'virt'");
    assert_eq!(seen.get("virtio device id"), Some(2), "a block device");
    assert_eq!(seen.get("window magic"), Some(0x7472_6976), "virt's transport 31: a transport");
    assert_eq!(seen.get("window device id"), Some(0), "with no device behind it");
    assert_eq!(seen.get("test device"), Some(0xbeef), "the test device's register, written 2 bytes wide");
    assert!(vm.exits[0].load(Ordering::Relaxed) >= 5, "the trapped accesses were exits");
}

/// A VM whose placement is not the identity: vCPU 0 on pCPU 2, vCPU 1 on pCPU 3. CPU_ON,
/// SGIs both ways and a timer; the kicks go to the pCPUs the placement names.
#[test]
fn a_vm_placed_on_pcpus_2_and_3() {
    use crate::ids::CpuId;
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let ready = Arc::new(AtomicBool::new(false));
    let (s, r) = (seen.clone(), ready.clone());
    program(0x4000_8000, move |g| {
        gic_on(g, 0);
        s.put("vcpu 0 pcpu", g.cpu() as u64);
        s.put("vcpu 0 mpidr", g.mpidr());
        g.hvc(psci::CPU_ON_64, &[1, 0x4000_9000, 0]);
        while !r.load(Ordering::Acquire) {
            g.hvc(psci::VERSION, &[]);
        }
        g.send_sgi((5 << 24) | 0b10).unwrap();
        let back = g.wait_interrupt();
        g.eoi(back);
        s.put("vcpu 0 got", back as u64);
        while g.hvc(psci::AFFINITY_INFO_64, &[1, 0]) != psci::AFFINITY_OFF as u64 {}
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let (s, r) = (seen.clone(), ready.clone());
    program(0x4000_9000, move |g| {
        gic_on(g, 1);
        s.put("vcpu 1 pcpu", g.cpu() as u64);
        s.put("vcpu 1 mpidr", g.mpidr());
        r.store(true, Ordering::Release);
        let sgi = g.wait_interrupt();
        g.eoi(sgi);
        s.put("vcpu 1 got", sgi as u64);
        g.arm_virtual_timer(crate::arch::ticks_from_us(1_000));
        let timer = g.wait_interrupt();
        g.stop_virtual_timer();
        g.eoi(timer);
        s.put("vcpu 1 timer", timer as u64);
        // SGI 6 back to vCPU 0.
        g.send_sgi((6 << 24) | 0b01).unwrap();
        g.hvc(psci::CPU_OFF, &[]);
    });
    let mut config = vm("placed", 2, 0x4000_8000).config;
    config.placement = super::Placement::on(&[CpuId(2), CpuId(3)]).unwrap();
    let vm = Arc::new(Vm::new(config).expect("a placed VM"));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    assert_eq!(seen.get("vcpu 0 pcpu"), Some(2));
    assert_eq!(seen.get("vcpu 1 pcpu"), Some(3));
    assert_eq!((seen.get("vcpu 0 mpidr"), seen.get("vcpu 1 mpidr")), (Some(0), Some(1)), "the guest's own MPIDRs");
    assert_eq!(seen.get("vcpu 1 got"), Some(5), "SGI 5 from vCPU 0 to vCPU 1");
    assert_eq!(seen.get("vcpu 1 timer"), Some(27), "vCPU 1's timer on pCPU 3");
    assert_eq!(seen.get("vcpu 0 got"), Some(6), "SGI 6 back from vCPU 1");
    let log = fake::log();
    assert!(log.contains(&Event::Kick { from: Some(2), to: 3 }), "pCPU 2 kicked pCPU 3: {log:?}");
    assert!(log.contains(&Event::Kick { from: Some(3), to: 2 }), "pCPU 3 kicked pCPU 2: {log:?}");
    assert!(!log.iter().any(|e| matches!(e, Event::Kick { to: 1, .. })), "nobody kicked pCPU 1: {log:?}");
}

/// Two VMs of one vCPU each on one pCPU: each waits for its timer in WFI (trapped, as the
/// pCPU has another vCPU), so the pCPU switches between them; each finds its EL1 registers,
/// FP/SIMD registers and timer as it left them every time.
#[test]
fn two_vms_take_turns_on_one_pcpu() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    for (entry, seed) in [(0x4000_a000u64, 1u64), (0x4000_b000, 2)] {
        let s = seen.clone();
        program(entry, move |g| {
            gic_on(g, 0);
            let mut bad = 0;
            for round in 0..20u64 {
                let mark = (seed << 32) | round;
                g.hw.el1.tpidr_el1 = mark;
                g.hw.el1.sp_el0 = !mark;
                g.hw.fp.q[7] = (mark as u128) << 64 | 0x77;
                g.hw.ptimer.cval = mark;
                g.arm_virtual_timer(crate::arch::ticks_from_us(300));
                let cval = g.hw.vtimer.cval;
                let intid = g.wait_interrupt();
                let ctl = g.hw.vtimer.ctl;
                g.eoi(intid);
                g.stop_virtual_timer();
                let intact = intid == 27
                    && g.hw.el1.tpidr_el1 == mark
                    && g.hw.el1.sp_el0 == !mark
                    && g.hw.fp.q[7] == (mark as u128) << 64 | 0x77
                    && g.hw.ptimer.cval == mark
                    && g.hw.vtimer.cval == cval
                    // Its timer came due while it was put away: the saved control is untouched.
                    && ctl == 1;
                bad += u64::from(!intact);
            }
            s.put(if seed == 1 { "a bad rounds" } else { "b bad rounds" }, bad);
            g.hvc(psci::SYSTEM_OFF, &[]);
        });
    }
    let switches = run_two_on_pcpu0(("turn-a", 0x4000_a000), ("turn-b", 0x4000_b000));
    assert_eq!(seen.get("a bad rounds"), Some(0), "VM a's state intact after every switch");
    assert_eq!(seen.get("b bad rounds"), Some(0), "VM b's state intact after every switch");
    assert!(switches >= 20, "the pCPU switched {switches} times");
}

/// Runs two one-vCPU VMs, named and entered as `a` and `b` say, both on pCPU 0, until both
/// power off (the guest programs must not fail); the number of switches pCPU 0 made.
fn run_two_on_pcpu0(a: (&'static str, u64), b: (&'static str, u64)) -> u64 {
    use crate::ids::CpuId;
    let make = |(name, entry): (&'static str, u64)| {
        let mut config = vm(name, 1, entry).config;
        config.placement = super::Placement::on(&[CpuId(0)]).unwrap();
        Arc::new(Vm::new(config).expect("a VM"))
    };
    let (a, b) = (make(a), make(b));
    let me = crate::percpu::this_cpu();
    let before = me.switches.load(Ordering::Relaxed);
    crate::sched::start_vm(&a);
    crate::sched::start_vm(&b);
    assert_eq!(run_with_watchdog(|| crate::sched::wait_vm(&a)), VcpuEnd::SystemOff);
    assert_eq!(run_with_watchdog(|| crate::sched::wait_vm(&b)), VcpuEnd::SystemOff);
    let failures = take_failures();
    assert!(failures.is_empty(), "guest programs failed: {failures:?}");
    me.switches.load(Ordering::Relaxed) - before
}

/// A configuration the VM cannot be built from is refused with what is wrong, and takes
/// nothing (its VMID goes back: 300 refusals would exhaust 255 VMIDs otherwise).
#[test]
fn bad_configurations_are_refused() {
    use super::config::{DeviceKind, DeviceSpec};
    use super::run::VmError;
    use crate::ids::CpuId;
    let _m = machine();
    let good = vm("good", 2, RAM).config;
    let refused = |c: VmConfig| match Vm::new(c) {
        Err(VmError::BadConfig(why)) => why,
        Err(e) => panic!("refused for another reason: {e:?}"),
        Ok(_) => panic!("accepted"),
    };
    for _ in 0..150 {
        let mut c = good;
        c.placement = super::Placement::on(&[CpuId(0), CpuId(fake::CPU_COUNT)]).unwrap();
        assert!(refused(c).contains("pCPU the machine does not have"));
        let mut c = good;
        c.placement = super::Placement::identity(1);
        assert!(refused(c).contains("one pCPU per vCPU"));
    }
    let with = |f: &dyn Fn(&mut Vec<DeviceSpec>)| {
        let mut c = good;
        let mut d: Vec<DeviceSpec> = c.devices.iter().copied().collect();
        f(&mut d);
        c.devices = super::device_table(&d).unwrap();
        c
    };
    let pl011 = |d: &mut Vec<DeviceSpec>| d.iter().position(|x| x.kind == DeviceKind::Pl011).unwrap();
    let moved = with(&|d| {
        let i = pl011(d);
        d[i].ipa = Range { start: 0x0910_0000, end: 0x0910_1000 };
    });
    for _ in 0..300 {
        assert!(refused(moved).contains("PL011"), "refused after its VMID and RAM were taken: both go back");
    }
    let overlapping = with(&|d| {
        let i = pl011(d);
        d[i].kind = DeviceKind::Test;
        d.push(DeviceSpec { kind: DeviceKind::Pl011, ipa: d[i].ipa, intid: Some(33) });
    });
    assert!(refused(overlapping).contains("overlap"));
    let no_gic = with(&|d| d.retain(|x| x.kind != DeviceKind::GicDistributor));
    assert!(refused(no_gic).contains("needs its vGIC"));
    let short = with(&|d| {
        let i = pl011(d);
        d[i].ipa.end -= 0x800;
    });
    assert!(refused(short).contains("size of its registers"));
    let mut in_ram = good;
    in_ram.ram_base = GuestPhysAddr(0x0800_0000);
    assert!(refused(in_ram).contains("overlaps the device regions"));
}

/// Time slices: a vCPU that never waits shares its pCPU with another VM's vCPU, which still
/// gets its timer interrupts (the EL2 timer ends the spinner's slice, and the scheduler makes
/// the other's timer pending when it is due).
#[test]
fn a_spinning_vcpu_is_preempted_for_another() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let done = Arc::new(AtomicBool::new(false));
    let (s, d) = (seen.clone(), done.clone());
    program(0x4000_c000, move |g| {
        let mut spins = 0u64;
        while !d.load(Ordering::Acquire) {
            g.tick();
            spins += 1;
        }
        s.put("spins", spins);
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let (s, d) = (seen.clone(), done.clone());
    program(0x4000_d000, move |g| {
        gic_on(g, 0);
        let mut taken = 0;
        for _ in 0..5 {
            g.arm_virtual_timer(crate::arch::ticks_from_us(2_000));
            let intid = g.wait_interrupt();
            g.eoi(intid);
            g.stop_virtual_timer();
            taken += u64::from(intid == 27);
        }
        s.put("timer interrupts", taken);
        d.store(true, Ordering::Release);
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    run_two_on_pcpu0(("spinner", 0x4000_c000), ("waiter", 0x4000_d000));
    assert_eq!(seen.get("timer interrupts"), Some(5), "the waiting VM took its five timer interrupts");
    assert!(seen.get("spins").is_some_and(|n| n > 0), "the spinner ran too");
}

/// A posted job that runs a scheduler loop of its own (as a VM's home does, `guest::keep`)
/// can idle in it: the outer loop does not hold the pCPU's job lock while the job runs
/// (it did, and the inner idle spun on it for ever when its run queue emptied).
#[test]
fn a_job_can_run_a_scheduler_loop_that_idles() {
    use core::sync::atomic::AtomicUsize;
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static DONE: AtomicBool = AtomicBool::new(false);
    fn job() {
        // The inner loop idles once: the EL2 timer wakes it, then it is done.
        crate::arch::hyp_timer_arm(crate::arch::counter() + crate::arch::ticks_from_us(1_000));
        crate::sched::run(&|| CALLS.fetch_add(1, Ordering::AcqRel) >= 1);
        DONE.store(true, Ordering::Release);
    }
    let _m = machine();
    let me = crate::percpu::this_cpu().id;
    crate::percpu::post(me, job);
    run_with_watchdog(|| crate::sched::run(&|| DONE.load(Ordering::Acquire)));
    assert!(CALLS.load(Ordering::Acquire) >= 2, "the job's own loop looked at its condition twice, idling between");
}

/// The RTC's registers as a guest reaches them (QEMU virt's PL031 at 0x09010000).
mod rtc {
    pub const DR: u64 = super::memory_map::RTC;
    pub const MR: u64 = DR + 0x04;
    pub const LR: u64 = DR + 0x08;
    pub const IMSC: u64 = DR + 0x10;
    pub const RIS: u64 = DR + 0x14;
    pub const MIS: u64 = DR + 0x18;
    pub const ICR: u64 = DR + 0x1c;
}

/// A guest sets the RTC's match for the next second and unmasks it (vCPU 0 itself, or
/// vCPU 1 on pCPU 1, which then powers off); vCPU 0 on pCPU 0 only waits, making no exit
/// of its own. The pCPU whose vCPU set the alarm wakes for it and raises SPI 34, and vCPU
/// 0 takes the interrupt, sees it in RTCMIS, clears it with RTCICR and finds the line low.
fn rtc_alarm_while_the_guest_only_waits(set_by_vcpu_1: bool) -> Arc<Vm> {
    let seen = Arc::new(Seen::default());
    let set_alarm = |g: &mut Guest, s: &Seen| {
        let dr = g.load(rtc::DR, 4).unwrap();
        s.put("MR", dr + 1);
        s.put("set at", crate::arch::counter());
        g.store(rtc::MR, 4, dr + 1).unwrap();
        g.store(rtc::IMSC, 4, 1).unwrap();
        s.put("RIS before", g.load(rtc::RIS, 4).unwrap());
    };
    let s = seen.clone();
    program(0x4000_e000, move |g| {
        gic_on(g, 0);
        // SPI 34: Group 1 and enabled; IROUTER 0 routes it to vCPU 0.
        g.store(memory_map::GICD + 0x84, 4, 1 << 2).unwrap();
        g.store(memory_map::GICD + 0x104, 4, 1 << 2).unwrap();
        if set_by_vcpu_1 {
            g.hvc(psci::CPU_ON_64, &[1, 0x4000_f000, 0]);
        } else {
            set_alarm(g, &s);
        }
        // Waits without an exit of its own (only a physical interrupt takes the pCPU back).
        let mut got = None;
        for _ in 0..3_000 {
            got = g.ack();
            if got.is_some() {
                break;
            }
            g.tick();
            std::thread::sleep(Duration::from_millis(1));
        }
        s.put("taken at", crate::arch::counter());
        s.put("intid", got.map_or(0, u64::from));
        s.put("DR when taken", g.load(rtc::DR, 4).unwrap());
        s.put("MIS when taken", g.load(rtc::MIS, 4).unwrap());
        g.store(rtc::ICR, 4, 1).unwrap();
        s.put("RIS after ICR", g.load(rtc::RIS, 4).unwrap());
        if let Some(intid) = got {
            g.eoi(intid);
        }
        while set_by_vcpu_1 && g.hvc(psci::AFFINITY_INFO_64, &[1, 0]) != psci::AFFINITY_OFF as u64 {}
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let s = seen.clone();
    program(0x4000_f000, move |g| {
        set_alarm(g, &s);
        g.hvc(psci::CPU_OFF, &[]);
    });
    let vm = Arc::new(vm("rtc-alarm", 2, 0x4000_e000));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    assert_eq!(seen.get("RIS before"), Some(0), "not due when set");
    assert_eq!(seen.get("intid"), Some(34), "the RTC's SPI reached vCPU 0");
    let (set, taken) = (seen.get("set at").unwrap(), seen.get("taken at").unwrap());
    let took_ms = (taken - set) * 1000 / crate::arch::counter_frequency();
    assert!(took_ms <= 1_500, "the alarm came {took_ms} ms after it was set, for the next second");
    let (mr, dr) = (seen.get("MR").unwrap(), seen.get("DR when taken").unwrap());
    assert!(dr == mr || dr == mr + 1, "taken when RTCDR reached RTCMR ({mr}), not before: RTCDR {dr}");
    assert_eq!(seen.get("MIS when taken"), Some(1));
    assert_eq!(seen.get("RIS after ICR"), Some(0), "RTCICR cleared it");
    assert_eq!(vm.vgic.lock().spi(34).map(|i| i.line), Some(false), "and the line went low");
    vm
}

#[test]
fn the_rtc_alarm_fires_for_a_guest_that_only_waits() {
    let _m = machine();
    rtc_alarm_while_the_guest_only_waits(false);
}

#[test]
fn the_rtc_alarm_fires_when_another_pcpus_vcpu_set_it() {
    let _m = machine();
    rtc_alarm_while_the_guest_only_waits(true);
    let log = fake::log();
    assert!(log.contains(&Event::Kick { from: Some(1), to: 0 }), "pCPU 1 raised it and kicked pCPU 0: {log:?}");
}

/// Each VM has its own clock: a VM that loads its RTC changes its own time, and the next
/// VM reads the board's.
#[test]
fn a_vm_setting_its_rtc_changes_only_its_own_time() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    program(0x4001_0000, move |g| {
        g.store(rtc::LR, 4, 2_000_000_000).unwrap();
        s.put("a DR", g.load(rtc::DR, 4).unwrap());
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let s = seen.clone();
    program(0x4001_1000, move |g| {
        s.put("b DR", g.load(rtc::DR, 4).unwrap());
        s.put("b LR", g.load(rtc::LR, 4).unwrap());
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let a = Arc::new(vm("rtc-a", 1, 0x4001_0000));
    let b = Arc::new(vm("rtc-b", 1, 0x4001_1000));
    assert_eq!(run(&a), VcpuEnd::SystemOff);
    assert_eq!(run(&b), VcpuEnd::SystemOff);
    let a_dr = seen.get("a DR").unwrap();
    assert!((2_000_000_000..2_000_000_002).contains(&a_dr), "VM a reads what it loaded: {a_dr}");
    let board = crate::wallclock::board().seconds_at(crate::arch::counter(), crate::arch::counter_frequency());
    let b_dr = seen.get("b DR").unwrap();
    assert!(b_dr <= board && board - b_dr <= 1, "VM b reads the board's time ({board} s): {b_dr}");
    assert_eq!(seen.get("b LR"), Some(0), "and nothing was loaded into its RTC");
}
