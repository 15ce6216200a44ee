//! The virt board's PL031 real-time clock at 0x09010000 (Arm DDI 0224, "PrimeCell Real Time
//! Clock"), its interrupt SPI 2 (INTID 34): the PrimeCell identification registers; RTCDR is
//! the host's wall clock (the runner compares the value this prints with its own clock:
//! QEMU's RTC starts at the host's UTC time); it counts one a second (against the generic
//! counter); RTCLR sets it (and reads back); an alarm (RTCMR, RTCIMSC) raises the interrupt
//! when RTCDR reaches RTCMR (RTCRIS, RTCMIS, the SPI pending, the IRQ taken once) and
//! RTCICR clears it.

use crate::cpu::cpu;
use crate::exc::irq_hook;
use crate::gic::{self, ICACTIVER, ICENABLER, ICPENDR, ISENABLER, ISPENDR};
use crate::report::{Verdict, note, want};
use crate::sys::pl031::*;
use crate::sys::{self, read32, write32};
use crate::{Ctx, Group};
use core::sync::atomic::Ordering::Relaxed;

pub static GROUP: Group = Group {
    name: "rtc",
    rows: &["rtc-id", "rtc-wallclock", "rtc-counts-seconds", "rtc-load", "rtc-alarm"],
    run,
};

