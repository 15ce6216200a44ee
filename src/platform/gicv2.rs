//! The GICv2's CPU-interface regions as the hardware has them, which is not always as the
//! device tree says, and what a vGICv2 needs from the tree.
//!
//! A GICv2 CPU interface (GICC) and virtual CPU interface (GICV) are 8 KiB each: GICC_DIR is
//! at 0x1000 (IHI 0048B 4.1.3). Device trees get this wrong in two known ways, both of which
//! Linux (drivers/irqchip/irq-gic.c, gic_check_eoimode) and Xen (xen/arch/arm/gic-v2.c,
//! gicv2_is_aliased and gicv2_dt_init) work around:
//!
//! - a GIC-400 wired with each 4 KiB page repeated over 64 KiB, listed as 128 KiB (the Zynq
//!   UltraScale+): the 8 KiB is contiguous only 0xf000 in, where the first page's last copy
//!   meets the second page's first;
//! - a 4 KiB region, the GICv1 size, for a GIC-400's 8 KiB interface.
//!
//! [`resolve`] decides which, reading GICC_IIDR (GICV_IIDR) through a caller's `read32`, so
//! that the decision is portable and tested here; the caller maps [`probe_window`] first.
#![forbid(unsafe_code)]

use super::{Gic, GicVersion, Region};
use crate::hw::gicv2::{
    ALIASED_OFFSET, ALIASED_REGION_SIZE, CpuInterface, GIC400_GICC_IIDR, GICC_PAGE_SIZE, GICC_SIZE, iidr_is_gicv2,
};
use core::fmt;
use core::mem::offset_of;

/// GICC_IIDR's (and GICV_IIDR's) offset in a CPU interface's first page.
const IIDR: u64 = offset_of!(CpuInterface, iidr) as u64;

/// Which of the two CPU-interface regions of a GICv2 is being resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// GICC, the hypervisor's own CPU interface (`reg` entry 1).
    Gicc,
    /// GICV, the virtual CPU interface a guest is given as its GICC (`reg` entry 3).
    Gicv,
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gicc => "GICC (CPU interface)",
            Self::Gicv => "GICV (virtual CPU interface)",
        })
    }
}

/// Why [`resolve`] found no usable CPU interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveError {
    /// The region is not 4 KiB-aligned, or smaller than 4 KiB: not something a CPU interface
    /// can be mapped from.
    BadRegion { interface: Interface, region: Region },
    /// The region is under 8 KiB, and the IIDR at `at` does not name an Arm GICv2: nothing
    /// says what the region's layout is, or where the rest of it is.
    NotGicv2 { interface: Interface, region: Region, at: u64, iidr: u32 },
    /// A 4 KiB GICV whose second page reads like its first (so its pages repeat, as in a
    /// GIC-400 aliased every 64 KiB), but the IIDR at `at`, 0xf000 in, does not name a GICv2.
    BadAlias { interface: Interface, region: Region, at: u64, iidr: u32 },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadRegion { interface, region } => {
                write!(f, "the device tree's {interface} region {region:?} is not 4 KiB-aligned and at least 4 KiB")
            }
            Self::NotGicv2 { interface, region, at, iidr } => write!(
                f,
                "the device tree's {interface} region {region:?} is smaller than a GICv2's 8 KiB, and the IIDR at \
                 {at:#x} reads {iidr:#010x}, not an Arm GICv2's (the GIC-400's is {GIC400_GICC_IIDR:#010x}): \
                 refusing to guess its layout"
            ),
            Self::BadAlias { interface, region, at, iidr } => write!(
                f,
                "the device tree's {interface} region {region:?} is 4 KiB and its second page repeats the first (a \
                 GIC-400 aliased every 64 KiB?), but the IIDR at {at:#x} reads {iidr:#010x}: no contiguous 8 KiB \
                 interface found"
            ),
        }
    }
}

