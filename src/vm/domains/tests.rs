//! Host tests of the VMs a device tree asks for: the accepted shapes of Xen's dom0less
//! binding, the default VM, and each refusal with its message.

use super::*;
use crate::platform::domains::fixture::{
    Node, cells, disk, domain, kernel, module, ramdisk, string, tree, two_vms, vcpu,
};
use crate::platform::{MAX_IGNORED, discover};
use crate::vgic::Version;
use crate::vm::config::DeviceKind;
use alloc::string::ToString;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// 512 MiB in KiB, as `memory` gives it.
const HALF_GIB_KIB: u64 = 512 << 10;
/// Free RAM for two 512 MiB VMs and their stage-2 tables (2 MiB each), with 4 MiB to spare.
const ROOM: u64 = GIB + 8 * MIB;

/// The VMs `blob` asks for on a board with pCPUs `online` (bit n: pCPU n) and `free` bytes of
/// guest RAM; a refusal as its message.
fn specs_with(blob: &[u8], online: u64, free: u64) -> Result<Vec<VmSpec>, String> {
    let p = discover(blob, 0).map_err(|e| e.to_string())?;
    vm_specs(&p, &Board::new(&p, online, free)).map_err(|e| e.to_string())
}

/// With every pCPU of a four-pCPU tree online and 1 GiB free.
fn accepted(blob: &[u8]) -> Result<Vec<VmSpec>, String> {
    specs_with(blob, 0b1111, ROOM)
}

fn refused(chosen: &[Node]) -> String {
    accepted(&tree(4, chosen)).expect_err("configuration accepted")
}

fn pcpus(spec: &VmSpec) -> Vec<usize> {
    spec.cpus.iter().map(|c| c.0).collect()
}

/// A domain of 512 MiB and `cpus` vCPUs with a kernel at `base`.
fn vm(name: &str, cpus: u32, base: u64) -> Node {
    domain(name, HALF_GIB_KIB, cpus).child(kernel(base, name))
}

// Accepted shapes.

#[test]
fn two_vms_of_two_vcpus_and_512_mib_each_share_four_pcpus() {
    let blob = tree(
        4,
        &[vm("a", 2, 0x4800_0000).child(ramdisk(0x4900_0000)).child(disk(0x4a00_0000)), vm("b", 2, 0x5000_0000)],
    );
    let p = discover(&blob, 0).unwrap();
    let specs = vm_specs(&p, &Board::new(&p, 0b1111, ROOM)).unwrap();
    let [a, b] = &specs[..] else { panic!("{specs:?}") };
    assert_eq!((a.name.as_str(), pcpus(a)), ("a", vec![0, 1]));
    assert_eq!((b.name.as_str(), pcpus(b)), ("b", vec![2, 3]));
    for s in [a, b] {
        assert_eq!(s.ram, RamSpec { ipa: GuestPhysAddr(0x4000_0000), size: 512 * MIB });
        assert!(s.console && s.image.is_none());
    }
    let node = |m: Option<ModuleRef>| m.map(|m| p.modules[m.0].node);
    assert_eq!((node(a.kernel), node(a.ramdisk)), (Some("module@48000000"), Some("module@49000000")));
    assert_eq!((node(b.kernel), node(b.ramdisk)), (Some("module@50000000"), None));
    assert_eq!(a.bootargs.as_deref(), Some("console=ttyAMA0 a"));
    assert_eq!(b.bootargs.as_deref(), Some("console=ttyAMA0 b"));
    assert_eq!(a.devices, config::virt_devices(Version::V3, 2, Some(ModuleRef(2)), false));
    assert!(!b.devices.iter().any(|d| matches!(d.kind, DeviceKind::VirtioBlk { .. })));
    assert!(warnings(&p).is_empty());
}

#[test]
fn pinned_vcpus_run_where_their_xen_vcpu_nodes_say_and_the_rest_take_what_is_left() {
    // b pins vCPU 0 to pCPU 3 and vCPU 1 to pCPU 2; a, unpinned and first, takes 0 and 1.
    let specs = accepted(&two_vms()).unwrap();
    assert_eq!(pcpus(&specs[0]), [0, 1]);
    assert_eq!(pcpus(&specs[1]), [3, 2]);
    // Pinned first, whatever the node order: a pins 0 and 1, b takes 2 and 3.
    let pinned = vm("a", 2, 0x4800_0000).child(vcpu(0, Some("1"))).child(vcpu(1, Some(" 0 ")));
    let specs = accepted(&tree(4, &[vm("b", 2, 0x5000_0000), pinned])).unwrap();
    assert_eq!((pcpus(&specs[0]), pcpus(&specs[1])), (vec![2, 3], vec![1, 0]));
    // A xen,vcpu node without hard-affinity pins nothing.
    let loose = vm("a", 2, 0x4800_0000).child(vcpu(1, None));
    assert_eq!(pcpus(&specs_with(&tree(4, &[loose]), 0b1100, ROOM).unwrap()[0]), [2, 3]);
}

