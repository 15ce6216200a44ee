//! The hypervisor's job once every pCPU is up: the VMs the boot inputs describe, each built,
//! started on its pCPUs and kept until it ends for good.
//!
//! The VMs come from [`vm_specs`]: Xen's dom0less `xen,domain` nodes under `/chosen`, or
//! without them one VM from the top-level multiboot modules on every pCPU. Each VM has a home, its first pCPU, which starts it, waits for it and, when
//! the guest asks for a reset, restarts it from its images while the other VMs keep
//! running. A VM that powers off (SYSTEM_OFF, or its last CPU_OFF) or fails (an SError)
//! ends alone; when the last VM has ended the machine powers off. A boot with nothing to
//! run (no kernel, or a configuration refused) says why and powers off too, with a failing
//! exit status under QEMU's semihosting.
//!
//! The single VM made from the top-level modules is the whole machine: its kernel runs
//! where the bootloader put it when its pages hold nothing else (no copy), and its
//! SYSTEM_RESET resets the machine, as it would on the board without a hypervisor.
#![forbid(unsafe_code)]

use crate::arch;
use crate::ids::CpuId;
use crate::mm::range::Range;
use crate::mm::{GuestPhysAddr, layout};
use crate::platform::{ModuleKind, Platform};
use crate::sync::IrqLock;
use crate::vm::run::{VcpuEnd, Vm, run_vm, set_console_vm};
use crate::vm::{VmConfig, config, fdt, linux};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use log::{error, info, warn};
use spin::Once;

/// A VM the hypervisor keeps: what it is built from, and the VM while it lives.
struct Kept {
    spec: config::VmSpec,
    /// The VM's name for the whole life of the hypervisor (a VM's `VmConfig` borrows it).
    name: &'static str,
    /// The pCPU that starts, waits for and restarts it: its first.
    home: CpuId,
    /// Whether SYSTEM_RESET restarts the VM alone. Not for the one VM made from the
    /// top-level modules: its kernel may run in place (its pages changed), and a reset of
    /// the only VM is the machine's.
    restarts: bool,
    /// Its index among the console's VMs.
    console: Option<usize>,
    /// Built and not yet started (lock `guest::Kept::next`, a leaf).
    next: IrqLock<Option<Vm>>,
}

/// The VMs, fixed once they are built.
static KEPT: Once<Vec<Kept>> = Once::new();
/// VMs that have not ended for good (AcqRel): the one that takes it to 0 powers off.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The platform, for the homes that restart VMs.
static PLATFORM: Once<(&'static Platform<'static>, Range)> = Once::new();

/// Builds the VMs of platform `p` (the hypervisor's image is at `image`, which no module
/// may share pages with), starts each from its home pCPU, and keeps them; this pCPU then
/// schedules what is placed on it for good.
pub fn run(p: &'static Platform<'static>, image: Range) -> ! {
    PLATFORM.call_once(|| (p, image));
    let specs = match vm_specs(p) {
        Ok(specs) => specs,
        Err(e) => nothing_to_run(p, &e),
    };
    let mut kept = Vec::new();
    // With domain nodes every VM restarts alone; the one VM made from the top-level modules
    // is the whole machine (see the module comment).
    let restarts = !p.domains.is_empty();
    for spec in specs {
        let name: &'static str = Box::leak(spec.name.clone().into_boxed_str());
        let home = spec.cpus[0];
        let console = crate::console::add_vm(name, spec.console);
        match build(p, image, &spec, name, !restarts, None) {
            Ok(mut vm) => {
                vm.console = console;
                kept.push(Kept { spec, name, home, restarts, console, next: IrqLock::new(Some(vm)) })
            }
            Err(e) => nothing_to_run(p, &format!("VM '{name}': {e}")),
        }
    }
    let built = format!("{} VM{} built", kept.len(), if kept.len() == 1 { "" } else { "s" });
    match crate::mm::heap_use() {
        Some((used, total)) => info!("{built}; heap {} KiB in use of {} KiB", used >> 10, total >> 10),
        None => info!("{built}"),
    }
    crate::console::log_start_notice();
    LIVE.store(kept.len(), Ordering::Release);
    let kept = KEPT.call_once(|| kept);
    let me = crate::percpu::this_cpu().id;
    for k in kept.iter().filter(|k| k.home != me) {
        crate::percpu::post(k.home, home_job);
    }
    if let Some(k) = kept.iter().find(|k| k.home == me) {
        keep(k);
    }
    crate::sched::park_loop()
}

/// A home pCPU's job: keep the VM whose home it is.
fn home_job() {
    let Some(me) = arch::cpu_index() else { return };
    if let Some(k) = KEPT.get().and_then(|kept| kept.iter().find(|k| k.home.0 == me)) {
        keep(k);
    }
}

