//! Where a VM's RAM lives in physical memory: one run of RAM the hypervisor allocated,
//! with at most one window of it served by other pages instead — the kernel module, which
//! the guest then runs where the bootloader put it rather than from a 32 MiB copy (under
//! TCG the copy alone took 50 ms of every boot).
//!
//! Offsets are from the start of guest RAM (guest-physical address minus the RAM base).
#![forbid(unsafe_code)]

use super::PAGE_SIZE;
use super::range::Range;
use core::fmt;

/// A run of guest RAM: `len` bytes from `offset`, at physical address `pa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub offset: u64,
    pub len: u64,
    pub pa: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamMap {
    ram: Range,
    /// Offsets `[at, at + pages.size())` live in `pages`, not in `ram`.
    inset: Option<(u64, Range)>,
}

impl RamMap {
    pub fn new(ram: Range) -> Self {
        Self { ram, inset: None }
    }

    /// The same RAM with offsets `[at, at + pages.size())` served by `pages`. `None` unless
    /// `at` and `pages` are page aligned, `pages` is not empty, the window lies inside the
    /// RAM, and there is no inset yet.
    pub fn with_inset(self, at: u64, pages: Range) -> Option<Self> {
        let aligned = [at, pages.start, pages.end].iter().all(|v| v.is_multiple_of(PAGE_SIZE));
        let fits = at.checked_add(pages.size()).is_some_and(|end| end <= self.size());
        (aligned && !pages.is_empty() && fits && self.inset.is_none())
            .then_some(Self { inset: Some((at, pages)), ..self })
    }

    pub fn size(&self) -> u64 {
        self.ram.size()
    }

    /// The whole RAM as one to three pieces, in offset order.
    pub fn pieces(&self) -> impl Iterator<Item = Piece> {
        let whole = Piece { offset: 0, len: self.size(), pa: self.ram.start };
        let [a, b, c] = match self.inset {
            None => [Some(whole), None, None],
            Some((at, pages)) => {
                let after = at + pages.size();
                [
                    Some(Piece { offset: 0, len: at, pa: self.ram.start }),
                    Some(Piece { offset: at, len: pages.size(), pa: pages.start }),
                    Some(Piece { offset: after, len: self.size() - after, pa: self.ram.start + after }),
                ]
            }
        };
        [a, b, c].into_iter().flatten().filter(|p| p.len > 0)
    }

    /// The parts of `[offset, offset + len)`, each clipped to its piece, in order; `None` if
    /// any of it is outside the RAM.
    pub fn locate(&self, offset: u64, len: u64) -> Option<impl Iterator<Item = Piece>> {
        let end = offset.checked_add(len)?;
        if end > self.size() {
            return None;
        }
        Some(self.pieces().filter_map(move |p| {
            let start = offset.max(p.offset);
            let stop = end.min(p.offset + p.len);
            (start < stop).then(|| Piece { offset: start, len: stop - start, pa: p.pa + (start - p.offset) })
        }))
    }

    /// The guest RAM offset held at physical address `pa`, if any piece holds it. The part
    /// of `ram` hidden behind the inset holds none: the guest cannot reach it.
    pub fn offset_of(&self, pa: u64) -> Option<u64> {
        self.pieces().find(|p| p.pa <= pa && pa - p.pa < p.len).map(|p| p.offset + (pa - p.pa))
    }
}

