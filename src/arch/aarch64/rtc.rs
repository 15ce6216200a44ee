//! The board's PL031 real-time clock, read once at boot for the wall-clock time
//! (`wallclock`): the hypervisor's only use of it. Guests get their own emulated RTC.

use super::{cpu, mmio};
use crate::hw::pl031::{CR_START, Registers};
use crate::platform::Region;
use crate::wallclock::WallClock;
use tock_registers::interfaces::Readable;

/// What the board's RTC says now: the time, with the counter value of the reading, and
/// whether it runs (RTCCR.RTCstart; a stopped PL031 holds its last count).
pub fn read(rtc: Region) -> (WallClock, bool) {
    // SAFETY: `rtc` is the platform's `arm,pl031` region, which discovery checked covers
    // RTCDR..RTCICR and the EL2 map maps as device memory; reading RTCDR and RTCCR has no
    // side effect, and nothing else in the hypervisor touches the board's RTC.
    let regs = unsafe { mmio::block::<Registers>(rtc) };
    let started = regs.cr.get() & CR_START != 0;
    let seconds = regs.dr.get() as u64;
    (WallClock { seconds, counter: cpu::counter() }, started)
}
