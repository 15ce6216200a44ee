//! The GICv3 virtual CPU interface at EL2 (ICH_*_EL2, IHI 0069 12.4): list registers in and
//! out, the hypervisor control register, and a clean state for a vCPU that starts.

use super::Loaded;
use crate::hw::gicv3::{ICH_HCR, ICH_VTR, Lr, MAX_LRS, decode_lr, encode_lr};
use crate::util::FixedVec;
use core::arch::asm;

/// ICH_VTR_EL2.ListRegs + 1.
pub fn lr_count() -> usize {
    let vtr: u64;
    // SAFETY: reading an ID-like EL2 register.
    unsafe { asm!("mrs {}, ich_vtr_el2", out(reg) vtr, options(nomem, nostack)) };
    (ICH_VTR::LIST_REGS.read(vtr) as usize + 1).min(MAX_LRS)
}

fn write_lr(index: usize, value: u64) {
    // SAFETY: writes one list register of this pCPU's virtual CPU interface; `index` is
    // below lr_count() (callers stay within it) and each arm names a real register.
    unsafe {
        match index {
            0 => asm!("msr ich_lr0_el2, {}", in(reg) value, options(nostack)),
            1 => asm!("msr ich_lr1_el2, {}", in(reg) value, options(nostack)),
            2 => asm!("msr ich_lr2_el2, {}", in(reg) value, options(nostack)),
            3 => asm!("msr ich_lr3_el2, {}", in(reg) value, options(nostack)),
            4 => asm!("msr ich_lr4_el2, {}", in(reg) value, options(nostack)),
            5 => asm!("msr ich_lr5_el2, {}", in(reg) value, options(nostack)),
            6 => asm!("msr ich_lr6_el2, {}", in(reg) value, options(nostack)),
            7 => asm!("msr ich_lr7_el2, {}", in(reg) value, options(nostack)),
            8 => asm!("msr ich_lr8_el2, {}", in(reg) value, options(nostack)),
            9 => asm!("msr ich_lr9_el2, {}", in(reg) value, options(nostack)),
            10 => asm!("msr ich_lr10_el2, {}", in(reg) value, options(nostack)),
            11 => asm!("msr ich_lr11_el2, {}", in(reg) value, options(nostack)),
            12 => asm!("msr ich_lr12_el2, {}", in(reg) value, options(nostack)),
            13 => asm!("msr ich_lr13_el2, {}", in(reg) value, options(nostack)),
            14 => asm!("msr ich_lr14_el2, {}", in(reg) value, options(nostack)),
            15 => asm!("msr ich_lr15_el2, {}", in(reg) value, options(nostack)),
            _ => {}
        }
    }
}

fn read_lr(index: usize) -> u64 {
    let v: u64;
    // SAFETY: reads one list register of this pCPU's virtual CPU interface.
    unsafe {
        match index {
            0 => asm!("mrs {}, ich_lr0_el2", out(reg) v, options(nostack)),
            1 => asm!("mrs {}, ich_lr1_el2", out(reg) v, options(nostack)),
            2 => asm!("mrs {}, ich_lr2_el2", out(reg) v, options(nostack)),
            3 => asm!("mrs {}, ich_lr3_el2", out(reg) v, options(nostack)),
            4 => asm!("mrs {}, ich_lr4_el2", out(reg) v, options(nostack)),
            5 => asm!("mrs {}, ich_lr5_el2", out(reg) v, options(nostack)),
            6 => asm!("mrs {}, ich_lr6_el2", out(reg) v, options(nostack)),
            7 => asm!("mrs {}, ich_lr7_el2", out(reg) v, options(nostack)),
            8 => asm!("mrs {}, ich_lr8_el2", out(reg) v, options(nostack)),
            9 => asm!("mrs {}, ich_lr9_el2", out(reg) v, options(nostack)),
            10 => asm!("mrs {}, ich_lr10_el2", out(reg) v, options(nostack)),
            11 => asm!("mrs {}, ich_lr11_el2", out(reg) v, options(nostack)),
            12 => asm!("mrs {}, ich_lr12_el2", out(reg) v, options(nostack)),
            13 => asm!("mrs {}, ich_lr13_el2", out(reg) v, options(nostack)),
            14 => asm!("mrs {}, ich_lr14_el2", out(reg) v, options(nostack)),
            15 => asm!("mrs {}, ich_lr15_el2", out(reg) v, options(nostack)),
            _ => v = 0,
        }
    }
    v
}

