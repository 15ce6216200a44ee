//! The physical GICv3: distributor and redistributor set-up, the EL2 view of the CPU
//! interface, and SGIs between pCPUs (GIC architecture spec IHI 0069, chapters 12 and 13).

use super::super::{cpu, mmio};
use super::{GicError, KICK_PRIORITY, SGI_KICK};
use crate::hw::gicv3::{
    Distributor, GICD_CTLR, GICD_TYPER, GICR_SIZE, GICR_SIZE_VLPIS, GICR_TYPER, GICR_WAKER, INTID_SPECIAL_FIRST, PIDR2,
    Redistributor, SPI_FIRST, Sgi1r, typer_affinity,
};
use crate::platform::{Platform, Region};
use core::arch::asm;
use spin::Once;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

struct Gic {
    distributor: mmio::Mmio<Distributor>,
    redistributors: crate::util::FixedVec<Region, { crate::platform::MAX_REDIST_REGIONS }>,
    stride: u64,
}

/// Written once by the primary before any secondary starts; read-only afterwards.
static GIC: Once<Gic> = Once::new();

/// Each pCPU's redistributor (RD_base), by pCPU index: stored by `init_cpu` on that pCPU,
/// read only by it (its own PPIs' active state).
static REDISTRIBUTORS: [core::sync::atomic::AtomicUsize; crate::platform::MAX_CPUS] =
    [const { core::sync::atomic::AtomicUsize::new(0) }; crate::platform::MAX_CPUS];

fn wait_rwp(d: &Distributor) {
    let deadline = cpu::counter() + cpu::ticks_from_us(100_000);
    while d.ctlr.is_set(GICD_CTLR::RWP) && cpu::counter() < deadline {}
}

/// Primary only, once: checks the GIC and enables affinity routing and Group 1.
pub fn init_distributor(p: &Platform<'_>) -> Result<(), GicError> {
    // SAFETY: the distributor region comes from the DTB and is mapped as device memory.
    let d: mmio::Mmio<Distributor> = unsafe { mmio::block(p.gic.distributor) };
    // GICv3 or GICv4: the revisions PIDR2::ARCH_REV names.
    let pidr2 = d.pidr2.extract();
    if pidr2.read_as_enum::<PIDR2::ARCH_REV::Value>(PIDR2::ARCH_REV).is_none() {
        return Err(GicError::BadArchRev(pidr2.read(PIDR2::ARCH_REV)));
    }
    // All SPIs off until a VM routes them (SPIs start at INTID 32: register 1 onwards).
    let lines = (d.typer.read(GICD_TYPER::IT_LINES_NUMBER) as usize + 1).min(32);
    for i in 1..lines {
        d.icenabler[i].set(u32::MAX);
        d.icpendr[i].set(u32::MAX);
        d.igroupr[i].set(u32::MAX);
    }
    wait_rwp(&d);
    d.ctlr.modify(GICD_CTLR::ARE::SET + GICD_CTLR::ENABLE_GRP1::SET);
    wait_rwp(&d);
    GIC.call_once(|| Gic { distributor: d, redistributors: p.gic.redistributors, stride: p.gic.redistributor_stride });
    Ok(())
}

/// INTIDs the distributor implements (GICD_TYPER.ITLinesNumber), for the boot log.
pub fn intid_count() -> u32 {
    GIC.get().map_or(0, |g| 32 * (g.distributor.typer.read(GICD_TYPER::IT_LINES_NUMBER) + 1).min(32))
}

/// Enables SPI `intid` in Group 1, routed to the pCPU with affinity `mpidr` (the
/// hypervisor's own device interrupts: the console's receive interrupt).
pub fn enable_spi(intid: u32, mpidr: u64) {
    let Some(gic) = GIC.get() else { return };
    if !(SPI_FIRST..INTID_SPECIAL_FIRST).contains(&intid) {
        return;
    }
    let d = &gic.distributor;
    let (reg, bit) = ((intid / 32) as usize, 1u32 << (intid % 32));
    d.igroupr[reg].set(d.igroupr[reg].get() | bit);
    let prio = &d.ipriorityr[(intid / 4) as usize];
    let shift = (intid % 4) * 8;
    prio.set((prio.get() & !(0xff << shift)) | (KICK_PRIORITY << shift));
    d.irouter[(intid - SPI_FIRST) as usize].set(mpidr & crate::platform::MPIDR_AFFINITY_MASK);
    d.isenabler[reg].set(bit);
}

fn find_redistributor(gic: &Gic, mpidr: u64) -> Option<mmio::Mmio<Redistributor>> {
    let want = typer_affinity(mpidr);
    for region in gic.redistributors.iter() {
        let mut base = region.base;
        while base + GICR_SIZE <= region.base + region.size {
            // SAFETY: every frame inside a DTB redistributor region is mapped device memory.
            let r: mmio::Mmio<Redistributor> = unsafe { mmio::block(Region { base, size: GICR_SIZE }) };
            let typer = r.typer.extract();
            if typer.read(GICR_TYPER::AFFINITY) == want {
                return Some(r);
            }
            if typer.is_set(GICR_TYPER::LAST) {
                break;
            }
            base += match (gic.stride, typer.is_set(GICR_TYPER::VLPIS)) {
                (0, false) => GICR_SIZE,
                (0, true) => GICR_SIZE_VLPIS,
                (s, _) => s,
            };
        }
    }
    None
}

