//! The physical GICv2 (IHI 0048B; the GIC-400, DDI 0471): the distributor without affinity
//! routing (SPIs reach a CPU through GICD_ITARGETSR), the memory-mapped CPU interface, kicks
//! through GICD_SGIR, and the virtualization extensions' regions the vGIC uses (GICH here,
//! GICV mapped into guests). At most 8 CPU interfaces.
//!
//! Interrupts are left in the group the firmware put them in, as Linux leaves them: on a GIC
//! without the Security Extensions (QEMU) they reset to Group 0, which GICD_CTLR bit 0 and
//! GICC_CTLR bit 0 enable and which is signalled as IRQ while GICC_CTLR.FIQEn is 0; behind
//! EL3 firmware (TF-A puts everything Non-secure in Group 1) bit 0 of the Non-secure views of
//! both registers is EnableGrp1. Writing 1 enables what we may use in either case.

use super::super::mmio;
use super::{GicError, KICK_PRIORITY, SGI_KICK};
use crate::hw::gicv2::{
    CpuInterface, Distributor, GICC_IAR, GICD_TYPER, MAX_CPU_INTERFACES, Sgir, VirtualInterfaceControl,
    cpu_interface_from_itargetsr, with_itargetsr_byte,
};
use crate::hw::gicv3::{INTID_SPECIAL_FIRST, INTID_SPURIOUS, SPI_FIRST};
use crate::platform::Platform;
use crate::platform::gicv2::{self, Interface};
use core::arch::asm;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Once;
use tock_registers::interfaces::{Readable, Writeable};

struct Gic {
    distributor: mmio::Mmio<Distributor>,
    cpu: mmio::Mmio<CpuInterface>,
    hyp: mmio::Mmio<VirtualInterfaceControl>,
    /// The virtual CPU interface's 8 KiB, resolved (aliasing, short DT regions).
    gicv: u64,
}

/// Written once by the primary before any secondary starts; read-only afterwards.
static GIC: Once<Gic> = Once::new();

/// Each pCPU's CPU interface, learned from its banked GICD_ITARGETSR0 when it starts: the
/// MPIDR affinity in bits 63:8 and the interface's one-bit mask in bits 7:0 (0: unused
/// slot). Filled in order by `init_cpu` (Release), read by `send_sgi` (Acquire).
static INTERFACES: [AtomicU64; MAX_CPU_INTERFACES] = [const { AtomicU64::new(0) }; MAX_CPU_INTERFACES];
static INTERFACES_USED: AtomicUsize = AtomicUsize::new(0);

