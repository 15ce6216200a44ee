//! The few facts the guest takes from its device tree (devicetree spec 0.4, "Flattened
//! Devicetree Format"): its RAM (the first /memory node), the PSCI node's method and
//! compatible, /chosen/bootargs, the number of /cpus/cpu@ nodes and the GIC's version (the interrupt
//! controller's compatible). Everything else is QEMU
//! virt's layout, which is also every armvisor VM's.

const FDT_MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

#[derive(Clone, Copy)]
pub struct Str {
    pub buf: [u8; 128],
    pub len: usize,
}

impl Str {
    const fn new() -> Self {
        Self { buf: [0; 128], len: 0 }
    }
    fn set(&mut self, b: &[u8]) {
        self.len = b.len().min(self.buf.len());
        self.buf[..self.len].copy_from_slice(&b[..self.len]);
    }
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

#[derive(Clone, Copy)]
pub struct Facts {
    pub ram_base: u64,
    pub ram_size: u64,
    pub cpus: usize,
    /// /psci method, "hvc" or "smc".
    pub psci_method: Str,
    /// /psci compatible, its strings joined by ','.
    pub psci_compat: Str,
    pub bootargs: Str,
    /// The GIC the tree's interrupt controller is: 3 ("arm,gic-v3"), 2 ("arm,cortex-a15-gic",
    /// "arm,gic-400", "arm,cortex-a9-gic"), 0 if neither.
    pub gic: u8,
}

impl Facts {
    pub const fn new() -> Self {
        Self { ram_base: 0, ram_size: 0, cpus: 0, psci_method: Str::new(), psci_compat: Str::new(), bootargs: Str::new(), gic: 0 }
    }
}

fn be32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn cells(b: &[u8], n: u32) -> u64 {
    (0..n as usize).fold(0, |v, i| (v << 32) | be32(b, 4 * i) as u64)
}

fn cstr(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// Reads the facts from the tree at `addr`, or `None` if there is no tree there.
pub fn parse(addr: usize) -> Option<Facts> {
    if addr == 0 || addr % 8 != 0 {
        return None;
    }
    // SAFETY: the header is in RAM the loader handed over.
    let head = unsafe { core::slice::from_raw_parts(addr as *const u8, 40) };
    if be32(head, 0) != FDT_MAGIC {
        return None;
    }
    let total = be32(head, 4) as usize;
    if !(40..=(2 << 20)).contains(&total) {
        return None;
    }
    // SAFETY: totalsize bytes of tree, as its header says.
    let t = unsafe { core::slice::from_raw_parts(addr as *const u8, total) };
    let structs = be32(t, 8) as usize;
    let strings = be32(t, 12) as usize;
    let mut f = Facts::new();
    let (mut addr_cells, mut size_cells) = (2u32, 1u32);
    // The path as the names of the nodes at each depth that matter here.
    #[derive(Clone, Copy, PartialEq)]
    enum Node {
        Root,
        Memory,
        Psci,
        Chosen,
        Cpus,
        Other,
    }
    let mut stack = [Node::Other; 16];
    let mut depth = 0usize;
    let mut seen_memory = false;
    let mut off = structs;
    loop {
        let token = be32(t, off);
        off += 4;
        match token {
            BEGIN_NODE => {
                let name = cstr(&t[off.min(total)..]);
                off += (name.len() + 1 + 3) & !3;
                let parent = if depth == 0 { None } else { Some(stack[depth - 1]) };
                let node = match (parent, name) {
                    (None, _) => Node::Root,
                    (Some(Node::Root), n) if n == b"memory" || n.starts_with(b"memory@") => Node::Memory,
                    (Some(Node::Root), b"psci") => Node::Psci,
                    (Some(Node::Root), b"chosen") => Node::Chosen,
                    (Some(Node::Root), b"cpus") => Node::Cpus,
                    (Some(Node::Cpus), n) if n.starts_with(b"cpu@") => {
                        f.cpus += 1;
                        Node::Other
                    }
                    _ => Node::Other,
                };
                if depth < stack.len() {
                    stack[depth] = node;
                }
                depth += 1;
            }
            END_NODE => {
                if depth == 0 {
                    return None;
                }
                depth -= 1;
            }
            PROP => {
                let len = be32(t, off) as usize;
                let name_off = be32(t, off + 4) as usize;
                off += 8;
                let value = t.get(off..off + len)?;
                off += (len + 3) & !3;
                let name = cstr(t.get(strings + name_off..)?);
                let node = if depth == 0 { Node::Other } else { stack[depth - 1] };
                match (node, name) {
                    (Node::Root, b"#address-cells") => addr_cells = be32(value, 0),
                    (Node::Root, b"#size-cells") => size_cells = be32(value, 0),
                    (Node::Memory, b"reg") if !seen_memory => {
                        seen_memory = true;
                        f.ram_base = cells(value, addr_cells);
                        f.ram_size = cells(&value[(4 * addr_cells as usize).min(value.len())..], size_cells);
                    }
                    (Node::Psci, b"method") => f.psci_method.set(cstr(value)),
                    (Node::Psci, b"compatible") => {
                        let mut joined = [0u8; 128];
                        let n = value.len().min(128);
                        joined[..n].copy_from_slice(&value[..n]);
                        for c in joined[..n].iter_mut() {
                            if *c == 0 {
                                *c = b',';
                            }
                        }
                        let n = if n > 0 && joined[n - 1] == b',' { n - 1 } else { n };
                        f.psci_compat.set(&joined[..n]);
                    }
                    (Node::Chosen, b"bootargs") => f.bootargs.set(cstr(value)),
                    (_, b"compatible") if f.gic == 0 => {
                        for c in value.split(|&b| b == 0) {
                            match c {
                                b"arm,gic-v3" => f.gic = 3,
                                b"arm,cortex-a15-gic" | b"arm,gic-400" | b"arm,cortex-a9-gic" => f.gic = 2,
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            NOP => {}
            END => return Some(f),
            _ => return None,
        }
        if off >= total {
            return None;
        }
    }
}
