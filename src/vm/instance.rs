//! A VM on the machine: guest RAM and its stage-2 tables, its VMID, the vGIC, the device
//! table and device state, vCPU power states, and how it ended.
#![forbid(unsafe_code)]

use super::config::{DeviceKind, VmidPool};
use super::{MAX_VCPUS, VmConfig, memory_map};
use crate::arch::{self, FrameTables, ModulePages, OwnedRam, RegisterPage};
use crate::devices::pl011::{self, Pl011};
use crate::devices::pl031::{AlarmWatch, Pl031};
use crate::devices::testdev::TestDevice;
use crate::devices::virtio_blk::VirtioBlk;
use crate::devices::{Device, GuestMemory, MmioRegion, OutOfGuestRam};
use crate::ids::VmId;
use crate::mm::pagetable::{Leaves, MapError, PageTable, TableMemory, s2};
use crate::mm::range::Range;
use crate::mm::{GuestPhysAddr, PAGE_SIZE, PhysAddr};
use crate::psci::PowerState;
use crate::sync::IrqLock;
use crate::util::FixedVec;
use crate::vgic;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize};

pub use super::vcpu::VcpuEnd;

/// VMIDs free for VMs (lock `vm::VMIDS`, a leaf): taken when a VM is built, given back when
/// it is dropped. A recycled VMID needs no TLB maintenance on other pCPUs: every vCPU start
/// invalidates its VMID's stage-1+2 entries on its own pCPU (`load_guest_config`).
static VMIDS: IrqLock<VmidPool> = IrqLock::new(VmidPool::new());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmError {
    NoRam,
    /// No block of guest RAM left for the VM's stage-2 tables.
    NoTableRam,
    /// All 255 VMIDs are in use.
    NoVmid,
    ImageTooLarge,
    BadConfig(&'static str),
    Stage2(MapError),
    /// The machine's physical address range is below the 40 bits this build's stage-2 needs.
    PaRangeTooSmall(u32),
}

pub struct Vm {
    pub name: &'static str,
    pub vmid: VmId,
    pub config: VmConfig,
    pub(super) ram: OwnedRam,
    pub(super) tables: FrameTables,
    stage2: PageTable,
    pub vtcr: u64,
    /// Each vCPU's MPIDR as the guest sees it (Aff0 = vCPU index).
    pub mpidrs: FixedVec<u64, MAX_VCPUS>,
    /// vCPU power states (lock `Vm::power`, a leaf).
    pub power: Box<IrqLock<FixedVec<PowerState, MAX_VCPUS>>>,
    /// Test-ABI reports (lock `Vm::reports`, a leaf).
    pub reports: Box<IrqLock<FixedVec<(u64, u64), 64>>>,
    /// The virtual distributor: SPIs and their routes (lock `Vm::vgic`; taken after
    /// `Vm::uart`, `Vm::virtio` or a `Vm::redists` lock, never before them).
    pub vgic: Box<IrqLock<vgic::Dist>>,
    /// Each vCPU's virtual redistributor: its SGIs and PPIs (lock `Vm::redists[n]`, taken
    /// by vCPU n on entry and exit, and by whoever sends it an SGI or writes its frames;
    /// never two of them at once).
    pub redists: Vec<IrqLock<vgic::Redistributor>>,
    /// Bit n set: vCPU n may have an interrupt to inject or in its list registers. Set
    /// (Release) by whoever changes the vGIC state, before kicking; a vCPU that reads it
    /// clear (Acquire) on entry skips the vGIC locks. A change racing with that read is
    /// followed by a kick, so the next entry sees it.
    pub vgic_work: super::work::WorkBits,
    /// Bit n set: an SPI may be busy for vCPU n, so its flush takes `Vm::vgic` too. Set
    /// (Release, before `vgic_work` and the kick) after a distributor change that returned
    /// vCPU n among its kicks; cleared by vCPU n, holding `Vm::vgic`, when its flush finds
    /// no busy SPI routed to it (so a clear never hides a change made under the lock).
    pub spi_work: super::work::WorkBits,
    /// GICD_CTLR.EnableGrp1, for flushes without `Vm::vgic` (stored under that lock,
    /// Release, before the kick that every GICD_CTLR write sends; read with Acquire).
    pub groups: AtomicU8,
    /// The vGIC version the guest sees (the board's).
    pub gic: vgic::Version,
    /// Guest-physical MMIO regions; fixed at creation.
    pub regions: FixedVec<MmioRegion, { super::MAX_DEVICES }>,
    /// The guest's UART (lock `Vm::uart`; taken before `Vm::vgic`, never after).
    pub uart: IrqLock<Pl011>,
    /// The guest's real-time clock (lock `Vm::rtc`; taken before `Vm::vgic`, never after).
    pub rtc: IrqLock<Pl031>,
    /// The RTC's match as the schedulers see it without `Vm::rtc`: when it is due, and
    /// the pCPU that wakes for it (published under `Vm::rtc`; see `vm::bus::rtc_due`).
    pub rtc_alarm: AlarmWatch,
    /// Exits each vCPU took, stored when it stops (for tests and statistics).
    pub exits: [AtomicU64; MAX_VCPUS],
    /// The page the guest reads its UART's registers from without an exit, and where its
    /// stage-2 descriptor lives (switched under `Vm::uart`; see [`uart_changed`]).
    pub(super) uart_page: RegisterPage,
    pub(super) uart_entry: (PhysAddr, usize),
    pub(super) uart_desc: u64,
    /// The VM's index among the console's VMs (`console::add_vm`), set before it runs;
    /// `None` for a VM that is not one of them (the self-test's), whose bytes go out raw.
    pub console: Option<usize>,
    /// The first bytes the guest transmitted (lock `Vm::console_log`, a leaf), for tests.
    pub console_log: IrqLock<FixedVec<u8, 256>>,
    /// The virtio-blk device, if the VM has a disk (lock `Vm::virtio`; taken before
    /// `Vm::vgic`, never after).
    pub virtio: Option<IrqLock<VirtioBlk<'static>>>,
    /// The self-test device (lock `Vm::testdev`, a leaf).
    pub testdev: Box<IrqLock<TestDevice>>,
    /// CNTVOFF_EL2 for every vCPU: the counter when the VM was created, so its virtual
    /// counter starts near 0 and runs in step on all its vCPUs.
    pub cntvoff: u64,
    /// Device accesses emulated by decoding the instruction (ISV = 0); Relaxed, a statistic.
    pub decoded_accesses: AtomicU32,
    /// Accesses to device offsets no register answers (RAZ/WI); Relaxed, a statistic.
    pub unknown_accesses: AtomicU32,
    /// How often each kind of message about this VM may reach the console.
    pub logs: super::loglimit::VmLogLimits,
    /// vCPUs handed to a pCPU's scheduler and not yet dropped by it (AcqRel): the VM has
    /// stopped everywhere, and no scheduler holds it any more, when this is 0 after it
    /// ended. Its own allocation, so a scheduler can count down after dropping the VM.
    pub placed: alloc::sync::Arc<AtomicUsize>,
    /// The pCPU running `run_vm` for this VM, kicked when `placed` drops to 0.
    pub waiter: AtomicUsize,
    /// Set (Release) when the VM ends (SYSTEM_OFF, SYSTEM_RESET, a fatal guest error);
    /// every vCPU loop checks it (Acquire) after each exit and while waiting for CPU_ON.
    pub ended: AtomicBool,
    /// Why it ended (valid once `ended` is set; lock `Vm::end_reason`, a leaf).
    pub end_reason: IrqLock<Option<VcpuEnd>>,
}

impl Vm {
    pub fn new(config: VmConfig) -> Result<Self, VmError> {
        Self::new_in_place(config, None)
    }

    /// As [`Vm::new`], with the pages of a kernel module serving the guest RAM at the
    /// guest-physical address given: the kernel runs where the bootloader put it.
    pub fn new_in_place(config: VmConfig, kernel: Option<(GuestPhysAddr, ModulePages)>) -> Result<Self, VmError> {
        if config.vcpu_count == 0 || config.vcpu_count > MAX_VCPUS {
            return Err(VmError::BadConfig("no vCPUs, or more than a VM may have"));
        }
        if config.placement.len() != config.vcpu_count {
            return Err(VmError::BadConfig("the placement does not name one pCPU per vCPU"));
        }
        let cpus = crate::percpu::all().len();
        if (0..config.vcpu_count).any(|v| config.placement.cpu(v).is_none_or(|c| c.0 >= cpus)) {
            return Err(VmError::BadConfig("the placement names a pCPU the machine does not have"));
        }
        if !config.ram_base.0.is_multiple_of(2 << 20) || config.ram_size == 0 {
            return Err(VmError::BadConfig("RAM base must be 2 MiB aligned and RAM non-empty"));
        }
        let mut ram = OwnedRam::take(config.ram_size).ok_or(VmError::NoRam)?;
        if let Some((ipa, pages)) = kernel {
            let at = ipa.0.checked_sub(config.ram_base.0).ok_or(VmError::BadConfig("kernel pages below guest RAM"))?;
            ram.adopt(at, pages).map_err(|_| VmError::BadConfig("kernel pages do not fit in guest RAM"))?;
        }
        ram.load(0, config.image).ok_or(VmError::ImageTooLarge)?;
        let (pa_bits, ps) = arch::pa_range();
        // 39 bits of guest-physical space (512 GiB) need three levels of stage-2 tables,
        // not four: one descriptor fewer on every stage-2 walk. Machines whose physical
        // addresses are narrower than 40 bits are refused, as before.
        if pa_bits < 40 {
            return Err(VmError::PaRangeTooSmall(pa_bits));
        }
        let ipa_bits = 39;
        let vtcr = s2::vtcr(ipa_bits, ps).ok_or(VmError::PaRangeTooSmall(pa_bits))?;
        // The VM's stage-2 tables live in guest RAM taken for them, in proportion to its RAM.
        let mut tables = FrameTables::for_ram(config.ram_size).ok_or(VmError::NoTableRam)?;
        let mut stage2 = PageTable::new_at(&mut tables, s2::start_level(ipa_bits)).map_err(VmError::Stage2)?;
        // 4 KiB pages, not blocks: QEMU's TCG records a TLB entry from a stage-2 block as a
        // large page and then turns every guest TLBI by address into a flush of the whole
        // TLB (ftrace's boot-time patching alone took 0.8 s instead of 0.3 s). On hardware
        // pages cost more TLB walks than blocks; docs/design.md has the numbers.
        for piece in ram.map().pieces() {
            stage2
                .map_with(&mut tables, config.ram_base.0 + piece.offset, piece.pa, piece.len, s2::RAM, Leaves::Pages)
                .map_err(VmError::Stage2)?;
        }
        // The guest's UART window maps, read-only, a page of its register values: polling FR
        // and reading status cost no exit (Linux reads FR once or twice per character it
        // prints). Writes fault and are emulated; see `uart_changed`. It is the only
        // read-only page (`READ_ONLY_PAGE`).
        let uart_page = RegisterPage::new().ok_or(VmError::Stage2(MapError::OutOfTables))?;
        let page = uart_page.frame().0;
        stage2
            .map_with(&mut tables, READ_ONLY_PAGE, page, PAGE_SIZE, s2::REGISTER_PAGE, Leaves::Pages)
            .map_err(VmError::Stage2)?;
        let uart_entry = stage2.page_entry(&tables, READ_ONLY_PAGE).ok_or(VmError::Stage2(MapError::OutOfTables))?;
        let uart_desc = tables.read(uart_entry.0, uart_entry.1);
        let uart = Pl011::new();
        uart_page.write(0, &uart.registers());
        uart_page.write(pl011::ID_REGISTERS.0, &pl011::ID_REGISTERS.1);
        let mut mpidrs = FixedVec::new();
        let mut power = FixedVec::new();
        for i in 0..config.vcpu_count {
            let _ = mpidrs.push(i as u64);
            let _ = power.push(if i == 0 { PowerState::On } else { PowerState::Off });
        }
        let vmid = VMIDS.lock().take().ok_or(VmError::NoVmid)?;
        // From here on the VMID goes back if creation fails (`Vmid`'s drop).
        let vmid = Vmid(vmid);
        // The vGIC is the board's version: a GICv2 host has no ICH_* registers, a GICv3 host
        // no GICV to map.
        let gic = arch::gic_version();
        if gic == vgic::Version::V2 && config.vcpu_count > vgic::v2::MAX_CPUS {
            return Err(VmError::BadConfig("a GICv2 serves at most 8 vCPUs"));
        }
        let mut regions = FixedVec::new();
        for d in config.devices.iter() {
            if d.kind.gic_version().is_some_and(|v| v != gic) {
                return Err(VmError::BadConfig("a vGIC part of the other GIC version than the board's"));
            }
            let device = match d.kind {
                DeviceKind::GicDistributor => Device::GicDistributor,
                DeviceKind::GicRedistributors => Device::GicRedistributors,
                DeviceKind::GicV2Distributor => Device::GicV2Distributor,
                DeviceKind::GicV2CpuInterface => {
                    // Not emulated: the board's virtual CPU interface, mapped as device
                    // memory. The guest's accesses to it never exit.
                    if d.ipa.size() != vgic::v2::GICC_SIZE {
                        return Err(VmError::BadConfig("a device window is not the size of its registers"));
                    }
                    let gicv = arch::guest_cpu_interface().ok_or(VmError::BadConfig("the board has no GICV"))?;
                    stage2
                        .map_with(&mut tables, d.ipa.start, gicv, d.ipa.size(), s2::DEVICE, Leaves::Pages)
                        .map_err(VmError::Stage2)?;
                    continue;
                }
                DeviceKind::Pl011 => Device::Pl011,
                DeviceKind::Pl031 => Device::Pl031,
                DeviceKind::VirtioBlk { .. } => Device::VirtioBlk,
                DeviceKind::Test => Device::Test,
                DeviceKind::VirtioWindow => Device::VirtioWindow,
            };
            if d.ipa.size() != d.kind.window_size(config.vcpu_count) {
                return Err(VmError::BadConfig("a device window is not the size of its registers"));
            }
            if d.kind == DeviceKind::Pl011 && d.ipa.start != READ_ONLY_PAGE {
                // The register page's faults are told apart by this one address.
                return Err(VmError::BadConfig("the PL011 must be at QEMU virt's address"));
            }
            if regions.iter().any(|r: &MmioRegion| r.range.overlaps(&d.ipa)) {
                return Err(VmError::BadConfig("two device windows overlap"));
            }
            regions
                .push(MmioRegion { range: d.ipa, device, intid: d.intid })
                .map_err(|_| VmError::BadConfig("too many devices"))?;
        }
        for required in super::config::required(gic) {
            if !config.devices.iter().any(|d| d.kind == required) {
                return Err(VmError::BadConfig("a VM needs its vGIC (the board's version) and a PL011"));
            }
        }
        if !regions.iter().any(|r| r.device == Device::Pl011) {
            return Err(VmError::BadConfig("a VM needs its vGIC (the board's version) and a PL011"));
        }
        if regions
            .iter()
            .any(|r| r.range.overlaps(&Range { start: config.ram_base.0, end: config.ram_base.0 + config.ram_size }))
        {
            return Err(VmError::BadConfig("guest RAM overlaps the device regions"));
        }
        log::info!(
            "VM '{}' (VMID {}): {} vCPUs, RAM {:#x}+{:#x} at PA {}; stage-2 tables {} KiB of {} KiB taken for them",
            config.name,
            vmid.0.0,
            config.vcpu_count,
            config.ram_base.0,
            config.ram_size,
            ram.map(),
            tables.frames.len() * 4,
            arch::stage2_table_bytes(config.ram_size) >> 10
        );
        let vmid = vmid.keep();
        Ok(Self {
            name: config.name,
            vmid,
            config,
            ram,
            tables,
            stage2,
            vtcr,
            mpidrs,
            power: Box::new(IrqLock::new(power)),
            reports: Box::new(IrqLock::new(FixedVec::new())),
            vgic: Box::new(IrqLock::new(vgic::Dist::new(&mpidrs, gic))),
            redists: (0..config.vcpu_count).map(|_| IrqLock::new(super::timer::redistributor(gic))).collect(),
            vgic_work: super::work::WorkBits::all(),
            spi_work: super::work::WorkBits::all(),
            groups: AtomicU8::new(0),
            gic,
            regions,
            testdev: Box::new(IrqLock::new(TestDevice::default())),
            uart: IrqLock::new(uart),
            rtc: IrqLock::new(Pl031::new(crate::wallclock::board(), arch::counter_frequency())),
            rtc_alarm: AlarmWatch::new(),
            exits: [const { AtomicU64::new(0) }; MAX_VCPUS],
            uart_page,
            uart_entry,
            uart_desc,
            virtio: None,
            console: None,
            console_log: IrqLock::new(FixedVec::new()),
            decoded_accesses: AtomicU32::new(0),
            unknown_accesses: AtomicU32::new(0),
            logs: super::loglimit::VmLogLimits::new(arch::counter_frequency()),
            cntvoff: arch::counter(),
            placed: alloc::sync::Arc::new(AtomicUsize::new(0)),
            waiter: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
            end_reason: IrqLock::new(None),
        })
    }

    pub fn vttbr(&self) -> u64 {
        self.stage2.root().0 | ((self.vmid.0 as u64) << 48)
    }

    /// Kicks the pCPU vCPU `v` is placed on, unless that is this pCPU (whose scheduler
    /// looks for work itself).
    pub fn kick_pcpu_of(&self, v: usize) {
        let Some(cpu) = self.config.placement.cpu(v) else { return };
        if arch::cpu_index() != Some(cpu.0)
            && let Err(e) = crate::percpu::kick(cpu)
        {
            log::warn!("VM '{}': kick for vCPU {v} on {cpu}: {e:?}", self.name);
        }
    }

    /// The guest RAM's intermediate physical address range.
    pub fn ram_ipa(&self) -> Range {
        Range { start: self.config.ram_base.0, end: self.config.ram_base.0 + self.config.ram_size }
    }

    /// A 64-bit word of guest RAM at guest physical address `ipa`.
    pub fn read_guest_u64(&self, ipa: u64) -> Option<u64> {
        self.ram.read_u64(ipa.checked_sub(self.config.ram_base.0)?)
    }

    /// Gives the VM a virtio-blk disk backed by `disk` (before the VM runs).
    /// The configuration must have the virtio-blk device.
    pub fn attach_disk(&mut self, disk: &'static mut [u8]) -> Result<(), VmError> {
        if !self.regions.iter().any(|r| r.device == Device::VirtioBlk) {
            return Err(VmError::BadConfig("no virtio-blk device in the configuration"));
        }
        self.virtio = Some(IrqLock::new(VirtioBlk::new(disk)));
        Ok(())
    }

    /// Takes the disk back from a VM that has stopped (for the VM's next run).
    pub fn take_disk(&mut self) -> Option<&'static mut [u8]> {
        self.virtio.take().map(|d| d.into_inner().into_disk())
    }

    /// Copies `bytes` into guest RAM at guest-physical address `ipa` (before the VM runs).
    pub fn load(&mut self, ipa: u64, bytes: &[u8]) -> Result<(), VmError> {
        let offset = ipa.checked_sub(self.config.ram_base.0).ok_or(VmError::ImageTooLarge)?;
        self.ram.load(offset, bytes).ok_or(VmError::ImageTooLarge)
    }

    /// The stage-2 walk for `ipa` (tests: what the guest can reach).
    pub fn translate(&self, ipa: u64) -> Option<u64> {
        self.stage2.translate(&self.tables, ipa).map(|(pa, _)| pa)
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        give_back_vmid(self.vmid);
    }
}

