//! Test guests: small images from tests/guests, run in a VM on this pCPU, reporting
//! through the test ABI.

use super::{Ctx, check, check_eq};
use crate::hw::el2::pstate;
use crate::hw::esr::{ESR, ISS_DATA_ABORT, ec, fsc, syndrome};
use crate::hw::psci;
use crate::mm::GuestPhysAddr;
use crate::mm::range::Range;
use crate::vm::VmConfig;
use crate::vm::run::{VcpuEnd, Vm, run_vm};
use alloc::sync::Arc;

core::arch::global_asm!(concat!(
    include_str!("../../tests/guests/common.S"),
    include_str!("../../tests/guests/basic.S")
));
core::arch::global_asm!(concat!(include_str!("../../tests/guests/common.S"), include_str!("../../tests/guests/smp.S")));
core::arch::global_asm!(concat!(
    include_str!("../../tests/guests/common.S"),
    include_str!("../../tests/guests/mmio.S")
));
core::arch::global_asm!(concat!(include_str!("../../tests/guests/common.S"), include_str!("../../tests/guests/gic.S")));
core::arch::global_asm!(concat!(
    include_str!("../../tests/guests/common.S"),
    include_str!("../../tests/guests/gic2.S")
));
core::arch::global_asm!(concat!(
    include_str!("../../tests/guests/common.S"),
    include_str!("../../tests/guests/switch.S")
));
core::arch::global_asm!(concat!(include_str!("../../tests/guests/common.S"), include_str!("../../tests/guests/cpu.S")));
core::arch::global_asm!(concat!(
    include_str!("../../tests/guests/common.S"),
    include_str!("../../tests/guests/uart.S")
));
core::arch::global_asm!(concat!(
    include_str!("../../tests/guests/common.S"),
    include_str!("../../tests/guests/walk.S")
));
core::arch::global_asm!(concat!(
    include_str!("../../tests/guests/common.S"),
    include_str!("../../tests/guests/cache.S")
));
core::arch::global_asm!(concat!(
    include_str!("../../tests/guests/common.S"),
    include_str!("../../tests/guests/suspend.S")
));
core::arch::global_asm!(concat!(
    include_str!("../../tests/guests/common.S"),
    include_str!("../../tests/guests/debug.S")
));

unsafe extern "C" {
    static guest_basic_start: u8;
    static guest_basic_end: u8;
    static guest_smp_start: u8;
    static guest_smp_end: u8;
    static guest_mmio_start: u8;
    static guest_mmio_end: u8;
    static guest_gic_start: u8;
    static guest_gic_end: u8;
    static guest_gic2_start: u8;
    static guest_gic2_end: u8;
    static guest_cpu_start: u8;
    static guest_cpu_end: u8;
    static guest_uart_start: u8;
    static guest_uart_end: u8;
    static guest_walk_start: u8;
    static guest_walk_end: u8;
    static guest_cache_start: u8;
    static guest_cache_end: u8;
    static guest_suspend_start: u8;
    static guest_suspend_end: u8;
    static guest_debug_start: u8;
    static guest_debug_end: u8;
    static guest_switch_start: u8;
    static guest_switch_end: u8;
}

fn blob(start: *const u8, end: *const u8) -> &'static [u8] {
    // SAFETY: the two symbols delimit one guest blob in the image's read-only data.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

fn basic_image() -> &'static [u8] {
    blob(&raw const guest_basic_start, &raw const guest_basic_end)
}

fn mmio_image() -> &'static [u8] {
    blob(&raw const guest_mmio_start, &raw const guest_mmio_end)
}

fn smp_image() -> &'static [u8] {
    blob(&raw const guest_smp_start, &raw const guest_smp_end)
}

/// A 2 MiB test VM at [`GUEST_RAM_IPA`] running `image` from its start; a creation error
/// is a failed check.
fn new_vm(ctx: &mut Ctx, name: &'static str, image: &'static [u8], vcpu_count: usize, arg: u64) -> Option<Vm> {
    new_vm_on(ctx, name, image, crate::vm::Placement::identity(vcpu_count), arg)
}

/// As [`new_vm`], with vCPU i on pCPU `placement.cpu(i)`.
fn new_vm_on(
    ctx: &mut Ctx,
    name: &'static str,
    image: &'static [u8],
    placement: crate::vm::Placement,
    arg: u64,
) -> Option<Vm> {
    let vcpu_count = placement.len();
    let config = VmConfig {
        name,
        ram_base: GuestPhysAddr(GUEST_RAM_IPA),
        ram_size: 2 << 20,
        vcpu_count,
        image,
        entry: GuestPhysAddr(GUEST_RAM_IPA),
        arg,
        placement,
        devices: crate::vm::device_table(&crate::vm::config::virt_devices(
            crate::arch::gic_version(),
            vcpu_count,
            None,
            true,
        ))
        .expect("the virt layout fits"),
    };
    match Vm::new(config) {
        Ok(mut vm) => {
            // The GIC the guest has, where tests/guests/common.S reads it (GIC_INFO).
            let version: u64 = if crate::arch::gic_version() == crate::vgic::Version::V2 { 2 } else { 3 };
            if let Err(e) = vm.load(GUEST_RAM_IPA + GIC_INFO_OFFSET, &version.to_le_bytes()) {
                check!(ctx, false, "{name}: storing GIC_INFO: {e:?}");
                return None;
            }
            Some(vm)
        }
        Err(e) => {
            check!(ctx, false, "{name} VM creation: {e:?}");
            None
        }
    }
}

