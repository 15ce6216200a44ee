//! The GICv2 front end of the vGIC model (IHI 0048B): the distributor's register decode,
//! GICD_SGIR, and the per-sender SGIs. The guest's CPU interface is the hardware's GICV,
//! mapped where its GICC should be; only the distributor is emulated.
//!
//! A GICv2 distributor banks the registers of INTIDs 0-31 per CPU interface (IHI 0048B
//! 4.1.4): they are the accessing vCPU's [`Redistributor`], whose GICv3 SGI_base frame has
//! the same registers at the same offsets. The bus asks [`classify`] which part an offset
//! is, takes that vCPU's lock for the banked part and `Vm::vgic` for the rest, and sends
//! the SGIs a GICD_SGIR write names after both are dropped (as for ICC_SGI1R_EL1).

use super::{Dist, INTID_COUNT, Kicks, Lr, Redistributor, SPI_COUNT, regs};
use crate::hw::gicv2;
use crate::hw::gicv3::{GICR_SGI_BASE, IIDR_ARM};

/// Distributor register offsets (IHI 0048B 4.1.2, Table 4-1), from `hw::gicv2::Distributor`.
macro_rules! gicd {
    ($field:ident) => {
        core::mem::offset_of!(gicv2::Distributor, $field) as u64
    };
}

const CTLR: u64 = gicd!(ctlr);
const TYPER: u64 = gicd!(typer);
const IIDR: u64 = gicd!(iidr);
const IGROUPR: u64 = gicd!(igroupr);
const ISENABLER: u64 = gicd!(isenabler);
const ICENABLER: u64 = gicd!(icenabler);
const ISPENDR: u64 = gicd!(ispendr);
const ICPENDR: u64 = gicd!(icpendr);
const ISACTIVER: u64 = gicd!(isactiver);
const ICACTIVER: u64 = gicd!(icactiver);
const IPRIORITYR: u64 = gicd!(ipriorityr);
const ITARGETSR: u64 = gicd!(itargetsr);
const ICFGR: u64 = gicd!(icfgr);
const SGIR: u64 = gicd!(sgir);
const CPENDSGIR: u64 = gicd!(cpendsgir);
const SPENDSGIR: u64 = gicd!(spendsgir);
const SGIR_END: u64 = SPENDSGIR + 16;
const PIDR2: u64 = gicd!(pidr2);
/// PIDR2.ArchRev [7:4] = 2: GICv2.
const PIDR2_GICV2: u64 = gicv2::PIDR2::ARCH_REV::GICV2.value as u64;
/// The banked ITARGETSR0-7: the SGIs' and PPIs' bytes.
const ITARGETSR_PRIVATE_END: u64 = ITARGETSR + gicv2::GICD_ITARGETSR_PRIVATE as u64 * 4;
/// The registers past the SPIs the model implements read as zero.
const ITARGETSR_SPI_END: u64 = ITARGETSR + INTID_COUNT as u64;
const ICFGR_END: u64 = ICFGR + INTID_COUNT as u64 / 4;

/// A GICv2 has at most 8 CPU interfaces (GICD_ITARGETSR has a bit for each).
pub const MAX_CPUS: usize = gicv2::MAX_CPU_INTERFACES;

/// The guest's distributor window: 64 KiB, as on QEMU's `virt` (registers in the first
/// 4 KiB, the rest RAZ/WI).
pub const GICD_WINDOW: u64 = 0x1_0000;
/// The guest's CPU interface: GICC's two 4 KiB pages (GICC_DIR in the second).
pub const GICC_SIZE: u64 = gicv2::GICC_SIZE;

/// Which part of the distributor an offset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicdAccess {
    /// A register banked per CPU interface (INTIDs 0-31, the SGI pending-source bytes):
    /// the accessing vCPU's [`Redistributor`] answers, through [`banked_read`] and
    /// [`banked_write`].
    Banked,
    /// GICD_SGIR: a write sends SGIs ([`sgir_targets`]).
    Sgir,
    /// Everything else: [`Dist::read`] and [`Dist::write`].
    Shared,
}

