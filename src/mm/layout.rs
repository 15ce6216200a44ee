//! Where the hypervisor puts itself: which RAM is free, the region it reserves next to its
//! image (early page tables, pCPU stacks, heap, frame pool), and the plan of its own EL2
//! stage-1 map. Pure arithmetic over the [`Platform`], host-tested.
#![forbid(unsafe_code)]

use super::PAGE_SIZE;
use super::pagetable::s1;
use super::range::{Range, RangeSet};
use crate::platform::Platform;
use crate::util::FixedVec;
use core::fmt;

/// Stack of every pCPU but the primary (which keeps the boot stack inside the image).
pub const STACK_SIZE: u64 = 64 << 10;
/// The primary's boot stack, in the image's BSS (arch/aarch64/boot.S): device-tree discovery
/// builds its `Platform` (8.5 KiB, several copies in flight) here, and the self-test suites
/// run here; 64 KiB overflowed into its guard page once domains were added.
pub const BOOT_STACK_SIZE: u64 = 128 << 10;
/// A stack and the unmapped guard page below it.
pub const STACK_SLOT: u64 = STACK_SIZE + PAGE_SIZE;
/// Early page-table pool for the EL2 stage-1 map (QEMU virt with 4 GiB used 32 KiB: 1 GiB
/// and 2 MiB blocks).
pub const TABLE_POOL_SIZE: u64 = 512 << 10;
/// The heap (a Linux VM of 4 vCPUs, built, took 28 KiB of it).
pub const HEAP_SIZE: u64 = 2 << 20;
/// Frames for hypervisor-owned pages (each VM's UART register page) and stage-2 tables
/// beyond a VM's own (`arch::pool::TableArena`, taken from guest RAM in proportion to it).
pub const FRAME_POOL_SIZE: u64 = 2 << 20;
const BLOCK_2M: u64 = 2 << 20;

/// Ranges of free RAM we track; more fragments than this is reported, not truncated.
pub const MAX_FREE_RANGES: usize = 64;
/// Entries in the stage-1 plan.
pub const MAX_MAPPINGS: usize = 160;

/// The hypervisor image as linked (absolute addresses after relocation).
#[derive(Debug, Clone, Copy)]
pub struct Image {
    pub whole: Range,
    /// Code: mapped read-only and executable.
    pub text: Range,
    /// The page under the primary's boot stack (inside BSS), left unmapped.
    pub boot_stack_guard: Range,
}

#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub image: Image,
    /// RAM the hypervisor owns besides its image: `tables`, `stacks`, `heap`, `frames`.
    pub reserved: Range,
    pub tables: Range,
    /// `cpu_count - 1` slots of [`STACK_SLOT`]: guard page first, then the stack.
    pub stacks: Range,
    pub heap: Range,
    pub frames: Range,
    /// RAM left for guests: banks minus everything reserved, occupied or ours.
    pub free: RangeSet<MAX_FREE_RANGES>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// The image is not inside a memory bank, or overlaps a reserved region, the DTB or a module.
    ImageNotInFreeRam,
    /// No free, 2 MiB-aligned run of RAM large enough for the reserved region.
    NoRoom { needed: u64 },
    /// The memory map is too fragmented for the fixed-size bookkeeping.
    TooFragmented,
    /// A `/chosen` module is empty, outside RAM, or overlaps the DTB, the image, a
    /// reserved region or another module.
    BadModule { base: u64, problem: &'static str },
    /// A device the hypervisor drives (console, GIC) lies inside a `/memory` bank.
    DeviceInRam { device: Range },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ImageNotInFreeRam => write!(f, "the hypervisor image is not in free RAM (load it elsewhere)"),
            Self::NoRoom { needed } => write!(f, "no free RAM for the hypervisor's {} MiB", needed >> 20),
            Self::TooFragmented => write!(f, "memory map too fragmented"),
            Self::BadModule { base, problem } => write!(f, "module at {base:#x}: {problem}"),
            Self::DeviceInRam { device } => write!(
                f,
                "device registers at [{:#x}..{:#x}) lie inside a /memory bank of the device tree",
                device.start, device.end
            ),
        }
    }
}

impl Layout {
    /// Top of the stack of pCPU `cpu` (1-based: the primary uses the boot stack).
    pub fn stack_top(&self, cpu: usize) -> u64 {
        self.stacks.start + cpu as u64 * STACK_SLOT
    }

