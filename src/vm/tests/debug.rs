//! Host tests of the debug hardware a vCPU owns, and of the registers of optional features,
//! through the real run loop and scheduler over the fake arch: the first access of a debug
//! register stops the trap and finds the registers reset, whatever the last VM on the pCPU
//! left; two vCPUs sharing a pCPU keep their own debug state; the OS lock is the guest's
//! and locked at start; an emulated instruction completes a software step.

use super::{Seen, machine, run, vm};
use crate::arch::fake::guest::{Guest, program};
use crate::hw::debug::{mdscr, oslock, point};
use crate::hw::el2::pstate;
use crate::hw::esr::{ESR, ec};
use crate::hw::psci;
use crate::vm::run::{VcpuEnd, Vm};
use alloc::sync::Arc;
use std::sync::atomic::Ordering;

/// MRS and MSR of debug registers (op0 2, op1 0, CRn 0: breakpoints, watchpoints, MDSCR).
fn rd(g: &mut Guest, crm: u64, op2: u64) -> u64 {
    g.mrs(2, 0, 0, crm, op2).expect("a debug register the core has")
}

fn wr(g: &mut Guest, crm: u64, op2: u64, value: u64) {
    g.msr(2, 0, 0, crm, op2, value).expect("a debug register the core has");
}

const MDSCR: (u64, u64) = (2, 2);
const BVR: u64 = 4;
const BCR: u64 = 5;
const WVR: u64 = 6;
const WCR: u64 = 7;

/// OSLSR_EL1 and OSLAR_EL1 (op0 2, op1 0, CRn 1): trapped always.
fn oslsr(g: &mut Guest) -> u64 {
    g.mrs(2, 0, 1, 1, 4).expect("OSLSR_EL1")
}

fn oslar(g: &mut Guest, value: u64) {
    g.msr(2, 0, 1, 0, 4, value).expect("OSLAR_EL1");
}

/// The exits one access costs: the vCPU's exit count before and after, as the guest reads
/// them through a counter only its pCPU writes (the VM's).
fn exits(vm: &Vm) -> u64 {
    vm.exits[0].load(Ordering::Relaxed)
}

