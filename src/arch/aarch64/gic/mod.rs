//! The physical GIC, chosen at boot from the device tree: a GICv3 ([`v3`]: affinity
//! routing, the system-register CPU interface) or a GICv2 ([`v2`]: ITARGETSR routing, the
//! memory-mapped CPU interface, GICD_SGIR). One binary drives both; each call below goes to
//! the version [`init_distributor`] found.

mod v2;
mod v3;

use crate::hw::gic::Version;
use crate::platform::{GicVersion, Platform};
use core::arch::asm;
use spin::Once;

/// SGI the hypervisor reserves for kicking another pCPU (GIC SGIs 0-15; guests only see
/// virtual SGIs, so any physical one is ours).
pub const SGI_KICK: u32 = 8;
/// Priority of the kick: higher (numerically lower) than anything a guest gets later.
const KICK_PRIORITY: u32 = 0x80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicError {
    /// The distributor's PIDR2 does not say GICv3 or GICv4.
    BadArchRev(u32),
    /// No redistributor frame has this pCPU's affinity.
    NoRedistributor(u64),
    /// GICR_WAKER.ChildrenAsleep did not clear.
    WakeTimeout,
    /// The device tree lists more CPUs than a GICv2 has CPU interfaces.
    TooManyCpus(usize),
    /// The GICv2 cannot host guests: the tree leaves out its virtualization regions or
    /// maintenance interrupt.
    NoVirtualization(crate::platform::gicv2::NoVirtualization),
    /// A GICv2 CPU interface region that is not one.
    CpuInterface(crate::platform::gicv2::ResolveError),
}

impl core::fmt::Display for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadArchRev(r) => write!(f, "GICD_PIDR2 reports architecture revision {r}, not GICv3/v4"),
            Self::NoRedistributor(m) => write!(f, "no GICv3 redistributor for MPIDR {m:#x}"),
            Self::WakeTimeout => write!(f, "GICv3 redistributor did not wake up"),
            Self::TooManyCpus(n) => write!(f, "a GICv2 serves at most 8 CPUs; the device tree lists {n}"),
            Self::NoVirtualization(e) => write!(f, "{e}"),
            Self::CpuInterface(e) => write!(f, "{e}"),
        }
    }
}

/// Written once by the primary before any secondary starts.
static VERSION: Once<Version> = Once::new();

/// The board's GIC version (GICv3 until the distributor is set up).
pub fn version() -> Version {
    VERSION.get().copied().unwrap_or_default()
}

/// Primary only, once: checks the GIC the tree describes and sets up its distributor.
pub fn init_distributor(p: &Platform<'_>) -> Result<(), GicError> {
    let version = match p.gic.version {
        GicVersion::V3 => {
            v3::init_distributor(p)?;
            Version::V3
        }
        GicVersion::V2 => {
            v2::init_distributor(p)?;
            Version::V2
        }
    };
    VERSION.call_once(|| version);
    Ok(())
}

/// INTIDs the distributor implements (GICD_TYPER.ITLinesNumber), for the boot log.
pub fn intid_count() -> u32 {
    match version() {
        Version::V3 => v3::intid_count(),
        Version::V2 => v2::intid_count(),
    }
}

/// Every pCPU, once: its part of the GIC (a GICv3 redistributor, a GICv2's banked
/// registers), the kick SGI and the PPIs in `ppis`, and the CPU interface.
pub fn init_cpu(mpidr: u64, ppis: &[u32]) -> Result<(), GicError> {
    match version() {
        Version::V3 => v3::init_cpu(mpidr, ppis),
        Version::V2 => v2::init_cpu(mpidr, ppis),
    }
}

/// Enables SPI `intid` for the hypervisor, routed to the pCPU with affinity `mpidr`.
pub fn enable_spi(intid: u32, mpidr: u64) {
    match version() {
        Version::V3 => v3::enable_spi(intid, mpidr),
        Version::V2 => v2::enable_spi(intid, mpidr),
    }
}

/// Sends SGI `intid` to the pCPU with affinity `mpidr`, after a `dsb`, so what the caller
/// stored first is visible to the target's handler.
pub fn send_sgi(intid: u32, mpidr: u64) {
    match version() {
        Version::V3 => v3::send_sgi(intid, mpidr),
        Version::V2 => v2::send_sgi(intid, mpidr),
    }
}

/// Sends the kick SGI to the pCPU with affinity `mpidr`.
pub fn send_kick(mpidr: u64) {
    send_sgi(SGI_KICK, mpidr);
}

/// Acknowledges the highest-priority pending interrupt.
pub fn irq_ack() -> crate::arch::Acked {
    match version() {
        Version::V3 => {
            let intid = v3::ack();
            crate::arch::Acked { intid, iar: intid }
        }
        Version::V2 => v2::ack(),
    }
}

/// Ends an acknowledged interrupt (priority drop and deactivation).
pub fn irq_eoi(acked: crate::arch::Acked) {
    match version() {
        Version::V3 => v3::eoi(acked.iar),
        Version::V2 => v2::eoi(acked.iar),
    }
}

/// Ends an acknowledged private interrupt whose physical state now belongs to the guest
/// (a timer PPI, forwarded through a list register with HW = 1): priority drop and
/// deactivation as [`irq_eoi`], then active again, so its level cannot interrupt the
/// hypervisor until the guest's deactivation of the virtual interrupt deactivates it (with
/// EOImode 0 kept for everything else; an active and pending interrupt is not signalled,
/// IHI 0069 4.1.1, IHI 0048B 1.4.2).
pub fn irq_eoi_to_guest(acked: crate::arch::Acked) {
    irq_eoi(acked);
    set_private_active(acked.intid, true);
}

/// Sets or clears the active state of this pCPU's private interrupt `intid`: the physical
/// side of a timer PPI tied to a virtual one, as the vCPU that owns it is loaded or the
/// virtual one goes idle.
pub fn set_private_active(intid: u32, active: bool) {
    match version() {
        Version::V3 => v3::set_private_active(intid, active),
        Version::V2 => v2::set_private_active(intid, active),
    }
}

/// Whether a physical IRQ is pending for this pCPU (ISR_EL1.I read at EL2, whichever GIC
/// drives the line). Cheaper than an acknowledge that finds nothing: under QEMU's TCG every
/// GIC access takes the emulator's global lock, ISR_EL1 does not.
pub fn irq_pending() -> bool {
    let isr: u64;
    // SAFETY: reading ISR_EL1 has no side effect.
    unsafe { asm!("mrs {}, isr_el1", out(reg) isr, options(nostack, preserves_flags)) };
    isr & (1 << 7) != 0
}

/// On a GICv2, the physical address of the 8 KiB virtual CPU interface stage 2 maps at a
/// guest's GICC.
pub fn guest_cpu_interface() -> Option<u64> {
    match version() {
        Version::V3 => None,
        Version::V2 => v2::guest_cpu_interface(),
    }
}

/// GICv2 only: this pCPU's virtual interface control registers (GICH), for the vGIC.
pub(super) fn hyp_interface() -> Option<&'static crate::hw::gicv2::VirtualInterfaceControl> {
    v2::hyp_interface()
}
