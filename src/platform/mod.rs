//! Hardware discovery: the host device tree becomes one [`Platform`] value.
//!
//! Everything board-specific comes from here: RAM banks and reserved regions, CPUs and how to
//! start them, the PSCI conduit, the GIC, the console UART, the timer PPIs, the multiboot
//! modules in `/chosen` and the VMs Xen's dom0less binding describes there ([`domains`]).
//! The blob is validated structurally first ([`check`]) and read with
//! our own [`reader`]; every property we use is length-checked here, so a damaged or hostile
//! DTB yields an [`Error`], never a panic. Runs before the heap exists: fixed-capacity
//! storage only, and nothing is silently dropped.
#![forbid(unsafe_code)]

pub mod check;
pub mod domains;
pub mod gicv2;
pub mod reader;
pub mod writer;

use crate::mm::range::Range;
use crate::util::FixedVec;
use core::fmt;
use reader::{Fdt, Node};

/// Most pCPUs one build supports; a DTB listing more is an error, not a truncation.
pub const MAX_CPUS: usize = 64;
pub const MAX_MEMORY_BANKS: usize = 16;
pub const MAX_RESERVED: usize = 32;
/// Top-level modules and those of every domain node: three (kernel, ramdisk, disk) for each
/// of [`MAX_DOMAINS`] VMs, and room for more.
pub const MAX_MODULES: usize = 32;
pub const MAX_REDIST_REGIONS: usize = 8;
const MAX_PATH: usize = 256;

/// A region of physical address space.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Region {
    pub base: u64,
    pub size: u64,
}

