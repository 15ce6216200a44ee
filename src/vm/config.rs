//! VM configurations as plain data, and the one step that checks them: the pCPUs, RAM,
//! modules, devices and interrupt numbers of every VM, held against the board and against
//! each other before anything is built. Also the pools of what a VM owns while it lives
//! (VMIDs, modules), so that ownership is data and not one-shot global flags.
//!
//! Nothing here touches the machine: the boot code fills a [`Board`] from the [`Platform`]
//! and what it knows (pCPUs up, RAM free), builds a [`VmSpec`] per VM (from the DTB or a
//! default, e.g. [`virt_devices`]), and calls [`validate`] once; a refusal is one
//! [`ConfigError`] naming the VM and the resource.
#![forbid(unsafe_code)]

use crate::devices::{pl011, pl031, testdev, virtio_blk, virtio_window};
use crate::ids::{CpuId, VcpuId, VmId};
use crate::mm::GuestPhysAddr;
use crate::mm::range::Range;
use crate::platform::{MAX_CPUS, Module, ModuleKind, Platform};
use crate::vgic::{GICD_SIZE, GICR_FRAME_SIZE, SPI_COUNT, Version, v2};
use crate::vm::memory_map;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Guest RAM is taken from the frame pools and mapped in 2 MiB granules: its base and size
/// are multiples of this.
pub const RAM_ALIGN: u64 = 2 << 20;

/// The INTIDs a device of a VM may use: the SPIs the virtual distributor implements.
pub const SPI_INTIDS: core::ops::Range<u32> = 32..32 + SPI_COUNT as u32;

/// An index into [`Platform::modules`] (a `/chosen/module@ADDR` node).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleRef(pub usize);

impl fmt::Display for ModuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "module {}", self.0)
    }
}

/// Everything one VM is built from; [`validate`] checks it before anything is built.
///
/// What the guest runs is given in exactly one of two ways:
/// - `kernel`: a `multiboot,kernel` module, booted with the Linux arm64 boot protocol and a
///   generated device tree, with an optional `ramdisk` module and `bootargs`;
/// - `image`: bytes built into the hypervisor (the in-QEMU test guests), copied to the start
///   of RAM and entered at their own entry point; no `ramdisk`.
///
/// A device-tree domain node without a kernel module gives `kernel: None, image: None`,
/// which [`validate`] refuses naming the VM ([`Problem::NoKernel`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// Shown in logs and console prefixes; non-empty and unique among the VMs.
    pub name: String,
    /// The placement: vCPU i runs on pCPU `cpus[i]`. One entry per vCPU, no pCPU twice,
    /// and no pCPU of another VM.
    pub cpus: Vec<CpuId>,
    /// The VM's RAM in its guest-physical address space.
    pub ram: RamSpec,
    /// The guest kernel (`multiboot,kernel`), if the guest is not a built-in `image`.
    pub kernel: Option<ModuleRef>,
    /// The initramfs (`multiboot,ramdisk`); only with a `kernel`.
    pub ramdisk: Option<ModuleRef>,
    /// A guest built into the hypervisor, instead of a `kernel`.
    pub image: Option<Image>,
    /// The emulated devices and where the guest sees them.
    pub devices: Vec<DeviceSpec>,
    /// The VM takes part in console input (Ctrl-A three times moves input to the next such
    /// VM, in list order); needs a [`DeviceKind::Pl011`].
    pub console: bool,
    /// The kernel command line the guest's `/chosen` gets (the kernel module's `bootargs`).
    pub bootargs: Option<String>,
}

impl VmSpec {
    /// How many vCPUs the VM has (one per entry of [`VmSpec::cpus`]).
    pub fn vcpu_count(&self) -> usize {
        self.cpus.len()
    }

    /// The pCPU `vcpu` runs on.
    pub fn cpu_of(&self, vcpu: VcpuId) -> Option<CpuId> {
        self.cpus.get(vcpu.0).copied()
    }
}

/// A VM's RAM: one 2 MiB-aligned range of guest-physical addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamSpec {
    /// Where the guest sees its RAM start.
    pub ipa: GuestPhysAddr,
    /// Bytes of RAM (a non-zero multiple of [`RAM_ALIGN`]).
    pub size: u64,
}

impl RamSpec {
    /// The guest-physical range; `None` when it runs past the end of the address space.
    pub fn range(&self) -> Option<Range> {
        Range::from_base_size(self.ipa.0, self.size)
    }
}

/// A guest built into the hypervisor image (the in-QEMU test guests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    /// Copied to the start of guest RAM.
    pub bytes: &'static [u8],
    /// Where vCPU 0 starts: inside guest RAM.
    pub entry: GuestPhysAddr,
    /// x0 of vCPU 0 at entry.
    pub arg: u64,
}

/// One emulated device of a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Which model serves it.
    pub kind: DeviceKind,
    /// Its guest-physical window: exactly the model's register block
    /// ([`DeviceKind::window_size`]), aligned to one block ([`DeviceKind::alignment`]).
    pub ipa: Range,
    /// The INTID it raises: an SPI in [`SPI_INTIDS`] for a device with an interrupt line,
    /// `None` for the GIC's own frames.
    pub intid: Option<u32>,
}

/// The emulated device models a VM can have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceKind {
    /// The virtual GICv3 distributor (one per VM, required on a GICv3 board).
    #[default]
    GicDistributor,
    /// The virtual GICv3 redistributors, one frame per vCPU in vCPU order (one window per
    /// VM, required on a GICv3 board).
    GicRedistributors,
    /// The virtual GICv2 distributor (one per VM, required on a GICv2 board).
    GicV2Distributor,
    /// The GICv2 CPU interface the guest sees: the board's virtual CPU interface (GICV)
    /// mapped into the guest, 8 KiB (one per VM, required on a GICv2 board).
    GicV2CpuInterface,
    /// A PL011 UART (at most one per VM: the VM's console).
    Pl011,
    /// A PL031 real-time clock (at most one per VM).
    Pl031,
    /// A virtio-mmio block device over a disk module (`armvisor,disk`).
    VirtioBlk {
        /// The module whose bytes are the disk; owned by this device alone.
        disk: ModuleRef,
    },
    /// The self-test device (test flavour; at most one per VM).
    Test,
    /// QEMU virt's virtio-mmio window, its transports empty (at most one per VM).
    VirtioWindow,
}

impl Default for DeviceSpec {
    /// Filler for fixed-capacity tables; never a device of a VM.
    fn default() -> Self {
        Self { kind: DeviceKind::default(), ipa: Range::default(), intid: None }
    }
}

impl DeviceKind {
    /// Bytes of the model's register block, the size its window must have.
    pub fn window_size(self, vcpu_count: usize) -> u64 {
        match self {
            Self::GicDistributor => GICD_SIZE,
            Self::GicRedistributors => GICR_FRAME_SIZE.saturating_mul(vcpu_count as u64),
            Self::GicV2Distributor => v2::GICD_WINDOW,
            Self::GicV2CpuInterface => v2::GICC_SIZE,
            Self::Pl011 => pl011::SIZE,
            Self::Pl031 => pl031::SIZE,
            Self::VirtioBlk { .. } => virtio_blk::SIZE,
            Self::Test => testdev::SIZE,
            Self::VirtioWindow => virtio_window::SIZE,
        }
    }

    /// The window's base is a multiple of this: one register block (one frame for the
    /// redistributors, so every frame is 64 KiB aligned as the GIC requires; a page for the
    /// PL011, whose page stage 2 maps read-only).
    pub fn alignment(self) -> u64 {
        self.window_size(1)
    }

    /// Whether the model drives an interrupt line (and so needs an INTID).
    pub fn has_interrupt(self) -> bool {
        self.gic_version().is_none() && self != Self::VirtioWindow
    }

    /// The GIC version a vGIC part belongs to; `None` for the other devices.
    pub fn gic_version(self) -> Option<Version> {
        match self {
            Self::GicDistributor | Self::GicRedistributors => Some(Version::V3),
            Self::GicV2Distributor | Self::GicV2CpuInterface => Some(Version::V2),
            _ => None,
        }
    }

