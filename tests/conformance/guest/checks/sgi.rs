//! SGIs between every ordered pair of the four CPUs: SGI 8 + sender to one target, delivered
//! to that target exactly once and to no one else. On a GICv3 (IHI 0069) sent by
//! ICC_SGI1R_EL1 with a target list; on a GICv2 (IHI 0048B 4.3.15) by GICD_SGIR with the
//! target's CPU interface in the target list, and each sender's SGI is an interrupt of its
//! own that GICC_IAR acknowledges with the sender's CPU interface in bits 12:10 (3.2.2), which
//! must be the sender's (GICD_ITARGETSR0 as the sender read it).

use crate::cpu::CPUS;
use crate::gic;
use crate::report::{Verdict, note, want};
use crate::smp::{self, cmd};
use crate::sys;
use crate::{Ctx, Group};
use core::sync::atomic::Ordering::Relaxed;

pub static GROUP: Group = Group {
    name: "sgi",
    rows: &[
        "sgi-0-to-1", "sgi-0-to-2", "sgi-0-to-3", "sgi-1-to-0", "sgi-1-to-2", "sgi-1-to-3",
        "sgi-2-to-0", "sgi-2-to-1", "sgi-2-to-3", "sgi-3-to-0", "sgi-3-to-1", "sgi-3-to-2",
    ],
    run,
};

const N: usize = 4;

fn run(ctx: &mut Ctx) {
    let mut up = [Ok(()); N];
    for (n, u) in up.iter_mut().enumerate().skip(1) {
        *u = smp::worker(n);
    }
    let mpidr = |n: usize| if n == 0 { sys::mpidr() } else { CPUS[n].mpidr.load(Relaxed) };
    for s in 0..N {
        for t in 0..N {
            if s == t {
                continue;
            }
            let mut name = crate::report::Line::new();
            let _ = core::fmt::Write::write_fmt(&mut name, format_args!("sgi-{s}-to-{t}"));
            let mut v = Verdict::new();
            if let Some(e) = [s, t].iter().find_map(|&n| up[n].err().map(|e| (n, e))) {
                v.fail(format_args!("CPU {}: {}", e.0, e.1));
                ctx.row(name.as_str(), &v);
                continue;
            }
            let intid = 8 + s as u32;
            for c in &CPUS {
                for i in 8..12 {
                    c.irq_count[i].store(0, Relaxed);
                    c.sgi_src[i].store(0, Relaxed);
                }
            }
            if s == 0 {
                gic::send_sgi(intid, mpidr(t));
            } else if smp::run(s, cmd::SEND_SGI, [intid as u64, mpidr(t), 0, 0], 500_000).is_none() {
                v.fail(format_args!("CPU {s} did not answer"));
            }
            if t == 0 {
                sys::irqs(true);
            }
            let got = sys::wait_until(200_000, || CPUS[t].count(intid) > 0);
            sys::delay_us(20_000);
            sys::irqs(false);
            match got {
                Some(us) => note!(v, "delivered in {us} us"),
                None => v.fail(format_args!("not delivered within 200 ms")),
            }
            for (n, c) in CPUS.iter().enumerate() {
                for i in 8..12u32 {
                    let k = c.count(i);
                    let want = (n == t && i == intid) as u32;
                    want!(v, k == want || (k == 0 && want == 1), "CPU {n} took SGI {i} {k} times (want {want})");
                }
            }
            if gic::v2() {
                let want = 1u32 << gic::mask_of(mpidr(s)).trailing_zeros();
                let seen = CPUS[t].sgi_src[intid as usize].load(Relaxed);
                if seen == want {
                    note!(v, "GICC_IAR source CPU {}", want.trailing_zeros());
                } else {
                    v.fail(format_args!("GICC_IAR source CPUs {seen:#x} (want {want:#x}, CPU {s}'s interface)"));
                }
            }
            ctx.row(name.as_str(), &v);
        }
    }
}
