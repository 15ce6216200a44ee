//! An emulated PL031 real-time clock for a guest (ARM DDI 0224; the registers as QEMU's
//! `hw/rtc/pl031.c` gives them to the guests of its `virt` machine): a seconds counter that
//! runs from the board's wall clock ([`WallClock`]) with an offset of the VM's own, so a
//! guest that sets its clock (RTCLR) changes only its own time; a match register whose
//! alarm sets the raw interrupt when the counter reaches it; and the level interrupt line
//! (RTCINTR: raw interrupt and mask) the VM connects to an SPI.
//!
//! Time is the physical counter's: every access is given the counter value `now`, the
//! seconds tick at whole seconds of the board's reading, and a pending match is a counter
//! value ([`Pl031::alarm`]) the VM publishes for the schedulers ([`AlarmWatch`]), so the
//! alarm fires when it is due even if the guest makes no exit until then.
#![forbid(unsafe_code)]

use crate::hw::pl031::offset::{CR, DR, ICR, IMSC, LR, MIS, MR, RIS};
use crate::hw::pl031::{CR_START, ID, ID_OFFSET, INT_MATCH};
use crate::wallclock::WallClock;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The RTC's register frame.
pub const SIZE: u64 = crate::hw::pl031::SIZE;
/// The last ID register.
const ID_END: u64 = ID_OFFSET + 4 * (ID.len() as u64 - 1);

#[derive(Debug, Default)]
pub struct Pl031 {
    /// The board's wall clock the counter runs from.
    clock: WallClock,
    /// The physical counter's frequency (Hz).
    frequency: u64,
    /// Seconds added to the board's time, modulo 2^32 as RTCDR counts: what RTCLR writes
    /// change.
    offset: u32,
    mr: u32,
    /// The value last loaded (RTCLR reads it back, as QEMU's model does).
    lr: u32,
    imsc: u32,
    ris: u32,
    /// The counter value at which RTCDR reaches RTCMR, while that match is still to come.
    alarm: Option<u64>,
    /// The line level last handed to the interrupt controller.
    reported_line: bool,
}

impl Pl031 {
    /// An RTC counting from `clock`, the physical counter running at `frequency` Hz; no
    /// match armed (RTCMR 0 is not compared until it is written, as in QEMU).
    pub fn new(clock: WallClock, frequency: u64) -> Self {
        Self { clock, frequency, ..Default::default() }
    }

    /// RTCDR at counter value `now`.
    pub fn count(&self, now: u64) -> u32 {
        (self.clock.seconds_at(now, self.frequency) as u32).wrapping_add(self.offset)
    }

    /// The seconds this VM's time is ahead of the board's (modulo 2^32).
    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// Carries a VM's offset over to its next run: a real RTC keeps its time through a
    /// reset. Before the VM runs (no match armed yet).
    pub fn set_offset(&mut self, offset: u32) {
        self.offset = offset;
    }

    /// The counter value at which the armed match becomes due, if one is.
    pub fn alarm(&self) -> Option<u64> {
        self.alarm
    }

    /// The interrupt line: the raw match interrupt, unmasked.
    pub fn line(&self) -> bool {
        self.ris & self.imsc != 0
    }

    /// The new line level if it changed since the last call (so the caller touches the
    /// interrupt controller only on edges of the line).
    pub fn line_change(&mut self) -> Option<bool> {
        let line = self.line();
        (line != self.reported_line).then(|| {
            self.reported_line = line;
            line
        })
    }

    /// Brings the RTC to counter value `now` (a match due sets the raw interrupt); the new
    /// line level if it changed. The schedulers call this when the alarm is due.
    pub fn poll(&mut self, now: u64) -> Option<bool> {
        self.advance(now);
        self.line_change()
    }

    /// The match, if its time has come, sets the raw interrupt (once: it is not armed
    /// again until RTCMR or RTCLR is written).
    fn advance(&mut self, now: u64) {
        if self.alarm.is_some_and(|at| now >= at) {
            self.ris |= INT_MATCH;
            self.alarm = None;
        }
    }

    /// Arms the match for RTCMR against the count at `now`: equal now, the raw interrupt
    /// sets at once (QEMU's model does the same); otherwise when the counter reaches it,
    /// after wrapping if RTCMR is behind.
    fn arm(&mut self, now: u64) {
        let ahead = self.mr.wrapping_sub(self.count(now));
        if ahead == 0 {
            self.ris |= INT_MATCH;
            self.alarm = None;
        } else {
            let seconds = self.clock.seconds_at(now, self.frequency).saturating_add(ahead as u64);
            self.alarm = Some(self.clock.counter_at(seconds, self.frequency));
        }
    }

