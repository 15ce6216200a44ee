//! The VMs the device tree asks for: one [`VmSpec`] per `xen,domain` node under `/chosen`
//! (Xen's dom0less binding, read by [`crate::platform::domains`]), or, without one, the
//! default VM of the top-level `/chosen` modules on every online pCPU with all the free RAM.
//!
//! What the binding means is checked here, each refusal naming the node and property
//! (names, `cpus`, `memory`, the modules, the `xen,vcpu` pins, RAM left), then the specs go
//! through [`config::validate`] like any other. pCPUs: the pins first, then each unpinned
//! VM in node order takes the lowest free online pCPUs.
#![forbid(unsafe_code)]

use super::config::{self, Board, ConfigError, DtSource, ModuleRef, Problem, RAM_ALIGN, RamSpec, VmSpec};
use crate::ids::{CpuId, VcpuId};
use crate::mm::GuestPhysAddr;
use crate::platform::{Domain, Module, ModuleKind, Platform, Unused};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Where every VM's RAM starts in its guest-physical address space (QEMU virt's RAM).
pub const GUEST_RAM_BASE: u64 = 0x4000_0000;
/// The name of the VM of the top-level modules, when no domain node exists.
pub const DEFAULT_VM: &str = "linux";

/// The VMs to build, checked against `board` (made from `p`, with the online pCPUs and the
/// RAM free for all guests together); the first refusal.
pub fn vm_specs(p: &Platform<'_>, board: &Board<'_>) -> Result<Vec<VmSpec>, ConfigError> {
    let specs = if p.domains.is_empty() { alloc::vec![default_vm(p, board)] } else { domain_vms(p, board)? };
    config::validate(&specs, board).map_err(|mut e| {
        if e.at.is_none() && p.domains.iter().any(|d| d.name == e.vm) {
            e.at = Some(Box::new(DtSource { node: path(&e.vm, None), property: None }));
        }
        e
    })?;
    Ok(specs)
}

/// One line for each thing in the domain nodes that is not used, and for each top-level
/// kernel, ramdisk or disk module that domain nodes make unused; for the boot log.
pub fn warnings(p: &Platform<'_>) -> Vec<String> {
    let mut lines: Vec<String> = p
        .ignored
        .iter()
        .map(|i| {
            let at = path(i.domain, i.child);
            let name = i.name;
            match i.why {
                Unused::UnknownProperty => format!("{at}: unknown property '{name}' ignored"),
                Unused::XenProperty => format!("{at}: Xen's property '{name}' is not implemented; ignored"),
                Unused::UnknownNode => format!("{at}: node of no kind we use (compatible \"{name}\") ignored"),
                Unused::XenNode => format!("{at}: Xen's {name} node is not implemented; ignored"),
                Unused::Disabled => format!("{at}: status is not \"okay\"; this VM is not started"),
            }
        })
        .collect();
    if p.ignored_overflow > 0 {
        lines.push(format!("{} more unused properties or nodes of xen,domain nodes not listed", p.ignored_overflow));
    }
    if !p.domains.is_empty() {
        for m in p.modules.iter().filter(|m| m.domain.is_none() && m.kind != ModuleKind::Other) {
            lines.push(format!(
                "/chosen/{}: top-level {} module ignored: with xen,domain nodes, each VM's modules are its node's children",
                m.node,
                config::compatible(m.kind)
            ));
        }
    }
    lines
}

/// `/chosen/domain`, or `/chosen/domain/child`.
fn path(domain: &str, child: Option<&str>) -> String {
    match child {
        Some(child) => format!("/chosen/{domain}/{child}"),
        None => format!("/chosen/{domain}"),
    }
}

/// A refusal of domain `d`'s setting at node `child` (or the domain node), `property`.
fn refuse(d: &Domain<'_>, child: Option<&str>, property: Option<&'static str>, problem: Problem) -> ConfigError {
    ConfigError { vm: d.name.into(), at: Some(Box::new(DtSource { node: path(d.name, child), property })), problem }
}

/// The first module of `kind` that `owner` (a domain index, `None` for top-level) has.
fn module(p: &Platform<'_>, owner: Option<u8>, kind: ModuleKind) -> Option<ModuleRef> {
    p.modules.iter().position(|m| m.domain == owner && m.kind == kind).map(ModuleRef)
}

