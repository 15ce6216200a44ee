//! Xen's dom0less binding (docs/misc/arm/device-tree/booting.txt, "Creating Multiple Domains
//! directly from Xen"): a VM is a `/chosen` child with `compatible = "xen,domain"`, its RAM
//! (`memory`, KiB) and vCPU count (`cpus`), its modules as child nodes in the domain's own
//! `#address-cells`/`#size-cells`, and optionally `xen,vcpu` children pinning vCPUs.
//!
//! Discovery reads what the nodes say and refuses only what does not decode (a missing or
//! misshapen property, [`super::Error::BadDomain`]); whether it makes sense (RAM free, pCPUs
//! there) is the configuration step's question (`vm::domains`). What we do not use is
//! recorded as [`Ignored`], for a warning each.
#![forbid(unsafe_code)]

use super::{Error, Module, Node, Walker, has_string, module_kind, prop_str, read_cells};
use core::fmt;

/// Most domain nodes one build reads; a tree with more is an error.
pub const MAX_DOMAINS: usize = 8;
/// Most ignored properties and nodes recorded; the rest are counted.
pub const MAX_IGNORED: usize = 16;

/// A `xen,domain` node under `/chosen`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Domain<'a> {
    /// The node's name as written, unit address included (`domU1`, `vm@1`).
    pub name: &'a str,
    /// `memory`: KiB of RAM (one cell, or two read as one 64-bit number, as Xen does).
    pub memory_kib: u64,
    /// `cpus`: how many vCPUs.
    pub cpus: u32,
}

/// A `xen,vcpu` child of a domain node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuNode<'a> {
    /// The domain it belongs to (an index into [`super::Platform::domains`]).
    pub domain: u8,
    /// The node's name.
    pub node: &'a str,
    /// `id`: the vCPU it is about.
    pub id: u32,
    /// `hard-affinity`: Xen's CPU list (`"2"`, `"0-3,5"`); `None` when absent (not pinned).
    pub hard_affinity: Option<&'a str>,
}

/// Why something in a domain node is not used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unused {
    /// A property neither we nor Xen's binding know.
    #[default]
    UnknownProperty,
    /// A property of Xen's binding we do not implement (`vpl011`, `direct-map`, ...).
    XenProperty,
    /// A child node that is no module or `xen,vcpu` node we use.
    UnknownNode,
    /// A child node of Xen's binding we do not implement (`multiboot,device-tree`, ...).
    XenNode,
    /// A domain node whose `status` is not "okay": the VM is not started.
    Disabled,
}

/// Something in a domain node that is not used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ignored<'a> {
    /// The domain node's name.
    pub domain: &'a str,
    /// The child node, when it is a child or a property of one.
    pub child: Option<&'a str>,
    /// The property's name; for a child node, its first `compatible` string.
    pub name: &'a str,
    pub why: Unused,
}

/// What a domain's property is, when the binding does not allow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Missing,
    /// This many bytes long.
    Bytes(usize),
    /// This value.
    Value(u32),
    /// An address and size that run past the end of the address space.
    PastEnd,
}

/// What the binding wants of a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// `#address-cells`, `#size-cells`: one cell, 1 or 2.
    OneOrTwoCells,
    /// `memory`: KiB in one cell or two.
    Kib,
    /// One cell, holding what the text says.
    OneCell(&'static str),
    /// A string.
    Text,
    /// `reg`: one address and one size in the domain's cells.
    Reg { address_cells: u32, size_cells: u32 },
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "is missing"),
            Self::Bytes(1) => write!(f, "is 1 byte"),
            Self::Bytes(n) => write!(f, "is {n} bytes"),
            Self::Value(v) => write!(f, "is {v}"),
            Self::PastEnd => write!(f, "runs past the end of the address space"),
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OneOrTwoCells => write!(f, "a xen,domain node needs it, one cell of 1 or 2, for its modules' reg"),
            Self::Kib => write!(f, "it must be the KiB of RAM, in one cell or two (a 64-bit number)"),
            Self::OneCell(what) => write!(f, "it must be one cell: {what}"),
            Self::Text => write!(f, "it must be a string"),
            Self::Reg { address_cells, size_cells } => write!(
                f,
                "it must be one address and size in the domain's #address-cells = <{address_cells}> and \
                 #size-cells = <{size_cells}> ({} bytes)",
                (address_cells + size_cells) * 4
            ),
        }
    }
}

