//! The vGIC's register frames as bus devices: the distributor, and one vCPU's
//! redistributor (the bus picks the frame from the offset). The model is `crate::vgic`.
#![forbid(unsafe_code)]

use super::{Ctx, Effects, Mmio};
use crate::vgic::{Dist, Kicks, Redistributor};

impl Mmio for Dist {
    fn read(&mut self, offset: u64, size: u8, _: &mut Ctx<'_>) -> Effects {
        Effects { value: Dist::read(self, offset, size), kick: self.read_kicks(offset), ..Default::default() }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64, _: &mut Ctx<'_>) -> Effects {
        Effects { kick: Dist::write(self, offset, size, value), ..Default::default() }
    }
}

impl Mmio for Redistributor {
    /// `offset` is inside the frame pair of vCPU `ctx.frame`.
    fn read(&mut self, offset: u64, size: u8, ctx: &mut Ctx<'_>) -> Effects {
        let value = Redistributor::read(self, ctx.frame, ctx.mpidrs, offset, size);
        Effects { value, kick: self.read_kicks(ctx.frame, offset), ..Default::default() }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64, ctx: &mut Ctx<'_>) -> Effects {
        let changed = Redistributor::write(self, offset, size, value);
        let kick = if changed && ctx.frame < 64 { Kicks(1 << ctx.frame) } else { Kicks::default() };
        Effects { kick, ..Default::default() }
    }
}
