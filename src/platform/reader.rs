//! A small reader over a validated flattened device tree: nodes, their properties and
//! children, and the memory reservation map.
//!
//! We read the blob ourselves rather than with a crate: `fdt` 0.2.0-alpha3 and
//! `flat_device_tree` 3.1.1 both panic on single-byte corruptions the host sweep makes, and
//! the latter hides nodes after a NOP token (libfdt's `fdt_nop_node`/`fdt_nop_property`
//! write them, as QEMU's `arm_load_dtb` does); docs/design.md has the cases. A DTB must
//! never be able to panic the hypervisor. Every access here goes through `get`, so even an
//! unvalidated blob can only end an iteration early.
#![forbid(unsafe_code)]

use super::check::{self, FdtDamage};

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;

fn be32(buf: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(buf.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

fn be64(buf: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_be_bytes(buf.get(off..off.checked_add(8)?)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A validated blob.
#[derive(Clone, Copy)]
pub struct Fdt<'a> {
    blob: &'a [u8],
    structure: &'a [u8],
    strings: &'a [u8],
}

impl<'a> Fdt<'a> {
    /// Validates `blob` ([`check::validate`]) and opens it.
    pub fn new(blob: &'a [u8]) -> Result<Self, FdtDamage> {
        check::validate(blob)?;
        let field = |off| be32(blob, off).unwrap_or(0) as usize;
        let total = field(4);
        let (off_struct, off_strings, size_strings) = (field(8), field(12), field(32));
        let size_struct = if field(20) >= 17 { field(36) } else { total - off_struct };
        Ok(Self {
            blob: &blob[..total],
            structure: &blob[off_struct..off_struct + size_struct],
            strings: &blob[off_strings..off_strings + size_strings],
        })
    }

    pub fn total_size(&self) -> usize {
        self.blob.len()
    }

    pub fn root(&self) -> Node<'a> {
        // The validator guarantees the structure block starts (after NOPs) with the root.
        let mut off = 0;
        while be32(self.structure, off) == Some(FDT_NOP) {
            off += 4;
        }
        self.node_at(off).unwrap_or(Node { fdt: *self, name: "", body: self.structure.len() })
    }

    /// The node whose FDT_BEGIN_NODE token is at `off`.
    fn node_at(&self, off: usize) -> Option<Node<'a>> {
        if be32(self.structure, off)? != FDT_BEGIN_NODE {
            return None;
        }
        let rest = self.structure.get(off + 4..)?;
        let len = rest.iter().position(|&b| b == 0)?;
        let name = core::str::from_utf8(&rest[..len]).ok()?;
        Some(Node { fdt: *self, name, body: off + 4 + align4(len + 1) })
    }

    /// A node by absolute path of full node names (`/chosen`, `/soc/serial@7e201000`).
    pub fn find(&self, path: &str) -> Option<Node<'a>> {
        let mut node = self.root();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            node = node.children().find(|c| c.name == part)?;
        }
        Some(node)
    }

    /// The `/memreserve/` entries as (address, size).
    pub fn reservations(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let blob = self.blob;
        let start = be32(blob, 16).unwrap_or(0) as usize;
        (0..)
            .map(move |i| (be64(blob, start + 16 * i), be64(blob, start + 16 * i + 8)))
            .map_while(|(a, s)| Some((a?, s?)))
            .take_while(|&(a, s)| a != 0 || s != 0)
    }
}

#[derive(Clone, Copy)]
pub struct Node<'a> {
    fdt: Fdt<'a>,
    /// Full name with unit address; `""` for the root.
    pub name: &'a str,
    /// Offset of the first token after the node's name.
    body: usize,
}

#[derive(Clone, Copy, Debug)]
pub struct Property<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

impl<'a> Node<'a> {
    fn skip_nops(&self, mut off: usize) -> usize {
        while be32(self.fdt.structure, off) == Some(FDT_NOP) {
            off += 4;
        }
        off
    }

