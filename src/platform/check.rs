//! Structural validation of a flattened device tree before any parser looks at it.
//!
//! Every blob is walked here first: header fields inside the buffer, every token, name,
//! property length, string offset and the nesting depth. `reader` then trusts that shape
//! (and still bounds-checks every access); a blob that fails yields an [`FdtDamage`] saying
//! what and where.
#![forbid(unsafe_code)]

use core::fmt;

pub const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Size of the version 17 header.
pub const HEADER_SIZE: usize = 40;
/// Deepest node nesting accepted (real trees use 4 or 5 levels).
pub const MAX_DEPTH: usize = 16;
/// Largest blob accepted: a sanity bound for a pointer handed to us in x0.
pub const MAX_SIZE: usize = 2 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdtDamage {
    BadMagic(u32),
    /// The header claims more bytes than there are, or fewer than a header.
    BadTotalSize(u32),
    UnsupportedVersion(u32),
    /// A header offset or size points outside the blob, or is misaligned.
    BadBlock(&'static str),
    /// Structure block problem at this offset into the structure block.
    BadStructure(&'static str, usize),
}

impl fmt::Display for FdtDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "bad magic {m:#010x} (want {FDT_MAGIC:#010x})"),
            Self::BadTotalSize(s) => write!(f, "bad totalsize {s}"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported version {v} (need 16 or 17)"),
            Self::BadBlock(what) => write!(f, "header field out of bounds: {what}"),
            Self::BadStructure(what, off) => write!(f, "structure block at +{off:#x}: {what}"),
        }
    }
}

fn be32(buf: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(buf.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

/// The blob's `totalsize` after checking the magic; lets a caller that has only a pointer
/// learn how many bytes to look at. Bounded by [`MAX_SIZE`].
pub fn total_size(header: &[u8]) -> Result<usize, FdtDamage> {
    let magic = be32(header, 0).ok_or(FdtDamage::BadTotalSize(0))?;
    if magic != FDT_MAGIC {
        return Err(FdtDamage::BadMagic(magic));
    }
    let size = be32(header, 4).ok_or(FdtDamage::BadTotalSize(0))?;
    if (size as usize) < HEADER_SIZE || size as usize > MAX_SIZE {
        return Err(FdtDamage::BadTotalSize(size));
    }
    Ok(size as usize)
}

/// A NUL-terminated, non-empty-or-empty UTF-8 string starting at `off`: its length without NUL.
fn c_string(buf: &[u8], off: usize) -> Option<usize> {
    let rest = buf.get(off..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&rest[..len]).ok()?;
    Some(len)
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Checks the whole blob. On success the `fdt` crate may parse it.
pub fn validate(blob: &[u8]) -> Result<(), FdtDamage> {
    let total = total_size(blob)?;
    if total > blob.len() {
        return Err(FdtDamage::BadTotalSize(total as u32));
    }
    let blob = &blob[..total];
    let field = |off| be32(blob, off).unwrap_or(0) as usize;
    let version = field(20) as u32;
    let last_compatible = field(24) as u32;
    if version < 16 || last_compatible > 17 {
        return Err(FdtDamage::UnsupportedVersion(version));
    }
    let (off_struct, off_strings, off_rsvmap) = (field(8), field(12), field(16));
    let size_strings = field(32);
    let size_struct = if version >= 17 { field(36) } else { total.saturating_sub(off_struct) };
    let in_blob = |off: usize, size: usize| off.checked_add(size).is_some_and(|end| end <= total);
    if off_struct % 4 != 0 || !in_blob(off_struct, size_struct) || off_struct < HEADER_SIZE {
        return Err(FdtDamage::BadBlock("structure block"));
    }
    if !in_blob(off_strings, size_strings) || off_strings < HEADER_SIZE {
        return Err(FdtDamage::BadBlock("strings block"));
    }
    if off_rsvmap % 8 != 0 || off_rsvmap < HEADER_SIZE {
        return Err(FdtDamage::BadBlock("memory reservation block"));
    }
    // The reservation map ends with an all-zero entry that must lie inside the blob.
    let mut entry = off_rsvmap;
    loop {
        let Some(bytes) = blob.get(entry..entry + 16) else {
            return Err(FdtDamage::BadBlock("memory reservation block not terminated"));
        };
        if bytes.iter().all(|&b| b == 0) {
            break;
        }
        entry += 16;
    }
    check_structure(&blob[off_struct..off_struct + size_struct], &blob[off_strings..off_strings + size_strings])
}

fn check_structure(st: &[u8], strings: &[u8]) -> Result<(), FdtDamage> {
    let bad = |what, off| Err(FdtDamage::BadStructure(what, off));
    let mut off = 0;
    let mut depth = 0usize;
    let mut seen_root = false;
    // Per open node: has a child node begun (properties must come before children)?
    let mut children_started = [false; MAX_DEPTH + 1];
    loop {
        let Some(token) = be32(st, off) else {
            return bad("ends without FDT_END", off);
        };
        let at = off;
        off += 4;
        match token {
            FDT_BEGIN_NODE => {
                if depth == 0 && seen_root {
                    return bad("second root node", at);
                }
                if depth >= MAX_DEPTH {
                    return bad("nodes nested too deep", at);
                }
                let Some(len) = c_string(st, off) else {
                    return bad("node name not a terminated UTF-8 string", at);
                };
                if depth == 0 && len != 0 {
                    return bad("root node has a name", at);
                }
                if depth > 0 && len == 0 {
                    return bad("node without a name", at);
                }
                if depth > 0 {
                    children_started[depth] = true;
                }
                off += align4(len + 1);
                depth += 1;
                children_started[depth] = false;
                seen_root = true;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return bad("FDT_END_NODE without a node", at);
                }
                depth -= 1;
            }
            FDT_PROP => {
                if depth == 0 {
                    return bad("property outside a node", at);
                }
                if children_started[depth] {
                    return bad("property after a child node", at);
                }
                let (Some(len), Some(name_off)) = (be32(st, off), be32(st, off + 4)) else {
                    return bad("truncated property header", at);
                };
                let (len, name_off) = (len as usize, name_off as usize);
                off += 8;
                if len > st.len() || off + len > st.len() {
                    return bad("property value past the structure block", at);
                }
                let Some(name_len) = c_string(strings, name_off) else {
                    return bad("property name not a terminated UTF-8 string", at);
                };
                let name = &strings[name_off..name_off + name_len];
                let is_cells = matches!(name, b"#address-cells" | b"#size-cells" | b"#interrupt-cells");
                if is_cells && len != 4 {
                    return bad("#*-cells property is not one cell", at);
                }
                off += align4(len);
            }
            FDT_NOP => {}
            FDT_END => {
                if depth != 0 || !seen_root {
                    return bad("FDT_END inside a node or before the root", at);
                }
                return Ok(());
            }
            _ => return bad("unknown token", at),
        }
        if off > st.len() {
            return bad("token past the structure block", at);
        }
    }
}
