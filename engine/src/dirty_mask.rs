//! [`DirtyMask`]: one bit a tile, set where the tile changed.

/// A fixed-length bitset over the tiles of a [`crate::TileGrid`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirtyMask {
    words: Vec<u64>,
    len: usize,
}

impl DirtyMask {
    /// A mask of `len` clean tiles.
    pub fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// A mask of `len` dirty tiles.
    pub fn full(len: usize) -> Self {
        let mut mask = Self::new(len);
        mask.set_all();
        mask
    }

    /// A mask from per-tile flags (non-zero = dirty).
    pub fn from_flags(flags: &[u8]) -> Self {
        let mut mask = Self::new(flags.len());
        for (word, chunk) in mask.words.iter_mut().zip(flags.chunks(64)) {
            for (bit, &flag) in chunk.iter().enumerate() {
                *word |= u64::from(flag != 0) << bit;
            }
        }
        mask
    }

    /// A mask from little-endian 32-bit words (the GPU's layout); bits past `len` are ignored.
    pub fn from_u32_words(len: usize, words: &[u32]) -> Self {
        let mut mask = Self::new(len);
        for (i, word) in mask.words.iter_mut().enumerate() {
            let lo = words.get(2 * i).copied().unwrap_or(0);
            let hi = words.get(2 * i + 1).copied().unwrap_or(0);
            *word = u64::from(lo) | (u64::from(hi) << 32);
        }
        mask.clear_tail();
        mask
    }

    /// Number of tiles the mask covers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mask covers no tiles at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether tile `index` is dirty. Out-of-range indices are clean.
    pub fn get(&self, index: usize) -> bool {
        index < self.len && self.words[index / 64] & (1 << (index % 64)) != 0
    }

    /// Marks tile `index` dirty.
    ///
    /// # Panics
    /// If `index >= len()`.
    pub fn set(&mut self, index: usize) {
        assert!(
            index < self.len,
            "tile {index} outside a mask of {} tiles",
            self.len
        );
        self.words[index / 64] |= 1 << (index % 64);
    }

    /// Marks every tile dirty.
    pub fn set_all(&mut self) {
        self.words.fill(u64::MAX);
        self.clear_tail();
    }

    /// Marks every tile clean.
    pub fn clear(&mut self) {
        self.words.fill(0);
    }

    /// Number of dirty tiles.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether no tile is dirty.
    pub fn none(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Whether every tile is dirty.
    pub fn all(&self) -> bool {
        self.count() == self.len
    }

    /// Adds the dirty tiles of `other`.
    ///
    /// # Panics
    /// If the masks cover different numbers of tiles (they belong to different grids).
    pub fn union_with(&mut self, other: &DirtyMask) {
        assert_eq!(self.len, other.len, "union of masks over different grids");
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// Indices of the dirty tiles, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    i * 64 + bit
                })
            })
        })
    }

    fn clear_tail(&mut self) {
        let tail = self.len % 64;
        if tail != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << tail) - 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_iterate_count_union() {
        let mut a = DirtyMask::new(130);
        assert!(a.none());
        for i in [0, 63, 64, 129] {
            a.set(i);
        }
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 63, 64, 129]);
        assert_eq!(a.count(), 4);
        let mut b = DirtyMask::new(130);
        b.set(5);
        b.set(64);
        a.union_with(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 5, 63, 64, 129]);
        assert!(!a.get(130));
        let full = DirtyMask::full(130);
        assert_eq!(full.count(), 130);
        assert!(full.all());
        a.clear();
        assert!(a.none());
    }

    #[test]
    fn from_u32_words_ignores_bits_past_len() {
        let m = DirtyMask::from_u32_words(33, &[0x8000_0001, 0xFFFF_FFFF, 7]);
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![0, 31, 32]);
        assert_eq!(
            DirtyMask::from_flags(&[0, 1, 0, 2])
                .iter()
                .collect::<Vec<_>>(),
            vec![1, 3]
        );
    }
}