/// Guest RAM lives at this IPA, away from where the hypervisor's image is in PA space, so
/// that the guest can try the hypervisor's address and find nothing.
const GUEST_RAM_IPA: u64 = 0x8000_0000;
/// Where in a test guest's RAM the harness stores its GIC version (`GIC_INFO` in
/// tests/guests/common.S): the last page of its 2 MiB.
const GIC_INFO_OFFSET: u64 = 0x1f_f000;

/// The "gic" guest for the board's GIC: `gic` (ICC_* registers, GICv3) or `gic2` (the
/// memory-mapped GICv2 CPU interface and GICD_SGIR).
fn gic_image() -> &'static [u8] {
    match crate::arch::gic_version() {
        crate::vgic::Version::V3 => blob(&raw const guest_gic_start, &raw const guest_gic_end),
        crate::vgic::Version::V2 => blob(&raw const guest_gic2_start, &raw const guest_gic2_end),
    }
}

fn run_basic(ctx: &mut Ctx, round: u32) {
    let hv = crate::start::boot_info().layout.image.whole.start;
    let canary_before = crate::arch::aarch64::exception::probe_load(hv + 0x38);
    let Some(vm) = new_vm(ctx, "basic", basic_image(), 1, hv) else { return };
    check!(ctx, vm.translate(hv).is_none(), "round {round}: the hypervisor's address is not in the guest's stage-2");
    check!(ctx, vm.translate(GUEST_RAM_IPA).is_some(), "round {round}: guest RAM is mapped");
    let vm = Arc::new(vm);
    let end = run_vm(vm.clone());
    check_eq!(ctx, end, VcpuEnd::SystemOff, "round {round}: guest ended with SYSTEM_OFF");
    let reports = *vm.reports.lock();
    let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
    let nr = psci::NOT_SUPPORTED as u64;
    check_eq!(ctx, reports.len(), 16, "round {round}: all reports arrived");
    let version = psci::VERSION_1_1 as u64;
    check_eq!(ctx, get(1), Some(version), "round {round}: PSCI_VERSION by HVC");
    check_eq!(ctx, get(2), Some(version), "round {round}: PSCI_VERSION by SMC");
    check_eq!(ctx, get(3), Some(nr), "round {round}: unknown PSCI id by HVC -> NOT_SUPPORTED");
    check_eq!(ctx, get(4), Some(nr), "round {round}: unknown SiP id by HVC -> NOT_SUPPORTED");
    check_eq!(ctx, get(5), Some(nr), "round {round}: unknown id by SMC -> NOT_SUPPORTED");
    check_eq!(ctx, get(6), Some(0), "round {round}: PSCI_FEATURES(CPU_ON_64)");
    check_eq!(ctx, get(7), Some(psci::MIGRATE_NOT_REQUIRED as u64), "round {round}: MIGRATE_INFO_TYPE");
    if round == 1 {
        ctx.section("guest-faults");
    }
    check_eq!(ctx, get(8).map(|e| ESR::EC.read(e)), Some(ec::UNKNOWN), "round {round}: unemulated PMCR_EL0 -> UNDEF");
    let sea = |e: u64| (ESR::EC.read(e), ISS_DATA_ABORT::DFSC.read(e));
    check_eq!(
        ctx,
        get(9).map(sea),
        Some((ec::DATA_ABORT_SAME_EL, fsc::SEA)),
        "round {round}: load from unmapped IPA -> external abort"
    );
    check_eq!(ctx, get(10), Some(0x1000_0000), "round {round}: FAR of that abort");
    check_eq!(
        ctx,
        get(11).map(sea),
        Some((ec::DATA_ABORT_SAME_EL, fsc::SEA)),
        "round {round}: load from the hypervisor's PA -> external abort"
    );
    check_eq!(ctx, get(12), Some(hv), "round {round}: FAR of that abort");
    check_eq!(
        ctx,
        get(13).map(|e| (ESR::EC.read(e), ISS_DATA_ABORT::WNR.is_set(e))),
        Some((ec::DATA_ABORT_SAME_EL, true)),
        "round {round}: store to unmapped IPA -> abort with WnR"
    );
    check_eq!(ctx, get(14), Some(0x5a5a), "round {round}: the faulting load left its register alone");
    check_eq!(ctx, get(15), Some(0xbeef), "round {round}: guest RAM read back");
    check_eq!(ctx, get(16), Some(0), "round {round}: guest RAM starts scrubbed (no trace of an earlier VM)");
    check_eq!(
        ctx,
        crate::arch::aarch64::exception::probe_load(hv + 0x38),
        canary_before,
        "round {round}: hypervisor image untouched"
    );
}

pub fn run(ctx: &mut Ctx) {
    run_basic(ctx, 1);
    // Again: the next guest runs on a hypervisor that has just survived the first.
    ctx.section("guest-next-guest-runs");
    run_basic(ctx, 2);
}

