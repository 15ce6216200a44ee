//! The CPU the guest sees is the CPU it gets: for each feature, what the ID_AA64* registers
//! advertise works (a register of it reads, an instruction of it executes), and what they
//! do not advertise is UNDEFINED (an exception with EC 0x0 at EL1), as on a core without it
//! (Arm ARM D19, "ID registers", and each feature's "UNDEFINED if not implemented"). The two
//! runs may advertise different features; each must be consistent. CPACR_EL1 traps nothing
//! here (FPEN, ZEN, SMEN = 0b11, main.rs), so a hidden SVE or SME instruction has no reason
//! to be anything but UNDEFINED.

use crate::exc::{Probe, probe};
use crate::report::{Verdict, note};
use crate::sys::{field, mrs};
use crate::{Ctx, Group};

pub static GROUP: Group = Group {
    name: "idregs",
    rows: &[
        "id-fp", "id-gic", "id-pmu", "id-spe", "id-trace", "id-trf", "id-brbe", "id-sve", "id-sme", "id-mte",
        "id-pauth-address", "id-pauth-generic", "id-ras", "id-amu", "id-mpam", "id-rng", "id-lor", "id-sb",
        "id-flagm", "id-wfxt", "id-ecv", "id-scxtnum", "id-dpb", "id-lse", "id-pan", "id-uao", "id-dit",
        "id-ssbs", "id-tme", "id-nmi", "id-gcs",
    ],
    run,
};

/// An instruction (a `.inst` word or assembly) as a probe; x0-x2 scratch, x1 and x2 point
/// at a RAM doubleword.
macro_rules! insn {
    ($s:literal) => {
        || {
            let mut word = 0u64;
            let p = &mut word as *mut u64 as u64;
            // SAFETY: one instruction; its effect is on x0-x2, the FP/SIMD registers (which
            // no code here uses) or `word`.
            unsafe { core::arch::asm!($s, out("x0") _, inout("x1") p => _, inout("x2") p => _, options(nostack)) };
        }
    };
}

/// One feature: `adv` whether the ID registers advertise it (`what` says the fields), the
/// probes of it.
fn feature(ctx: &mut Ctx, name: &str, adv: bool, what: core::fmt::Arguments<'_>, probes: &[(&str, Probe)]) {
    let mut v = Verdict::new();
    note!(v, "{what}: {}", if adv { "advertised" } else { "hidden" });
    for (p_name, p) in probes {
        let good = if adv { p.ok() } else { p.undef() };
        if good {
            note!(v, "{p_name} {p}");
        } else {
            v.fail(format_args!("{p_name} {p} (want {})", if adv { "works" } else { "UNDEFINED" }));
        }
    }
    ctx.row(name, &v);
}

/// id-gic: PFR0.GIC says whether the GIC system registers exist (Arm ARM D19), and they
/// work or are UNDEFINED as it says (ICC_SRE_EL1, ICC_PMR_EL1 read). The GIC the device tree
/// names decides what it must say: a GICv3, whose system registers this guest uses, needs
/// them (GIC >= 1); a GICv2 has none (GIC 0, ICC_* UNDEFINED), as KVM and armvisor give a
/// vGICv2 and as QEMU gives a GICv2 machine.
fn gic_row(ctx: &mut Ctx, gic: u64) {
    let probes = [
        ("ICC_SRE_EL1", probe(insn!("mrs x0, s3_0_c12_c12_5"))),
        ("ICC_PMR_EL1", probe(insn!("mrs x0, s3_0_c4_c6_0"))),
    ];
    let mut v = Verdict::new();
    let adv = gic != 0;
    note!(v, "GICv{}: PFR0.GIC {gic}: {}", crate::gic::version(), if adv { "advertised" } else { "hidden" });
    if crate::gic::v2() {
        if adv {
            v.fail(format_args!("PFR0.GIC {gic} on a GICv2 (want 0: no system register interface)"));
        }
    } else if !adv {
        v.fail(format_args!("PFR0.GIC 0 on a GICv3 whose system registers work (want >= 1)"));
    }
    for (p_name, p) in probes {
        let good = if adv { p.ok() } else { p.undef() };
        if good {
            note!(v, "{p_name} {p}");
        } else {
            v.fail(format_args!("{p_name} {p} (want {})", if adv { "works" } else { "UNDEFINED" }));
        }
    }
    ctx.row("id-gic", &v);
}

