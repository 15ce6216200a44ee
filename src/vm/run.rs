//! A VM on the machine: guest RAM, its stage-2 tables, vCPU power states; and `run_vcpu`,
//! the loop each pCPU runs for its vCPU: enter, read the exit once, decode, handle, resume.

use super::exit::{self, Access, DataAbort, Exit};
use super::{MAX_VCPUS, VmConfig, memory_map};
use crate::arch::{self, FrameTables, GuestRegs, ModulePages, OwnedRam, RegisterPage};
use crate::devices::pl011::{self, Pl011};
use crate::devices::testdev::{self, TestDevice};
use crate::devices::virtio_blk::{self, GuestMemory, OutOfGuestRam, VirtioBlk};
use crate::devices::{self, Device, MmioRegion};
use crate::mm::pagetable::{Leaves, MapError, PageTable, TableMemory, s2};
use crate::mm::range::Range;
use crate::mm::{GuestPhysAddr, PAGE_SIZE, PhysAddr};
use crate::psci::{self, Outcome, PowerState};
use crate::sync::IrqLock;
use crate::util::FixedVec;
use crate::vgic::{self, Kicks};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

/// VMIDs handed out so far (VMID 0 is never used for a guest).
static NEXT_VMID: AtomicU8 = AtomicU8::new(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmError {
    NoRam,
    ImageTooLarge,
    BadConfig(&'static str),
    Stage2(MapError),
    /// The machine's physical address range is below the 40 bits this build's stage-2 needs.
    PaRangeTooSmall(u32),
}

pub struct Vm {
    pub name: &'static str,
    pub vmid: u8,
    pub config: VmConfig,
    ram: OwnedRam,
    tables: FrameTables,
    stage2: PageTable,
    vtcr: u64,
    /// Each vCPU's MPIDR as the guest sees it (Aff0 = vCPU index).
    pub mpidrs: FixedVec<u64, MAX_VCPUS>,
    /// vCPU power states (lock `Vm::power`, a leaf).
    pub power: IrqLock<FixedVec<PowerState, MAX_VCPUS>>,
    /// Test-ABI reports (lock `Vm::reports`, a leaf).
    pub reports: IrqLock<FixedVec<(u64, u64), 64>>,
    /// The virtual distributor: SPIs and their routes (lock `Vm::vgic`; taken after
    /// `Vm::uart`, `Vm::virtio` or a `Vm::redists` lock, never before them).
    pub vgic: IrqLock<vgic::Dist>,
    /// Each vCPU's virtual redistributor: its SGIs and PPIs (lock `Vm::redists[n]`, taken
    /// by vCPU n on entry and exit, and by whoever sends it an SGI or writes its frames;
    /// never two of them at once).
    pub redists: Vec<IrqLock<vgic::Redistributor>>,
    /// Bit n set: vCPU n may have an interrupt to inject or in its list registers. Set
    /// (Release) by whoever changes the vGIC state, before kicking; a vCPU that reads it
    /// clear (Acquire) on entry skips the vGIC locks. A change racing with that read is
    /// followed by a kick, so the next entry sees it.
    pub vgic_work: AtomicU64,
    /// Bit n set: an SPI may be busy for vCPU n, so its flush takes `Vm::vgic` too. Set
    /// (Release, before `vgic_work` and the kick) after a distributor change that returned
    /// vCPU n among its kicks; cleared by vCPU n, holding `Vm::vgic`, when its flush finds
    /// no busy SPI routed to it (so a clear never hides a change made under the lock).
    pub spi_work: AtomicU64,
    /// GICD_CTLR.EnableGrp1, for flushes without `Vm::vgic` (stored under that lock,
    /// Release, before the kick that every GICD_CTLR write sends; read with Acquire).
    pub grp1: AtomicBool,
    /// Guest-physical MMIO regions; fixed at creation.
    pub regions: FixedVec<MmioRegion, 6>,
    /// The guest's UART (lock `Vm::uart`; taken before `Vm::vgic`, never after).
    pub uart: IrqLock<Pl011>,
    /// Exits each vCPU took, stored when it stops (for tests and statistics).
    pub exits: [AtomicU64; MAX_VCPUS],
    /// The page the guest reads its UART's registers from without an exit, and where its
    /// stage-2 descriptor lives (switched under `Vm::uart`; see [`uart_changed`]).
    uart_page: RegisterPage,
    uart_entry: (PhysAddr, usize),
    uart_desc: u64,
    /// The first bytes the guest transmitted (lock `Vm::console_log`, a leaf), for tests.
    pub console_log: IrqLock<FixedVec<u8, 256>>,
    /// The virtio-blk device, if the VM has a disk (lock `Vm::virtio`; taken before
    /// `Vm::vgic`, never after).
    pub virtio: Option<IrqLock<VirtioBlk<'static>>>,
    /// The self-test device (lock `Vm::testdev`, a leaf).
    pub testdev: IrqLock<TestDevice>,
    /// CNTVOFF_EL2 for every vCPU: the counter when the VM was created, so its virtual
    /// counter starts near 0 and runs in step on all its vCPUs.
    pub cntvoff: u64,
    /// Device accesses emulated by decoding the instruction (ISV = 0); Relaxed, a statistic.
    pub decoded_accesses: core::sync::atomic::AtomicU32,
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
        // vCPU n runs on pCPU n.
        if config.vcpu_count == 0 || config.vcpu_count > crate::percpu::all().len() {
            return Err(VmError::BadConfig("more vCPUs than pCPUs"));
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
        let mut tables = FrameTables::default();
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
        let vmid = NEXT_VMID.fetch_add(1, Ordering::Relaxed).max(1);
        let mut regions = FixedVec::new();
        let region = |start: u64, size: u64, device| MmioRegion { range: Range { start, end: start + size }, device };
        let _ = regions.push(region(memory_map::GICD, vgic::GICD_SIZE, Device::GicDistributor));
        let redists = vgic::GICR_FRAME_SIZE * config.vcpu_count as u64;
        let _ = regions.push(region(memory_map::GICR, redists, Device::GicRedistributors));
        let _ = regions.push(region(memory_map::UART, devices::pl011::SIZE, Device::Pl011));
        if cfg!(feature = "selftest") {
            let _ = regions.push(region(memory_map::TEST_DEVICE, testdev::SIZE, Device::Test));
        }
        if regions
            .iter()
            .any(|r| r.range.overlaps(&Range { start: config.ram_base.0, end: config.ram_base.0 + config.ram_size }))
        {
            return Err(VmError::BadConfig("guest RAM overlaps the device regions"));
        }
        log::info!(
            "VM '{}' (VMID {vmid}): {} vCPUs, RAM {:#x}+{:#x} at PA {}",
            config.name,
            config.vcpu_count,
            config.ram_base.0,
            config.ram_size,
            ram.map()
        );
        Ok(Self {
            name: config.name,
            vmid,
            config,
            ram,
            tables,
            stage2,
            vtcr,
            mpidrs,
            power: IrqLock::new(power),
            reports: IrqLock::new(FixedVec::new()),
            vgic: IrqLock::new(vgic::Dist::new(&mpidrs)),
            redists: (0..config.vcpu_count).map(|_| IrqLock::new(vgic::Redistributor::new())).collect(),
            vgic_work: AtomicU64::new(u64::MAX),
            spi_work: AtomicU64::new(u64::MAX),
            grp1: AtomicBool::new(false),
            regions,
            testdev: IrqLock::new(TestDevice::default()),
            uart: IrqLock::new(uart),
            exits: [const { AtomicU64::new(0) }; MAX_VCPUS],
            uart_page,
            uart_entry,
            uart_desc,
            virtio: None,
            console_log: IrqLock::new(FixedVec::new()),
            decoded_accesses: core::sync::atomic::AtomicU32::new(0),
            cntvoff: arch::counter(),
            ended: AtomicBool::new(false),
            end_reason: IrqLock::new(None),
        })
    }

    fn vttbr(&self) -> u64 {
        self.stage2.root().0 | ((self.vmid as u64) << 48)
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
    pub fn attach_disk(&mut self, disk: &'static mut [u8]) -> Result<(), VmError> {
        let range = Range { start: memory_map::VIRTIO_BLK, end: memory_map::VIRTIO_BLK + virtio_blk::SIZE };
        self.regions
            .push(MmioRegion { range, device: Device::VirtioBlk })
            .map_err(|_| VmError::BadConfig("too many devices"))?;
        self.virtio = Some(IrqLock::new(VirtioBlk::new(disk)));
        Ok(())
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

/// What to do after handling an exit.
enum Next {
    Resume,
    End(VcpuEnd),
}

/// The one page stage 2 maps read-only (the UART's register page, `new_in_place`): a
/// stage-2 permission fault, whose HPFAR_EL2 is UNKNOWN, is placed here (`run_vcpu`). A
/// second read-only mapping would need its own way to tell its faults apart.
const READ_ONLY_PAGE: u64 = memory_map::UART;
/// ESR_EL1 exception classes of the exceptions injected here (Arm ARM D17.2.37).
const EC_UNKNOWN: u64 = 0x00;
const EC_DATA_ABORT_SAME_EL: u64 = 0x25;
const EC_INSN_ABORT_SAME_EL: u64 = 0x21;
/// ESR_EL1 values for injected exceptions: IL = 1 (32-bit instruction).
const ESR_IL: u64 = 1 << 25;
/// Fault status "synchronous external abort, not on a translation table walk".
const FSC_SEA: u64 = 0x10;

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
                kick(vm, vcpu.index, kicks);
            } else {
                vgic::sync(None, &mut redist, vcpu.index, &lrs);
            }
        }
        let mut exit = exit::decode(s.vector, s.esr, s.far, s.hpfar);
        if let Exit::DataAbort(d) = &mut exit {
            // Stage 2 maps one page read-only, the UART's register page (`new_in_place`):
            // a permission fault is a write there, most of them to DR. Knowing that saves
            // translating the guest's address again (AT) on every byte the guest prints.
            *d = d.with_permission_fault_at(READ_ONLY_PAGE);
        }
        let next = match exit {
            Exit::Irq => {
                let events = crate::irq::handle();
                // Timer PPIs belong to the vCPU on this pCPU.
                let ppis = crate::irq::ppis();
                let (vtimer, ptimer) = (ppis.virtual_timer, ppis.physical_timer);
                for (fired, ppi) in [(events.virtual_timer, vtimer), (events.physical_timer, ptimer)] {
                    if fired && vm.redists[vcpu.index].lock().set_pending(ppi) {
                        kick(vm, vcpu.index, Kicks(me));
                    }
                }
                if vm.ended.load(Ordering::Acquire) {
                    Next::End(vm.end_reason.lock().unwrap_or(VcpuEnd::SystemOff))
                } else {
                    Next::Resume
                }
            }
            Exit::Fiq => Next::Resume,
            Exit::Hvc { .. } => handle_call(vm, vcpu),
            Exit::Smc { .. } => {
                // A trapped SMC has not executed: step over it, then answer like HVC.
                vcpu.regs.pc += 4;
                handle_call(vm, vcpu)
            }
            Exit::Wfx { .. } => {
                vcpu.regs.pc += 4;
                Next::Resume
            }
            Exit::DataAbort(DataAbort { ipa, access: Some(a), write, s1ptw: false, .. })
                if mmio(vm, vcpu, ipa.0, &a, write) =>
            {
                vcpu.regs.pc += 4;
                Next::Resume
            }
            Exit::DataAbort(DataAbort { ipa, access: None, s1ptw: false, .. })
                if decode_and_emulate(vm, vcpu, ipa.0) =>
            {
                vcpu.regs.pc += 4;
                Next::Resume
            }
            Exit::SysReg { op0: 3, op1: 0 | 1, crn: 12, crm: 11, op2: 5 | 6, reg, read: false } => {
                // ICC_SGI1R_EL1 / ICC_ASGI1R_EL1 (one security state: the same thing).
                let value = if reg == 31 { 0 } else { vcpu.regs.x[reg as usize] };
                let (sgi, targets) = vgic::sgi_targets(&vm.mpidrs, vcpu.index, value);
                for t in targets.iter() {
                    vm.redists[t].lock().set_pending(sgi);
                }
                kick(vm, vcpu.index, targets);
                vcpu.regs.pc += 4;
                Next::Resume
            }
            Exit::SysReg { op0: 3, op1: 0, crn: 0, crm: crm @ 1..=7, op2, reg, read: true } => {
                // An ID register (HCR_EL2.TID3): the hardware's value minus what we hide.
                let hw = arch::read_id_reg(crm, op2);
                let value = super::idregs::sanitize(super::idregs::IdReg { crm, op2 }, hw);
                if reg != 31 {
                    vcpu.regs.x[reg as usize] = value;
                }
                vcpu.regs.pc += 4;
                Next::Resume
            }
            Exit::SysReg { op0: 2, reg, read, .. } => {
                // Debug and OS-lock registers (trapped by MDCR_EL2.TDA/TDOSA/TDRA): RAZ/WI,
                // so a guest sees debug hardware with nothing armed and cannot arm any.
                if read && reg != 31 {
                    vcpu.regs.x[reg as usize] = 0;
                }
                vcpu.regs.pc += 4;
                Next::Resume
            }
            Exit::SysReg { op0: 3, op1: 2, crn: 12, crm: 11, op2: 7, read: false, .. } => {
                // ICC_SGI0R_EL1: Group 0 SGIs; the VM has only Group 1. Ignored.
                vcpu.regs.pc += 4;
                Next::Resume
            }
            Exit::DataAbort(d) => {
                // Outside guest RAM and every device, an access neither the syndrome nor
                // the instruction describes, or the guest's page tables outside its RAM
                // (S1PTW): a bus error for the guest.
                rate_limited_warn(vm, "data abort", d.ipa.0);
                let wnr = if d.write { 1 << 6 } else { 0 };
                inject_external_abort(vcpu, EC_DATA_ABORT_SAME_EL, wnr, d.va);
                Next::Resume
            }
            Exit::InstructionAbort { ipa, va } => {
                rate_limited_warn(vm, "instruction abort", ipa.0);
                inject_external_abort(vcpu, EC_INSN_ABORT_SAME_EL, 0, va);
                Next::Resume
            }
            Exit::SysReg { .. } | Exit::Other { .. } => {
                rate_limited_warn(vm, "undefined instruction", vcpu.regs.pc);
                super::inject::inject_sync(&mut vcpu.regs, (EC_UNKNOWN << 26) | ESR_IL, None);
                Next::Resume
            }
            Exit::SError { esr } => {
                log::error!("VM '{}' vCPU {}: SError (ESR {esr:#x}); stopping the VM", vm.name, vcpu.index);
                Next::End(VcpuEnd::Failed(esr))
            }
        };
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

/// Injects a synchronous external abort at `va` into the guest: exception class
/// `ec_same_el` if it was at EL1, the lower-EL class (one less: 0x24 for 0x25, 0x20 for
/// 0x21) if at EL0; `iss` adds to the fault status (WnR for data).
fn inject_external_abort(vcpu: &mut Vcpu, ec_same_el: u64, iss: u64, va: u64) {
    let from_el0 = vcpu.regs.pstate & 0b1111 == 0;
    let ec = if from_el0 { ec_same_el - 1 } else { ec_same_el };
    super::inject::inject_sync(&mut vcpu.regs, (ec << 26) | ESR_IL | iss | FSC_SEA, Some(va));
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

/// Drives a device's SPI: its line to `Some(level)`, or an edge with `None`. Returns the
/// vCPUs to kick, already marked in `Vm::spi_work`.
fn spi_line(vm: &Vm, intid: u32, level: Option<bool>) -> Kicks {
    let mut dist = vm.vgic.lock();
    let kicks = match level {
        Some(high) => dist.set_line(intid, high),
        None => dist.set_pending(intid),
    };
    vm.spi_work.fetch_or(kicks.0, Ordering::Release);
    kicks
}

/// Marks the vCPUs in `kicks` as having vGIC work and kicks their pCPUs (other than `me`)
/// so they refill their list registers.
fn kick(vm: &Vm, me: usize, kicks: Kicks) {
    vm.vgic_work.fetch_or(kicks.0, Ordering::Release);
    for v in kicks.iter().filter(|&v| v != me && v < vm.config.vcpu_count) {
        if let Err(e) = crate::percpu::kick(crate::percpu::CpuId(v)) {
            log::warn!("VM '{}': kick for vCPU {v}: {e:?}", vm.name);
        }
    }
}

/// A device access the syndrome did not describe (ISV = 0, e.g. a writeback form): fetch
/// the instruction from guest RAM, decode it, emulate it and update the base register.
/// `false` (the guest gets an abort) when any step fails.
fn decode_and_emulate(vm: &Vm, vcpu: &mut Vcpu, ipa: u64) -> bool {
    let Some(insn) = arch::guest_va_to_pa(vcpu.regs.pc).and_then(|pa| vm.ram.read_u32_at(pa)) else {
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

/// One emulated load or store described by the syndrome; `false`, with nothing done, when
/// no device of the VM covers it.
fn mmio(vm: &Vm, vcpu: &mut Vcpu, ipa: u64, a: &Access, write: bool) -> bool {
    let Some((region, offset)) = devices::lookup(&vm.regions, ipa, a.size) else { return false };
    let reg_value = if a.reg == 31 { 0 } else { vcpu.regs.x[a.reg as usize] };
    let mut kicks = Kicks::default();
    let mut raw = 0;
    match (region.device, write) {
        (Device::GicDistributor, false) => raw = vm.vgic.lock().read(offset, a.size),
        (Device::GicDistributor, true) => {
            let mut dist = vm.vgic.lock();
            kicks = dist.write(offset, a.size, devices::store_value(a, reg_value));
            vm.grp1.store(dist.enabled_grp1(), Ordering::Release);
            vm.spi_work.fetch_or(kicks.0, Ordering::Release);
        }
        (Device::GicRedistributors, _) => {
            // The region holds one frame pair per vCPU, so `n` names one (else RAZ/WI).
            let n = (offset / vgic::GICR_FRAME_SIZE) as usize;
            let off = offset % vgic::GICR_FRAME_SIZE;
            if let Some(redist) = vm.redists.get(n) {
                if !write {
                    raw = redist.lock().read(n, &vm.mpidrs, off, a.size);
                } else if redist.lock().write(off, a.size, devices::store_value(a, reg_value)) {
                    kicks = Kicks(1 << n.min(63));
                }
            }
        }
        (Device::Pl011, _) => {
            let mut uart = vm.uart.lock();
            let effect = if write {
                uart.write(offset, a.size, devices::store_value(a, reg_value))
            } else {
                raw = uart.read(offset, a.size);
                Default::default()
            };
            if let Some(line) = uart.line_change() {
                kicks = spi_line(vm, memory_map::UART_INTID, Some(line));
            }
            // A transmitted byte changes no register (most of the UART's exits).
            if effect.tx.is_none() {
                uart_changed(vm, &uart);
            }
            drop(uart);
            if let Some(byte) = effect.tx {
                crate::console::write_bytes(&[byte]);
                let _ = vm.console_log.lock().push(byte);
            }
        }
        (Device::VirtioBlk, _) => {
            let Some(dev) = vm.virtio.as_ref() else { return true };
            let mut dev = dev.lock();
            if write {
                let mut mem = VmMemory(vm);
                let effect = dev.write(offset, a.size, devices::store_value(a, reg_value), &mut mem);
                if effect.interrupt {
                    kicks = spi_line(vm, memory_map::VIRTIO_BLK_INTID, None);
                }
            } else {
                raw = dev.read(offset, a.size);
            }
        }
        (Device::Test, false) => raw = vm.testdev.lock().read(offset, a.size),
        (Device::Test, true) => {
            let level = vm.testdev.lock().write(offset, a.size, devices::store_value(a, reg_value));
            if let Some(high) = level {
                kicks = spi_line(vm, testdev::SPI, Some(high));
            }
        }
    }
    if !write && a.reg != 31 {
        vcpu.regs.x[a.reg as usize] = devices::load_value(a, raw);
    }
    kick(vm, vcpu.index, kicks);
    true
}

fn rate_limited_warn(vm: &Vm, what: &str, addr: u64) {
    static COUNT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    if COUNT.fetch_add(1, Ordering::Relaxed) < 32 {
        log::warn!("VM '{}': {what} at {addr:#x}: injected into the guest", vm.name);
    }
}

/// An SMCCC call (HVC, or SMC already stepped over): PSCI, the test ABI, or NOT_SUPPORTED.
fn handle_call(vm: &Vm, vcpu: &mut Vcpu) -> Next {
    let fid = vcpu.regs.x[0] as u32;
    let args = [vcpu.regs.x[1], vcpu.regs.x[2], vcpu.regs.x[3]];
    let ram = vm.ram_ipa();
    let valid_entry = |a: u64| ram.contains(a);
    let outcome = {
        let mut power = vm.power.lock();
        let mut m = psci::Machine { mpidrs: &vm.mpidrs, states: &mut power, valid_entry: &valid_entry };
        psci::call(&mut m, vcpu.index, fid, args)
    };
    let ret = match outcome {
        Some(Outcome::Return(v)) => v,
        Some(Outcome::SystemOff) => return Next::End(VcpuEnd::SystemOff),
        Some(Outcome::SystemReset) => return Next::End(VcpuEnd::SystemReset),
        Some(Outcome::CpuOff) => return Next::End(VcpuEnd::CpuOff),
        Some(Outcome::Suspend) => psci::SUCCESS,
        Some(Outcome::CpuOn { target, .. }) => {
            // The target's pCPU waits in vcpu_loop; the kick wakes it to find OnPending.
            if let Err(e) = crate::percpu::kick(crate::percpu::CpuId(target)) {
                log::error!("VM '{}': waking vCPU {target}: {e:?}", vm.name);
            }
            psci::SUCCESS
        }
        None if cfg!(feature = "selftest") && fid == super::test_abi::REPORT => {
            if vm.reports.lock().push((args[0], args[1])).is_err() {
                log::warn!("VM '{}': report buffer full", vm.name);
            }
            psci::SUCCESS
        }
        None => psci::NOT_SUPPORTED,
    };
    vcpu.regs.x[0] = ret as u64;
    Next::Resume
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

/// The VM that receives console input (lock `vm::CONSOLE_VM`, a leaf).
static CONSOLE_VM: IrqLock<Option<alloc::sync::Weak<Vm>>> = IrqLock::new(None);

/// Makes `vm` the one that gets what is typed on the physical console.
pub fn set_console_vm(vm: &Arc<Vm>) {
    *CONSOLE_VM.lock() = Some(Arc::downgrade(vm));
}

/// Bytes typed on the physical console: into the console VM's UART, raising its interrupt.
pub fn console_input(bytes: &[u8]) {
    let vm = CONSOLE_VM.lock().as_ref().and_then(|w| w.upgrade());
    let Some(vm) = vm else { return };
    let kicks = {
        let mut uart = vm.uart.lock();
        for &b in bytes {
            uart.receive(b);
        }
        uart_changed(&vm, &uart);
        match uart.line_change() {
            Some(line) => spi_line(&vm, memory_map::UART_INTID, Some(line)),
            None => Kicks::default(),
        }
    };
    kick(&vm, usize::MAX, kicks);
}

/// Brings the guest's UART register page in line with `uart` (whose `Vm::uart` lock the
/// caller holds, which serializes these changes). While no read has an effect the page is
/// mapped and holds every register's value; while received bytes wait (a DR read takes
/// one) it is unmapped, and every access traps to the emulation. The TLBs are invalidated
/// before the caller releases the lock, so no vCPU reads the page after that.
fn uart_changed(vm: &Vm, uart: &Pl011) {
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
struct VmMemory<'a>(&'a Vm);

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
