//! The device tree a guest boots with, generated from the VM's configuration: its memory,
//! its vCPUs (PSCI over HVC), the GIC (a GICv3 with one redistributor frame per vCPU, or a
//! GICv2 with its distributor and CPU interface, as QEMU's `virt` describes them), the
//! architected timer, the PL011 console, the PL031 real-time clock, the virtio-mmio devices
//! and `/chosen` (bootargs, initrd, stdout). Never the host's: nothing of the hypervisor or other VMs appears.
#![forbid(unsafe_code)]

use crate::platform::writer::Writer;
use alloc::format;
use alloc::vec::Vec;

/// Everything the guest device tree describes.
#[derive(Debug, Clone)]
pub struct GuestDt<'a> {
    pub ram_base: u64,
    pub ram_size: u64,
    pub vcpu_count: usize,
    pub gic: GuestGic,
    pub uart: u64,
    /// The UART's SPI number (INTID - 32).
    pub uart_spi: u32,
    /// The PL031 real-time clock, if the VM has one: (base, SPI number).
    pub rtc: Option<(u64, u32)>,
    /// virtio-mmio transports: (base, size, SPI number).
    pub virtio: &'a [(u64, u64, u32)],
    /// `/chosen/bootargs`, exactly the kernel module's; `None`: no property.
    pub bootargs: Option<&'a str>,
    /// Initramfs location in guest-physical memory: (start, end).
    pub initrd: Option<(u64, u64)>,
}

/// The guest's GIC and its windows (base, size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestGic {
    V3 { gicd: (u64, u64), gicr: (u64, u64) },
    V2 { gicd: (u64, u64), gicc: (u64, u64) },
}

const GIC_PHANDLE: u32 = 1;
const CLOCK_PHANDLE: u32 = 2;
/// Interrupt specifier cells: type (0 SPI, 1 PPI), number, flags (4 level-high, 1 edge).
const SPI: u32 = 0;
const PPI: u32 = 1;
const LEVEL_HIGH: u32 = 4;
const EDGE_RISING: u32 = 1;

