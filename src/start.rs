//! Boot flow, from the first Rust function to every pCPU in its scheduler loop, and the
//! composition root: it hands the platform's interrupt numbers to `irq`, installs the IRQ
//! entry point the exception vectors call, and hands the platform to `guest`.
//!
//! 1. primary, MMU off: find the DTB (x0), discover the platform, plan the hypervisor's
//!    memory, build the EL2 identity map, turn the MMU and caches on;
//! 2. primary, MMU on: console and log, heap and frames, HCR_EL2, GIC distributor, per-pCPU
//!    data, its own redistributor and CPU interface;
//! 3. every other pCPU the DTB lists is started (PSCI CPU_ON or spin-table) at
//!    `secondary_entry`, turns on the same MMU, sets up its GIC interface and runs its
//!    scheduler loop (`sched::park_loop`);
//! 4. then the test flavour runs its suites; the hypervisor proper waits for work.
//!
//! Errors before the console is up are printed with `console::early_print`; all of them
//! end with a clear message and a stop, never a fault.

use crate::arch::aarch64::{boot, cpu, gic, mmu, psci, rtc, semihosting, vcpu};
use crate::mm::layout::{self, Layout};
use crate::mm::range::Range;
use crate::percpu::{self, CpuId};
use crate::platform::{self, EnableMethod, Platform, Uart};
use core::fmt;
use core::sync::atomic::Ordering;
use log::{error, info, warn};
use spin::Once;

/// What the boot discovered; written once by the primary, read-only afterwards.
pub struct Boot {
    pub platform: Platform<'static>,
    pub layout: Layout,
    pub mmu: mmu::MmuConfig,
    pub load_address: u64,
    pub tables_used: u64,
}

static BOOT: Once<Boot> = Once::new();

pub fn boot_info() -> &'static Boot {
    BOOT.get().expect("boot info is set before anything asks for it")
}

pub fn platform() -> Option<&'static Platform<'static>> {
    BOOT.get().map(|b| &b.platform)
}

/// Prints `args` and stops: QEMU exits with status 1 when semihosting is on.
fn early_fail(uart: Option<Uart>, args: fmt::Arguments<'_>) -> ! {
    console_early(uart, format_args!("armvisor: fatal: {args}\n"));
    semihosting::exit(1);
    boot::halt()
}

fn console_early(uart: Option<Uart>, args: fmt::Arguments<'_>) {
    crate::console::early_print(uart, args);
}

/// HCR_EL2 while no guest runs ([`vcpu::HCR_HOST`]).
fn init_hcr() {
    use aarch64_cpu::registers::{HCR_EL2, Writeable};
    HCR_EL2.set(vcpu::HCR_HOST);
}

