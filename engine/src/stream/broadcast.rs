//! [`Broadcaster`]: what each viewer still needs, for latest-wins delivery.
//!
//! A viewer has at most `max_in_flight` updates unacknowledged. While it is at that limit, the
//! dirty masks of new frames are united into what it still needs, so when it is ready it gets
//! one update with the newest pixels of every tile that changed meanwhile — never a queue of
//! stale frames. Memory per viewer is one mask and `max_in_flight` sequence numbers.

use crate::DirtyMask;
use std::collections::{BTreeMap, VecDeque};
use thiserror::Error;

pub type ViewerId = u64;

/// What to send a viewer now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Send {
    /// Every tile (a join, a size change, a request).
    Keyframe,
    /// These tiles of the current frame.
    Delta(DirtyMask),
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BroadcastError {
    #[error("viewer {0} is unknown")]
    UnknownViewer(ViewerId),
    #[error("viewer {viewer} acknowledged {got}, but the oldest update in flight is {expected:?}")]
    UnexpectedAck {
        viewer: ViewerId,
        got: u64,
        expected: Option<u64>,
    },
}

#[derive(Debug)]
enum Pending {
    Keyframe,
    Tiles(DirtyMask),
}

#[derive(Debug)]
struct Viewer {
    pending: Pending,
    in_flight: VecDeque<u64>,
}

/// Per-viewer bookkeeping for one stream of frames.
#[derive(Debug)]
pub struct Broadcaster {
    viewers: BTreeMap<ViewerId, Viewer>,
    max_in_flight: usize,
    tiles: usize,
}

