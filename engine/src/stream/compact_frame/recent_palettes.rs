//! The colours of the palette bodies of compact messages since the last canonical message: a
//! palette body whose colours are kept names them by their place in the list instead.

/// How many palettes both ends keep.
pub(super) const RECENT_PALETTES: usize = 8;

/// The colours of the palette bodies of compact messages since the last canonical message,
/// most recently used first; both ends keep the same list.
#[derive(Default)]
pub(super) struct RecentPalettes(Vec<Vec<u8>>);

impl RecentPalettes {
    /// Where `colours` are in the list, if they are.
    pub(super) fn find(&self, colours: &[u8]) -> Option<usize> {
        self.0.iter().position(|c| c == colours)
    }

    /// Moves entry `k` to the front and returns its colours.
    pub(super) fn use_entry(&mut self, k: usize) -> Option<&[u8]> {
        if k >= self.0.len() {
            return None;
        }
        let colours = self.0.remove(k);
        self.0.insert(0, colours);
        Some(&self.0[0])
    }

    /// Puts new `colours` at the front (any equal entry moves there).
    pub(super) fn add(&mut self, colours: &[u8]) {
        match self.find(colours) {
            Some(k) => {
                self.use_entry(k);
            }
            None => {
                if self.0.len() == RECENT_PALETTES {
                    self.0.pop();
                }
                self.0.insert(0, colours.to_vec());
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_recently_used_first_and_the_oldest_drops_out() {
        let mut p = RecentPalettes::default();
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