/// The CPU interface to use, given the device tree's `region` for it and `read32`, a 32-bit
/// read of a physical address inside [`probe_window`]. The result is 8 KiB, the architected
/// size, except for a GICC under 8 KiB (below).
///
/// - 128 KiB whose IIDR reads as the same Arm GICv2 at the start and 0xf000 in: a GIC-400
///   aliased every 64 KiB, and the 8 KiB 0xf000 in, where GICC_DIR follows the first page
///   (Linux and Xen do the same). If the two differ the region is taken as it is.
/// - Any other size of 8 KiB or more: its first 8 KiB, without a read. (QEMU virt gives
///   64 KiB.)
/// - Under 8 KiB (a GICv1-sized 4 KiB in the tree): the IIDR at the start must name an Arm
///   GICv2 ([`iidr_is_gicv2`]), or this is [`ResolveError::NotGicv2`]. Then
///   - for the GICC, the 4 KiB page as given: it holds every register but GICC_DIR, and the
///     hypervisor runs its CPU interface in EOImode 0 (GICC_EOIR drops priority and
///     deactivates), so it never writes GICC_DIR and needs nothing the tree does not list;
///   - for the GICV, 8 KiB: a guest is given it as its GICC and may use GICV_DIR, so half
///     an interface will not do. A GICv2 virtual CPU interface is 8 KiB by architecture
///     (IHI 0048B chapter 5, the virtual CPU interface register map; the GIC-400 puts it at
///     0x6000-0x7fff, DDI 0471), and an IIDR that says GICv2 says the second page exists; the
///     tree understated it. Where it is is read as Linux does with
///     `irqchip.gicv2_force_probe`: if the IIDR offset of the second page does not read as
///     a GICv2 IIDR (the DIR page has nothing there), the 8 KiB from the start; if it does,
///     the pages repeat, so this is the 64 KiB aliasing and the 8 KiB is 0xf000 in, after
///     checking the IIDR there ([`ResolveError::BadAlias`] if it fails).
pub fn resolve(
    interface: Interface,
    region: Region,
    mut read32: impl FnMut(u64) -> u32,
) -> Result<Region, ResolveError> {
    let window = probe_window(interface, region);
    if !region.base.is_multiple_of(GICC_PAGE_SIZE)
        || region.size < GICC_PAGE_SIZE
        || window.base.checked_add(window.size).is_none()
    {
        return Err(ResolveError::BadRegion { interface, region });
    }
    let base = region.base;
    let interface_at = |base| Region { base, size: GICC_SIZE };
    if region.size == ALIASED_REGION_SIZE {
        let (low, high) = (read32(base + IIDR), read32(base + ALIASED_OFFSET + IIDR));
        let aliased = iidr_is_gicv2(low) && low == high;
        return Ok(interface_at(if aliased { base + ALIASED_OFFSET } else { base }));
    }
    if region.size >= GICC_SIZE {
        return Ok(interface_at(base));
    }
    let first = read32(base + IIDR);
    if !iidr_is_gicv2(first) {
        return Err(ResolveError::NotGicv2 { interface, region, at: base + IIDR, iidr: first });
    }
    match interface {
        Interface::Gicc => Ok(Region { base, size: GICC_PAGE_SIZE }),
        Interface::Gicv => {
            if !iidr_is_gicv2(read32(base + GICC_PAGE_SIZE + IIDR)) {
                return Ok(interface_at(base));
            }
            let at = base + ALIASED_OFFSET + IIDR;
            let high = read32(at);
            if !iidr_is_gicv2(high) {
                return Err(ResolveError::BadAlias { interface, region, at, iidr: high });
            }
            Ok(interface_at(base + ALIASED_OFFSET))
        }
    }
}

/// The span [`resolve`] may read in and return a region from, for the caller to map (as
/// device memory) before calling it: the tree's region, except for a GICV under 8 KiB, where
/// it is the 68 KiB from the start that the 64 KiB-aliased case reaches (its 8 KiB at 0xf000).
pub fn probe_window(interface: Interface, region: Region) -> Region {
    match interface {
        Interface::Gicv if region.size < GICC_SIZE => Region { base: region.base, size: ALIASED_OFFSET + GICC_SIZE },
        _ => region,
    }
}