impl Broadcaster {
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            viewers: BTreeMap::new(),
            max_in_flight: max_in_flight.max(1),
            tiles: 0,
        }
    }

    /// A viewer joined: it gets a keyframe first.
    pub fn add(&mut self, id: ViewerId) {
        self.viewers.insert(
            id,
            Viewer {
                pending: Pending::Keyframe,
                in_flight: VecDeque::new(),
            },
        );
    }

    pub fn remove(&mut self, id: ViewerId) {
        self.viewers.remove(&id);
    }

    pub fn viewer_count(&self) -> usize {
        self.viewers.len()
    }

    /// A new frame changed the tiles of `mask`. A mask over another number of tiles than the
    /// last means a new frame size or tile grid: every viewer needs a keyframe.
    pub fn on_frame(&mut self, mask: &DirtyMask) {
        let resized = mask.len() != self.tiles;
        self.tiles = mask.len();
        for v in self.viewers.values_mut() {
            match &mut v.pending {
                _ if resized => v.pending = Pending::Keyframe,
                Pending::Keyframe => {}
                Pending::Tiles(p) => p.union_with(mask),
            }
        }
    }

    /// Every viewer gets a keyframe next (a new frame size, stop/start sharing, a refresh).
    pub fn request_keyframes(&mut self) {
        for v in self.viewers.values_mut() {
            v.pending = Pending::Keyframe;
        }
    }

    pub fn request_keyframe(&mut self, id: ViewerId) -> Result<(), BroadcastError> {
        self.viewer(id)?.pending = Pending::Keyframe;
        Ok(())
    }

    /// The viewer applied update `sequence`; acknowledgements come in order.
    pub fn on_ack(&mut self, id: ViewerId, sequence: u64) -> Result<(), BroadcastError> {
        let v = self.viewer(id)?;
        if v.in_flight.front() != Some(&sequence) {
            return Err(BroadcastError::UnexpectedAck {
                viewer: id,
                got: sequence,
                expected: v.in_flight.front().copied(),
            });
        }
        v.in_flight.pop_front();
        Ok(())
    }

    /// What to send `id` now, if it has room and needs anything; the caller then sends it and
    /// calls [`Self::sent`]. Taking it clears what the viewer needs.
    pub fn take(&mut self, id: ViewerId) -> Option<Send> {
        let (max, tiles) = (self.max_in_flight, self.tiles);
        let v = self.viewers.get_mut(&id)?;
        if v.in_flight.len() >= max || tiles == 0 {
            return None;
        }
        match std::mem::replace(&mut v.pending, Pending::Tiles(DirtyMask::new(tiles))) {
            Pending::Keyframe => Some(Send::Keyframe),
            Pending::Tiles(mask) if mask.none() => {
                v.pending = Pending::Tiles(mask);
                None
            }
            Pending::Tiles(mask) => Some(Send::Delta(mask)),
        }
    }

    /// Update `sequence` went to `id`.
    pub fn sent(&mut self, id: ViewerId, sequence: u64) {
        if let Some(v) = self.viewers.get_mut(&id) {
            v.in_flight.push_back(sequence);
        }
    }

    /// Viewers that would get something from [`Self::take`] now.
    pub fn ready(&self) -> Vec<ViewerId> {
        self.viewers
            .iter()
            .filter(|(_, v)| {
                self.room_in(v)
                    && self.tiles > 0
                    && match &v.pending {
                        Pending::Keyframe => true,
                        Pending::Tiles(m) => !m.none(),
                    }
            })
            .map(|(&id, _)| id)
            .collect()
    }

    /// Whether `id` has updates it has not acknowledged.
    pub fn owes(&self, id: ViewerId) -> bool {
        self.viewers
            .get(&id)
            .is_some_and(|v| !v.in_flight.is_empty())
    }

    /// Whether `id` could take an update now (fewer than `max_in_flight` unacknowledged).
    pub fn has_room(&self, id: ViewerId) -> bool {
        self.viewers.get(&id).is_some_and(|v| self.room_in(v))
    }

    /// Whether some viewer could take an update now (fewer than `max_in_flight` unacknowledged).
    pub fn has_capacity(&self) -> bool {
        self.viewers.values().any(|v| self.room_in(v))
    }

    fn room_in(&self, v: &Viewer) -> bool {
        v.in_flight.len() < self.max_in_flight
    }

    /// Whether every viewer has everything acknowledged and nothing pending.
    pub fn all_caught_up(&self) -> bool {
        self.viewers
            .values()
            .all(|v| v.in_flight.is_empty() && matches!(&v.pending, Pending::Tiles(m) if m.none()))
    }

    fn viewer(&mut self, id: ViewerId) -> Result<&mut Viewer, BroadcastError> {
        self.viewers
            .get_mut(&id)
            .ok_or(BroadcastError::UnknownViewer(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(len: usize, bits: &[usize]) -> DirtyMask {
        let mut m = DirtyMask::new(len);
        bits.iter().for_each(|&b| m.set(b));
        m
    }

    #[test]
    fn join_gets_keyframe_then_deltas() {
        let mut b = Broadcaster::new(1);
        b.add(1);
        assert_eq!(b.take(1), None, "nothing before the first frame");
        b.on_frame(&mask(8, &[0]));
        assert_eq!(b.take(1), Some(Send::Keyframe));
        b.sent(1, 0);
        b.on_frame(&mask(8, &[2]));
        assert_eq!(b.take(1), None, "one in flight");
        b.on_ack(1, 0).unwrap();
        assert_eq!(b.take(1), Some(Send::Delta(mask(8, &[2]))));
    }

    #[test]
    fn a_slow_viewer_gets_the_union_and_a_fast_one_each_frame() {
        let mut b = Broadcaster::new(1);
        b.add(1);
        b.add(2);
        b.on_frame(&mask(8, &[]));
        for id in [1, 2] {
            assert_eq!(b.take(id), Some(Send::Keyframe));
            b.sent(id, 0);
        }
        b.on_ack(2, 0).unwrap();
        for (seq, bit) in [(1u64, 1usize), (2, 5), (3, 1)] {
            b.on_frame(&mask(8, &[bit]));
            assert_eq!(b.take(2), Some(Send::Delta(mask(8, &[bit]))));
            b.sent(2, seq);
            b.on_ack(2, seq).unwrap();
        }
        assert_eq!(
            b.ready(),
            Vec::<ViewerId>::new(),
            "viewer 1 still has its keyframe in flight"
        );
        b.on_ack(1, 0).unwrap();
        assert_eq!(b.ready(), vec![1]);
        assert_eq!(b.take(1), Some(Send::Delta(mask(8, &[1, 5]))));
        b.sent(1, 3);
        b.on_ack(1, 3).unwrap();
        assert!(b.all_caught_up());
    }

    #[test]
    fn resize_and_request_mean_keyframes_and_acks_are_checked() {
        let mut b = Broadcaster::new(2);
        b.add(1);
        b.on_frame(&mask(8, &[]));
        assert_eq!(b.take(1), Some(Send::Keyframe));
        b.sent(1, 0);
        b.on_frame(&mask(8, &[3]));
        b.on_frame(&mask(12, &[3]));
        assert_eq!(b.take(1), Some(Send::Keyframe), "new grid");
        b.sent(1, 1);
        assert_eq!(b.take(1), None, "two in flight");
        assert!(matches!(
            b.on_ack(1, 1),
            Err(BroadcastError::UnexpectedAck {
                expected: Some(0),
                ..
            })
        ));
        b.on_ack(1, 0).unwrap();
        b.request_keyframe(1).unwrap();
        assert_eq!(b.take(1), Some(Send::Keyframe));
        assert_eq!(b.on_ack(9, 0), Err(BroadcastError::UnknownViewer(9)));
        assert_eq!(b.request_keyframe(9), Err(BroadcastError::UnknownViewer(9)));
    }
}
