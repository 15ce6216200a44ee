//! Physical address ranges and small sorted sets of them: how the hypervisor works out which
//! RAM is free (memory banks minus reserved regions, the DTB, modules and its own image).
#![forbid(unsafe_code)]

use crate::util::FixedVec;
use core::fmt;

/// A half-open range `[start, end)` of physical addresses.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    /// `None` when `base + size` overflows.
    pub const fn from_base_size(base: u64, size: u64) -> Option<Self> {
        match base.checked_add(size) {
            Some(end) => Some(Self { start: base, end }),
            None => None,
        }
    }

    pub const fn size(&self) -> u64 {
        self.end - self.start
    }

    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    pub const fn contains_range(&self, other: &Range) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub const fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl fmt::Debug for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}..{:#x})", self.start, self.end)
    }
}

/// The set would need more than its capacity of disjoint ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooFragmented;

/// A set of addresses kept as at most `N` sorted, disjoint, non-adjacent ranges.
#[derive(Clone, Copy, Default)]
pub struct RangeSet<const N: usize> {
    ranges: FixedVec<Range, N>,
}

impl<const N: usize> RangeSet<N> {
    pub fn new() -> Self {
        Self { ranges: FixedVec::new() }
    }

    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    pub fn total(&self) -> u64 {
        self.ranges.iter().map(Range::size).sum()
    }

    pub fn contains_range(&self, r: &Range) -> bool {
        self.ranges.iter().any(|x| x.contains_range(r))
    }

    pub fn overlaps(&self, r: &Range) -> bool {
        self.ranges.iter().any(|x| x.overlaps(r))
    }

    /// Adds `r`, merging with the ranges it overlaps or touches.
    pub fn insert(&mut self, r: Range) -> Result<(), TooFragmented> {
        if r.is_empty() {
            return Ok(());
        }
        let mut merged = r;
        let mut i = 0;
        while i < self.ranges.len() {
            let x = self.ranges[i];
            if x.start <= merged.end && merged.start <= x.end {
                merged.start = merged.start.min(x.start);
                merged.end = merged.end.max(x.end);
                self.ranges.remove(i);
            } else {
                i += 1;
            }
        }
        let pos = self.ranges.iter().position(|x| x.start > merged.start).unwrap_or(self.ranges.len());
        self.ranges.insert(pos, merged).map_err(|_| TooFragmented)
    }

    /// Removes every address of `r`; a range split in two needs one more slot.
    pub fn remove(&mut self, r: Range) -> Result<(), TooFragmented> {
        if r.is_empty() {
            return Ok(());
        }
        let mut i = 0;
        while i < self.ranges.len() {
            let x = self.ranges[i];
            if !x.overlaps(&r) {
                i += 1;
                continue;
            }
            let left = Range { start: x.start, end: r.start.max(x.start) };
            let right = Range { start: r.end.min(x.end), end: x.end };
            self.ranges.remove(i);
            if !right.is_empty() {
                self.ranges.insert(i, right).map_err(|_| TooFragmented)?;
            }
            if !left.is_empty() {
                self.ranges.insert(i, left).map_err(|_| TooFragmented)?;
                i += 1;
            }
            if !right.is_empty() {
                i += 1;
            }
        }
        Ok(())
    }

    /// The lowest `align`-aligned range of `size` bytes inside the set at or above `min`.
    pub fn find_free(&self, size: u64, align: u64, min: u64) -> Option<Range> {
        self.ranges.iter().find_map(|x| {
            let start = x.start.max(min).checked_add(align - 1)? & !(align - 1);
            let r = Range::from_base_size(start, size)?;
            x.contains_range(&r).then_some(r)
        })
    }
}

impl<const N: usize> fmt::Debug for RangeSet<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.ranges.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    #[test]
    fn insert_merges_overlapping_and_adjacent() {
        let mut s: RangeSet<4> = RangeSet::new();
        s.insert(r(10, 20)).unwrap();
        s.insert(r(30, 40)).unwrap();
        s.insert(r(20, 25)).unwrap();
        assert_eq!(s.ranges(), &[r(10, 25), r(30, 40)]);
        s.insert(r(0, 35)).unwrap();
        assert_eq!(s.ranges(), &[r(0, 40)]);
        assert_eq!(s.total(), 40);
    }

    #[test]
    fn remove_splits_and_reports_fragmentation() {
        let mut s: RangeSet<2> = RangeSet::new();
        s.insert(r(0, 100)).unwrap();
        s.remove(r(10, 20)).unwrap();
        assert_eq!(s.ranges(), &[r(0, 10), r(20, 100)]);
        s.remove(r(0, 5)).unwrap();
        s.remove(r(90, 200)).unwrap();
        assert_eq!(s.ranges(), &[r(5, 10), r(20, 90)]);
        assert_eq!(s.remove(r(30, 40)), Err(TooFragmented));
        let mut t: RangeSet<2> = RangeSet::new();
        t.insert(r(0, 10)).unwrap();
        t.remove(r(0, 10)).unwrap();
        assert!(t.ranges().is_empty());
    }

    #[test]
    fn find_free_respects_alignment_and_minimum() {
        let mut s: RangeSet<4> = RangeSet::new();
        s.insert(r(0x1000, 0x3000)).unwrap();
        s.insert(r(0x20_0000, 0x60_0000)).unwrap();
        assert_eq!(s.find_free(0x1000, 0x1000, 0), Some(r(0x1000, 0x2000)));
        assert_eq!(s.find_free(0x20_0000, 0x20_0000, 0), Some(r(0x20_0000, 0x40_0000)));
        assert_eq!(s.find_free(0x20_0000, 0x20_0000, 0x20_0001), Some(r(0x40_0000, 0x60_0000)));
        assert_eq!(s.find_free(0x50_0000, 0x1000, 0), None);
        assert_eq!(s.find_free(0x1000, 0x1000, u64::MAX - 10), None);
    }

    #[test]
    fn range_overflow_is_detected() {
        assert!(Range::from_base_size(u64::MAX, 2).is_none());
        assert!(r(0, 10).overlaps(&r(9, 11)));
        assert!(!r(0, 10).overlaps(&r(10, 11)));
    }
}