/// `[0x80000000..0xc0000000)`, and with an inset `... with +0x0..+0x1f6e000 at
/// [0x50000000..0x51f6e000)`.
impl fmt::Display for RamMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.ram)?;
        if let Some((at, pages)) = self.inset {
            write!(f, " with +{at:#x}..+{:#x} at {pages:?}", at + pages.size())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    fn ram() -> RamMap {
        RamMap::new(Range { start: 0x8000_0000, end: 0x8000_0000 + 64 * MIB })
    }
    fn module() -> Range {
        Range { start: 0x5000_0000, end: 0x5000_0000 + 3 * MIB }
    }

    #[test]
    fn without_inset_one_piece() {
        let m = ram();
        assert_eq!(m.pieces().collect::<Vec<_>>(), [Piece { offset: 0, len: 64 * MIB, pa: 0x8000_0000 }]);
        assert_eq!(m.offset_of(0x8000_1234), Some(0x1234));
        assert_eq!(m.offset_of(0x8000_0000 + 64 * MIB), None);
        assert_eq!(m.locate(64 * MIB - 4, 4).unwrap().collect::<Vec<_>>().len(), 1);
        assert!(m.locate(64 * MIB - 4, 5).is_none());
        assert!(m.locate(u64::MAX, 2).is_none());
    }

    #[test]
    fn inset_splits_the_ram_in_three() {
        let m = ram().with_inset(2 * MIB, module()).unwrap();
        assert_eq!(
            m.pieces().collect::<Vec<_>>(),
            [
                Piece { offset: 0, len: 2 * MIB, pa: 0x8000_0000 },
                Piece { offset: 2 * MIB, len: 3 * MIB, pa: 0x5000_0000 },
                Piece { offset: 5 * MIB, len: 59 * MIB, pa: 0x8000_0000 + 5 * MIB },
            ]
        );
        // A range across both edges of the window comes back in three parts, in order.
        let parts: Vec<_> = m.locate(2 * MIB - 8, 3 * MIB + 16).unwrap().collect();
        assert_eq!(
            parts,
            [
                Piece { offset: 2 * MIB - 8, len: 8, pa: 0x8000_0000 + 2 * MIB - 8 },
                Piece { offset: 2 * MIB, len: 3 * MIB, pa: 0x5000_0000 },
                Piece { offset: 5 * MIB, len: 8, pa: 0x8000_0000 + 5 * MIB },
            ]
        );
        assert_eq!(
            m.locate(2 * MIB + 16, 4).unwrap().collect::<Vec<_>>(),
            [Piece { offset: 2 * MIB + 16, len: 4, pa: 0x5000_0010 }]
        );
        // The module's pages are guest RAM; the RAM hidden behind them is not.
        assert_eq!(m.offset_of(0x5000_0010), Some(2 * MIB + 16));
        assert_eq!(m.offset_of(0x8000_0000 + 2 * MIB), None);
        assert_eq!(m.offset_of(0x8000_0000 + 5 * MIB), Some(5 * MIB));
        assert_eq!(m.to_string(), "[0x80000000..0x84000000) with +0x200000..+0x500000 at [0x50000000..0x50300000)");
    }

    #[test]
    fn inset_at_either_end() {
        let first = ram().with_inset(0, module()).unwrap();
        assert_eq!(first.pieces().count(), 2);
        assert_eq!(first.pieces().next().unwrap().pa, 0x5000_0000);
        let last = ram().with_inset(61 * MIB, module()).unwrap();
        assert_eq!(last.pieces().count(), 2);
        assert_eq!(last.pieces().last().unwrap(), Piece { offset: 61 * MIB, len: 3 * MIB, pa: 0x5000_0000 });
    }

    #[test]
    fn bad_insets_are_refused() {
        assert!(ram().with_inset(62 * MIB, module()).is_none(), "past the end");
        assert!(ram().with_inset(u64::MAX - 4095, module()).is_none(), "overflow");
        assert!(ram().with_inset(0x800, module()).is_none(), "offset not page aligned");
        let odd = Range { start: 0x5000_0800, end: 0x5000_1800 };
        assert!(ram().with_inset(0, odd).is_none(), "pages not page aligned");
        assert!(ram().with_inset(0, Range { start: 0x5000_0000, end: 0x5000_0000 }).is_none(), "empty");
        let once = ram().with_inset(0, module()).unwrap();
        assert!(once.with_inset(8 * MIB, module()).is_none(), "a second inset");
    }
}
