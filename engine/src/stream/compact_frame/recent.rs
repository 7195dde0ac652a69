//! A list of the `N` byte strings used most recently, most recent first, that both ends of a
//! connection keep alike: the palettes and the small lz4 blocks of compact messages, which a
//! compact message names by their place in it instead of repeating them.

/// The `N` entries used most recently, most recent first.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Recent<const N: usize> {
    entries: Vec<Vec<u8>>,
}

impl<const N: usize> Default for Recent<N> {
    fn default() -> Self {
        Self {
            entries: Vec::with_capacity(N),
        }
    }
}

impl<const N: usize> Recent<N> {
    /// Where `bytes` are in the list, if they are.
    pub(super) fn find(&self, bytes: &[u8]) -> Option<usize> {
        self.entries.iter().position(|e| e == bytes)
    }

    /// Entry `k`, where it is.
    pub(super) fn get(&self, k: usize) -> Option<&[u8]> {
        self.entries.get(k).map(Vec::as_slice)
    }

    /// Moves entry `k` to the front and returns it.
    pub(super) fn use_entry(&mut self, k: usize) -> Option<&[u8]> {
        if k >= self.entries.len() {
            return None;
        }
        self.entries[..=k].rotate_right(1);
        Some(&self.entries[0])
    }

    /// Puts `bytes` at the front: an equal entry moves there, else they come in and the least
    /// recently used entry of a full list drops out (its buffer is reused).
    pub(super) fn add(&mut self, bytes: &[u8]) {
        if let Some(k) = self.find(bytes) {
            self.use_entry(k);
            return;
        }
        let mut entry = if self.entries.len() == N {
            self.entries.pop().unwrap_or_default()
        } else {
            Vec::new()
        };
        entry.clear();
        entry.extend_from_slice(bytes);
        self.entries.insert(0, entry);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECENT_PALETTES: usize = 8;

    #[test]
    fn most_recently_used_first_and_the_oldest_drops_out() {
        let mut p = Recent::<RECENT_PALETTES>::default();
        assert_eq!(p.use_entry(0), None);
        for i in 0..RECENT_PALETTES as u8 {
            p.add(&[i; 4]);
        }
        assert_eq!(p.find(&[0; 4]), Some(RECENT_PALETTES - 1));
        assert_eq!(p.use_entry(RECENT_PALETTES - 1), Some(&[0u8; 4][..]));
        assert_eq!(p.find(&[0; 4]), Some(0));
        // Adding one more drops the least recently used: 1, now last.
        p.add(&[99; 4]);
        assert_eq!(p.find(&[1; 4]), None);
        assert_eq!(p.find(&[99; 4]), Some(0));
        // Adding colours already kept moves them to the front, keeping one entry.
        p.add(&[0; 4]);
        assert_eq!(p.find(&[0; 4]), Some(0));
        assert_eq!(p.find(&[99; 4]), Some(1));
        p.clear();
        assert_eq!(p.find(&[0; 4]), None);
    }
}