#[test]
fn three_vms_of_two_one_and_one_vcpus() {
    let blob = tree(
        4,
        &[
            vm("a", 2, 0x4800_0000),
            domain("b", 256 << 10, 1).child(kernel(0x5000_0000, "b")),
            domain("c", 256 << 10, 1).child(kernel(0x5200_0000, "c")),
        ],
    );
    let specs = accepted(&blob).unwrap();
    let shape: Vec<_> = specs.iter().map(|s| (s.name.as_str(), pcpus(s), s.ram.size >> 20)).collect();
    assert_eq!(shape, [("a", vec![0, 1], 512), ("b", vec![2], 256), ("c", vec![3], 256)]);
}

#[test]
fn without_domain_nodes_one_vm_gets_every_online_pcpu_and_all_free_ram() {
    let top = [kernel(0x4800_0000, "linux"), ramdisk(0x4900_0000), disk(0x4a00_0000)];
    let blob = tree(4, &top);
    let p = discover(&blob, 0).unwrap();
    let specs = vm_specs(&p, &Board::new(&p, 0b1011, 3 * GIB + 3 * MIB)).unwrap();
    let [s] = &specs[..] else { panic!("{specs:?}") };
    assert_eq!((s.name.as_str(), pcpus(s)), ("linux", vec![0, 1, 3]));
    // 3 GiB + 2 MiB in whole granules, less 8 MiB for its stage-2 tables (1,551 of them).
    let size = 3 * GIB + 2 * MIB - 8 * MIB;
    assert_eq!(s.ram, RamSpec { ipa: GuestPhysAddr(0x4000_0000), size }, "2 MiB aligned down, less the tables");
    assert_eq!((s.kernel, s.ramdisk), (Some(ModuleRef(0)), Some(ModuleRef(1))));
    assert_eq!(s.devices, config::virt_devices(Version::V3, 3, Some(ModuleRef(2)), false));
    assert_eq!(s.bootargs.as_deref(), Some("console=ttyAMA0 linux"));
    assert!(warnings(&p).is_empty());
    // No kernel: refused as before.
    assert_eq!(
        specs_with(&tree(4, &[]), 0b1111, ROOM).unwrap_err(),
        "VM 'linux': no kernel: give it a multiboot,kernel module"
    );
}

#[test]
fn with_domain_nodes_top_level_modules_are_ignored_with_a_warning() {
    let blob = tree(4, &[kernel(0x4400_0000, "top"), vm("a", 2, 0x4800_0000), module("multiboot,module", 0x4600_0000)]);
    let p = discover(&blob, 0).unwrap();
    let specs = vm_specs(&p, &Board::new(&p, 0b1111, ROOM)).unwrap();
    assert_eq!((specs.len(), specs[0].kernel), (1, Some(ModuleRef(1))));
    assert_eq!(
        warnings(&p),
        [
            "/chosen/module@44000000: top-level multiboot,kernel module ignored: with xen,domain nodes, each VM's modules are its node's children"
        ]
    );
}

