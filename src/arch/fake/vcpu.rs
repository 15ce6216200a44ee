//! Fake guest entry: the per-pCPU "hardware" a guest sees (EL1 exception registers, the two
//! EL1 timers, list registers, the loaded VM), and `enter`, which hands it to the guest's
//! thread and waits for its next exit.

use super::guest::{self, In, Out};
use crate::arch::{GuestRegs, Syndrome};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::mpsc;

/// Vector indices of guest exits (lower EL, AArch64).
pub(crate) const VECTOR_LOWER_SYNC: u64 = 8;
pub(crate) const VECTOR_LOWER_IRQ: u64 = 9;
pub(crate) const VECTOR_LOWER_SERROR: u64 = 11;

/// One EL1 timer (CNTx_CTL_EL0, CNTx_CVAL_EL0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timer {
    pub ctl: u64,
    pub cval: u64,
}

impl Timer {
    /// The timer's output: ENABLE, not IMASK, and the condition met at count `now`.
    pub fn fires(&self, now: u64) -> bool {
        self.ctl & 1 != 0 && self.ctl & super::cpu::TIMER_IMASK == 0 && now >= self.cval
    }
}

/// One list register, held decoded (deliberately not ICH_LR's layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeLr {
    pub intid: u32,
    pub priority: u8,
    pub pending: bool,
    pub active: bool,
    /// Maintenance interrupt when the guest deactivates it.
    pub eoi: bool,
    pub group1: bool,
    /// The sending CPU interface of a GICv2 SGI.
    pub source: u8,
    /// HW = 1: the physical INTID the guest's deactivation deactivates.
    pub hw: Option<u32>,
}

/// The VM configuration `load_guest_config` put on this pCPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    pub vttbr: u64,
    pub vtcr: u64,
    pub vmpidr: u64,
    pub cntvoff: u64,
}

/// List registers the fake's virtual CPU interface has.
pub const LR_COUNT: usize = 4;

/// What one pCPU's registers hold for the guest.
#[derive(Debug, Clone, Default)]
pub struct Hw {
    pub el1: crate::arch::El1Regs,
    pub fp: crate::arch::FpRegs,
    pub gic: crate::arch::GicCpuRegs,
    pub vtimer: Timer,
    pub ptimer: Timer,
    /// The EL2 physical timer.
    pub hyp: Timer,
    /// HCR_EL2.TWI: WFI traps.
    pub wfi_trap: bool,
    /// The debug registers (`debug.rs`); `debug.owned` is MDCR_EL2.TDA clear.
    pub debug: crate::arch::DebugRegs,
    pub lrs: [Option<FakeLr>; LR_COUNT],
    /// ICH_HCR_EL2.En and .UIE.
    pub vgic_enabled: bool,
    pub underflow: bool,
    pub config: Option<Config>,
}

impl Hw {
    /// Level-sensitive physical interrupts this state asserts (bit n = PPI n).
    pub fn levels(&self) -> u32 {
        let now = super::cpu::counter();
        let mut map = 0;
        let voff = self.config.map_or(0, |c| c.cntvoff);
        if self.vtimer.fires(now.wrapping_sub(voff)) {
            map |= 1 << super::gic::PPI_VIRTUAL_TIMER;
        }
        if self.ptimer.fires(now) {
            map |= 1 << super::gic::PPI_PHYSICAL_TIMER;
        }
        if self.hyp.fires(now) {
            map |= 1 << super::gic::PPI_HYP_TIMER;
        }
        if self.maintenance() {
            map |= 1 << super::gic::PPI_MAINTENANCE;
        }
        map
    }

    /// The maintenance interrupt: underflow requested and at most one LR in use, or an LR
    /// that asked for an exit on EOI and was deactivated.
    fn maintenance(&self) -> bool {
        if !self.vgic_enabled {
            return false;
        }
        let busy = self.lrs.iter().flatten().filter(|l| l.pending || l.active).count();
        let eoi = self.lrs.iter().flatten().any(|l| l.eoi && !l.pending && !l.active);
        (self.underflow && busy <= 1) || eoi
    }
}

thread_local! {
    static HW: RefCell<Hw> = RefCell::new(Hw::default());
    /// The guest thread of each vCPU this pCPU has entered, by (VTTBR, VMPIDR).
    static SESSIONS: RefCell<HashMap<(u64, u64), Session>> = RefCell::new(HashMap::new());
}

struct Session {
    to_guest: mpsc::Sender<In>,
    from_guest: mpsc::Receiver<Out>,
}

/// Runs `f` on this pCPU's registers.
pub(crate) fn with_hw<R>(f: impl FnOnce(&mut Hw) -> R) -> R {
    HW.with(|h| f(&mut h.borrow_mut()))
}