    /// A read at `offset` of `size` bytes at counter value `now`. Registers are 32 bits
    /// wide: other widths, offsets between registers and RTCICR (write-only) read 0.
    pub fn read_at(&mut self, offset: u64, size: u8, now: u64) -> u64 {
        self.advance(now);
        if size != 4 {
            return 0;
        }
        let v = match offset {
            DR => self.count(now),
            MR => self.mr,
            LR => self.lr,
            // Started from reset and never stopped, as in QEMU (Linux's driver starts it
            // when it reads 0).
            CR => CR_START,
            IMSC => self.imsc,
            RIS => self.ris,
            MIS => self.ris & self.imsc,
            ID_OFFSET..=ID_END if offset.is_multiple_of(4) => ID[((offset - ID_OFFSET) / 4) as usize],
            _ => 0,
        };
        v as u64
    }

    /// A write at `offset` of `size` bytes at counter value `now`. Only 32-bit writes to
    /// RTCMR, RTCLR, RTCIMSC and RTCICR do anything; RTCCR (started already), the
    /// read-only registers and the rest ignore them.
    pub fn write_at(&mut self, offset: u64, size: u8, value: u64, now: u64) {
        self.advance(now);
        if size != 4 {
            return;
        }
        let v = value as u32;
        match offset {
            MR => {
                self.mr = v;
                self.arm(now);
            }
            LR => {
                // The counter now says `v`; the second keeps its phase on the board's clock.
                self.offset = self.offset.wrapping_add(v.wrapping_sub(self.count(now)));
                self.lr = v;
                self.arm(now);
            }
            IMSC => self.imsc = v & INT_MATCH,
            ICR => self.ris &= !(v & INT_MATCH),
            _ => {}
        }
    }
}

/// Whether `offset` is one of the registers above (else it reads as 0 and ignores writes,
/// and the bus warns).
fn is_register(offset: u64) -> bool {
    matches!(offset, DR | MR | LR | CR | IMSC | RIS | MIS | ICR)
        || (ID_OFFSET..=ID_END).contains(&offset) && offset.is_multiple_of(4)
}

impl super::Mmio for Pl031 {
    fn read(&mut self, offset: u64, size: u8, _: &mut super::Ctx<'_>) -> super::Effects {
        let value = self.read_at(offset, size, crate::arch::counter());
        let line = self.line_change().map(super::Signal::Level);
        super::Effects { value, line, unknown: !is_register(offset), ..Default::default() }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64, _: &mut super::Ctx<'_>) -> super::Effects {
        self.write_at(offset, size, value, crate::arch::counter());
        let line = self.line_change().map(super::Signal::Level);
        super::Effects { line, unknown: !is_register(offset), ..Default::default() }
    }
}

/// What the pCPUs' schedulers read of a VM's RTC without its lock: when its match is due,
/// and which pCPU arms its EL2 timer for it (the *watcher*: the pCPU whose vCPU last wrote
/// the RTC, which armed its timer then). Written under `Vm::rtc` after every access, so
/// the values follow the device's order. Both are hints in the way a WFI wake-up is: a
/// pCPU that reads a stale pair wakes early, for nothing, or does not watch; the watcher
/// itself always reads its own stores, so one pCPU is woken on time.
#[derive(Debug)]
pub struct AlarmWatch {
    /// The counter value at which the match interrupt is due; `u64::MAX`: none.
    at: AtomicU64,
    /// The watcher's pCPU index.
    watcher: AtomicUsize,
}

impl Default for AlarmWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl AlarmWatch {
    pub const fn new() -> Self {
        Self { at: AtomicU64::new(u64::MAX), watcher: AtomicUsize::new(0) }
    }

    /// Publishes the device's `alarm` (the `Vm::rtc` lock held); `watcher`, after a write,
    /// names the pCPU that watches it from now on.
    pub fn publish(&self, alarm: Option<u64>, watcher: Option<usize>) {
        if let Some(cpu) = watcher {
            self.watcher.store(cpu, Ordering::Relaxed);
        }
        self.at.store(alarm.unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Whether the match may be due at counter value `now` (then the device, under its
    /// lock, decides).
    pub fn due(&self, now: u64) -> bool {
        let at = self.at.load(Ordering::Acquire);
        at != u64::MAX && now >= at
    }

    /// When the match is due, if pCPU `cpu` watches it.
    pub fn watched_by(&self, cpu: usize) -> Option<u64> {
        if self.watcher.load(Ordering::Relaxed) != cpu {
            return None;
        }
        let at = self.at.load(Ordering::Acquire);
        (at != u64::MAX).then_some(at)
    }
}

#[cfg(test)]
mod tests;
