//! Register decode of the virtual distributor and redistributors (IHI 0069 12.9, 12.10).
//! Registers we do not implement, and accesses of a width the register does not allow, are
//! RAZ/WI.

use super::{Dist, INTID_COUNT, Irq, Kicks, Redistributor, SPI_COUNT};
use crate::hw::gicv3::{self, ICFGR_EDGE, typer_affinity};
use core::mem::offset_of;

/// The offset of a distributor register, from `hw::gicv3::Distributor`.
macro_rules! gicd {
    ($field:ident) => {
        offset_of!(gicv3::Distributor, $field) as u64
    };
}

/// The offset of a redistributor register in its frames, from `hw::gicv3::Redistributor`.
macro_rules! gicr {
    ($field:ident) => {
        offset_of!(gicv3::Redistributor, $field) as u64
    };
}

const GICD_CTLR: u64 = gicd!(ctlr);
const GICD_TYPER: u64 = gicd!(typer);
const GICD_IIDR: u64 = gicd!(iidr);
const IGROUPR: u64 = gicd!(igroupr);
const ISENABLER: u64 = gicd!(isenabler);
const ICENABLER: u64 = gicd!(icenabler);
const ISPENDR: u64 = gicd!(ispendr);
const ICPENDR: u64 = gicd!(icpendr);
const ISACTIVER: u64 = gicd!(isactiver);
const ICACTIVER: u64 = gicd!(icactiver);
const IPRIORITYR: u64 = gicd!(ipriorityr);
/// A priority byte for every INTID up to the spurious one: the 255 GICD_IPRIORITYR
/// registers and the reserved word after them (INTIDs 1020-1023), whose bytes, like those
/// of every INTID beyond the implemented SPIs, read as zero and ignore writes.
const IPRIORITYR_END: u64 = IPRIORITYR + gicv3::INTID_SPURIOUS as u64 + 1;
const ICFGR: u64 = gicd!(icfgr);
const ICFGR_END: u64 = gicd!(igrpmodr);
const IROUTER: u64 = gicd!(irouter);
const IROUTER_END: u64 = IROUTER + (size_of::<u64>() * gicv3::GICD_IROUTER_COUNT) as u64;
const GICD_PIDR2: u64 = gicd!(pidr2);
/// ArchRev 3: GICv3.
const PIDR2_GICV3: u64 = gicv3::PIDR2::ARCH_REV::GICV3.value as u64;
/// Arm as implementer.
const IIDR: u64 = gicv3::IIDR_ARM as u64;

const GICR_CTLR: u64 = gicr!(ctlr);
const GICR_IIDR: u64 = gicr!(iidr);
const GICR_TYPER: u64 = gicr!(typer);
/// GICR_TYPER's upper word, for 32-bit reads.
const GICR_TYPER_HI: u64 = GICR_TYPER + 4;
const GICR_WAKER: u64 = gicr!(waker);
const GICR_PIDR2: u64 = gicr!(pidr2);
const SGI_BASE: u64 = gicv3::GICR_SGI_BASE as u64;
/// The SGI_base frame's registers, at the offsets the distributor has for the same
/// registers (`hw::gicv3` checks that), from SGI_BASE.
const SGI_IPRIORITYR: u64 = gicr!(ipriorityr) - SGI_BASE;
/// A byte for each private INTID.
const SGI_IPRIORITYR_END: u64 = SGI_IPRIORITYR + gicv3::SPI_FIRST as u64;
const SGI_ICFGR0: u64 = gicr!(icfgr) - SGI_BASE;
const SGI_ICFGR1: u64 = SGI_ICFGR0 + 4;

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
        IGROUPR..ISENABLER => (BitReg::Group, IGROUPR),
        ISENABLER..ICENABLER => (BitReg::SetEnable, ISENABLER),
        ICENABLER..ISPENDR => (BitReg::ClearEnable, ICENABLER),
        ISPENDR..ICPENDR => (BitReg::SetPending, ISPENDR),
        ICPENDR..ISACTIVER => (BitReg::ClearPending, ICPENDR),
        ISACTIVER..ICACTIVER => (BitReg::SetActive, ISACTIVER),
        ICACTIVER..IPRIORITYR => (BitReg::ClearActive, ICACTIVER),
        _ => return None,
    };
    Some((kind, (offset - base) / 4))
}