impl Region {
    pub fn range(&self) -> Range {
        Range { start: self.base, end: self.base + self.size }
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}+{:#x}", self.base, self.size)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnableMethod {
    /// PSCI CPU_ON over the conduit in [`Platform::psci`].
    #[default]
    Psci,
    /// Write the entry point to `release_addr`, then SEV.
    SpinTable { release_addr: u64 },
    /// No enable-method, or one we do not know: the CPU cannot be started.
    None,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    /// MPIDR affinity fields as the DTB gives them (Aff3 in bits 39:32, Aff2..0 in 23:0).
    pub mpidr: u64,
    pub enable: EnableMethod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    Smc,
    Hvc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Psci {
    pub conduit: PsciConduit,
    /// Function ID of CPU_ON: SMC64 0xc400_0003 from PSCI 0.2 on, the `cpu_on` property for 0.1.
    pub cpu_on: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GicVersion {
    #[default]
    V2,
    V3,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gic {
    pub version: GicVersion,
    pub distributor: Region,
    /// GICv3 redistributor regions (`#redistributor-regions` of them).
    pub redistributors: FixedVec<Region, MAX_REDIST_REGIONS>,
    /// `redistributor-stride`, or 0 for the architected frame size.
    pub redistributor_stride: u64,
    /// GICv2 CPU interface (GICC, `reg` entry 1) as the DTB gives it; some DTBs understate or
    /// alias it: [`gicv2::resolve`] finds the 8 KiB to use.
    pub cpu_interface: Option<Region>,
    /// GICv2 virtual interface control (GICH, `reg` entry 2). Optional in the binding: a
    /// GICv2 without it (or without GICV) cannot host guests; [`Gic::gicv2_virtualization`]
    /// says so where it is needed.
    pub hyp_interface: Option<Region>,
    /// GICv2 virtual CPU interface (GICV, `reg` entry 3), which guests see as their GICC.
    pub vcpu_interface: Option<Region>,
    /// Maintenance interrupt INTID, if the DTB names one.
    pub maintenance_intid: Option<u32>,
}

/// The architected timer's interrupt IDs (all PPIs on the platforms we support).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timer {
    pub secure_phys: u32,
    pub phys: u32,
    pub virt: u32,
    pub hyp_phys: u32,
}

/// Which UART the console is, with its register shape: the drivers' own description
/// ([`crate::hw::uart::Kind`]).
pub use crate::hw::uart::{Kind as UartKind, Width as IoWidth, ns16550::Variant as Ns16550Variant};

/// `compatible` strings of the console UARTs besides `arm,pl011`, most specific kind first:
/// the Cadence UART (Linux's xilinx_uartps), the DesignWare APB UART (8250_dw, without the
/// Octeon, whose USR is elsewhere and whose registers are 64-bit), the 16550A and later
/// (of_serial's FIFO types), then the members Linux drives without FIFOs.
const CADENCE_UARTS: [&str; 4] = ["cdns,uart-r1p12", "cdns,uart-r1p8", "xlnx,xuartps", "xlnx,zynqmp-uart"];
const DESIGNWARE_UARTS: [&str; 5] =
    ["snps,dw-apb-uart", "marvell,armada-38x-uart", "renesas,rzn1-uart", "starfive,jh7100-uart", "sophgo,sg2044-uart"];
const FIFO_16550S: [&str; 3] = ["ns16550a", "ns16750", "ns16850"];
const NO_FIFO_16550S: [&str; 3] = ["ns16550", "ns16450", "ns8250"];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uart {
    pub kind: UartKind,
    /// Its registers (for a 16550, `reg` moved on by `reg-offset`), at least
    /// [`UartKind::span`] long.
    pub region: Region,
    /// False when `/chosen/stdout-path` was missing or named a UART we cannot drive, and
    /// the first PL011 in the tree was taken instead.
    pub from_stdout_path: bool,
    /// Its interrupt (an SPI), if the DTB names one.
    pub intid: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModuleKind {
    /// `multiboot,kernel`.
    Kernel,
    /// `multiboot,ramdisk`.
    Ramdisk,
    /// `armvisor,disk`: a disk image for the emulated virtio block device.
    Disk,
    /// Another `multiboot,module`.
    #[default]
    Other,
}

/// A `/chosen/module@ADDR` node, or a module node of a domain (Xen's multiboot device-tree
/// binding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Module<'a> {
    pub kind: ModuleKind,
    pub region: Region,
    pub bootargs: Option<&'a str>,
    /// The node's name (`module@48000000`).
    pub node: &'a str,
    /// The domain node it is a child of (an index into [`Platform::domains`]); `None` for a
    /// child of `/chosen` itself.
    pub domain: Option<u8>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reserved {
    pub region: Region,
    /// `no-map` in `/reserved-memory`: must not even be mapped (firmware-owned).
    pub no_map: bool,
}

/// What the device tree says about the machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Platform<'a> {
    /// The DTB itself.
    pub dtb: Region,
    pub model: &'a str,
    pub memory: FixedVec<Region, MAX_MEMORY_BANKS>,
    /// `/memreserve/` entries and `/reserved-memory` children.
    pub reserved: FixedVec<Reserved, MAX_RESERVED>,
    pub cpus: FixedVec<Cpu, MAX_CPUS>,
    pub psci: Option<Psci>,
    pub gic: Gic,
    pub uart: Option<Uart>,
    pub timer: Option<Timer>,
    /// The first `arm,pl031` real-time clock's registers (at least RTCDR to RTCICR), which
    /// the hypervisor reads once at boot for the wall-clock time.
    pub rtc: Option<Region>,
    /// Top-level and domain modules together, in node order (all of them are memory the
    /// bootloader filled, which the hypervisor must not take).
    pub modules: FixedVec<Module<'a>, MAX_MODULES>,
    pub bootargs: Option<&'a str>,
    /// The `xen,domain` nodes under `/chosen`, in node order.
    pub domains: FixedVec<Domain<'a>, MAX_DOMAINS>,
    /// The `xen,vcpu` children of the domain nodes, in node order.
    pub vcpu_nodes: FixedVec<VcpuNode<'a>, MAX_CPUS>,
    /// What the domain nodes say that we do not use, for a warning each.
    pub ignored: FixedVec<Ignored<'a>, MAX_IGNORED>,
    /// How many more there were than [`Platform::ignored`] holds.
    pub ignored_overflow: usize,
}

pub use domains::{Domain, Expected, Found, Ignored, MAX_DOMAINS, MAX_IGNORED, Unused, VcpuNode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<'a> {
    Damaged(check::FdtDamage),
    /// A property has the wrong length or an impossible value.
    BadProperty {
        node: &'a str,
        property: &'static str,
    },
    /// More entries than this build can hold.
    TooMany {
        what: &'static str,
        limit: usize,
    },
    NoMemory,
    NoCpus,
    NoGic,
    /// The GIC is a GICv2, which serves at most [`hw::gicv2::MAX_CPU_INTERFACES`] CPUs, and
    /// `/cpus` lists `count`; `first_extra` is the node name of the first one past the limit.
    ///
    /// [`hw::gicv2::MAX_CPU_INTERFACES`]: crate::hw::gicv2::MAX_CPU_INTERFACES
    TooManyCpusForGicv2 {
        count: usize,
        first_extra: &'a str,
    },
    /// A property of a `xen,domain` node under `/chosen` (or of its child `child`) missing
    /// or of a shape the binding does not allow.
    BadDomain {
        /// The domain node's name.
        domain: &'a str,
        /// The child node (a module or `xen,vcpu` node), if the property is one of its.
        child: Option<&'a str>,
        property: &'static str,
        /// What the tree has.
        found: Found,
        /// What the binding wants.
        expected: Expected,
    },
}

impl fmt::Display for Error<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Damaged(d) => write!(f, "damaged device tree: {d}"),
            Self::BadProperty { node, property } => {
                write!(f, "device tree node '{node}': malformed '{property}'")
            }
            Self::TooMany { what, limit } => {
                write!(f, "device tree lists more {what} than this build supports ({limit})")
            }
            Self::NoMemory => write!(f, "device tree has no memory node with a usable reg"),
            Self::NoCpus => write!(f, "device tree has no /cpus/cpu node"),
            Self::NoGic => write!(f, "device tree has no GICv2 or GICv3 interrupt controller"),
            Self::TooManyCpusForGicv2 { count, first_extra } => write!(
                f,
                "the GICv2 serves at most {} CPUs; the device tree lists {count} (the {}th is /cpus/{first_extra})",
                GICV2_MAX_CPUS,
                GICV2_MAX_CPUS + 1
            ),
            Self::BadDomain { domain, child, property, found, expected } => {
                write!(f, "device tree node /chosen/{domain}")?;
                if let Some(child) = child {
                    write!(f, "/{child}")?;
                }
                write!(f, ": property '{property}' {found}; {expected}")
            }
        }
    }
}