    /// Whether a VM may have at most one of it.
    pub fn one_per_vm(self) -> bool {
        !matches!(self, Self::VirtioBlk { .. })
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::GicDistributor => "GIC distributor",
            Self::GicRedistributors => "GIC redistributors",
            Self::GicV2Distributor => "GICv2 distributor",
            Self::GicV2CpuInterface => "GICv2 CPU interface",
            Self::Pl011 => "pl011",
            Self::Pl031 => "pl031",
            Self::VirtioBlk { .. } => "virtio-blk",
            Self::Test => "test device",
            Self::VirtioWindow => "virtio-mmio window",
        })
    }
}

/// Kinds a VM cannot do without: the vGIC of the board's GIC version is always there.
pub fn required(gic: Version) -> [DeviceKind; 2] {
    match gic {
        Version::V3 => [DeviceKind::GicDistributor, DeviceKind::GicRedistributors],
        Version::V2 => [DeviceKind::GicV2Distributor, DeviceKind::GicV2CpuInterface],
    }
}

/// The devices of QEMU's `virt` machine as every VM sees them today ([`memory_map`]): the
/// vGIC of version `gic` (the GICv3 distributor and `vcpu_count` redistributor frames, or
/// the GICv2 distributor and CPU interface), the PL011, the PL031 real-time clock, `virt`'s
/// virtio-mmio window, a virtio-blk device over `disk` if given, and the self-test device if
/// `test`.
pub fn virt_devices(gic: Version, vcpu_count: usize, disk: Option<ModuleRef>, test: bool) -> Vec<DeviceSpec> {
    let device = |kind: DeviceKind, base: u64, intid| DeviceSpec {
        kind,
        ipa: Range { start: base, end: base + kind.window_size(vcpu_count) },
        intid,
    };
    let mut devices = match gic {
        Version::V3 => alloc::vec![
            device(DeviceKind::GicDistributor, memory_map::GICD, None),
            device(DeviceKind::GicRedistributors, memory_map::GICR, None),
        ],
        Version::V2 => alloc::vec![
            device(DeviceKind::GicV2Distributor, memory_map::GICD, None),
            device(DeviceKind::GicV2CpuInterface, memory_map::GICC, None),
        ],
    };
    devices.push(device(DeviceKind::Pl011, memory_map::UART, Some(memory_map::UART_INTID)));
    devices.push(device(DeviceKind::Pl031, memory_map::RTC, Some(memory_map::RTC_INTID)));
    devices.push(device(DeviceKind::VirtioWindow, memory_map::VIRTIO_WINDOW, None));
    if let Some(disk) = disk {
        devices.push(device(
            DeviceKind::VirtioBlk { disk },
            memory_map::VIRTIO_BLK,
            Some(memory_map::VIRTIO_BLK_INTID),
        ));
    }
    if test {
        devices.push(device(DeviceKind::Test, memory_map::TEST_DEVICE, Some(testdev::SPI)));
    }
    devices
}

/// What [`validate`] needs to know about the machine.
#[derive(Debug, Clone, Copy)]
pub struct Board<'a> {
    /// pCPUs the platform lists: `CpuId(0)` to `CpuId(cpu_count - 1)`.
    pub cpu_count: usize,
    /// Bit n set: pCPU n came up and can run a vCPU.
    pub online: u64,
    /// Bytes of RAM free for guests (all VMs together; a VM's RAM may come in pieces).
    pub free_ram: u64,
    /// The multiboot modules, indexed by [`ModuleRef`].
    pub modules: &'a [Module<'a>],
    /// The board's GIC, and so the vGIC every VM has.
    pub gic: Version,
}

// `Board::online` has one bit per pCPU.
const _: () = assert!(MAX_CPUS <= 64);

impl<'a> Board<'a> {
    /// The board `platform` describes, with the pCPUs that came up (`online`, bit n for
    /// pCPU n) and the guest RAM left free, which only the boot code knows.
    pub fn new(platform: &'a Platform<'a>, online: u64, free_ram: u64) -> Self {
        let gic = match platform.gic.version {
            crate::platform::GicVersion::V2 => Version::V2,
            crate::platform::GicVersion::V3 => Version::V3,
        };
        Self { cpu_count: platform.cpus.len(), online, free_ram, modules: &platform.modules, gic }
    }

    /// Whether `cpu` exists and came up.
    pub fn is_online(&self, cpu: CpuId) -> bool {
        cpu.0 < self.cpu_count && cpu.0 < 64 && self.online & (1 << cpu.0) != 0
    }
}

/// Why a configuration was refused: the VM and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The VM's name as given (empty for [`Problem::EmptyName`]).
    pub vm: String,
    /// Where the device tree says what is refused, for a VM from a `xen,domain` node
    /// (boxed: errors travel by value through every check).
    pub at: Option<alloc::boxed::Box<DtSource>>,
    /// What is wrong.
    pub problem: Problem,
}

impl ConfigError {
    /// `problem` of VM `vm`, with no device-tree source.
    pub fn new(vm: &str, problem: Problem) -> Self {
        Self { vm: vm.into(), at: None, problem }
    }
}

/// A node of the device tree, and the property in it, that a refusal is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtSource {
    /// The node's full path (`/chosen/a`, `/chosen/a/module@48000000`).
    pub node: String,
    /// The property, when one is to blame.
    pub property: Option<&'static str>,
}

