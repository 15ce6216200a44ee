//! The virtual GIC CPU interface at EL2: list registers in and out, the hypervisor control
//! register, and a clean state for a vCPU that starts. On a GICv3 these are the ICH_*_EL2
//! system registers ([`v3`]); on a GICv2 the memory-mapped GICH block ([`v2`]). Both take
//! and give [`Lr`] values, which each encodes for its hardware.

pub(super) mod v2;
mod v3;

use super::gic;
use crate::hw::gic::{Lr, Version};
use crate::hw::gicv3::MAX_LRS;
use crate::util::FixedVec;

/// What the list registers and the control register hold since the last [`lrs_load`] on
/// this pCPU, so the next one writes only what changes (each access is a trip into QEMU's
/// GIC model under TCG, and there are several per exit with interrupt work).
#[derive(Debug, Clone, Copy, Default)]
pub struct Loaded {
    /// List registers 0..lrs may be non-zero; the rest are zero.
    lrs: usize,
    /// UIE may be set in ICH_HCR_EL2 / GICH_HCR.
    underflow: bool,
}

/// List registers this pCPU's virtual interface has (at most [`MAX_LRS`], which the vGIC
/// model fills).
pub fn lr_count() -> usize {
    match gic::version() {
        Version::V3 => v3::lr_count(),
        Version::V2 => v2::lr_count(),
    }
}

/// A vCPU starts here: empty list registers, no active priorities, the guest's virtual CPU
/// interface control and priority mask at reset, the virtual interface on.
pub fn lrs_reset(lr_count: usize) {
    match gic::version() {
        Version::V3 => v3::reset(lr_count),
        Version::V2 => v2::reset(lr_count),
    }
}

/// Turns the virtual interface off when no guest runs here.
pub fn lrs_disable(lr_count: usize) {
    match gic::version() {
        Version::V3 => v3::disable(lr_count),
        Version::V2 => v2::disable(lr_count),
    }
}

/// Loads the list registers for entry: `lrs` into the first ones, zero into those the last
/// load used beyond them; the control register only when UIE changes. (A guest cannot
/// write list registers, and one the hardware did not fill stays zero.)
pub fn lrs_load(lrs: &[Lr], lr_count: usize, underflow: bool, last: &mut Loaded) {
    match gic::version() {
        Version::V3 => v3::load(lrs, lr_count, underflow, last),
        Version::V2 => v2::load(lrs, lr_count, underflow, last),
    }
}

/// Reads back the first `count` list registers after an exit.
pub fn lrs_save(count: usize) -> FixedVec<Lr, MAX_LRS> {
    match gic::version() {
        Version::V3 => v3::save(count),
        Version::V2 => v2::save(count),
    }
}

/// Answers the maintenance interrupt (from its handler, after the vCPU loop has read the
/// list registers back): withdraws the underflow request and empties the list registers
/// that asked for an exit on EOI and were EOId. Both conditions keep the level-sensitive
/// maintenance interrupt asserted, and it would be pending again the moment it is EOId.
pub fn answer_maintenance() {
    match gic::version() {
        Version::V3 => v3::answer_maintenance(),
        Version::V2 => v2::answer_maintenance(),
    }
}
