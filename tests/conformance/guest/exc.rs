//! Exceptions: the frame entry.S saves, the per-CPU hooks a check arms to say what it
//! expects (an exception to record and step over, a breakpoint, a watchpoint, a software
//! step; an interrupt to handle one way or another), and the recovery point that turns an
//! unexpected exception in a check into a failed row instead of a crash.

use crate::cpu::{Cpu, cpu};
use crate::sys::{self, mrs, msr};
use core::sync::atomic::Ordering::{Relaxed, SeqCst};

/// What entry.S saves on the stack (FRAME = 288 bytes).
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    pub esr: u64,
    pub far: u64,
}
const _: () = assert!(core::mem::size_of::<Frame>() == 280);

/// JmpBuf for try_call: x19-x30, sp, DAIF.
#[repr(C)]
pub struct JmpBuf(pub [u64; 14]);

unsafe extern "C" {
    fn try_call(f: extern "C" fn(usize), arg: usize, jb: *mut JmpBuf) -> u64;
    fn recover_land();
}

pub const EC_UNKNOWN: u64 = 0x00;
pub const EC_BREAKPOINT_SAME: u64 = 0x31;
pub const EC_STEP_SAME: u64 = 0x33;
pub const EC_WATCHPOINT_SAME: u64 = 0x35;

pub fn ec(esr: u64) -> u64 {
    (esr >> 26) & 0x3f
}

/// The synchronous-exception hook (Cpu::sync_hook).
pub mod hook {
    /// Nothing expected: an exception is a failure (recovered, if a check is running).
    pub const NONE: u32 = 0;
    /// Record the next synchronous exception (whatever its class) and return past the
    /// instruction (ELR + 4); one shot.
    pub const PROBE: u32 = 1;
    /// A breakpoint (EC 0x31): record, disable breakpoint 0, return to it.
    pub const BREAKPOINT: u32 = 2;
    /// A watchpoint (EC 0x35): record, disable watchpoint 0, return to the access.
    pub const WATCHPOINT: u32 = 3;
    /// Software step (EC 0x33): record ELR, keep stepping until ELR == hook_arg.
    pub const STEP: u32 = 4;
}

/// The IRQ hook (Cpu::irq_hook): what the handler does after acknowledging one.
pub mod irq_hook {
    /// EOI it.
    pub const EOI: u32 = 0;
    /// The timer hook_arg names (0 virtual, 1 physical): record its CTL (rec[0]), move its
    /// compare value 10 s on (the line drops), EOI.
    pub const TIMER_QUIET: u32 = 1;
    /// The timer: the first time only EOI (the line is still high); from the second on,
    /// record CTL (rec[1]), disable the timer, EOI.
    pub const TIMER_LEVEL: u32 = 2;
    /// The RTC's SPI: record RTCMIS (rec[0]), RTCRIS (rec[1]), RTCDR (rec[2]) and the
    /// counter (rec[3]), clear it (RTCICR), EOI.
    pub const RTC: u32 = 3;
}

/// Fault record slots (Cpu::fault).
pub mod slot {
    pub const VECTOR: usize = 0;
    pub const ESR: usize = 1;
    pub const FAR: usize = 2;
    pub const ELR: usize = 3;
    pub const SPSR: usize = 4;
    /// PSTATE in the handler: DAIF, PAN, SPSel, SSBS, UAO, DIT (0 where not implemented).
    pub const H_DAIF: usize = 5;
    pub const H_PAN: usize = 6;
    pub const H_SPSEL: usize = 7;
    pub const H_SSBS: usize = 8;
    pub const H_UAO: usize = 9;
    pub const H_DIT: usize = 10;
    pub const COUNT: usize = 11;
}

/// What an unexpected exception was: the recovery reports it.
#[derive(Clone, Copy, Default)]
pub struct Fault {
    pub vector: u64,
    pub esr: u64,
    pub far: u64,
    pub elr: u64,
}

impl core::fmt::Display for Fault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match (self.vector, ec(self.esr)) {
            (4, 0x24 | 0x25) => write!(f, "unexpected data abort at {:#x} (ESR {:#x}, ELR {:#x})", self.far, self.esr, self.elr),
            (4, 0x00) => write!(f, "unexpected UNDEFINED exception (ESR {:#x}, ELR {:#x})", self.esr, self.elr),
            _ => write!(f, "unexpected exception: vector {} ESR {:#x} (EC {:#x}) FAR {:#x} ELR {:#x}", self.vector, self.esr, ec(self.esr), self.far, self.elr),
        }
    }
}

