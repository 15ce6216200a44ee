//! Decoding the load or store that caused a data abort when the syndrome does not describe
//! it (ESR ISV = 0): the single-register forms of LDR/STR with a writeback (pre- and
//! post-index), unscaled (LDUR/STUR), unsigned-offset and register-offset addressing (Arm ARM
//! C4.1.66, "Loads and Stores"). Pairs, exclusives, SIMD&FP and everything else are `None`:
//! the guest gets an abort.
#![forbid(unsafe_code)]

use super::exit::Access;

/// A decoded single-register load or store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub access: Access,
    pub write: bool,
    /// Base register update after the access (pre- or post-index): register and offset.
    pub writeback: Option<(u8, i64)>,
}

fn sign_extend(value: u32, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((value as u64) << shift) as i64 >> shift
}

pub fn decode(insn: u32) -> Option<Decoded> {
    // Load/store register (all forms here): bits [29:27] = 0b111, bit 26 (V) = 0 (not
    // SIMD&FP), bits [25:24] select unsigned offset (0b01) or the imm9/register forms (0b00).
    if (insn >> 27) & 0b111 != 0b111 || (insn >> 26) & 1 != 0 {
        return None;
    }
    let size = (insn >> 30) & 0b11;
    let opc = (insn >> 22) & 0b11;
    let rn = ((insn >> 5) & 0x1f) as u8;
    let rt = (insn & 0x1f) as u8;
    let writeback = match (insn >> 24) & 0b11 {
        0b01 => None,
        0b00 => {
            let bit21 = (insn >> 21) & 1;
            let kind = (insn >> 10) & 0b11;
            match (bit21, kind) {
                // LDUR/STUR: unscaled, no writeback.
                (0, 0b00) => None,
                // Post-index (0b01) and pre-index (0b11).
                (0, 0b01) | (0, 0b11) => {
                    if rn == 31 || rn == rt {
                        // SP as base, or a base the load would also write: not emulated.
                        return None;
                    }
                    Some((rn, sign_extend((insn >> 12) & 0x1ff, 9)))
                }
                // Register offset.
                (1, 0b10) => None,
                _ => return None,
            }
        }
        _ => return None,
    };
    let (write, sign_extend, sixty_four) = match (opc, size) {
        (0b00, _) => (true, false, size == 0b11),
        (0b01, _) => (false, false, size == 0b11),
        // LDRS* into an X register (LDRSW is size 0b10); size 0b11 with opc 0b10 is PRFM.
        (0b10, 0b00..=0b10) => (false, true, true),
        // LDRSB/LDRSH into a W register.
        (0b11, 0b00 | 0b01) => (false, true, false),
        _ => return None,
    };
    Some(Decoded {
        access: Access { size: 1 << size, sign_extend, reg: rt, sixty_four, acquire_release: false },
        write,
        writeback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(size: u8, sign_extend: bool, reg: u8, sixty_four: bool) -> Access {
        Access { size, sign_extend, reg, sixty_four, acquire_release: false }
    }

    #[test]
    fn writeback_forms() {
        // ldr x1, [x4, #8]!
        assert_eq!(
            decode(0xf8408c81),
            Some(Decoded { access: acc(8, false, 1, true), write: false, writeback: Some((4, 8)) })
        );
        // str w2, [x5], #-4
        assert_eq!(
            decode(0xb81fc4a2),
            Some(Decoded { access: acc(4, false, 2, false), write: true, writeback: Some((5, -4)) })
        );
        // ldrsb x3, [x6, #1]!
        assert_eq!(
            decode(0x38801cc3),
            Some(Decoded { access: acc(1, true, 3, true), write: false, writeback: Some((6, 1)) })
        );
        // ldrsh w7, [x8], #2
        assert_eq!(
            decode(0x78c02507),
            Some(Decoded { access: acc(2, true, 7, false), write: false, writeback: Some((8, 2)) })
        );
        // strh w9, [x10, #-2]!
        assert_eq!(
            decode(0x781fed49),
            Some(Decoded { access: acc(2, false, 9, false), write: true, writeback: Some((10, -2)) })
        );
    }

    #[test]
    fn forms_without_writeback() {
        // ldr x0, [x1] (unsigned offset)
        assert_eq!(decode(0xf9400020), Some(Decoded { access: acc(8, false, 0, true), write: false, writeback: None }));
        // ldursw x2, [x3, #-4]
        assert_eq!(decode(0xb89fc062), Some(Decoded { access: acc(4, true, 2, true), write: false, writeback: None }));
        // strb w4, [x5, x6]
        assert_eq!(decode(0x382668a4), Some(Decoded { access: acc(1, false, 4, false), write: true, writeback: None }));
    }

    #[test]
    fn not_emulated() {
        assert_eq!(decode(0xa9400820), None, "ldp x0, x2, [x1]");
        assert_eq!(decode(0xc85f7c20), None, "ldxr x0, [x1]");
        assert_eq!(decode(0xfd400020), None, "ldr d0, [x1]");
        assert_eq!(decode(0xf8408fe1), None, "ldr x1, [sp, #8]!");
        assert_eq!(decode(0xf8408c84), None, "ldr x4, [x4, #8]!");
        assert_eq!(decode(0xf9800020), None, "prfm");
        assert_eq!(decode(0xd503201f), None, "nop");
        assert_eq!(decode(0), None);
        assert_eq!(decode(u32::MAX), None);
    }
}