/// The "smp" guest on every pCPU: CPU_ON and its errors, AFFINITY_INFO, CPU_OFF, VMPIDR,
/// and a shared counter incremented with exclusives from every secondary vCPU.
pub fn run_smp(ctx: &mut Ctx) {
    let n = crate::percpu::all().len();
    if n < 2 {
        ctx.skip(format_args!("one pCPU: the smp guest needs two or more"));
        return;
    }
    let Some(vm) = new_vm(ctx, "smp", smp_image(), n, n as u64).map(Arc::new) else { return };
    let end = run_vm(vm.clone());
    check_eq!(ctx, end, VcpuEnd::SystemOff, "smp guest ended with SYSTEM_OFF");
    let reports = *vm.reports.lock();
    let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
    let as_code = |v: Option<u64>| v.map(|v| v as i64);
    check_eq!(ctx, get(1), Some(0x8000_0000), "vCPU 0 sees MPIDR 0 (with RES1 bit 31)");
    check_eq!(ctx, as_code(get(2)), Some(psci::ALREADY_ON), "CPU_ON(self) -> ALREADY_ON");
    check_eq!(ctx, as_code(get(3)), Some(psci::INVALID_PARAMETERS), "CPU_ON(bad MPIDR) -> INVALID_PARAMETERS");
    check_eq!(ctx, as_code(get(4)), Some(psci::INVALID_ADDRESS), "CPU_ON(bad entry) -> INVALID_ADDRESS");
    check_eq!(ctx, get(5), Some(0), "CPU_ON of vCPUs 1..{n} succeeded");
    check_eq!(ctx, get(7), Some(0), "every secondary saw its own MPIDR");
    check_eq!(ctx, as_code(get(8)), Some(psci::AFFINITY_OFF), "AFFINITY_INFO after CPU_OFF -> OFF");
    check_eq!(ctx, get(9), Some(0), "CPU_ON after CPU_OFF succeeds");
    check_eq!(ctx, get(10), Some(10_000), "the restarted vCPU ran again");
    ctx.section("guest-spinlock");
    check_eq!(
        ctx,
        get(6),
        Some((n as u64 - 1) * 10_000),
        "guest spinlock: {} vCPUs x 10,000 locked increments, exact",
        n - 1
    );
}

/// The "mmio" guest: every access width, sign extension, writeback forms, through the
/// self-test device.
pub fn run_mmio(ctx: &mut Ctx) {
    let Some(vm) = new_vm(ctx, "mmio", mmio_image(), 1, 0) else { return };
    let vm = Arc::new(vm);
    check_eq!(ctx, run_vm(vm.clone()), VcpuEnd::SystemOff, "mmio guest ended with SYSTEM_OFF");
    let reports = *vm.reports.lock();
    let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
    let big = 0x1122_3344_5566_7788u64;
    let want: [(u64, u64, &str); 15] = [
        (1, big, "STR/LDR X"),
        (2, 0xffff_ffff_ffff_ff80, "LDRSB X"),
        (3, 0xffff_ff80, "LDRSB W (upper half zero)"),
        (4, 0x80, "LDRB W"),
        (5, 0xffff_ffff_ffff_8001, "LDRSH X"),
        (6, 0x8001, "LDRH W"),
        (7, 0xffff_ffff_8000_0000, "LDRSW X"),
        (8, 0x8000_0000, "LDR W"),
        (9, 0x80, "LDR X pre-index: value"),
        (10, 8, "LDR X pre-index: base advanced"),
        (11, 0x18, "STR X post-index: base moved back"),
        (12, big, "STR X post-index: value stored"),
        (13, 0x1234, "LDR XZR"),
        (14, 0x7472_6976, "virt's virtio-mmio transport 0 at 0x0a000000: MagicValue 'virt'"),
        (15, 0, "and DeviceID 0: no device behind it"),
    ];
    for (id, value, what) in want {
        check_eq!(ctx, get(id), Some(value), "{what}");
    }
    let decoded = vm.decoded_accesses.load(core::sync::atomic::Ordering::Relaxed);
    check_eq!(ctx, decoded, 2, "the two writeback forms were decoded from the instruction (ISV = 0)");
    let seen = vm.testdev.lock().seen;
    let writes: alloc::vec::Vec<(u64, u8, u64)> =
        seen.iter().filter(|s| s.write).map(|s| (s.offset, s.size, s.value)).collect();
    check_eq!(
        ctx,
        writes,
        alloc::vec![(0, 8, big), (8, 1, 0x80), (0x10, 2, 0x8001), (0x18, 4, 0x8000_0000), (0x20, 8, big)],
        "the device saw each store with its width and value"
    );
}

