//! PSCI for guests (DEN0022 PSCI 1.1), as a state machine over the VM's vCPU power states.
//! Pure: the caller applies the [`Outcome`] (resume with a return value, start or stop a
//! vCPU, end the VM). Host-tested.
#![forbid(unsafe_code)]

use crate::hw::psci::{
    AFFINITY_INFO_32, AFFINITY_INFO_64, AFFINITY_OFF, AFFINITY_ON, AFFINITY_ON_PENDING, ALREADY_ON, CPU_OFF, CPU_ON_32,
    CPU_ON_64, CPU_SUSPEND_32, CPU_SUSPEND_64, FEATURES, INVALID_ADDRESS, INVALID_PARAMETERS, MIGRATE_INFO_TYPE,
    MIGRATE_NOT_REQUIRED, ON_PENDING, SMC64, SYSTEM_OFF, SYSTEM_RESET, VERSION, VERSION_1_1,
};
/// The return codes the run loop answers with itself; the rest of PSCI is `hw::psci`.
pub use crate::hw::psci::{NOT_SUPPORTED, SUCCESS};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PowerState {
    #[default]
    Off,
    /// CPU_ON accepted; the target has not started yet.
    OnPending {
        entry: u64,
        context: u64,
    },
    On,
}

/// What the caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Put this value in the caller's x0 and resume it.
    Return(i64),
    /// x0 = SUCCESS for the caller, and start vCPU `target` at `entry` with x0 = `context`.
    CpuOn {
        target: usize,
        entry: u64,
        context: u64,
    },
    /// The caller powers down (it does not return from the call).
    CpuOff,
    /// The caller waits for an interrupt, then resumes with x0 = SUCCESS.
    /// CPU_SUSPEND to a standby state: return SUCCESS once an interrupt is pending.
    Suspend,
    /// CPU_SUSPEND to a power-down state: the vCPU loses its context and, once an
    /// interrupt is pending, resumes at `entry` with x0 = `context`, as after CPU_ON.
    SuspendPowerDown {
        entry: u64,
        context: u64,
    },
    SystemOff,
    SystemReset,
}

/// The VM's view for PSCI: each vCPU's MPIDR and power state, and where its RAM is.
pub struct Machine<'a> {
    pub mpidrs: &'a [u64],
    pub states: &'a mut [PowerState],
    /// Is this an address the guest may start a CPU at (inside its RAM)?
    pub valid_entry: &'a dyn Fn(u64) -> bool,
}

fn is_supported(fid: u32) -> bool {
    matches!(
        fid,
        VERSION
            | CPU_SUSPEND_32
            | CPU_SUSPEND_64
            | CPU_OFF
            | CPU_ON_32
            | CPU_ON_64
            | AFFINITY_INFO_32
            | AFFINITY_INFO_64
            | MIGRATE_INFO_TYPE
            | SYSTEM_OFF
            | SYSTEM_RESET
            | FEATURES
    )
}

/// CPU_SUSPEND's power_state in the original format: the bits that mean something.
const POWER_STATE_VALID: u64 = 0x0301_ffff;
/// StateType: a power-down state (the core loses its context).
const POWER_STATE_TYPE_POWERDOWN: u64 = 1 << 16;

/// The vCPU whose MPIDR is `target`, a PSCI `target_cpu`/`target_affinity`: the MPIDR's
/// affinity fields, every other bit zero (PSCI, DEN0022, "target_cpu"; KVM refuses the same
/// with INVALID_PARAMETERS), so an MPIDR read with its RES1 bit 31 or U bit names nobody.
fn vcpu_of(mpidrs: &[u64], target: u64) -> Option<usize> {
    if target & !crate::platform::MPIDR_AFFINITY_MASK != 0 {
        return None;
    }
    mpidrs.iter().position(|&x| x == target)
}