/// One thing wrong with a VM's configuration, naming the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The VM at `index` in the list (from 0) has an empty name.
    EmptyName {
        /// Its position in the list.
        index: usize,
    },
    /// An earlier VM has the same name.
    DuplicateName,
    /// No pCPUs, so no vCPUs.
    NoVcpus,
    /// A pCPU the board does not list.
    NoSuchCpu {
        /// The pCPU named.
        cpu: CpuId,
        /// How many pCPUs the board has.
        count: usize,
    },
    /// A pCPU that did not come up.
    CpuOffline {
        /// The pCPU named.
        cpu: CpuId,
    },
    /// One pCPU named for two vCPUs of the VM.
    CpuTwice {
        /// The pCPU named twice.
        cpu: CpuId,
        /// The vCPU it was first given to.
        first: VcpuId,
        /// The vCPU it was given to again.
        second: VcpuId,
    },
    /// A pCPU an earlier VM already has.
    CpuTaken {
        /// The pCPU named.
        cpu: CpuId,
        /// The VM that has it.
        owner: String,
    },
    /// RAM size 0.
    RamEmpty,
    /// RAM base or size not a multiple of [`RAM_ALIGN`].
    RamMisaligned {
        /// The base given.
        ipa: GuestPhysAddr,
        /// The size given.
        size: u64,
    },
    /// RAM running past the end of the address space.
    RamOverflow {
        /// The base given.
        ipa: GuestPhysAddr,
        /// The size given.
        size: u64,
    },
    /// More RAM than the board has left after the VMs before this one.
    RamTooLarge {
        /// The size asked for.
        size: u64,
        /// What was left for this VM.
        free: u64,
    },
    /// Neither a kernel module nor a built-in image.
    NoKernel,
    /// Both a kernel module and a built-in image.
    KernelAndImage,
    /// A ramdisk without a kernel module.
    RamdiskWithoutKernel,
    /// A built-in image larger than the VM's RAM.
    ImageTooLarge {
        /// Bytes of the image.
        len: u64,
        /// Bytes of RAM.
        ram: u64,
    },
    /// A built-in image's entry point outside the VM's RAM.
    EntryOutsideRam {
        /// The entry point given.
        entry: GuestPhysAddr,
        /// The VM's RAM.
        ram: Range,
    },
    /// A module index past the platform's modules.
    NoSuchModule {
        /// The module named.
        module: ModuleRef,
        /// How many modules the platform has.
        count: usize,
    },
    /// A module of the wrong kind for its use.
    WrongModuleKind {
        /// The module named.
        module: ModuleRef,
        /// The kind the use needs (kernel, ramdisk or disk).
        wanted: ModuleKind,
        /// The kind the module is.
        found: ModuleKind,
    },
    /// A module already claimed (by an earlier VM, or by another use in this one).
    ModuleTaken {
        /// The module named.
        module: ModuleRef,
        /// The VM that has it.
        holder: String,
    },
    /// A vGIC part of the other GIC version than the board's.
    WrongGic {
        device: DeviceKind,
        /// The board's GIC version.
        board: Version,
    },
    /// A device every VM needs is not there.
    MissingDevice {
        /// The kind missing.
        device: DeviceKind,
    },
    /// A second device of a kind a VM has at most one of.
    DeviceTwice {
        /// The kind given twice.
        device: DeviceKind,
    },
    /// A device window with no bytes (or end before start).
    EmptyWindow {
        /// The device.
        device: DeviceKind,
        /// Its window.
        window: Range,
    },
    /// A device window not the size of the model's register block.
    WindowSize {
        /// The device.
        device: DeviceKind,
        /// Its window.
        window: Range,
        /// The size it must have.
        expected: u64,
    },
    /// A device window whose base is not aligned to one register block.
    WindowMisaligned {
        /// The device.
        device: DeviceKind,
        /// Its window.
        window: Range,
        /// The alignment it needs.
        align: u64,
    },
    /// A device window overlapping the VM's RAM.
    DeviceOverlapsRam {
        /// The device.
        device: DeviceKind,
        /// Its window.
        window: Range,
        /// The VM's RAM.
        ram: Range,
    },
    /// Two device windows overlapping.
    DevicesOverlap {
        /// The earlier device in the list.
        first: DeviceKind,
        /// Its window.
        first_window: Range,
        /// The later one.
        second: DeviceKind,
        /// Its window.
        second_window: Range,
    },
    /// A device with an interrupt line but no INTID.
    IntidMissing {
        /// The device.
        device: DeviceKind,
    },
    /// An INTID for a device without an interrupt line.
    IntidUnexpected {
        /// The device.
        device: DeviceKind,
        /// The INTID given.
        intid: u32,
    },
    /// An INTID outside [`SPI_INTIDS`].
    IntidOutOfRange {
        /// The device.
        device: DeviceKind,
        /// The INTID given.
        intid: u32,
    },
    /// One INTID for two devices of the VM.
    IntidTwice {
        /// The INTID.
        intid: u32,
        /// The earlier device.
        first: DeviceKind,
        /// The later one.
        second: DeviceKind,
    },
    /// Console input for a VM without a PL011.
    ConsoleWithoutUart,
    /// A domain node's `cpus` is 0.
    CpusZero,
    /// More vCPUs than pCPUs are free for them.
    NotEnoughCpus {
        /// vCPUs asked for.
        wanted: usize,
        /// pCPUs free: online, pinned by no `xen,vcpu` node, given to no earlier VM.
        free: usize,
    },
    /// A `hard-affinity` naming several pCPUs (a list or a range).
    AffinitySeveral {
        /// The string given.
        affinity: String,
    },
    /// A `hard-affinity` that is no pCPU number.
    AffinityNotNumber {
        /// The string given.
        affinity: String,
    },
    /// A `xen,vcpu` node's `id` at or past the VM's vCPU count.
    NoSuchVcpu {
        /// The vCPU named.
        vcpu: VcpuId,
        /// The VM's vCPU count.
        count: usize,
    },
    /// Two `xen,vcpu` nodes for one vCPU.
    VcpuTwice {
        /// The vCPU.
        vcpu: VcpuId,
        /// The path of the first node.
        first: String,
    },
    /// Some vCPUs of the VM are pinned, this one is not.
    VcpuNotPinned {
        /// The first vCPU without a pin.
        vcpu: VcpuId,
    },
    /// A domain node's `memory` is 0.
    MemoryEmpty,
    /// A domain node's `memory` is not a whole number of [`RAM_ALIGN`] granules.
    MemoryMisaligned {
        /// KiB given.
        kib: u64,
    },
    /// A domain node's `memory` is more than is left free.
    MemoryTooLarge {
        /// KiB given.
        kib: u64,
        /// Bytes left free for this VM.
        free: u64,
    },
    /// A second module of a kind a VM has one of (kernel, ramdisk, disk).
    ModuleTwice {
        /// The kind.
        kind: ModuleKind,
        /// The path of the first.
        first: String,
    },
    /// A module not inside a `/memory` bank.
    ModuleOutsideRam {
        /// Its range.
        region: Range,
    },
    /// A module's range overlapping another module's.
    ModulesOverlap {
        /// Its range.
        region: Range,
        /// The other module's path.
        other: String,
        /// The other module's VM (`None` for a top-level `/chosen` module).
        holder: Option<String>,
    },
}

/// The compatible string a module of `kind` has in `/chosen`.
pub fn compatible(kind: ModuleKind) -> &'static str {
    match kind {
        ModuleKind::Kernel => "multiboot,kernel",
        ModuleKind::Ramdisk => "multiboot,ramdisk",
        ModuleKind::Disk => "armvisor,disk",
        ModuleKind::Other => "multiboot,module",
    }
}

/// `bytes` in MiB, rounded down, for messages about RAM.
fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyName { index } => write!(f, "VM number {index} in the list (from 0) has an empty name"),
            Self::DuplicateName => write!(f, "another VM before it has the same name"),
            Self::NoVcpus => write!(f, "no vCPUs: give it at least one pCPU"),
            Self::NoSuchCpu { cpu, count } => write!(f, "{cpu} does not exist (the board has {count} pCPUs)"),
            Self::CpuOffline { cpu } => write!(f, "{cpu} did not come up"),
            Self::CpuTwice { cpu, first, second } => write!(f, "{cpu} is given to both {first} and {second}"),
            Self::CpuTaken { cpu, owner } => write!(f, "{cpu} is already used by VM '{owner}'"),
            Self::RamEmpty => write!(f, "RAM size is 0"),
            Self::RamMisaligned { ipa, size } => {
                write!(f, "RAM {ipa}+{size:#x}: base and size must be multiples of 2 MiB")
            }
            Self::RamOverflow { ipa, size } => write!(f, "RAM {ipa}+{size:#x} runs past the end of the address space"),
            Self::RamTooLarge { size, free } => write!(
                f,
                "RAM of {} MiB does not fit: {} MiB of guest RAM is left for it (a VM also takes {} KiB for its stage-2 tables)",
                mib(*size),
                mib(*free),
                crate::arch::stage2_table_bytes(*size) >> 10
            ),
            Self::NoKernel => write!(f, "no kernel: give it a multiboot,kernel module"),
            Self::KernelAndImage => write!(f, "both a kernel module and a built-in image: give one"),
            Self::RamdiskWithoutKernel => write!(f, "a ramdisk needs a kernel module"),
            Self::ImageTooLarge { len, ram } => {
                write!(f, "built-in image of {len:#x} bytes does not fit in {ram:#x} bytes of RAM")
            }
            Self::EntryOutsideRam { entry, ram } => write!(f, "entry point {entry} is outside its RAM {ram:?}"),
            Self::NoSuchModule { module, count } => {
                write!(f, "{module} does not exist (the device tree has {count} modules)")
            }
            Self::WrongModuleKind { module, wanted, found } => {
                write!(f, "{module} is {}, but a {} module is needed here", compatible(*found), compatible(*wanted))
            }
            Self::ModuleTaken { module, holder } => write!(f, "{module} is already used by VM '{holder}'"),
            Self::MissingDevice { device } => write!(f, "no {device}: every VM needs one"),
            Self::WrongGic { device, board } => write!(f, "a {device}, but the board's GIC is a {board}"),
            Self::DeviceTwice { device } => write!(f, "a second {device}: a VM has at most one"),
            Self::EmptyWindow { device, window } => write!(f, "device {device} has an empty window {window:?}"),
            Self::WindowSize { device, window, expected } => write!(
                f,
                "device {device} at {window:?} is {:#x} bytes, but its registers take {expected:#x}",
                window.size()
            ),
            Self::WindowMisaligned { device, window, align } => {
                write!(f, "device {device} at {window:?} is not aligned to {align:#x}")
            }
            Self::DeviceOverlapsRam { device, window, ram } => {
                write!(f, "device {device} at {window:?} overlaps RAM {ram:?}")
            }
            Self::DevicesOverlap { first, first_window, second, second_window } => {
                write!(f, "device {second} at {second_window:?} overlaps device {first} at {first_window:?}")
            }
            Self::IntidMissing { device } => write!(f, "device {device} needs an interrupt number (intid)"),
            Self::IntidUnexpected { device, intid } => {
                write!(f, "device {device} has no interrupt line, but INTID {intid} is given")
            }
            Self::IntidOutOfRange { device, intid } => write!(
                f,
                "device {device}: INTID {intid} is not an SPI of the virtual GIC ({} to {})",
                SPI_INTIDS.start,
                SPI_INTIDS.end - 1
            ),
            Self::IntidTwice { intid, first, second } => {
                write!(f, "INTID {intid} is given to both {first} and {second}")
            }
            Self::ConsoleWithoutUart => write!(f, "takes console input but has no pl011"),
            Self::CpusZero => write!(f, "is 0: a VM needs at least one vCPU"),
            Self::NotEnoughCpus { wanted, free } => write!(
                f,
                "{wanted} vCPUs, but {free} {} free for it (online, pinned by no xen,vcpu node and given to no earlier VM)",
                if *free == 1 { "pCPU is" } else { "pCPUs are" }
            ),
            Self::AffinitySeveral { affinity } => write!(
                f,
                "\"{affinity}\" names several pCPUs, but a vCPU runs on exactly one: give one pCPU number, such as \"2\""
            ),
            Self::AffinityNotNumber { affinity } => {
                write!(f, "\"{affinity}\" is not a pCPU number: give one, such as \"2\"")
            }
            Self::NoSuchVcpu { vcpu, count } => {
                write!(f, "{vcpu} does not exist: the VM has {count} vCPUs (its cpus), numbered from 0")
            }
            Self::VcpuTwice { vcpu, first } => write!(f, "{vcpu} has a xen,vcpu node already ({first})"),
            Self::VcpuNotPinned { vcpu } => write!(
                f,
                "{vcpu} has no xen,vcpu node with a hard-affinity; when one vCPU of a VM is pinned, every vCPU must be"
            ),
            Self::MemoryEmpty => write!(f, "is 0 KiB: give a multiple of the 2 MiB (2048 KiB) granule of guest RAM"),
            Self::MemoryMisaligned { kib } => {
                write!(f, "{kib} KiB is not a multiple of the 2 MiB (2048 KiB) granule of guest RAM")
            }
            Self::MemoryTooLarge { kib, free } => match kib.checked_mul(1024) {
                Some(bytes) => write!(
                    f,
                    "{kib} KiB and its stage-2 tables ({} KiB) are more than the {} MiB of RAM left free",
                    crate::arch::stage2_table_bytes(bytes) >> 10,
                    mib(*free)
                ),
                None => write!(f, "{kib} KiB is more than the {} MiB of RAM left free", mib(*free)),
            },
            Self::ModuleTwice { kind, first } => {
                write!(f, "a second {} module (the first is {first}): a VM has one", compatible(*kind))
            }
            Self::ModuleOutsideRam { region } => write!(f, "{region:?} is not inside a RAM bank (/memory)"),
            Self::ModulesOverlap { region, other, holder } => {
                write!(f, "{region:?} overlaps {other}")?;
                match holder {
                    Some(vm) => write!(f, " of VM '{vm}'"),
                    None => write!(f, " (a top-level module)"),
                }
            }
        }
    }
}

