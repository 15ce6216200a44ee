//! Arm semihosting (used under QEMU's `-semihosting` to end a test run with a status).
//!
//! Where there is no semihosting, `hlt #0xf000` is UNDEFINED; the exception handlers step
//! over it ([`super::exception`]) and the call simply returns.

use core::arch::asm;

const SYS_EXIT: u64 = 0x18;
/// ADP_Stopped_ApplicationExit: with the extended block, the second word is the status.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;
/// `hlt #0xf000`, the AArch64 semihosting trap.
pub const HLT_SEMIHOSTING: u32 = 0xd45e_0000;

/// Asks the debugger or emulator to exit with `status`. Returns only without semihosting.
pub fn exit(status: u32) {
    let block = [ADP_STOPPED_APPLICATION_EXIT, status as u64];
    // SAFETY: SYS_EXIT reads the two-word block and does not return when semihosting is on;
    // otherwise the exception handler skips the hlt and x0 is unchanged.
    unsafe {
        asm!("hlt #0xf000", inout("x0") SYS_EXIT => _, in("x1") block.as_ptr(), options(nostack));
    }
}
