//! When the capture thread compares the whole frame, whatever the OS's damage says.
//!
//! Damage only narrows the compare; the whole frame is compared now and then to catch what the
//! OS did not report. That costs a pass over two whole frames (about a seventh of the sender's
//! CPU while typing, once a second). So the interval starts at one second and doubles, up to
//! [`LONGEST`], each time a full compare finds nothing the damage had not reported; once one
//! finds a change the damage missed, it is back to one second. A source whose damage is
//! complete is checked rarely; one that misses changes is checked every second.

use std::time::{Duration, Instant};
use tessera_engine::DirtyMask;

/// The interval at first, and after a full compare found a change the damage missed.
pub const SHORTEST: Duration = Duration::from_secs(1);
/// The interval while the damage has been complete.
pub const LONGEST: Duration = Duration::from_secs(8);

/// The full compare's schedule.
#[derive(Clone, Copy, Debug)]
pub struct FullCompare {
    last: Instant,
    every: Duration,
}

impl FullCompare {
    /// A schedule whose first full compare is due `SHORTEST` after `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            last: now,
            every: SHORTEST,
        }
    }

    /// When the next full compare is due.
    pub fn next(&self) -> Instant {
        self.last + self.every
    }

    /// Whether a full compare is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next()
    }

    /// A full compare ran at `now` and found the tiles `found` changed, where the OS's damage
    /// touched the tiles `reported` (`None`: it gave none, and there is nothing to trust).
    pub fn done(&mut self, now: Instant, found: &DirtyMask, reported: Option<&DirtyMask>) {
        let missed = reported.is_some_and(|r| found.iter().any(|t| !r.get(t)));
        self.last = now;
        self.every = if missed {
            SHORTEST
        } else {
            (self.every * 2).min(LONGEST)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(tiles: &[usize]) -> DirtyMask {
        let mut m = DirtyMask::new(16);
        for &t in tiles {
            m.set(t);
        }
        m
    }

    #[test]
    fn complete_damage_stretches_the_interval_and_a_miss_resets_it() {
        let (found, reported) = (mask(&[2, 3]), mask(&[1, 2, 3]));
        let t0 = Instant::now();
        let mut s = FullCompare::new(t0);
        assert!(!s.due(t0));
        assert!(s.due(t0 + SHORTEST));
        let mut now = t0;
        let mut seen = Vec::new();
        for _ in 0..6 {
            now = s.next();
            assert!(s.due(now));
            // Everything found was reported (more was reported than changed: fine).
            s.done(now, &found, Some(&reported));
            seen.push(s.every.as_secs());
            assert!(!s.due(now + s.every - Duration::from_millis(1)));
        }
        assert_eq!(seen, [2, 4, 8, 8, 8, 8]);
        // Tile 5 changed and the damage did not say.
        s.done(now, &mask(&[2, 5]), Some(&reported));
        assert_eq!(s.every, SHORTEST);
        assert_eq!(s.next(), now + SHORTEST);
        // Without damage there is nothing to find missing: the interval stretches again.
        s.done(now, &mask(&[7]), None);
        assert_eq!(s.every, SHORTEST * 2);
    }
}
