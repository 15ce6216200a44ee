//! Fake firmware: power-off and reset are logged.

use super::{Event, record};
use crate::platform::Psci;

pub fn system_off(_: &Psci) {
    record(Event::SystemOff);
}

pub fn system_reset(_: &Psci) {
    record(Event::SystemReset);
}