/// Properties of a domain node that we read, or that any node may have.
const DOMAIN_PROPERTIES: [&str; 9] =
    ["compatible", "#address-cells", "#size-cells", "memory", "cpus", "status", "phandle", "linux,phandle", "name"];
/// Properties of a domain node in Xen's binding that we do not implement (besides any
/// `xen,...` one).
const XEN_DOMAIN_PROPERTIES: [&str; 17] = [
    "vpl011",
    "nr_spis",
    "direct-map",
    "domain-cpupool",
    "sve",
    "trap-unmapped-accesses",
    "max_grant_version",
    "max_grant_frames",
    "max_maptrack_frames",
    "passthrough",
    "v8r_el1_msa",
    "llc-colors",
    "capabilities",
    "#xen,static-mem-address-cells",
    "#xen,static-mem-size-cells",
    "#xen,static-heap-address-cells",
    "#xen,static-heap-size-cells",
];
#[cfg(test)]
pub mod fixture;

const MODULE_PROPERTIES: [&str; 5] = ["compatible", "reg", "bootargs", "phandle", "name"];
const VCPU_PROPERTIES: [&str; 5] = ["compatible", "id", "hard-affinity", "phandle", "name"];

/// The value of a property of one cell, or two when `two` (read as one 64-bit number).
fn number(node: &Node<'_>, name: &str, two: bool) -> Result<u64, Found> {
    let value = node.property(name).ok_or(Found::Missing)?.value;
    match value.len() {
        4 => read_cells(value, 1),
        8 if two => read_cells(value, 2),
        n => return Err(Found::Bytes(n)),
    }
    .ok_or(Found::Bytes(value.len()))
}

/// A one-cell property that must be 1 or 2.
fn cell_count(node: &Node<'_>, name: &str) -> Result<u32, Found> {
    match number(node, name, false)? as u32 {
        n @ 1..=2 => Ok(n),
        n => Err(Found::Value(n)),
    }
}

impl<'a> Walker<'a> {
    /// Records `ignored` for a warning, or counts it when the table is full.
    pub(super) fn ignore(&mut self, ignored: Ignored<'a>) {
        if self.p.ignored.push(ignored).is_err() {
            self.p.ignored_overflow += 1;
        }
    }

    /// Records the properties of `node` (of domain `domain`, child `child`) that are not in
    /// `known`: those of Xen's binding (`xen_known`, or named `xen,...`) as not
    /// implemented, the rest as unknown.
    fn ignore_others(
        &mut self,
        node: &Node<'a>,
        domain: &'a str,
        child: Option<&'a str>,
        known: &[&str],
        xen_known: &[&str],
    ) {
        for p in node.properties().filter(|p| !known.contains(&p.name)) {
            let xen = p.name.starts_with("xen,") || xen_known.contains(&p.name);
            let why = if xen { Unused::XenProperty } else { Unused::UnknownProperty };
            self.ignore(Ignored { domain, child, name: p.name, why });
        }
    }

