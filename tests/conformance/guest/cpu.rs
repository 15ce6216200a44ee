//! Per-CPU state, shared between a CPU's own exception handlers and the boot CPU that runs
//! the checks: atomics only (Relaxed for what one CPU writes and reads, Release/Acquire for
//! the mailbox hand-over).

use crate::exc::Fault;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

pub const CPUS_MAX: usize = 4;
pub const STACK_SIZE: usize = 32768;

/// What secondary_entry reads with the MMU off (entry.S's BOOT_* offsets), then what it
/// found on entry, for the PSCI checks.
#[repr(C)]
pub struct CpuBoot {
    pub sp: AtomicU64,
    pub cpu: AtomicU64,
    pub mair: AtomicU64,
    pub tcr: AtomicU64,
    pub ttbr0: AtomicU64,
    pub sctlr: AtomicU64,
    /// What secondary_main does (smp::mode).
    pub mode: AtomicU64,
    /// Incremented by each arrival at secondary_main.
    pub arrivals: AtomicU64,
    pub entry_el: AtomicU64,
    pub entry_daif: AtomicU64,
    pub entry_sctlr: AtomicU64,
    pub entry_x0: AtomicU64,
    pub entry_mpidr: AtomicU64,
    _pad: [u64; 3],
}
const _: () = assert!(core::mem::offset_of!(CpuBoot, sctlr) == 40 && core::mem::size_of::<CpuBoot>() == 128);

/// A command for a worker CPU (smp.rs): the boot CPU writes cmd and args, then bumps seq
/// (Release); the worker runs it, writes ret, sets done = seq (Release).
pub struct Mailbox {
    pub seq: AtomicU64,
    pub done: AtomicU64,
    pub cmd: AtomicU64,
    pub args: [AtomicU64; 4],
    pub ret: [AtomicU64; 4],
}

pub struct Cpu {
    pub boot: CpuBoot,
    pub mailbox: Mailbox,
    /// IRQs taken, by INTID (0-127), and of any other INTID.
    pub irq_count: [AtomicU32; 128],
    pub irq_other: AtomicU32,
    pub last_intid: AtomicU32,
    pub irq_hook: AtomicU32,
    /// What the hooks record (exc::irq_hook).
    pub rec: [AtomicU64; 4],
    pub sync_hook: AtomicU32,
    pub hook_arg: AtomicU64,
    /// The last recorded synchronous exception (exc::slot).
    pub fault: [AtomicU64; 12],
    /// ELR of each software step exception.
    pub steps: [AtomicU64; 16],
    /// fault[COUNT] when the software step began.
    pub step_base: AtomicU64,
    /// The innermost recovery point (a JmpBuf on the stack of exc::guarded), or 0.
    pub jb: AtomicU64,
    last: [AtomicU64; 4],
    /// A worker hit an exception it could not recover from.
    pub fatal: AtomicBool,
    /// RD_base of this CPU's redistributor.
    pub gicr: AtomicUsize,
    /// This CPU's GICv2 CPU interface bit (GICD_ITARGETSR0), 0 until it noted it.
    pub gic_mask: AtomicU32,
    /// Per SGI, the source CPU interfaces of the ones taken (a bit each; GICv2).
    pub sgi_src: [AtomicU32; 16],
    pub mpidr: AtomicU64,
    /// Running secondary_main's worker loop.
    pub worker: AtomicBool,
}

impl Cpu {
    const fn new() -> Self {
        const Z: AtomicU64 = AtomicU64::new(0);
        Self {
            boot: CpuBoot {
                sp: Z,
                cpu: Z,
                mair: Z,
                tcr: Z,
                ttbr0: Z,
                sctlr: Z,
                mode: Z,
                arrivals: Z,
                entry_el: Z,
                entry_daif: Z,
                entry_sctlr: Z,
                entry_x0: Z,
                entry_mpidr: Z,
                _pad: [0; 3],
            },
            mailbox: Mailbox { seq: Z, done: Z, cmd: Z, args: [Z; 4], ret: [Z; 4] },
            irq_count: [const { AtomicU32::new(0) }; 128],
            irq_other: AtomicU32::new(0),
            last_intid: AtomicU32::new(1023),
            irq_hook: AtomicU32::new(0),
            rec: [Z; 4],
            sync_hook: AtomicU32::new(0),
            hook_arg: Z,
            fault: [Z; 12],
            steps: [Z; 16],
            step_base: Z,
            jb: Z,
            last: [Z; 4],
            fatal: AtomicBool::new(false),
            gicr: AtomicUsize::new(0),
            gic_mask: AtomicU32::new(0),
            sgi_src: [const { AtomicU32::new(0) }; 16],
            mpidr: Z,
            worker: AtomicBool::new(false),
        }
    }

    pub fn set_last_fault(&self, f: Fault) {
        self.last[0].store(f.vector, Relaxed);
        self.last[1].store(f.esr, Relaxed);
        self.last[2].store(f.far, Relaxed);
        self.last[3].store(f.elr, Relaxed);
    }

    pub fn last_fault(&self) -> Fault {
        Fault {
            vector: self.last[0].load(Relaxed),
            esr: self.last[1].load(Relaxed),
            far: self.last[2].load(Relaxed),
            elr: self.last[3].load(Relaxed),
        }
    }

    /// Zeroes the IRQ counts.
    pub fn reset_counts(&self) {
        for n in &self.irq_count {
            n.store(0, Relaxed);
        }
        self.irq_other.store(0, Relaxed);
        for r in &self.rec {
            r.store(0, Relaxed);
        }
    }

    pub fn count(&self, intid: u32) -> u32 {
        self.irq_count[intid as usize].load(Relaxed)
    }
}

pub static CPUS: [Cpu; CPUS_MAX] = [const { Cpu::new() }; CPUS_MAX];

/// This CPU's state.
pub fn cpu() -> &'static Cpu {
    &CPUS[crate::sys::cpu_index().min(CPUS_MAX - 1)]
}

unsafe extern "C" {
    static conf_stacks: [u8; STACK_SIZE * CPUS_MAX];
}

/// The top of CPU `n`'s stack.
pub fn stack_top(n: usize) -> u64 {
    // SAFETY: only the address is taken.
    (unsafe { conf_stacks.as_ptr() } as u64) + ((n + 1) * STACK_SIZE) as u64
}