fn record(c: &Cpu, f: &Frame, vector: u64) {
    let r = &c.fault;
    r[slot::VECTOR].store(vector, Relaxed);
    r[slot::ESR].store(f.esr, Relaxed);
    r[slot::FAR].store(f.far, Relaxed);
    r[slot::ELR].store(f.elr, Relaxed);
    r[slot::SPSR].store(f.spsr, Relaxed);
    let feat = crate::feat();
    r[slot::H_DAIF].store(mrs!("daif"), Relaxed);
    r[slot::H_SPSEL].store(mrs!("spsel"), Relaxed);
    r[slot::H_PAN].store(if feat.pan { mrs!("s3_0_c4_c2_3") } else { 0 }, Relaxed);
    r[slot::H_UAO].store(if feat.uao { mrs!("s3_0_c4_c2_4") } else { 0 }, Relaxed);
    r[slot::H_DIT].store(if feat.dit { mrs!("s3_3_c4_c2_5") } else { 0 }, Relaxed);
    r[slot::H_SSBS].store(if feat.ssbs_reg { mrs!("s3_3_c4_c2_6") } else { 0 }, Relaxed);
    r[slot::COUNT].fetch_add(1, Relaxed);
}

/// Called by entry.S for every exception: `vector` is the entry's index (4 = current EL
/// with SP_EL1, synchronous; 5 = its IRQ).
#[unsafe(no_mangle)]
extern "C" fn exception(f: &mut Frame, vector: u64) {
    let c = cpu();
    match vector {
        4 => {
            if sync(c, f) {
                return;
            }
        }
        5 => return irq(c),
        _ => {}
    }
    unexpected(c, f, vector);
}

/// A synchronous exception a hook expects: handled (true) or not.
fn sync(c: &Cpu, f: &mut Frame) -> bool {
    let class = ec(f.esr);
    match c.sync_hook.load(Relaxed) {
        hook::PROBE => {
            record(c, f, 4);
            c.sync_hook.store(hook::NONE, Relaxed);
            f.elr += 4;
            true
        }
        hook::BREAKPOINT if class == EC_BREAKPOINT_SAME => {
            record(c, f, 4);
            msr!("dbgbcr0_el1", 0);
            sys::isb();
            true
        }
        hook::WATCHPOINT if class == EC_WATCHPOINT_SAME => {
            record(c, f, 4);
            msr!("dbgwcr0_el1", 0);
            sys::isb();
            true
        }
        hook::STEP if class == EC_STEP_SAME => {
            let n = (c.fault[slot::COUNT].load(Relaxed) - c.step_base.load(Relaxed)) as usize;
            if n < c.steps.len() {
                c.steps[n].store(f.elr, Relaxed);
            }
            record(c, f, 4);
            if f.elr == c.hook_arg.load(Relaxed) || n >= 64 {
                // Done: no more stepping.
                f.spsr &= !(1 << 21);
                msr!("mdscr_el1", mrs!("mdscr_el1") & !1);
                sys::isb();
            } else {
                f.spsr |= 1 << 21;
            }
            true
        }
        _ => false,
    }
}

fn unexpected(c: &Cpu, f: &mut Frame, vector: u64) {
    let fault = Fault { vector, esr: f.esr, far: f.far, elr: f.elr };
    c.sync_hook.store(hook::NONE, Relaxed);
    let jb = c.jb.swap(0, SeqCst);
    if jb != 0 {
        c.set_last_fault(fault);
        f.elr = recover_land as *const () as u64;
        f.x[0] = jb;
        // EL1h, DAIF masked; recover_land restores the caller's DAIF.
        f.spsr = 0x3c5;
        return;
    }
    if sys::cpu_index() == 0 {
        crate::report::record!("fatal cpu=0 {fault}");
    } else {
        c.set_last_fault(fault);
        c.fatal.store(true, SeqCst);
    }
    loop {
        sys::wfi();
    }
}

