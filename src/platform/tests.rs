//! Host tests of DTB discovery: QEMU virt trees in several shapes and two board-shaped
//! trees (tests/dtb, made by tests/dtb/generate.sh), synthetic trees, and damaged blobs.

use super::check::FdtDamage;
use super::writer::Writer;
use super::*;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/dtb/{name}.dtb", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn qemu_virt_common(p: &Platform<'_>, cpus: usize, mem: u64) {
    assert_eq!(p.model, "linux,dummy-virt");
    assert_eq!(&*p.memory, &[Region { base: 0x4000_0000, size: mem }]);
    assert_eq!(p.cpus.len(), cpus);
    for (i, c) in p.cpus.iter().enumerate() {
        // With one CPU QEMU writes no enable-method: nothing needs starting.
        let method = if cpus == 1 { EnableMethod::None } else { EnableMethod::Psci };
        assert_eq!(c.enable, method);
        // QEMU virt puts 8 CPUs per cluster for GICv3 (16 for GICv2): Aff0 = i for i < 8.
        assert_eq!(c.mpidr, i as u64);
    }
    assert_eq!(p.psci, Some(Psci { conduit: PsciConduit::Smc, cpu_on: 0xc400_0003 }));
    let uart = p.uart.expect("pl011");
    assert_eq!(uart.region, Region { base: 0x0900_0000, size: 0x1000 });
    assert!(uart.from_stdout_path);
    assert_eq!(uart.intid, Some(33), "QEMU's PL011 is SPI 1");
    assert_eq!(p.timer, Some(Timer { secure_phys: 29, phys: 30, virt: 27, hyp_phys: 26 }));
    assert_eq!(p.rtc, Some(Region { base: 0x0901_0000, size: 0x1000 }), "QEMU's PL031");
    assert!(p.dtb.size > 0);
}

#[test]
fn qemu_virt_gicv3_one_cpu_512m() {
    let blob = fixture("virt-gicv3-smp1-512m");
    let p = discover(&blob, 0x4000_0000).unwrap();
    qemu_virt_common(&p, 1, 512 * MIB);
    assert_eq!(p.gic.version, GicVersion::V3);
    assert_eq!(p.gic.distributor, Region { base: 0x0800_0000, size: 0x1_0000 });
    assert_eq!(&*p.gic.redistributors, &[Region { base: 0x080a_0000, size: 0xf6_0000 }]);
    assert_eq!(p.gic.maintenance_intid, Some(25));
    assert!(p.modules.is_empty());
    assert_eq!(p.dtb, Region { base: 0x4000_0000, size: blob.len() as u64 });
}

#[test]
fn qemu_virt_gicv3_four_cpus_512m() {
    let blob = fixture("virt-gicv3-smp4-512m");
    let p = discover(&blob, 0).unwrap();
    qemu_virt_common(&p, 4, 512 * MIB);
    assert_eq!(p.cpu_index(3), Some(3));
    assert_eq!(p.cpu_index(0x8000_0003), Some(3), "MPIDR's RES1 bit 31 is ignored");
    assert_eq!(p.cpu_index(4), None);
}

#[test]
fn qemu_virt_gicv3_eight_cpus_4g() {
    let blob = fixture("virt-gicv3-smp8-4g");
    let p = discover(&blob, 0).unwrap();
    qemu_virt_common(&p, 8, 4 * GIB);
    assert_eq!(p.gic.version, GicVersion::V3);
}

#[test]
fn qemu_virt_gicv2_is_discovered_as_v2() {
    let blob = fixture("virt-gicv2-smp4-512m");
    let p = discover(&blob, 0).unwrap();
    qemu_virt_common(&p, 4, 512 * MIB);
    assert_eq!(p.gic.version, GicVersion::V2);
    // GICD, GICC, GICH, GICV: the four `reg` entries of QEMU's arm,cortex-a15-gic node.
    assert_eq!(p.gic.distributor, Region { base: 0x0800_0000, size: 0x1_0000 });
    assert_eq!(p.gic.cpu_interface, Some(Region { base: 0x0801_0000, size: 0x1_0000 }));
    assert_eq!(p.gic.hyp_interface, Some(Region { base: 0x0803_0000, size: 0x1_0000 }));
    assert_eq!(p.gic.vcpu_interface, Some(Region { base: 0x0804_0000, size: 0x1_0000 }));
    assert_eq!(p.gic.maintenance_intid, Some(25), "PPI 9");
    assert!(p.gic.redistributors.is_empty());
    let virt = p.gic.gicv2_virtualization().unwrap();
    assert_eq!(virt.hyp_interface, Region { base: 0x0803_0000, size: 0x1_0000 });
    assert_eq!(virt.vcpu_interface, Region { base: 0x0804_0000, size: 0x1_0000 });
    assert_eq!(virt.maintenance_intid, 25);
}

