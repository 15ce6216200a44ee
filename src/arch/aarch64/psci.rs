//! Calls to the firmware's PSCI over the conduit the DTB names (PSCI 1.1, DEN0022).

use crate::hw::psci as spec;
use crate::platform::{Psci, PsciConduit};
use core::arch::asm;

/// For callers that name it from here (`guest.rs`); `hw::psci` has every function ID.
pub use crate::hw::psci::SYSTEM_RESET;

/// PSCI return codes (DEN0022 5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsciError {
    NotSupported,
    InvalidParameters,
    Denied,
    AlreadyOn,
    OnPending,
    InternalFailure,
    NotPresent,
    Disabled,
    InvalidAddress,
    Unknown(i64),
}

impl PsciError {
    fn from_code(code: i64) -> Result<u64, Self> {
        Err(match code {
            c if c >= 0 => return Ok(c as u64),
            spec::NOT_SUPPORTED => Self::NotSupported,
            spec::INVALID_PARAMETERS => Self::InvalidParameters,
            spec::DENIED => Self::Denied,
            spec::ALREADY_ON => Self::AlreadyOn,
            spec::ON_PENDING => Self::OnPending,
            spec::INTERNAL_FAILURE => Self::InternalFailure,
            spec::NOT_PRESENT => Self::NotPresent,
            spec::DISABLED => Self::Disabled,
            spec::INVALID_ADDRESS => Self::InvalidAddress,
            c => Self::Unknown(c),
        })
    }
}

/// One SMC or HVC with up to three arguments; x0 comes back.
pub fn call(conduit: PsciConduit, function: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let mut x0 = function as u64;
    match conduit {
        // SAFETY: an SMC Calling Convention call: the firmware may clobber x0-x17 and
        // touches no memory of ours.
        PsciConduit::Smc => unsafe {
            asm!("smc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                 out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                 options(nostack))
        },
        // SAFETY: as above, for a firmware reached by HVC (only possible if we run nested).
        PsciConduit::Hvc => unsafe {
            asm!("hvc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                 out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                 options(nostack))
        },
    }
    x0 as i64
}

pub fn cpu_on(psci: &Psci, mpidr: u64, entry: u64, context: u64) -> Result<(), PsciError> {
    PsciError::from_code(call(psci.conduit, psci.cpu_on, mpidr, entry, context)).map(|_| ())
}

pub fn version(psci: &Psci) -> Result<(u16, u16), PsciError> {
    let v = PsciError::from_code(call(psci.conduit, spec::VERSION, 0, 0, 0))?;
    Ok(((v >> 16) as u16, v as u16))
}

pub fn system_off(psci: &Psci) {
    call(psci.conduit, spec::SYSTEM_OFF, 0, 0, 0);
}