/// One IRQ: acknowledge, count, the hook, EOI as it says.
fn irq(c: &Cpu) {
    let iar = crate::gic::ack();
    let intid = crate::gic::intid(iar);
    if intid >= 1020 {
        return;
    }
    if intid < 16 {
        c.sgi_src[intid as usize].fetch_or(1 << crate::gic::source(iar), Relaxed);
    }
    match c.irq_count.get(intid as usize) {
        Some(n) => n.fetch_add(1, Relaxed),
        None => c.irq_other.fetch_add(1, Relaxed),
    };
    c.last_intid.store(intid, Relaxed);
    let eoi = match (c.irq_hook.load(Relaxed), intid) {
        (irq_hook::TIMER_QUIET, 27 | 30) => {
            let t = sys::Timer::from_intid(intid);
            c.rec[0].store(t.ctl(), Relaxed);
            t.set_cval(t.now() + sys::ticks_us(10_000_000));
            sys::isb();
            true
        }
        (irq_hook::TIMER_LEVEL, 27 | 30) => {
            let t = sys::Timer::from_intid(intid);
            if c.irq_count[intid as usize].load(Relaxed) >= 2 {
                c.rec[1].store(t.ctl(), Relaxed);
                t.set_ctl(0);
                sys::isb();
            }
            true
        }
        (irq_hook::RTC, 34) => {
            use sys::pl031::{DR, ICR, MIS, RIS, RTC};
            c.rec[0].store(sys::read32(RTC + MIS) as u64, Relaxed);
            c.rec[1].store(sys::read32(RTC + RIS) as u64, Relaxed);
            c.rec[2].store(sys::read32(RTC + DR) as u64, Relaxed);
            c.rec[3].store(sys::now(), Relaxed);
            sys::write32(RTC + ICR, 1);
            sys::dsb_sy();
            true
        }
        _ => true,
    };
    if eoi {
        crate::gic::eoi(iar);
    }
}

/// Runs `f` with a recovery point: `Err` with what happened if an unexpected exception
/// came in it (its state is abandoned where it was). Nests: the innermost recovery point
/// takes the exception.
pub fn guarded<F: FnOnce()>(f: F) -> Result<(), Fault> {
    extern "C" fn tramp<F: FnOnce()>(p: usize) {
        // SAFETY: p is the Option<F> below, alive for the call.
        let slot = unsafe { &mut *(p as *mut Option<F>) };
        if let Some(f) = slot.take() {
            f();
        }
    }
    let mut slot = Some(f);
    let c = cpu();
    let mut jb = JmpBuf([0; 14]);
    let prev = c.jb.swap(&mut jb as *mut JmpBuf as u64, SeqCst);
    // SAFETY: try_call saves the callee-saved registers in jb and calls tramp; an
    // unexpected exception comes back through recover_land with them restored.
    let r = unsafe { try_call(tramp::<F>, &mut slot as *mut Option<F> as usize, &mut jb) };
    c.jb.store(prev, SeqCst);
    if r == 0 { Ok(()) } else { Err(c.last_fault()) }
}

/// What one probed instruction did.
#[derive(Clone, Copy)]
pub enum Probe {
    /// It completed.
    Ok,
    /// It took an exception: its ESR.
    Fault(u64),
}

impl Probe {
    pub fn ok(self) -> bool {
        matches!(self, Probe::Ok)
    }
    /// An undefined-instruction exception (EC 0x00) at EL1.
    pub fn undef(self) -> bool {
        matches!(self, Probe::Fault(esr) if ec(esr) == EC_UNKNOWN)
    }
}

impl core::fmt::Display for Probe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Probe::Ok => write!(f, "works"),
            Probe::Fault(esr) if ec(*esr) == 0 => write!(f, "UNDEFINED (EC 0x0)"),
            Probe::Fault(esr) => write!(f, "exception ESR {esr:#x} (EC {:#x})", ec(*esr)),
        }
    }
}

/// Runs `f`, which executes one instruction that may take a synchronous exception; an
/// exception is recorded (Cpu::fault) and stepped over.
pub fn probe(f: impl FnOnce()) -> Probe {
    let c = cpu();
    let before = c.fault[slot::COUNT].load(Relaxed);
    c.sync_hook.store(hook::PROBE, SeqCst);
    f();
    c.sync_hook.store(hook::NONE, SeqCst);
    if c.fault[slot::COUNT].load(Relaxed) != before { Probe::Fault(c.fault[slot::ESR].load(Relaxed)) } else { Probe::Ok }
}