/// Runs `k`'s VM until it ends for good, restarting it on SYSTEM_RESET; the last VM to end
/// powers the machine off.
fn keep(k: &Kept) {
    let Some(&(p, image)) = PLATFORM.get() else { return };
    let mut next = k.next.lock().take();
    let mut last: Option<Arc<Vm>> = None;
    while let Some(vm) = next.take() {
        let vm = Arc::new(vm);
        set_console_vm(&vm);
        let end = run_vm(vm.clone());
        match end {
            VcpuEnd::SystemReset if k.restarts => {
                info!("VM '{}' asked for a reset; restarting it", k.name);
                let (disk, clock) = match Arc::try_unwrap(vm) {
                    // Dropping the VM scrubs its RAM and gives its VMID back: nothing of
                    // this run reaches the next but its disk and the time its RTC was
                    // set to, which a board's reset keeps too.
                    Ok(mut vm) => (vm.take_disk(), Some(vm.rtc.lock().offset())),
                    Err(_) => {
                        error!("VM '{}' is still referenced after it stopped; not restarting it", k.name);
                        (None, None)
                    }
                };
                match build(p, image, &k.spec, k.name, false, disk) {
                    Ok(mut vm) => {
                        vm.console = k.console;
                        if let Some(offset) = clock {
                            vm.rtc.lock().set_offset(offset);
                        }
                        next = Some(vm);
                    }
                    Err(e) => error!("VM '{}' cannot restart: {e}", k.name),
                }
            }
            VcpuEnd::SystemReset => {
                info!("VM '{}' asked for a reset; resetting the machine", k.name);
                // A reset keeps RAM: scrub it first.
                drop(vm);
                crate::console::flush();
                if let Some(psci) = p.psci {
                    arch::system_reset(&psci);
                }
            }
            VcpuEnd::Failed(esr) => {
                error!("VM '{}' ended after an SError (ESR {esr:#x})", k.name);
                last = Some(vm);
            }
            VcpuEnd::SystemOff | VcpuEnd::CpuOff => {
                info!("VM '{}' powered off", k.name);
                last = Some(vm);
            }
        }
    }
    let left = LIVE.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
    if left > 0 {
        info!("{left} VM{} left", if left == 1 { "" } else { "s" });
        // Scrubs its RAM for whoever comes next.
        drop(last);
        return;
    }
    // Before a power-off there is nobody to scrub for: the last VM stays alive through it.
    info!("no VM left; powering off");
    crate::console::flush();
    if let Some(psci) = p.psci {
        arch::system_off(&psci);
    }
    drop(last);
}

/// Nothing to run: says why and powers off, with a failing status under semihosting.
fn nothing_to_run(p: &Platform<'_>, why: &str) -> ! {
    error!("{why}");
    error!("nothing to run; powering off");
    crate::console::flush();
    arch::exit_failure();
    if let Some(psci) = p.psci {
        arch::system_off(&psci);
    }
    crate::sched::park_loop()
}

/// The VMs to build (`vm::domains`): Xen's dom0less domain nodes, or one VM from the
/// top-level modules on every pCPU that came up; each against the largest block of free
/// RAM (a VM's RAM is one block). Warnings about what the nodes say and we ignore go to the
/// log.
fn vm_specs(p: &Platform<'_>) -> Result<Vec<config::VmSpec>, String> {
    let online = crate::percpu::all()
        .iter()
        .filter(|c| c.online.load(Ordering::Acquire))
        .fold(0u64, |m, c| m | 1u64.checked_shl(c.id.0 as u32).unwrap_or(0));
    for w in crate::vm::domains::warnings(p) {
        warn!("{w}");
    }
    if p.domains.is_empty() && !p.modules.iter().any(|m| m.kind == ModuleKind::Kernel && m.domain.is_none()) {
        return Err("no multiboot,kernel module in /chosen and no xen,domain node: no guest to run".into());
    }
    let free = arch::largest_guest_ram() & !(config::RAM_ALIGN - 1);
    crate::vm::domains::vm_specs(p, &config::Board::new(p, online, free)).map_err(|e| format!("{e}"))
}

