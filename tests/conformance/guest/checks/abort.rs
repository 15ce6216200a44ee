//! Exception entry for a synchronous external abort (Arm ARM D1.3, "Exception entry"; ESR_EL1
//! "ISS encoding for an exception from a Data Abort"): a load and a store to HOLE, where
//! QEMU virt has nothing (the platform bus window, empty) and an armvisor VM has nothing
//! either. Stage 1 maps it as Device memory, so the access reaches the bus and comes back
//! as an external abort, whoever answers it. Checked field by field: the vector (current EL
//! with SP_ELx, synchronous: VBAR + 0x200), ESR_EL1 (EC 0x25, IL 1, ISV 0, or 1 with the
//! right SAS/SRT/SF; FnV 0, CM 0, S1PTW 0, WnR, DFSC 0x10), FAR_EL1 = the address, ELR_EL1
//! = the access, SPSR_EL1 = the PSTATE it interrupted, and PSTATE in the handler (DAIF all
//! masked, SP_EL1, PAN kept (SCTLR_EL1.SPAN = 1), UAO 0, DIT kept, SSBS = DSSBS = 0).

use crate::cpu::cpu;
use crate::exc::{probe, slot};
use crate::report::{Verdict, note, want};
use crate::sys::{field, mrs};
use crate::{Ctx, Group, feat};
use core::sync::atomic::Ordering::Relaxed;

pub static GROUP: Group = Group { name: "abort", rows: &["abort-load", "abort-store"], run };

pub const HOLE: u64 = 0x0c00_0000;

unsafe extern "C" {
    fn abort_load(addr: u64, nzcv: u64) -> u64;
    fn abort_store(addr: u64, nzcv: u64, value: u64);
    fn abort_load_insn();
    fn abort_store_insn();
}

/// NZCV for the access: N and C set.
const NZCV: u64 = 0xa000_0000;
/// DAIF for the access: D, A, I masked, F not (bits 9-6).
const DAIF: u64 = 0x380;

fn run(ctx: &mut Ctx) {
    for store in [false, true] {
        let mut v = Verdict::new();
        check(&mut v, store);
        ctx.row(if store { "abort-store" } else { "abort-load" }, &v);
    }
}

fn check(v: &mut Verdict, store: bool) {
    let f = feat();
    // The PSTATE bits the interrupted state has besides NZCV, DAIF and M, read where they
    // exist.
    let pan = if f.pan { mrs!("s3_0_c4_c2_3") } else { 0 };
    let uao = if f.uao { mrs!("s3_0_c4_c2_4") } else { 0 };
    let dit = if f.dit { mrs!("s3_3_c4_c2_5") } else { 0 };
    let ssbs = if f.ssbs_reg { mrs!("s3_3_c4_c2_6") } else { 0 };
    let tco = if f.mte { mrs!("s3_3_c4_c2_7") } else { 0 };
    let want_spsr = NZCV | pan | uao | dit | ssbs | tco | DAIF | 0b0101;
    let old_daif = mrs!("daif");
    // SAFETY: DAIF for the access (FIQs are never signalled: there is no Group 0).
    unsafe { core::arch::asm!("msr daif, {}", in(reg) DAIF, options(nostack)) };
    let p = probe(|| {
        // SAFETY: an access to nothing; the probe takes the abort.
        unsafe {
            if store {
                abort_store(HOLE, NZCV, 0x1234);
            } else {
                abort_load(HOLE, NZCV);
            }
        }
    });
    unsafe { core::arch::asm!("msr daif, {}", in(reg) old_daif, options(nostack)) };
    if p.ok() {
        v.fail(format_args!("the {} at {HOLE:#x} completed: no abort", if store { "store" } else { "load" }));
        return;
    }
    let r = &cpu().fault;
    let g = |s: usize| r[s].load(Relaxed);
    let (esr, far, elr, spsr, vector) = (g(slot::ESR), g(slot::FAR), g(slot::ELR), g(slot::SPSR), g(slot::VECTOR));
    note!(v, "ESR {esr:#x} FAR {far:#x} SPSR {spsr:#x}");
    want!(v, vector == 4, "vector {vector} (want 4: current EL, SP_ELx, synchronous)");
    want!(v, field(esr, 26, 6) == 0x25, "EC {:#x} (want 0x25)", field(esr, 26, 6));
    want!(v, field(esr, 25, 1) == 1, "IL 0");
    let isv = field(esr, 24, 1);
    if isv == 1 {
        // Then the syndrome must describe the access: 64-bit (SAS 3), x0 or x2, SF.
        let srt = field(esr, 16, 5);
        want!(v, field(esr, 22, 2) == 3 && field(esr, 15, 1) == 1, "ISV 1 with SAS {} SF {}", field(esr, 22, 2), field(esr, 15, 1));
        want!(v, srt == if store { 2 } else { 0 }, "ISV 1 with SRT {srt}");
    }
    want!(v, field(esr, 10, 1) == 0, "FnV 1 (FAR not valid)");
    want!(v, field(esr, 8, 1) == 0, "CM 1");
    want!(v, field(esr, 7, 1) == 0, "S1PTW 1");
    want!(v, field(esr, 6, 1) == store as u64, "WnR {}", field(esr, 6, 1));
    want!(v, field(esr, 0, 6) == 0x10, "DFSC {:#x} (want 0x10, synchronous external abort)", field(esr, 0, 6));
    want!(v, far == HOLE, "FAR {far:#x} (want {HOLE:#x})");
    let insn = if store { abort_store_insn as *const () as usize } else { abort_load_insn as *const () as usize } as u64;
    want!(v, elr == insn, "ELR {elr:#x} (want the access, {insn:#x})");
    want!(v, spsr == want_spsr, "SPSR {spsr:#x} (want {want_spsr:#x})");
    let h_daif = g(slot::H_DAIF);
    want!(v, h_daif == 0x3c0, "DAIF in the handler {h_daif:#x} (want 0x3c0)");
    want!(v, g(slot::H_SPSEL) == 1, "SPSel {} in the handler", g(slot::H_SPSEL));
    want!(v, g(slot::H_PAN) == pan, "PAN {:#x} in the handler (want {pan:#x}: SPAN = 1 keeps it)", g(slot::H_PAN));
    want!(v, g(slot::H_UAO) == 0, "UAO set in the handler");
    want!(v, g(slot::H_DIT) == dit, "DIT {:#x} in the handler (want {dit:#x})", g(slot::H_DIT));
    want!(v, g(slot::H_SSBS) == 0, "SSBS set in the handler (SCTLR_EL1.DSSBS = 0)");
}
