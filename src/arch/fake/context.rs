//! Fake vCPU switching: the context moves between a vCPU's saved copy and the fake
//! pCPU's registers; the EL2 physical timer and WFI trapping are flags there.

use super::vcpu::{Config, Timer, with_hw};
use crate::arch::{TimerRegs, VcpuContext};

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
    });
}

pub fn restore_context(ctx: &VcpuContext) {
    with_hw(|hw| {
        hw.el1 = ctx.el1;
        hw.fp = ctx.fp;
        hw.gic = ctx.gic;
        hw.vtimer = Timer { ctl: ctx.timer.cntv_ctl, cval: ctx.timer.cntv_cval };
        hw.ptimer = Timer { ctl: ctx.timer.cntp_ctl, cval: ctx.timer.cntp_cval };
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