/// Builds the blob.
pub fn build(c: &GuestDt<'_>) -> Vec<u8> {
    let mut w = Writer::new();
    w.begin("")
        .prop_u32("#address-cells", 2)
        .prop_u32("#size-cells", 2)
        .prop_strs("compatible", &["linux,dummy-virt"])
        .prop_str("model", "armvisor guest")
        .prop_u32("interrupt-parent", GIC_PHANDLE);

    w.begin("psci").prop_strs("compatible", &["arm,psci-1.0", "arm,psci-0.2"]).prop_str("method", "hvc").end();

    w.begin(&format!("memory@{:x}", c.ram_base))
        .prop_str("device_type", "memory")
        .prop_u64s("reg", &[c.ram_base, c.ram_size])
        .end();

    w.begin("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
    for i in 0..c.vcpu_count {
        w.begin(&format!("cpu@{i}"))
            .prop_str("device_type", "cpu")
            .prop_strs("compatible", &["arm,armv8"])
            .prop_u32("reg", i as u32)
            .prop_str("enable-method", "psci")
            .end();
    }
    w.end();

    // A GICv2's PPI specifiers name the CPU interfaces the PPI is wired to in flags
    // [15:8] (the GICv2 binding; QEMU's `virt` sets every vCPU's bit).
    let ppi_flags = match c.gic {
        GuestGic::V3 { gicd, gicr } => {
            w.begin(&format!("intc@{:x}", gicd.0))
                .prop_strs("compatible", &["arm,gic-v3"])
                .prop_u32("#interrupt-cells", 3)
                .prop_u32("#address-cells", 0)
                .prop_empty("interrupt-controller")
                .prop_u32("#redistributor-regions", 1)
                .prop_u64s("reg", &[gicd.0, gicd.1, gicr.0, gicr.1])
                .prop_u32("phandle", GIC_PHANDLE)
                .end();
            LEVEL_HIGH
        }
        GuestGic::V2 { gicd, gicc } => {
            w.begin(&format!("intc@{:x}", gicd.0))
                .prop_strs("compatible", &["arm,cortex-a15-gic"])
                .prop_u32("#interrupt-cells", 3)
                .prop_u32("#address-cells", 0)
                .prop_empty("interrupt-controller")
                .prop_u64s("reg", &[gicd.0, gicd.1, gicc.0, gicc.1])
                .prop_u32("phandle", GIC_PHANDLE)
                .end();
            LEVEL_HIGH | (((1u32 << c.vcpu_count.min(8)) - 1) << 8)
        }
    };

    w.begin("timer")
        .prop_strs("compatible", &["arm,armv8-timer", "arm,armv7-timer"])
        .prop_cells("interrupts", &[PPI, 13, ppi_flags, PPI, 14, ppi_flags, PPI, 11, ppi_flags, PPI, 10, ppi_flags])
        .prop_empty("always-on")
        .end();

    w.begin("apb-pclk")
        .prop_strs("compatible", &["fixed-clock"])
        .prop_u32("#clock-cells", 0)
        .prop_u32("clock-frequency", 24_000_000)
        .prop_strs("clock-output-names", &["clk24mhz"])
        .prop_u32("phandle", CLOCK_PHANDLE)
        .end();

    let uart_path = format!("/pl011@{:x}", c.uart);
    w.begin(&uart_path[1..])
        .prop_strs("compatible", &["arm,pl011", "arm,primecell"])
        .prop_u64s("reg", &[c.uart, 0x1000])
        .prop_cells("interrupts", &[SPI, c.uart_spi, LEVEL_HIGH])
        .prop_cells("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])
        .prop_strs("clock-names", &["uartclk", "apb_pclk"])
        .end();

    // As QEMU's `virt` describes its RTC (Linux's rtc-pl031 is an AMBA driver: the bus
    // reads the PrimeCell IDs with `apb_pclk` on).
    if let Some((base, spi)) = c.rtc {
        w.begin(&format!("pl031@{base:x}"))
            .prop_strs("compatible", &["arm,pl031", "arm,primecell"])
            .prop_u64s("reg", &[base, crate::hw::pl031::SIZE])
            .prop_cells("interrupts", &[SPI, spi, LEVEL_HIGH])
            .prop_cells("clocks", &[CLOCK_PHANDLE])
            .prop_strs("clock-names", &["apb_pclk"])
            .end();
    }

    for &(base, size, spi) in c.virtio {
        w.begin(&format!("virtio_mmio@{base:x}"))
            .prop_strs("compatible", &["virtio,mmio"])
            .prop_u64s("reg", &[base, size])
            .prop_cells("interrupts", &[SPI, spi, EDGE_RISING])
            .prop_empty("dma-coherent")
            .end();
    }

    w.begin("chosen");
    if let Some(bootargs) = c.bootargs {
        w.prop_str("bootargs", bootargs);
    }
    w.prop_str("stdout-path", &uart_path);
    if let Some((start, end)) = c.initrd {
        w.prop_u64s("linux,initrd-start", &[start]).prop_u64s("linux,initrd-end", &[end]);
    }
    w.end();
    w.end();
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{self, EnableMethod, GicVersion, PsciConduit, Region};

    fn sample() -> Vec<u8> {
        build(&GuestDt {
            ram_base: 0x4000_0000,
            ram_size: 0x2000_0000,
            vcpu_count: 4,
            gic: GuestGic::V3 { gicd: (0x0800_0000, 0x1_0000), gicr: (0x080a_0000, 4 * 0x2_0000) },
            uart: 0x0900_0000,
            uart_spi: 1,
            rtc: Some((0x0901_0000, 2)),
            virtio: &[(0x0a00_0000, 0x200, 16)],
            bootargs: Some("console=ttyAMA0 earlycon"),
            initrd: Some((0x4800_0000, 0x4810_0000)),
        })
    }

    #[test]
    fn parses_back_as_the_machine_we_describe() {
        let blob = sample();
        let p = platform::discover(&blob, 0).unwrap();
        assert_eq!(&*p.memory, &[Region { base: 0x4000_0000, size: 0x2000_0000 }]);
        assert_eq!(p.cpus.len(), 4);
        assert!(p.cpus.iter().enumerate().all(|(i, c)| c.mpidr == i as u64 && c.enable == EnableMethod::Psci));
        assert_eq!(p.psci.unwrap().conduit, PsciConduit::Hvc);
        assert_eq!(p.gic.version, GicVersion::V3);
        assert_eq!(p.gic.distributor, Region { base: 0x0800_0000, size: 0x1_0000 });
        assert_eq!(&*p.gic.redistributors, &[Region { base: 0x080a_0000, size: 0x8_0000 }]);
        let uart = p.uart.unwrap();
        assert!(uart.from_stdout_path);
        assert_eq!(uart.region.base, 0x0900_0000);
        assert_eq!(uart.intid, Some(33));
        assert_eq!(p.timer.unwrap().virt, 27);
        assert_eq!(p.bootargs, Some("console=ttyAMA0 earlycon"));
        let fdt = platform::reader::Fdt::new(&blob).unwrap();
        let chosen = fdt.find("/chosen").unwrap();
        assert_eq!(chosen.property("linux,initrd-start").unwrap().value, 0x4800_0000u64.to_be_bytes());
        assert_eq!(chosen.property("linux,initrd-end").unwrap().value, 0x4810_0000u64.to_be_bytes());
        let virtio = fdt.find("/virtio_mmio@a000000").unwrap();
        assert_eq!(virtio.property("interrupts").unwrap().value, [0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1]);
        // The RTC as QEMU's virt has it: SPI 2, level-high, clocked by apb-pclk.
        assert_eq!(p.rtc, Some(Region { base: 0x0901_0000, size: 0x1000 }));
        let rtc = fdt.find("/pl031@9010000").unwrap();
        assert_eq!(rtc.property("compatible").unwrap().value, b"arm,pl031\0arm,primecell\0");
        assert_eq!(rtc.property("interrupts").unwrap().value, [0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 4]);
        assert_eq!(rtc.property("clocks").unwrap().value, CLOCK_PHANDLE.to_be_bytes());
        assert_eq!(fdt.find("/apb-pclk").unwrap().property("phandle").unwrap().value, CLOCK_PHANDLE.to_be_bytes());
        assert_eq!(rtc.property("clock-names").unwrap().value, b"apb_pclk\0");
    }

    #[test]
    fn a_gicv2_guest_sees_a_gicv2() {
        let blob = build(&GuestDt {
            ram_base: 0x4000_0000,
            ram_size: 0x2000_0000,
            vcpu_count: 2,
            gic: GuestGic::V2 { gicd: (0x0800_0000, 0x1_0000), gicc: (0x0801_0000, 0x2000) },
            uart: 0x0900_0000,
            uart_spi: 1,
            rtc: None,
            virtio: &[],
            bootargs: None,
            initrd: None,
        });
        let p = platform::discover(&blob, 0).unwrap();
        assert_eq!(p.gic.version, GicVersion::V2);
        assert_eq!(p.gic.distributor, Region { base: 0x0800_0000, size: 0x1_0000 });
        assert_eq!(p.gic.cpu_interface, Some(Region { base: 0x0801_0000, size: 0x2000 }));
        assert_eq!(p.timer.unwrap().virt, 27);
        let fdt = platform::reader::Fdt::new(&blob).unwrap();
        // PPI 11, level-high, wired to CPU interfaces 0 and 1.
        let timer = fdt.find("/timer").unwrap().property("interrupts").unwrap().value;
        assert_eq!(&timer[24..36], [0, 0, 0, 1, 0, 0, 0, 11, 0, 0, 0x03, 0x04]);
    }

    #[test]
    fn bootargs_are_exactly_the_modules() {
        let dt = |bootargs| {
            build(&GuestDt {
                ram_base: 0x4000_0000,
                ram_size: 0x200_0000,
                vcpu_count: 1,
                gic: GuestGic::V3 { gicd: (0x0800_0000, 0x1_0000), gicr: (0x080a_0000, 0x2_0000) },
                uart: 0x0900_0000,
                uart_spi: 1,
                rtc: None,
                virtio: &[],
                bootargs,
                initrd: None,
            })
        };
        // None means none: no property, nothing invented; the console is stdout-path's.
        let blob = dt(None);
        let fdt = platform::reader::Fdt::new(&blob).unwrap();
        assert!(fdt.find("/pl031@9010000").is_none(), "no RTC configured, none described");
        let chosen = fdt.find("/chosen").unwrap();
        assert!(chosen.property("bootargs").is_none());
        assert_eq!(chosen.property("stdout-path").unwrap().value, b"/pl011@9000000\0");
        // An empty string stays empty, anything else stays as written.
        for args in ["", "root=/dev/vda rw quiet"] {
            let blob = dt(Some(args));
            let p = platform::discover(&blob, 0).unwrap();
            assert_eq!(p.bootargs, Some(args));
        }
    }

    #[test]
    fn dtc_accepts_it() {
        let path = std::env::temp_dir().join(format!("armvisor-guest-{}.dtb", std::process::id()));
        std::fs::write(&path, sample()).unwrap();
        let out = std::process::Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts", "-W", "no-unit_address_vs_reg"])
            .arg(&path)
            .output()
            .expect("dtc (device-tree-compiler) is installed by tests/setup.sh");
        let _ = std::fs::remove_file(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "dtc failed: {stderr}");
        assert!(stderr.trim().is_empty(), "dtc warnings: {stderr}");
        let dts = String::from_utf8_lossy(&out.stdout);
        assert!(dts.contains("enable-method = \"psci\""));
        assert!(dts.contains("compatible = \"virtio,mmio\""));
        assert!(dts.contains("pl031@9010000 {"));
        assert!(dts.contains("clock-names = \"apb_pclk\";"));
    }
}