/// A 32-bit read of physical address `addr`, for [`gicv2::resolve`] to look at IIDRs.
fn read32(addr: u64) -> u32 {
    // SAFETY: `resolve` reads only inside `probe_window` of a CPU-interface region from the
    // DTB, which the EL2 map covers as device memory (`mm::layout` maps the same window).
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Primary only, once: checks the tree's GICv2 can host guests (discovery has refused a tree
/// with more CPUs than its 8 interfaces), resolves its CPU interfaces
/// and sets up the distributor: every SPI disabled, not pending, not active; the distributor
/// on.
pub fn init_distributor(p: &Platform<'_>) -> Result<(), GicError> {
    let virt = p.gic.gicv2_virtualization().map_err(GicError::NoVirtualization)?;
    let gicc = p.gic.cpu_interface.ok_or(GicError::NoVirtualization(gicv2::NoVirtualization::Missing(
        "CPU interface region (GICC, reg entry 1)",
    )))?;
    let gicc = gicv2::resolve(Interface::Gicc, gicc, read32).map_err(GicError::CpuInterface)?;
    let gicv = gicv2::resolve(Interface::Gicv, virt.vcpu_interface, read32).map_err(GicError::CpuInterface)?;
    // SAFETY: all three regions come from the DTB (GICC resolved inside it) and are mapped
    // as device memory; GICC may be the 4 KiB page without GICC_DIR, which is never used.
    let (distributor, cpu, hyp) = unsafe {
        (
            mmio::block::<Distributor>(p.gic.distributor),
            mmio::block_prefix::<CpuInterface>(gicc),
            mmio::block::<VirtualInterfaceControl>(virt.hyp_interface),
        )
    };
    let d = &distributor;
    d.ctlr.set(0);
    let lines = (d.typer.read(GICD_TYPER::IT_LINES_NUMBER) as usize + 1).min(32);
    for i in 1..lines {
        d.icenabler[i].set(u32::MAX);
        d.icpendr[i].set(u32::MAX);
        d.icactiver[i].set(u32::MAX);
    }
    d.ctlr.set(1);
    GIC.call_once(|| Gic { distributor, cpu, hyp, gicv: gicv.base });
    Ok(())
}

/// INTIDs the distributor implements (GICD_TYPER.ITLinesNumber), for the boot log.
pub fn intid_count() -> u32 {
    GIC.get().map_or(0, |g| 32 * (g.distributor.typer.read(GICD_TYPER::IT_LINES_NUMBER) + 1).min(32))
}

fn set_priority(d: &Distributor, intid: u32) {
    let reg = &d.ipriorityr[(intid / 4) as usize];
    let shift = (intid % 4) * 8;
    reg.set((reg.get() & !(0xff << shift)) | (KICK_PRIORITY << shift));
}

/// Every pCPU, once: learns its CPU interface number, enables the kick SGI and the PPIs in
/// `ppis` (all banked per CPU), and turns its CPU interface on: every priority unmasked,
/// EOImode 0 (GICC_EOIR drops the priority and deactivates).
pub fn init_cpu(mpidr: u64, ppis: &[u32]) -> Result<(), GicError> {
    let gic = GIC.get().expect("init_distributor runs before init_cpu");
    let d = &gic.distributor;
    // A uniprocessor GIC reads ITARGETSR0-7 as zero; its one interface is interface 0.
    let interface = cpu_interface_from_itargetsr(d.itargetsr[0].get()).unwrap_or(0);
    let slot = INTERFACES_USED.fetch_add(1, Ordering::AcqRel);
    if slot >= MAX_CPU_INTERFACES {
        return Err(GicError::TooManyCpus(slot + 1));
    }
    let affinity = mpidr & crate::platform::MPIDR_AFFINITY_MASK;
    INTERFACES[slot].store((affinity << 8) | (1 << interface), Ordering::Release);

    d.icenabler[0].set(u32::MAX);
    d.icpendr[0].set(u32::MAX);
    d.icactiver[0].set(u32::MAX);
    let mut enable = 0u32;
    for intid in core::iter::once(SGI_KICK).chain(ppis.iter().copied().filter(|&i| (16..32).contains(&i))) {
        set_priority(d, intid);
        enable |= 1 << intid;
    }
    d.isenabler[0].set(enable);
    let c = &gic.cpu;
    c.pmr.set(0xff);
    c.bpr.set(0);
    c.ctlr.set(1);
    Ok(())
}

/// The one-bit ITARGETSR mask of the pCPU with affinity `mpidr`, once it has started.
fn interface_mask(mpidr: u64) -> Option<u8> {
    let affinity = mpidr & crate::platform::MPIDR_AFFINITY_MASK;
    let used = INTERFACES_USED.load(Ordering::Acquire).min(MAX_CPU_INTERFACES);
    INTERFACES[..used]
        .iter()
        .map(|e| e.load(Ordering::Acquire))
        .find(|&e| e != 0 && e >> 8 == affinity)
        .map(|e| e as u8)
}

/// Enables SPI `intid`, targeted at the pCPU with affinity `mpidr` (the console's receive
/// interrupt).
pub fn enable_spi(intid: u32, mpidr: u64) {
    let (Some(gic), Some(mask)) = (GIC.get(), interface_mask(mpidr)) else { return };
    if !(SPI_FIRST..INTID_SPECIAL_FIRST).contains(&intid) {
        return;
    }
    let d = &gic.distributor;
    set_priority(d, intid);
    let t = &d.itargetsr[(intid / 4) as usize];
    t.set(with_itargetsr_byte(t.get(), intid, mask));
    d.isenabler[(intid / 32) as usize].set(1 << (intid % 32));
}

/// Sends SGI `intid` to the pCPU with affinity `mpidr` (GICD_SGIR with its CPU interface in
/// the target list). A pCPU that has not started has no known interface and gets nothing.
pub fn send_sgi(intid: u32, mpidr: u64) {
    let (Some(gic), Some(mask)) = (GIC.get(), interface_mask(mpidr)) else { return };
    // SAFETY: a barrier only: the message the target will read is visible before the SGI.
    unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) };
    gic.distributor.sgir.set(Sgir::to(intid, mask).encode());
}

/// Acknowledges the highest-priority pending interrupt (GICC_IAR; an SGI's value names its
/// sender, and the EOI must write it back whole).
pub fn ack() -> crate::arch::Acked {
    let Some(gic) = GIC.get() else { return crate::arch::Acked { intid: INTID_SPURIOUS, iar: INTID_SPURIOUS } };
    let iar = gic.cpu.iar.get();
    crate::arch::Acked { intid: GICC_IAR::INTERRUPT_ID.read(iar), iar }
}

/// Sets (`true`) or clears the active state of this pCPU's private interrupt `intid`
/// (GICD_ISACTIVER0 / GICD_ICACTIVER0, banked per CPU interface).
pub fn set_private_active(intid: u32, active: bool) {
    let Some(gic) = GIC.get() else { return };
    if intid >= 32 {
        return;
    }
    let d = &gic.distributor;
    if active { d.isactiver[0].set(1 << intid) } else { d.icactiver[0].set(1 << intid) }
}

pub fn eoi(iar: u32) {
    if let Some(gic) = GIC.get() {
        gic.cpu.eoir.set(iar);
    }
}

pub fn guest_cpu_interface() -> Option<u64> {
    GIC.get().map(|g| g.gicv)
}

pub fn hyp_interface() -> Option<&'static VirtualInterfaceControl> {
    GIC.get().map(|g| &*g.hyp)
}

const _: () = assert!(SGI_KICK < 16);