/// Handles PSCI function `fid` with arguments `args` (x1-x3) from vCPU `caller`. Returns
/// `None` if `fid` is not a PSCI function at all (the caller answers NOT_SUPPORTED through
/// its own SMCCC handling).
pub fn call(m: &mut Machine<'_>, caller: usize, fid: u32, args: [u64; 3]) -> Option<Outcome> {
    // SMC32 arguments are 32 bits wide.
    let arg = |i: usize| if fid & SMC64 == 0 { args[i] & 0xffff_ffff } else { args[i] };
    let outcome = match fid {
        VERSION => Outcome::Return(VERSION_1_1),
        FEATURES => {
            let f = arg(0) as u32;
            Outcome::Return(if f == CPU_SUSPEND_32 || f == CPU_SUSPEND_64 {
                // Original power-state format, no OS-initiated mode.
                0
            } else if is_supported(f) {
                SUCCESS
            } else {
                NOT_SUPPORTED
            })
        }
        MIGRATE_INFO_TYPE => Outcome::Return(MIGRATE_NOT_REQUIRED),
        SYSTEM_OFF => Outcome::SystemOff,
        SYSTEM_RESET => Outcome::SystemReset,
        CPU_SUSPEND_32 | CPU_SUSPEND_64 => {
            // The original power_state format (FEATURES says so): StateID [15:0], StateType
            // [16] (1: power down), PowerLevel [25:24]; the other bits are reserved.
            let (state, entry, context) = (arg(0), arg(1), arg(2));
            if state & !POWER_STATE_VALID != 0 {
                Outcome::Return(INVALID_PARAMETERS)
            } else if state & POWER_STATE_TYPE_POWERDOWN == 0 {
                Outcome::Suspend
            } else if entry % 4 != 0 || !(m.valid_entry)(entry) {
                Outcome::Return(INVALID_ADDRESS)
            } else {
                Outcome::SuspendPowerDown { entry, context }
            }
        }
        CPU_OFF => {
            // The last vCPU turning itself off is allowed; the VM then has nothing to run.
            if let Some(s) = m.states.get_mut(caller) {
                *s = PowerState::Off;
            }
            Outcome::CpuOff
        }
        CPU_ON_32 | CPU_ON_64 => {
            let (target_mpidr, entry, context) = (arg(0), arg(1), arg(2));
            match vcpu_of(m.mpidrs, target_mpidr) {
                None => Outcome::Return(INVALID_PARAMETERS),
                Some(t) => match m.states[t] {
                    PowerState::On => Outcome::Return(ALREADY_ON),
                    PowerState::OnPending { .. } => Outcome::Return(ON_PENDING),
                    PowerState::Off if entry % 4 != 0 || !(m.valid_entry)(entry) => Outcome::Return(INVALID_ADDRESS),
                    PowerState::Off => {
                        m.states[t] = PowerState::OnPending { entry, context };
                        Outcome::CpuOn { target: t, entry, context }
                    }
                },
            }
        }
        AFFINITY_INFO_32 | AFFINITY_INFO_64 => {
            let (target, level) = (arg(0), arg(1));
            if level != 0 {
                // Only level 0 (a single vCPU) is tracked; higher levels are optional.
                Outcome::Return(INVALID_PARAMETERS)
            } else {
                match vcpu_of(m.mpidrs, target) {
                    None => Outcome::Return(INVALID_PARAMETERS),
                    Some(t) => Outcome::Return(match m.states[t] {
                        PowerState::On => AFFINITY_ON,
                        PowerState::Off => AFFINITY_OFF,
                        PowerState::OnPending { .. } => AFFINITY_ON_PENDING,
                    }),
                }
            }
        }
        _ => return None,
    };
    Some(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine<'a>(mpidrs: &'a [u64], states: &'a mut [PowerState], ok: &'a dyn Fn(u64) -> bool) -> Machine<'a> {
        Machine { mpidrs, states, valid_entry: ok }
    }

    #[test]
    fn version_features_and_unknown() {
        let mut states = [PowerState::On];
        let ok = |_| true;
        let mut m = machine(&[0], &mut states, &ok);
        assert_eq!(call(&mut m, 0, VERSION, [0; 3]), Some(Outcome::Return(VERSION_1_1)));
        assert_eq!(call(&mut m, 0, FEATURES, [CPU_ON_64 as u64, 0, 0]), Some(Outcome::Return(SUCCESS)));
        assert_eq!(call(&mut m, 0, FEATURES, [0x8400_0012, 0, 0]), Some(Outcome::Return(NOT_SUPPORTED)));
        assert_eq!(call(&mut m, 0, MIGRATE_INFO_TYPE, [0; 3]), Some(Outcome::Return(MIGRATE_NOT_REQUIRED)));
        assert_eq!(call(&mut m, 0, 0x8400_0012, [0; 3]), None);
        assert_eq!(call(&mut m, 0, SYSTEM_OFF, [0; 3]), Some(Outcome::SystemOff));
        assert_eq!(call(&mut m, 0, SYSTEM_RESET, [0; 3]), Some(Outcome::SystemReset));
    }

    #[test]
    fn cpu_on_states_and_errors() {
        let mut states = [PowerState::On, PowerState::Off, PowerState::Off];
        let ok = |a: u64| (0x4000_0000..0x5000_0000).contains(&a);
        let mut m = machine(&[0, 1, 2], &mut states, &ok);
        let on = |m: &mut Machine<'_>, t: u64, e: u64| call(m, 0, CPU_ON_64, [t, e, 0x77]);
        assert_eq!(on(&mut m, 0, 0x4000_0000), Some(Outcome::Return(ALREADY_ON)));
        assert_eq!(on(&mut m, 9, 0x4000_0000), Some(Outcome::Return(INVALID_PARAMETERS)));
        assert_eq!(on(&mut m, 1, 0x1000), Some(Outcome::Return(INVALID_ADDRESS)));
        assert_eq!(on(&mut m, 1, 0x4000_0002), Some(Outcome::Return(INVALID_ADDRESS)));
        assert_eq!(on(&mut m, 1, 0x4000_0000), Some(Outcome::CpuOn { target: 1, entry: 0x4000_0000, context: 0x77 }));
        assert_eq!(on(&mut m, 1, 0x4000_0000), Some(Outcome::Return(ON_PENDING)));
        assert_eq!(call(&mut m, 0, AFFINITY_INFO_64, [1, 0, 0]), Some(Outcome::Return(AFFINITY_ON_PENDING)));
        assert_eq!(call(&mut m, 0, AFFINITY_INFO_64, [2, 0, 0]), Some(Outcome::Return(AFFINITY_OFF)));
        assert_eq!(call(&mut m, 0, AFFINITY_INFO_64, [0, 0, 0]), Some(Outcome::Return(AFFINITY_ON)));
        assert_eq!(call(&mut m, 0, AFFINITY_INFO_64, [0, 1, 0]), Some(Outcome::Return(INVALID_PARAMETERS)));
        assert_eq!(call(&mut m, 0, AFFINITY_INFO_64, [5, 0, 0]), Some(Outcome::Return(INVALID_PARAMETERS)));
        m.states[1] = PowerState::On;
        assert_eq!(call(&mut m, 1, CPU_OFF, [0; 3]), Some(Outcome::CpuOff));
        assert_eq!(m.states[1], PowerState::Off);
        assert_eq!(call(&mut m, 0, AFFINITY_INFO_64, [1, 0, 0]), Some(Outcome::Return(AFFINITY_OFF)));
    }

    #[test]
    fn cpu_suspend_standby_power_down_and_errors() {
        let mut states = [PowerState::On];
        let ok = |a: u64| (0x4000_0000..0x5000_0000).contains(&a);
        let mut m = machine(&[0], &mut states, &ok);
        assert_eq!(call(&mut m, 0, CPU_SUSPEND_64, [0, 0, 0]), Some(Outcome::Suspend), "standby");
        assert_eq!(
            call(&mut m, 0, CPU_SUSPEND_64, [0x1_0000, 0x4000_1000, 0x77]),
            Some(Outcome::SuspendPowerDown { entry: 0x4000_1000, context: 0x77 })
        );
        assert_eq!(call(&mut m, 0, CPU_SUSPEND_64, [0x1_0000, 0x1000, 0]), Some(Outcome::Return(INVALID_ADDRESS)));
        assert_eq!(call(&mut m, 0, CPU_SUSPEND_64, [0x1_0000, 0x4000_1002, 0]), Some(Outcome::Return(INVALID_ADDRESS)));
        assert_eq!(call(&mut m, 0, CPU_SUSPEND_64, [1 << 20, 0, 0]), Some(Outcome::Return(INVALID_PARAMETERS)));
        // SMC32: the upper halves of the arguments are not looked at.
        assert_eq!(
            call(&mut m, 0, CPU_SUSPEND_32, [0xffff_0000_0001_0000, 0xdead_0000_4000_1000, 5]),
            Some(Outcome::SuspendPowerDown { entry: 0x4000_1000, context: 5 })
        );
    }

    #[test]
    fn reserved_mpidr_bits_name_nobody() {
        let mut states = [PowerState::On, PowerState::Off];
        let ok = |a: u64| a == 0x4000_0000;
        let mut m = machine(&[0, 1], &mut states, &ok);
        // MPIDR_EL1 as read has RES1 bit 31 (and U, MT): not a valid target_cpu.
        for bad in [1 | 1 << 31, 1 | 1 << 30, 1 | 1 << 24, 1 | 1 << 40] {
            assert_eq!(call(&mut m, 0, CPU_ON_64, [bad, 0x4000_0000, 0]), Some(Outcome::Return(INVALID_PARAMETERS)));
            assert_eq!(call(&mut m, 0, AFFINITY_INFO_64, [bad, 0, 0]), Some(Outcome::Return(INVALID_PARAMETERS)));
        }
        assert_eq!(m.states[1], PowerState::Off, "nothing was started");
        // Aff3 is an affinity field: a VM without such a vCPU has nobody there.
        assert_eq!(
            call(&mut m, 0, CPU_ON_64, [1 << 32 | 1, 0x4000_0000, 0]),
            Some(Outcome::Return(INVALID_PARAMETERS))
        );
    }

    #[test]
    fn smc32_arguments_are_truncated() {
        let mut states = [PowerState::On, PowerState::Off];
        let ok = |a: u64| a == 0x4000_0000;
        let mut m = machine(&[0, 1], &mut states, &ok);
        assert_eq!(
            call(&mut m, 0, CPU_ON_32, [0xffff_ffff_0000_0001, 0xdead_0000_4000_0000, 0]),
            Some(Outcome::CpuOn { target: 1, entry: 0x4000_0000, context: 0 })
        );
    }
}