/// A VM with `cpus`, `ram_size` bytes and the modules of `owner`.
fn spec(p: &Platform<'_>, board: &Board<'_>, name: &str, cpus: Vec<CpuId>, ram_size: u64, owner: Option<u8>) -> VmSpec {
    let kernel = module(p, owner, ModuleKind::Kernel);
    let disk = module(p, owner, ModuleKind::Disk);
    VmSpec {
        name: name.into(),
        devices: config::virt_devices(board.gic, cpus.len(), disk, false),
        cpus,
        ram: RamSpec { ipa: GuestPhysAddr(GUEST_RAM_BASE), size: ram_size },
        kernel,
        ramdisk: module(p, owner, ModuleKind::Ramdisk),
        image: None,
        console: true,
        bootargs: kernel.and_then(|k| p.modules[k.0].bootargs).map(Into::into),
    }
}

/// Without domain nodes: the first top-level kernel, ramdisk and disk, every online pCPU,
/// all the free RAM (in whole granules) but what its stage-2 tables take.
fn default_vm(p: &Platform<'_>, board: &Board<'_>) -> VmSpec {
    let cpus = (0..board.cpu_count).map(CpuId).filter(|&c| board.is_online(c)).collect();
    let free = board.free_ram & !(RAM_ALIGN - 1);
    let size = free.saturating_sub(crate::arch::stage2_table_bytes(free));
    spec(p, board, DEFAULT_VM, cpus, size, None)
}

fn domain_vms(p: &Platform<'_>, board: &Board<'_>) -> Result<Vec<VmSpec>, ConfigError> {
    for (i, d) in p.domains.iter().enumerate() {
        if p.domains[..i].iter().any(|e| e.name == d.name) {
            return Err(refuse(d, None, None, Problem::DuplicateName));
        }
        if d.cpus == 0 {
            return Err(refuse(d, None, Some("cpus"), Problem::CpusZero));
        }
        if d.memory_kib == 0 {
            return Err(refuse(d, None, Some("memory"), Problem::MemoryEmpty));
        }
        if !d.memory_kib.is_multiple_of(RAM_ALIGN >> 10) {
            return Err(refuse(d, None, Some("memory"), Problem::MemoryMisaligned { kib: d.memory_kib }));
        }
    }
    check_modules(p)?;
    let placements = place_vcpus(p, board)?;
    let mut left = board.free_ram;
    let mut specs = Vec::new();
    for ((i, d), cpus) in p.domains.iter().enumerate().zip(placements) {
        let kib = d.memory_kib;
        let Some(size) = kib.checked_mul(1024).filter(|&size| config::ram_cost(size) <= left) else {
            return Err(refuse(d, None, Some("memory"), Problem::MemoryTooLarge { kib, free: left }));
        };
        left -= config::ram_cost(size);
        if module(p, Some(i as u8), ModuleKind::Kernel).is_none() {
            return Err(refuse(d, None, None, Problem::NoKernel));
        }
        specs.push(spec(p, board, d.name, cpus, size, Some(i as u8)));
    }
    Ok(specs)
}

/// The path of module `m`.
fn module_path(p: &Platform<'_>, m: &Module<'_>) -> String {
    match m.domain.and_then(|d| p.domains.get(d as usize)) {
        Some(d) => path(d.name, Some(m.node)),
        None => format!("/chosen/{}", m.node),
    }
}

/// Each domain module is the first of its kind in its VM, inside RAM, and shares no byte
/// with another module (a top-level one included: the bootloader wrote both there).
fn check_modules(p: &Platform<'_>) -> Result<(), ConfigError> {
    let owner = |m: &Module<'_>| m.domain.and_then(|d| p.domains.get(d as usize));
    for (i, m) in p.modules.iter().enumerate() {
        let region = m.region.range();
        if let Some(d) = owner(m) {
            let twice = p.modules[..i].iter().find(|o| o.domain == m.domain && o.kind == m.kind);
            if let Some(first) = twice.filter(|_| m.kind != ModuleKind::Other) {
                let problem = Problem::ModuleTwice { kind: m.kind, first: module_path(p, first) };
                return Err(refuse(d, Some(m.node), Some("compatible"), problem));
            }
            if !p.memory.iter().any(|bank| bank.range().contains_range(&region)) {
                return Err(refuse(d, Some(m.node), Some("reg"), Problem::ModuleOutsideRam { region }));
            }
        }
        for o in p.modules[..i].iter().filter(|o| o.region.range().overlaps(&region)) {
            // Refused at a domain's module, the later one if both are; two top-level
            // modules are the memory layout's to refuse.
            let (at, other) = if m.domain.is_some() { (m, o) } else { (o, m) };
            let Some(d) = owner(at) else { continue };
            let problem = Problem::ModulesOverlap {
                region: at.region.range(),
                other: module_path(p, other),
                holder: owner(other).map(|d| d.name.into()),
            };
            return Err(refuse(d, Some(at.node), Some("reg"), problem));
        }
    }
    Ok(())
}