#[unsafe(no_mangle)]
extern "C" fn primary_main(dtb: u64, load_address: u64) -> ! {
    crate::console::set_boot_time(cpu::counter());
    let blob = dtb_slice(dtb).unwrap_or_else(|e| {
        early_fail(
            None,
            format_args!(
                "no usable device tree at x0 = {dtb:#x} ({e}); the bootloader must pass the DTB's address in x0"
            ),
        )
    });
    let platform = platform::discover(blob, dtb).unwrap_or_else(|e| early_fail(None, format_args!("{e}")));
    let uart = platform.uart;
    let image = boot::image();
    let cpu_count = platform.cpus.len();
    let layout = layout::plan(&platform, image, cpu_count)
        .unwrap_or_else(|e| early_fail(uart, format_args!("memory layout: {e} (image at {:?})", image.whole)));
    let plan = layout::stage1_plan(&platform, &layout, cpu_count)
        .unwrap_or_else(|e| early_fail(uart, format_args!("EL2 memory map: {e}")));
    let mut tables = mmu::PoolTables::new(layout.tables);
    let mmu_config =
        mmu::build(&plan, &mut tables).unwrap_or_else(|e| early_fail(uart, format_args!("EL2 page tables: {e:?}")));
    // Everything written so far went to memory uncached; drop any stale lines before the
    // caches come on (the boot protocol only promises the image was cleaned).
    cpu::dcache_invalidate(image.whole.start, image.whole.end);
    cpu::dcache_invalidate(layout.tables.start, layout.tables.end);
    // SAFETY: the MMU is off, and the tables identity-map the image (code, data, boot
    // stack), the DTB, the reserved region and the console.
    unsafe { mmu::enable(&mmu_config) };

    // SAFETY: the DTB's console UART, mapped as device memory in the EL2 map just enabled.
    let port = uart.map(|u| (unsafe { crate::arch::Uart::new(u) }, u));
    crate::console::init(port);
    crate::mm::heap::init_heap(layout.heap);
    crate::arch::init_frames(layout.frames);
    crate::arch::init_guest_ram(&layout.free);
    let boot = BOOT.call_once(|| Boot { platform, layout, mmu: mmu_config, load_address, tables_used: tables.used() });
    let p = &boot.platform;
    info!("armvisor {} starting at EL2 on '{}'", env!("CARGO_PKG_VERSION"), p.model);
    info!(
        "image {:?} loaded at {load_address:#x}; DTB {:?}; {} pCPUs; PA size {} bits",
        image.whole, p.dtb, cpu_count, mmu_config.pa_bits
    );
    if let Some(u) = p.uart {
        let from = if u.from_stdout_path { "/chosen/stdout-path" } else { "the first PL011 (no usable stdout-path)" };
        match u.intid {
            Some(intid) => info!("console: {} at {:#x}, INTID {intid}, from {from}", u.kind, u.region.base),
            None => info!("console: {} at {:#x}, no interrupt (no input), from {from}", u.kind, u.region.base),
        }
    }
    wall_clock(p);
    for bank in p.memory.iter() {
        info!("RAM {:?}", bank);
    }
    for m in p.modules.iter() {
        info!("module {:?} at {:?} bootargs {:?}", m.kind, m.region, m.bootargs.unwrap_or(""));
    }
    let l = &boot.layout;
    info!(
        "hypervisor RAM {} KiB fixed: image {} KiB, page tables {} KiB (pool {} KiB), stacks {} KiB + boot {} KiB, heap {} KiB, frames {} KiB; {} MiB RAM left for guests (and each VM's stage-2 tables)",
        l.footprint() >> 10,
        l.image.whole.size() >> 10,
        boot.tables_used >> 10,
        l.tables.size() >> 10,
        l.stacks.size() >> 10,
        crate::mm::layout::BOOT_STACK_SIZE >> 10,
        l.heap.size() >> 10,
        l.frames.size() >> 10,
        l.free.total() >> 20
    );

    crate::irq::init(guest_ppis(p));
    crate::arch::set_irq_handler(crate::irq::entry);
    init_hcr();
    if let Err(e) = gic::init_distributor(p) {
        fatal(format_args!("{e}"));
    }
    info!("{} distributor {:?}, {} INTIDs", gic::version(), p.gic.distributor, gic::intid_count());
    if let Some(gicv) = gic::guest_cpu_interface() {
        info!("GICv2 virtual CPU interface at {gicv:#x} (guests' GICC)");
    }
    let me = cpu::mpidr();
    let Some(boot_index) = p.cpu_index(me) else {
        fatal(format_args!("the boot pCPU (MPIDR {me:#x}) is not in the DTB's /cpus"));
    };
    let mut order: crate::util::FixedVec<u64, { platform::MAX_CPUS }> = crate::util::FixedVec::new();
    let _ = order.push(me);
    for (i, c) in p.cpus.iter().enumerate() {
        if i != boot_index {
            let _ = order.push(c.mpidr);
        }
    }
    percpu::init(&order);
    if let Err(e) = gic::init_cpu(me, &enabled_ppis()) {
        fatal(format_args!("{e}"));
    }
    percpu::this_cpu().online.store(true, Ordering::Release);
    if let Some(intid) = p.uart.and_then(|u| u.intid) {
        gic::enable_spi(intid, me);
        crate::console::enable_receive_interrupt();
    }
    cpu::irq_enable();
    if let Some(ps) = p.psci.as_ref() {
        match psci::version(ps) {
            Ok((major, minor)) => info!("firmware PSCI {major}.{minor} over {:?}", ps.conduit),
            Err(e) => warn!("firmware PSCI_VERSION failed: {e:?}"),
        }
    }
    start_secondaries(boot);
    let online = percpu::all().iter().filter(|c| c.online.load(Ordering::Acquire)).count();
    info!("{online} of {} pCPUs online", percpu::all().len());

    #[cfg(feature = "selftest")]
    crate::selftest::run();
    #[cfg(not(feature = "selftest"))]
    crate::guest::run(&boot.platform, boot.layout.image.whole)
}

