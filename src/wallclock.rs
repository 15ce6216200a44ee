//! The board's wall clock as the hypervisor found it at boot: the one home for the one fact
//! every VM's emulated RTC (`devices::pl031`) counts from. The boot flow reads the board's
//! RTC once (`arch::aarch64::rtc`) and records here the seconds it said and the counter
//! value of that moment; a VM's time is that, plus the counter's progress since (CNTPCT /
//! CNTFRQ), plus the VM's own offset. Without an RTC on the board the time starts at 0
//! (1970-01-01), which the boot log says.
#![forbid(unsafe_code)]

use core::fmt;
use spin::Once;

/// A wall-clock reading: `seconds` since 1970-01-01 00:00:00 UTC when the physical counter
/// read `counter`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WallClock {
    pub seconds: u64,
    pub counter: u64,
}

impl WallClock {
    /// Whole seconds since the epoch at counter value `now`, the counter running at
    /// `frequency` Hz (a `now` before the reading counts as the reading).
    pub fn seconds_at(&self, now: u64, frequency: u64) -> u64 {
        self.seconds.saturating_add(now.saturating_sub(self.counter) / frequency.max(1))
    }

    /// The first counter value at which [`seconds_at`](Self::seconds_at) says `seconds`
    /// (the reading's own counter for a time at or before it; `u64::MAX`, never, past the
    /// counter's range).
    pub fn counter_at(&self, seconds: u64, frequency: u64) -> u64 {
        seconds
            .saturating_sub(self.seconds)
            .checked_mul(frequency.max(1))
            .and_then(|ticks| ticks.checked_add(self.counter))
            .unwrap_or(u64::MAX)
    }
}

static BOARD: Once<WallClock> = Once::new();

/// Records the board's wall clock (once, at boot; later calls change nothing).
pub fn set_board(clock: WallClock) {
    BOARD.call_once(|| clock);
}

/// The board's wall clock [`set_board`] recorded, or the epoch at counter 0 before that
/// and on a board without an RTC.
pub fn board() -> WallClock {
    BOARD.get().copied().unwrap_or_default()
}

/// Seconds since the epoch shown as a UTC date and time: `2026-12-01 17:18:26 UTC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc(pub u64);

impl Utc {
    /// (year, month 1-12, day 1-31) of the day `days` after 1970-01-01, in the proleptic
    /// Gregorian calendar (the days-to-civil conversion of Howard Hinnant's "chrono-
    /// compatible low-level date algorithms": eras of 400 years, years starting in March).
    fn date(days: u64) -> (u64, u64, u64) {
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        (year, month, day)
    }
}

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, secs) = (self.0 / 86_400, self.0 % 86_400);
        let (year, month, day) = Self::date(days);
        write!(f, "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", secs / 3600, secs / 60 % 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_follow_the_counter_from_the_reading() {
        let c = WallClock { seconds: 1_000, counter: 500 };
        assert_eq!(c.seconds_at(500, 100), 1_000);
        assert_eq!(c.seconds_at(599, 100), 1_000, "not a whole second yet");
        assert_eq!(c.seconds_at(600, 100), 1_001);
        assert_eq!(c.seconds_at(0, 100), 1_000, "before the reading: the reading");
        assert_eq!(c.seconds_at(u64::MAX, 0), u64::MAX.saturating_sub(500).saturating_add(1_000), "no division by 0");
        assert_eq!(c.counter_at(1_001, 100), 600);
        assert_eq!(c.seconds_at(c.counter_at(1_234, 100), 100), 1_234);
        assert_eq!(c.seconds_at(c.counter_at(1_234, 100) - 1, 100), 1_233, "the first counter value of that second");
        assert_eq!(c.counter_at(999, 100), 500);
        assert_eq!(c.counter_at(u64::MAX, 62_500_000), u64::MAX, "beyond the counter: never");
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(format!("{}", Utc(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(format!("{}", Utc(951_782_400)), "2000-02-29 00:00:00 UTC", "a leap day of a 400-year leap year");
        assert_eq!(format!("{}", Utc(4_107_542_399)), "2100-02-28 23:59:59 UTC", "2100 is no leap year");
        assert_eq!(format!("{}", Utc(4_107_542_400)), "2100-03-01 00:00:00 UTC");
        assert_eq!(format!("{}", Utc(1_796_145_506)), "2026-12-01 17:18:26 UTC");
        assert_eq!(format!("{}", Utc(u32::MAX as u64)), "2106-02-07 06:28:15 UTC", "where a 32-bit RTCDR wraps");
    }
}
