//! The GICv2 virtual interface control registers (GICH, IHI 0048B 5.3): this pCPU's banked
//! view at the address the device tree gives. Same contract as the GICv3 side (`v3`).

use super::Loaded;
use crate::arch::aarch64::gic::hyp_interface;
use crate::hw::gic::Lr;
use crate::hw::gicv2::{GICH_HCR, GICH_VTR, decode_lr, encode_lr};
use crate::hw::gicv3::MAX_LRS;
use crate::util::FixedVec;
use tock_registers::interfaces::{Readable, Writeable};

/// GICH_VTR.ListRegs + 1, at most the model's [`MAX_LRS`] (a GIC-400 has 4).
pub fn lr_count() -> usize {
    hyp_interface().map_or(0, |h| (h.vtr.read(GICH_VTR::LIST_REGS) as usize + 1).min(MAX_LRS))
}

fn hcr(underflow: bool) -> u32 {
    (GICH_HCR::EN::SET + if underflow { GICH_HCR::UIE::SET } else { GICH_HCR::UIE::CLEAR }).value
}

pub fn reset(lr_count: usize) {
    let Some(h) = hyp_interface() else { return };
    for lr in h.lr.iter().take(lr_count) {
        lr.set(0);
    }
    h.vmcr.set(0);
    h.apr.set(0);
    h.hcr.set(hcr(false));
}

pub fn disable(lr_count: usize) {
    let Some(h) = hyp_interface() else { return };
    for lr in h.lr.iter().take(lr_count) {
        lr.set(0);
    }
    h.hcr.set(0);
}

pub fn answer_maintenance() {
    let Some(h) = hyp_interface() else { return };
    h.hcr.set(h.hcr.get() & !GICH_HCR::UIE::SET.value);
    for lr in h.lr.iter().take(lr_count()) {
        let l = decode_lr(lr.get());
        if l.state() == Lr::STATE_INVALID && l.eoi_exit() {
            lr.set(0);
        }
    }
}

pub fn load(lrs: &[Lr], lr_count: usize, underflow: bool, last: &mut Loaded) {
    let Some(h) = hyp_interface() else { return };
    for i in 0..lrs.len().max(last.lrs).min(lr_count) {
        h.lr[i].set(lrs.get(i).map_or(0, |&l| encode_lr(l)));
    }
    if underflow || last.underflow {
        h.hcr.set(hcr(underflow));
    }
    *last = Loaded { lrs: lrs.len(), underflow };
}

pub fn save(count: usize) -> FixedVec<Lr, MAX_LRS> {
    let mut out = FixedVec::new();
    if let Some(h) = hyp_interface() {
        for lr in h.lr.iter().take(count.min(MAX_LRS)) {
            let _ = out.push(decode_lr(lr.get()));
        }
    }
    out
}

/// The GICv2 virtual CPU interface state outside the list registers: GICH_VMCR and the
/// active priorities (GICH_APR), for a vCPU switch.
pub fn save_cpu_regs() -> (u32, u32) {
    hyp_interface().map_or((0, 0), |h| (h.vmcr.get(), h.apr.get()))
}

pub fn restore_cpu_regs(vmcr: u32, apr: u32) {
    if let Some(h) = hyp_interface() {
        h.vmcr.set(vmcr);
        h.apr.set(apr);
    }
}