/// Reads the board's RTC once, for every VM's clock to count from (`wallclock`), and says
/// what it found in one line.
fn wall_clock(p: &Platform<'_>) {
    use crate::wallclock::{Utc, set_board};
    let Some(region) = p.rtc else {
        info!("wall clock: no arm,pl031 RTC in the device tree; guests' clocks start at 0 ({})", Utc(0));
        return;
    };
    let (clock, started) = rtc::read(region);
    set_board(clock);
    let stopped = if started { "" } else { " (not running: RTCCR.RTCstart is 0)" };
    info!("wall clock: {} ({} s) from the PL031 at {:#x}{stopped}", Utc(clock.seconds), clock.seconds, region.base);
}

/// Physical PPIs a pCPU takes at EL2 on a guest's behalf: the virtual timer, the vGIC
/// maintenance interrupt and the EL1 physical timer (the architected numbers when the DTB
/// does not say), and the console UART's interrupt.
fn guest_ppis(p: &Platform<'_>) -> crate::irq::Ppis {
    let d = crate::irq::Ppis::DEFAULT;
    crate::irq::Ppis {
        virtual_timer: p.timer.map_or(d.virtual_timer, |t| t.virt),
        maintenance: p.gic.maintenance_intid.unwrap_or(d.maintenance),
        physical_timer: p.timer.map_or(d.physical_timer, |t| t.phys),
        hyp_timer: p.timer.map_or(d.hyp_timer, |t| t.hyp_phys),
        uart: p.uart.and_then(|u| u.intid),
    }
}

/// The PPIs each pCPU enables at its redistributor.
fn enabled_ppis() -> [u32; 4] {
    let p = crate::irq::ppis();
    [p.virtual_timer, p.maintenance, p.physical_timer, p.hyp_timer]
}

fn fatal(args: fmt::Arguments<'_>) -> ! {
    error!("fatal: {args}");
    semihosting::exit(1);
    boot::halt()
}

/// Is `[addr, addr + 8)` inside RAM the EL2 map covers (for a spin-table release slot)?
fn mapped_ram(boot: &Boot, addr: u64) -> bool {
    let r = Range { start: addr, end: addr.saturating_add(8) };
    boot.platform.memory.iter().any(|m| m.range().contains_range(&r))
        && !boot.platform.reserved.iter().any(|x| x.no_map && x.region.range().overlaps(&r))
}

