//! Fake firmware: power-off, reset and a failing exit are logged.

use super::{Event, record};
use crate::platform::Psci;

pub fn system_off(_: &Psci) {
    record(Event::SystemOff);
}

pub fn system_reset(_: &Psci) {
    record(Event::SystemReset);
}

pub fn exit_failure() {
    record(Event::ExitFailure);
}
