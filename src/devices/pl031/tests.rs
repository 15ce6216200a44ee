//! Host tests of the emulated PL031: every register, a VM's own time, the match alarm and
//! its line, and accesses the RTC does not answer.

use super::*;
use crate::devices::{Ctx, Effects, GuestMemory, Mmio, OutOfGuestRam, Signal};

/// 100 counter ticks a second, so that seconds are easy to see.
const HZ: u64 = 100;
/// The board's clock: 2026-12-01 17:18:26 UTC at counter 1000.
const BOARD: WallClock = WallClock { seconds: 1_796_145_506, counter: 1_000 };

fn rtc() -> Pl031 {
    Pl031::new(BOARD, HZ)
}

/// The counter value `s` seconds (and `ticks` more) after the board's reading.
fn at(s: u64, ticks: u64) -> u64 {
    BOARD.counter + s * HZ + ticks
}

fn read(r: &mut Pl031, offset: u64, now: u64) -> u32 {
    r.read_at(offset, 4, now) as u32
}

#[test]
fn identifies_as_a_pl031_primecell() {
    let mut r = rtc();
    let ids: Vec<u32> = (0..8).map(|i| read(&mut r, 0xfe0 + 4 * i, 0)).collect();
    assert_eq!(ids, vec![0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
    let word = |b: &[u32]| b.iter().rev().fold(0, |w, &x| (w << 8) | x);
    assert_eq!(
        word(&ids[..4]),
        0x0014_1031,
        "r1 of the part Linux's amba bus matches rtc-pl031 by (0x00041031, revision masked)"
    );
    assert_eq!(word(&ids[4..]), 0xb105_f00d);
    assert_eq!(read(&mut r, CR, 0), 1, "RTCCR: started, as QEMU reads it");
    r.write_at(CR, 4, 0, 0);
    assert_eq!(read(&mut r, CR, 0), 1, "once started, RTCCR writes have no effect");
}

#[test]
fn the_counter_is_the_boards_time_in_seconds() {
    let mut r = rtc();
    assert_eq!(read(&mut r, DR, at(0, 0)), 1_796_145_506);
    assert_eq!(read(&mut r, DR, at(0, HZ - 1)), 1_796_145_506, "not a second yet");
    assert_eq!(read(&mut r, DR, at(1, 0)), 1_796_145_507);
    assert_eq!(read(&mut r, DR, at(3600, 0)), 1_796_149_106, "an hour later");
    r.write_at(DR, 4, 5, at(3600, 0));
    assert_eq!(read(&mut r, DR, at(3600, 0)), 1_796_149_106, "RTCDR is read-only");
    // No RTC on the board: the epoch at counter 0.
    let mut none = Pl031::new(WallClock::default(), HZ);
    assert_eq!(read(&mut none, DR, 42 * HZ), 42);
}

#[test]
fn a_load_sets_this_vms_time_only() {
    let (mut a, mut b) = (rtc(), rtc());
    let t = at(10, 50);
    a.write_at(LR, 4, 2_000_000_000, t);
    assert_eq!(read(&mut a, DR, t), 2_000_000_000, "RTCDR says what was loaded");
    assert_eq!(read(&mut a, LR, t), 2_000_000_000, "RTCLR reads back the value loaded");
    assert_eq!(read(&mut b, DR, t), 1_796_145_516, "the other VM's clock is the board's");
    assert_eq!(read(&mut b, LR, t), 0);
    // Both keep running, a second apart on the board's ticks.
    assert_eq!(read(&mut a, DR, at(11, 0)), 2_000_000_001, "the second keeps the board's phase");
    assert_eq!(read(&mut b, DR, at(15, 0)), 1_796_145_521);
    assert_eq!(read(&mut a, DR, at(15, 0)), 2_000_000_005);
    assert_eq!(a.offset(), 2_000_000_000u32.wrapping_sub(1_796_145_516));
    // Setting it back, even below the board's time, is plain modulo-2^32 arithmetic.
    a.write_at(LR, 4, 7, at(15, 0));
    assert_eq!(read(&mut a, DR, at(16, 0)), 8);
    // The offset is what a restarted VM keeps.
    let mut again = rtc();
    again.set_offset(a.offset());
    assert_eq!(read(&mut again, DR, at(20, 0)), 12);
}

#[test]
fn the_match_sets_the_raw_interrupt_when_the_counter_reaches_it() {
    let mut r = rtc();
    let t = at(0, 30);
    assert_eq!(r.alarm(), None, "nothing armed from reset");
    r.write_at(MR, 4, 1_796_145_508, t);
    assert_eq!(read(&mut r, MR, t), 1_796_145_508);
    assert_eq!(r.alarm(), Some(at(2, 0)), "due at the start of that second");
    assert_eq!(r.poll(at(1, HZ - 1)), None);
    assert_eq!(read(&mut r, RIS, at(1, HZ - 1)), 0, "not yet");
    assert_eq!(r.poll(at(2, 0)), None, "masked: the line stays low");
    assert_eq!(read(&mut r, RIS, at(2, 0)), 1, "RTCRIS set");
    assert_eq!(read(&mut r, MIS, at(2, 0)), 0, "RTCMIS masked");
    assert_eq!(r.alarm(), None, "a match fires once");
    // A read finds it due by itself, with no poll.
    let mut r = rtc();
    r.write_at(MR, 4, 1_796_145_507, t);
    assert_eq!(read(&mut r, RIS, at(1, 0)), 1);
}

#[test]
fn an_unmasked_match_raises_the_line_until_the_clear() {
    let mut r = rtc();
    r.write_at(IMSC, 4, 1, at(0, 0));
    assert_eq!(r.line_change(), None, "no raw interrupt yet");
    r.write_at(MR, 4, 1_796_145_509, at(0, 0));
    assert_eq!(r.poll(at(2, 99)), None);
    assert_eq!(r.poll(at(3, 0)), Some(true), "the line goes high when the alarm is due");
    assert!(r.line());
    assert_eq!(read(&mut r, MIS, at(3, 0)), 1);
    assert_eq!(r.poll(at(10, 0)), None, "a level: it stays high");
    r.write_at(ICR, 4, 0, at(10, 0));
    assert_eq!(r.line_change(), None, "RTCICR bit 0 clear: nothing cleared");
    r.write_at(ICR, 4, 1, at(10, 0));
    assert_eq!(r.line_change(), Some(false), "RTCICR clears it");
    assert_eq!((read(&mut r, RIS, at(10, 0)), read(&mut r, MIS, at(10, 0))), (0, 0));
    assert_eq!(read(&mut r, ICR, at(10, 0)), 0, "RTCICR is write-only");
}

#[test]
fn the_mask_gates_the_line_both_ways() {
    let mut r = rtc();
    r.write_at(MR, 4, 1_796_145_506, at(0, 0));
    assert_eq!(read(&mut r, RIS, at(0, 0)), 1, "RTCMR equal to RTCDR: at once, as in QEMU");
    assert_eq!(r.line_change(), None, "masked");
    r.write_at(IMSC, 4, u32::MAX as u64, at(0, 0));
    assert_eq!(read(&mut r, IMSC, at(0, 0)), 1, "only the match bit");
    assert_eq!(r.line_change(), Some(true), "unmasking a raised interrupt raises the line");
    r.write_at(IMSC, 4, 0, at(0, 0));
    assert_eq!(r.line_change(), Some(false));
    assert_eq!(read(&mut r, RIS, at(0, 0)), 1, "masking leaves the raw interrupt");
}

#[test]
fn a_match_behind_the_counter_waits_for_it_to_wrap_and_a_load_rearms() {
    let mut r = rtc();
    r.write_at(MR, 4, 1_796_145_500, at(0, 0));
    assert_eq!(r.alarm(), Some(at((1u64 << 32) - 6, 0)), "RTCDR wraps before it comes");
    // Loading the time just before the match brings the alarm near.
    r.write_at(LR, 4, 1_796_145_498, at(5, 0));
    assert_eq!(r.alarm(), Some(at(7, 0)));
    r.write_at(LR, 4, 1_796_145_500, at(6, 0));
    assert_eq!(read(&mut r, RIS, at(6, 0)), 1, "loaded to equal RTCMR: at once");
    assert_eq!(r.alarm(), None);
}

#[test]
fn bad_offsets_and_widths_read_zero_and_change_nothing() {
    let mut r = rtc();
    r.write_at(MR, 4, 1_796_145_600, at(0, 0));
    r.write_at(IMSC, 4, 1, at(0, 0));
    let before = (r.mr, r.lr, r.offset, r.imsc, r.ris, r.alarm);
    for off in 0..SIZE + 8 {
        for size in [1u8, 2, 4, 8] {
            let v = r.read_at(off, size, at(1, 0));
            if size != 4 || !is_register(off) || off == ICR {
                assert_eq!(v, 0, "offset {off:#x} size {size}");
            }
            if size != 4 || !matches!(off, MR | LR | IMSC | ICR) {
                r.write_at(off, size, u64::MAX, at(1, 0));
            }
        }
    }
    assert_eq!((r.mr, r.lr, r.offset, r.imsc, r.ris, r.alarm), before, "no register changed");
    assert_eq!(r.read_at(DR, 8, at(1, 0)), 0, "64-bit reads are not registers' either");
    assert!(is_register(0xffc) && is_register(ICR) && !is_register(0x20) && !is_register(0xfe1));
    assert!(!is_register(0x1000) && !is_register(u64::MAX));
}

struct NoMemory;

impl GuestMemory for NoMemory {
    fn read(&self, _: u64, _: &mut [u8]) -> Result<(), OutOfGuestRam> {
        Err(OutOfGuestRam)
    }
    fn write(&mut self, _: u64, _: &[u8]) -> Result<(), OutOfGuestRam> {
        Err(OutOfGuestRam)
    }
}

/// Through the one device interface: the line's edges and unimplemented offsets reach the
/// bus as effects.
#[test]
fn the_mmio_interface_reports_the_line_and_unknown_offsets() {
    let mut mem = NoMemory;
    let mut ctx = Ctx { mem: &mut mem, frame: 0, mpidrs: &[0] };
    let mut r = Pl031::new(WallClock::default(), crate::arch::counter_frequency());
    assert_eq!(Mmio::write(&mut r, IMSC, 4, 1, &mut ctx), Effects::default());
    assert_eq!(Mmio::write(&mut r, MR, 4, 1234, &mut ctx), Effects::default(), "armed, not due");
    let e = Mmio::write(&mut r, LR, 4, 1234, &mut ctx);
    assert_eq!(e.line, Some(Signal::Level(true)), "loaded to equal the match: the line goes high");
    assert_eq!(Mmio::read(&mut r, MIS, 4, &mut ctx), Effects::value(1));
    assert_eq!(Mmio::write(&mut r, ICR, 4, 1, &mut ctx).line, Some(Signal::Level(false)));
    let e = Mmio::read(&mut r, 0x24, 4, &mut ctx);
    assert!(e.unknown && e.value == 0, "between the registers: RAZ, and the bus warns");
    assert!(Mmio::write(&mut r, 0x800, 4, 1, &mut ctx).unknown);
    assert!(!Mmio::read(&mut r, 0xfe0, 4, &mut ctx).unknown);
}

#[test]
fn the_watch_names_one_pcpu_and_the_due_time() {
    let w = AlarmWatch::new();
    assert!(!w.due(u64::MAX - 1), "nothing armed");
    assert_eq!(w.watched_by(0), None);
    w.publish(Some(500), Some(3));
    assert_eq!((w.watched_by(3), w.watched_by(0)), (Some(500), None), "the writer's pCPU watches it");
    assert!(!w.due(499) && w.due(500) && w.due(501));
    w.publish(Some(400), None);
    assert_eq!(w.watched_by(3), Some(400), "a read keeps the watcher");
    w.publish(None, None);
    assert!(!w.due(1000));
    assert_eq!(w.watched_by(3), None, "fired: nothing to watch");
}
