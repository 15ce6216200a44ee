//! System registers, MMIO, barriers and time: the guest's thin layer over the hardware.

/// `mrs` of a system register by name (or `s3_0_c1_c2_1` form).
macro_rules! mrs {
    ($r:literal) => {{
        let v: u64;
        // SAFETY: a system register read; the callers know the register exists (or probe it).
        unsafe { core::arch::asm!(concat!("mrs {}, ", $r), out(reg) v, options(nostack)) };
        v
    }};
}

/// `msr` of a system register by name.
macro_rules! msr {
    ($r:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: a system register write the caller means.
        unsafe { core::arch::asm!(concat!("msr ", $r, ", {}"), in(reg) v, options(nostack)) };
    }};
}

pub(crate) use {mrs, msr};

pub fn isb() {
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("isb", options(nostack)) };
}

pub fn dsb_sy() {
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

pub fn dsb_ish() {
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("dsb ish", options(nostack)) };
}

pub fn wfi() {
    // SAFETY: waits for an interrupt.
    unsafe { core::arch::asm!("wfi", options(nostack)) };
}

/// PSTATE.I: IRQs masked (true) or taken.
pub fn irqs(on: bool) {
    // SAFETY: PSTATE.I.
    unsafe {
        if on {
            core::arch::asm!("msr daifclr, #2", "isb", options(nostack));
        } else {
            core::arch::asm!("msr daifset, #2", options(nostack));
        }
    }
}

pub fn read32(addr: usize) -> u32 {
    // SAFETY: an MMIO register (or RAM) the caller names; aligned.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

pub fn write32(addr: usize, v: u32) {
    // SAFETY: as read32.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

pub fn read64(addr: usize) -> u64 {
    // SAFETY: as read32.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

pub fn write64(addr: usize, v: u64) {
    // SAFETY: as read32.
    unsafe { core::ptr::write_volatile(addr as *mut u64, v) }
}

/// This CPU's index (0 = the boot CPU), from TPIDR_EL1.
pub fn cpu_index() -> usize {
    mrs!("tpidr_el1") as usize
}

pub fn mpidr() -> u64 {
    mrs!("mpidr_el1") & 0xff_00ff_ffff
}

/// The counter's frequency (CNTFRQ_EL0).
pub fn freq() -> u64 {
    mrs!("cntfrq_el0")
}

/// The virtual count, after an ISB (so it is not read early).
pub fn now() -> u64 {
    isb();
    mrs!("cntvct_el0")
}

pub fn ticks_us(us: u64) -> u64 {
    freq() * us / 1_000_000
}

pub fn ticks_to_us(t: u64) -> u64 {
    t * 1_000_000 / freq()
}

pub fn delay_us(us: u64) {
    let end = now() + ticks_us(us);
    while now() < end {}
}

/// Polls `f` until it is true or `us` microseconds passed: the microseconds it took.
pub fn wait_until(us: u64, mut f: impl FnMut() -> bool) -> Option<u64> {
    let start = now();
    let end = start + ticks_us(us);
    loop {
        if f() {
            return Some(ticks_to_us(now() - start));
        }
        if now() >= end {
            return if f() { Some(ticks_to_us(now() - start)) } else { None };
        }
    }
}

/// A field of an ID register: `width` bits at `shift`.
pub fn field(v: u64, shift: u32, width: u32) -> u64 {
    (v >> shift) & ((1 << width) - 1)
}

/// The EL1 timers (Arm ARM D11.2): CNTV (the virtual timer, PPI 27) and CNTP (the EL1
/// physical timer, PPI 30), and the bits of their CTL registers.
pub const ENABLE: u64 = 1;
pub const IMASK: u64 = 2;
pub const ISTATUS: u64 = 4;

#[derive(Clone, Copy, PartialEq)]
pub enum Timer {
    Virt,
    Phys,
}

impl Timer {
    pub fn from_intid(intid: u32) -> Timer {
        if intid == 30 { Timer::Phys } else { Timer::Virt }
    }
    pub fn intid(self) -> u32 {
        match self {
            Timer::Virt => 27,
            Timer::Phys => 30,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Timer::Virt => "vtimer",
            Timer::Phys => "ptimer",
        }
    }
    pub fn ctl(self) -> u64 {
        match self {
            Timer::Virt => mrs!("cntv_ctl_el0"),
            Timer::Phys => mrs!("cntp_ctl_el0"),
        }
    }
    pub fn set_ctl(self, v: u64) {
        match self {
            Timer::Virt => msr!("cntv_ctl_el0", v),
            Timer::Phys => msr!("cntp_ctl_el0", v),
        }
    }
    pub fn set_cval(self, v: u64) {
        match self {
            Timer::Virt => msr!("cntv_cval_el0", v),
            Timer::Phys => msr!("cntp_cval_el0", v),
        }
    }
    /// The count this timer compares with.
    pub fn now(self) -> u64 {
        isb();
        match self {
            Timer::Virt => mrs!("cntvct_el0"),
            Timer::Phys => mrs!("cntpct_el0"),
        }
    }
}

/// The PL031 real-time clock of the virt board (Arm DDI 0224): its base and registers.
pub mod pl031 {
    pub const RTC: usize = 0x0901_0000;
    pub const DR: usize = 0x00;
    pub const MR: usize = 0x04;
    pub const LR: usize = 0x08;
    pub const CR: usize = 0x0c;
    pub const IMSC: usize = 0x10;
    pub const RIS: usize = 0x14;
    pub const MIS: usize = 0x18;
    pub const ICR: usize = 0x1c;
    /// Its interrupt, SPI 2.
    pub const INTID: u32 = 34;
}