impl fmt::Display for ConfigError {
    /// `VM 'name': problem`, or with a device-tree source
    /// `VM 'name' (/chosen/name): property 'memory': problem`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Problem::EmptyName { .. } = self.problem {
            return write!(f, "{}", self.problem);
        }
        write!(f, "VM '{}'", self.vm)?;
        if let Some(at) = &self.at {
            write!(f, " ({})", at.node)?;
            if let Some(property) = at.property {
                write!(f, ": property '{property}'")?;
            }
        }
        match &self.problem {
            Problem::ModuleTaken { module, holder } if *holder == self.vm => {
                write!(f, ": {module} is used twice by this VM")
            }
            problem => write!(f, ": {problem}"),
        }
    }
}

/// What a VM of `size` bytes of RAM takes of the board's free guest RAM: the RAM and its
/// stage-2 tables ([`crate::arch::stage2_table_bytes`]).
pub fn ram_cost(size: u64) -> u64 {
    size.saturating_add(crate::arch::stage2_table_bytes(size))
}

/// Checks every VM of `vms` against `board` and against each other; the first problem found
/// is returned, naming its VM. Each VM in turn: its name, its pCPUs, its RAM (and what is
/// left of the board's), its kernel or image and modules, its devices and their INTIDs.
pub fn validate(vms: &[VmSpec], board: &Board<'_>) -> Result<(), ConfigError> {
    let mut cpu_owner: Vec<Option<usize>> = alloc::vec![None; board.cpu_count];
    let mut claims = ModuleClaims::new(board.modules.len());
    let mut ram_left = board.free_ram;
    for (index, vm) in vms.iter().enumerate() {
        let fail = |problem| ConfigError::new(&vm.name, problem);
        if vm.name.is_empty() {
            return Err(fail(Problem::EmptyName { index }));
        }
        if vms[..index].iter().any(|v| v.name == vm.name) {
            return Err(fail(Problem::DuplicateName));
        }
        check_cpus(vm, index, vms, board, &mut cpu_owner).map_err(fail)?;
        let ram = check_ram(&vm.ram).map_err(fail)?;
        let cost = ram_cost(vm.ram.size);
        if cost > ram_left {
            return Err(fail(Problem::RamTooLarge { size: vm.ram.size, free: ram_left }));
        }
        ram_left -= cost;
        check_boot(vm, ram, board, &mut claims)?;
        check_devices(vm, ram, board, &mut claims)?;
    }
    Ok(())
}

/// The VM's pCPUs exist, are up, are named once and belong to no earlier VM; records them as
/// the VM's in `cpu_owner`.
fn check_cpus(
    vm: &VmSpec,
    index: usize,
    vms: &[VmSpec],
    board: &Board<'_>,
    cpu_owner: &mut [Option<usize>],
) -> Result<(), Problem> {
    if vm.cpus.is_empty() {
        return Err(Problem::NoVcpus);
    }
    for (vcpu, &cpu) in vm.cpus.iter().enumerate() {
        let Some(owner) = cpu_owner.get_mut(cpu.0) else {
            return Err(Problem::NoSuchCpu { cpu, count: board.cpu_count });
        };
        if !board.is_online(cpu) {
            return Err(Problem::CpuOffline { cpu });
        }
        if let Some(first) = vm.cpus[..vcpu].iter().position(|&c| c == cpu) {
            return Err(Problem::CpuTwice { cpu, first: VcpuId(first), second: VcpuId(vcpu) });
        }
        if let Some(other) = *owner {
            return Err(Problem::CpuTaken { cpu, owner: vms[other].name.clone() });
        }
        *owner = Some(index);
    }
    Ok(())
}

/// The RAM is non-empty, 2 MiB aligned and inside the address space; its range.
fn check_ram(ram: &RamSpec) -> Result<Range, Problem> {
    let RamSpec { ipa, size } = *ram;
    if size == 0 {
        return Err(Problem::RamEmpty);
    }
    if !ipa.is_aligned(RAM_ALIGN) || !size.is_multiple_of(RAM_ALIGN) {
        return Err(Problem::RamMisaligned { ipa, size });
    }
    ram.range().ok_or(Problem::RamOverflow { ipa, size })
}

/// Exactly one of kernel and image; a ramdisk only with a kernel; an image fits in RAM and
/// starts inside it; the modules are claimed and of the right kind.
fn check_boot(vm: &VmSpec, ram: Range, board: &Board<'_>, claims: &mut ModuleClaims) -> Result<(), ConfigError> {
    let fail = |problem| ConfigError::new(&vm.name, problem);
    match (vm.kernel, &vm.image) {
        (None, None) => Err(fail(Problem::NoKernel)),
        (Some(_), Some(_)) => Err(fail(Problem::KernelAndImage)),
        (None, Some(image)) => {
            if vm.ramdisk.is_some() {
                return Err(fail(Problem::RamdiskWithoutKernel));
            }
            let len = image.bytes.len() as u64;
            if len > ram.size() {
                return Err(fail(Problem::ImageTooLarge { len, ram: ram.size() }));
            }
            if !ram.contains(image.entry.0) {
                return Err(fail(Problem::EntryOutsideRam { entry: image.entry, ram }));
            }
            Ok(())
        }
        (Some(kernel), None) => {
            claim_module(vm, kernel, ModuleKind::Kernel, board, claims)?;
            match vm.ramdisk {
                Some(ramdisk) => claim_module(vm, ramdisk, ModuleKind::Ramdisk, board, claims),
                None => Ok(()),
            }
        }
    }
}