impl<'a> Platform<'a> {
    /// The CPU with this MPIDR (affinity bits only), if listed.
    pub fn cpu_index(&self, mpidr: u64) -> Option<usize> {
        self.cpus.iter().position(|c| c.mpidr == mpidr & MPIDR_AFFINITY_MASK)
    }

    /// A DTB region or module overlapping `r`, if any: memory the hypervisor must not take.
    pub fn is_occupied(&self, r: &Range) -> bool {
        self.dtb.range().overlaps(r)
            || self.reserved.iter().any(|x| x.region.range().overlaps(r))
            || self.modules.iter().any(|m| m.region.range().overlaps(r))
    }
}

use crate::hw::gicv2::MAX_CPU_INTERFACES as GICV2_MAX_CPUS;

/// MPIDR_EL1 affinity fields: Aff3 [39:32], Aff2 [23:16], Aff1 [15:8], Aff0 [7:0].
pub use crate::hw::el2::mpidr::AFFINITY as MPIDR_AFFINITY_MASK;

/// One bus level on the way down the tree.
#[derive(Clone, Copy, Default)]
struct Frame<'a> {
    /// `#address-cells` / `#size-cells` for this node's children (inherited if absent).
    address_cells: u32,
    size_cells: u32,
    /// `ranges`: `None` if absent (children not memory-mapped), empty for identity.
    ranges: Option<&'a [u8]>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Root,
    Cpus,
    Chosen,
    ReservedMemory,
    /// A `xen,domain` node under `/chosen`.
    Domain,
    Other,
}

fn read_cells(bytes: &[u8], cells: u32) -> Option<u64> {
    match cells {
        0 => Some(0),
        1 => Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as u64),
        2 => Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?)),
        _ => None,
    }
}

fn prop_u32(node: &Node<'_>, name: &str) -> Option<u32> {
    let v = node.property(name)?.value;
    Some(u32::from_be_bytes(v.try_into().ok()?))
}

fn prop_str<'a>(node: &Node<'a>, name: &str) -> Option<&'a str> {
    let v = node.property(name)?.value;
    let v = v.strip_suffix(&[0]).unwrap_or(v);
    core::str::from_utf8(v).ok()
}

/// Does the NUL-separated string list `name` of `node` contain `want`?
fn has_string(node: &Node<'_>, name: &str, want: &str) -> bool {
    node.property(name).is_some_and(|p| p.value.split(|&b| b == 0).any(|s| s == want.as_bytes()))
}