/// Whether a read at `offset` (distributor, or a redistributor's SGI_base frame) is of the
/// pending or active registers, whose state for an interrupt in a list register lives in
/// that vCPU's hardware until it exits.
pub fn is_state_read(offset: u64) -> bool {
    (ISPENDR..IPRIORITYR).contains(&offset)
}

fn bit_get(kind: BitReg, irq: &Irq) -> bool {
    match kind {
        BitReg::Group => irq.group1,
        BitReg::SetEnable | BitReg::ClearEnable => irq.enabled,
        // In another vCPU's list register, the state it went in with (the LR itself is in
        // that vCPU's hardware; the read kicks it, so it exits and syncs soon).
        BitReg::SetPending | BitReg::ClearPending => {
            irq.pending || irq.line && !irq.edge || (irq.in_lr && irq.lr_pending && !irq.cleared_pending_in_lr)
        }
        BitReg::SetActive | BitReg::ClearActive => irq.active,
    }
}

fn bit_set(kind: BitReg, irq: &mut Irq, one: bool) {
    match (kind, one) {
        (BitReg::Group, v) => irq.group1 = v,
        (BitReg::SetEnable, true) => irq.enabled = true,
        (BitReg::ClearEnable, true) => irq.enabled = false,
        (BitReg::SetPending, true) => irq.pending = true,
        (BitReg::ClearPending, true) => {
            irq.pending = false;
            irq.cleared_pending_in_lr |= irq.in_lr;
        }
        (BitReg::SetActive, true) => irq.active = true,
        (BitReg::ClearActive, true) => {
            irq.active = false;
            irq.cleared_active_in_lr |= irq.in_lr;
        }
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

/// Byte-per-interrupt registers (IPRIORITYR, and on a GICv2 ITARGETSR and the SGI
/// pending-source registers) read `size` bytes at byte index `first`.
pub(super) fn read_bytes(get: impl Fn(usize) -> Option<u8>, first: usize, size: u8) -> u64 {
    (0..size as usize).fold(0, |acc, i| acc | (get(first + i).unwrap_or(0) as u64) << (8 * i))
}

fn cfg_read(irqs: &[Irq]) -> u64 {
    irqs.iter().enumerate().fold(0, |acc, (i, irq)| acc | if irq.edge { (ICFGR_EDGE as u64) << (2 * i) } else { 0 })
}

pub fn dist_read(s: &Dist, offset: u64, size: u8) -> u64 {
    let word = size == 4 && offset.is_multiple_of(4);
    match offset {
        GICD_CTLR if word => s.ctlr as u64,
        // ITLinesNumber, IDbits = 9 (10-bit INTIDs), no LPIs, no security extension.
        GICD_TYPER if word => {
            let lines = gicv3::GICD_TYPER::IT_LINES_NUMBER.val(INTID_COUNT as u32 / 32 - 1);
            (lines + gicv3::GICD_TYPER::ID_BITS.val(9)).value as u64
        }
        GICD_IIDR if word => IIDR,
        IGROUPR..IPRIORITYR if word => {
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
        GICD_PIDR2 if word => PIDR2_GICV3,
        _ => 0,
    }
}

pub fn dist_write(s: &mut Dist, offset: u64, size: u8, value: u64) -> Kicks {
    let word = size == 4 && offset.is_multiple_of(4);
    let all = Kicks((1u64 << s.vcpu_count().min(63)) - 1);
    match offset {
        // Only EnableGrp1 is writable; ARE stays 1; DS reads as 1.
        GICD_CTLR if word => {
            use gicv3::GICD_CTLR::{ARE, DS, ENABLE_GRP1};
            s.ctlr = ARE::SET.value | DS::SET.value | (value as u32 & ENABLE_GRP1::SET.value);
            all
        }
        IGROUPR..IPRIORITYR if word => {
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
                    irq.edge = value & ((ICFGR_EDGE as u64) << (2 * i)) != 0;
                }
            }
            Kicks::default()
        }
        IROUTER..IROUTER_END if (size == 8 && offset.is_multiple_of(8)) || word => {
            let n = ((offset - IROUTER) / 8) as usize;
            if let Some(r) = s.irouter.get_mut(n) {
                use gicv3::GICD_IROUTER::{AFF3, AFF210, IRM};
                let mask = AFF3::SET.value | IRM::SET.value | AFF210::SET.value;
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
        GICR_TYPER | GICR_TYPER_HI if word || (size == 8 && off == GICR_TYPER) => {
            use gicv3::GICR_TYPER::{AFFINITY, LAST, PROCESSOR_NUMBER};
            let aff = typer_affinity(mpidrs.get(vcpu).copied().unwrap_or(0));
            let last = if vcpu + 1 == mpidrs.len() { LAST::SET } else { LAST::CLEAR };
            let typer = (AFFINITY.val(aff) + PROCESSOR_NUMBER.val(vcpu as u64) + last).value;
            match (size, off) {
                (8, _) => typer,
                (_, GICR_TYPER) => typer & 0xffff_ffff,
                _ => typer >> 32,
            }
        }
        // ProcessorSleep and ChildrenAsleep together.
        GICR_WAKER if word && r.sleep => {
            use gicv3::GICR_WAKER::{CHILDREN_ASLEEP, PROCESSOR_SLEEP};
            (PROCESSOR_SLEEP::SET + CHILDREN_ASLEEP::SET).value as u64
        }
        GICR_WAKER if word => 0,
        GICR_PIDR2 if word => PIDR2_GICV3,
        o if o >= SGI_BASE => {
            let o = o - SGI_BASE;
            match o {
                IGROUPR..IPRIORITYR if word => match bit_reg(o) {
                    Some((kind, 0)) => read_bits(kind, &r.private),
                    _ => 0,
                },
                SGI_IPRIORITYR..SGI_IPRIORITYR_END if size == 1 || word => {
                    read_bytes(|i| r.private.get(i).map(|irq| irq.priority), (o - SGI_IPRIORITYR) as usize, size)
                }
                SGI_ICFGR0 if word => cfg_read(&r.private[..16]),
                SGI_ICFGR1 if word => cfg_read(&r.private[16..]),
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
        GICR_WAKER if word => r.sleep = gicv3::GICR_WAKER::PROCESSOR_SLEEP.is_set(value as u32),
        o if o >= SGI_BASE => {
            let o = o - SGI_BASE;
            match o {
                IGROUPR..IPRIORITYR if word => {
                    if let Some((kind, 0)) = bit_reg(o) {
                        write_bits(kind, &mut r.private, value);
                        changed = true;
                    }
                }
                SGI_IPRIORITYR..SGI_IPRIORITYR_END if size == 1 || word => {
                    let first = (o - SGI_IPRIORITYR) as usize;
                    for i in 0..size as usize {
                        if let Some(irq) = r.private.get_mut(first + i) {
                            irq.priority = (value >> (8 * i)) as u8;
                        }
                    }
                    changed = true;
                }
                // ICFGR0 (SGIs) is read-only: always edge. ICFGR1 configures the PPIs.
                SGI_ICFGR1 if word => {
                    for (i, irq) in r.private[16..].iter_mut().enumerate() {
                        irq.edge = value & ((ICFGR_EDGE as u64) << (2 * i)) != 0;
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
    changed
}