/// The "gic" guest on up to 8 vCPUs: SGIs between every ordered pair and broadcast, the
/// virtual timer 100 times on each vCPU, an emulated device's SPI routed to another pCPU,
/// and more pending interrupts than list registers taken in priority order.
pub fn run_gic(ctx: &mut Ctx) {
    let n = crate::percpu::all().len().min(8);
    if n < 2 {
        ctx.skip(format_args!("one pCPU: the gic guest needs two or more"));
        return;
    }
    let v2 = crate::arch::gic_version() == crate::vgic::Version::V2;
    let Some(vm) = new_vm(ctx, if v2 { "gic2" } else { "gic" }, gic_image(), n, n as u64).map(Arc::new) else {
        return;
    };
    let lrs = crate::arch::aarch64::vgic::lr_count();
    let end = run_vm(vm.clone());
    check_eq!(ctx, end, VcpuEnd::SystemOff, "gic guest ended with SYSTEM_OFF");
    let reports = *vm.reports.lock();
    let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
    check_eq!(ctx, get(8), Some(n as u64), "guest saw {n} vCPUs");
    check_eq!(ctx, get(1), Some(0), "SGIs between all {} ordered pairs arrived exactly once", n * (n - 1));
    if v2 {
        check_eq!(ctx, get(2), Some(0), "SGI 15 to \"all but self\" from vCPU 0 reached each other vCPU exactly once");
        check_eq!(
            ctx,
            get(9),
            Some(0),
            "SGI 14 from each of {} senders at once: {} interrupts, each naming its sender",
            n - 1,
            n - 1
        );
        check_eq!(ctx, get(11), Some(n as u64), "SGI 13 to \"self\" on each vCPU");
        check_eq!(ctx, get(12), Some(0), "every SGI's GICC_IAR named its sender");
        check_eq!(ctx, get(10), Some(0), "each vCPU's banked GICD_ITARGETSR0 is its own CPU interface");
    } else {
        check_eq!(ctx, get(2), Some(0), "SGI broadcast (IRM) from vCPU 0 reached each other vCPU exactly once");
    }
    ctx.section("guest-timer");
    check_eq!(ctx, get(3), Some(100 * n as u64), "virtual timer fired 100 times on each vCPU");
    check_eq!(ctx, get(4), Some(0), "no timer interrupt early or over a second late");
    ctx.section("guest-spi-routing");
    check_eq!(
        ctx,
        get(5),
        Some(2),
        "SPI 40 reached vCPU {} (pCPU {}), and again after an EOI with its level line still high",
        n - 1,
        n - 1
    );
    check_eq!(ctx, get(6), Some(0), "SPI 40 reached nobody else");
    ctx.section("guest-lr-overflow");
    check_eq!(ctx, get(7), Some(0x12_3456), "six pending SGIs ({lrs} list registers) taken in priority order");
}

/// The "gic" guest with two vCPUs on pCPUs 2 and 3 (not the identity placement): SGIs both
/// ways, PSCI CPU_ON onto pCPU 3, both virtual timers, the routed SPI, while pCPU 0 waits.
pub fn run_placed(ctx: &mut Ctx) {
    use crate::ids::CpuId;
    if crate::percpu::all().len() < 4 {
        return ctx
            .skip(format_args!("{} pCPUs: placing vCPUs on pCPUs 2 and 3 needs four", crate::percpu::all().len()));
    }
    let placement = crate::vm::Placement::on(&[CpuId(2), CpuId(3)]).expect("two vCPUs");
    let Some(vm) = new_vm_on(ctx, "placed", gic_image(), placement, 2).map(Arc::new) else { return };
    let kicks_before: alloc::vec::Vec<u64> =
        crate::percpu::all().iter().map(|c| c.kicks.load(core::sync::atomic::Ordering::Relaxed)).collect();
    let end = run_vm(vm.clone());
    check_eq!(ctx, end, VcpuEnd::SystemOff, "placed gic guest ended with SYSTEM_OFF");
    let reports = *vm.reports.lock();
    let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
    check_eq!(ctx, get(8), Some(2), "the guest saw 2 vCPUs");
    check_eq!(ctx, get(1), Some(0), "SGIs both ways between vCPU 0 on pCPU 2 and vCPU 1 on pCPU 3, exactly once");
    check_eq!(ctx, get(2), Some(0), "SGI broadcast reached vCPU 1 exactly once");
    check_eq!(ctx, get(3), Some(200), "virtual timer fired 100 times on each vCPU");
    check_eq!(ctx, get(4), Some(0), "no timer interrupt early or over a second late");
    check_eq!(ctx, get(5), Some(2), "SPI 40 routed to vCPU 1 reached it on pCPU 3, twice");
    check_eq!(ctx, get(6), Some(0), "SPI 40 reached nobody else");
    let kicked = |i: usize| crate::percpu::all()[i].kicks.load(core::sync::atomic::Ordering::Relaxed) > kicks_before[i];
    check!(ctx, kicked(2) && kicked(3), "pCPUs 2 and 3 took kicks");
    check_eq!(ctx, vm.exits[0].load(core::sync::atomic::Ordering::Relaxed) > 0, true, "vCPU 0 ran");
}

/// Two VMs of one vCPU each on one pCPU (pCPU 0, so every machine shape has it): each waits
/// for its timer 200 times in a trapped WFI, so the pCPU switches between them, and checks
/// after every switch that its general, FP/SIMD, system, timer and GIC CPU interface state
/// came back intact.
pub fn run_switch(ctx: &mut Ctx) {
    use crate::ids::CpuId;
    let image = blob(&raw const guest_switch_start, &raw const guest_switch_end);
    let here = crate::vm::Placement::on(&[CpuId(0)]).expect("one vCPU");
    let Some(a) = new_vm_on(ctx, "switch-a", image, here, 1).map(Arc::new) else { return };
    let Some(b) = new_vm_on(ctx, "switch-b", image, here, 2).map(Arc::new) else { return };
    let me = crate::percpu::this_cpu();
    let switches_before = me.switches.load(core::sync::atomic::Ordering::Relaxed);
    crate::sched::start_vm(&a);
    crate::sched::start_vm(&b);
    let end_a = crate::sched::wait_vm(&a);
    let end_b = crate::sched::wait_vm(&b);
    let switches = me.switches.load(core::sync::atomic::Ordering::Relaxed) - switches_before;
    for (vm, end, seed) in [(&a, end_a, 1u64), (&b, end_b, 2)] {
        let name = vm.name;
        check_eq!(ctx, end, VcpuEnd::SystemOff, "{name} ended with SYSTEM_OFF");
        let reports = *vm.reports.lock();
        let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
        check_eq!(ctx, get(4), Some(seed), "{name}: its own seed");
        check_eq!(ctx, get(1), Some(200), "{name}: 200 rounds");
        check_eq!(ctx, get(3), Some(200), "{name}: a timer interrupt each round");
        check_eq!(
            ctx,
            get(2),
            Some(0),
            "{name}: general, FP/SIMD, FPCR/FPSR, system, timer, GIC and debug state intact after every switch (bits: 0 GPR, 1 FP, 2 FPCR/FPSR, 3 sysregs, 4 timers, 5 GIC, 6 debug)"
        );
        check_eq!(ctx, get(5), Some(0x8000_0000), "{name}: sees MPIDR 0");
    }
    check!(ctx, switches >= 200, "the pCPU switched between the two vCPUs {switches} times (at least 200)");
}

