//! The hypervisor's job once every pCPU is up: build a VM from the `/chosen` multiboot
//! modules (a Linux kernel Image with its bootargs, an initramfs) and run it with one vCPU
//! per pCPU. PSCI SYSTEM_OFF or SYSTEM_RESET from the guest become the same call to the
//! firmware, so under QEMU the emulator exits.
#![forbid(unsafe_code)]

use crate::arch;
use crate::ids::CpuId;
use crate::mm::range::Range;
use crate::mm::{GuestPhysAddr, layout};
use crate::platform::{ModuleKind, Platform};
use crate::vm::run::{VcpuEnd, Vm, run_vm, set_console_vm};
use crate::vm::{VmConfig, config, fdt, linux, memory_map};
use alloc::sync::Arc;
use alloc::vec::Vec;
use log::{error, info};

/// Guest RAM starts where QEMU's `virt` puts RAM.
const GUEST_RAM_BASE: u64 = 0x4000_0000;
/// At most this much guest RAM (and never more than the largest free block).
const GUEST_RAM_MAX: u64 = 1 << 30;

/// Builds the VM from the boot inputs of platform `p` (the hypervisor's image is at `image`,
/// which no module may share pages with) and runs it; then powers off, resets, or parks.
pub fn run(p: &'static Platform<'static>, image: Range) -> ! {
    // Dropping the VM scrubs its RAM for whoever runs next (1 GiB took 3.7 s under TCG).
    // Before a power-off there is nobody, so the VM stays alive through that call; a
    // reset keeps RAM, so the scrub comes first there.
    match build_and_run(p, image) {
        Ok((VcpuEnd::SystemOff, _vm)) => {
            info!("guest powered off; powering off");
            crate::console::flush();
            if let Some(psci) = p.psci {
                arch::system_off(&psci);
            }
        }
        Ok((VcpuEnd::SystemReset, vm)) => {
            info!("guest asked for a reset; resetting");
            drop(vm);
            crate::console::flush();
            if let Some(psci) = p.psci {
                arch::system_reset(&psci);
            }
        }
        Ok((end, _)) => error!("guest stopped: {end:?}"),
        Err(e) => error!("{e}"),
    }
    info!("nothing left to run; pCPUs parked");
    crate::sched::park_loop()
}