    /// The guard page of pCPU `cpu`'s stack.
    pub fn stack_guard(&self, cpu: usize) -> Range {
        let start = self.stacks.start + (cpu as u64 - 1) * STACK_SLOT;
        Range { start, end: start + PAGE_SIZE }
    }

    pub fn footprint(&self) -> u64 {
        self.image.whole.size() + self.reserved.size()
    }
}

/// RAM banks minus reserved regions, the DTB and modules.
fn usable_ram(p: &Platform<'_>) -> Result<RangeSet<MAX_FREE_RANGES>, LayoutError> {
    let mut free = RangeSet::new();
    for bank in p.memory.iter() {
        free.insert(bank.range()).map_err(|_| LayoutError::TooFragmented)?;
    }
    let occupied = p.reserved.iter().map(|r| r.region).chain(p.modules.iter().map(|m| m.region)).chain([p.dtb]);
    for r in occupied {
        let page_aligned =
            Range { start: r.base & !(PAGE_SIZE - 1), end: (r.base + r.size).next_multiple_of(PAGE_SIZE) };
        free.remove(page_aligned).map_err(|_| LayoutError::TooFragmented)?;
    }
    Ok(free)
}

/// The pages module `index` occupies, if they hold nothing else, so that they can be
/// handed to a guest whole: the module starts on a page boundary and no other module, the
/// DTB, a reserved region or the hypervisor image shares a page with it. (Module ranges are
/// checked not to overlap at boot, but two may still share the page where one ends.)
pub fn module_pages(p: &Platform<'_>, image: Range, index: usize) -> Option<Range> {
    let pages = |r: Range| Range { start: r.start & !(PAGE_SIZE - 1), end: r.end.next_multiple_of(PAGE_SIZE) };
    let module = p.modules.get(index)?.region.range();
    if !module.start.is_multiple_of(PAGE_SIZE) || module.is_empty() {
        return None;
    }
    let own = pages(module);
    let others = p.modules.iter().enumerate().filter(|&(i, _)| i != index).map(|(_, m)| m.region.range());
    let mut others = others.chain(p.reserved.iter().map(|r| r.region.range())).chain([p.dtb.range(), image]);
    (!others.any(|r| !r.is_empty() && pages(r).overlaps(&own))).then_some(own)
}

/// Modules come from the board's bootloader script: check each is somewhere we can read it
/// and nothing else claims.
fn check_modules(p: &Platform<'_>, image: &Image) -> Result<(), LayoutError> {
    for (i, m) in p.modules.iter().enumerate() {
        let r = m.region.range();
        let bad = |problem| Err(LayoutError::BadModule { base: m.region.base, problem });
        if r.is_empty() {
            return bad("empty");
        }
        if !p.memory.iter().any(|b| b.range().contains_range(&r)) {
            return bad("not inside a RAM bank");
        }
        if r.overlaps(&p.dtb.range()) {
            return bad("overlaps the device tree");
        }
        if r.overlaps(&image.whole) {
            return bad("overlaps the hypervisor image");
        }
        if p.reserved.iter().any(|x| x.region.range().overlaps(&r)) {
            return bad("overlaps a reserved-memory region");
        }
        if p.modules[i + 1..].iter().any(|o| o.region.range().overlaps(&r)) {
            return bad("overlaps another module");
        }
    }
    Ok(())
}

/// Chooses the reserved region: the first 2 MiB-aligned fit at or after the image's end, else
/// the first fit anywhere.
pub fn plan(p: &Platform<'_>, image: Image, cpu_count: usize) -> Result<Layout, LayoutError> {
    check_modules(p, &image)?;
    let mut free = usable_ram(p)?;
    if !free.contains_range(&image.whole) {
        return Err(LayoutError::ImageNotInFreeRam);
    }
    free.remove(image.whole).map_err(|_| LayoutError::TooFragmented)?;
    let stacks_size = (cpu_count.max(1) as u64 - 1) * STACK_SLOT;
    let needed = (TABLE_POOL_SIZE + stacks_size + HEAP_SIZE + FRAME_POOL_SIZE).next_multiple_of(BLOCK_2M);
    let reserved = free
        .find_free(needed, BLOCK_2M, image.whole.end)
        .or_else(|| free.find_free(needed, BLOCK_2M, 0))
        .ok_or(LayoutError::NoRoom { needed })?;
    free.remove(reserved).map_err(|_| LayoutError::TooFragmented)?;
    let tables = Range { start: reserved.start, end: reserved.start + TABLE_POOL_SIZE };
    let stacks = Range { start: tables.end, end: tables.end + stacks_size };
    let heap = Range { start: stacks.end, end: stacks.end + HEAP_SIZE };
    let frames = Range { start: heap.end, end: reserved.end };
    Ok(Layout { image, reserved, tables, stacks, heap, frames, free })
}