/// Runs the guest until its next exit. A physical interrupt already pending exits at once
/// (the guest runs no further instruction); otherwise the vCPU's program continues on its
/// own thread, started from the program registered at its entry address the first time.
pub fn enter(regs: &mut GuestRegs) -> Syndrome {
    if super::gic::irq_pending() {
        return Syndrome { vector: VECTOR_LOWER_IRQ, ..Default::default() };
    }
    let hw = with_hw(|h| h.clone());
    let config = hw.config.expect("load_guest_config before enter");
    let key = (config.vttbr, config.vmpidr);
    let cpu = super::cpu::this();
    let out = SESSIONS.with(|s| {
        let mut sessions = s.borrow_mut();
        let session = sessions.entry(key).or_insert_with(|| start(cpu, regs.pc));
        if session.to_guest.send(In { regs: regs.clone(), hw }).is_err() {
            return Out::Panicked("its thread is gone".into());
        }
        session.from_guest.recv().unwrap_or_else(|_| Out::Panicked("its thread is gone".into()))
    });
    match out {
        Out::Exit { regs: r, hw, syndrome } => {
            *regs = *r;
            with_hw(|h| *h = *hw);
            syndrome
        }
        // A program that fails, or returns without powering off, ends its vCPU with an
        // SError (the VM ends, as for a guest's SError); the tests read the failures.
        Out::Finished => {
            SESSIONS.with(|s| s.borrow_mut().remove(&key));
            guest::fail(format!("program of vCPU {:#x} returned without powering off", config.vmpidr));
            Syndrome { vector: VECTOR_LOWER_SERROR, esr: 0xbe00_0000, ..Default::default() }
        }
        Out::Panicked(msg) => {
            SESSIONS.with(|s| s.borrow_mut().remove(&key));
            guest::fail(format!("program of vCPU {:#x} panicked: {msg}", config.vmpidr));
            Syndrome { vector: VECTOR_LOWER_SERROR, esr: 0xbe00_0000, ..Default::default() }
        }
    }
}

fn start(cpu: usize, pc: u64) -> Session {
    let program = guest::program_at(pc).unwrap_or_else(|| panic!("no fake guest program at {pc:#x}"));
    let (to_guest, rx) = mpsc::channel();
    let (tx, from_guest) = mpsc::channel();
    guest::spawn(cpu, program, rx, tx);
    Session { to_guest, from_guest }
}

/// Loads a VM's configuration and resets the EL1 state a starting vCPU sees. A vCPU that
/// starts again (CPU_ON after CPU_OFF) runs its program afresh.
pub fn load_guest_config(vttbr: u64, vtcr: u64, vmpidr: u64, cntvoff: u64) {
    SESSIONS.with(|s| s.borrow_mut().remove(&(vttbr, vmpidr)));
    with_hw(|hw| {
        *hw = Hw {
            config: Some(Config { vttbr, vtcr, vmpidr, cntvoff }),
            lrs: hw.lrs,
            vgic_enabled: hw.vgic_enabled,
            underflow: hw.underflow,
            hyp: hw.hyp,
            wfi_trap: hw.wfi_trap,
            debug: super::debug::reset(&hw.debug),
            ..Default::default()
        };
    });
}

/// The VM is off this pCPU: its vCPU's guest thread is told to stop.
pub fn unload_guest_config() {
    let config = with_hw(|hw| {
        hw.vtimer.ctl = 0;
        hw.ptimer.ctl = 0;
        hw.config.take()
    });
    if let Some(c) = config {
        SESSIONS.with(|s| s.borrow_mut().remove(&(c.vttbr, c.vmpidr)));
    }
}

pub fn el1_vector_state() -> (u64, u64) {
    with_hw(|hw| (hw.el1.vbar, hw.el1.sctlr))
}

pub fn el1_warm_boot() {
    with_hw(|hw| hw.el1.sctlr = crate::hw::el2::sctlr_el1::MMU_OFF);
}

pub fn set_el1_exception(elr: u64, spsr: u64, esr: u64, far: Option<u64>) {
    with_hw(|hw| {
        hw.el1.elr = elr;
        hw.el1.spsr = spsr;
        hw.el1.esr = esr;
        if let Some(far) = far {
            hw.el1.far = far;
        }
    });
}

/// Fake guests run with their MMU off: a virtual address is the guest-physical one, then
/// stage 2.
pub fn guest_va_to_pa(va: u64) -> Option<u64> {
    let config = with_hw(|hw| hw.config)?;
    super::mmu::stage2(&config, va).map(|(pa, _)| pa)
}
