//! Where and how a guest takes an exception the hypervisor injects: the vector offset and
//! the PSTATE of EL1 on entry, as the hardware would set them (Arm ARM D1.3.2, "Exception
//! entry", and the PSTATE field descriptions; KVM's `enter_exception64` does the same).
//! [`sync_entry`] is pure and host-tested; [`inject_sync`] applies it through the arch
//! interface.
#![forbid(unsafe_code)]

/// PSTATE / SPSR bits (`hw::el2::pstate`), under the name callers know them by here.
pub use crate::hw::el2::pstate;
use crate::hw::el2::sctlr_el1::{DSSBS, SPAN};

/// A synchronous exception taken to EL1h from the state `old` (the interrupted PSTATE, which
/// becomes SPSR_EL1): the offset into VBAR_EL1 and the new PSTATE.
///
/// The offset names where the exception came from: EL1 with SP_EL0 0x000, EL1 with SP_EL1
/// 0x200, EL0 in AArch64 0x400, EL0 in AArch32 0x600. The new PSTATE is EL1h with D, A, I
/// and F masked; PAN kept, and set when SCTLR_EL1.SPAN is 0 (only where FEAT_PAN is);
/// SSBS from SCTLR_EL1.DSSBS; DIT kept; everything else (SS, IL, UAO, BTYPE, the flags)
/// cleared.
pub fn sync_entry(old: u64, sctlr_el1: u64, has_pan: bool) -> (u64, u64) {
    let offset = if old & pstate::NRW != 0 {
        0x600 // a guest's EL1 is AArch64, so an AArch32 state is EL0
    } else {
        match old & pstate::M {
            pstate::EL0T => 0x400,
            pstate::EL1T => 0x000,
            _ => 0x200,
        }
    };
    // `old` is in SPSR_EL2's layout, where an AArch32 state also keeps PAN at bit 22 and
    // DIT at bit 24 (AArch32's own CPSR has DIT at 21, but that is not what we hold).
    let mut new = pstate::EL1H | pstate::DAIF | (old & (pstate::PAN | pstate::DIT));
    if has_pan && sctlr_el1 & SPAN == 0 {
        new |= pstate::PAN;
    }
    if sctlr_el1 & DSSBS != 0 {
        new |= pstate::SSBS;
    }
    (offset, new)
}

/// Makes the guest on this pCPU take a synchronous exception to EL1 as if the hardware had
/// raised it: ELR_EL1/SPSR_EL1 get the interrupted PC and PSTATE, ESR_EL1/FAR_EL1 the
/// syndrome, and the guest continues at the vector for where it was, in the PSTATE the
/// hardware would give it ([`sync_entry`]).
pub fn inject_sync(regs: &mut crate::arch::GuestRegs, esr: u64, far: Option<u64>) {
    let (vbar, sctlr) = crate::arch::el1_vector_state();
    crate::arch::set_el1_exception(regs.pc, regs.pstate, esr, far);
    let (offset, pstate) = sync_entry(regs.pstate, sctlr, crate::arch::has_pan());
    // VBAR_EL1[10:0] are RES0: the hardware uses bits [63:11].
    regs.pc = (vbar & !0x7ff) + offset;
    regs.pstate = pstate;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SCTLR_EL1 with SPAN set and DSSBS clear: entry changes neither PAN nor SSBS.
    const SCTLR: u64 = crate::hw::el2::sctlr_el1::MMU_OFF | SPAN;

    #[test]
    fn vector_offset_names_where_it_came_from() {
        assert_eq!(sync_entry(pstate::EL1T, SCTLR, true).0, 0x000, "EL1t");
        assert_eq!(sync_entry(pstate::EL1H, SCTLR, true).0, 0x200, "EL1h");
        assert_eq!(sync_entry(0, SCTLR, true).0, 0x400, "EL0, AArch64");
        assert_eq!(sync_entry(pstate::NRW, SCTLR, true).0, 0x600, "EL0, AArch32 (usr)");
        assert_eq!(
            sync_entry(pstate::EL1H | pstate::DAIF | (0xf << 28), SCTLR, true).0,
            0x200,
            "masks and flags do not matter"
        );
    }

    #[test]
    fn new_state_is_el1h_masked_and_clears_the_rest() {
        let old = pstate::EL1T | (0xf << 28) | (1 << 21) | (1 << 20) | (1 << 23) | (0b11 << 10);
        // N, Z, C, V; SS (21); IL (20); UAO (23); BTYPE (11:10): none survive.
        assert_eq!(sync_entry(old, SCTLR, true).1, pstate::EL1H | pstate::DAIF);
    }

    #[test]
    fn pan_kept_and_set_unless_span() {
        let (_, new) = sync_entry(pstate::EL1H | pstate::PAN, SCTLR, true);
        assert_eq!(new & pstate::PAN, pstate::PAN, "kept");
        let (_, new) = sync_entry(0, SCTLR & !SPAN, true);
        assert_eq!(new & pstate::PAN, pstate::PAN, "set: SPAN is 0");
        let (_, new) = sync_entry(0, SCTLR, true);
        assert_eq!(new & pstate::PAN, 0, "SPAN is 1: not set");
        let (_, new) = sync_entry(0, SCTLR & !SPAN, false);
        assert_eq!(new & pstate::PAN, 0, "no FEAT_PAN: never set");
    }

    #[test]
    fn ssbs_from_dssbs_and_dit_kept() {
        assert_eq!(sync_entry(pstate::SSBS, SCTLR, true).1 & pstate::SSBS, 0, "DSSBS 0 clears it");
        assert_eq!(sync_entry(0, SCTLR | DSSBS, true).1 & pstate::SSBS, pstate::SSBS, "DSSBS 1 sets it");
        assert_eq!(sync_entry(pstate::DIT, SCTLR, true).1 & pstate::DIT, pstate::DIT, "DIT kept");
        assert_eq!(
            sync_entry(pstate::NRW | pstate::DIT, SCTLR, true).1 & pstate::DIT,
            pstate::DIT,
            "AArch32 state's DIT kept"
        );
        assert_eq!(
            sync_entry(pstate::NRW | (1 << 21), SCTLR, true).1 & pstate::DIT,
            0,
            "AArch32 SS (bit 21) is not DIT"
        );
    }
}