#[test]
fn unused_properties_and_nodes_each_draw_one_warning_line() {
    let a = vm("a", 1, 0x4800_0000)
        .set("vpl011", vec![])
        .set("direct-map", vec![])
        .set("xen,enhanced", string("enabled"))
        .set("passthrough", string("enabled"))
        .set("colour", string("blue"))
        .child(module("multiboot,device-tree", 0x4900_0000))
        .child(Node::new("thing").set("compatible", string("acme,thing")));
    let off = vm("off", 1, 0x5000_0000).set("status", string("disabled"));
    let blob = tree(4, &[a, off]);
    let p = discover(&blob, 0).unwrap();
    assert_eq!(
        warnings(&p),
        [
            "/chosen/a: Xen's property 'vpl011' is not implemented; ignored",
            "/chosen/a: Xen's property 'direct-map' is not implemented; ignored",
            "/chosen/a: Xen's property 'xen,enhanced' is not implemented; ignored",
            "/chosen/a: Xen's property 'passthrough' is not implemented; ignored",
            "/chosen/a: unknown property 'colour' ignored",
            "/chosen/a/module@49000000: Xen's multiboot,device-tree node is not implemented; ignored",
            "/chosen/a/thing: node of no kind we use (compatible \"acme,thing\") ignored",
            "/chosen/off: status is not \"okay\"; this VM is not started",
        ]
    );
    assert_eq!(vm_specs(&p, &Board::new(&p, 0b1111, ROOM)).unwrap().len(), 1);
    // Past the table, a count.
    let mut many = vm("a", 1, 0x4800_0000);
    for i in 0..40 {
        many = many.set(&format!("p{i}"), vec![]);
    }
    let blob = tree(4, &[many]);
    let lines = warnings(&discover(&blob, 0).unwrap());
    assert_eq!(lines.len(), MAX_IGNORED + 1);
    assert_eq!(lines[MAX_IGNORED], "24 more unused properties or nodes of xen,domain nodes not listed");
}

// Refusals, one message each naming the node and the property.

#[test]
fn a_pinned_pcpu_that_does_not_exist_or_is_offline_is_refused() {
    let pin = |cpu| vm("a", 1, 0x4800_0000).child(vcpu(0, Some(cpu)));
    assert_eq!(
        refused(&[pin("7")]),
        "VM 'a' (/chosen/a/vcpu@0): property 'hard-affinity': pCPU 7 does not exist (the board has 4 pCPUs)"
    );
    assert_eq!(
        specs_with(&tree(4, &[pin("3")]), 0b0111, ROOM).unwrap_err(),
        "VM 'a' (/chosen/a/vcpu@0): property 'hard-affinity': pCPU 3 did not come up"
    );
}

#[test]
fn one_pcpu_pinned_twice_is_refused() {
    let a = vm("a", 2, 0x4800_0000).child(vcpu(0, Some("0"))).child(vcpu(1, Some("1")));
    let b = vm("b", 1, 0x5000_0000).child(vcpu(0, Some("1")));
    assert_eq!(
        refused(&[a, b]),
        "VM 'b' (/chosen/b/vcpu@0): property 'hard-affinity': pCPU 1 is already used by VM 'a'"
    );
    let a = vm("a", 2, 0x4800_0000).child(vcpu(0, Some("2"))).child(vcpu(1, Some("2")));
    assert_eq!(
        refused(&[a]),
        "VM 'a' (/chosen/a/vcpu@1): property 'hard-affinity': pCPU 2 is given to both vCPU 0 and vCPU 1"
    );
}

#[test]
fn a_hard_affinity_of_several_pcpus_or_none_is_refused() {
    let pin = |cpus| refused(&[vm("a", 1, 0x4800_0000).child(vcpu(0, Some(cpus)))]);
    assert_eq!(
        pin("1,2"),
        "VM 'a' (/chosen/a/vcpu@0): property 'hard-affinity': \"1,2\" names several pCPUs, but a vCPU runs on exactly one: give one pCPU number, such as \"2\""
    );
    assert!(pin("0-3").contains("\"0-3\" names several pCPUs"));
    assert_eq!(
        pin("two"),
        "VM 'a' (/chosen/a/vcpu@0): property 'hard-affinity': \"two\" is not a pCPU number: give one, such as \"2\""
    );
    assert!(pin("+1").contains("\"+1\" is not a pCPU number"));
    assert!(pin("").contains("\"\" is not a pCPU number"));
}

#[test]
fn a_vm_with_some_vcpus_pinned_and_some_not_is_refused() {
    let a = vm("a", 3, 0x4800_0000).child(vcpu(0, Some("0"))).child(vcpu(2, Some("2"))).child(vcpu(1, None));
    assert_eq!(
        refused(&[a]),
        "VM 'a' (/chosen/a): vCPU 1 has no xen,vcpu node with a hard-affinity; when one vCPU of a VM is pinned, every vCPU must be"
    );
}