fn give_back_vmid(vmid: VmId) {
    if let Err(e) = VMIDS.lock().give_back(vmid) {
        log::error!("VMID {} given back twice: {e:?}", vmid.0);
    }
}

/// A VMID taken for a VM under construction: given back if construction fails.
struct Vmid(VmId);

impl Vmid {
    /// Construction succeeded: the VM owns the VMID now.
    fn keep(self) -> VmId {
        let id = self.0;
        core::mem::forget(self);
        id
    }
}

impl Drop for Vmid {
    fn drop(&mut self) {
        give_back_vmid(self.0);
    }
}

/// The one page stage 2 maps read-only (the UART's register page, `new_in_place`): a
/// stage-2 permission fault, whose HPFAR_EL2 is UNKNOWN, is placed here (`vm::vcpu::run`). A
/// second read-only mapping would need its own way to tell its faults apart.
pub(super) const READ_ONLY_PAGE: u64 = memory_map::UART;

/// Brings the guest's UART register page in line with `uart` (whose `Vm::uart` lock the
/// caller holds, which serializes these changes). While no read has an effect the page is
/// mapped and holds every register's value; while received bytes wait (a DR read takes
/// one) it is unmapped, and every access traps to the emulation. The TLBs are invalidated
/// before the caller releases the lock, so no vCPU reads the page after that.
pub(super) fn uart_changed(vm: &Vm, uart: &Pl011) {
    let (table, index) = vm.uart_entry;
    let mapped = vm.tables.read(table, index) != 0;
    if uart.reads_have_effects() {
        if mapped {
            vm.tables.set_entry(table, index, 0);
            arch::invalidate_ipa(vm.vttbr(), READ_ONLY_PAGE);
        }
    } else {
        vm.uart_page.write(0, &uart.registers());
        if !mapped {
            // From invalid to valid: no TLB holds the translation fault.
            vm.tables.set_entry(table, index, vm.uart_desc);
        }
    }
}

/// A VM's RAM as the virtio device sees it (guest-physical addresses, bounds-checked).
pub(super) struct VmMemory<'a>(pub &'a Vm);

impl GuestMemory for VmMemory<'_> {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), OutOfGuestRam> {
        let offset = gpa.checked_sub(self.0.config.ram_base.0).ok_or(OutOfGuestRam)?;
        if self.0.ram.read_at(offset, buf) { Ok(()) } else { Err(OutOfGuestRam) }
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), OutOfGuestRam> {
        let offset = gpa.checked_sub(self.0.config.ram_base.0).ok_or(OutOfGuestRam)?;
        if self.0.ram.write_at(offset, data) { Ok(()) } else { Err(OutOfGuestRam) }
    }
}
