//! Identifier newtypes shared by every layer: a physical CPU, a VM and a vCPU within its VM
//! are different kinds of number, so one cannot be passed where another is meant.
#![forbid(unsafe_code)]

use core::fmt;

/// A pCPU's index: 0 is the boot pCPU, the rest follow the DTB's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuId(pub usize);

/// A VM's VMID (the stage-2 TLB tag, VTTBR_EL2.VMID): 1 to 255; 0 is never a guest's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmId(pub u8);

/// A vCPU's index within its VM: 0 is the boot vCPU, and the guest sees MPIDR Aff0 = index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VcpuId(pub usize);

impl fmt::Display for CpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pCPU {}", self.0)
    }
}

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VMID {}", self.0)
    }
}

impl fmt::Display for VcpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vCPU {}", self.0)
    }
}