fn build_and_run(p: &'static Platform<'static>, image: Range) -> Result<(VcpuEnd, Arc<Vm>), alloc::string::String> {
    use alloc::format;
    let Some(kernel) = p.modules.iter().find(|m| m.kind == ModuleKind::Kernel) else {
        return Err("no multiboot,kernel module in /chosen: no guest to run".into());
    };
    // The module's bytes are borrowed only while nothing else can write them: before its
    // pages may go to the guest, and again below only if they did not.
    let kernel_bytes = || arch::ram_bytes(p, kernel.region.range()).ok_or("kernel module not readable");
    let header = linux::parse_header(kernel_bytes()?).map_err(|e| format!("{e}"))?;
    let kernel_len = kernel.region.range().size();
    let initrd = p.modules.iter().find(|m| m.kind == ModuleKind::Ramdisk);
    let initrd_bytes = match initrd {
        Some(m) => Some(arch::ram_bytes(p, m.region.range()).ok_or("initramfs module not readable")?),
        None => None,
    };
    let disk = p.modules.iter().find(|m| m.kind == ModuleKind::Disk);
    let module = |kind| p.modules.iter().position(|m| m.kind == kind).map(config::ModuleRef);
    // One VM on every pCPU that came up, vCPU n on the n-th of them.
    let online: Vec<CpuId> = crate::percpu::all()
        .iter()
        .filter(|c| c.online.load(core::sync::atomic::Ordering::Acquire))
        .map(|c| c.id)
        .collect();
    let vcpus = online.len();
    let largest = arch::largest_guest_ram();
    let ram_size = largest.min(GUEST_RAM_MAX) & !((2 << 20) - 1);
    // Exactly what the kernel module says, none meaning none: the guest DT's stdout-path
    // already names the console, and a command line the user did not write is not ours to
    // invent.
    let bootargs = kernel.bootargs;
    let spec = config::VmSpec {
        name: "linux".into(),
        cpus: online.clone(),
        ram: config::RamSpec { ipa: GuestPhysAddr(GUEST_RAM_BASE), size: ram_size },
        kernel: module(ModuleKind::Kernel),
        ramdisk: module(ModuleKind::Ramdisk),
        image: None,
        devices: config::virt_devices(arch::gic_version(), vcpus, module(ModuleKind::Disk), false),
        console: true,
        bootargs: bootargs.map(Into::into),
    };
    // One validation step: pCPUs, RAM, modules, device windows and interrupts, against
    // the platform and each other; a refusal names the VM and the resource.
    let online_mask = online.iter().fold(0u64, |m, c| m | 1u64.checked_shl(c.0 as u32).unwrap_or(0));
    config::validate(core::slice::from_ref(&spec), &config::Board::new(p, online_mask, largest))
        .map_err(|e| format!("{e}"))?;
    let virtio: Vec<(u64, u64, u32)> = spec
        .devices
        .iter()
        .filter(|d| matches!(d.kind, config::DeviceKind::VirtioBlk { .. }))
        .map(|d| (d.ipa.start, d.ipa.size(), d.intid.unwrap_or(0).saturating_sub(32)))
        .collect();
    let device = |kind| spec.devices.iter().find(|d| d.kind == kind).copied().unwrap_or_default();
    let window = |kind| {
        let r = device(kind).ipa;
        (r.start, r.size())
    };
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
    let place = linux::place(GUEST_RAM_BASE, ram_size, &header, initrd_bytes.map(|i| i.len() as u64))
        .map_err(|e| format!("{e} ({} MiB of guest RAM)", ram_size >> 20))?;
    let dtb = fdt::build(&fdt::GuestDt {
        ram_base: GUEST_RAM_BASE,
        ram_size,
        vcpu_count: vcpus,
        gic,
        uart: uart.ipa.start,
        uart_spi: uart.intid.unwrap_or(0).saturating_sub(32),
        virtio: &virtio,
        bootargs,
        initrd: place.initrd,
    });
    linux::check_dtb(dtb.len()).map_err(|e| format!("{e}"))?;
    let config = VmConfig {
        name: "linux",
        ram_base: GuestPhysAddr(GUEST_RAM_BASE),
        ram_size,
        vcpu_count: vcpus,
        image: &[],
        entry: GuestPhysAddr(place.kernel),
        arg: place.dtb,
        placement: crate::vm::Placement::on(&spec.cpus).ok_or("too many vCPUs")?,
        devices: crate::vm::device_table(&spec.devices).ok_or("too many devices")?,
    };
    // The kernel runs where the bootloader put it when its pages hold nothing else: under
    // TCG a 32 MiB copy took 50 ms of every boot. Otherwise it is copied.
    // Everything that could refuse the pages is checked before they are taken: taking them
    // zeroes the rest of the last page and cannot be undone.
    let kernel_index = p.modules.iter().position(|m| m.kind == ModuleKind::Kernel);
    let in_place = kernel_index
        .and_then(|i| layout::module_pages(p, image, i))
        .filter(|pages| linux::in_place_offset(GUEST_RAM_BASE, &place, pages.size()).is_some())
        .and_then(|pages| arch::take_kernel_pages(p, pages, kernel.region.range()));
    let copy = in_place.is_none();
    let how = match &in_place {
        Some(pages) => format!("runs in place from PA {:#x}", pages.range().start),
        None => "copied".into(),
    };
    let mut vm = Vm::new_in_place(config, in_place.map(|pages| (GuestPhysAddr(place.kernel), pages)))
        .map_err(|e| format!("creating the VM: {e:?}"))?;
    if copy {
        vm.load(place.kernel, kernel_bytes()?).map_err(|e| format!("loading the kernel: {e:?}"))?;
    }
    if let (Some(bytes), Some((start, _))) = (initrd_bytes, place.initrd) {
        vm.load(start, bytes).map_err(|e| format!("loading the initramfs: {e:?}"))?;
    }
    vm.load(place.dtb, &dtb).map_err(|e| format!("loading the device tree: {e:?}"))?;
    if let Some(m) = disk {
        let bytes = arch::take_disk(p, m.region.range()).ok_or("disk module not usable")?;
        info!(
            "guest disk: {} KiB from the module at {:?} (virtio-blk at {:#x})",
            bytes.len() >> 10,
            m.region,
            memory_map::VIRTIO_BLK
        );
        vm.attach_disk(bytes).map_err(|e| format!("attaching the disk: {e:?}"))?;
    }
    let initramfs = match place.initrd {
        Some((start, end)) => format!("{} KiB at {start:#x}", (end - start) >> 10),
        None => "none".into(),
    };
    info!(
        "guest: {} vCPUs, {} MiB RAM at {GUEST_RAM_BASE:#x}; kernel {} KiB at {:#x} ({how}), initramfs {initramfs}, DTB at {:#x}; bootargs {}",
        vcpus,
        ram_size >> 20,
        kernel_len >> 10,
        place.kernel,
        place.dtb,
        match bootargs {
            Some(b) => format!("\"{b}\""),
            None => "none (the kernel module has no bootargs)".into(),
        }
    );
    let vm = Arc::new(vm);
    set_console_vm(&vm);
    Ok((run_vm(vm.clone()), vm))
}
