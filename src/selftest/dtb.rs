//! DTB discovery on the live machine.

use super::{Ctx, check, check_eq, expectations};
use crate::platform::{self, EnableMethod, GicVersion, ModuleKind};
use crate::start::boot_info;

pub fn run(ctx: &mut Ctx) {
    let b = boot_info();
    let p = &b.platform;
    let e = expectations();
    check!(ctx, !p.model.is_empty(), "model is named");
    check!(ctx, !p.cpus.is_empty(), "at least one CPU");
    if let Some(n) = e.cpus {
        check_eq!(ctx, p.cpus.len(), n, "CPU count matches -smp");
    }
    if p.cpus.len() > 1 {
        check!(ctx, p.cpus.iter().all(|c| c.enable != EnableMethod::None), "every CPU has an enable-method");
        check!(ctx, p.psci.is_some(), "PSCI node present");
    }
    let total: u64 = p.memory.iter().map(|m| m.size).sum();
    if let Some(mem) = e.mem {
        check_eq!(ctx, total, mem, "RAM size matches -m");
    }
    check!(ctx, p.memory.iter().all(|m| m.base % 4096 == 0 && m.size % 4096 == 0), "RAM banks page-aligned");
    check!(ctx, p.memory.iter().any(|m| m.range().contains_range(&p.dtb.range())), "DTB inside RAM");
    match e.gic {
        Some(2) => {
            check_eq!(ctx, p.gic.version, GicVersion::V2, "GIC version 2 (-machine gic-version=2)");
            check!(ctx, p.gic.gicv2_virtualization().is_ok(), "GICv2 with GICH, GICV and the maintenance interrupt");
        }
        _ => {
            check_eq!(ctx, p.gic.version, GicVersion::V3, "GIC version 3");
            check!(ctx, !p.gic.redistributors.is_empty(), "redistributor regions");
        }
    }
    check!(ctx, p.uart.is_some_and(|u| u.from_stdout_path), "console UART from /chosen/stdout-path");
    match p.timer {
        Some(t) => {
            let ids = [t.secure_phys, t.phys, t.virt, t.hyp_phys];
            check!(ctx, ids.iter().all(|&i| (16..32).contains(&i)), "timer interrupts are PPIs: {ids:?}");
            check!(
                ctx,
                ids.iter().enumerate().all(|(i, a)| ids[i + 1..].iter().all(|b| a != b)),
                "timer PPIs distinct"
            );
        }
        None => check!(ctx, false, "timer node present"),
    }
    // Discovery is deterministic: parsing the same blob again gives the same machine.
    match crate::start::dtb_slice(p.dtb.base).map(|blob| platform::discover(blob, p.dtb.base)) {
        Ok(Ok(again)) => {
            check_eq!(ctx, again.cpus.len(), p.cpus.len(), "re-parse: CPUs");
            check_eq!(ctx, &*again.memory, &*p.memory, "re-parse: memory");
        }
        _ => check!(ctx, false, "re-parse of the live DTB"),
    }
    if let Some(addr) = e.module {
        let found = p.modules.iter().find(|m| m.region.base == addr);
        check!(ctx, found.is_some_and(|m| m.kind == ModuleKind::Kernel), "multiboot,kernel module at {addr:#x}");
        if let Some(m) = found {
            check_eq!(ctx, m.bootargs, Some("test-module"), "module bootargs");
            const WANT: &[u8] = b"ARMVISOR-TEST-MODULE";
            check_eq!(ctx, m.region.size, WANT.len() as u64, "module size");
            let bytes = crate::arch::ram_bytes(p, m.region.range());
            check!(ctx, bytes == Some(WANT), "module contents");
            check!(ctx, !b.layout.free.overlaps(&m.region.range()), "module memory not free for guests");
        }
    }
}