fn run(ctx: &mut Ctx) {
    let pfr0 = mrs!("id_aa64pfr0_el1");
    let pfr1 = mrs!("s3_0_c0_c4_1");
    let dfr0 = mrs!("s3_0_c0_c5_0");
    let isar0 = mrs!("s3_0_c0_c6_0");
    let isar1 = mrs!("s3_0_c0_c6_1");
    let isar2 = mrs!("s3_0_c0_c6_2");
    let mmfr0 = mrs!("s3_0_c0_c7_0");
    let mmfr1 = mrs!("s3_0_c0_c7_1");
    let mmfr2 = mrs!("s3_0_c0_c7_2");
    let f = |r: u64, s: u32| field(r, s, 4);

    let fp = f(pfr0, 16);
    feature(ctx, "id-fp", fp != 0xf, format_args!("PFR0.FP {fp:#x}"), &[("FMOV D0, XZR", probe(insn!(".inst 0x9e6703e0")))]);
    gic_row(ctx, f(pfr0, 24));
    let pmu = f(dfr0, 8);
    feature(ctx, "id-pmu", pmu != 0 && pmu != 0xf, format_args!("DFR0.PMUVer {pmu:#x}"), &[
        ("PMCR_EL0", probe(insn!("mrs x0, s3_3_c9_c12_0"))),
        ("PMCCNTR_EL0", probe(insn!("mrs x0, s3_3_c9_c13_0"))),
    ]);
    let spe = f(dfr0, 32);
    feature(ctx, "id-spe", spe != 0, format_args!("DFR0.PMSVer {spe}"), &[("PMSIDR_EL1", probe(insn!("mrs x0, s3_0_c9_c9_7")))]);
    let trace = f(dfr0, 4);
    feature(ctx, "id-trace", trace != 0, format_args!("DFR0.TraceVer {trace}"), &[("TRCIDR0", probe(insn!("mrs x0, s2_1_c0_c8_7")))]);
    let trf = f(dfr0, 40);
    feature(ctx, "id-trf", trf != 0, format_args!("DFR0.TraceFilt {trf}"), &[("TRFCR_EL1", probe(insn!("mrs x0, s3_0_c1_c2_1")))]);
    let brbe = f(dfr0, 52);
    feature(ctx, "id-brbe", brbe != 0, format_args!("DFR0.BRBE {brbe}"), &[("BRBIDR0_EL1", probe(insn!("mrs x0, s2_1_c9_c2_0")))]);
    let sve = f(pfr0, 32);
    feature(ctx, "id-sve", sve != 0, format_args!("PFR0.SVE {sve}"), &[
        ("RDVL", probe(insn!(".inst 0x04bf5020"))),
        ("ZCR_EL1", probe(insn!("mrs x0, s3_0_c1_c2_0"))),
    ]);
    let sme = f(pfr1, 24);
    feature(ctx, "id-sme", sme != 0, format_args!("PFR1.SME {sme}"), &[
        ("RDSVL", probe(insn!(".inst 0x04bf5820"))),
        ("SMCR_EL1", probe(insn!("mrs x0, s3_0_c1_c2_6"))),
    ]);
    let mte = f(pfr1, 8);
    feature(ctx, "id-mte", mte != 0, format_args!("PFR1.MTE {mte}"), &[("SUBP", probe(insn!(".inst 0x9ac20020")))]);
    let (apa, api, apa3) = (f(isar1, 4), f(isar1, 8), f(isar2, 12));
    feature(ctx, "id-pauth-address", apa | api | apa3 != 0, format_args!("ISAR1.APA {apa} API {api} ISAR2.APA3 {apa3}"), &[
        ("XPACI", probe(insn!(".inst 0xdac143e0"))),
        ("APIAKEYLO_EL1", probe(insn!("mrs x0, s3_0_c2_c1_0"))),
    ]);
    let (gpa, gpi, gpa3) = (f(isar1, 24), f(isar1, 28), f(isar2, 8));
    feature(ctx, "id-pauth-generic", gpa | gpi | gpa3 != 0, format_args!("ISAR1.GPA {gpa} GPI {gpi} ISAR2.GPA3 {gpa3}"), &[
        ("PACGA", probe(insn!(".inst 0x9ac23020"))),
    ]);
    let ras = f(pfr0, 28);
    feature(ctx, "id-ras", ras != 0, format_args!("PFR0.RAS {ras}"), &[
        ("ERRIDR_EL1", probe(insn!("mrs x0, s3_0_c5_c3_0"))),
        ("DISR_EL1", probe(insn!("mrs x0, s3_0_c12_c1_1"))),
    ]);
    let amu = f(pfr0, 44);
    feature(ctx, "id-amu", amu != 0, format_args!("PFR0.AMU {amu}"), &[("AMCFGR_EL0", probe(insn!("mrs x0, s3_3_c13_c2_1")))]);
    let (mpam, mpam_frac) = (f(pfr0, 40), f(pfr1, 16));
    feature(ctx, "id-mpam", mpam | mpam_frac != 0, format_args!("PFR0.MPAM {mpam} PFR1.MPAM_frac {mpam_frac}"), &[
        ("MPAMIDR_EL1", probe(insn!("mrs x0, s3_0_c10_c4_4"))),
    ]);
    let rndr = f(isar0, 60);
    feature(ctx, "id-rng", rndr != 0, format_args!("ISAR0.RNDR {rndr}"), &[("RNDR", probe(insn!("mrs x0, s3_3_c2_c4_0")))]);
    let lo = f(mmfr1, 16);
    feature(ctx, "id-lor", lo != 0, format_args!("MMFR1.LO {lo}"), &[("LORID_EL1", probe(insn!("mrs x0, s3_0_c10_c4_7")))]);
    let sb = f(isar1, 36);
    feature(ctx, "id-sb", sb != 0, format_args!("ISAR1.SB {sb}"), &[("SB", probe(insn!(".inst 0xd50330ff")))]);
    let ts = f(isar0, 52);
    feature(ctx, "id-flagm", ts != 0, format_args!("ISAR0.TS {ts}"), &[("CFINV", probe(insn!(".inst 0xd500401f")))]);
    let wfxt = f(isar2, 0);
    feature(ctx, "id-wfxt", wfxt != 0, format_args!("ISAR2.WFxT {wfxt}"), &[(
        "WFIT (deadline 0)",
        probe(|| {
            // SAFETY: WFIT with a deadline in the past returns at once.
            unsafe { core::arch::asm!(".inst 0xd5031020", in("x0") 0u64, options(nostack)) }
        }),
    )]);
    let ecv = f(mmfr0, 60);
    feature(ctx, "id-ecv", ecv != 0, format_args!("MMFR0.ECV {ecv}"), &[("CNTPCTSS_EL0", probe(insn!("mrs x0, s3_3_c14_c0_5")))]);
    let (csv2, csv2_frac) = (f(pfr0, 56), f(pfr1, 32));
    feature(ctx, "id-scxtnum", csv2 >= 2 || (csv2 == 1 && csv2_frac >= 2), format_args!("PFR0.CSV2 {csv2} PFR1.CSV2_frac {csv2_frac}"), &[
        ("SCXTNUM_EL1", probe(insn!("mrs x0, s3_0_c13_c0_7"))),
    ]);
    let dpb = f(isar1, 0);
    feature(ctx, "id-dpb", dpb != 0, format_args!("ISAR1.DPB {dpb}"), &[("DC CVAP", probe(insn!(".inst 0xd50b7c21")))]);
    let atomic = f(isar0, 20);
    feature(ctx, "id-lse", atomic >= 2, format_args!("ISAR0.Atomic {atomic}"), &[("LDADD", probe(insn!(".inst 0xf8220020")))]);
    let pan = f(mmfr1, 20);
    feature(ctx, "id-pan", pan != 0, format_args!("MMFR1.PAN {pan}"), &[("PAN", probe(insn!("mrs x0, s3_0_c4_c2_3")))]);
    let uao = f(mmfr2, 4);
    feature(ctx, "id-uao", uao != 0, format_args!("MMFR2.UAO {uao}"), &[("UAO", probe(insn!("mrs x0, s3_0_c4_c2_4")))]);
    let dit = f(pfr0, 48);
    feature(ctx, "id-dit", dit != 0, format_args!("PFR0.DIT {dit}"), &[("DIT", probe(insn!("mrs x0, s3_3_c4_c2_5")))]);
    let ssbs = f(pfr1, 4);
    let mut ssbs_probes = [("MSR SSBS, #0", probe(insn!(".inst 0xd503403f"))), ("MRS SSBS", Probe::Ok)];
    let n = if ssbs >= 2 || ssbs == 0 {
        ssbs_probes[1].1 = probe(insn!("mrs x0, s3_3_c4_c2_6"));
        2
    } else {
        1
    };
    feature(ctx, "id-ssbs", ssbs != 0, format_args!("PFR1.SSBS {ssbs}"), &ssbs_probes[..n]);
    let tme = f(isar0, 24);
    feature(ctx, "id-tme", tme != 0, format_args!("ISAR0.TME {tme}"), &[("TTEST", probe(insn!(".inst 0xd5233160")))]);
    let nmi = f(pfr1, 36);
    feature(ctx, "id-nmi", nmi != 0, format_args!("PFR1.NMI {nmi}"), &[("ALLINT", probe(insn!("mrs x0, s3_0_c4_c3_0")))]);
    let gcs = f(pfr1, 44);
    feature(ctx, "id-gcs", gcs != 0, format_args!("PFR1.GCS {gcs}"), &[("GCSCR_EL1", probe(insn!("mrs x0, s3_0_c2_c5_0")))]);
}