    /// A `xen,domain` node: its cell counts, `memory` and `cpus` must decode.
    pub(super) fn visit_domain(&mut self, node: &Node<'a>) -> Result<(), Error<'a>> {
        let bad = |property, expected| {
            move |found| Error::BadDomain { domain: node.name, child: None, property, found, expected }
        };
        for cells in ["#address-cells", "#size-cells"] {
            cell_count(node, cells).map_err(bad(cells, Expected::OneOrTwoCells))?;
        }
        let memory_kib = number(node, "memory", true).map_err(bad("memory", Expected::Kib))?;
        let cpus = number(node, "cpus", false).map_err(bad("cpus", Expected::OneCell("the vCPU count")))? as u32;
        self.ignore_others(node, node.name, None, &DOMAIN_PROPERTIES, &XEN_DOMAIN_PROPERTIES);
        self.p
            .domains
            .push(Domain { name: node.name, memory_kib, cpus })
            .map_err(|_| Error::TooMany { what: "xen,domain nodes", limit: MAX_DOMAINS })
    }

    /// A child of the last domain node: a module, a `xen,vcpu` node, or something ignored.
    pub(super) fn visit_domain_child(&mut self, node: &Node<'a>, depth: usize) -> Result<(), Error<'a>> {
        let Some(index) = self.p.domains.len().checked_sub(1) else { return Ok(()) };
        let domain = self.p.domains[index].name;
        let bad = |property, expected| {
            move |found| Error::BadDomain { domain, child: Some(node.name), property, found, expected }
        };
        let compatible = |c| has_string(node, "compatible", c);
        if compatible("multiboot,module") {
            let bus = self.frames[depth - 1];
            let (address_cells, size_cells) = (bus.address_cells, bus.size_cells);
            let expected = Expected::Reg { address_cells, size_cells };
            let reg = node.property("reg").ok_or(Found::Missing).map_err(bad("reg", expected))?.value;
            if reg.len() != (address_cells + size_cells) as usize * 4 {
                return Err(bad("reg", expected)(Found::Bytes(reg.len())));
            }
            let base = read_cells(reg, address_cells).ok_or(bad("reg", expected)(Found::Bytes(reg.len())))?;
            let size = read_cells(&reg[address_cells as usize * 4..], size_cells)
                .ok_or(bad("reg", expected)(Found::Bytes(reg.len())))?;
            base.checked_add(size).ok_or(bad("reg", expected)(Found::PastEnd))?;
            let kind = module_kind(node);
            if kind == super::ModuleKind::Other {
                let name = first_compatible(node);
                let xen = name.starts_with("multiboot,") && name != "multiboot,module";
                let why = if xen { Unused::XenNode } else { Unused::UnknownNode };
                self.ignore(Ignored { domain, child: Some(node.name), name, why });
            }
            self.ignore_others(node, domain, Some(node.name), &MODULE_PROPERTIES, &[]);
            return self.add_module(Module {
                kind,
                region: super::Region { base, size },
                bootargs: prop_str(node, "bootargs"),
                node: node.name,
                domain: Some(index as u8),
            });
        }
        if compatible("xen,vcpu") {
            let id = number(node, "id", false).map_err(bad("id", Expected::OneCell("the vCPU index")))? as u32;
            let hard_affinity = match node.property("hard-affinity") {
                None => None,
                Some(p) => Some(
                    prop_str(node, "hard-affinity")
                        .ok_or(bad("hard-affinity", Expected::Text)(Found::Bytes(p.value.len())))?,
                ),
            };
            self.ignore_others(node, domain, Some(node.name), &VCPU_PROPERTIES, &[]);
            let vcpu = VcpuNode { domain: index as u8, node: node.name, id, hard_affinity };
            return self
                .p
                .vcpu_nodes
                .push(vcpu)
                .map_err(|_| Error::TooMany { what: "xen,vcpu nodes", limit: super::MAX_CPUS });
        }
        let name = first_compatible(node);
        let why = if name.starts_with("xen,") { Unused::XenNode } else { Unused::UnknownNode };
        self.ignore(Ignored { domain, child: Some(node.name), name, why });
        Ok(())
    }
}

/// The first string of `compatible` that is not the generic `multiboot,module`, else the
/// first; `""` without one.
fn first_compatible<'a>(node: &Node<'a>) -> &'a str {
    let Some(p) = node.property("compatible") else { return "" };
    let mut strings = p.value.split(|&b| b == 0).filter(|s| !s.is_empty()).filter_map(|s| core::str::from_utf8(s).ok());
    let first = strings.clone().next().unwrap_or("");
    strings.find(|&s| s != "multiboot,module").unwrap_or(first)
}