/// The "cpu" guest, twice on pCPU 0 (the second run must find the FP registers the first one
/// filled zeroed again).
pub fn run_cpu(ctx: &mut Ctx) {
    for round in 1..=2 {
        if round == 2 {
            ctx.section("guest-fp-no-leak");
        }
        let image = blob(&raw const guest_cpu_start, &raw const guest_cpu_end);
        let Some(vm) = new_vm(ctx, "cpu", image, 1, 0) else { return };
        let vm = Arc::new(vm);
        check_eq!(ctx, run_vm(vm.clone()), VcpuEnd::SystemOff, "round {round}: cpu guest ended with SYSTEM_OFF");
        let reports = *vm.reports.lock();
        let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
        let field = |v: Option<u64>, shift: u32| v.map(|v| (v >> shift) & 0xf);
        check_eq!(ctx, get(1), Some(0), "round {round}: FP/SIMD registers, FPCR, FPSR zero at start");
        check_eq!(ctx, get(2), Some(0), "round {round}: V0-V31 kept across 200 exits");
        ctx.section(if round == 1 { "guest-cpu-features" } else { "guest-cpu-features-again" });
        check_eq!(ctx, field(get(3), 32), Some(0), "round {round}: ID_AA64PFR0_EL1.SVE hidden");
        if crate::arch::gic_version() == crate::vgic::Version::V2 {
            check_eq!(
                ctx,
                field(get(3), 24),
                Some(0),
                "round {round}: ID_AA64PFR0_EL1.GIC: no system registers (GICv2)"
            );
        } else {
            check_eq!(ctx, field(get(3), 24), Some(1), "round {round}: ID_AA64PFR0_EL1.GIC says system registers");
        }
        check_eq!(ctx, field(get(4), 8), Some(0), "round {round}: ID_AA64PFR1_EL1.MTE hidden");
        check_eq!(ctx, field(get(4), 24), Some(0), "round {round}: ID_AA64PFR1_EL1.SME hidden");
        check_eq!(
            ctx,
            get(5).map(|v| v & 0xff00_0ff0),
            Some(crate::arch::read_id_reg(6, 1) & 0xff00_0ff0),
            "round {round}: pointer authentication as the core has it (the guest's own keys)"
        );
        check_eq!(ctx, field(get(6), 8), Some(0), "round {round}: ID_AA64DFR0_EL1.PMUVer hidden");
        check_eq!(ctx, get(7), Some(0), "round {round}: ID_AA64ZFR0_EL1 zero");
        check_eq!(ctx, get(8).map(|e| ESR::EC.read(e)), Some(ec::UNKNOWN), "round {round}: SVE instruction UNDEFINED");
        check_eq!(ctx, get(9), Some(0xa000), "round {round}: MDSCR_EL1 is the guest's (KDE and MDE read back)");
        check_eq!(ctx, get(10), Some(1), "round {round}: EL1 physical timer interrupt taken once");
        check_eq!(ctx, get(11), Some(0), "round {round}: CNTV_CVAL, CNTP_CVAL, PAR_EL1, CSSELR_EL1 zero at start");
        if round == 1 {
            ctx.section("guest-optional-registers");
        } else {
            ctx.section("guest-optional-registers-again");
        }
        optional_registers(ctx, round, &get);
    }
}

/// The cpu guest's reports 12-24: the registers of features this core may or may not have,
/// as the guest must see them (UNDEFINED where the feature is absent or hidden; as KVM
/// answers them where they trap; nothing of the previous guest where they do not). Each
/// value comes with the ESR_EL1 its access raised, 0 for none.
fn optional_registers(ctx: &mut Ctx, round: u32, get: &dyn Fn(u64) -> Option<u64>) {
    let f = crate::arch::aarch64::idregs::features();
    let undef = syndrome(ec::UNKNOWN, 0);
    // (value, ESR) as read, and as expected: `value` and no exception if `present`, else an
    // UNDEFINED exception (and whatever the register held).
    let seen = |present: bool, id: u64| (get(id).filter(|_| present), get(id + 1));
    let want = |present: bool, value: u64| if present { (Some(value), Some(0)) } else { (None, Some(undef)) };
    let (sme, ras, lor) = (f.sme(), f.ras(), f.lor());
    check_eq!(ctx, seen(sme, 12), want(sme, 0), "round {round}: TPIDR2_EL0 zero at start (SME {sme})");
    check_eq!(ctx, seen(ras, 14), want(ras, 0), "round {round}: DISR_EL1 zero at start (RAS {ras})");
    check_eq!(ctx, seen(lor, 16), want(lor, 0), "round {round}: LORID_EL1 (LOR {lor}): no LORegions");
    if lor {
        check_eq!(ctx, get(18), Some(0), "round {round}: LORC_EL1 RAZ/WI");
    }
    check_eq!(ctx, seen(ras, 19), want(ras, 0), "round {round}: ERRIDR_EL1 (RAS {ras}): no error records");
    check_eq!(ctx, get(21), Some(undef), "round {round}: AMCR_EL0 UNDEFINED (AMU {})", f.amu());
    check_eq!(ctx, get(22), Some(undef), "round {round}: TRFCR_EL1 UNDEFINED (TRF {})", f.trf());
    let v3 = crate::arch::gic_version() == crate::vgic::Version::V3;
    check_eq!(ctx, seen(v3, 23), want(v3, 0b111), "round {round}: ICC_SRE_EL1 SRE, DFB, DIB (GICv3 {v3})");
}