fn start_secondaries(boot: &Boot) {
    let sb = &boot::SECONDARY_BOOT;
    sb.mair.store(boot.mmu.mair, Ordering::Relaxed);
    sb.tcr.store(boot.mmu.tcr, Ordering::Relaxed);
    sb.ttbr0.store(boot.mmu.ttbr0, Ordering::Relaxed);
    sb.sctlr.store(boot.mmu.sctlr, Ordering::Relaxed);
    let entry = boot::secondary_entry_address();
    for c in percpu::all().iter().skip(1) {
        boot::set_secondary(c.id.0, c.mpidr, boot.layout.stack_top(c.id.0));
    }
    for c in percpu::all().iter().skip(1) {
        let Some(index) = boot.platform.cpu_index(c.mpidr) else { continue };
        let method = boot.platform.cpus[index].enable;
        let started = match method {
            EnableMethod::Psci => match boot.platform.psci.as_ref() {
                Some(ps) => psci::cpu_on(ps, c.mpidr, entry, c.id.0 as u64).map_err(|e| {
                    error!("pCPU {} (MPIDR {:#x}): PSCI CPU_ON failed: {e:?}", c.id.0, c.mpidr);
                }),
                None => {
                    error!("pCPU {} (MPIDR {:#x}): enable-method psci but no /psci node", c.id.0, c.mpidr);
                    Err(())
                }
            },
            EnableMethod::SpinTable { release_addr } if mapped_ram(boot, release_addr) => {
                // SAFETY: the release slot is RAM in our map (checked above); the spinning
                // pCPU reads it with its caches off, hence the clean and the SEV.
                unsafe { core::ptr::write_volatile(release_addr as *mut u64, entry) };
                cpu::dcache_clean(release_addr, release_addr + 8);
                cpu::sev();
                Ok(())
            }
            EnableMethod::SpinTable { release_addr } => {
                error!("pCPU {}: spin-table release address {release_addr:#x} is not in RAM", c.id.0);
                Err(())
            }
            EnableMethod::None => {
                error!("pCPU {} (MPIDR {:#x}): no enable-method we can use", c.id.0, c.mpidr);
                Err(())
            }
        };
        if started.is_err() {
            continue;
        }
        // Secondaries come up in well under a second even under TCG; allow five.
        let deadline = cpu::counter() + cpu::ticks_from_us(5_000_000);
        while !c.online.load(Ordering::Acquire) {
            if cpu::counter() > deadline {
                error!("pCPU {} (MPIDR {:#x}) did not come online", c.id.0, c.mpidr);
                break;
            }
            core::hint::spin_loop();
        }
    }
}

#[unsafe(no_mangle)]
extern "C" fn secondary_main(index: u64) -> ! {
    let index = index as usize;
    percpu::install(CpuId(index));
    init_hcr();
    let this = percpu::this_cpu();
    let ppis = enabled_ppis();
    if let Err(e) = gic::init_cpu(this.mpidr, &ppis) {
        error!("{e}");
        boot::halt();
    }
    info!("pCPU {index} online (MPIDR {:#x})", this.mpidr);
    this.online.store(true, Ordering::Release);
    crate::sched::park_loop()
}

/// Entered at EL1 or EL3 instead of EL2.
#[unsafe(no_mangle)]
extern "C" fn wrong_el_main(dtb: u64, el: u64) -> ! {
    let uart = dtb_slice(dtb).ok().and_then(|b| platform::discover(b, dtb).ok()).and_then(|p| p.uart);
    console_early(
        uart,
        format_args!(
            "armvisor: fatal: entered at EL{el}, but a hypervisor needs EL2.\n\
             armvisor: start QEMU with -machine virt,virtualization=on, or have the firmware enter the image at EL2.\n"
        ),
    );
    semihosting::exit(1);
    boot::halt()
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cpu::irq_save();
    let first = !crate::irq::PANICKING.swap(true, Ordering::AcqRel);
    let id = percpu::try_this_cpu().map(|c| c.id.0);
    if first {
        // Stop the others: they halt on their next IRQ.
        for c in percpu::all().iter().filter(|c| Some(c.id.0) != id) {
            gic::send_sgi(gic::SGI_KICK, c.mpidr);
        }
    }
    let us = crate::console::uptime_us();
    crate::console::print_panic(format_args!(
        "[{:5}.{:06}] E {}: PANIC: {info}\n",
        us / 1_000_000,
        us % 1_000_000,
        crate::console::CpuLabel(id)
    ));
    semihosting::exit(1);
    boot::halt()
}

/// The DTB the bootloader passed, as a byte slice, if x0 points at something with the magic.
pub fn dtb_slice(dtb: u64) -> Result<&'static [u8], crate::platform::check::FdtDamage> {
    use crate::platform::check::{self, FdtDamage, HEADER_SIZE};
    if dtb == 0 || !dtb.is_multiple_of(8) {
        return Err(FdtDamage::BadMagic(0));
    }
    // SAFETY: the boot protocol says x0 holds the DTB's physical address; we read the
    // header first (within RAM if x0 is honest) and then only `totalsize` bytes, bounded by
    // check::MAX_SIZE. Nothing writes to the blob while the hypervisor runs.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, HEADER_SIZE) };
    let size = check::total_size(header)?;
    // SAFETY: as above, with the size the header declares.
    Ok(unsafe { core::slice::from_raw_parts(dtb as *const u8, size) })
}