pub fn classify(offset: u64) -> GicdAccess {
    let first_reg = |base: u64| (base..base + 4).contains(&offset);
    if [IGROUPR, ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER, ICACTIVER].into_iter().any(first_reg)
        || (IPRIORITYR..IPRIORITYR + 32).contains(&offset)
        || (ITARGETSR..ITARGETSR_PRIVATE_END).contains(&offset)
        || (ICFGR..ICFGR + 8).contains(&offset)
        || (CPENDSGIR..SGIR_END).contains(&offset)
    {
        GicdAccess::Banked
    } else if (SGIR..SGIR + 4).contains(&offset) {
        GicdAccess::Sgir
    } else {
        GicdAccess::Shared
    }
}

/// Byte- or word-wide, naturally aligned: the accesses the byte-per-interrupt registers
/// take (IPRIORITYR, ITARGETSR, the SGI pending-source registers).
fn bytes_ok(offset: u64, size: u8) -> bool {
    size == 1 || (size == 4 && offset.is_multiple_of(4))
}

fn word(offset: u64, size: u8) -> bool {
    size == 4 && offset.is_multiple_of(4)
}

/// A read of vCPU `vcpu`'s banked registers (`r` is its redistributor).
pub fn banked_read(r: &Redistributor, vcpu: usize, offset: u64, size: u8) -> u64 {
    match offset {
        // Each byte is the reading CPU interface's own bit (IHI 0048B 4.3.12).
        ITARGETSR..ITARGETSR_PRIVATE_END if bytes_ok(offset, size) => {
            let me = if vcpu < MAX_CPUS { gicv2::banked_itargetsr(vcpu) as u8 } else { 0 };
            regs::read_bytes(|_| Some(me), 0, size)
        }
        CPENDSGIR..SGIR_END if bytes_ok(offset, size) => {
            let first = ((offset - CPENDSGIR) % 16) as usize;
            regs::read_bytes(|i| r.sgi_sources.get(i).copied(), first, size)
        }
        _ => regs::redist_read(r, vcpu, &[], GICR_SGI_BASE as u64 + offset, size),
    }
}

/// A write to vCPU `vcpu`'s banked registers; whether it must look at its list registers
/// again.
pub fn banked_write(r: &mut Redistributor, vcpu: usize, offset: u64, size: u8, value: u64) -> bool {
    let changed = match offset {
        // Read-only.
        ITARGETSR..ITARGETSR_PRIVATE_END => false,
        CPENDSGIR..SGIR_END if bytes_ok(offset, size) => {
            let set = offset >= SPENDSGIR;
            let first = ((offset - CPENDSGIR) % 16) as usize;
            for i in 0..size as usize {
                let bits = (value >> (8 * i)) as u8;
                let sgi = first + i;
                if set {
                    r.sgi_sources[sgi] |= bits;
                } else {
                    r.sgi_sources[sgi] &= !bits;
                }
                r.private[sgi].pending = r.sgi_sources[sgi] != 0;
            }
            true
        }
        // SGIs are made pending and cleared per sender, through the registers above: the
        // SGI bits of ISPENDR0 and ICPENDR0 ignore writes (IHI 0048B 4.3.7, 4.3.8).
        o if word(o, size) && (o == ISPENDR || o == ICPENDR) => {
            regs::redist_write(r, GICR_SGI_BASE as u64 + offset, size, value & !0xffff)
        }
        ISACTIVER if word(offset, size) => {
            // An SGI made active by a register write has no sender; take the writer's,
            // as KVM does.
            for sgi in (0..16).filter(|i| value & (1 << i) != 0) {
                r.sgi_active_source[sgi] = vcpu.min(7) as u8;
            }
            regs::redist_write(r, GICR_SGI_BASE as u64 + offset, size, value)
        }
        _ => regs::redist_write(r, GICR_SGI_BASE as u64 + offset, size, value),
    };
    r.recompute_busy();
    changed
}

/// A read of the registers not banked per CPU interface.
pub fn dist_read(d: &Dist, offset: u64, size: u8) -> u64 {
    match offset {
        CTLR if word(offset, size) => d.ctlr as u64 & 0b11,
        // ITLinesNumber, CPUNumber; no Security Extensions.
        TYPER if word(offset, size) => {
            use gicv2::GICD_TYPER::{CPU_NUMBER, IT_LINES_NUMBER};
            let lines = IT_LINES_NUMBER.val(INTID_COUNT as u32 / 32 - 1);
            (lines + CPU_NUMBER.val(d.vcpu_count().clamp(1, MAX_CPUS) as u32 - 1)).value as u64
        }
        IIDR if word(offset, size) => IIDR_ARM as u64,
        IGROUPR..ITARGETSR | ICFGR..ICFGR_END => regs::dist_read(d, offset, size),
        ITARGETSR_PRIVATE_END..ITARGETSR_SPI_END if bytes_ok(offset, size) => {
            let first = (offset - ITARGETSR) as usize - 32;
            regs::read_bytes(|i| d.itargets.get(i).copied(), first, size)
        }
        PIDR2 if word(offset, size) => PIDR2_GICV2,
        _ => 0,
    }
}