/// The "debug" guest, twice on pCPU 0 (the second run must find the breakpoint and
/// MDSCR_EL1 the first one left reset, and its OS lock locked again): breakpoints at EL1 and
/// EL0 and a watchpoint taken once each with their exception classes, none while the OS
/// lock is locked, and a software step over nine instructions, four of them trapped (three
/// emulated and stepped over by the hypervisor, an HVC), taken one instruction at a time.
pub fn run_debug(ctx: &mut Ctx) {
    for round in 1..=2 {
        if round == 2 {
            ctx.section("guest-debug-again");
        }
        let image = blob(&raw const guest_debug_start, &raw const guest_debug_end);
        let Some(vm) = new_vm(ctx, "debug", image, 1, 0).map(Arc::new) else { return };
        check_eq!(ctx, run_vm(vm.clone()), VcpuEnd::SystemOff, "round {round}: debug guest ended with SYSTEM_OFF");
        let reports = *vm.reports.lock();
        let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
        check_eq!(ctx, get(20), Some(0), "round {round}: no unexpected exception");
        // OSLSR_EL1: OSLM 0b10 (bit 3), OSLK (bit 1).
        check_eq!(ctx, get(1), Some(0b1010), "round {round}: the OS lock starts locked (OSLSR_EL1)");
        check_eq!(ctx, get(2), Some(0), "round {round}: MDSCR_EL1 starts 0");
        check_eq!(ctx, get(3), Some(0), "round {round}: DBGBVR1_EL1 and DBGBCR1_EL1 start 0");
        check_eq!(ctx, get(4), Some(0b1000), "round {round}: OSLAR_EL1 unlocks it");
        if round == 1 {
            ctx.section("guest-debug-breakpoints");
        }
        check_eq!(ctx, get(5), Some(1), "round {round}: an EL1 breakpoint taken once");
        check_eq!(ctx, get(6), Some(0x31), "round {round}: as a breakpoint without a change of EL (EC 0x31)");
        check_eq!(ctx, get(7), Some(1), "round {round}: at the breakpoint's address");
        check_eq!(ctx, get(8), Some(1), "round {round}: an EL0 breakpoint taken once");
        check_eq!(ctx, get(9), Some(0x30), "round {round}: as a breakpoint from a lower EL (EC 0x30)");
        check_eq!(ctx, get(10), Some(1), "round {round}: at its address");
        check_eq!(ctx, get(14), Some(1), "round {round}: an EL1 store watchpoint taken once");
        check_eq!(ctx, get(15), Some(0x35), "round {round}: as a watchpoint without a change of EL (EC 0x35)");
        check_eq!(ctx, get(16), Some(1), "round {round}: FAR_EL1 the watched address");
        check_eq!(ctx, get(19), Some(0x77), "round {round}: the store done after the handler returned");
        check_eq!(ctx, get(21), Some(0b1010), "round {round}: OSLAR_EL1 locks the OS lock again");
        if get(17) == Some(0) {
            check_eq!(ctx, get(17), Some(0), "round {round}: no breakpoint while the OS lock is locked");
        } else {
            // The hypervisor puts the guest's OS lock in the hardware, where the architecture
            // makes it ignore breakpoints, watchpoints and steps; QEMU 7.2's TCG does not.
            ctx.skip(format_args!(
                "no breakpoint while the OS lock is locked: this core took {:?} (QEMU 7.2 does not model the OS lock's effect)",
                get(17)
            ));
        }
        if round == 1 {
            ctx.section("guest-debug-step");
        }
        check_eq!(ctx, get(11), Some(9), "round {round}: a software step over 9 instructions takes 9 steps");
        check_eq!(
            ctx,
            get(12),
            Some(0),
            "round {round}: each one instruction on, the trapped and emulated ones included"
        );
        check_eq!(ctx, get(13), Some(0x33), "round {round}: software step without a change of EL (EC 0x33)");
        if round == 1 {
            let dfr0 = get(18).unwrap_or(0);
            let (bps, wps) = (crate::hw::debug::breakpoints(dfr0), crate::hw::debug::watchpoints(dfr0));
            crate::println!("  (the guest's ID_AA64DFR0_EL1 {dfr0:#x}: {bps} breakpoints, {wps} watchpoints)");
        }
    }
}

