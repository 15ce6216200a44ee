//! Fake vCPU switching: the context moves between a vCPU's saved copy and the fake
//! pCPU's registers; the EL2 physical timer and WFI trapping are flags there.

use super::vcpu::{Config, Timer, with_hw};
use crate::arch::{DebugRegs, TimerRegs, VcpuContext};

pub fn save_context(ctx: &mut VcpuContext) {
    with_hw(|hw| {
        ctx.el1 = hw.el1;
        ctx.fp = hw.fp;
        ctx.gic = hw.gic;
        ctx.timer = TimerRegs {
            cntv_ctl: hw.vtimer.ctl,
            cntv_cval: hw.vtimer.cval,
            cntp_ctl: hw.ptimer.ctl,
            cntp_cval: hw.ptimer.cval,
        };
        hw.vtimer = Timer::default();
        hw.ptimer = Timer::default();
        // All of the debug state if the vCPU owns the hardware (and it keeps it only while
        // something of it can fire), else its OS lock and double lock only (as the real save).
        ctx.debug = if hw.debug.owned {
            DebugRegs { owned: super::debug::active(&hw.debug), ..hw.debug }
        } else {
            DebugRegs { owned: false, oslk: hw.debug.oslk, osdlr: hw.debug.osdlr, ..ctx.debug }
        };
    });
}

pub fn restore_context(ctx: &VcpuContext) {
    with_hw(|hw| {
        hw.el1 = ctx.el1;
        hw.fp = ctx.fp;
        hw.gic = ctx.gic;
        hw.vtimer = Timer { ctl: ctx.timer.cntv_ctl, cval: ctx.timer.cntv_cval };
        hw.ptimer = Timer { ctl: ctx.timer.cntp_ctl, cval: ctx.timer.cntp_cval };
        // An owner gets its registers back and no trap; any other vCPU gets the trap and
        // nothing enabled, the last owner's registers staying behind (as the real restore).
        hw.debug = if ctx.debug.owned {
            ctx.debug
        } else {
            DebugRegs { owned: false, mdscr: 0, oslk: ctx.debug.oslk, osdlr: ctx.debug.osdlr, ..hw.debug }
        };
    });
}

pub fn switch_guest_config(vttbr: u64, vtcr: u64, vmpidr: u64, cntvoff: u64) {
    with_hw(|hw| hw.config = Some(Config { vttbr, vtcr, vmpidr, cntvoff }));
}

pub fn set_wfi_trap(trap: bool) {
    with_hw(|hw| hw.wfi_trap = trap);
}

pub fn hyp_timer_arm(at: u64) {
    with_hw(|hw| hw.hyp = Timer { ctl: 1, cval: at });
}

pub fn hyp_timer_arm_by(at: u64) {
    with_hw(|hw| {
        if hw.hyp.ctl & 1 == 0 || hw.hyp.cval > at {
            hw.hyp = Timer { ctl: 1, cval: at };
        }
    });
}

pub fn hyp_timer_cancel() {
    with_hw(|hw| hw.hyp = Timer::default());
}