/// A VM's first debug register access exits once and gives it the debug hardware with
/// every register at its reset value: nothing the previous VM on this pCPU wrote shows.
/// Later accesses do not exit; the OS lock starts locked, as after a cold reset, and its
/// registers trap every time.
#[test]
fn the_first_debug_access_takes_the_hardware_and_finds_it_reset() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    // The first VM leaves breakpoint, watchpoint and MDSCR_EL1 values behind.
    program(0x4010_0000, |g| {
        wr(g, 0, BVR, 0xdead_0000);
        wr(g, 0, BCR, point::E | point::EL1_EL0 | point::BCR_BAS_A64);
        wr(g, 3, WVR, 0xbeef_0000);
        wr(g, MDSCR.0, MDSCR.1, mdscr::MDE | mdscr::KDE);
        oslar(g, 0);
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let first = Arc::new(vm("debug-first", 1, 0x4010_0000));
    assert_eq!(run(&first), VcpuEnd::SystemOff);

    let s = seen.clone();
    program(0x4010_1000, move |g| {
        s.put("owned at start", g.hw.debug.owned as u64);
        s.put("hardware MDSCR at start", g.hw.debug.mdscr);
        s.put("OSLSR at start", oslsr(g));
        s.put("MDSCR", rd(g, MDSCR.0, MDSCR.1));
        s.put("owned after", g.hw.debug.owned as u64);
        s.put("BVR0", rd(g, 0, BVR));
        s.put("BCR0", rd(g, 0, BCR));
        s.put("WVR3", rd(g, 3, WVR));
        wr(g, 5, BVR, 0x1234);
        s.put("BVR5", rd(g, 5, BVR));
        s.put("hardware BVR5", g.hw.debug.bvr[5]);
        oslar(g, 0);
        s.put("OSLSR unlocked", oslsr(g));
        s.put("hardware OS lock", g.hw.debug.oslk as u64);
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let second = Arc::new(vm("debug-second", 1, 0x4010_1000));
    assert_eq!(run(&second), VcpuEnd::SystemOff);
    assert_eq!(seen.get("owned at start"), Some(0), "a starting vCPU does not own the debug hardware");
    assert_eq!(seen.get("hardware MDSCR at start"), Some(0), "nothing of the last VM's debug state enabled");
    assert_eq!(seen.get("OSLSR at start"), Some(oslock::OSLSR_OSLM | oslock::OSLSR_OSLK), "OS lock locked at start");
    assert_eq!(seen.get("MDSCR"), Some(0), "MDSCR_EL1 reset");
    assert_eq!(seen.get("owned after"), Some(1), "the first access gave it the hardware");
    assert_eq!(seen.get("BVR0"), Some(0), "the last VM's breakpoint value is gone");
    assert_eq!(seen.get("BCR0"), Some(0), "and its breakpoint control");
    assert_eq!(seen.get("WVR3"), Some(0), "and its watchpoint");
    assert_eq!(seen.get("BVR5"), Some(0x1234), "a breakpoint value reads back");
    assert_eq!(seen.get("hardware BVR5"), Some(0x1234), "from the hardware, with no trap");
    assert_eq!(seen.get("OSLSR unlocked"), Some(oslock::OSLSR_OSLM), "OSLAR_EL1 0 unlocks the OS lock");
    assert_eq!(seen.get("hardware OS lock"), Some(0), "the hardware's, on the guest's behalf");
    // Exits: OSLSR, the MDSCR read that took the hardware (run again on it without an
    // exit), OSLAR, OSLSR, SYSTEM_OFF; none for the other eight debug register accesses.
    assert_eq!(exits(&second), 5, "only the OS lock accesses and the first debug access exit");
}

/// Registers the core does not have, and accesses the architecture does not allow, are
/// UNDEFINED; the OS lock's read-only and write-only registers too; DBGPRCR_EL1 and
/// MDRAR_EL1 read 0.
#[test]
fn debug_registers_the_core_lacks_are_undefined() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    program(0x4010_2000, move |g| {
        let class = |r: Result<u64, crate::arch::fake::guest::Taken>| match r {
            Ok(v) => v,
            Err(t) => 0x100 | ESR::EC.read(t.esr),
        };
        // The fake core has 6 breakpoints and 4 watchpoints.
        s.put("BVR6 before", class(g.mrs(2, 0, 0, 6, BVR)));
        s.put("WCR4 write", class(g.msr(2, 0, 0, 4, WCR, 1).map(|()| 0)));
        s.put("OSLAR read", class(g.mrs(2, 0, 1, 0, 4)));
        s.put("OSLSR write", class(g.msr(2, 0, 1, 1, 4, 0).map(|()| 0)));
        s.put("DBGPRCR", class(g.mrs(2, 0, 1, 4, 4)));
        s.put("DBGPRCR write", class(g.msr(2, 0, 1, 4, 4, 1).map(|()| 0)));
        s.put("MDRAR", class(g.mrs(2, 0, 1, 0, 0)));
        s.put("owned", g.hw.debug.owned as u64);
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let vm = Arc::new(vm("debug-undef", 1, 0x4010_2000));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    let undef = Some(0x100 | ec::UNKNOWN);
    assert_eq!(seen.get("BVR6 before"), undef, "breakpoint 6 is not there");
    assert_eq!(seen.get("WCR4 write"), undef, "watchpoint 4 is not there");
    assert_eq!(seen.get("OSLAR read"), undef, "OSLAR_EL1 is write-only");
    assert_eq!(seen.get("OSLSR write"), undef, "OSLSR_EL1 is read-only");
    assert_eq!(seen.get("DBGPRCR"), Some(0), "DBGPRCR_EL1 RAZ");
    assert_eq!(seen.get("DBGPRCR write"), Some(0), "and WI");
    assert_eq!(seen.get("MDRAR"), Some(0), "MDRAR_EL1: no ROM table");
    assert_eq!(seen.get("owned"), Some(0), "none of these took the debug hardware over");
}

/// Two VMs of one vCPU each on one pCPU, switching in trapped WFIs: each finds its own
/// breakpoints, watchpoints, MDSCR_EL1, claim tags and OS lock after every switch. VM b
/// touches no debug register for its first rounds, and meanwhile the hardware has nothing
/// of a's enabled for it; when it does, it finds its registers reset, not a's. VM a keeps
/// MDE and KDE set, so it keeps the hardware; b only TDCC, so every switch takes it away
/// (its state stays in its context, nothing of it can fire) and its next access brings its
/// own values back.
#[test]
fn two_vcpus_on_one_pcpu_keep_their_own_debug_state() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    for (entry, seed) in [(0x4010_3000u64, 1u64), (0x4010_4000, 2)] {
        let s = seen.clone();
        program(entry, move |g| {
            super::gic_on(g, 0);
            let mut bad = 0;
            let mut leaked = 0;
            let mut dropped = 0;
            let mut owned = false;
            let want_mdscr = if seed == 1 { mdscr::MDE | mdscr::KDE } else { mdscr::TDCC };
            for round in 0..20u64 {
                // b takes the hardware over in round 10, a at once.
                if !owned && (seed == 1 || round == 10) {
                    let reset = [rd(g, 0, BVR), rd(g, 3, WCR), rd(g, MDSCR.0, MDSCR.1), g.mrs(2, 0, 7, 9, 6).unwrap()];
                    leaked += reset.iter().filter(|&&v| v != 0).count() as u64;
                    owned = true;
                }
                let mark = (seed << 32) | round;
                if owned {
                    wr(g, 0, BVR, mark << 2);
                    wr(g, 5, BCR, point::E | (seed << 5));
                    wr(g, 3, WVR, mark << 3);
                    wr(g, 3, WCR, point::E | point::EL1_EL0);
                    wr(g, MDSCR.0, MDSCR.1, want_mdscr);
                    g.msr(2, 0, 7, 9, 6, 0xff).unwrap();
                    g.msr(2, 0, 7, 8, 6, seed << (round % 4)).unwrap();
                } else if g.hw.debug.mdscr != 0 || g.hw.debug.owned {
                    // Not its own yet: the hardware must have nothing enabled for it.
                    leaked += 1;
                }
                oslar(g, round & 1);
                g.arm_virtual_timer(crate::arch::ticks_from_us(300));
                let intid = g.wait_interrupt();
                g.eoi(intid);
                g.stop_virtual_timer();
                if owned {
                    dropped += u64::from(!g.hw.debug.owned);
                    let intact = rd(g, 0, BVR) == mark << 2
                        && rd(g, 5, BCR) == point::E | (seed << 5)
                        && rd(g, 3, WVR) == mark << 3
                        && rd(g, 3, WCR) == point::E | point::EL1_EL0
                        && rd(g, MDSCR.0, MDSCR.1) == want_mdscr
                        && g.mrs(2, 0, 7, 9, 6).unwrap() == seed << (round % 4);
                    bad += u64::from(!intact);
                }
                let lock = if round & 1 != 0 { oslock::OSLSR_OSLK } else { 0 };
                bad += u64::from(oslsr(g) != oslock::OSLSR_OSLM | lock);
            }
            s.put(if seed == 1 { "a bad rounds" } else { "b bad rounds" }, bad);
            s.put(if seed == 1 { "a leaks" } else { "b leaks" }, leaked);
            s.put(if seed == 1 { "a dropped" } else { "b dropped" }, dropped);
            g.hvc(psci::SYSTEM_OFF, &[]);
        });
    }
    let switches = super::run_two_on_pcpu0(("debug-a", 0x4010_3000), ("debug-b", 0x4010_4000));
    assert_eq!(seen.get("a bad rounds"), Some(0), "VM a's debug state intact after every switch");
    assert_eq!(seen.get("b bad rounds"), Some(0), "VM b's debug state intact after every switch");
    assert_eq!(seen.get("a leaks"), Some(0), "VM a found its debug registers reset");
    assert_eq!(seen.get("b leaks"), Some(0), "VM b saw nothing of a's, before and when it took them");
    assert_eq!(seen.get("a dropped"), Some(0), "VM a, with MDE and KDE set, kept the debug hardware");
    assert!(
        seen.get("b dropped").is_some_and(|n| n > 0),
        "VM b, with nothing that can fire, lost it at switches: {:?}",
        seen.get("b dropped")
    );
    assert!(switches >= 20, "the pCPU switched {switches} times");
}

/// An instruction the hypervisor emulates and steps over completes a software step: PSTATE.SS
/// is 0 when the guest continues (its step exception comes next, Arm ARM D2.12), and BTYPE
/// is 0. An access that runs again (the first debug register access) and an injected
/// exception leave SS as it was: the instruction has not completed.
#[test]
fn an_emulated_instruction_completes_a_software_step() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    program(0x4010_5000, move |g| {
        let stepping = |g: &mut Guest| g.regs.pstate |= pstate::SS | pstate::BTYPE;
        stepping(g);
        g.smc(psci::VERSION, &[]);
        s.put("after an emulated SMC", g.regs.pstate & (pstate::SS | pstate::BTYPE));
        stepping(g);
        g.mrs(3, 0, 0, 4, 0).unwrap();
        s.put("after an emulated ID register read", g.regs.pstate & (pstate::SS | pstate::BTYPE));
        stepping(g);
        rd(g, MDSCR.0, MDSCR.1);
        s.put("after the access that took the debug hardware", g.regs.pstate & pstate::SS);
        stepping(g);
        let _ = g.undefined();
        s.put("SPSR_EL1 of an injected UNDEFINED", g.hw.el1.spsr & pstate::SS);
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let vm = Arc::new(vm("debug-step", 1, 0x4010_5000));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    assert_eq!(seen.get("after an emulated SMC"), Some(0), "SS and BTYPE cleared");
    assert_eq!(seen.get("after an emulated ID register read"), Some(0), "SS and BTYPE cleared");
    assert_eq!(seen.get("after the access that took the debug hardware"), Some(pstate::SS), "run again: SS kept");
    assert_eq!(seen.get("SPSR_EL1 of an injected UNDEFINED"), Some(pstate::SS), "not completed: SS kept");
}

/// The registers of features this fake core lacks (LORegions, RAS) or that the ID registers
/// hide (AMU, the trace filter) are UNDEFINED; ICC_SRE_EL1 reads SRE, DFB and DIB and
/// ignores writes; TPIDR2_EL0 (SME) is not trapped at all.
#[test]
fn optional_feature_registers_are_answered() {
    let _m = machine();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    program(0x4010_6000, move |g| {
        let class = |r: Result<u64, crate::arch::fake::guest::Taken>| match r {
            Ok(v) => v,
            Err(t) => 0x100 | ESR::EC.read(t.esr),
        };
        s.put("LORID_EL1", class(g.mrs(3, 0, 10, 4, 7)));
        s.put("LORC_EL1 write", class(g.msr(3, 0, 10, 4, 3, 1).map(|()| 0)));
        s.put("ERRIDR_EL1", class(g.mrs(3, 0, 5, 3, 0)));
        s.put("AMCR_EL0", class(g.mrs(3, 3, 13, 2, 0)));
        s.put("TRFCR_EL1", class(g.mrs(3, 0, 1, 2, 1)));
        s.put("ICC_SRE_EL1", class(g.mrs(3, 0, 12, 12, 5)));
        s.put("ICC_SRE_EL1 write", class(g.msr(3, 0, 12, 12, 5, 0).map(|()| 0)));
        s.put("ICC_SRE_EL1 after", class(g.mrs(3, 0, 12, 12, 5)));
        g.hvc(psci::SYSTEM_OFF, &[]);
    });
    let vm = Arc::new(vm("feature-regs", 1, 0x4010_6000));
    assert_eq!(run(&vm), VcpuEnd::SystemOff);
    let undef = Some(0x100 | ec::UNKNOWN);
    for what in ["LORID_EL1", "LORC_EL1 write", "ERRIDR_EL1", "AMCR_EL0", "TRFCR_EL1"] {
        assert_eq!(seen.get(what), undef, "{what}: UNDEFINED on this core");
    }
    assert_eq!(seen.get("ICC_SRE_EL1"), Some(0b111), "SRE, DFB, DIB");
    assert_eq!(seen.get("ICC_SRE_EL1 write"), Some(0), "a write is ignored");
    assert_eq!(seen.get("ICC_SRE_EL1 after"), Some(0b111), "and changes nothing");
}
