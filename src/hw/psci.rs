//! PSCI (Arm Power State Coordination Interface, DEN0022, version 1.1): function IDs, return
//! codes and the values some functions return. The guest-facing state machine (`psci`) and
//! the calls to the firmware (`arch::aarch64::psci`) both use these.
#![forbid(unsafe_code)]

/// Function IDs (DEN0022 chapter 5, each function's section). Bit 30 set: the SMC64 form.
pub const VERSION: u32 = 0x8400_0000;
pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON_32: u32 = 0x8400_0003;
pub const CPU_ON_64: u32 = 0xc400_0003;
pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
pub const SYSTEM_OFF: u32 = 0x8400_0008;
pub const SYSTEM_RESET: u32 = 0x8400_0009;
pub const FEATURES: u32 = 0x8400_000a;

/// Function ID bit 30: the SMC64/HVC64 calling convention, 64-bit arguments (SMCCC,
/// DEN0028, "Function Identifier"); clear, arguments are 32 bits wide.
pub const SMC64: u32 = 1 << 30;

/// PSCI_VERSION's answer for 1.1: major [30:16], minor [15:0].
pub const VERSION_1_1: i64 = 0x0001_0001;

/// Return codes (DEN0022 5.2.2).
pub const SUCCESS: i64 = 0;
pub const NOT_SUPPORTED: i64 = -1;
pub const INVALID_PARAMETERS: i64 = -2;
pub const DENIED: i64 = -3;
pub const ALREADY_ON: i64 = -4;
pub const ON_PENDING: i64 = -5;
pub const INTERNAL_FAILURE: i64 = -6;
pub const NOT_PRESENT: i64 = -7;
pub const DISABLED: i64 = -8;
pub const INVALID_ADDRESS: i64 = -9;

/// AFFINITY_INFO answers (DEN0022, AFFINITY_INFO).
pub const AFFINITY_ON: i64 = 0;
pub const AFFINITY_OFF: i64 = 1;
pub const AFFINITY_ON_PENDING: i64 = 2;

/// MIGRATE_INFO_TYPE answer 2: no Trusted OS, or one that does not need migrating
/// (DEN0022, MIGRATE_INFO_TYPE).
pub const MIGRATE_NOT_REQUIRED: i64 = 2;
