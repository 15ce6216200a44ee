//! Fake guests: a guest program is a Rust closure over a [`Guest`], registered at an entry
//! address and run on a thread of its own for each vCPU that starts there. Each method that
//! would trap on the hardware is one exit: the guest's thread hands its registers back to
//! the pCPU that entered it, with the syndrome the hardware would write, and waits to be
//! entered again.

use super::vcpu::{FakeLr, Hw, VECTOR_LOWER_IRQ, VECTOR_LOWER_SYNC};
use super::{lock, machine, mmu, phys};
use crate::arch::{GuestRegs, Syndrome};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A guest program.
pub type Program = Arc<dyn Fn(&mut Guest) + Send + Sync>;

static PROGRAMS: Mutex<Vec<(u64, Program)>> = Mutex::new(Vec::new());

/// Registers `program` for vCPUs that start at guest address `entry` (replacing one
/// registered there before).
pub fn program(entry: u64, program: impl Fn(&mut Guest) + Send + Sync + 'static) {
    let mut programs = lock(&PROGRAMS);
    programs.retain(|(e, _)| *e != entry);
    programs.push((entry, Arc::new(program)));
}

pub(crate) fn program_at(entry: u64) -> Option<Program> {
    lock(&PROGRAMS).iter().find(|(e, _)| *e == entry).map(|(_, p)| p.clone())
}

static FAILURES: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub(crate) fn fail(what: String) {
    lock(&FAILURES).push(what);
}

/// Guest programs that panicked or returned since the last call (and forgets them).
pub fn take_failures() -> Vec<String> {
    core::mem::take(&mut *lock(&FAILURES))
}

/// The pCPU entering the guest.
pub(crate) struct In {
    pub regs: GuestRegs,
    pub hw: Hw,
}

/// The guest leaving.
pub(crate) enum Out {
    Exit { regs: Box<GuestRegs>, hw: Box<Hw>, syndrome: Syndrome },
    Finished,
    Panicked(String),
}

/// Unwinds a guest thread whose vCPU the hypervisor stopped (no panic message).
struct Stopped;

pub(crate) fn spawn(cpu: usize, program: Program, rx: Receiver<In>, tx: Sender<Out>) {
    std::thread::Builder::new()
        .name(format!("guest-on-pcpu{cpu}"))
        .spawn(move || {
            let Ok(first) = rx.recv() else { return };
            let mut g = Guest { regs: first.regs, hw: first.hw, cpu, to_cpu: tx.clone(), from_cpu: rx };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program(&mut g)));
            match r {
                Ok(()) => {
                    let _ = tx.send(Out::Finished);
                }
                Err(e) if e.is::<Stopped>() => {}
                Err(e) => {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    let _ = tx.send(Out::Panicked(msg));
                }
            }
        })
        .expect("spawning a fake guest thread");
}

/// An exception the hypervisor injected while the guest was executing one instruction: the
/// guest's handler saw these and returned past the instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub esr: u64,
    pub far: u64,
    /// Offset into the vector table it arrived at.
    pub vector_offset: u64,
}

use crate::hw::debug::{Reg as DebugReg, Trap as DebugTrap};
use crate::hw::esr::{ec, syndrome};

/// How a trapped instruction came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trapped {
    /// Past it: emulated, or the hardware had completed it (HVC).
    Completed,
    /// At it again: it runs once more.
    Again,
}

/// The register a fake device access uses (SRT).
pub const ACCESS_REG: usize = 1;

/// One vCPU's view of itself while its program runs.
pub struct Guest {
    pub regs: GuestRegs,
    pub hw: Hw,
    cpu: usize,
    to_cpu: Sender<Out>,
    from_cpu: Receiver<In>,
}

impl Guest {
    /// The pCPU this vCPU runs on.
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// The MPIDR the guest reads (VMPIDR_EL2).
    pub fn mpidr(&self) -> u64 {
        self.hw.config.map_or(0, |c| c.vmpidr)
    }