fn is_disabled(node: &Node<'_>) -> bool {
    matches!(prop_str(node, "status"), Some(s) if s != "okay" && s != "ok")
}

struct Walker<'a> {
    p: Platform<'a>,
    frames: [Frame<'a>; check::MAX_DEPTH + 1],
    path: FixedVec<u8, MAX_PATH>,
    path_overflow: usize,
    stdout_path: Option<&'a str>,
    /// The first PL011 (node name, region, `interrupts`): the console without a usable
    /// stdout-path.
    first_pl011: Option<(&'a str, Region, Option<&'a [u8]>)>,
    stdout_irq: Option<&'a [u8]>,
    gic_interrupt_cells: u32,
    timer_interrupts: Option<(&'a str, &'a [u8])>,
    found_gic: bool,
    /// The first CPU node past a GICv2's eight CPU interfaces (checked once the GIC is known).
    first_cpu_past_gicv2: Option<&'a str>,
}

/// Parses and checks a DTB. `blob` must hold at least the header's `totalsize` bytes.
pub fn discover<'a>(blob: &'a [u8], blob_base: u64) -> Result<Platform<'a>, Error<'a>> {
    let fdt = Fdt::new(blob).map_err(Error::Damaged)?;
    let root = fdt.root();
    let mut w = Walker {
        p: Platform { dtb: Region { base: blob_base, size: fdt.total_size() as u64 }, ..Default::default() },
        frames: [Frame::default(); check::MAX_DEPTH + 1],
        path: FixedVec::new(),
        path_overflow: 0,
        stdout_path: None,
        first_pl011: None,
        stdout_irq: None,
        gic_interrupt_cells: 3,
        timer_interrupts: None,
        found_gic: false,
        first_cpu_past_gicv2: None,
    };
    w.p.model = prop_str(&root, "model").unwrap_or("unknown");
    w.stdout_path = stdout_target(&fdt);
    for (base, size) in fdt.reservations() {
        w.add_reserved(Region { base, size }, false, "/memreserve/")?;
    }
    w.walk(root, 0, Place::Root, Place::Other)?;
    w.finish()
}

/// `/chosen/stdout-path` without its options, with an alias resolved to a path.
fn stdout_target<'a>(fdt: &Fdt<'a>) -> Option<&'a str> {
    let chosen = fdt.find("/chosen")?;
    let spec = prop_str(&chosen, "stdout-path").or_else(|| prop_str(&chosen, "linux,stdout-path"))?;
    let spec = spec.split(':').next()?;
    if spec.starts_with('/') {
        return Some(spec);
    }
    let aliases = fdt.find("/aliases")?;
    prop_str(&aliases, spec)
}