/// A tree with a GICv2 (or a GICv3) and `cpus` CPUs, named cpu@0, cpu@1...
fn tree_with_cpus(gic: &str, cpus: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.begin("").prop_u32("#address-cells", 1).prop_u32("#size-cells", 1);
    w.begin("memory").prop_str("device_type", "memory").prop_cells("reg", &[0x4000_0000, 0x1000_0000]).end();
    w.begin("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
    for i in 0..cpus {
        w.begin(&format!("cpu@{i}")).prop_str("device_type", "cpu").prop_cells("reg", &[i]).end();
    }
    w.end();
    let reg: &[u32] = if gic == "arm,gic-v3" {
        &[0x800_0000, 0x1_0000, 0x80a_0000, 0xf6_0000]
    } else {
        &[0x800_0000, 0x1_0000, 0x801_0000, 0x1_0000]
    };
    w.begin("gic").prop_strs("compatible", &[gic]).prop_empty("interrupt-controller").prop_cells("reg", reg).end();
    end_root(w)
}

#[test]
fn a_gicv2_serves_at_most_eight_cpus() {
    assert_eq!(discover(&tree_with_cpus("arm,gic-400", 8), 0).unwrap().cpus.len(), 8);
    let blob = tree_with_cpus("arm,gic-400", 9);
    let err = discover(&blob, 0).unwrap_err();
    assert_eq!(err, Error::TooManyCpusForGicv2 { count: 9, first_extra: "cpu@8" });
    assert_eq!(err.to_string(), "the GICv2 serves at most 8 CPUs; the device tree lists 9 (the 9th is /cpus/cpu@8)");
    let blob = tree_with_cpus("arm,cortex-a15-gic", 12);
    let err = discover(&blob, 0).unwrap_err();
    assert_eq!(err, Error::TooManyCpusForGicv2 { count: 12, first_extra: "cpu@8" });
    // A GICv3 has no such limit.
    assert_eq!(discover(&tree_with_cpus("arm,gic-v3", 12), 0).unwrap().cpus.len(), 12);
}

#[test]
fn qemu_virt_gicv2_nine_cpus_is_refused() {
    // QEMU's -smp 8 GICv2 tree with a ninth CPU added (tests/dtb/virt-gicv2-smp9.dts).
    let blob = fixture("virt-gicv2-smp9");
    let err = discover(&blob, 0).unwrap_err();
    assert_eq!(err, Error::TooManyCpusForGicv2 { count: 9, first_extra: "cpu@8" });
}

#[test]
fn qemu_virt_guest_loader_modules() {
    let blob = fixture("virt-gicv3-smp4-4g-modules");
    let p = discover(&blob, 0).unwrap();
    qemu_virt_common(&p, 4, 4 * GIB);
    assert_eq!(p.modules.len(), 2);
    let kernel = p.modules.iter().find(|m| m.kind == ModuleKind::Kernel).unwrap();
    assert_eq!(kernel.region, Region { base: 0x4800_0000, size: 6 });
    assert_eq!(kernel.bootargs, Some("console=ttyAMA0 earlycon"));
    let initrd = p.modules.iter().find(|m| m.kind == ModuleKind::Ramdisk).unwrap();
    assert_eq!(initrd.region, Region { base: 0x4900_0000, size: 6 });
    assert_eq!(initrd.bootargs, None);
    assert!(p.is_occupied(&Range { start: 0x4800_0000, end: 0x4800_1000 }));
    assert!(!p.is_occupied(&Range { start: 0x4a00_0000, end: 0x4a00_1000 }));
}

/// A board-like tree: a `soc` bus with a non-identity `ranges`, spin-table CPUs with two-cell
/// MPIDRs, PSCI 0.1, `/reserved-memory` and `/memreserve/`, stdout-path through an alias with
/// options, two memory banks in two nodes.
fn board_tree() -> Writer {
    let mut w = Writer::new();
    w.reserve(0x8000_0000, 0x1000);
    w.begin("").prop_u32("#address-cells", 2).prop_u32("#size-cells", 2).prop_str("model", "test board");
    w.begin("aliases").prop_str("serial0", "/soc/serial@7e201000").end();
    w.begin("chosen").prop_str("stdout-path", "serial0:115200n8").prop_str("bootargs", "hv=1");
    w.begin("module@90000000")
        .prop_strs("compatible", &["armvisor,disk", "multiboot,module"])
        .prop_u64s("reg", &[0x9000_0000, 0x20_0000])
        .end();
    w.end();
    w.begin("memory@80000000").prop_str("device_type", "memory").prop_u64s("reg", &[0x8000_0000, GIB]).end();
    w.begin("memory@100000000").prop_str("device_type", "memory").prop_u64s("reg", &[0x1_0000_0000, 2 * GIB]).end();
    w.begin("memory@200000000")
        .prop_str("device_type", "memory")
        .prop_str("status", "disabled")
        .prop_u64s("reg", &[0x2_0000_0000, GIB])
        .end();
    w.begin("reserved-memory").prop_u32("#address-cells", 2).prop_u32("#size-cells", 2).prop_empty("ranges");
    w.begin("tee@88000000").prop_u64s("reg", &[0x8800_0000, 0x100_0000]).prop_empty("no-map").end();
    w.begin("cma").prop_u64s("size", &[0x100_0000]).end();
    w.end();
    w.begin("psci")
        .prop_strs("compatible", &["arm,psci"])
        .prop_str("method", "hvc")
        .prop_u32("cpu_on", 0x8400_0002)
        .end();
    w.begin("cpus").prop_u32("#address-cells", 2).prop_u32("#size-cells", 0);
    for (i, mpidr) in [0x0u64, 0x1, 0x100, 0x1_0000_0000].iter().enumerate() {
        w.begin(&format!("cpu@{i}"))
            .prop_str("device_type", "cpu")
            .prop_u64s("reg", &[*mpidr])
            .prop_str("enable-method", "spin-table")
            .prop_u64s("cpu-release-addr", &[0xd8 + 8 * i as u64])
            .end();
    }
    w.begin("cpu-map").end();
    w.end();
    w.begin("timer")
        .prop_strs("compatible", &["arm,armv8-timer"])
        .prop_cells("interrupts", &[1, 13, 0xf08, 1, 14, 0xf08, 1, 11, 0xf08, 1, 10, 0xf08])
        .end();
    w.begin("soc")
        .prop_u32("#address-cells", 1)
        .prop_u32("#size-cells", 1)
        .prop_strs("compatible", &["simple-bus"])
        .prop_cells("ranges", &[0x7e00_0000, 0, 0xfe00_0000, 0x180_0000]);
    w.begin("serial@7e201000")
        .prop_strs("compatible", &["arm,pl011", "arm,primecell"])
        .prop_cells("reg", &[0x7e20_1000, 0x200])
        .end();
    w.begin("serial@7e215040")
        .prop_strs("compatible", &["brcm,bcm2835-aux-uart"])
        .prop_cells("reg", &[0x7e21_5040, 0x40])
        .end();
    w.end();
    w.begin("interrupt-controller@ff841000")
        .prop_strs("compatible", &["arm,gic-400"])
        .prop_empty("interrupt-controller")
        .prop_u32("#interrupt-cells", 3)
        .prop_u64s("reg", &[0xff84_1000, 0x1000, 0xff84_2000, 0x2000])
        .prop_cells("interrupts", &[1, 9, 0xf04])
        .end();
    w
}

fn end_root(mut w: Writer) -> Vec<u8> {
    w.end();
    w.finish()
}

#[test]
fn board_tree_translates_and_collects_everything() {
    let blob = end_root(board_tree());
    let p = discover(&blob, 0x8100_0000).unwrap();
    assert_eq!(p.model, "test board");
    assert_eq!(&*p.memory, &[Region { base: 0x8000_0000, size: GIB }, Region { base: 0x1_0000_0000, size: 2 * GIB }]);
    assert_eq!(
        &*p.reserved,
        &[
            Reserved { region: Region { base: 0x8000_0000, size: 0x1000 }, no_map: false },
            Reserved { region: Region { base: 0x8800_0000, size: 0x100_0000 }, no_map: true },
        ]
    );
    assert_eq!(p.cpus.len(), 4);
    assert_eq!(p.cpus[3], Cpu { mpidr: 0x1_0000_0000, enable: EnableMethod::SpinTable { release_addr: 0xf0 } });
    assert_eq!(p.cpu_index(0x100), Some(2));
    assert_eq!(p.psci, Some(Psci { conduit: PsciConduit::Hvc, cpu_on: 0x8400_0002 }));
    assert_eq!(
        p.uart,
        Some(Uart {
            kind: UartKind::Pl011,
            region: Region { base: 0xfe20_1000, size: 0x200 },
            from_stdout_path: true,
            intid: None
        })
    );
    assert_eq!(p.gic.version, GicVersion::V2);
    assert_eq!(p.gic.cpu_interface, Some(Region { base: 0xff84_2000, size: 0x2000 }));
    // GICD and GICC only: discovered, but no host for guests.
    assert_eq!((p.gic.hyp_interface, p.gic.vcpu_interface), (None, None));
    assert!(p.gic.gicv2_virtualization().is_err());
    assert_eq!(p.gic.maintenance_intid, Some(25));
    assert_eq!(p.timer.unwrap().hyp_phys, 26);
    assert_eq!(p.bootargs, Some("hv=1"));
    assert_eq!(
        &*p.modules,
        &[Module {
            kind: ModuleKind::Disk,
            region: Region { base: 0x9000_0000, size: 0x20_0000 },
            bootargs: None,
            node: "module@90000000",
            domain: None
        }]
    );
    assert!(p.is_occupied(&Range { start: 0x8800_0000, end: 0x8800_1000 }));
}

#[test]
fn uart_falls_back_to_first_pl011_without_stdout_path() {
    let mut w = Writer::new();
    w.begin("").prop_u32("#address-cells", 1).prop_u32("#size-cells", 1);
    w.begin("memory").prop_str("device_type", "memory").prop_cells("reg", &[0x4000_0000, 0x1000_0000]).end();
    w.begin("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
    w.begin("cpu@0").prop_str("device_type", "cpu").prop_cells("reg", &[0]).end().end();
    w.begin("gic").prop_strs("compatible", &["arm,gic-v3"]).prop_empty("interrupt-controller");
    w.prop_cells("reg", &[0x800_0000, 0x1_0000, 0x80a_0000, 0x2_0000]).end();
    w.begin("uart@1000").prop_strs("compatible", &["arm,pl011"]).prop_cells("reg", &[0x1000, 0x1000]).end();
    let blob = end_root(w);
    let p = discover(&blob, 0).unwrap();
    assert_eq!(p.uart.unwrap().region, Region { base: 0x1000, size: 0x1000 });
    assert!(!p.uart.unwrap().from_stdout_path);
    assert_eq!(p.cpus[0].enable, EnableMethod::None);
    assert_eq!(p.timer, None);
    assert_eq!(p.psci, None);
}

#[test]
fn rk3399_console_is_the_designware_uart_stdout_path_names() {
    let blob = fixture("rk3399-uart2");
    let p = discover(&blob, 0).unwrap();
    assert_eq!(
        p.uart,
        Some(Uart {
            kind: UartKind::Ns16550 { variant: Ns16550Variant::DesignWare, reg_shift: 2, io_width: IoWidth::U32 },
            region: Region { base: 0xff1a_0000, size: 0x100 },
            from_stdout_path: true,
            intid: Some(32 + 100),
        })
    );
    assert_eq!(p.gic.version, GicVersion::V3);
    assert_eq!(p.timer.unwrap().virt, 27, "four-cell interrupt specifiers");
}

#[test]
fn zynqmp_console_is_the_cadence_uart_stdout_path_names() {
    let blob = fixture("zynqmp-uart0");
    let p = discover(&blob, 0).unwrap();
    assert_eq!(
        p.uart,
        Some(Uart {
            kind: UartKind::Cadence,
            region: Region { base: 0xff00_0000, size: 0x1000 },
            from_stdout_path: true,
            intid: Some(32 + 21),
        })
    );
    assert_eq!(p.gic.version, GicVersion::V2);
    assert_eq!(p.memory.len(), 2);
}

/// A minimal tree whose `/chosen/stdout-path` is `/serial@2000`: a PL011 at 0x1000 first,
/// then the console node, whose properties `console` writes (after `reg`).
fn console_tree(compatible: &[&str], reg_size: u32, console: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new();
    w.begin("").prop_u32("#address-cells", 1).prop_u32("#size-cells", 1);
    w.begin("chosen").prop_str("stdout-path", "/serial@2000").end();
    w.begin("memory").prop_str("device_type", "memory").prop_cells("reg", &[0x4000_0000, 0x1000_0000]).end();
    w.begin("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
    w.begin("cpu@0").prop_str("device_type", "cpu").prop_cells("reg", &[0]).end().end();
    w.begin("gic").prop_strs("compatible", &["arm,gic-v3"]).prop_empty("interrupt-controller");
    w.prop_cells("reg", &[0x800_0000, 0x1_0000, 0x80a_0000, 0x2_0000]).end();
    w.begin("serial@1000").prop_strs("compatible", &["arm,pl011"]).prop_cells("reg", &[0x1000, 0x1000]).end();
    w.begin("serial@2000").prop_strs("compatible", compatible).prop_cells("reg", &[0x2000, reg_size]);
    w.prop_cells("interrupts", &[0, 5, 4]);
    console(&mut w);
    w.end();
    end_root(w)
}

#[test]
fn stdout_path_picks_a_16550_over_an_earlier_pl011() {
    let kind = |compatible: &[&str], console: fn(&mut Writer)| {
        let p = discover(&console_tree(compatible, 0x100, console), 0).map(|p| p.uart.unwrap()).unwrap();
        assert!(p.from_stdout_path);
        assert_eq!(p.intid, Some(37));
        (p.kind, p.region)
    };
    let at_2000 = Region { base: 0x2000, size: 0x100 };
    let shape = |variant, reg_shift, io_width| UartKind::Ns16550 { variant, reg_shift, io_width };
    assert_eq!(kind(&["ns16550a"], |_| {}), (shape(Ns16550Variant::Fifo, 0, IoWidth::U8), at_2000));
    assert_eq!(kind(&["ns16550"], |_| {}), (shape(Ns16550Variant::NoFifo, 0, IoWidth::U8), at_2000));
    assert_eq!(
        kind(&["fsl,ns16550", "ns16550a"], |w| {
            w.prop_u32("reg-shift", 2);
        }),
        (shape(Ns16550Variant::Fifo, 2, IoWidth::U8), at_2000),
        "reg-shift without reg-io-width: byte accesses 4 bytes apart"
    );
    assert_eq!(
        kind(&["allwinner,sun50i-h6-uart", "snps,dw-apb-uart"], |w| {
            w.prop_u32("reg-shift", 2).prop_u32("reg-io-width", 4).prop_u32("reg-offset", 0x40);
        }),
        (shape(Ns16550Variant::DesignWare, 2, IoWidth::U32), Region { base: 0x2040, size: 0xc0 }),
        "reg-offset moves the registers"
    );
    assert_eq!(kind(&["cdns,uart-r1p8"], |_| {}), (UartKind::Cadence, at_2000));
    assert_eq!(kind(&["xlnx,xuartps"], |_| {}), (UartKind::Cadence, at_2000));
}

#[test]
fn stdout_path_at_a_uart_we_cannot_drive_falls_back_to_the_first_pl011() {
    let blob = console_tree(&["brcm,bcm2835-aux-uart"], 0x40, |_| {});
    let uart = discover(&blob, 0).unwrap().uart.unwrap();
    assert_eq!(
        (uart.kind, uart.region, uart.from_stdout_path),
        (UartKind::Pl011, Region { base: 0x1000, size: 0x1000 }, false)
    );
}

#[test]
fn bad_console_register_shapes_are_refused_by_name() {
    let refused = |compatible: &[&str], reg_size: u32, console: fn(&mut Writer)| match discover(
        &console_tree(compatible, reg_size, console),
        0,
    ) {
        Err(Error::BadProperty { node, property }) => {
            assert_eq!(node, "serial@2000");
            property
        }
        other => panic!("{compatible:?}: {other:?}"),
    };
    let dw = &["snps,dw-apb-uart"][..];
    assert_eq!(
        refused(dw, 0x100, |w| {
            w.prop_u32("reg-io-width", 2);
        }),
        "reg-io-width"
    );
    assert_eq!(
        refused(dw, 0x100, |w| {
            w.prop_u32("reg-io-width", 8);
        }),
        "reg-io-width"
    );
    assert_eq!(
        refused(dw, 0x100, |w| {
            w.prop("reg-io-width", &[4]);
        }),
        "reg-io-width",
        "one byte, not a cell"
    );
    assert_eq!(
        refused(dw, 0x100, |w| {
            w.prop_u32("reg-io-width", 4);
        }),
        "reg-io-width",
        "32-bit accesses one byte apart would be unaligned"
    );
    assert_eq!(
        refused(dw, 0x100, |w| {
            w.prop_u32("reg-shift", 4);
        }),
        "reg-shift"
    );
    assert_eq!(
        refused(dw, 0x100, |w| {
            w.prop_u32("reg-shift", 0xffff_ffff);
        }),
        "reg-shift"
    );
    assert_eq!(
        refused(dw, 0x100, |w| {
            w.prop_u32("reg-offset", 0x100);
        }),
        "reg-offset"
    );
    assert_eq!(
        refused(dw, 0x20, |w| {
            w.prop_u32("reg-shift", 2).prop_u32("reg-io-width", 4);
        }),
        "reg",
        "USR at 0x7c is outside a 0x20-byte reg"
    );
    assert_eq!(refused(&["cdns,uart-r1p12"], 0x30, |_| {}), "reg", "the FIFO register at 0x30");
    assert_eq!(refused(&["arm,pl011"], 0x40, |_| {}), "reg", "UARTDMACR at 0x48");
}

#[test]
fn odd_properties_on_a_uart_that_is_not_the_console_are_not_our_business() {
    let mut w = Writer::new();
    w.begin("").prop_u32("#address-cells", 1).prop_u32("#size-cells", 1);
    w.begin("memory").prop_str("device_type", "memory").prop_cells("reg", &[0x4000_0000, 0x1000_0000]).end();
    w.begin("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
    w.begin("cpu@0").prop_str("device_type", "cpu").prop_cells("reg", &[0]).end().end();
    w.begin("gic").prop_strs("compatible", &["arm,gic-v3"]).prop_empty("interrupt-controller");
    w.prop_cells("reg", &[0x800_0000, 0x1_0000, 0x80a_0000, 0x2_0000]).end();
    w.begin("serial@3000").prop_strs("compatible", &["ns16550a"]).prop_cells("reg", &[0x3000, 8]);
    w.prop_u32("reg-io-width", 2).end();
    w.begin("serial@1000").prop_strs("compatible", &["arm,pl011"]).prop_cells("reg", &[0x1000, 0x1000]).end();
    let uart = discover(&end_root(w), 0).unwrap().uart.unwrap();
    assert_eq!((uart.kind, uart.from_stdout_path), (UartKind::Pl011, false));
}

/// The board's RTC is the first enabled `arm,pl031`, its `reg` translated like any device's;
/// boards without one (the RK3399- and ZynqMP-shaped trees) have none; a `reg` too short for
/// RTCDR..RTCICR is refused by name.
#[test]
fn the_rtc_is_the_first_enabled_pl031() {
    for board in ["rk3399-uart2", "zynqmp-uart0"] {
        assert_eq!(discover(&fixture(board), 0).unwrap().rtc, None, "{board}");
    }
    let tree = |rtcs: &[(u32, u32, bool)]| {
        let mut w = board_tree();
        w.begin("rtcs")
            .prop_u32("#address-cells", 1)
            .prop_u32("#size-cells", 1)
            .prop_strs("compatible", &["simple-bus"])
            .prop_cells("ranges", &[0x1000_0000, 0, 0xf000_0000, 0x100_0000]);
        for &(base, size, enabled) in rtcs {
            w.begin(&format!("rtc@{base:x}"))
                .prop_strs("compatible", &["arm,pl031", "arm,primecell"])
                .prop_cells("reg", &[base, size]);
            if !enabled {
                w.prop_str("status", "disabled");
            }
            w.end();
        }
        w.end();
        end_root(w)
    };
    assert_eq!(discover(&end_root(board_tree()), 0).unwrap().rtc, None);
    let p = tree(&[(0x1001_0000, 0x1000, false), (0x1002_0000, 0x1000, true), (0x1003_0000, 0x1000, true)]);
    assert_eq!(discover(&p, 0).unwrap().rtc, Some(Region { base: 0xf002_0000, size: 0x1000 }));
    let short = tree(&[(0x1002_0000, 0x1c, true)]);
    assert_eq!(discover(&short, 0).unwrap_err(), Error::BadProperty { node: "rtc@10020000", property: "reg" });
    assert_eq!(discover(&tree(&[(0x1002_0000, 0x20, true)]), 0).unwrap().rtc.map(|r| r.size), Some(0x20));
}

#[test]
fn missing_pieces_are_named() {
    let without = |skip: &str| {
        let mut w = Writer::new();
        w.begin("").prop_u32("#address-cells", 1).prop_u32("#size-cells", 1);
        if skip != "memory" {
            w.begin("memory").prop_str("device_type", "memory").prop_cells("reg", &[0, 0x1000]).end();
        }
        if skip != "cpus" {
            w.begin("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
            w.begin("cpu@0").prop_str("device_type", "cpu").prop_cells("reg", &[0]).end().end();
        }
        if skip != "gic" {
            w.begin("gic").prop_strs("compatible", &["arm,gic-v3"]).prop_empty("interrupt-controller");
            w.prop_cells("reg", &[0x800_0000, 0x1_0000, 0x80a_0000, 0x2_0000]).end();
        }
        end_root(w)
    };
    assert!(discover(&without("none"), 0).is_ok());
    assert_eq!(discover(&without("memory"), 0).unwrap_err(), Error::NoMemory);
    assert_eq!(discover(&without("cpus"), 0).unwrap_err(), Error::NoCpus);
    assert_eq!(discover(&without("gic"), 0).unwrap_err(), Error::NoGic);
}

/// One property in an otherwise good tree replaced by a bad value.
fn with_bad(node: &str, prop: &str, value: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.begin("").prop_u32("#address-cells", 2).prop_u32("#size-cells", 2);
    let p = |w: &mut Writer, n: &str, name: &str, good: &[u8]| {
        w.prop(name, if n == node && name == prop { value } else { good });
    };
    w.begin("memory");
    p(&mut w, "memory", "device_type", b"memory\0");
    p(&mut w, "memory", "reg", &[0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]);
    w.end();
    w.begin("psci");
    p(&mut w, "psci", "compatible", b"arm,psci-1.0\0");
    p(&mut w, "psci", "method", b"smc\0");
    w.end();
    w.begin("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
    w.begin("cpu@0");
    p(&mut w, "cpu", "device_type", b"cpu\0");
    p(&mut w, "cpu", "reg", &[0, 0, 0, 0]);
    p(&mut w, "cpu", "enable-method", b"spin-table\0");
    p(&mut w, "cpu", "cpu-release-addr", &[0, 0, 0, 0, 0, 0, 0, 0xd8]);
    w.end().end();
    w.begin("gic");
    p(&mut w, "gic", "compatible", b"arm,gic-v3\0");
    w.prop_empty("interrupt-controller");
    p(&mut w, "gic", "reg", &[0u8; 32]);
    p(&mut w, "gic", "#redistributor-regions", &[0, 0, 0, 1]);
    w.end();
    w.begin("timer");
    p(&mut w, "timer", "compatible", b"arm,armv8-timer\0");
    p(
        &mut w,
        "timer",
        "interrupts",
        &[0u8; 48].map(|_| 0).iter().enumerate().map(|(i, _)| if i % 12 == 3 { 1 } else { 0 }).collect::<Vec<_>>(),
    );
    w.end();
    end_root(w)
}

#[test]
fn malformed_properties_are_errors_not_panics() {
    assert!(discover(&with_bad("", "", &[]), 0).is_ok());
    let cases: &[(&str, &str, &[u8], &str)] = &[
        ("memory", "reg", &[0, 0, 0, 1], "reg"),
        ("memory", "reg", &[0xff; 16], "reg"),
        ("psci", "method", b"svc\0", "method"),
        ("cpu", "reg", &[0, 0], "reg"),
        ("cpu", "reg", &[0xff, 0, 0, 0], "reg"),
        ("cpu", "cpu-release-addr", &[1, 2, 3], "cpu-release-addr"),
        ("gic", "reg", &[0u8; 12], "reg"),
        ("gic", "#redistributor-regions", &[0, 0, 0, 9], "#redistributor-regions"),
        ("gic", "#redistributor-regions", &[0, 0, 0, 0], "#redistributor-regions"),
        ("timer", "interrupts", &[0, 0, 0, 1], "interrupts"),
        ("timer", "interrupts", &[0xff; 48], "interrupts"),
    ];
    for &(node, prop, value, want) in cases {
        match discover(&with_bad(node, prop, value), 0) {
            Err(Error::BadProperty { property, .. }) => assert_eq!(property, want, "{node}/{prop}"),
            other => panic!("{node}/{prop} = {value:?}: {other:?}"),
        }
    }
}

#[test]
fn damaged_headers_are_reported() {
    let good = fixture("virt-gicv3-smp4-512m");
    let mut bad_magic = good.clone();
    bad_magic[0] = 0;
    assert!(matches!(discover(&bad_magic, 0), Err(Error::Damaged(FdtDamage::BadMagic(_)))));
    assert!(matches!(discover(&good[..good.len() - 1], 0), Err(Error::Damaged(FdtDamage::BadTotalSize(_)))));
    assert!(matches!(discover(&good[..3], 0), Err(Error::Damaged(_))));
    assert!(matches!(discover(&[], 0), Err(Error::Damaged(_))));
    let mut version = good.clone();
    version[20..24].copy_from_slice(&1u32.to_be_bytes());
    assert!(matches!(discover(&version, 0), Err(Error::Damaged(FdtDamage::UnsupportedVersion(1)))));
    for field in [8usize, 12, 16, 32, 36] {
        let mut b = good.clone();
        b[field..field + 4].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(matches!(discover(&b, 0), Err(Error::Damaged(FdtDamage::BadBlock(_)))), "header field {field}");
    }
}

#[test]
fn damaged_structures_are_reported() {
    let mut w = Writer::new();
    w.begin("").begin("a").end().prop_u32("late", 1).end();
    assert!(matches!(
        discover(&w.finish(), 0),
        Err(Error::Damaged(FdtDamage::BadStructure("property after a child node", _)))
    ));
    let mut w = Writer::new();
    w.begin("");
    for i in 0..20 {
        w.begin(&format!("n{i}"));
    }
    for _ in 0..21 {
        w.end();
    }
    assert!(matches!(
        discover(&w.finish(), 0),
        Err(Error::Damaged(FdtDamage::BadStructure("nodes nested too deep", _)))
    ));
    let mut w = Writer::new();
    w.begin("").prop("#address-cells", &[0, 1]).end();
    assert!(matches!(discover(&w.finish(), 0), Err(Error::Damaged(FdtDamage::BadStructure(_, _)))));
    let mut w = Writer::new();
    w.begin("").end().begin("").end();
    assert!(matches!(discover(&w.finish(), 0), Err(Error::Damaged(FdtDamage::BadStructure("second root node", _)))));
}

// Xen's dom0less binding: domain nodes under /chosen.

use super::domains::fixture::{self as dt, cells, domain, kernel, module, string, tree, vcpu};

#[test]
fn domain_nodes_are_read_with_their_modules_and_vcpu_pins() {
    let blob = dt::two_vms();
    let p = discover(&blob, 0).unwrap();
    assert_eq!(
        &*p.domains,
        &[Domain { name: "a", memory_kib: 512 << 10, cpus: 2 }, Domain { name: "b", memory_kib: 512 << 10, cpus: 2 }]
    );
    let modules: Vec<_> = p.modules.iter().map(|m| (m.kind, m.region.base, m.node, m.domain)).collect();
    assert_eq!(
        modules,
        [
            (ModuleKind::Kernel, 0x4800_0000, "module@48000000", Some(0)),
            (ModuleKind::Ramdisk, 0x4900_0000, "module@49000000", Some(0)),
            (ModuleKind::Disk, 0x4a00_0000, "module@4a000000", Some(0)),
            (ModuleKind::Kernel, 0x5000_0000, "module@50000000", Some(1)),
        ]
    );
    assert!(p.modules.iter().all(|m| m.region.size == dt::MODULE_SIZE));
    assert_eq!(p.modules[0].bootargs, Some("console=ttyAMA0 a"));
    assert_eq!(
        &*p.vcpu_nodes,
        &[
            VcpuNode { domain: 1, node: "vcpu@1", id: 1, hard_affinity: Some("2") },
            VcpuNode { domain: 1, node: "vcpu@0", id: 0, hard_affinity: Some("3") },
        ]
    );
    assert!(p.ignored.is_empty());
    // Domain modules are memory the hypervisor keeps off, like top-level ones.
    assert!(p.is_occupied(&Range { start: 0x5000_0000, end: 0x5000_1000 }));
}

#[test]
fn domain_reg_uses_the_domains_own_cells_and_memory_one_cell() {
    let a = domain("a", 0, 1)
        .set("#address-cells", cells(&[1]))
        .set("#size-cells", cells(&[1]))
        .set("memory", cells(&[0x4_0000]))
        .child(module("multiboot,kernel", 0).set("reg", cells(&[0x4800_0000, 0x20_0000])));
    let blob = tree(1, &[a]);
    let p = discover(&blob, 0).unwrap();
    assert_eq!(p.domains[0].memory_kib, 256 << 10);
    assert_eq!(p.modules[0].region, Region { base: 0x4800_0000, size: 0x20_0000 });
    // Two cells are one 64-bit number, as Xen reads them.
    let blob = tree(1, &[domain("a", 0x1_0000_0000, 1)]);
    assert_eq!(discover(&blob, 0).unwrap().domains[0].memory_kib, 0x1_0000_0000);
}

#[test]
fn unused_parts_of_domain_nodes_are_recorded() {
    let a = domain("a", 512 << 10, 1)
        .set("vpl011", vec![])
        .set("xen,enhanced", string("enabled"))
        .set("colour", string("blue"))
        .child(kernel(0x4800_0000, "a").set("xen,uefi-binary", string("Image")))
        .child(module("multiboot,device-tree", 0x4900_0000))
        .child(dt::Node::new("shm").set("compatible", string("xen,domain-shared-memory-v1")))
        .child(dt::Node::new("thing").set("compatible", string("acme,thing")));
    let off = domain("off", 512 << 10, 1).set("status", string("disabled")).child(kernel(0x5000_0000, "off"));
    let blob = tree(1, &[a, off]);
    let p = discover(&blob, 0).unwrap();
    let ignored = |domain, child, name, why| Ignored { domain, child, name, why };
    assert_eq!(
        &*p.ignored,
        &[
            ignored("a", None, "vpl011", Unused::XenProperty),
            ignored("a", None, "xen,enhanced", Unused::XenProperty),
            ignored("a", None, "colour", Unused::UnknownProperty),
            ignored("a", Some("module@48000000"), "xen,uefi-binary", Unused::XenProperty),
            ignored("a", Some("module@49000000"), "multiboot,device-tree", Unused::XenNode),
            ignored("a", Some("shm"), "xen,domain-shared-memory-v1", Unused::XenNode),
            ignored("a", Some("thing"), "acme,thing", Unused::UnknownNode),
            ignored("off", None, "status", Unused::Disabled),
        ]
    );
    assert_eq!(p.domains.len(), 1, "a disabled domain is no VM");
    // The device-tree module is kept off the hypervisor's memory; the disabled domain's is not.
    let kinds: Vec<_> = p.modules.iter().map(|m| (m.kind, m.domain)).collect();
    assert_eq!(kinds, [(ModuleKind::Kernel, Some(0)), (ModuleKind::Other, Some(0))]);
}

#[test]
fn misshapen_domain_properties_are_refused_by_node_and_property() {
    let refused = |a: dt::Node| discover(&tree(2, &[a]), 0).unwrap_err().to_string();
    let a = || domain("a", 512 << 10, 2);
    let k = || kernel(0x4800_0000, "a");
    assert_eq!(
        refused(a().unset("#address-cells")),
        "device tree node /chosen/a: property '#address-cells' is missing; a xen,domain node needs it, one cell of 1 or 2, for its modules' reg"
    );
    assert_eq!(
        refused(a().set("#size-cells", cells(&[3]))),
        "device tree node /chosen/a: property '#size-cells' is 3; a xen,domain node needs it, one cell of 1 or 2, for its modules' reg"
    );
    assert_eq!(
        refused(a().set("memory", cells(&[0, 0, 0x8_0000]))),
        "device tree node /chosen/a: property 'memory' is 12 bytes; it must be the KiB of RAM, in one cell or two (a 64-bit number)"
    );
    assert_eq!(
        refused(a().unset("memory")),
        "device tree node /chosen/a: property 'memory' is missing; it must be the KiB of RAM, in one cell or two (a 64-bit number)"
    );
    assert_eq!(
        refused(a().unset("cpus")),
        "device tree node /chosen/a: property 'cpus' is missing; it must be one cell: the vCPU count"
    );
    assert_eq!(
        refused(a().set("cpus", cells(&[0, 2]))),
        "device tree node /chosen/a: property 'cpus' is 8 bytes; it must be one cell: the vCPU count"
    );
    assert_eq!(
        refused(a().child(k().set("reg", cells(&[0x4800_0000, 0, 0x100])))),
        "device tree node /chosen/a/module@48000000: property 'reg' is 12 bytes; it must be one address and size in the domain's #address-cells = <2> and #size-cells = <2> (16 bytes)"
    );
    assert_eq!(
        refused(a().set("#size-cells", cells(&[1])).child(k())),
        "device tree node /chosen/a/module@48000000: property 'reg' is 16 bytes; it must be one address and size in the domain's #address-cells = <2> and #size-cells = <1> (12 bytes)"
    );
    assert_eq!(
        refused(a().child(k().unset("reg"))),
        "device tree node /chosen/a/module@48000000: property 'reg' is missing; it must be one address and size in the domain's #address-cells = <2> and #size-cells = <2> (16 bytes)"
    );
    let past_end = [u64::MAX - 1, 2].iter().flat_map(|v| v.to_be_bytes()).collect();
    assert_eq!(
        refused(a().child(k().set("reg", past_end))),
        "device tree node /chosen/a/module@48000000: property 'reg' runs past the end of the address space; it must be one address and size in the domain's #address-cells = <2> and #size-cells = <2> (16 bytes)"
    );
    assert_eq!(
        refused(a().child(k()).child(vcpu(0, None).unset("id"))),
        "device tree node /chosen/a/vcpu@0: property 'id' is missing; it must be one cell: the vCPU index"
    );
    assert_eq!(
        refused(a().child(k()).child(vcpu(0, None).set("hard-affinity", vec![0xff, 0]))),
        "device tree node /chosen/a/vcpu@0: property 'hard-affinity' is 2 bytes; it must be a string"
    );
}

#[test]
fn more_domain_nodes_than_the_build_holds_are_refused() {
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    let nodes: Vec<_> = names.iter().map(|n| domain(n, 2048, 1)).collect();
    assert!(discover(&tree(1, &nodes[..8]), 0).is_ok());
    assert_eq!(
        discover(&tree(1, &nodes), 0).unwrap_err(),
        Error::TooMany { what: "xen,domain nodes", limit: MAX_DOMAINS }
    );
    // Only children of /chosen are domains.
    let blob = tree(1, &[dt::Node::new("x").child(domain("nested", 2048, 1).unset("cpus"))]);
    assert!(discover(&blob, 0).unwrap().domains.is_empty());
}

/// Every truncation and every single-byte corruption of real trees: an error or a platform,
/// never a panic.
#[test]
fn no_corruption_panics() {
    for blob in [
        fixture("virt-gicv3-smp4-4g-modules"),
        fixture("virt-gicv2-smp4-512m"),
        fixture("rk3399-uart2"),
        fixture("zynqmp-uart0"),
        end_root(board_tree()),
        dt::two_vms(),
    ] {
        for len in 0..blob.len() {
            let _ = discover(&blob[..len], 0);
        }
        for i in 0..blob.len() {
            for v in [0x00, 0x01, 0x03, 0x09, 0x7f, 0xff] {
                let mut b = blob.clone();
                b[i] = v;
                let _ = discover(&b, 0);
            }
        }
    }
}