/// The "uart" guest: transmit through the emulated PL011 to the console, and receive
/// console input with the UART's interrupt.
pub fn run_uart(ctx: &mut Ctx) {
    let image = blob(&raw const guest_uart_start, &raw const guest_uart_end);
    let Some(mut vm) = new_vm(ctx, "uart", image, 1, 0) else { return };
    // One of the console's VMs (the only one taking input, so it has the input).
    vm.console = crate::console::add_vm("uart", true);
    check!(ctx, vm.console.is_some(), "the uart guest is one of the console's VMs");
    let vm = Arc::new(vm);
    crate::vm::run::set_console_vm(&vm);
    // As if typed on the console before the guest enabled its receive interrupt.
    crate::vm::run::console_input(b"ping\n");
    crate::println!("");
    let end = run_vm(vm.clone());
    check_eq!(ctx, end, VcpuEnd::SystemOff, "uart guest ended with SYSTEM_OFF");
    let log = *vm.console_log.lock();
    check_eq!(ctx, &*log, b"hello from the uart guest\n", "guest output reached the console");
    let reports = *vm.reports.lock();
    let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
    check_eq!(ctx, get(2), Some(5), "five bytes of console input received");
    check_eq!(ctx, get(1).map(|v| v.to_le_bytes()), Some(*b"ping\n\0\0\0"), "the bytes, in order");
    check!(ctx, get(3).is_some_and(|n| n >= 1), "receive interrupt taken: {:?}", get(3));
    check_eq!(ctx, get(4), Some(0x0014_1011), "UARTPeriphID says PL011");
    check_eq!(ctx, get(5), Some(0x90), "FR: transmit and receive FIFOs empty");
    // Everything above (GIC setup, 26 characters, the input, the reports) takes under 100
    // exits; 1000 FR reads that trapped would take 1000 more.
    let exits = vm.exits[0].load(core::sync::atomic::Ordering::Relaxed);
    check!(ctx, exits < 300, "FR polls read the register page, not exits: {exits} exits");
}

/// The "walk" guest, with its stage-1 MMU on: a UART write through an alias VA lands on
/// the right register (a stage-2 permission fault's address comes from the page offset
/// alone), and a load whose stage-1 walk leaves guest RAM (S1PTW) is an external abort,
/// not an access to the device where the guest put its tables.
pub fn run_walk(ctx: &mut Ctx) {
    let image = blob(&raw const guest_walk_start, &raw const guest_walk_end);
    let Some(vm) = new_vm(ctx, "walk", image, 1, 0).map(Arc::new) else { return };
    crate::println!("");
    let end = run_vm(vm.clone());
    check_eq!(ctx, end, VcpuEnd::SystemOff, "walk guest ended with SYSTEM_OFF");
    let reports = *vm.reports.lock();
    let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
    check_eq!(ctx, get(1), Some(0x301), "CR written through the alias VA reads back at the UART");
    let log = *vm.console_log.lock();
    check_eq!(ctx, &*log, b"walk\n", "DR written through the alias VA reached the console");
    let sea = |e: u64| (ESR::EC.read(e), ISS_DATA_ABORT::DFSC.read(e));
    check_eq!(
        ctx,
        get(2).map(sea),
        Some((ec::DATA_ABORT_SAME_EL, fsc::SEA)),
        "table walk outside RAM -> external abort"
    );
    check_eq!(ctx, get(3), Some(0xffff_ff80_0000_0000), "FAR of that abort: the address loaded");
    check_eq!(ctx, get(4), Some(0x55), "the load did not complete (no GICD register read into it)");
    check_eq!(ctx, get(5), Some(1), "one abort taken");
    check_eq!(ctx, get(6), Some(0x000), "taken in EL1t: arrives at VBAR_EL1 + 0x000");
    check_eq!(
        ctx,
        get(7).map(|spsr| spsr & (pstate::PAN | pstate::M)),
        Some(pstate::EL1T),
        "SPSR_EL1: EL1t, PAN clear as it was"
    );
    let has_pan = crate::arch::aarch64::cpu::has_pan();
    check_eq!(ctx, get(9).map(|f| f != 0), Some(has_pan), "the guest's ID_AA64MMFR1_EL1.PAN says what the core has");
    if has_pan {
        check_eq!(ctx, get(8), Some(pstate::PAN), "SCTLR_EL1.SPAN 0: PSTATE.PAN set on exception entry");
    } else {
        ctx.skip(format_args!("PSTATE.PAN on exception entry: this core has no FEAT_PAN (ARMv8.0)"));
    }
}

/// The "cache" guest: firmware's set/way clean-and-invalidate over every level CLIDR_EL1 and
/// CCSIDR_EL1 describe, with caches off and then on, its data intact both times; and cache
/// maintenance by VA of device addresses completing without a fault.
pub fn run_cache(ctx: &mut Ctx) {
    let image = blob(&raw const guest_cache_start, &raw const guest_cache_end);
    let Some(vm) = new_vm(ctx, "cache", image, 1, 0).map(Arc::new) else { return };
    let end = run_vm(vm.clone());
    check_eq!(ctx, end, VcpuEnd::SystemOff, "cache guest ended with SYSTEM_OFF");
    let reports = *vm.reports.lock();
    let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
    let clidr = get(7).unwrap_or(0);
    let loc = (clidr >> 24) & 7;
    if loc == 0 {
        ctx.skip(format_args!("CLIDR_EL1 {clidr:#x} names no cache level below the Level of Coherence"));
    } else {
        check!(
            ctx,
            get(1).is_some_and(|n| n > 0),
            "set/way operations with caches off: {:?} (CLIDR_EL1 {clidr:#x})",
            get(1)
        );
        check!(ctx, get(3).is_some_and(|n| n > 0), "set/way operations with caches on: {:?}", get(3));
    }
    check_eq!(ctx, get(2), Some(0), "data intact after set/way maintenance, caches off");
    check_eq!(ctx, get(8).map(|s| s & 0x1005), Some(0x1005), "SCTLR_EL1: MMU, data and instruction caches on");
    check_eq!(ctx, get(4), Some(0), "data intact after set/way maintenance, caches on");
    check_eq!(
        ctx,
        get(5),
        Some(0),
        "no exception: set/way and by-VA maintenance of devices complete (last ESR {:#x})",
        get(6).unwrap_or(0)
    );
}