#[test]
fn xen_vcpu_nodes_for_missing_or_repeated_vcpus_are_refused() {
    let a = vm("a", 2, 0x4800_0000).child(vcpu(2, Some("2")));
    assert_eq!(
        refused(&[a]),
        "VM 'a' (/chosen/a/vcpu@2): property 'id': vCPU 2 does not exist: the VM has 2 vCPUs (its cpus), numbered from 0"
    );
    let again = Node { name: "vcpu-again".into(), ..vcpu(0, Some("1")) };
    let a = vm("a", 2, 0x4800_0000).child(vcpu(0, Some("0"))).child(again);
    assert_eq!(
        refused(&[a]),
        "VM 'a' (/chosen/a/vcpu-again): property 'id': vCPU 0 has a xen,vcpu node already (/chosen/a/vcpu@0)"
    );
}

#[test]
fn more_vcpus_than_free_pcpus_is_refused_saying_how_many_are_free() {
    assert_eq!(
        refused(&[vm("a", 3, 0x4800_0000), vm("b", 2, 0x5000_0000)]),
        "VM 'b' (/chosen/b): property 'cpus': 2 vCPUs, but 1 pCPU is free for it (online, pinned by no xen,vcpu node and given to no earlier VM)"
    );
    // Offline pCPUs and pinned ones are not free.
    let b = vm("b", 1, 0x5000_0000).child(vcpu(0, Some("0")));
    assert_eq!(
        specs_with(&tree(4, &[vm("a", 3, 0x4800_0000), b]), 0b1011, ROOM).unwrap_err(),
        "VM 'a' (/chosen/a): property 'cpus': 3 vCPUs, but 2 pCPUs are free for it (online, pinned by no xen,vcpu node and given to no earlier VM)"
    );
    assert!(refused(&[vm("a", u32::MAX, 0x4800_0000)]).contains("4294967295 vCPUs, but 4 pCPUs are free"));
}

#[test]
fn cpus_of_zero_is_refused() {
    assert_eq!(
        refused(&[vm("a", 0, 0x4800_0000)]),
        "VM 'a' (/chosen/a): property 'cpus': is 0: a VM needs at least one vCPU"
    );
}

#[test]
fn a_module_claimed_twice_is_refused() {
    // Two VMs' kernels overlapping.
    assert_eq!(
        refused(&[vm("a", 1, 0x4800_0000), vm("b", 1, 0x4880_0000)]),
        "VM 'b' (/chosen/b/module@48800000): property 'reg': [0x48800000..0x49800000) overlaps /chosen/a/module@48000000 of VM 'a'"
    );
    // Two modules of one VM.
    assert_eq!(
        refused(&[vm("a", 1, 0x4800_0000).child(ramdisk(0x48ff_f000))]),
        "VM 'a' (/chosen/a/module@48fff000): property 'reg': [0x48fff000..0x49fff000) overlaps /chosen/a/module@48000000 of VM 'a'"
    );
    // A domain module and a top-level one, in either order.
    let top = kernel(0x4900_0000, "top");
    let message = "VM 'a' (/chosen/a/module@48800000): property 'reg': [0x48800000..0x49800000) overlaps /chosen/module@49000000 (a top-level module)";
    assert_eq!(refused(&[top.clone(), vm("a", 1, 0x4880_0000)]), message);
    assert_eq!(refused(&[vm("a", 1, 0x4880_0000), top]), message);
}

#[test]
fn a_module_outside_ram_is_refused() {
    assert_eq!(
        refused(&[vm("a", 1, 0x3000_0000)]),
        "VM 'a' (/chosen/a/module@30000000): property 'reg': [0x30000000..0x31000000) is not inside a RAM bank (/memory)"
    );
    assert!(refused(&[vm("a", 1, 0xbf80_0000)]).contains("[0xbf800000..0xc0800000) is not inside a RAM bank"));
}

#[test]
fn memory_beyond_what_is_free_is_refused_saying_how_much_is_free() {
    let b = domain("b", 1 << 20, 1).child(kernel(0x5000_0000, "b"));
    assert_eq!(
        refused(&[vm("a", 1, 0x4800_0000), b]),
        "VM 'b' (/chosen/b): property 'memory': 1048576 KiB and its stage-2 tables (4096 KiB) are more than the 518 MiB of RAM left free"
    );
    let huge = domain("a", !2047, 1).child(kernel(0x4800_0000, "a"));
    assert_eq!(
        refused(&[huge]),
        "VM 'a' (/chosen/a): property 'memory': 18446744073709549568 KiB is more than the 1032 MiB of RAM left free"
    );
}

