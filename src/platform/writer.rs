//! A flattened device tree writer (DTSpec 0.4, chapter 5): nodes and properties in, a
//! version 17 blob out. Used to build test trees and, later, the guest's device tree.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_END: u32 = 9;

/// Builds a blob node by node; properties of a node must come before its children.
#[derive(Default)]
pub struct Writer {
    structure: Vec<u8>,
    strings: Vec<u8>,
    reservations: Vec<(u64, u64)>,
    depth: usize,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A `/memreserve/` entry.
    pub fn reserve(&mut self, address: u64, size: u64) -> &mut Self {
        self.reservations.push((address, size));
        self
    }

    fn token(&mut self, t: u32) {
        self.structure.extend_from_slice(&t.to_be_bytes());
    }

    fn pad(&mut self) {
        while !self.structure.len().is_multiple_of(4) {
            self.structure.push(0);
        }
    }

    /// Opens a node; the root is `""`.
    pub fn begin(&mut self, name: &str) -> &mut Self {
        self.token(FDT_BEGIN_NODE);
        self.structure.extend_from_slice(name.as_bytes());
        self.structure.push(0);
        self.pad();
        self.depth += 1;
        self
    }

    pub fn end(&mut self) -> &mut Self {
        assert!(self.depth > 0, "Writer::end without an open node");
        self.token(FDT_END_NODE);
        self.depth -= 1;
        self
    }

    fn string_offset(&mut self, name: &str) -> u32 {
        let mut at = 0;
        for s in self.strings.split(|&b| b == 0) {
            if s == name.as_bytes() {
                return at as u32;
            }
            at += s.len() + 1;
        }
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        offset
    }

    pub fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let name_offset = self.string_offset(name);
        self.token(FDT_PROP);
        self.token(value.len() as u32);
        self.token(name_offset);
        self.structure.extend_from_slice(value);
        self.pad();
        self
    }

    pub fn prop_empty(&mut self, name: &str) -> &mut Self {
        self.prop(name, &[])
    }

    pub fn prop_u32(&mut self, name: &str, value: u32) -> &mut Self {
        self.prop(name, &value.to_be_bytes())
    }

    /// A list of cells.
    pub fn prop_cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &bytes)
    }

    /// `reg`-style pairs of 64-bit values written as two cells each.
    pub fn prop_u64s(&mut self, name: &str, values: &[u64]) -> &mut Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        self.prop(name, &bytes)
    }

    pub fn prop_str(&mut self, name: &str, value: &str) -> &mut Self {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.prop(name, &bytes)
    }

    /// A string list such as `compatible`.
    pub fn prop_strs(&mut self, name: &str, values: &[&str]) -> &mut Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.bytes().chain(core::iter::once(0))).collect();
        self.prop(name, &bytes)
    }

    /// The finished blob. Panics if a node is still open (a bug in the caller).
    pub fn finish(&mut self) -> Vec<u8> {
        assert_eq!(self.depth, 0, "Writer::finish with open nodes");
        self.token(FDT_END);
        let header = 40usize;
        let rsvmap = header;
        let rsv_len = (self.reservations.len() + 1) * 16;
        let off_struct = rsvmap + rsv_len;
        let off_strings = off_struct + self.structure.len();
        let total = off_strings + self.strings.len();
        let mut out = Vec::with_capacity(total);
        for field in [
            super::check::FDT_MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            rsvmap as u32,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structure.len() as u32,
        ] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        for &(a, s) in self.reservations.iter().chain(core::iter::once(&(0, 0))) {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&s.to_be_bytes());
        }
        out.extend_from_slice(&self.structure);
        out.extend_from_slice(&self.strings);
        out
    }
}