/// What a vGICv2 needs from the device tree, all of it present: [`Gic::gicv2_virtualization`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Virtualization {
    /// GICH, the hypervisor's list registers and controls.
    pub hyp_interface: Region,
    /// GICV as the tree gives it; [`resolve`] it with [`Interface::Gicv`] before use.
    pub vcpu_interface: Region,
    /// The maintenance interrupt (a PPI, 25 on QEMU virt and the GIC-400).
    pub maintenance_intid: u32,
}

/// The GIC cannot host guests: what it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoVirtualization {
    /// It is not a GICv2.
    NotV2,
    /// The tree's GICv2 node does not give this: the virtualization extensions' GICH or GICV
    /// (`reg` entries 2 and 3) or the maintenance interrupt (`interrupts`).
    Missing(&'static str),
}

impl fmt::Display for NoVirtualization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotV2 => write!(f, "the interrupt controller is not a GICv2"),
            Self::Missing(what) => write!(
                f,
                "the device tree's GICv2 node has no {what}: without the virtualization extensions' regions \
                 and maintenance interrupt it cannot host guests"
            ),
        }
    }
}

impl Gic {
    /// The GICv2's virtualization regions and maintenance interrupt, for the vGICv2; an error
    /// naming the first one the tree leaves out. Discovery accepts a GICv2 without them (the
    /// binding makes them optional, and the host needs only GICD and GICC); this is where
    /// their absence becomes an error, at the first use that needs them.
    pub fn gicv2_virtualization(&self) -> Result<Virtualization, NoVirtualization> {
        if self.version != GicVersion::V2 {
            return Err(NoVirtualization::NotV2);
        }
        let missing = NoVirtualization::Missing;
        Ok(Virtualization {
            hyp_interface: self.hyp_interface.ok_or(missing("virtual interface control region (GICH, reg entry 2)"))?,
            vcpu_interface: self.vcpu_interface.ok_or(missing("virtual CPU interface region (GICV, reg entry 3)"))?,
            maintenance_intid: self.maintenance_intid.ok_or(missing("maintenance interrupt ('interrupts')"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// A bus of IIDR values by address: unlisted addresses read 0 (RAZ). Records every read.
    struct Bus {
        values: BTreeMap<u64, u32>,
        reads: RefCell<Vec<u64>>,
    }

    impl Bus {
        fn new(values: &[(u64, u32)]) -> Self {
            Self { values: values.iter().copied().collect(), reads: RefCell::new(Vec::new()) }
        }
        fn read32(&self) -> impl FnMut(u64) -> u32 + '_ {
            |addr| {
                self.reads.borrow_mut().push(addr);
                self.values.get(&addr).copied().unwrap_or(0)
            }
        }
        fn reads(&self) -> Vec<u64> {
            self.reads.borrow().clone()
        }
    }

    const KIB: u64 = 1024;
    fn r(base: u64, size: u64) -> Region {
        Region { base, size }
    }

    #[test]
    fn zynqmp_aliased_gic400_moves_up_60k() {
        // Zynq UltraScale+: GICC 0xf9020000 and GICV 0xf9060000, 128 KiB each, every 4 KiB
        // page repeated over 64 KiB, so the IIDR reads the same at 0xfc and 0xf0fc.
        for (interface, base) in [(Interface::Gicc, 0xf902_0000), (Interface::Gicv, 0xf906_0000)] {
            let bus = Bus::new(&[(base + 0xfc, GIC400_GICC_IIDR), (base + 0xf0fc, GIC400_GICC_IIDR)]);
            let dt = r(base, 128 * KIB);
            assert_eq!(resolve(interface, dt, bus.read32()), Ok(r(base + 0xf000, 8 * KIB)), "{interface}");
            assert_eq!(bus.reads(), [base + 0xfc, base + 0xf0fc]);
            let window = probe_window(interface, dt);
            assert!(window.range().contains_range(&r(base + 0xf000, 8 * KIB).range()));
            assert!(bus.reads().iter().all(|&a| window.range().contains(a)));
        }
    }

    #[test]
    fn a_128k_region_that_is_not_aliased_is_taken_as_given() {
        let base = 0x2c00_0000;
        // Nothing at 0xf0fc, or something else there: not the aliasing.
        for high in [0, 0x0202_243b] {
            let bus = Bus::new(&[(base + 0xfc, GIC400_GICC_IIDR), (base + 0xf0fc, high)]);
            assert_eq!(resolve(Interface::Gicc, r(base, 128 * KIB), bus.read32()), Ok(r(base, 8 * KIB)));
        }
        // Not a GICv2 IIDR at either end.
        let bus = Bus::new(&[(base + 0xfc, 0x1234), (base + 0xf0fc, 0x1234)]);
        assert_eq!(resolve(Interface::Gicv, r(base, 128 * KIB), bus.read32()), Ok(r(base, 8 * KIB)));
    }

    #[test]
    fn qemu_virt_and_plain_8k_regions_are_used_without_a_read() {
        // QEMU virt: GICC 0x08010000 and GICV 0x08040000, 64 KiB each; a board with 8 KiB.
        for (interface, dt) in [
            (Interface::Gicc, r(0x0801_0000, 64 * KIB)),
            (Interface::Gicv, r(0x0804_0000, 64 * KIB)),
            (Interface::Gicc, r(0xff84_2000, 8 * KIB)),
            (Interface::Gicv, r(0xff84_6000, 8 * KIB)),
        ] {
            let bus = Bus::new(&[]);
            assert_eq!(resolve(interface, dt, bus.read32()), Ok(r(dt.base, 8 * KIB)), "{interface} {dt:?}");
            assert!(bus.reads().is_empty());
            assert_eq!(probe_window(interface, dt), dt);
        }
    }

    #[test]
    fn a_4k_gicc_is_its_first_page() {
        let base = 0xff84_2000;
        let bus = Bus::new(&[(base + 0xfc, GIC400_GICC_IIDR)]);
        assert_eq!(resolve(Interface::Gicc, r(base, 4 * KIB), bus.read32()), Ok(r(base, 4 * KIB)));
        assert_eq!(bus.reads(), [base + 0xfc], "nothing outside the tree's page is read");
        assert_eq!(probe_window(Interface::Gicc, r(base, 4 * KIB)), r(base, 4 * KIB));
    }

    #[test]
    fn a_4k_gicv_is_8k_from_its_start() {
        // A GIC-400 with its GICV at 0x6000-0x7fff listed as 4 KiB: the DIR page has nothing
        // at 0xfc.
        let base = 0xff84_6000;
        let bus = Bus::new(&[(base + 0xfc, GIC400_GICC_IIDR)]);
        let dt = r(base, 4 * KIB);
        assert_eq!(resolve(Interface::Gicv, dt, bus.read32()), Ok(r(base, 8 * KIB)));
        assert_eq!(bus.reads(), [base + 0xfc, base + 0x10fc]);
        assert!(bus.reads().iter().all(|&a| probe_window(Interface::Gicv, dt).range().contains(a)));
    }

    #[test]
    fn a_4k_gicv_whose_pages_repeat_is_the_64k_aliasing() {
        let base = 0xf906_0000;
        let gic400 = GIC400_GICC_IIDR;
        let bus = Bus::new(&[(base + 0xfc, gic400), (base + 0x10fc, gic400), (base + 0xf0fc, gic400)]);
        let dt = r(base, 4 * KIB);
        assert_eq!(resolve(Interface::Gicv, dt, bus.read32()), Ok(r(base + 0xf000, 8 * KIB)));
        let window = probe_window(Interface::Gicv, dt);
        assert!(window.range().contains_range(&r(base + 0xf000, 8 * KIB).range()));
        assert!(bus.reads().iter().all(|&a| window.range().contains(a)));
        // Repeating at 4 KiB but not at 0xf000: refused, naming where.
        let bus = Bus::new(&[(base + 0xfc, gic400), (base + 0x10fc, gic400)]);
        let err = resolve(Interface::Gicv, dt, bus.read32()).unwrap_err();
        assert_eq!(err, ResolveError::BadAlias { interface: Interface::Gicv, region: dt, at: base + 0xf0fc, iidr: 0 });
        assert!(err.to_string().contains("0xf906f0fc"), "{err}");
    }

    #[test]
    fn a_small_region_without_a_gic400_iidr_is_refused() {
        let base = 0x1e00_1000;
        // A GICv1 (architecture version 1) and another implementer's IIDR.
        for iidr in [0x0201_143b, 0x0002_0070] {
            for interface in [Interface::Gicc, Interface::Gicv] {
                let bus = Bus::new(&[(base + 0xfc, iidr)]);
                let dt = r(base, 4 * KIB);
                let err = resolve(interface, dt, bus.read32()).unwrap_err();
                assert_eq!(err, ResolveError::NotGicv2 { interface, region: dt, at: base + 0xfc, iidr });
                assert_eq!(bus.reads(), [base + 0xfc], "nothing past the first read");
                let text = err.to_string();
                assert!(text.contains(&format!("{iidr:#010x}")) && text.contains("not an Arm GICv2"), "{text}");
            }
        }
    }

    #[test]
    fn unmappable_regions_are_refused() {
        let top = u64::MAX - 4 * KIB + 1;
        for (interface, dt) in [
            (Interface::Gicc, r(0x1000_0800, 8 * KIB)),
            (Interface::Gicc, r(0x1000_0000, 0x800)),
            (Interface::Gicv, r(0x1000_0000, 0)),
            // The 4 KiB GICV's probe would run past the end of the address space.
            (Interface::Gicv, r(top, 4 * KIB - 1)),
            (Interface::Gicv, r(top - 4 * KIB, 4 * KIB)),
        ] {
            let bus = Bus::new(&[]);
            let err = resolve(interface, dt, bus.read32()).unwrap_err();
            assert_eq!(err, ResolveError::BadRegion { interface, region: dt });
            assert!(bus.reads().is_empty());
        }
    }

    #[test]
    fn virtualization_needs_gich_gicv_and_the_maintenance_interrupt() {
        let full = Gic {
            version: GicVersion::V2,
            distributor: r(0x0800_0000, 64 * KIB),
            cpu_interface: Some(r(0x0801_0000, 64 * KIB)),
            hyp_interface: Some(r(0x0803_0000, 64 * KIB)),
            vcpu_interface: Some(r(0x0804_0000, 64 * KIB)),
            maintenance_intid: Some(25),
            ..Default::default()
        };
        assert_eq!(
            full.gicv2_virtualization(),
            Ok(Virtualization {
                hyp_interface: r(0x0803_0000, 64 * KIB),
                vcpu_interface: r(0x0804_0000, 64 * KIB),
                maintenance_intid: 25
            })
        );
        let no_gich = Gic { hyp_interface: None, ..full };
        let err = no_gich.gicv2_virtualization().unwrap_err();
        assert!(err.to_string().contains("GICH, reg entry 2") && err.to_string().contains("cannot host guests"));
        let no_gicv = Gic { vcpu_interface: None, ..full };
        assert!(no_gicv.gicv2_virtualization().unwrap_err().to_string().contains("GICV, reg entry 3"));
        let no_irq = Gic { maintenance_intid: None, ..full };
        assert!(no_irq.gicv2_virtualization().unwrap_err().to_string().contains("maintenance interrupt"));
        let v3 = Gic { version: GicVersion::V3, ..full };
        assert_eq!(v3.gicv2_virtualization(), Err(NoVirtualization::NotV2));
    }
}