#[test]
fn memory_of_zero_or_not_whole_granules_is_refused_naming_the_granule() {
    let sized = |kib| refused(&[domain("a", kib, 1).child(kernel(0x4800_0000, "a"))]);
    assert_eq!(
        sized(0),
        "VM 'a' (/chosen/a): property 'memory': is 0 KiB: give a multiple of the 2 MiB (2048 KiB) granule of guest RAM"
    );
    assert_eq!(
        sized(3072),
        "VM 'a' (/chosen/a): property 'memory': 3072 KiB is not a multiple of the 2 MiB (2048 KiB) granule of guest RAM"
    );
}

#[test]
fn a_vm_without_a_kernel_or_with_two_is_refused() {
    assert_eq!(
        refused(&[domain("a", HALF_GIB_KIB, 1).child(ramdisk(0x4900_0000))]),
        "VM 'a' (/chosen/a): no kernel: give it a multiboot,kernel module"
    );
    assert_eq!(
        refused(&[vm("a", 1, 0x4800_0000).child(kernel(0x4a00_0000, "again"))]),
        "VM 'a' (/chosen/a/module@4a000000): property 'compatible': a second multiboot,kernel module (the first is /chosen/a/module@48000000): a VM has one"
    );
    assert!(
        refused(&[vm("a", 1, 0x4800_0000).child(disk(0x4a00_0000)).child(disk(0x4c00_0000))])
            .contains("a second armvisor,disk module (the first is /chosen/a/module@4a000000)")
    );
}

#[test]
fn two_vms_of_one_name_are_refused() {
    assert_eq!(
        refused(&[vm("a", 1, 0x4800_0000), vm("a", 1, 0x5000_0000)]),
        "VM 'a' (/chosen/a): another VM before it has the same name"
    );
}

#[test]
fn misshapen_cells_are_refused_at_discovery_naming_node_and_property() {
    assert_eq!(
        refused(&[vm("a", 1, 0x4800_0000).unset("#size-cells")]),
        "device tree node /chosen/a: property '#size-cells' is missing; a xen,domain node needs it, one cell of 1 or 2, for its modules' reg"
    );
    assert!(refused(&[vm("a", 1, 0x4800_0000).set("#address-cells", cells(&[3]))]).contains("'#address-cells' is 3"));
    assert!(refused(&[vm("a", 1, 0x4800_0000).set("memory", cells(&[1, 2, 3]))]).contains("'memory' is 12 bytes"));
    assert!(refused(&[vm("a", 1, 0x4800_0000).set("cpus", vec![1])]).contains("'cpus' is 1 byte;"));
    assert!(
        refused(&[vm("a", 1, 0x4800_0000).set("#size-cells", cells(&[1]))])
            .contains("/chosen/a/module@48000000: property 'reg' is 16 bytes")
    );
}

#[test]
fn a_refusal_of_the_common_checks_names_the_domain_node() {
    // RAM past the end of the guest-physical address space is config::validate's to refuse.
    let kib = (u64::MAX >> 10) & !2047;
    let blob = tree(4, &[domain("a", kib, 1).child(kernel(0x4800_0000, "a"))]);
    assert_eq!(
        specs_with(&blob, 0b1111, u64::MAX).unwrap_err(),
        "VM 'a' (/chosen/a): RAM 0x40000000+0xffffffffffe00000 runs past the end of the address space"
    );
}

/// Every truncation and single-byte corruption of a tree with domain nodes, through
/// discovery, the VM configurations and the warnings: never a panic.
#[test]
fn no_corruption_panics() {
    let blob = tree(
        4,
        &[
            kernel(0x4400_0000, "top"),
            vm("a", 2, 0x4800_0000).child(ramdisk(0x4900_0000)).child(disk(0x4a00_0000)).set("vpl011", vec![]),
            vm("b", 2, 0x5000_0000).child(vcpu(0, Some("3"))).child(vcpu(1, Some("2"))),
        ],
    );
    assert_eq!(accepted(&blob).map(|s| s.len()), Ok(2));
    let run = |b: &[u8]| {
        if let Ok(p) = discover(b, 0) {
            let _ = vm_specs(&p, &Board::new(&p, 0b1111, ROOM));
            let _ = warnings(&p);
        }
    };
    for len in 0..blob.len() {
        run(&blob[..len]);
    }
    for i in 0..blob.len() {
        for v in [0x00, 0x01, 0x03, 0x09, 0x2c, 0x7f, 0xff] {
            let mut b = blob.clone();
            b[i] = v;
            run(&b);
        }
    }
}
