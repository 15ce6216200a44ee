//! Reading the hardware's ID registers by encoding (for the trapped-ID-register emulation),
//! and the features the EL2 trap controls depend on.

use core::arch::asm;

macro_rules! read_id {
    ($crm:expr, $op2:expr, $( ($c:literal, $o:literal) ),* ) => {{
        let v: u64;
        match ($crm, $op2) {
            $(
                ($c, $o) => {
                    // SAFETY: reading an ID register has no side effects.
                    unsafe { asm!(concat!("mrs {}, s3_0_c0_c", $c, "_", $o), out(reg) v, options(nomem, nostack)) }
                }
            )*
            _ => v = 0,
        }
        v
    }};
}

/// The value of ID register S3_0_C0_C<crm>_<op2> (CRm 1-7); reserved encodings read 0, as
/// the architecture has them RAZ.
pub fn read(crm: u8, op2: u8) -> u64 {
    read_id!(
        crm,
        op2,
        (1, 0),
        (1, 1),
        (1, 2),
        (1, 3),
        (1, 4),
        (1, 5),
        (1, 6),
        (1, 7),
        (2, 0),
        (2, 1),
        (2, 2),
        (2, 3),
        (2, 4),
        (2, 5),
        (2, 6),
        (2, 7),
        (3, 0),
        (3, 1),
        (3, 2),
        (3, 3),
        (3, 4),
        (3, 5),
        (3, 6),
        (3, 7),
        (4, 0),
        (4, 1),
        (4, 2),
        (4, 3),
        (4, 4),
        (4, 5),
        (4, 6),
        (4, 7),
        (5, 0),
        (5, 1),
        (5, 2),
        (5, 3),
        (5, 4),
        (5, 5),
        (5, 6),
        (5, 7),
        (6, 0),
        (6, 1),
        (6, 2),
        (6, 3),
        (6, 4),
        (6, 5),
        (6, 6),
        (6, 7),
        (7, 0),
        (7, 1),
        (7, 2),
        (7, 3),
        (7, 4),
        (7, 5),
        (7, 6),
        (7, 7)
    )
}

/// What this core implements, for the trap controls a guest runs under (`hw::el2`).
pub fn features() -> crate::hw::features::Features {
    crate::hw::features::Features {
        pfr0: read(4, 0),
        pfr1: read(4, 1),
        dfr0: read(5, 0),
        mmfr1: read(7, 1),
        isar1: read(6, 1),
        isar2: read(6, 2),
    }
}