/// Claims `module` for `vm` and checks it is of kind `wanted`.
fn claim_module(
    vm: &VmSpec,
    module: ModuleRef,
    wanted: ModuleKind,
    board: &Board<'_>,
    claims: &mut ModuleClaims,
) -> Result<(), ConfigError> {
    claims.claim(module, &vm.name)?;
    let found = board.modules[module.0].kind;
    if found != wanted {
        return Err(ConfigError::new(&vm.name, Problem::WrongModuleKind { module, wanted, found }));
    }
    Ok(())
}

/// Each device window has the model's size and alignment and overlaps neither RAM nor
/// another device; INTIDs are SPIs, given where there is a line, and used once; kinds that
/// are one per VM appear once, the GIC always; a disk module is claimed; console input
/// needs a PL011.
fn check_devices(vm: &VmSpec, ram: Range, board: &Board<'_>, claims: &mut ModuleClaims) -> Result<(), ConfigError> {
    let fail = |problem| ConfigError::new(&vm.name, problem);
    for (i, d) in vm.devices.iter().enumerate() {
        let (device, window) = (d.kind, d.ipa);
        let earlier = &vm.devices[..i];
        if window.is_empty() {
            return Err(fail(Problem::EmptyWindow { device, window }));
        }
        let expected = device.window_size(vm.vcpu_count());
        if window.size() != expected {
            return Err(fail(Problem::WindowSize { device, window, expected }));
        }
        let align = device.alignment();
        if !window.start.is_multiple_of(align) {
            return Err(fail(Problem::WindowMisaligned { device, window, align }));
        }
        if window.overlaps(&ram) {
            return Err(fail(Problem::DeviceOverlapsRam { device, window, ram }));
        }
        if let Some(e) = earlier.iter().find(|e| e.ipa.overlaps(&window)) {
            return Err(fail(Problem::DevicesOverlap {
                first: e.kind,
                first_window: e.ipa,
                second: device,
                second_window: window,
            }));
        }
        if device.gic_version().is_some_and(|v| v != board.gic) {
            return Err(fail(Problem::WrongGic { device, board: board.gic }));
        }
        if device.one_per_vm() && earlier.iter().any(|e| e.kind == device) {
            return Err(fail(Problem::DeviceTwice { device }));
        }
        match (device.has_interrupt(), d.intid) {
            (true, None) => return Err(fail(Problem::IntidMissing { device })),
            (false, Some(intid)) => return Err(fail(Problem::IntidUnexpected { device, intid })),
            (false, None) => {}
            (true, Some(intid)) => {
                if !SPI_INTIDS.contains(&intid) {
                    return Err(fail(Problem::IntidOutOfRange { device, intid }));
                }
                if let Some(e) = earlier.iter().find(|e| e.intid == Some(intid)) {
                    return Err(fail(Problem::IntidTwice { intid, first: e.kind, second: device }));
                }
            }
        }
        if let DeviceKind::VirtioBlk { disk } = device {
            claim_module(vm, disk, ModuleKind::Disk, board, claims)?;
        }
    }
    if let Some(&device) = required(board.gic).iter().find(|&&k| !vm.devices.iter().any(|d| d.kind == k)) {
        return Err(fail(Problem::MissingDevice { device }));
    }
    if vm.console && !vm.devices.iter().any(|d| d.kind == DeviceKind::Pl011) {
        return Err(fail(Problem::ConsoleWithoutUart));
    }
    Ok(())
}

/// A VMID was given back that was not taken (a double free, or VMID 0, which is never a
/// guest's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmidNotTaken(pub VmId);

impl fmt::Display for VmidNotTaken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} given back but not taken", self.0)
    }
}

/// The free 8-bit VMIDs, 1 to 255 (VMID 0 is never a guest's). [`VmidPool::take`] hands out
/// the lowest free one; a VM gives its VMID back when it is dropped. Pure data: the caller
/// holds it in a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmidPool {
    /// Bit n of word n / 64 set: VMID n is free.
    free: [u64; 4],
}

impl VmidPool {
    /// Every VMID from 1 to 255 free.
    pub const fn new() -> Self {
        Self { free: [!1, !0, !0, !0] }
    }

    /// The lowest free VMID, now taken; `None` when all 255 are in use.
    pub fn take(&mut self) -> Option<VmId> {
        let (word, bits) = self.free.iter_mut().enumerate().find(|(_, bits)| **bits != 0)?;
        let bit = bits.trailing_zeros();
        *bits &= !(1 << bit);
        Some(VmId((word * 64) as u8 + bit as u8))
    }

    /// Frees `vmid` for the next [`VmidPool::take`]. Refused, changing nothing, when it is
    /// not taken (given back twice, or VMID 0).
    pub fn give_back(&mut self, vmid: VmId) -> Result<(), VmidNotTaken> {
        let (word, bit) = (vmid.0 as usize / 64, vmid.0 % 64);
        if vmid.0 == 0 || self.free[word] & (1 << bit) != 0 {
            return Err(VmidNotTaken(vmid));
        }
        self.free[word] |= 1 << bit;
        Ok(())
    }

    /// How many VMIDs are free.
    pub fn free_count(&self) -> usize {
        self.free.iter().map(|w| w.count_ones() as usize).sum()
    }
}

impl Default for VmidPool {
    fn default() -> Self {
        Self::new()
    }
}

/// Which VM holds each multiboot module: a module's pages or bytes go to one VM and one use
/// (kernel, ramdisk or disk) at a time. Pure data: the caller holds it in a lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleClaims {
    /// By module index: the name of the VM holding it.
    holders: Vec<Option<String>>,
}

impl ModuleClaims {
    /// `module_count` modules, none claimed.
    pub fn new(module_count: usize) -> Self {
        Self { holders: alloc::vec![None; module_count] }
    }

    /// Gives `module` to the VM named `by`. Refused when there is no such module or someone
    /// (`by` too) already holds it; the error names `by` and the holder.
    pub fn claim(&mut self, module: ModuleRef, by: &str) -> Result<(), ConfigError> {
        let fail = |problem| ConfigError::new(by, problem);
        let count = self.holders.len();
        let holder = self.holders.get_mut(module.0).ok_or(fail(Problem::NoSuchModule { module, count }))?;
        if let Some(holder) = holder {
            return Err(fail(Problem::ModuleTaken { module, holder: holder.clone() }));
        }
        *holder = Some(by.into());
        Ok(())
    }

    /// Frees `module` (when its VM has ended); the VM that held it, if any.
    pub fn release(&mut self, module: ModuleRef) -> Option<String> {
        self.holders.get_mut(module.0)?.take()
    }

    /// The VM holding `module`, if any.
    pub fn holder(&self, module: ModuleRef) -> Option<&str> {
        self.holders.get(module.0)?.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{Cpu, Region};
    use alloc::string::ToString;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    const RAM_BASE: u64 = 0x4000_0000;

    fn module(kind: ModuleKind, base: u64) -> Module<'static> {
        Module { kind, region: Region { base, size: 0x10_0000 }, ..Default::default() }
    }

