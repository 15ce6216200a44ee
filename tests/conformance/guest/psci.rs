//! PSCI (DEN0022) by HVC, the conduit both runs have: QEMU virt without EL2 and EL3
//! implements it in QEMU itself, an armvisor VM gets it from the hypervisor (the device
//! tree's /psci method says "hvc" in both; the psci check verifies it).

pub const VERSION: u64 = 0x8400_0000;
pub const CPU_SUSPEND_64: u64 = 0xc400_0001;
pub const CPU_OFF: u64 = 0x8400_0002;
pub const CPU_ON_64: u64 = 0xc400_0003;
pub const AFFINITY_INFO_64: u64 = 0xc400_0004;
pub const SYSTEM_OFF: u64 = 0x8400_0008;
pub const FEATURES: u64 = 0x8400_000a;

pub const SUCCESS: i64 = 0;
pub const NOT_SUPPORTED: i64 = -1;
pub const INVALID_PARAMETERS: i64 = -2;
pub const ALREADY_ON: i64 = -4;
pub const AFF_ON: i64 = 0;
pub const AFF_OFF: i64 = 1;

/// An SMCCC call by HVC #0: x0-x3 in, x0 out; x4-x17 may be clobbered (SMCCC 1.0).
pub fn call(fid: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let r: u64;
    // SAFETY: a firmware call; its side effects are what the caller asked for.
    unsafe {
        core::arch::asm!("hvc #0",
            inout("x0") fid => r, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
            out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _, options(nostack));
    }
    r as i64
}

pub fn system_off() -> ! {
    call(SYSTEM_OFF, 0, 0, 0);
    loop {
        crate::sys::wfi();
    }
}