    /// Leaves the guest with `syndrome`, and continues when entered again.
    fn exit(&mut self, syndrome: Syndrome) {
        let out =
            Out::Exit { regs: Box::new(self.regs.clone()), hw: Box::new(core::mem::take(&mut self.hw)), syndrome };
        if self.to_cpu.send(out).is_err() {
            std::panic::resume_unwind(Box::new(Stopped));
        }
        match self.from_cpu.recv() {
            Ok(In { regs, hw }) => {
                self.regs = regs;
                self.hw = hw;
            }
            Err(_) => std::panic::resume_unwind(Box::new(Stopped)),
        }
    }

    /// A trapping instruction at PC: exits with `esr` (and the abort registers), and tells
    /// whether it completed (the hypervisor moved PC past it, or the hardware already had)
    /// or an exception was injected, which the guest's handler returns past.
    fn trap(&mut self, esr: u64, far: u64, hpfar: u64, pc_after: bool) -> Result<(), Taken> {
        match self.trap_or_again(esr, far, hpfar, pc_after)? {
            Trapped::Completed => Ok(()),
            Trapped::Again => panic!("PC {:#x} after a trap is the instruction that trapped", self.regs.pc),
        }
    }

    /// As [`Guest::trap`], for an instruction the hypervisor may also make run again (PC
    /// unchanged): a debug register access that gave the vCPU the debug hardware.
    fn trap_or_again(&mut self, esr: u64, far: u64, hpfar: u64, pc_after: bool) -> Result<Trapped, Taken> {
        let pc = self.regs.pc;
        if pc_after {
            self.regs.pc += 4;
        }
        self.exit(Syndrome { vector: VECTOR_LOWER_SYNC, esr, far, hpfar });
        if self.regs.pc == pc + 4 {
            return Ok(Trapped::Completed);
        }
        if self.regs.pc == pc && !pc_after {
            return Ok(Trapped::Again);
        }
        let base = self.hw.el1.vbar & !0x7ff;
        let offset = self.regs.pc.wrapping_sub(base);
        assert!(
            [0x000, 0x200, 0x400, 0x600].contains(&offset) && self.hw.el1.elr == pc,
            "PC {:#x} after the trap at {pc:#x} is neither the next instruction nor a vector",
            self.regs.pc
        );
        let taken = Taken { esr: self.hw.el1.esr, far: self.hw.el1.far, vector_offset: offset };
        // The handler returns past the instruction, in the state it interrupted.
        self.regs.pc = self.hw.el1.elr + 4;
        self.regs.pstate = self.hw.el1.spsr;
        Err(taken)
    }

    /// A debug register the hardware gives this vCPU without a trap: a TDA one (not the OS
    /// lock or ROM registers) while it owns the debug hardware, and one the core has.
    fn debug_direct(&self, op0: u64, op1: u64, crn: u64, crm: u64, op2: u64) -> Option<DebugReg> {
        let r = DebugReg::decode(op0 as u8, op1 as u8, crn as u8, crm as u8, op2 as u8)?;
        let dfr0 = super::cpu::read_id_reg(5, 0);
        let there = match r.point() {
            Some((n, true)) => n < crate::hw::debug::watchpoints(dfr0),
            Some((n, false)) => n < crate::hw::debug::breakpoints(dfr0),
            None => true,
        };
        (self.hw.debug.owned && r.trap() == DebugTrap::Tda && there).then_some(r)
    }

    /// An SMCCC call with x0 = `fid` and x1.. = `args` by exception class `class`; x0
    /// afterwards. An HVC's return address is past it already; a trapped SMC's is not.
    fn call(&mut self, class: u64, fid: u32, args: &[u64]) -> u64 {
        self.regs.x[0] = fid as u64;
        for (i, a) in args.iter().enumerate() {
            self.regs.x[1 + i] = *a;
        }
        let _ = self.trap(syndrome(class, 0), 0, 0, class == ec::HVC64);
        self.regs.x[0]
    }

    /// HVC #0; x0 afterwards.
    pub fn hvc(&mut self, fid: u32, args: &[u64]) -> u64 {
        self.call(ec::HVC64, fid, args)
    }

    /// SMC #0 (trapped: the hypervisor steps over it); x0 afterwards.
    pub fn smc(&mut self, fid: u32, args: &[u64]) -> u64 {
        self.call(ec::SMC64, fid, args)
    }

