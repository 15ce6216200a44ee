//! Test trees with domain nodes, for the host tests of discovery and of the VM
//! configurations built from them: nodes as plain data, so that a test can drop or replace
//! one property of an otherwise good tree.

use crate::platform::writer::Writer;
use alloc::string::String;
use alloc::vec::Vec;

/// Where the fixture board's one RAM bank is, and its size: 2 GiB at 1 GiB.
pub const RAM_BASE: u64 = 0x4000_0000;
pub const RAM_SIZE: u64 = 2 << 30;
/// Bytes of every fixture module.
pub const MODULE_SIZE: u64 = 16 << 20;

/// A device-tree node: its name, properties in order, children.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub name: String,
    pub props: Vec<(String, Vec<u8>)>,
    pub children: Vec<Node>,
}

impl Node {
    pub fn new(name: &str) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    /// Sets property `name`: replaced where it is, or added last.
    pub fn set(mut self, name: &str, value: Vec<u8>) -> Self {
        match self.props.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.props.push((name.into(), value)),
        }
        self
    }

    pub fn unset(mut self, name: &str) -> Self {
        self.props.retain(|(n, _)| n != name);
        self
    }

    pub fn child(mut self, child: Node) -> Self {
        self.children.push(child);
        self
    }

    fn write(&self, w: &mut Writer) {
        w.begin(&self.name);
        for (name, value) in &self.props {
            w.prop(name, value);
        }
        for c in &self.children {
            c.write(w);
        }
        w.end();
    }
}

pub fn cells(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// A NUL-terminated string.
pub fn string(s: &str) -> Vec<u8> {
    strings(&[s])
}

/// A string list such as `compatible`.
pub fn strings(list: &[&str]) -> Vec<u8> {
    list.iter().flat_map(|s| s.bytes().chain([0])).collect()
}

/// A `xen,domain` node with two address and two size cells, `memory` (KiB, two cells) and
/// `cpus`.
pub fn domain(name: &str, kib: u64, cpus: u32) -> Node {
    Node::new(name)
        .set("compatible", string("xen,domain"))
        .set("#address-cells", cells(&[2]))
        .set("#size-cells", cells(&[2]))
        .set("memory", cells(&[(kib >> 32) as u32, kib as u32]))
        .set("cpus", cells(&[cpus]))
}

/// `module@BASE`: `compatible` and "multiboot,module", [`MODULE_SIZE`] bytes at `base` in
/// two address and two size cells.
pub fn module(compatible: &str, base: u64) -> Node {
    Node::new(&alloc::format!("module@{base:x}"))
        .set("compatible", strings(&[compatible, "multiboot,module"]))
        .set("reg", [base, MODULE_SIZE].iter().flat_map(|v| v.to_be_bytes()).collect())
}

/// A kernel module with bootargs `console=ttyAMA0 NAME` at `base`.
pub fn kernel(base: u64, name: &str) -> Node {
    module("multiboot,kernel", base).set("bootargs", string(&alloc::format!("console=ttyAMA0 {name}")))
}

pub fn ramdisk(base: u64) -> Node {
    module("multiboot,ramdisk", base)
}

pub fn disk(base: u64) -> Node {
    module("armvisor,disk", base)
}

/// `vcpu@ID`, a `xen,vcpu` node, with a `hard-affinity` if given.
pub fn vcpu(id: u32, affinity: Option<&str>) -> Node {
    let node = Node::new(&alloc::format!("vcpu@{id}")).set("compatible", string("xen,vcpu")).set("id", cells(&[id]));
    match affinity {
        Some(a) => node.set("hard-affinity", string(a)),
        None => node,
    }
}

/// A board: the RAM bank, `cpus` CPUs started by PSCI, a GICv3, and `/chosen` with `chosen`
/// as its children.
pub fn tree(cpus: u32, chosen: &[Node]) -> Vec<u8> {
    let mut w = Writer::new();
    w.begin("").prop_u32("#address-cells", 2).prop_u32("#size-cells", 2).prop_str("model", "domains");
    w.begin("chosen");
    for n in chosen {
        n.write(&mut w);
    }
    w.end();
    w.begin("memory@40000000").prop_str("device_type", "memory").prop_u64s("reg", &[RAM_BASE, RAM_SIZE]).end();
    w.begin("psci").prop_strs("compatible", &["arm,psci-1.0"]).prop_str("method", "smc").end();
    w.begin("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
    for i in 0..cpus {
        w.begin(&alloc::format!("cpu@{i}")).prop_str("device_type", "cpu").prop_cells("reg", &[i]);
        w.prop_str("enable-method", "psci").end();
    }
    w.end();
    w.begin("intc@8000000").prop_strs("compatible", &["arm,gic-v3"]).prop_empty("interrupt-controller");
    w.prop_u64s("reg", &[0x800_0000, 0x1_0000, 0x80a_0000, 0xf6_0000]).end();
    w.end();
    w.finish()
}

/// The tree of two VMs, `a` and `b`, of 512 MiB and 2 vCPUs each: `a` with a kernel,
/// ramdisk and disk, `b` with a kernel, its vCPUs pinned to pCPUs 3 and 2; four CPUs.
pub fn two_vms() -> Vec<u8> {
    tree(
        4,
        &[
            domain("a", 512 << 10, 2)
                .child(kernel(0x4800_0000, "a"))
                .child(ramdisk(0x4900_0000))
                .child(disk(0x4a00_0000)),
            domain("b", 512 << 10, 2)
                .child(kernel(0x5000_0000, "b"))
                .child(vcpu(1, Some("2")))
                .child(vcpu(0, Some("3"))),
        ],
    )
}