    /// 0: kernel, 1: ramdisk, 2: disk, 3: kernel, 4: disk, 5: another module.
    fn modules() -> Vec<Module<'static>> {
        use ModuleKind::*;
        [Kernel, Ramdisk, Disk, Kernel, Disk, Other]
            .iter()
            .enumerate()
            .map(|(i, &k)| module(k, (i as u64 + 1) << 28))
            .collect()
    }

    /// 8 pCPUs, all up, 2 GiB free.
    fn board<'a>(modules: &'a [Module<'static>]) -> Board<'a> {
        Board { cpu_count: 8, online: 0xff, free_ram: 2 * GIB, modules, gic: Version::V3 }
    }

    fn cpus(ids: &[usize]) -> Vec<CpuId> {
        ids.iter().map(|&i| CpuId(i)).collect()
    }

    /// A Linux VM on `pcpus` with kernel 0, ramdisk 1, disk 2 and 512 MiB at 0x4000_0000.
    fn linux(name: &str, pcpus: &[usize]) -> VmSpec {
        VmSpec {
            name: name.into(),
            cpus: cpus(pcpus),
            ram: RamSpec { ipa: GuestPhysAddr(RAM_BASE), size: 512 * MIB },
            kernel: Some(ModuleRef(0)),
            ramdisk: Some(ModuleRef(1)),
            image: None,
            devices: virt_devices(Version::V3, pcpus.len(), Some(ModuleRef(2)), false),
            console: true,
            bootargs: Some("console=ttyAMA0".into()),
        }
    }

    /// A second Linux VM with its own modules: kernel 3, no ramdisk, disk 4.
    fn linux_b(pcpus: &[usize]) -> VmSpec {
        let mut b = linux("b", pcpus);
        b.kernel = Some(ModuleRef(3));
        b.ramdisk = None;
        b.devices = virt_devices(Version::V3, pcpus.len(), Some(ModuleRef(4)), false);
        b
    }

    /// A built-in test guest on `pcpus`, with the test device and 64 MiB of RAM.
    fn test_vm(name: &str, pcpus: &[usize]) -> VmSpec {
        static BLOB: [u8; 16] = [0; 16];
        VmSpec {
            name: name.into(),
            cpus: cpus(pcpus),
            ram: RamSpec { ipa: GuestPhysAddr(RAM_BASE), size: 64 * MIB },
            kernel: None,
            ramdisk: None,
            image: Some(Image { bytes: &BLOB, entry: GuestPhysAddr(RAM_BASE), arg: 0 }),
            devices: virt_devices(Version::V3, pcpus.len(), None, true),
            console: false,
            bootargs: None,
        }
    }

    fn check(vms: &[VmSpec]) -> Result<(), ConfigError> {
        validate(vms, &board(&modules()))
    }

    /// The problem `vms` is refused for, asserting which VM it names.
    fn refused(vms: &[VmSpec], vm: &str) -> Problem {
        let e = check(vms).expect_err("configuration accepted");
        assert_eq!(e.vm, vm, "{e}");
        e.problem
    }

    fn device(vm: &mut VmSpec, kind: DeviceKind) -> &mut DeviceSpec {
        vm.devices.iter_mut().find(|d| d.kind == kind).unwrap()
    }

    fn window(start: u64, size: u64) -> Range {
        Range { start, end: start + size }
    }

    // Accepted configurations.

    #[test]
    fn default_single_vm_is_accepted_with_1_to_8_vcpus() {
        for n in 1..=8 {
            let vm = linux("linux", &(0..n).collect::<Vec<_>>());
            assert_eq!(vm.vcpu_count(), n);
            assert_eq!(check(&[vm]), Ok(()), "{n} vCPUs");
        }
    }

    #[test]
    fn two_vms_on_disjoint_pcpus_and_a_test_guest_are_accepted() {
        let mut a = linux("a", &[0, 1]);
        a.ram.size = GIB;
        let b = linux_b(&[3, 2]);
        let t = test_vm("t", &[4]);
        assert_eq!(check(&[a, b.clone(), t]), Ok(()));
        assert_eq!(b.cpu_of(VcpuId(0)), Some(CpuId(3)));
        assert_eq!(b.cpu_of(VcpuId(2)), None);
    }

    #[test]
    fn virt_layout_is_qemus() {
        let d = virt_devices(Version::V3, 4, Some(ModuleRef(2)), true);
        let at = |kind| d.iter().find(|x| x.kind == kind).map(|x| (x.ipa, x.intid)).unwrap();
        assert_eq!(at(DeviceKind::GicDistributor), (window(0x0800_0000, 0x1_0000), None));
        assert_eq!(at(DeviceKind::GicRedistributors), (window(0x080a_0000, 4 * 0x2_0000), None));
        assert_eq!(at(DeviceKind::Pl011), (window(0x0900_0000, 0x1000), Some(33)));
        assert_eq!(at(DeviceKind::Pl031), (window(0x0901_0000, 0x1000), Some(34)), "the RTC, SPI 2");
        assert_eq!(at(DeviceKind::VirtioBlk { disk: ModuleRef(2) }), (window(0x0a80_0000, 0x200), Some(48)));
        assert_eq!(at(DeviceKind::VirtioWindow), (window(0x0a00_0000, 0x4000), None), "32 empty transports");
        assert_eq!(at(DeviceKind::Test), (window(0x0b00_0000, 0x1000), Some(40)), "where virt has nothing");
        assert_eq!(virt_devices(Version::V3, 1, None, false).len(), 5);
    }

    #[test]
    fn board_comes_from_the_platform() {
        let mut p = Platform::default();
        for i in 0..4 {
            p.cpus.push(Cpu { mpidr: i, ..Cpu::default() }).unwrap();
        }
        p.modules.push(module(ModuleKind::Kernel, 0x4800_0000)).unwrap();
        p.gic.version = crate::platform::GicVersion::V3;
        let b = Board::new(&p, 0b1011, GIB);
        assert_eq!((b.cpu_count, b.modules.len(), b.free_ram, b.gic), (4, 1, GIB, Version::V3));
        assert!(b.is_online(CpuId(3)) && !b.is_online(CpuId(2)) && !b.is_online(CpuId(4)));
        let mut vm = linux("linux", &[0, 1, 3]);
        vm.ramdisk = None;
        vm.devices = virt_devices(Version::V3, 3, None, false);
        assert_eq!(validate(core::slice::from_ref(&vm), &b), Ok(()));
        // The same VM on the board with a GICv2: its vGIC must be a GICv2 too.
        p.gic.version = crate::platform::GicVersion::V2;
        let b = Board::new(&p, 0b1011, GIB);
        let err = validate(core::slice::from_ref(&vm), &b).unwrap_err();
        assert_eq!(err.problem, Problem::WrongGic { device: DeviceKind::GicDistributor, board: Version::V2 });
        assert!(format!("{err}").contains("GIC distributor, but the board's GIC is a GICv2"), "{err}");
        vm.devices = virt_devices(Version::V2, 3, None, false);
        assert_eq!(validate(core::slice::from_ref(&vm), &b), Ok(()));
        vm.devices.retain(|d| d.kind != DeviceKind::GicV2CpuInterface);
        let err = validate(&[vm], &b).unwrap_err();
        assert_eq!(err.problem, Problem::MissingDevice { device: DeviceKind::GicV2CpuInterface });
    }

    // Names.

    #[test]
    fn empty_name_is_refused() {
        assert_eq!(refused(&[linux("a", &[0]), linux_b(&[1]), linux("", &[2])], ""), Problem::EmptyName { index: 2 });
    }

    #[test]
    fn duplicate_name_is_refused() {
        let mut b = linux_b(&[1]);
        b.name = "a".into();
        assert_eq!(refused(&[linux("a", &[0]), b], "a"), Problem::DuplicateName);
    }

    // pCPUs.

    #[test]
    fn vm_without_vcpus_is_refused() {
        assert_eq!(refused(&[linux("a", &[])], "a"), Problem::NoVcpus);
    }

    #[test]
    fn missing_pcpu_is_refused() {
        assert_eq!(refused(&[linux("a", &[0, 8])], "a"), Problem::NoSuchCpu { cpu: CpuId(8), count: 8 });
    }

    #[test]
    fn offline_pcpu_is_refused() {
        let mods = modules();
        let b = Board { online: 0b1101_1111, ..board(&mods) };
        let e = validate(&[linux("a", &[4, 5])], &b).unwrap_err();
        assert_eq!(e.problem, Problem::CpuOffline { cpu: CpuId(5) });
    }

    #[test]
    fn pcpu_named_twice_in_one_vm_is_refused() {
        assert_eq!(
            refused(&[linux("a", &[1, 2, 1])], "a"),
            Problem::CpuTwice { cpu: CpuId(1), first: VcpuId(0), second: VcpuId(2) }
        );
    }

    #[test]
    fn pcpu_of_another_vm_is_refused() {
        assert_eq!(
            refused(&[linux("a", &[0, 1, 2, 3]), linux_b(&[4, 3])], "b"),
            Problem::CpuTaken { cpu: CpuId(3), owner: "a".into() }
        );
    }

    // RAM.

    #[test]
    fn empty_ram_is_refused() {
        let mut vm = linux("a", &[0]);
        vm.ram.size = 0;
        assert_eq!(refused(&[vm], "a"), Problem::RamEmpty);
    }

    #[test]
    fn misaligned_ram_is_refused() {
        let mut vm = linux("a", &[0]);
        vm.ram.ipa = GuestPhysAddr(RAM_BASE + MIB);
        assert!(matches!(refused(&[vm], "a"), Problem::RamMisaligned { .. }));
        let mut vm = linux("a", &[0]);
        vm.ram.size = 511 * MIB;
        assert!(matches!(refused(&[vm], "a"), Problem::RamMisaligned { .. }));
    }

    #[test]
    fn ram_past_the_address_space_is_refused() {
        let mut vm = linux("a", &[0]);
        vm.ram = RamSpec { ipa: GuestPhysAddr(!(RAM_ALIGN - 1)), size: 2 * RAM_ALIGN };
        assert!(matches!(refused(&[vm], "a"), Problem::RamOverflow { .. }));
    }

    #[test]
    fn ram_beyond_what_the_board_has_free_is_refused() {
        let mut vm = linux("a", &[0]);
        vm.ram.size = 4 * GIB;
        assert_eq!(refused(&[vm], "a"), Problem::RamTooLarge { size: 4 * GIB, free: 2 * GIB });
        let mut a = linux("a", &[0]);
        let mut b = linux_b(&[1]);
        a.ram.size = 1536 * MIB;
        b.ram.size = GIB;
        // a's 1536 MiB take 4 MiB of stage-2 tables as well.
        assert_eq!(refused(&[a, b], "b"), Problem::RamTooLarge { size: GIB, free: 508 * MIB });
    }

    // What the guest runs.

    #[test]
    fn vm_without_a_kernel_is_refused() {
        let mut vm = linux("a", &[0]);
        vm.kernel = None;
        assert_eq!(refused(&[vm], "a"), Problem::NoKernel);
    }

    #[test]
    fn kernel_and_image_together_are_refused() {
        let mut vm = test_vm("t", &[0]);
        vm.kernel = Some(ModuleRef(0));
        assert_eq!(refused(&[vm], "t"), Problem::KernelAndImage);
    }

    #[test]
    fn ramdisk_without_kernel_is_refused() {
        let mut vm = test_vm("t", &[0]);
        vm.ramdisk = Some(ModuleRef(1));
        assert_eq!(refused(&[vm], "t"), Problem::RamdiskWithoutKernel);
    }

    #[test]
    fn image_larger_than_ram_is_refused() {
        static BIG: [u8; 3 << 20] = [0; 3 << 20];
        let mut vm = test_vm("t", &[0]);
        vm.ram.size = 2 * MIB;
        vm.image.as_mut().unwrap().bytes = &BIG;
        assert_eq!(refused(&[vm], "t"), Problem::ImageTooLarge { len: 3 * MIB, ram: 2 * MIB });
    }

    #[test]
    fn image_entry_outside_ram_is_refused() {
        let mut vm = test_vm("t", &[0]);
        vm.image.as_mut().unwrap().entry = GuestPhysAddr(RAM_BASE + 64 * MIB);
        assert!(matches!(refused(&[vm], "t"), Problem::EntryOutsideRam { .. }));
    }

    // Modules.

    #[test]
    fn missing_module_is_refused() {
        let mut vm = linux("a", &[0]);
        vm.kernel = Some(ModuleRef(6));
        assert_eq!(refused(&[vm], "a"), Problem::NoSuchModule { module: ModuleRef(6), count: 6 });
    }

    #[test]
    fn module_of_the_wrong_kind_is_refused() {
        let wrong = |set: fn(&mut VmSpec)| {
            let mut vm = linux("a", &[0]);
            set(&mut vm);
            refused(&[vm], "a")
        };
        assert_eq!(
            wrong(|vm| vm.kernel = Some(ModuleRef(5))),
            Problem::WrongModuleKind { module: ModuleRef(5), wanted: ModuleKind::Kernel, found: ModuleKind::Other }
        );
        assert_eq!(
            wrong(|vm| vm.ramdisk = Some(ModuleRef(3))),
            Problem::WrongModuleKind { module: ModuleRef(3), wanted: ModuleKind::Ramdisk, found: ModuleKind::Kernel }
        );
        assert_eq!(
            wrong(|vm| {
                vm.ramdisk = None;
                vm.devices = virt_devices(Version::V3, 1, Some(ModuleRef(1)), false);
            }),
            Problem::WrongModuleKind { module: ModuleRef(1), wanted: ModuleKind::Disk, found: ModuleKind::Ramdisk }
        );
    }

    #[test]
    fn module_claimed_twice_is_refused() {
        let mut b = linux_b(&[1]);
        b.devices = virt_devices(Version::V3, 1, Some(ModuleRef(2)), false);
        assert_eq!(
            refused(&[linux("a", &[0]), b], "b"),
            Problem::ModuleTaken { module: ModuleRef(2), holder: "a".into() }
        );
        // The same disk twice in one VM.
        let mut a = linux("a", &[0]);
        let mut second = *device(&mut a, DeviceKind::VirtioBlk { disk: ModuleRef(2) });
        second.ipa = window(memory_map::VIRTIO_BLK + 0x200, 0x200);
        second.intid = Some(49);
        a.devices.push(second);
        let e = check(&[a]).unwrap_err();
        assert_eq!(e.problem, Problem::ModuleTaken { module: ModuleRef(2), holder: "a".into() });
        assert_eq!(e.to_string(), "VM 'a': module 2 is used twice by this VM");
    }

    // Devices.

    #[test]
    fn vm_without_its_gic_is_refused() {
        for kind in required(Version::V3) {
            let mut vm = linux("a", &[0]);
            vm.devices.retain(|d| d.kind != kind);
            assert_eq!(refused(&[vm], "a"), Problem::MissingDevice { device: kind });
        }
    }

    #[test]
    fn second_device_of_a_one_per_vm_kind_is_refused() {
        for kind in [DeviceKind::Pl011, DeviceKind::Pl031] {
            let mut vm = test_vm("t", &[0]);
            vm.devices.push(DeviceSpec { kind, ipa: window(0x0902_0000, 0x1000), intid: Some(35) });
            assert_eq!(refused(&[vm], "t"), Problem::DeviceTwice { device: kind });
        }
    }

    #[test]
    fn empty_device_window_is_refused() {
        let mut vm = linux("a", &[0]);
        let d = device(&mut vm, DeviceKind::Pl011);
        d.ipa.end = d.ipa.start;
        assert!(matches!(refused(&[vm], "a"), Problem::EmptyWindow { device: DeviceKind::Pl011, .. }));
        let mut vm = linux("a", &[0]);
        let d = device(&mut vm, DeviceKind::Pl011);
        d.ipa = Range { start: d.ipa.end, end: d.ipa.start };
        assert!(matches!(refused(&[vm], "a"), Problem::EmptyWindow { device: DeviceKind::Pl011, .. }));
    }

    #[test]
    fn device_window_of_the_wrong_size_is_refused() {
        let mut vm = linux("a", &[0]);
        device(&mut vm, DeviceKind::Pl011).ipa = window(memory_map::UART, 0x2000);
        assert_eq!(
            refused(&[vm], "a"),
            Problem::WindowSize {
                device: DeviceKind::Pl011,
                window: window(memory_map::UART, 0x2000),
                expected: 0x1000
            }
        );
        // One redistributor frame per vCPU: a layout for 2 vCPUs does not fit a 3-vCPU VM.
        let mut vm = linux("a", &[0, 1, 2]);
        vm.devices = virt_devices(Version::V3, 2, Some(ModuleRef(2)), false);
        assert!(matches!(
            refused(&[vm], "a"),
            Problem::WindowSize { device: DeviceKind::GicRedistributors, expected: 0x6_0000, .. }
        ));
    }

    #[test]
    fn misaligned_device_window_is_refused() {
        let mut vm = linux("a", &[0]);
        device(&mut vm, DeviceKind::Pl011).ipa = window(memory_map::UART + 0x800, 0x1000);
        assert!(matches!(
            refused(&[vm], "a"),
            Problem::WindowMisaligned { device: DeviceKind::Pl011, align: 0x1000, .. }
        ));
    }

    #[test]
    fn device_overlapping_ram_is_refused() {
        let mut vm = linux("linux", &[0]);
        vm.ram = RamSpec { ipa: GuestPhysAddr(0x0900_0000 & !(RAM_ALIGN - 1)), size: 2 * MIB };
        let e = check(&[vm]).unwrap_err();
        assert!(matches!(e.problem, Problem::DeviceOverlapsRam { device: DeviceKind::Pl011, .. }));
        assert_eq!(
            e.to_string(),
            "VM 'linux': device pl011 at [0x9000000..0x9001000) overlaps RAM [0x9000000..0x9200000)"
        );
    }

    #[test]
    fn overlapping_devices_are_refused() {
        let mut vm = test_vm("t", &[0]);
        device(&mut vm, DeviceKind::Test).ipa = window(memory_map::UART, 0x1000);
        assert_eq!(
            refused(&[vm], "t"),
            Problem::DevicesOverlap {
                first: DeviceKind::Pl011,
                first_window: window(memory_map::UART, 0x1000),
                second: DeviceKind::Test,
                second_window: window(memory_map::UART, 0x1000),
            }
        );
    }

    // Interrupt numbers.

    #[test]
    fn device_with_a_line_but_no_intid_is_refused() {
        let mut vm = linux("a", &[0]);
        device(&mut vm, DeviceKind::Pl011).intid = None;
        assert_eq!(refused(&[vm], "a"), Problem::IntidMissing { device: DeviceKind::Pl011 });
    }

    #[test]
    fn intid_for_a_gic_frame_is_refused() {
        let mut vm = linux("a", &[0]);
        device(&mut vm, DeviceKind::GicDistributor).intid = Some(50);
        assert_eq!(refused(&[vm], "a"), Problem::IntidUnexpected { device: DeviceKind::GicDistributor, intid: 50 });
    }

    #[test]
    fn intid_outside_the_spis_is_refused() {
        for (intid, ok) in [(27, false), (31, false), (32, true), (127, true), (128, false), (1020, false)] {
            let mut vm = linux("a", &[0]);
            device(&mut vm, DeviceKind::Pl011).intid = Some(intid);
            let want = if ok { Ok(()) } else { Err(Problem::IntidOutOfRange { device: DeviceKind::Pl011, intid }) };
            assert_eq!(check(&[vm]).map_err(|e| e.problem), want, "INTID {intid}");
        }
    }

    #[test]
    fn intid_used_twice_in_one_vm_is_refused() {
        let mut vm = linux("a", &[0]);
        device(&mut vm, DeviceKind::VirtioBlk { disk: ModuleRef(2) }).intid = Some(memory_map::UART_INTID);
        assert_eq!(
            refused(&[vm], "a"),
            Problem::IntidTwice {
                intid: 33,
                first: DeviceKind::Pl011,
                second: DeviceKind::VirtioBlk { disk: ModuleRef(2) }
            }
        );
        // Each VM has its own virtual GIC: the same INTIDs in two VMs are fine.
        assert_eq!(check(&[linux("a", &[0]), linux_b(&[1])]), Ok(()));
    }

    #[test]
    fn console_input_without_a_pl011_is_refused() {
        let mut vm = linux("a", &[0]);
        vm.devices.retain(|d| d.kind != DeviceKind::Pl011);
        assert_eq!(refused(&[vm.clone()], "a"), Problem::ConsoleWithoutUart);
        vm.console = false;
        assert_eq!(check(&[vm]), Ok(()));
    }

    #[test]
    fn messages_name_the_vm_and_the_resource() {
        let e = check(&[linux("a", &[0, 3]), linux_b(&[3])]).unwrap_err();
        assert_eq!(e.to_string(), "VM 'b': pCPU 3 is already used by VM 'a'");
        let e = check(&[linux("a", &[0]), linux("", &[1])]).unwrap_err();
        assert_eq!(e.to_string(), "VM number 1 in the list (from 0) has an empty name");
        let mut vm = linux("a", &[0]);
        vm.kernel = Some(ModuleRef(2));
        assert_eq!(
            check(&[vm]).unwrap_err().to_string(),
            "VM 'a': module 2 is armvisor,disk, but a multiboot,kernel module is needed here"
        );
        let mut vm = linux("a", &[0]);
        vm.ram.size = 4 * GIB;
        assert_eq!(
            check(&[vm]).unwrap_err().to_string(),
            "VM 'a': RAM of 4096 MiB does not fit: 2048 MiB of guest RAM is left for it (a VM also takes 10240 KiB for its stage-2 tables)"
        );
    }

    // VMIDs.

    #[test]
    fn vmids_run_out_after_255() {
        let mut pool = VmidPool::new();
        assert_eq!(pool.free_count(), 255);
        for want in 1..=255u8 {
            assert_eq!(pool.take(), Some(VmId(want)));
        }
        assert_eq!(pool.take(), None);
        assert_eq!(pool.free_count(), 0);
    }

    #[test]
    fn vmids_are_recycled_lowest_first() {
        let mut pool = VmidPool::default();
        let ids: Vec<_> = (0..200).map(|_| pool.take().unwrap()).collect();
        for id in [VmId(150), VmId(64), VmId(3), VmId(130)] {
            pool.give_back(id).unwrap();
        }
        assert_eq!(ids[63], VmId(64));
        assert_eq!(
            (pool.take(), pool.take(), pool.take(), pool.take()),
            (Some(VmId(3)), Some(VmId(64)), Some(VmId(130)), Some(VmId(150)))
        );
        assert_eq!(pool.take(), Some(VmId(201)));
        while pool.take().is_some() {}
        pool.give_back(VmId(255)).unwrap();
        assert_eq!(pool.take(), Some(VmId(255)));
    }

    #[test]
    fn vmid_given_back_twice_or_never_taken_is_refused() {
        let mut pool = VmidPool::new();
        let id = pool.take().unwrap();
        assert_eq!(pool.give_back(id), Ok(()));
        assert_eq!(pool.give_back(id), Err(VmidNotTaken(id)));
        assert_eq!(pool.give_back(VmId(0)), Err(VmidNotTaken(VmId(0))));
        assert_eq!(pool.give_back(VmId(7)), Err(VmidNotTaken(VmId(7))));
        assert_eq!(pool.free_count(), 255);
        assert_eq!(VmidNotTaken(VmId(7)).to_string(), "VMID 7 given back but not taken");
    }

    // Module claims.

    #[test]
    fn module_claims_name_the_holder_and_can_be_released() {
        let mut claims = ModuleClaims::new(2);
        assert_eq!(claims.claim(ModuleRef(1), "a"), Ok(()));
        let e = claims.claim(ModuleRef(1), "b").unwrap_err();
        assert_eq!(e.to_string(), "VM 'b': module 1 is already used by VM 'a'");
        assert_eq!(claims.holder(ModuleRef(1)), Some("a"));
        assert_eq!(claims.holder(ModuleRef(0)), None);
        assert_eq!(
            claims.claim(ModuleRef(2), "b").unwrap_err().problem,
            Problem::NoSuchModule { module: ModuleRef(2), count: 2 }
        );
        assert_eq!(claims.release(ModuleRef(1)), Some("a".into()));
        assert_eq!(claims.release(ModuleRef(1)), None);
        assert_eq!(claims.claim(ModuleRef(1), "b"), Ok(()));
        assert_eq!(claims.holder(ModuleRef(1)), Some("b"));
    }
}