/// Every pCPU, once: wakes its redistributor, enables the kick SGI, the PPIs in `ppis`
/// (the virtual timer and the vGIC maintenance interrupt) and the CPU interface.
pub fn init_cpu(mpidr: u64, ppis: &[u32]) -> Result<(), GicError> {
    let gic = GIC.get().expect("init_distributor runs before init_cpu");
    let r = find_redistributor(gic, mpidr).ok_or(GicError::NoRedistributor(mpidr))?;
    r.waker.modify(GICR_WAKER::PROCESSOR_SLEEP::CLEAR);
    let deadline = cpu::counter() + cpu::ticks_from_us(100_000);
    while r.waker.is_set(GICR_WAKER::CHILDREN_ASLEEP) {
        if cpu::counter() > deadline {
            return Err(GicError::WakeTimeout);
        }
    }
    // SGIs and PPIs: all Group 1, all disabled except the kick.
    r.icenabler0.set(u32::MAX);
    r.icpendr0.set(u32::MAX);
    r.igroupr0.set(u32::MAX);
    r.igrpmodr0.set(0);
    let mut enable = 0u32;
    for intid in core::iter::once(SGI_KICK).chain(ppis.iter().copied().filter(|&i| (16..32).contains(&i))) {
        let reg = &r.ipriorityr[(intid / 4) as usize];
        let shift = (intid % 4) * 8;
        reg.set((reg.get() & !(0xff << shift)) | (KICK_PRIORITY << shift));
        enable |= 1 << intid;
    }
    r.isenabler0.set(enable);
    if let Some(slot) = cpu::cpu_index().and_then(|i| REDISTRIBUTORS.get(i)) {
        slot.store(r.base() as usize, core::sync::atomic::Ordering::Relaxed);
    }

    // CPU interface (ICC_*): system-register access at EL2 and for EL1 (SRE, DFB, DIB),
    // all priorities unmasked, EOI drops priority and deactivates, Group 1 on.
    // SAFETY: GICv3 CPU interface set-up for this pCPU, in the order IHI 0069 12.1 gives.
    unsafe {
        asm!(
            "msr icc_sre_el2, {sre}",
            "isb",
            "msr icc_pmr_el1, {pmr}",
            "msr icc_bpr1_el1, xzr",
            "msr icc_ctlr_el1, xzr",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            // SRE, DFB, DIB; Enable = 0: EL1's accesses to ICC_SRE_EL1 trap (as KVM has
            // them while a guest runs), so a guest reads what vm::dispatch answers.
            sre = in(reg) 0b0111u64,
            pmr = in(reg) 0xffu64,
            one = in(reg) 1u64,
            options(nostack)
        );
    }
    Ok(())
}

/// Sends SGI `intid` to the pCPU with affinity `mpidr` (ICC_SGI1R_EL1, IHI 0069 12.11.9).
pub fn send_sgi(intid: u32, mpidr: u64) {
    let value = Sgi1r::to(intid, mpidr).encode();
    // SAFETY: writing ICC_SGI1R_EL1 only raises an SGI; the dsb makes earlier stores (the
    // message the target will read) visible first.
    unsafe { asm!("dsb ishst", "msr icc_sgi1r_el1, {}", "isb", in(reg) value, options(nostack)) };
}

/// Acknowledges the highest-priority pending Group 1 interrupt.
pub fn ack() -> u32 {
    let intid: u64;
    // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt; the caller EOIs it.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) intid, options(nostack)) };
    intid as u32 & 0xff_ffff
}

/// Sets (`true`) or clears the active state of this pCPU's private interrupt `intid`
/// (GICR_ISACTIVER0 / GICR_ICACTIVER0 of its own redistributor).
pub fn set_private_active(intid: u32, active: bool) {
    let Some(base) =
        cpu::cpu_index().and_then(|i| REDISTRIBUTORS.get(i)).map(|b| b.load(core::sync::atomic::Ordering::Relaxed))
    else {
        return;
    };
    if base == 0 || intid >= 32 {
        return;
    }
    // SAFETY: `base` is this pCPU's redistributor, found in a DTB region mapped as device
    // memory by `init_cpu`; the block covers its RD_base and SGI_base frames.
    let r: mmio::Mmio<Redistributor> = unsafe { mmio::block(Region { base: base as u64, size: GICR_SIZE }) };
    if active { r.isactiver0.set(1 << intid) } else { r.icactiver0.set(1 << intid) }
}

pub fn eoi(intid: u32) {
    // SAFETY: ends the interrupt this pCPU acknowledged (priority drop and deactivation).
    unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) intid as u64, options(nostack)) };
}