/// ICH_HCR_EL2.En and UIE (a maintenance interrupt when at most one LR holds an
/// interrupt).
const ICH_HCR_EN: u64 = ICH_HCR::EN::SET.value;
const ICH_HCR_UIE: u64 = ICH_HCR::UIE::SET.value;

fn write_hcr(value: u64) {
    // SAFETY: this pCPU's virtual CPU interface control.
    unsafe { asm!("msr ich_hcr_el2, {}", in(reg) value, options(nostack)) };
}

/// A vCPU starts: empty list registers, no active priorities, the guest's ICV control and
/// priority mask at reset, the virtual interface on.
pub fn reset(lr_count: usize) {
    for i in 0..lr_count {
        write_lr(i, 0);
    }
    // SAFETY: this pCPU's virtual CPU interface state, reset for a new vCPU: every
    // active-priority register the CPU implements (the upper ones only with 6 or 7 bits of
    // preemption; the others are UNDEFINED), so no priority of the last VM stays active.
    unsafe {
        asm!("msr ich_vmcr_el2, xzr", "msr ich_ap1r0_el2, xzr", "msr ich_ap0r0_el2, xzr", options(nostack));
        // ICC_SRE_EL1 as every guest has it: system registers on, no bypass (SRE, DFB, DIB).
        // Its EL1 accesses trap (ICC_SRE_EL2.Enable = 0) where the GIC lets them; where
        // Enable is RAO/WI, whatever the last guest wrote does not stay.
        asm!("msr icc_sre_el1, {}", in(reg) 0b111u64, options(nostack));
        let n = crate::arch::aarch64::context::apr_count();
        if n >= 2 {
            asm!("msr ich_ap0r1_el2, xzr", "msr ich_ap1r1_el2, xzr", options(nostack));
        }
        if n >= 4 {
            asm!(
                "msr ich_ap0r2_el2, xzr",
                "msr ich_ap1r2_el2, xzr",
                "msr ich_ap0r3_el2, xzr",
                "msr ich_ap1r3_el2, xzr",
                options(nostack)
            );
        }
    }
    write_hcr(ICH_HCR_EN);
}

/// Turns the virtual interface off when no guest runs here.
pub fn disable(lr_count: usize) {
    for i in 0..lr_count {
        write_lr(i, 0);
    }
    write_hcr(0);
}

/// Answers the maintenance interrupt (from its handler, after the vCPU loop has read the
/// list registers back): withdraws the underflow request and empties the list registers
/// that asked for an exit on EOI and were EOId. Both conditions keep the level-sensitive
/// maintenance interrupt asserted, and it would be pending again the moment it is EOId.
pub fn answer_maintenance() {
    let hcr: u64;
    // SAFETY: a read-modify-write of this pCPU's ICH_HCR_EL2, clearing only UIE.
    unsafe { asm!("mrs {}, ich_hcr_el2", out(reg) hcr, options(nostack)) };
    write_hcr(hcr & !ICH_HCR_UIE);
    for i in 0..lr_count() {
        let lr = decode_lr(read_lr(i));
        if lr.state() == Lr::STATE_INVALID && lr.eoi_exit() {
            write_lr(i, 0);
        }
    }
}

/// Loads the list registers for entry: `lrs` into the first ones, zero into those the last
/// load used beyond them; ICH_HCR_EL2 only when UIE changes. (A guest cannot write list
/// registers, and one the hardware did not fill stays zero.)
pub fn load(lrs: &[Lr], lr_count: usize, underflow: bool, last: &mut Loaded) {
    for i in 0..lrs.len().max(last.lrs).min(lr_count) {
        write_lr(i, lrs.get(i).map_or(0, |&l| encode_lr(l)));
    }
    if underflow || last.underflow {
        write_hcr(ICH_HCR_EN | if underflow { ICH_HCR_UIE } else { 0 });
    }
    *last = Loaded { lrs: lrs.len(), underflow };
}

/// Reads back the first `count` list registers after an exit.
pub fn save(count: usize) -> FixedVec<Lr, MAX_LRS> {
    let mut out = FixedVec::new();
    for i in 0..count.min(MAX_LRS) {
        let _ = out.push(decode_lr(read_lr(i)));
    }
    out
}