impl<'a> Walker<'a> {
    fn walk(&mut self, node: Node<'a>, depth: usize, place: Place, parent_place: Place) -> Result<(), Error<'a>> {
        let path_len = self.path.len();
        if depth > 0 {
            self.push_path(node.name);
        }
        let parent =
            if depth > 0 { self.frames[depth - 1] } else { Frame { address_cells: 2, size_cells: 1, ranges: None } };
        self.frames[depth] = Frame {
            address_cells: prop_u32(&node, "#address-cells").unwrap_or(parent.address_cells),
            size_cells: prop_u32(&node, "#size-cells").unwrap_or(parent.size_cells),
            ranges: node.property("ranges").map(|p| p.value),
        };
        if !is_disabled(&node) {
            self.visit(&node, depth, place, parent_place)?;
        }
        for child in node.children() {
            let child_place = match (place, child.name) {
                (Place::Root, "cpus") => Place::Cpus,
                (Place::Root, "chosen") => Place::Chosen,
                (Place::Root, "reserved-memory") => Place::ReservedMemory,
                (Place::Chosen, _) if has_string(&child, "compatible", "xen,domain") => Place::Domain,
                _ => Place::Other,
            };
            // A disabled domain is no VM, and its children are nobody's modules.
            if child_place == Place::Domain && is_disabled(&child) {
                self.ignore(Ignored { domain: child.name, child: None, name: "status", why: Unused::Disabled });
                continue;
            }
            self.walk(child, depth + 1, child_place, place)?;
        }
        self.path.truncate(path_len);
        if self.path_overflow > 0 && depth > 0 {
            self.path_overflow -= 1;
        }
        Ok(())
    }

    fn push_path(&mut self, name: &str) {
        if self.path_overflow > 0 || self.path.len() + 1 + name.len() > MAX_PATH {
            self.path_overflow += 1;
            return;
        }
        for b in core::iter::once(b'/').chain(name.bytes()) {
            let _ = self.path.push(b);
        }
    }

    fn at_stdout_path(&self, depth: usize) -> bool {
        let path: &[u8] = if depth == 0 { b"/" } else { &self.path };
        self.path_overflow == 0 && self.stdout_path.is_some_and(|t| t.as_bytes() == path)
    }

    /// The `reg` entries of `node`, translated to CPU physical addresses.
    fn regs<const N: usize>(&self, node: &Node<'a>, depth: usize) -> Result<FixedVec<Region, N>, Error<'a>> {
        self.regs_in(node, depth, true)
    }

    /// `reg` entries, translated through `ranges` or (for `/chosen` modules, whose addresses
    /// are physical by definition) taken as they are.
    fn regs_in<const N: usize>(
        &self,
        node: &Node<'a>,
        depth: usize,
        translate: bool,
    ) -> Result<FixedVec<Region, N>, Error<'a>> {
        let bad = Error::BadProperty { node: node.name, property: "reg" };
        let bus = self.frames[depth - 1];
        let mut out = FixedVec::new();
        let Some(reg) = node.property("reg") else { return Ok(out) };
        let entry = (bus.address_cells + bus.size_cells) as usize * 4;
        if bus.address_cells > 2 || bus.size_cells > 2 || entry == 0 || reg.value.len() % entry != 0 {
            return Err(bad);
        }
        for chunk in reg.value.chunks(entry) {
            let addr = read_cells(chunk, bus.address_cells).ok_or(bad)?;
            let size = read_cells(&chunk[bus.address_cells as usize * 4..], bus.size_cells).ok_or(bad)?;
            let base = if translate { self.translate(addr, depth).ok_or(bad)? } else { addr };
            base.checked_add(size).ok_or(bad)?;
            out.push(Region { base, size }).map_err(|_| Error::TooMany { what: "reg entries", limit: N })?;
        }
        Ok(out)
    }

    /// Child-bus address to CPU physical address through the parents' `ranges`.
    fn translate(&self, mut addr: u64, depth: usize) -> Option<u64> {
        for level in (1..depth).rev() {
            let bus = self.frames[level];
            let up = self.frames[level - 1];
            let ranges = bus.ranges?;
            if ranges.is_empty() {
                continue;
            }
            let entry = (bus.address_cells + up.address_cells + bus.size_cells) as usize * 4;
            if entry == 0 || ranges.len() % entry != 0 {
                return None;
            }
            addr = ranges.chunks(entry).find_map(|r| {
                let child = read_cells(r, bus.address_cells)?;
                let parent = read_cells(&r[bus.address_cells as usize * 4..], up.address_cells)?;
                let size = read_cells(&r[(bus.address_cells + up.address_cells) as usize * 4..], bus.size_cells)?;
                (addr >= child && addr - child < size).then(|| parent.checked_add(addr - child))?
            })?;
        }
        Some(addr)
    }

    fn add_reserved(&mut self, region: Region, no_map: bool, node: &'a str) -> Result<(), Error<'a>> {
        if region.base.checked_add(region.size).is_none() {
            return Err(Error::BadProperty { node, property: "reg" });
        }
        if region.size == 0 {
            return Ok(());
        }
        self.p
            .reserved
            .push(Reserved { region, no_map })
            .map_err(|_| Error::TooMany { what: "reserved regions", limit: MAX_RESERVED })
    }

    fn visit(&mut self, node: &Node<'a>, depth: usize, place: Place, parent_place: Place) -> Result<(), Error<'a>> {
        if depth == 0 {
            return Ok(());
        }
        if prop_str(node, "device_type") == Some("memory") {
            for r in self.regs::<MAX_MEMORY_BANKS>(node, depth)?.iter().filter(|r| r.size > 0) {
                self.p.memory.push(*r).map_err(|_| Error::TooMany { what: "memory banks", limit: MAX_MEMORY_BANKS })?;
            }
        }
        if parent_place == Place::ReservedMemory {
            let no_map = node.property("no-map").is_some();
            for r in self.regs::<MAX_RESERVED>(node, depth)?.iter() {
                self.add_reserved(*r, no_map, node.name)?;
            }
        }
        if parent_place == Place::Cpus && prop_str(node, "device_type") == Some("cpu") {
            self.visit_cpu(node, depth)?;
        }
        if parent_place == Place::Chosen && has_string(node, "compatible", "multiboot,module") {
            self.visit_module(node, depth)?;
        }
        if place == Place::Chosen {
            self.p.bootargs = prop_str(node, "bootargs");
        }
        if place == Place::Domain {
            self.visit_domain(node)?;
        }
        if parent_place == Place::Domain {
            self.visit_domain_child(node, depth)?;
        }
        let compatible = |c: &str| has_string(node, "compatible", c);
        if ["arm,psci", "arm,psci-0.2", "arm,psci-1.0"].iter().any(|c| compatible(c)) {
            let conduit = match prop_str(node, "method") {
                Some("smc") => PsciConduit::Smc,
                Some("hvc") => PsciConduit::Hvc,
                _ => return Err(Error::BadProperty { node: node.name, property: "method" }),
            };
            let cpu_on = if compatible("arm,psci-0.2") || compatible("arm,psci-1.0") {
                crate::hw::psci::CPU_ON_64
            } else {
                prop_u32(node, "cpu_on").ok_or(Error::BadProperty { node: node.name, property: "cpu_on" })?
            };
            self.p.psci = Some(Psci { conduit, cpu_on });
        }
        if !self.found_gic && node.property("interrupt-controller").is_some() {
            self.visit_gic(node, depth)?;
        }
        if compatible("arm,armv8-timer") || compatible("arm,armv7-timer") {
            self.timer_interrupts = node.property("interrupts").map(|p| (node.name, p.value));
        }
        if compatible("arm,pl031") && self.p.rtc.is_none() {
            let region = self.first_reg(node, depth)?;
            if region.size < crate::hw::pl031::REGISTERS_SPAN {
                return Err(Error::BadProperty { node: node.name, property: "reg" });
            }
            self.p.rtc = Some(region);
        }
        let at_stdout = self.at_stdout_path(depth);
        if compatible("arm,pl011") {
            let region = self.first_reg(node, depth)?;
            let irq = node.property("interrupts").map(|p| p.value);
            if at_stdout {
                self.set_console(node.name, UartKind::Pl011, region, true, irq)?;
            }
            self.first_pl011.get_or_insert((node.name, region, irq));
        } else if at_stdout && let Some(kind) = uart_kind(node)? {
            let mut region = self.first_reg(node, depth)?;
            if let UartKind::Ns16550 { .. } = kind
                && let Some(offset) = prop_cell(node, "reg-offset")?
            {
                let offset = offset as u64;
                if offset >= region.size {
                    return Err(Error::BadProperty { node: node.name, property: "reg-offset" });
                }
                region = Region { base: region.base + offset, size: region.size - offset };
            }
            self.set_console(node.name, kind, region, true, node.property("interrupts").map(|p| p.value))?;
        }
        Ok(())
    }

    fn first_reg(&self, node: &Node<'a>, depth: usize) -> Result<Region, Error<'a>> {
        let regs = self.regs::<4>(node, depth)?;
        regs.first().copied().ok_or(Error::BadProperty { node: node.name, property: "reg" })
    }

    /// The console UART, if its registers are all inside its `reg`.
    fn set_console(
        &mut self,
        node: &'a str,
        kind: UartKind,
        region: Region,
        from_stdout_path: bool,
        irq: Option<&'a [u8]>,
    ) -> Result<(), Error<'a>> {
        if region.size < kind.span() {
            return Err(Error::BadProperty { node, property: "reg" });
        }
        self.p.uart = Some(Uart { kind, region, from_stdout_path, intid: None });
        self.stdout_irq = irq;
        Ok(())
    }

    fn visit_cpu(&mut self, node: &Node<'a>, depth: usize) -> Result<(), Error<'a>> {
        let bad = |property| Error::BadProperty { node: node.name, property };
        let cells = self.frames[depth - 1].address_cells;
        let reg = node.property("reg").ok_or(bad("reg"))?.value;
        if cells == 0 || cells > 2 || reg.len() < cells as usize * 4 {
            return Err(bad("reg"));
        }
        let mpidr = read_cells(reg, cells).ok_or(bad("reg"))?;
        if mpidr & !MPIDR_AFFINITY_MASK != 0 || self.p.cpus.iter().any(|c| c.mpidr == mpidr) {
            return Err(bad("reg"));
        }
        let enable = match prop_str(node, "enable-method") {
            Some("psci") => EnableMethod::Psci,
            Some("spin-table") => {
                let v = node.property("cpu-release-addr").ok_or(bad("cpu-release-addr"))?.value;
                let release_addr = match v.len() {
                    4 => read_cells(v, 1),
                    8 => read_cells(v, 2),
                    _ => None,
                }
                .ok_or(bad("cpu-release-addr"))?;
                EnableMethod::SpinTable { release_addr }
            }
            _ => EnableMethod::None,
        };
        if self.p.cpus.len() == GICV2_MAX_CPUS {
            self.first_cpu_past_gicv2 = Some(node.name);
        }
        self.p.cpus.push(Cpu { mpidr, enable }).map_err(|_| Error::TooMany { what: "CPUs", limit: MAX_CPUS })
    }

    fn visit_module(&mut self, node: &Node<'a>, depth: usize) -> Result<(), Error<'a>> {
        let regs = self.regs_in::<1>(node, depth, false)?;
        let region = *regs.first().ok_or(Error::BadProperty { node: node.name, property: "reg" })?;
        self.add_module(Module {
            kind: module_kind(node),
            region,
            bootargs: prop_str(node, "bootargs"),
            node: node.name,
            domain: None,
        })
    }

    fn add_module(&mut self, module: Module<'a>) -> Result<(), Error<'a>> {
        self.p.modules.push(module).map_err(|_| Error::TooMany { what: "modules", limit: MAX_MODULES })
    }

    fn visit_gic(&mut self, node: &Node<'a>, depth: usize) -> Result<(), Error<'a>> {
        let compatible = |c: &str| has_string(node, "compatible", c);
        let version = if compatible("arm,gic-v3") {
            GicVersion::V3
        } else if ["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a9-gic", "arm,cortex-a7-gic", "arm,gic-v2"]
            .iter()
            .any(|c| compatible(c))
        {
            GicVersion::V2
        } else {
            return Ok(());
        };
        let bad = |property| Error::BadProperty { node: node.name, property };
        let regs = self.regs::<{ MAX_REDIST_REGIONS + 4 }>(node, depth)?;
        let mut gic = Gic { version, distributor: *regs.first().ok_or(bad("reg"))?, ..Default::default() };
        match version {
            GicVersion::V3 => {
                let count = prop_u32(node, "#redistributor-regions").unwrap_or(1) as usize;
                if count == 0 || count > MAX_REDIST_REGIONS || regs.len() < 1 + count {
                    return Err(bad("#redistributor-regions"));
                }
                for r in &regs[1..1 + count] {
                    let _ = gic.redistributors.push(*r);
                }
                gic.redistributor_stride = match node.property("redistributor-stride") {
                    None => 0,
                    Some(p) => read_cells(p.value, (p.value.len() / 4) as u32).ok_or(bad("redistributor-stride"))?,
                };
            }
            GicVersion::V2 => {
                // GICD, GICC, and with the virtualization extensions GICH and GICV
                // (Documentation/devicetree/bindings/interrupt-controller/arm,gic.yaml).
                gic.cpu_interface = Some(*regs.get(1).ok_or(bad("reg"))?);
                gic.hyp_interface = regs.get(2).copied();
                gic.vcpu_interface = regs.get(3).copied();
            }
        }
        self.gic_interrupt_cells = prop_u32(node, "#interrupt-cells").unwrap_or(3);
        if let Some(irq) = node.property("interrupts") {
            gic.maintenance_intid =
                Some(decode_interrupt(irq.value, self.gic_interrupt_cells).ok_or(bad("interrupts"))?);
        }
        self.p.gic = gic;
        self.found_gic = true;
        Ok(())
    }

    fn finish(mut self) -> Result<Platform<'a>, Error<'a>> {
        if self.p.memory.is_empty() {
            return Err(Error::NoMemory);
        }
        if self.p.cpus.is_empty() {
            return Err(Error::NoCpus);
        }
        if !self.found_gic {
            return Err(Error::NoGic);
        }
        // A GICv2 has eight CPU interfaces (IHI 0048B 4.3.2): a ninth CPU could take no
        // interrupt, so the machine is refused rather than run with CPUs left out.
        if let (GicVersion::V2, Some(first_extra)) = (self.p.gic.version, self.first_cpu_past_gicv2) {
            return Err(Error::TooManyCpusForGicv2 { count: self.p.cpus.len(), first_extra });
        }
        if let Some((node, irqs)) = self.timer_interrupts {
            let cells = self.gic_interrupt_cells as usize;
            let bad = Error::BadProperty { node, property: "interrupts" };
            if cells == 0 || irqs.len() < 4 * cells * 4 {
                return Err(bad);
            }
            let intid = |i: usize| decode_interrupt(&irqs[i * cells * 4..], cells as u32).ok_or(bad);
            self.p.timer =
                Some(Timer { secure_phys: intid(0)?, phys: intid(1)?, virt: intid(2)?, hyp_phys: intid(3)? });
        }
        if self.p.uart.is_none()
            && let Some((node, region, irq)) = self.first_pl011
        {
            self.set_console(node, UartKind::Pl011, region, false, irq)?;
        }
        // The UART's interrupt, decoded with the GIC's cell count (known only now). A
        // malformed one costs console input, not the boot.
        if let (Some(uart), Some(irq)) = (self.p.uart.as_mut(), self.stdout_irq) {
            uart.intid = decode_interrupt(irq, self.gic_interrupt_cells);
        }
        Ok(self.p)
    }
}

/// The kind of a `multiboot,module` node, from its more specific `compatible` string.
fn module_kind(node: &Node<'_>) -> ModuleKind {
    let compatible = |c| has_string(node, "compatible", c);
    if compatible("multiboot,kernel") {
        ModuleKind::Kernel
    } else if compatible("multiboot,ramdisk") {
        ModuleKind::Ramdisk
    } else if compatible("armvisor,disk") {
        ModuleKind::Disk
    } else {
        ModuleKind::Other
    }
}

/// The console kind a non-PL011 node is, from its `compatible`, with the 16550's register
/// shape: `reg-shift` (default 0, at most 3) and `reg-io-width` (default 1; 1 or 4, and 4
/// only with a stride of at least 4, as a 32-bit access must be aligned). `None` for a node
/// that is no UART we drive.
fn uart_kind<'a>(node: &Node<'a>) -> Result<Option<UartKind>, Error<'a>> {
    let any = |list: &[&str]| list.iter().any(|c| has_string(node, "compatible", c));
    if any(&CADENCE_UARTS) {
        return Ok(Some(UartKind::Cadence));
    }
    let variant = if any(&DESIGNWARE_UARTS) {
        Ns16550Variant::DesignWare
    } else if any(&FIFO_16550S) {
        Ns16550Variant::Fifo
    } else if any(&NO_FIFO_16550S) {
        Ns16550Variant::NoFifo
    } else {
        return Ok(None);
    };
    let bad = |property| Error::BadProperty { node: node.name, property };
    let reg_shift = match prop_cell(node, "reg-shift")? {
        None => 0,
        Some(s @ 0..=3) => s as u8,
        Some(_) => return Err(bad("reg-shift")),
    };
    let io_width = match prop_cell(node, "reg-io-width")? {
        None | Some(1) => IoWidth::U8,
        Some(4) if reg_shift >= 2 => IoWidth::U32,
        Some(_) => return Err(bad("reg-io-width")),
    };
    Ok(Some(UartKind::Ns16550 { variant, reg_shift, io_width }))
}

/// A one-cell property: `None` if absent, an error naming it if not one cell long.
fn prop_cell<'a>(node: &Node<'a>, name: &'static str) -> Result<Option<u32>, Error<'a>> {
    match node.property(name) {
        None => Ok(None),
        Some(p) => p
            .value
            .try_into()
            .map(|b| Some(u32::from_be_bytes(b)))
            .map_err(|_| Error::BadProperty { node: node.name, property: name }),
    }
}

/// A GIC interrupt specifier (type, number, flags...) to an INTID: SPI n is 32 + n, PPI n is
/// 16 + n (GIC device-tree binding).
fn decode_interrupt(cells: &[u8], interrupt_cells: u32) -> Option<u32> {
    if interrupt_cells < 2 {
        return None;
    }
    let kind = read_cells(cells, 1)?;
    let number = read_cells(cells.get(4..)?, 1)? as u32;
    match kind {
        0 if number < 988 => Some(32 + number),
        1 if number < 16 => Some(16 + number),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
