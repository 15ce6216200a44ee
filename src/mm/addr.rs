//! Address newtypes: a physical address of this machine and a guest's intermediate physical
//! address are different types, so one cannot be passed where the other is meant.
#![forbid(unsafe_code)]

use core::fmt;

/// Size of the translation granule (4 KiB) used everywhere in the hypervisor.
pub const PAGE_SIZE: u64 = 4096;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            pub const fn as_u64(self) -> u64 {
                self.0
            }
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !(align - 1))
            }
            /// Rounds up; `None` when that would overflow.
            pub const fn checked_align_up(self, align: u64) -> Option<Self> {
                match self.0.checked_add(align - 1) {
                    Some(v) => Some(Self(v & !(align - 1))),
                    None => None,
                }
            }
            pub const fn checked_add(self, offset: u64) -> Option<Self> {
                match self.0.checked_add(offset) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:#x})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address_type!(
    /// A physical address on this machine (the output of the hypervisor's own stage-1 and of
    /// every VM's stage-2 translation).
    PhysAddr
);
address_type!(
    /// A guest's intermediate physical address (the input of stage-2 translation).
    GuestPhysAddr
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_helpers() {
        let a = PhysAddr(0x4020_1234);
        assert_eq!(a.align_down(PAGE_SIZE), PhysAddr(0x4020_1000));
        assert_eq!(a.checked_align_up(0x20_0000), Some(PhysAddr(0x4040_0000)));
        assert_eq!(PhysAddr(u64::MAX).checked_align_up(PAGE_SIZE), None);
        assert!(PhysAddr(0x4020_0000).is_aligned(0x20_0000));
        assert_eq!(format!("{:?}", GuestPhysAddr(0x10)), "GuestPhysAddr(0x10)");
    }
}