/// One entry of the stage-1 plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mapping {
    pub range: Range,
    /// Leaf attributes from [`s1`].
    pub attrs: u64,
}

/// The hypervisor's own EL2 map, identity: RAM (minus `no-map` regions and guard pages) as
/// normal memory, its code read-only and executable, the devices it drives as device memory.
pub fn stage1_plan(
    p: &Platform<'_>,
    layout: &Layout,
    cpu_count: usize,
) -> Result<FixedVec<Mapping, MAX_MAPPINGS>, LayoutError> {
    let frag = |_| LayoutError::TooFragmented;
    let mut ram: RangeSet<MAX_MAPPINGS> = RangeSet::new();
    for bank in p.memory.iter() {
        ram.insert(bank.range()).map_err(frag)?;
    }
    for r in p.reserved.iter().filter(|r| r.no_map) {
        ram.remove(r.region.range()).map_err(frag)?;
    }
    ram.remove(layout.image.text).map_err(frag)?;
    ram.remove(layout.image.boot_stack_guard).map_err(frag)?;
    for cpu in 1..cpu_count {
        ram.remove(layout.stack_guard(cpu)).map_err(frag)?;
    }
    let mut plan = FixedVec::new();
    let mut add = |range: Range, attrs| {
        let range = Range { start: range.start & !(PAGE_SIZE - 1), end: range.end.next_multiple_of(PAGE_SIZE) };
        plan.push(Mapping { range, attrs }).map_err(|_| LayoutError::TooFragmented)
    };
    add(layout.image.text, s1::NORMAL_RO_EXEC)?;
    for r in ram.ranges() {
        add(*r, s1::NORMAL)?;
    }
    let mut devices: RangeSet<16> = RangeSet::new();
    let gic = &p.gic;
    let regions = p
        .uart
        .map(|u| u.region)
        .into_iter()
        // The board's RTC, read once at boot for the wall-clock time.
        .chain(p.rtc)
        .chain([gic.distributor])
        .chain(gic.redistributors.iter().copied())
        // A GICv2's CPU interface and its virtualization regions, as far as the driver
        // reads to resolve an aliased or understated CPU interface (`platform::gicv2`).
        .chain(
            gic.cpu_interface.map(|r| crate::platform::gicv2::probe_window(crate::platform::gicv2::Interface::Gicc, r)),
        )
        .chain(gic.hyp_interface)
        .chain(
            gic.vcpu_interface
                .map(|r| crate::platform::gicv2::probe_window(crate::platform::gicv2::Interface::Gicv, r)),
        );
    for r in regions {
        let r = r.range();
        devices
            .insert(Range { start: r.start & !(PAGE_SIZE - 1), end: r.end.next_multiple_of(PAGE_SIZE) })
            .map_err(frag)?;
    }
    for r in devices.ranges() {
        if ram.overlaps(r) {
            return Err(LayoutError::DeviceInRam { device: *r });
        }
        add(*r, s1::DEVICE)?;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::discover;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/dtb/{name}.dtb", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn image_at(base: u64) -> Image {
        Image {
            whole: Range { start: base, end: base + 0x6_0000 },
            text: Range { start: base, end: base + 0x2_0000 },
            boot_stack_guard: Range { start: base + 0x4_0000, end: base + 0x4_1000 },
        }
    }

    #[test]
    fn reserves_after_the_image_and_keeps_modules_free() {
        let blob = fixture("virt-gicv3-smp4-4g-modules");
        // QEMU puts the DTB at the bottom of RAM.
        let p = discover(&blob, 0x4000_0000).unwrap();
        let l = plan(&p, image_at(0x4020_0000), 4).unwrap();
        assert_eq!(l.reserved.start, 0x4040_0000);
        assert_eq!(l.reserved.start % BLOCK_2M, 0);
        assert_eq!(l.stacks.size(), 3 * STACK_SLOT);
        assert_eq!(l.stack_top(1), l.stacks.start + STACK_SLOT);
        assert_eq!(l.frames.end, l.reserved.end);
        assert!(l.frames.size() >= FRAME_POOL_SIZE);
        for r in [l.image.whole, l.reserved, p.dtb.range(), p.modules[0].region.range()] {
            assert!(!l.free.overlaps(&r), "{r:?} must not be free");
        }
        assert!(l.free.total() > 3 << 30);
    }

    #[test]
    fn image_outside_ram_or_on_a_module_is_refused() {
        let blob = fixture("virt-gicv3-smp4-4g-modules");
        let p = discover(&blob, 0x4000_0000).unwrap();
        assert_eq!(plan(&p, image_at(0x1000_0000), 4).unwrap_err(), LayoutError::ImageNotInFreeRam);
        assert_eq!(
            plan(&p, image_at(0x4800_0000), 4).unwrap_err(),
            LayoutError::BadModule { base: 0x4800_0000, problem: "overlaps the hypervisor image" }
        );
    }

    #[test]
    fn bad_modules_are_named() {
        use crate::platform::{Module, ModuleKind, Region};
        let blob = fixture("virt-gicv3-smp4-512m");
        let base = discover(&blob, 0x4800_0000).unwrap();
        let with = |region: Region| {
            let mut p = base;
            p.modules.push(Module { kind: ModuleKind::Kernel, region, ..Default::default() }).unwrap();
            p.modules
                .push(Module {
                    kind: ModuleKind::Ramdisk,
                    region: Region { base: 0x5000_0000, size: 0x1000 },
                    ..Default::default()
                })
                .unwrap();
            plan(&p, image_at(0x4020_0000), 4).map(|_| ()).map_err(|e| match e {
                LayoutError::BadModule { problem, .. } => problem,
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(with(Region { base: 0x4c00_0000, size: 0x100 }), Ok(()));
        assert_eq!(with(Region { base: 0x4c00_0000, size: 0 }), Err("empty"));
        assert_eq!(with(Region { base: 0x1000, size: 0x100 }), Err("not inside a RAM bank"));
        assert_eq!(with(Region { base: 0x5fff_ff00, size: 0x200 }), Err("not inside a RAM bank"));
        assert_eq!(with(Region { base: 0x4800_0010, size: 0x10 }), Err("overlaps the device tree"));
        assert_eq!(with(Region { base: 0x4021_0000, size: 0x10 }), Err("overlaps the hypervisor image"));
        assert_eq!(with(Region { base: 0x4fff_f000, size: 0x2000 }), Err("overlaps another module"));
    }

    #[test]
    fn module_pages_only_when_nothing_shares_them() {
        use crate::platform::{Module, ModuleKind, Region};
        let blob = fixture("virt-gicv3-smp4-512m");
        let base = discover(&blob, 0x4800_0000).unwrap();
        let image = image_at(0x4020_0000).whole;
        let with = |kernel: Region, other: Region| {
            let mut p = base;
            for (kind, region) in [(ModuleKind::Kernel, kernel), (ModuleKind::Ramdisk, other)] {
                p.modules.push(Module { kind, region, ..Default::default() }).unwrap();
            }
            module_pages(&p, image, 0)
        };
        let far = Region { base: 0x5400_0000, size: 0x1000 };
        // A module whose end is not page aligned owns the rest of its last page.
        assert_eq!(
            with(Region { base: 0x5000_0000, size: 0x1f6_dfc0 }, far),
            Some(Range { start: 0x5000_0000, end: 0x51f6_e000 })
        );
        assert_eq!(with(Region { base: 0x5000_0800, size: 0x1000 }, far), None, "start not page aligned");
        assert_eq!(
            with(Region { base: 0x5000_0000, size: 0x1800 }, Region { base: 0x5000_1c00, size: 0x100 }),
            None,
            "another module in its last page"
        );
        assert_eq!(with(Region { base: 0x4800_1000, size: 0x1000 }, far), None, "the DTB's page");
        assert_eq!(with(Region { base: 0x4025_f000, size: 0x2000 }, far), None, "the image's page");
        assert_eq!(module_pages(&base, image, 0), None, "no such module");
    }

    #[test]
    fn too_little_ram_is_reported() {
        let mut w = crate::platform::writer::Writer::new();
        w.begin("").prop_u32("#address-cells", 1).prop_u32("#size-cells", 1);
        w.begin("memory").prop_str("device_type", "memory").prop_cells("reg", &[0x4000_0000, 0x40_0000]).end();
        w.begin("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
        w.begin("cpu@0").prop_str("device_type", "cpu").prop_cells("reg", &[0]).end().end();
        w.begin("gic").prop_strs("compatible", &["arm,gic-v3"]).prop_empty("interrupt-controller");
        w.prop_cells("reg", &[0x800_0000, 0x1_0000, 0x80a_0000, 0x2_0000]).end().end();
        let blob = w.finish();
        let p = discover(&blob, 0x4100_0000).unwrap();
        assert!(matches!(plan(&p, image_at(0x4000_0000), 1), Err(LayoutError::NoRoom { .. })));
    }

    #[test]
    fn a_device_inside_ram_is_named() {
        // QEMU's xlnx-zcu102 given -m 4G writes one 4 GiB /memory bank over the board's
        // device window at 2-4 GiB, where its GIC is.
        let mut w = crate::platform::writer::Writer::new();
        w.begin("").prop_u32("#address-cells", 2).prop_u32("#size-cells", 2);
        w.begin("memory").prop_str("device_type", "memory").prop_u64s("reg", &[0, 0x1_0000_0000]).end();
        w.begin("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
        w.begin("cpu@0").prop_str("device_type", "cpu").prop_cells("reg", &[0]).end().end();
        w.begin("gic").prop_strs("compatible", &["arm,gic-400"]).prop_empty("interrupt-controller");
        w.prop_u64s("reg", &[0xf901_0000, 0x1_0000, 0xf902_0000, 0x2_0000]).end().end();
        let blob = w.finish();
        let p = discover(&blob, 0x800_0000).unwrap();
        let l = plan(&p, image_at(0x20_0000), 1).unwrap();
        let err = stage1_plan(&p, &l, 1).unwrap_err();
        assert_eq!(err, LayoutError::DeviceInRam { device: Range { start: 0xf901_0000, end: 0xf904_0000 } });
        assert_eq!(
            format!("{err}"),
            "device registers at [0xf9010000..0xf9040000) lie inside a /memory bank of the device tree"
        );
    }

    #[test]
    fn stage1_plan_leaves_guards_and_no_map_unmapped() {
        let blob = fixture("virt-gicv3-smp4-512m");
        let p = discover(&blob, 0x4000_0000).unwrap();
        let l = plan(&p, image_at(0x4020_0000), 4).unwrap();
        let m = stage1_plan(&p, &l, 4).unwrap();
        let covered = |a: u64| m.iter().find(|x| x.range.contains(a)).map(|x| x.attrs);
        assert_eq!(covered(0x4020_0000), Some(s1::NORMAL_RO_EXEC));
        assert_eq!(covered(0x4022_0000), Some(s1::NORMAL));
        assert_eq!(covered(0x4024_0000), None, "boot stack guard");
        assert_eq!(covered(l.stack_guard(1).start), None);
        assert_eq!(covered(l.stack_guard(3).start), None);
        assert_eq!(covered(l.stack_top(3) - 8), Some(s1::NORMAL));
        assert_eq!(covered(0x0900_0000), Some(s1::DEVICE));
        assert_eq!(covered(0x0901_0000), Some(s1::DEVICE), "the board's RTC");
        assert_eq!(covered(0x0901_1000), None, "and nothing after it");
        assert_eq!(covered(0x0800_0000), Some(s1::DEVICE));
        assert_eq!(covered(0x080a_0000 + 4 * 0x2_0000 - 1), Some(s1::DEVICE));
        assert_eq!(covered(0x3fff_f000), None);
        assert_eq!(covered(0x6000_0000), None, "past the end of RAM");
        // No two entries overlap.
        for (i, a) in m.iter().enumerate() {
            for b in &m[i + 1..] {
                assert!(!a.range.overlaps(&b.range), "{a:?} {b:?}");
            }
        }
    }
}
