//! Fixed-capacity containers for code that runs before the heap exists (DTB discovery, the
//! early page tables). Pushing past the capacity is an error the caller reports, never a
//! silent truncation.
#![forbid(unsafe_code)]

use core::ops::{Deref, DerefMut};

/// A vector of at most `N` `Copy` items, stored inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FixedVec<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

/// The container was full; the rejected item is handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T: Copy + Default, const N: usize> FixedVec<T, N> {
    pub fn new() -> Self {
        Self { items: [T::default(); N], len: 0 }
    }

    pub const fn capacity(&self) -> usize {
        N
    }

    pub fn push(&mut self, item: T) -> Result<(), Full<T>> {
        let slot = self.items.get_mut(self.len).ok_or(Full(item))?;
        *slot = item;
        self.len += 1;
        Ok(())
    }

    pub fn insert(&mut self, index: usize, item: T) -> Result<(), Full<T>> {
        assert!(index <= self.len, "FixedVec::insert past the end");
        if self.len == N {
            return Err(Full(item));
        }
        self.items.copy_within(index..self.len, index + 1);
        self.items[index] = item;
        self.len += 1;
        Ok(())
    }

    pub fn remove(&mut self, index: usize) -> T {
        assert!(index < self.len, "FixedVec::remove past the end");
        let item = self.items[index];
        self.items.copy_within(index + 1..self.len, index);
        self.len -= 1;
        item
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps the first `len` items (no-op if there are fewer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

impl<T: Copy + Default, const N: usize> Default for FixedVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + Default, const N: usize> Deref for FixedVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items[..self.len]
    }
}

impl<T: Copy + Default, const N: usize> DerefMut for FixedVec<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }
}

impl<T: Copy + Default + core::fmt::Debug, const N: usize> core::fmt::Debug for FixedVec<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_insert_remove_and_full() {
        let mut v: FixedVec<u32, 3> = FixedVec::new();
        v.push(1).unwrap();
        v.push(3).unwrap();
        v.insert(1, 2).unwrap();
        assert_eq!(&*v, &[1, 2, 3]);
        assert_eq!(v.push(4), Err(Full(4)));
        assert_eq!(v.insert(0, 0), Err(Full(0)));
        assert_eq!(v.remove(0), 1);
        assert_eq!(&*v, &[2, 3]);
    }
}
