//! Register decode of the virtual distributor and redistributors (IHI 0069 12.9, 12.10).
//! Registers we do not implement, and accesses of a width the register does not allow, are
//! RAZ/WI.

use super::{Dist, INTID_COUNT, Irq, Kicks, Redistributor, SPI_COUNT};

/// Size of the distributor frame.
pub const GICD_SIZE: u64 = 0x1_0000;
/// RD_base + SGI_base frames of one redistributor.
pub const GICR_FRAME_SIZE: u64 = 0x2_0000;

const GICD_CTLR: u64 = 0x0;
const GICD_TYPER: u64 = 0x4;
const GICD_IIDR: u64 = 0x8;
const IGROUPR: u64 = 0x80;
const ISENABLER: u64 = 0x100;
const ICENABLER: u64 = 0x180;
const ISPENDR: u64 = 0x200;
const ICPENDR: u64 = 0x280;
const ISACTIVER: u64 = 0x300;
const ICACTIVER: u64 = 0x380;
const IPRIORITYR: u64 = 0x400;
const IPRIORITYR_END: u64 = 0x800;
const ICFGR: u64 = 0xc00;
const ICFGR_END: u64 = 0xd00;
const IROUTER: u64 = 0x6100;
const IROUTER_END: u64 = 0x6100 + 8 * 988;
const PIDR2: u64 = 0xffe8;
/// ArchRev 3: GICv3.
const PIDR2_GICV3: u64 = 0x3 << 4;
/// Arm as implementer.
const IIDR: u64 = 0x43b;

const GICR_CTLR: u64 = 0x0;
const GICR_IIDR: u64 = 0x4;
const GICR_TYPER: u64 = 0x8;
const GICR_WAKER: u64 = 0x14;
const SGI_BASE: u64 = 0x1_0000;

