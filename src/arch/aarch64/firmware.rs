//! The firmware as the core uses it: powering the machine off or resetting it through PSCI.

use crate::platform::Psci;

/// PSCI SYSTEM_OFF; returns only if the firmware refuses.
pub fn system_off(psci: &Psci) {
    super::psci::system_off(psci);
}

/// PSCI SYSTEM_RESET; returns only if the firmware refuses.
pub fn system_reset(psci: &Psci) {
    super::psci::call(psci.conduit, super::psci::SYSTEM_RESET, 0, 0, 0);
}

/// Ends a run that failed with a failing status where there is a debugger or emulator to
/// tell (QEMU's semihosting); returns at once without one.
pub fn exit_failure() {
    super::semihosting::exit(1);
}
