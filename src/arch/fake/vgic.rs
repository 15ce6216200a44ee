//! The fake virtual GIC CPU interface: list registers held decoded ([`FakeLr`]), converted
//! from and to the core's list-register values at load and save.

use super::vcpu::{FakeLr, LR_COUNT, with_hw};
use crate::hw::gic::Lr;
use crate::util::FixedVec;

pub const MAX_LRS: usize = 16;

pub fn lr_count() -> usize {
    LR_COUNT
}

/// What the last load wrote (kept for the interface's shape; the fake writes them all).
#[derive(Debug, Clone, Copy, Default)]
pub struct Loaded {
    /// The fake writes every list register on each load.
    _all: (),
}

fn decode(lr: Lr) -> Option<FakeLr> {
    let state = lr.state();
    (state != 0 || lr.eoi_exit()).then_some(FakeLr {
        intid: lr.intid(),
        priority: lr.priority(),
        pending: state & Lr::STATE_PENDING != 0,
        active: state & Lr::STATE_ACTIVE != 0,
        eoi: lr.eoi_exit(),
        group1: lr.group1(),
        source: lr.source(),
        hw: lr.pintid(),
    })
}

fn encode(lr: Option<FakeLr>) -> Lr {
    let Some(l) = lr else { return Lr::default() };
    let state = (if l.pending { Lr::STATE_PENDING } else { 0 }) | (if l.active { Lr::STATE_ACTIVE } else { 0 });
    let lr = Lr::new(l.intid, l.priority, state).with_group1(l.group1).with_source(l.source);
    match (l.hw, l.eoi) {
        (Some(p), _) => lr.with_hw(p),
        (None, true) => lr.with_eoi_exit(),
        (None, false) => lr,
    }
}

pub fn lrs_reset(_lr_count: usize) {
    with_hw(|hw| {
        hw.lrs = [None; LR_COUNT];
        hw.vgic_enabled = true;
        hw.underflow = false;
    });
}

pub fn lrs_disable(_lr_count: usize) {
    with_hw(|hw| {
        hw.lrs = [None; LR_COUNT];
        hw.vgic_enabled = false;
        hw.underflow = false;
    });
}

pub fn lrs_load(lrs: &[Lr], _lr_count: usize, underflow: bool, _last: &mut Loaded) {
    with_hw(|hw| {
        for (i, slot) in hw.lrs.iter_mut().enumerate() {
            *slot = lrs.get(i).and_then(|&l| decode(l));
        }
        hw.underflow = underflow;
    });
}

pub fn lrs_save(count: usize) -> FixedVec<Lr, MAX_LRS> {
    let mut out = FixedVec::new();
    with_hw(|hw| {
        for slot in hw.lrs.iter().take(count) {
            let _ = out.push(encode(*slot));
        }
    });
    out
}

pub fn answer_maintenance() {
    with_hw(|hw| {
        hw.underflow = false;
        for slot in hw.lrs.iter_mut() {
            if slot.is_some_and(|l| l.eoi && !l.pending && !l.active) {
                *slot = None;
            }
        }
    });
}