/// Builds the VM `spec` describes (validated), named `name`: its RAM, the kernel, the
/// initramfs and the device tree loaded, the disk attached (`disk`, or the module's bytes
/// the first time). With `in_place`, the kernel runs where the bootloader put it when its
/// pages hold nothing else; otherwise, and on every restart, it is copied from the module,
/// which stays as the bootloader left it.
fn build(
    p: &'static Platform<'static>,
    image: Range,
    spec: &config::VmSpec,
    name: &'static str,
    in_place: bool,
    disk: Option<&'static mut [u8]>,
) -> Result<Vm, String> {
    let kernel_ref = spec.kernel.ok_or("no kernel module")?;
    let kernel = p.modules[kernel_ref.0];
    let kernel_bytes = || arch::ram_bytes(p, kernel.region.range()).ok_or("kernel module not readable");
    let header = linux::parse_header(kernel_bytes()?).map_err(|e| format!("{e}"))?;
    let initrd_bytes = match spec.ramdisk {
        Some(m) => Some(arch::ram_bytes(p, p.modules[m.0].region.range()).ok_or("initramfs module not readable")?),
        None => None,
    };
    let (ram_base, ram_size, vcpus) = (spec.ram.ipa.0, spec.ram.size, spec.vcpu_count());
    let device = |kind| spec.devices.iter().find(|d| d.kind == kind).copied().unwrap_or_default();
    let window = |kind| {
        let r = device(kind).ipa;
        (r.start, r.size())
    };
    let virtio: Vec<(u64, u64, u32)> = spec
        .devices
        .iter()
        .filter(|d| matches!(d.kind, config::DeviceKind::VirtioBlk { .. }))
        .map(|d| (d.ipa.start, d.ipa.size(), d.intid.unwrap_or(0).saturating_sub(32)))
        .collect();
    let disk_module = spec.devices.iter().find_map(|d| match d.kind {
        config::DeviceKind::VirtioBlk { disk } => Some(disk),
        _ => None,
    });
    let gic = match arch::gic_version() {
        crate::vgic::Version::V3 => fdt::GuestGic::V3 {
            gicd: window(config::DeviceKind::GicDistributor),
            gicr: window(config::DeviceKind::GicRedistributors),
        },
        crate::vgic::Version::V2 => fdt::GuestGic::V2 {
            gicd: window(config::DeviceKind::GicV2Distributor),
            gicc: window(config::DeviceKind::GicV2CpuInterface),
        },
    };
    let uart = device(config::DeviceKind::Pl011);
    let rtc = spec
        .devices
        .iter()
        .find(|d| d.kind == config::DeviceKind::Pl031)
        .map(|d| (d.ipa.start, d.intid.unwrap_or(0).saturating_sub(32)));
    let place = linux::place(ram_base, ram_size, &header, initrd_bytes.map(|i| i.len() as u64))
        .map_err(|e| format!("{e} ({} MiB of guest RAM)", ram_size >> 20))?;
    let bootargs = spec.bootargs.as_deref();
    let dtb = fdt::build(&fdt::GuestDt {
        ram_base,
        ram_size,
        vcpu_count: vcpus,
        gic,
        uart: uart.ipa.start,
        uart_spi: uart.intid.unwrap_or(0).saturating_sub(32),
        rtc,
        virtio: &virtio,
        bootargs,
        initrd: place.initrd,
    });
    linux::check_dtb(dtb.len()).map_err(|e| format!("{e}"))?;
    let config = VmConfig {
        name,
        ram_base: GuestPhysAddr(ram_base),
        ram_size,
        vcpu_count: vcpus,
        image: &[],
        entry: GuestPhysAddr(place.kernel),
        arg: place.dtb,
        placement: crate::vm::Placement::on(&spec.cpus).ok_or("too many vCPUs")?,
        devices: crate::vm::device_table(&spec.devices).ok_or("too many devices")?,
    };
    // Under TCG a 32 MiB copy took 50 ms of every boot. Everything that could refuse the
    // pages is checked before they are taken: taking them zeroes the rest of the last page
    // and cannot be undone.
    let pages = in_place
        .then(|| layout::module_pages(p, image, kernel_ref.0))
        .flatten()
        .filter(|pages| linux::in_place_offset(ram_base, &place, pages.size()).is_some())
        .and_then(|pages| arch::take_kernel_pages(p, pages, kernel.region.range()));
    let how = match &pages {
        Some(pages) => format!("runs in place from PA {:#x}", pages.range().start),
        None => "copied".into(),
    };
    let copy = pages.is_none();
    let mut vm = Vm::new_in_place(config, pages.map(|pages| (GuestPhysAddr(place.kernel), pages)))
        .map_err(|e| format!("creating the VM: {e:?}"))?;
    if copy {
        vm.load(place.kernel, kernel_bytes()?).map_err(|e| format!("loading the kernel: {e:?}"))?;
    }
    if let (Some(bytes), Some((start, _))) = (initrd_bytes, place.initrd) {
        vm.load(start, bytes).map_err(|e| format!("loading the initramfs: {e:?}"))?;
    }
    vm.load(place.dtb, &dtb).map_err(|e| format!("loading the device tree: {e:?}"))?;
    if let Some(m) = disk_module {
        let region = p.modules[m.0].region;
        let bytes = match disk {
            Some(bytes) => bytes,
            None => arch::take_disk(p, region.range()).ok_or("disk module not usable")?,
        };
        let at = device(config::DeviceKind::VirtioBlk { disk: m }).ipa.start;
        info!("VM '{name}': disk of {} KiB from the module at {region:?} (virtio-blk at {at:#x})", bytes.len() >> 10);
        vm.attach_disk(bytes).map_err(|e| format!("attaching the disk: {e:?}"))?;
    }
    let initramfs = match place.initrd {
        Some((start, end)) => format!("{} KiB at {start:#x}", (end - start) >> 10),
        None => "none".into(),
    };
    info!(
        "VM '{name}': {vcpus} vCPUs on pCPUs {:?}, {} MiB RAM at {ram_base:#x}; kernel {} KiB at {:#x} ({how}), initramfs {initramfs}, DTB at {:#x}; bootargs {}",
        spec.cpus.iter().map(|c| c.0).collect::<Vec<_>>(),
        ram_size >> 20,
        kernel.region.range().size() >> 10,
        place.kernel,
        place.dtb,
        match bootargs {
            Some(b) => format!("\"{b}\""),
            None => "none (the kernel module has no bootargs)".into(),
        }
    );
    Ok(vm)
}