/// The "suspend" guest: PSCI CPU_SUSPEND to a power-down state wakes at its entry point with
/// the context id, in the state CPU_ON gives; bad power states and entry points are refused.
pub fn run_suspend(ctx: &mut Ctx) {
    let image = blob(&raw const guest_suspend_start, &raw const guest_suspend_end);
    let Some(vm) = new_vm(ctx, "suspend", image, 1, 0).map(Arc::new) else { return };
    let end = run_vm(vm.clone());
    check_eq!(ctx, end, VcpuEnd::SystemOff, "suspend guest ended with SYSTEM_OFF");
    let reports = *vm.reports.lock();
    let get = |id: u64| reports.iter().find(|r| r.0 == id).map(|r| r.1);
    let code = |v: Option<u64>| v.map(|v| v as i64);
    check_eq!(ctx, get(1), None, "a power-down CPU_SUSPEND does not return to its caller");
    check_eq!(ctx, get(2), Some(0x1234), "woken at the entry point with x0 = the context id");
    check_eq!(ctx, get(3).map(|s| s & 0x1005), Some(0), "SCTLR_EL1 there: MMU and caches off");
    check_eq!(ctx, get(4), Some(pstate::DAIF), "PSTATE.DAIF there: all masked");
    check_eq!(ctx, get(5), Some(0b0100), "CurrentEL there: EL1");
    check_eq!(ctx, code(get(6)), Some(psci::INVALID_PARAMETERS), "reserved power_state bit -> INVALID_PARAMETERS");
    check_eq!(ctx, code(get(7)), Some(psci::INVALID_ADDRESS), "power-down entry outside RAM -> INVALID_ADDRESS");
}

/// The kernel module's pages as guest RAM, as the Linux guest runs its kernel in place: the
/// test module (`ARMVISOR-TEST-MODULE`, 20 bytes at a page boundary) is taken once, the
/// rest of its page is cleared, stage 2 maps it where the VM's RAM would be, the basic guest
/// still runs around it, and dropping the VM scrubs it.
pub fn run_in_place(ctx: &mut Ctx) {
    use crate::arch as mmu;
    let b = crate::start::boot_info();
    let p = &b.platform;
    // Machine shapes started without the test module have nothing to hand over.
    let Some(at) = super::expectations().module else { return };
    let Some(index) = p.modules.iter().position(|m| m.region.base == at) else {
        return check!(ctx, false, "test module at {at:#x}");
    };
    let module = p.modules[index].region.range();
    let pages = crate::mm::layout::module_pages(p, b.layout.image.whole, index);
    check_eq!(
        ctx,
        pages,
        Some(Range { start: module.start, end: module.start + 0x1000 }),
        "the module's page is its own"
    );
    let Some(pages) = pages else { return };
    let Some(taken) = mmu::take_kernel_pages(p, pages, module) else {
        check!(ctx, false, "module pages taken");
        return;
    };
    check!(ctx, mmu::take_kernel_pages(p, pages, module).is_none(), "module pages are handed out once");
    let config = VmConfig {
        name: "in-place",
        ram_base: GuestPhysAddr(GUEST_RAM_IPA),
        ram_size: 2 << 20,
        vcpu_count: 1,
        image: basic_image(),
        entry: GuestPhysAddr(GUEST_RAM_IPA),
        arg: b.layout.image.whole.start,
        placement: crate::vm::Placement::identity(1),
        devices: crate::vm::device_table(&crate::vm::config::virt_devices(crate::arch::gic_version(), 1, None, true))
            .expect("the virt layout fits"),
    };
    let window = GUEST_RAM_IPA + (1 << 20);
    let vm = match Vm::new_in_place(config, Some((GuestPhysAddr(window), taken))) {
        Ok(vm) => vm,
        Err(e) => return check!(ctx, false, "VM with the module's pages: {e:?}"),
    };
    check_eq!(ctx, vm.translate(window + 8), Some(module.start + 8), "stage 2 maps the window to the module");
    check_eq!(
        ctx,
        vm.translate(window + 0x1000),
        Some(vm.translate(GUEST_RAM_IPA).unwrap() + 0x10_1000),
        "and RAM after it"
    );
    check_eq!(
        ctx,
        vm.read_guest_u64(window),
        Some(u64::from_le_bytes(*b"ARMVISOR")),
        "the module's bytes, as guest RAM"
    );
    check_eq!(ctx, vm.read_guest_u64(window + 24), Some(0), "the rest of its page cleared");
    let vm = Arc::new(vm);
    check_eq!(ctx, run_vm(vm.clone()), VcpuEnd::SystemOff, "the basic guest runs in the split RAM");
    drop(vm);
    let scrubbed = mmu::ram_bytes(p, pages).is_some_and(|bytes| bytes.iter().all(|&b| b == 0));
    check!(ctx, scrubbed, "dropping the VM scrubs the module's pages");
}
