//! The virt board's virtio-mmio window (virtio 1.2, 4.2.2 "MMIO Device Register Layout"): 32
//! transports from 0x0a000000, 0x200 apart, each with MagicValue 0x74726976 ("virt"),
//! Version 2 (the runner passes -global virtio-mmio.force-legacy=false to QEMU in both runs;
//! armvisor's own window is modern) and DeviceID 0 where no device is behind it (both runs
//! have none: -nic none, no disk).

use crate::report::{Verdict, note, want};
use crate::sys::read32;
use crate::{Ctx, Group};

pub static GROUP: Group = Group { name: "virtio", rows: &["virtio-magic", "virtio-version", "virtio-device-id"], run };

const BASE: usize = 0x0a00_0000;
const STRIDE: usize = 0x200;
const COUNT: usize = 32;

fn run(ctx: &mut Ctx) {
    for (row, off, want) in [("virtio-magic", 0x0, 0x7472_6976u32), ("virtio-version", 0x4, 2), ("virtio-device-id", 0x8, 0)] {
        let mut v = Verdict::new();
        let mut bad = 0;
        for t in 0..COUNT {
            let got = read32(BASE + t * STRIDE + off);
            if got != want {
                bad += 1;
                if bad <= 3 {
                    v.fail(format_args!("transport {t} ({:#x}) reads {got:#x}", BASE + t * STRIDE + off));
                }
            }
        }
        want!(v, bad == 0, "{bad} of {COUNT} transports differ from {want:#x}");
        if bad == 0 {
            note!(v, "all {COUNT} transports read {want:#x}");
        }
        ctx.row(row, &v);
    }
}