/// A write to the registers not banked per CPU interface; the vCPUs that must look at their
/// list registers again.
pub fn dist_write(d: &mut Dist, offset: u64, size: u8, value: u64) -> Kicks {
    let all = Kicks((1u64 << d.vcpu_count().min(63)) - 1);
    match offset {
        CTLR if word(offset, size) => {
            d.ctlr = value as u32 & 0b11;
            all
        }
        IGROUPR..ITARGETSR | ICFGR..ICFGR_END => regs::dist_write(d, offset, size, value),
        ITARGETSR_PRIVATE_END..ITARGETSR_SPI_END if bytes_ok(offset, size) => {
            // Bits for CPU interfaces the VM does not have read as zero.
            let present = ((1u32 << d.vcpu_count().min(MAX_CPUS)) - 1) as u8;
            let first = (offset - ITARGETSR) as usize - 32;
            for i in 0..size as usize {
                if let Some(t) = d.itargets.get_mut(first + i) {
                    *t = (value >> (8 * i)) as u8 & present;
                }
            }
            all
        }
        _ => Kicks::default(),
    }
}

/// A GICD_SGIR write `value` from vCPU `sender` of `vcpu_count` (IHI 0048B 4.3.15, decoded
/// by `hw::gicv2::Sgir`): the SGI and the vCPUs it goes to. The reserved TargetListFilter
/// 0b11 sends nothing.
pub fn sgir_targets(vcpu_count: usize, sender: usize, value: u64) -> (u32, Kicks) {
    match gicv2::Sgir::decode(value as u32) {
        Some(sgir) => (sgir.intid, Kicks(sgir.targets(sender, vcpu_count) as u64)),
        None => (0, Kicks::default()),
    }
}

/// Places SGI `intid` of `r` in a list register (it was chosen by `flush`: active, or
/// pending and deliverable). One sender at a time: the active one, else the lowest pending
/// one; if other senders' SGIs are still pending, the guest's EOI makes the vCPU exit so the
/// next can follow (KVM does the same: a list register holds one sender).
pub(super) fn place_sgi(r: &mut Redistributor, intid: u32) -> Lr {
    let i = intid as usize;
    r.busy |= 1 << intid;
    let irq = &mut r.private[i];
    let sources = &mut r.sgi_sources[i];
    let (source, state) = if irq.active {
        let s = r.sgi_active_source[i];
        let again = *sources & (1 << s) != 0 && irq.enabled;
        if again {
            *sources &= !(1 << s);
        }
        (s, Lr::STATE_ACTIVE | if again { Lr::STATE_PENDING } else { 0 })
    } else {
        let s = if *sources == 0 { 0 } else { sources.trailing_zeros() as u8 };
        *sources &= !(1 << s);
        (s, Lr::STATE_PENDING)
    };
    irq.in_lr = true;
    irq.pending = *sources != 0;
    let lr = Lr::new(intid, irq.priority, state).with_group1(irq.group1).with_source(source);
    if *sources != 0 { lr.with_eoi_exit() } else { lr }
}

/// Folds a list register holding SGI `lr.intid()` back into `r`.
pub(super) fn sync_sgi(r: &mut Redistributor, lr: Lr) {
    let i = lr.intid() as usize;
    r.busy |= 1 << i;
    let irq = &mut r.private[i];
    irq.in_lr = false;
    irq.active = lr.state() & Lr::STATE_ACTIVE != 0;
    if irq.active {
        r.sgi_active_source[i] = lr.source();
    }
    if lr.state() & Lr::STATE_PENDING != 0 {
        r.sgi_sources[i] |= 1 << lr.source();
    }
    irq.pending = r.sgi_sources[i] != 0;
}

const _: () = assert!(SPI_COUNT + 32 == INTID_COUNT);