/// Which bit-array register an offset is, for the seven one-bit-per-interrupt registers.
#[derive(Clone, Copy)]
enum BitReg {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

fn bit_reg(offset: u64) -> Option<(BitReg, u64)> {
    let (kind, base) = match offset {
        0x80..0x100 => (BitReg::Group, IGROUPR),
        0x100..0x180 => (BitReg::SetEnable, ISENABLER),
        0x180..0x200 => (BitReg::ClearEnable, ICENABLER),
        0x200..0x280 => (BitReg::SetPending, ISPENDR),
        0x280..0x300 => (BitReg::ClearPending, ICPENDR),
        0x300..0x380 => (BitReg::SetActive, ISACTIVER),
        0x380..0x400 => (BitReg::ClearActive, ICACTIVER),
        _ => return None,
    };
    Some((kind, (offset - base) / 4))
}

fn bit_get(kind: BitReg, irq: &Irq) -> bool {
    match kind {
        BitReg::Group => irq.group1,
        BitReg::SetEnable | BitReg::ClearEnable => irq.enabled,
        BitReg::SetPending | BitReg::ClearPending => irq.pending || irq.line && !irq.edge,
        BitReg::SetActive | BitReg::ClearActive => irq.active,
    }
}

fn bit_set(kind: BitReg, irq: &mut Irq, one: bool) {
    match (kind, one) {
        (BitReg::Group, v) => irq.group1 = v,
        (BitReg::SetEnable, true) => irq.enabled = true,
        (BitReg::ClearEnable, true) => irq.enabled = false,
        (BitReg::SetPending, true) => irq.pending = true,
        (BitReg::ClearPending, true) => irq.pending = false,
        (BitReg::SetActive, true) => irq.active = true,
        (BitReg::ClearActive, true) => irq.active = false,
        _ => {}
    }
}

/// Reads a 32-bit bit-array register covering INTIDs `first..first + 32` through `irq`.
fn read_bits(kind: BitReg, irqs: &[Irq]) -> u64 {
    irqs.iter().enumerate().filter(|(_, irq)| bit_get(kind, irq)).fold(0, |acc, (i, _)| acc | 1 << i)
}

fn write_bits(kind: BitReg, irqs: &mut [Irq], value: u64) {
    for (i, irq) in irqs.iter_mut().enumerate() {
        bit_set(kind, irq, value & (1 << i) != 0);
    }
}

/// The indices into `Dist::spis` that distributor register `n` covers, for a register
/// with `per_reg` interrupts each (32 for bit arrays, 16 for ICFGR). The registers for
/// INTIDs below 32 are the private range, which the distributor leaves to the
/// redistributors under affinity routing; past the implemented SPIs there is nothing.
fn spi_range(n: usize, per_reg: usize) -> Option<core::ops::Range<usize>> {
    let first = n.checked_mul(per_reg)?;
    if !(32..INTID_COUNT).contains(&first) {
        return None;
    }
    Some(first - 32..(first - 32 + per_reg).min(SPI_COUNT))
}

/// Byte-per-interrupt registers (IPRIORITYR) read `size` bytes at byte index `first`.
fn read_bytes(get: impl Fn(usize) -> Option<u8>, first: usize, size: u8) -> u64 {
    (0..size as usize).fold(0, |acc, i| acc | (get(first + i).unwrap_or(0) as u64) << (8 * i))
}

fn cfg_read(irqs: &[Irq]) -> u64 {
    irqs.iter().enumerate().fold(0, |acc, (i, irq)| acc | if irq.edge { 0b10 << (2 * i) } else { 0 })
}

pub fn dist_read(s: &Dist, offset: u64, size: u8) -> u64 {
    let word = size == 4 && offset.is_multiple_of(4);
    match offset {
        GICD_CTLR if word => s.ctlr as u64,
        // ITLinesNumber, IDbits = 9 (10-bit INTIDs), no LPIs, no security extension.
        GICD_TYPER if word => ((INTID_COUNT as u64 / 32) - 1) | (9 << 19),
        GICD_IIDR if word => IIDR,
        0x80..0x400 if word => {
            let Some((kind, n)) = bit_reg(offset) else { return 0 };
            spi_range(n as usize, 32).map_or(0, |r| read_bits(kind, &s.spis[r]))
        }
        IPRIORITYR..IPRIORITYR_END if size == 1 || word => {
            let first = (offset - IPRIORITYR) as usize;
            read_bytes(|i| (i >= 32).then(|| s.spis.get(i - 32).map(|irq| irq.priority)).flatten(), first, size)
        }
        ICFGR..ICFGR_END if word => spi_range((offset - ICFGR) as usize / 4, 16).map_or(0, |r| cfg_read(&s.spis[r])),
        IROUTER..IROUTER_END if (size == 8 && offset.is_multiple_of(8)) || word => {
            let n = ((offset - IROUTER) / 8) as usize;
            let v = s.irouter.get(n).copied().unwrap_or(0);
            if size == 8 {
                v
            } else if offset.is_multiple_of(8) {
                v & 0xffff_ffff
            } else {
                v >> 32
            }
        }
        PIDR2 if word => PIDR2_GICV3,
        _ => 0,
    }
}

pub fn dist_write(s: &mut Dist, offset: u64, size: u8, value: u64) -> Kicks {
    let word = size == 4 && offset.is_multiple_of(4);
    let all = Kicks((1u64 << s.vcpu_count().min(63)) - 1);
    match offset {
        // Only EnableGrp1 (bit 1) is writable; ARE stays 1; DS reads as 1 (bit 6).
        GICD_CTLR if word => {
            s.ctlr = (1 << 4) | (1 << 6) | (value as u32 & 0b10);
            all
        }
        0x80..0x400 if word => {
            let Some((kind, n)) = bit_reg(offset) else { return Kicks::default() };
            match spi_range(n as usize, 32) {
                Some(r) => {
                    write_bits(kind, &mut s.spis[r], value);
                    all
                }
                None => Kicks::default(),
            }
        }
        IPRIORITYR..IPRIORITYR_END if size == 1 || word => {
            let first = (offset - IPRIORITYR) as usize;
            for i in 0..size as usize {
                if let Some(irq) = (first + i).checked_sub(32).and_then(|j| s.spis.get_mut(j)) {
                    irq.priority = (value >> (8 * i)) as u8;
                }
            }
            all
        }
        ICFGR..ICFGR_END if word => {
            if let Some(r) = spi_range((offset - ICFGR) as usize / 4, 16) {
                for (i, irq) in s.spis[r].iter_mut().enumerate() {
                    irq.edge = value & (0b10 << (2 * i)) != 0;
                }
            }
            Kicks::default()
        }
        IROUTER..IROUTER_END if (size == 8 && offset.is_multiple_of(8)) || word => {
            let n = ((offset - IROUTER) / 8) as usize;
            if let Some(r) = s.irouter.get_mut(n) {
                // Aff3 [39:32], IRM [31], Aff2..0 [23:0].
                let mask = 0xff_8000_0000 | 0xff_ffff;
                *r = match (size, offset % 8) {
                    (8, _) => value & mask,
                    (_, 0) => (*r & !0xffff_ffff) | (value & 0xffff_ffff & mask),
                    _ => (*r & 0xffff_ffff) | ((value << 32) & mask),
                };
            }
            all
        }
        _ => Kicks::default(),
    }
}

/// A read of vCPU `vcpu`'s redistributor frames at `off` (inside them).
pub fn redist_read(r: &Redistributor, vcpu: usize, mpidrs: &[u64], off: u64, size: u8) -> u64 {
    let word = size == 4 && off.is_multiple_of(4);
    match off {
        GICR_CTLR if word => 0,
        GICR_IIDR if word => IIDR,
        GICR_TYPER | 0xc if word || (size == 8 && off == GICR_TYPER) => {
            let m = mpidrs.get(vcpu).copied().unwrap_or(0);
            let aff = ((m >> 8) & 0xff00_0000) | (m & 0xff_ffff);
            let last = if vcpu + 1 == mpidrs.len() { 1 << 4 } else { 0 };
            let typer = (aff << 32) | ((vcpu as u64) << 8) | last;
            match (size, off) {
                (8, _) => typer,
                (_, GICR_TYPER) => typer & 0xffff_ffff,
                _ => typer >> 32,
            }
        }
        // ProcessorSleep and ChildrenAsleep together.
        GICR_WAKER if word && r.sleep => 0b110,
        GICR_WAKER if word => 0,
        PIDR2 if word => PIDR2_GICV3,
        o if o >= SGI_BASE => {
            let o = o - SGI_BASE;
            match o {
                0x80..0x400 if word => match bit_reg(o) {
                    Some((kind, 0)) => read_bits(kind, &r.private),
                    _ => 0,
                },
                0x400..0x420 if size == 1 || word => {
                    read_bytes(|i| r.private.get(i).map(|irq| irq.priority), (o - 0x400) as usize, size)
                }
                0xc00 if word => cfg_read(&r.private[..16]),
                0xc04 if word => cfg_read(&r.private[16..]),
                _ => 0,
            }
        }
        _ => 0,
    }
}

/// A write to a redistributor's frames at `off`; whether its vCPU must look at its list
/// registers again.
pub fn redist_write(r: &mut Redistributor, off: u64, size: u8, value: u64) -> bool {
    let mut changed = false;
    let word = size == 4 && off.is_multiple_of(4);
    match off {
        GICR_WAKER if word => r.sleep = value & 0b10 != 0,
        o if o >= SGI_BASE => {
            let o = o - SGI_BASE;
            match o {
                0x80..0x400 if word => {
                    if let Some((kind, 0)) = bit_reg(o) {
                        write_bits(kind, &mut r.private, value);
                        changed = true;
                    }
                }
                0x400..0x420 if size == 1 || word => {
                    let first = (o - 0x400) as usize;
                    for i in 0..size as usize {
                        if let Some(irq) = r.private.get_mut(first + i) {
                            irq.priority = (value >> (8 * i)) as u8;
                        }
                    }
                    changed = true;
                }
                // ICFGR0 (SGIs) is read-only: always edge. ICFGR1 configures the PPIs.
                0xc04 if word => {
                    for (i, irq) in r.private[16..].iter_mut().enumerate() {
                        irq.edge = value & (0b10 << (2 * i)) != 0;
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
    changed
}