    /// The property at `off`, and the offset after it.
    fn property_at(&self, off: usize) -> Option<(Property<'a>, usize)> {
        let st = self.fdt.structure;
        if be32(st, off)? != FDT_PROP {
            return None;
        }
        let len = be32(st, off + 4)? as usize;
        let name_off = be32(st, off + 8)? as usize;
        let value = st.get(off + 12..(off + 12).checked_add(len)?)?;
        let rest = self.fdt.strings.get(name_off..)?;
        let name = core::str::from_utf8(&rest[..rest.iter().position(|&b| b == 0)?]).ok()?;
        Some((Property { name, value }, off + 12 + align4(len)))
    }

    pub fn properties(&self) -> impl Iterator<Item = Property<'a>> + 'a {
        let node = *self;
        let mut off = self.body;
        core::iter::from_fn(move || {
            let (p, next) = node.property_at(node.skip_nops(off))?;
            off = next;
            Some(p)
        })
    }

    pub fn property(&self, name: &str) -> Option<Property<'a>> {
        self.properties().find(|p| p.name == name)
    }

    /// Offset just past the FDT_END_NODE closing the node whose body starts at `off`.
    fn skip_body(&self, mut off: usize) -> Option<usize> {
        let st = self.fdt.structure;
        let mut depth = 1usize;
        loop {
            match be32(st, off)? {
                FDT_BEGIN_NODE => {
                    let rest = st.get(off + 4..)?;
                    off += 4 + align4(rest.iter().position(|&b| b == 0)? + 1);
                    depth += 1;
                }
                FDT_END_NODE => {
                    off += 4;
                    depth -= 1;
                    if depth == 0 {
                        return Some(off);
                    }
                }
                FDT_PROP => off += 12 + align4(be32(st, off + 4)? as usize),
                FDT_NOP => off += 4,
                _ => return None,
            }
        }
    }

    pub fn children(&self) -> impl Iterator<Item = Node<'a>> + 'a {
        let node = *self;
        let mut off = self.body;
        while let Some((_, next)) = node.property_at(node.skip_nops(off)) {
            off = next;
        }
        let mut done = false;
        core::iter::from_fn(move || {
            if done {
                return None;
            }
            let child = node.fdt.node_at(node.skip_nops(off));
            match child {
                Some(c) => match c.skip_body(c.body) {
                    Some(next) => off = next,
                    None => done = true,
                },
                None => done = true,
            }
            child
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::writer::Writer;
    use super::*;

    #[test]
    fn walks_nodes_properties_and_nops() {
        let mut w = Writer::new();
        w.reserve(0x1000, 0x2000);
        w.begin("").prop_u32("a", 1);
        w.begin("x@1").prop_str("s", "v").begin("deep").end().end();
        w.begin("y").end();
        w.end();
        let mut blob = w.finish();
        let fdt = Fdt::new(&blob).unwrap();
        let names: Vec<_> = fdt.root().children().map(|n| n.name).collect();
        assert_eq!(names, ["x@1", "y"]);
        assert_eq!(fdt.find("/x@1").unwrap().property("s").unwrap().value, b"v\0");
        assert_eq!(fdt.find("/x@1/deep").unwrap().name, "deep");
        assert!(fdt.find("/z").is_none());
        assert_eq!(fdt.reservations().collect::<Vec<_>>(), [(0x1000, 0x2000)]);

        // Replace property "a" of the root with NOPs, as libfdt's fdt_nop_property does.
        let off_struct = u32::from_be_bytes(blob[8..12].try_into().unwrap()) as usize;
        let prop = off_struct + 8;
        for i in 0..4 {
            blob[prop + 4 * i..prop + 4 * i + 4].copy_from_slice(&FDT_NOP.to_be_bytes());
        }
        let fdt = Fdt::new(&blob).unwrap();
        assert!(fdt.root().property("a").is_none());
        assert_eq!(fdt.root().children().count(), 2);
    }
}