    /// An instruction the hypervisor does not emulate (an unknown exception class).
    pub fn undefined(&mut self) -> Result<(), Taken> {
        self.trap(syndrome(ec::UNKNOWN, 0), 0, 0, false)
    }

    /// MSR of the system register (op0, op1, CRn, CRm, op2) from x1 = `value`: a trap, or
    /// straight to the debug hardware the vCPU owns (and again, there, after a trap that
    /// gave it the hardware).
    pub fn msr(&mut self, op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, value: u64) -> Result<(), Taken> {
        loop {
            if let Some(r) = self.debug_direct(op0, op1, crn, crm, op2) {
                super::debug::hw_write(&mut self.hw.debug, r, value);
                return Ok(());
            }
            self.regs.x[ACCESS_REG] = value;
            let iss = (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | ((ACCESS_REG as u64) << 5) | (crm << 1);
            if self.trap_or_again(syndrome(ec::SYSREG, iss), 0, 0, false)? == Trapped::Completed {
                return Ok(());
            }
        }
    }

    /// MRS into x1 of the system register (op0, op1, CRn, CRm, op2), as [`Guest::msr`].
    pub fn mrs(&mut self, op0: u64, op1: u64, crn: u64, crm: u64, op2: u64) -> Result<u64, Taken> {
        loop {
            if let Some(r) = self.debug_direct(op0, op1, crn, crm, op2) {
                self.regs.x[ACCESS_REG] = super::debug::hw_read(&self.hw.debug, r);
                return Ok(self.regs.x[ACCESS_REG]);
            }
            let iss =
                (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | ((ACCESS_REG as u64) << 5) | (crm << 1) | 1;
            if self.trap_or_again(syndrome(ec::SYSREG, iss), 0, 0, false)? == Trapped::Completed {
                return Ok(self.regs.x[ACCESS_REG]);
            }
        }
    }

    /// ICC_SGI1R_EL1 = `value` (trapped by the vGIC).
    pub fn send_sgi(&mut self, value: u64) -> Result<(), Taken> {
        self.msr(3, 0, 12, 11, 5, value)
    }

    fn stage2(&self, ipa: u64) -> Option<(u64, u64)> {
        self.hw.config.as_ref().and_then(|c| mmu::stage2(c, ipa))
    }

    fn data_abort(&mut self, ipa: u64, size: u8, write: bool, fsc: u64) -> Result<(), Taken> {
        let sas = size.trailing_zeros() as u64;
        let iss = (1 << 24) | (sas << 22) | ((ACCESS_REG as u64) << 16) | (1 << 15) | ((write as u64) << 6) | fsc;
        // HPFAR_EL2 is UNKNOWN for a permission fault: the fake makes it garbage.
        let hpfar = if fsc & 0b11_1100 == 0b00_1100 { 0xdead_beef_0000 } else { (ipa >> 12) << 4 };
        self.trap(syndrome(ec::DATA_ABORT_LOWER, iss), ipa, hpfar, false)
    }

    /// A `size`-byte load from guest-physical `ipa` (the guest's MMU is off) into x1:
    /// straight from memory where stage 2 maps it readable, else a data abort the
    /// hypervisor emulates or injects.
    pub fn load(&mut self, ipa: u64, size: u8) -> Result<u64, Taken> {
        if let Some((pa, desc)) = self.stage2(ipa)
            && desc & mmu::S2AP_READ != 0
        {
            let mut b = [0; 8];
            phys::read(pa, &mut b[..size as usize]);
            return Ok(u64::from_le_bytes(b));
        }
        self.data_abort(ipa, size, false, 0x07)?;
        let v = self.regs.x[ACCESS_REG];
        Ok(if size == 8 { v } else { v & ((1 << (8 * size as u32)) - 1) })
    }

    /// A `size`-byte store of `value` to guest-physical `ipa`, from x1.
    pub fn store(&mut self, ipa: u64, size: u8, value: u64) -> Result<(), Taken> {
        let fsc = match self.stage2(ipa) {
            Some((pa, desc)) if desc & mmu::S2AP_WRITE != 0 => {
                phys::write(pa, &value.to_le_bytes()[..size as usize]);
                return Ok(());
            }
            // Mapped but not writable: a stage-2 permission fault at level 3.
            Some(_) => 0x0f,
            None => 0x07,
        };
        self.regs.x[ACCESS_REG] = value;
        self.data_abort(ipa, size, true, fsc)
    }

    /// The virtual counter (CNTVCT_EL0).
    pub fn virtual_count(&self) -> u64 {
        super::cpu::counter().wrapping_sub(self.hw.config.map_or(0, |c| c.cntvoff))
    }

    /// Arms the virtual timer `ticks` from now, unmasked.
    pub fn arm_virtual_timer(&mut self, ticks: u64) {
        self.hw.vtimer.cval = self.virtual_count() + ticks;
        self.hw.vtimer.ctl = 1;
    }

    /// Turns the virtual timer off.
    pub fn stop_virtual_timer(&mut self) {
        self.hw.vtimer.ctl = 0;
    }

    /// Acknowledges the most urgent pending virtual interrupt (ICC_IAR1_EL1).
    pub fn ack(&mut self) -> Option<u32> {
        let best = self
            .hw
            .lrs
            .iter_mut()
            .flatten()
            .filter(|l| l.pending && !l.active)
            .min_by_key(|l| (l.priority, l.intid))?;
        best.pending = false;
        best.active = true;
        Some(best.intid)
    }

    /// Ends virtual interrupt `intid` (ICC_EOIR1_EL1 with EOImode 0).
    pub fn eoi(&mut self, intid: u32) {
        if let Some(l) = self.hw.lrs.iter_mut().flatten().find(|l| l.intid == intid && l.active) {
            l.active = false;
            // HW = 1: the physical interrupt is deactivated with it.
            if let Some(p) = l.hw {
                super::gic::set_active_on(self.cpu, p, false);
            }
        }
    }

    /// Whether physical private interrupt `intid` is active on this vCPU's pCPU (a timer PPI
    /// the hypervisor left active for the guest), as a test looks at it.
    pub fn physical_active(&self, intid: u32) -> bool {
        lock(&machine().cpus[self.cpu].irq).active.contains(&intid)
    }

    /// The list registers as the guest's interface holds them.
    pub fn lrs(&self) -> Vec<FakeLr> {
        self.hw.lrs.iter().flatten().copied().collect()
    }

    /// WFI, not trapped: returns once a virtual interrupt is pending; meanwhile a physical
    /// interrupt for this pCPU makes the guest exit (and it waits on when entered again).
    pub fn wfi(&mut self) {
        if self.hw.wfi_trap {
            return self.wfi_trapped();
        }
        let cpu = &machine().cpus[self.cpu];
        for _ in 0..50_000 {
            if self.hw.lrs.iter().flatten().any(|l| l.pending) {
                return;
            }
            if super::gic::pending_map(self.cpu, &self.hw) != 0 {
                self.exit(Syndrome { vector: VECTOR_LOWER_IRQ, ..Default::default() });
                continue;
            }
            let state = lock(&cpu.irq);
            let _ = cpu.wake.wait_timeout(state, Duration::from_millis(1));
        }
        panic!("fake guest on pCPU {}: WFI woke for nothing for 50 s", self.cpu);
    }

    /// WFI trapped as the hardware reports it (HCR_EL2.TWI set): an exit with EC WFx.
    pub fn wfi_trapped(&mut self) {
        let _ = self.trap(syndrome(ec::WFX, 0), 0, 0, false);
    }

    /// Waits for a virtual interrupt and acknowledges it.
    pub fn wait_interrupt(&mut self) -> u32 {
        loop {
            if let Some(intid) = self.ack() {
                return intid;
            }
            self.wfi();
        }
    }

    /// A step of guest work that takes no exit (the hypervisor may still take the pCPU
    /// back meanwhile: a physical interrupt pending for it makes the guest exit first).
    pub fn tick(&mut self) {
        if super::gic::pending_map(self.cpu, &self.hw) != 0 {
            self.exit(Syndrome { vector: VECTOR_LOWER_IRQ, ..Default::default() });
        }
    }
}