/// PeriphID0-3 and PCellID0-3 (0xfe0-0xffc).
const ID: [u32; 8] = [0x31, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Runs one row's body under its own recovery point, so that a device that is not there
/// (an external abort) fails that row and the next one still runs.
fn guarded_row(ctx: &mut Ctx, name: &str, f: impl FnOnce(&mut Verdict)) {
    let mut v = Verdict::new();
    let vp = &mut v as *mut Verdict;
    // SAFETY: the closure is the only user of v while it runs.
    if let Err(fault) = crate::exc::guarded(|| f(unsafe { &mut *vp })) {
        v.fail(format_args!("{fault}"));
    }
    ctx.row(name, &v);
}

/// Waits (up to 1.5 s) for RTCDR to change: its new value and the counter then.
fn next_second() -> Option<(u32, u64)> {
    let start = read32(RTC + DR);
    let mut got = None;
    sys::wait_until(1_500_000, || {
        let d = read32(RTC + DR);
        if d != start {
            got = Some((d, sys::now()));
        }
        got.is_some()
    })?;
    got
}

fn run(ctx: &mut Ctx) {
    guarded_row(ctx, "rtc-id", |v| {
        let mut got = [0u32; 8];
        for (i, g) in got.iter_mut().enumerate() {
            *g = read32(RTC + 0xfe0 + 4 * i) & 0xff;
        }
        // PeriphID2's revision nibble (bits 7:4) is the implementation's; the rest is fixed.
        let fixed = |i: usize, x: u32| if i == 2 { x & 0x0f } else { x };
        let ok = (0..8).all(|i| fixed(i, got[i]) == fixed(i, ID[i]));
        want!(v, ok, "ID registers {got:02x?} (want {ID:02x?}, PeriphID2 revision aside)");
        let cr = read32(RTC + CR) & 1;
        want!(v, cr == 1, "RTCCR.RTCStart {cr} (the RTC is started out of reset)");
        if v.ok {
            note!(v, "PL031 {got:02x?}");
        }
    });

    // The wall clock: RTCDR, printed for the runner to compare with the host's time.
    let mut dr = None;
    if let Err(fault) = crate::exc::guarded(|| dr = Some(read32(RTC + DR))) {
        let mut v = Verdict::new();
        v.fail(format_args!("{fault}"));
        ctx.row("rtc-wallclock", &v);
    } else {
        ctx.host_row("rtc-wallclock", format_args!("epoch={}", dr.unwrap_or(0)));
    }

    guarded_row(ctx, "rtc-counts-seconds", |v| {
        let Some((d0, t0)) = next_second() else {
            v.fail(format_args!("RTCDR did not change in 1.5 s"));
            return;
        };
        let Some((d1, t1)) = next_second() else {
            v.fail(format_args!("RTCDR did not change again in 1.5 s"));
            return;
        };
        let us = sys::ticks_to_us(t1 - t0);
        want!(v, d1 == d0.wrapping_add(1), "RTCDR went {d0} -> {d1}");
        want!(v, (900_000..=1_100_000).contains(&us), "one RTC second took {us} us of the counter");
        if v.ok {
            note!(v, "{d0} -> {d1} in {us} us");
        }
    });

    guarded_row(ctx, "rtc-load", |v| {
        let before = read32(RTC + DR);
        let x = 0x1000_0000;
        write32(RTC + LR, x);
        let dr = read32(RTC + DR);
        let lr = read32(RTC + LR);
        want!(v, dr == x || dr == x + 1, "RTCDR {dr:#x} right after RTCLR = {x:#x}");
        want!(v, lr == x, "RTCLR reads {lr:#x}");
        // Back to (about) the wall clock.
        write32(RTC + LR, before.wrapping_add(1));
        if v.ok {
            note!(v, "RTCDR {dr:#x} after RTCLR = {x:#x}");
        }
    });

    guarded_row(ctx, "rtc-alarm", |v| alarm(v));
}

fn alarm(v: &mut Verdict) {
    let c = cpu();
    sys::irqs(false);
    write32(RTC + IMSC, 0);
    write32(RTC + ICR, 1);
    let rd = c.gicr.load(Relaxed);
    gic::set_edge(INTID, false);
    gic::set_route(INTID, sys::mpidr());
    gic::set_bit(rd, ICPENDR, INTID);
    gic::set_bit(rd, ICACTIVER, INTID);
    gic::set_bit(rd, ISENABLER, INTID);
    c.reset_counts();
    c.irq_hook.store(irq_hook::RTC, Relaxed);
    // The alarm at the second after next: due in (1, 2] s.
    let Some((d, t0)) = next_second() else {
        v.fail(format_args!("RTCDR does not count"));
        return;
    };
    let ris = read32(RTC + RIS);
    want!(v, ris == 0, "RTCRIS {ris} before the alarm");
    let mr = d.wrapping_add(2);
    write32(RTC + MR, mr);
    write32(RTC + IMSC, 1);
    let mr_back = read32(RTC + MR);
    want!(v, mr_back == mr, "RTCMR reads {mr_back:#x} (wrote {mr:#x})");
    sys::irqs(true);
    let got = sys::wait_until(3_000_000, || c.count(INTID) > 0);
    sys::delay_us(200_000);
    sys::irqs(false);
    let n = c.count(INTID);
    match got {
        None => v.fail(format_args!("no IRQ {INTID} within 3 s of RTCMR = RTCDR + 2 (RIS {} MIS {}, pending {})",
            read32(RTC + RIS), read32(RTC + MIS), gic::get_bit(rd, ISPENDR, INTID))),
        Some(_) => {
            let at = sys::ticks_to_us(c.rec[3].load(Relaxed) - t0);
            let (mis, ris, dr) = (c.rec[0].load(Relaxed), c.rec[1].load(Relaxed), c.rec[2].load(Relaxed));
            note!(v, "IRQ {at} us after a second began, RTCDR {dr}");
            want!(v, (1_950_000..=2_150_000).contains(&at), "taken {at} us after RTCDR became {d} (want 2 s)");
            want!(v, mis == 1 && ris == 1, "in the handler RTCMIS {mis} RTCRIS {ris} (want 1, 1)");
            want!(v, dr == mr as u64, "RTCDR {dr} in the handler (want RTCMR {mr})");
            want!(v, n == 1, "taken {n} times (RTCICR in the handler should clear it)");
        }
    }
    let (ris, mis) = (read32(RTC + RIS), read32(RTC + MIS));
    want!(v, ris == 0 && mis == 0, "after RTCICR: RTCRIS {ris} RTCMIS {mis}");
    want!(v, !gic::get_bit(rd, ISPENDR, INTID), "INTID {INTID} still pending after RTCICR");
    write32(RTC + IMSC, 0);
    gic::set_bit(rd, ICENABLER, INTID);
}