/// The pCPU a `hard-affinity` names: exactly one, in decimal.
fn parse_affinity(affinity: &str) -> Result<CpuId, Problem> {
    let s = affinity.trim();
    if s.contains([',', '-']) {
        return Err(Problem::AffinitySeveral { affinity: affinity.into() });
    }
    match s.parse() {
        Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) => Ok(CpuId(n)),
        _ => Err(Problem::AffinityNotNumber { affinity: affinity.into() }),
    }
}

/// The pCPUs of each domain, vCPU order: a pinned domain's from its `xen,vcpu` nodes, then
/// an unpinned one's from the lowest pCPUs online and not pinned or given out before.
fn place_vcpus(p: &Platform<'_>, board: &Board<'_>) -> Result<Vec<Vec<CpuId>>, ConfigError> {
    // By pCPU: the domain that pinned it.
    let mut pinned_by: Vec<Option<usize>> = alloc::vec![None; board.cpu_count];
    let mut placements: Vec<Option<Vec<CpuId>>> = Vec::new();
    for (index, d) in p.domains.iter().enumerate() {
        let count = d.cpus as usize;
        let nodes: Vec<_> = p.vcpu_nodes.iter().filter(|v| v.domain as usize == index).collect();
        // (vCPU, pCPU) for each pinned vCPU.
        let mut pins: Vec<(usize, CpuId)> = Vec::new();
        for (n, v) in nodes.iter().enumerate() {
            let vcpu = VcpuId(v.id as usize);
            let fail = |property, problem| refuse(d, Some(v.node), Some(property), problem);
            if vcpu.0 >= count {
                return Err(fail("id", Problem::NoSuchVcpu { vcpu, count }));
            }
            if let Some(first) = nodes[..n].iter().find(|o| o.id == v.id) {
                return Err(fail("id", Problem::VcpuTwice { vcpu, first: path(d.name, Some(first.node)) }));
            }
            let Some(affinity) = v.hard_affinity else { continue };
            let cpu = parse_affinity(affinity).map_err(|problem| fail("hard-affinity", problem))?;
            let Some(owner) = pinned_by.get_mut(cpu.0) else {
                return Err(fail("hard-affinity", Problem::NoSuchCpu { cpu, count: board.cpu_count }));
            };
            if !board.is_online(cpu) {
                return Err(fail("hard-affinity", Problem::CpuOffline { cpu }));
            }
            if let Some(&(first, _)) = pins.iter().find(|&&(_, c)| c == cpu) {
                let problem = Problem::CpuTwice { cpu, first: VcpuId(first), second: vcpu };
                return Err(fail("hard-affinity", problem));
            }
            if let Some(other) = *owner {
                let problem = Problem::CpuTaken { cpu, owner: p.domains[other].name.into() };
                return Err(fail("hard-affinity", problem));
            }
            *owner = Some(index);
            pins.push((vcpu.0, cpu));
        }
        if pins.is_empty() {
            placements.push(None);
            continue;
        }
        // Pins are of distinct vCPUs below `count`: the first unpinned one is within reach.
        if let Some(vcpu) = (0..count).find(|v| !pins.iter().any(|&(pinned, _)| pinned == *v)) {
            return Err(refuse(d, None, None, Problem::VcpuNotPinned { vcpu: VcpuId(vcpu) }));
        }
        pins.sort_unstable();
        placements.push(Some(pins.into_iter().map(|(_, cpu)| cpu).collect()));
    }
    let mut free = (0..board.cpu_count).map(CpuId).filter(|&c| board.is_online(c) && pinned_by[c.0].is_none());
    let mut free_count = free.clone().count();
    p.domains
        .iter()
        .zip(placements)
        .map(|(d, placed)| match placed {
            Some(cpus) => Ok(cpus),
            None => {
                let wanted = d.cpus as usize;
                if wanted > free_count {
                    return Err(refuse(d, None, Some("cpus"), Problem::NotEnoughCpus { wanted, free: free_count }));
                }
                free_count -= wanted;
                Ok(free.by_ref().take(wanted).collect())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
