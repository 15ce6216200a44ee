//! Fake debug hardware: the pCPU's `Hw::debug` holds what the real registers would, with
//! `owned` standing for MDCR_EL2.TDA clear. A guest program's access to a TDA register
//! while its vCPU owns the hardware reads and writes `Hw::debug` directly, without an exit
//! (`Guest::mrs`/`msr`); before that, and for the OS lock registers always, it exits.

use super::vcpu::with_hw;
use crate::arch::DebugRegs;
use crate::hw::debug::{CLAIM_TAGS, Reg, mdscr, oslock};

/// What the debug hardware reads for `reg` (one of the TDA registers).
pub(crate) fn hw_read(d: &DebugRegs, reg: Reg) -> u64 {
    match reg {
        Reg::Bvr(n) => d.bvr[n as usize],
        Reg::Bcr(n) => d.bcr[n as usize],
        Reg::Wvr(n) => d.wvr[n as usize],
        Reg::Wcr(n) => d.wcr[n as usize],
        Reg::Mdscr => d.mdscr,
        Reg::Mdccint => d.mdccint,
        Reg::Oseccr => d.oseccr,
        Reg::Osdtrrx | Reg::DbgdtrRxTx => d.dtrrx,
        Reg::Osdtrtx => d.dtrtx,
        Reg::Dbgdtr => (d.dtrrx << 32) | (d.dtrtx & 0xffff_ffff),
        Reg::ClaimSet => CLAIM_TAGS,
        Reg::ClaimClr => d.claim,
        // Non-invasive and invasive debug allowed, as on a development board.
        Reg::AuthStatus => 0xaa,
        Reg::Mdccsr | Reg::Mdrar | Reg::Oslar | Reg::Oslsr | Reg::Osdlr | Reg::Dbgprcr => 0,
    }
}

/// A write of `value` to `reg` (one of the TDA registers) on the debug hardware.
pub(crate) fn hw_write(d: &mut DebugRegs, reg: Reg, value: u64) {
    match reg {
        Reg::Bvr(n) => d.bvr[n as usize] = value,
        Reg::Bcr(n) => d.bcr[n as usize] = value,
        Reg::Wvr(n) => d.wvr[n as usize] = value,
        Reg::Wcr(n) => d.wcr[n as usize] = value,
        Reg::Mdscr => d.mdscr = value,
        Reg::Mdccint => d.mdccint = value,
        Reg::Oseccr => d.oseccr = value,
        Reg::Osdtrrx => d.dtrrx = value,
        Reg::Osdtrtx | Reg::DbgdtrRxTx => d.dtrtx = value,
        Reg::Dbgdtr => (d.dtrrx, d.dtrtx) = (value >> 32, value & 0xffff_ffff),
        Reg::ClaimSet => d.claim |= value & CLAIM_TAGS,
        Reg::ClaimClr => d.claim &= !value,
        _ => {}
    }
}

/// As the real `debug::reset`: nothing fires (MDSCR_EL1 0), OS lock locked, double lock
/// clear, TDA set; the breakpoint and watchpoint registers keep what they held.
pub(crate) fn reset(d: &DebugRegs) -> DebugRegs {
    DebugRegs { owned: false, mdscr: 0, oslk: true, osdlr: 0, ..*d }
}

/// Whether something of a vCPU with this debug state can fire: it keeps the hardware.
pub(crate) fn active(d: &DebugRegs) -> bool {
    d.mdscr & (mdscr::MDE | mdscr::KDE | mdscr::SS) != 0
}

pub fn debug_owned() -> bool {
    with_hw(|hw| hw.debug.owned)
}

pub fn debug_take(r: &mut DebugRegs) {
    with_hw(|hw| {
        r.oslk = hw.debug.oslk;
        r.osdlr = hw.debug.osdlr;
        r.owned = true;
        hw.debug = *r;
    });
}

pub fn debug_os_read(reg: Reg) -> u64 {
    with_hw(|hw| match reg {
        Reg::Oslsr => oslock::OSLSR_OSLM | if hw.debug.oslk { oslock::OSLSR_OSLK } else { 0 },
        Reg::Osdlr => hw.debug.osdlr,
        _ => 0,
    })
}

pub fn debug_os_write(reg: Reg, value: u64) {
    with_hw(|hw| match reg {
        Reg::Oslar => hw.debug.oslk = value & oslock::OSLAR_OSLK != 0,
        Reg::Osdlr => hw.debug.osdlr = value & oslock::OSDLR_DLK,
        _ => {}
    });
}
