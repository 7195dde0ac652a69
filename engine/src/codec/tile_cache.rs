//! The tile cache: tiles the receiver saw before, by content hash, so that content coming back
//! (a window moved back, a tab switched to again) travels as an 8-byte reference
//! ([`super::TileCodec::Cached`]).
//!
//! Both ends keep the same least-recently-used order over the same bytes without talking about
//! it: [`TileCache`] on the receiver holds the pixels, [`CacheModel`] on the sender only the
//! hashes, and both record every tile of every update in tile order, a keyframe clearing them
//! first. A reference to a tile the receiver does not hold (the two drifted after a rejected
//! update) is [`super::DecodeError::CacheMiss`], which asks for a keyframe; never a wrong
//! picture, since a hit is found by the hash of its own pixels.

use crate::{DecodedTiles, BYTES_PER_PIXEL};
use std::collections::{BTreeMap, HashMap};
use xxhash_rust::xxh3::xxh3_64;

/// The receiver's tile cache budget unless told otherwise: 64 MiB of pixels (4,096 tiles of
/// 64x64).
pub const TILE_CACHE_BYTES: u32 = 64 << 20;
/// The most a receiver may announce and a sender will model: 1 GiB.
pub const MAX_TILE_CACHE_BYTES: u32 = 1 << 30;

/// Least-recently-used order of tile hashes within a byte budget.
#[derive(Debug, Default)]
struct LruIndex {
    budget: u64,
    bytes: u64,
    clock: u64,
    /// Hash -> (last use, bytes).
    entries: HashMap<u64, (u64, u32)>,
    /// Last use -> hash, oldest first.
    order: BTreeMap<u64, u64>,
}

impl LruIndex {
    fn new(budget: u32) -> Self {
        Self {
            budget: u64::from(budget.min(MAX_TILE_CACHE_BYTES)),
            ..Self::default()
        }
    }

    fn contains(&self, hash: u64) -> bool {
        self.entries.contains_key(&hash)
    }

    /// Marks `hash` (a tile of `bytes`) used now, inserting it if new; returns the hashes
    /// evicted to stay within the budget. A tile larger than the budget is not kept.
    fn touch(&mut self, hash: u64, bytes: u32, evicted: &mut Vec<u64>) -> bool {
        self.clock += 1;
        if let Some((used, _)) = self.entries.get_mut(&hash) {
            self.order.remove(used);
            *used = self.clock;
            self.order.insert(self.clock, hash);
            return false;
        }
        if u64::from(bytes) > self.budget {
            return false;
        }
        while self.bytes + u64::from(bytes) > self.budget {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, b)) = self.entries.remove(&old) {
                self.bytes -= u64::from(b);
            }
            evicted.push(old);
        }
        self.entries.insert(hash, (self.clock, bytes));
        self.order.insert(self.clock, hash);
        self.bytes += u64::from(bytes);
        true
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.bytes = 0;
    }
}

/// The receiver's cache: pixels of tiles seen, by the XXH3-64 of their packed pixels.
#[derive(Debug, Default)]
pub struct TileCache {
    index: LruIndex,
    pixels: HashMap<u64, Vec<u8>>,
    evicted: Vec<u64>,
    /// Buffers of evicted tiles, reused for new ones.
    spare: Vec<Vec<u8>>,
}

impl TileCache {
    /// A cache of at most `budget` bytes of pixels (0: none; capped at
    /// [`MAX_TILE_CACHE_BYTES`]).
    pub fn new(budget: u32) -> Self {
        Self {
            index: LruIndex::new(budget),
            ..Self::default()
        }
    }

    /// The packed pixels of the tile whose hash is `hash`, if held.
    pub fn get(&self, hash: u64) -> Option<&[u8]> {
        self.pixels.get(&hash).map(Vec::as_slice)
    }

    /// Bytes of pixels held.
    pub fn bytes(&self) -> u64 {
        self.index.bytes
    }

    pub fn len(&self) -> usize {
        self.pixels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Records an applied update: a keyframe clears the cache first, then every decoded tile
    /// is used in tile order, as the sender's [`CacheModel::record`] does.
    pub fn record(&mut self, keyframe: bool, decoded: &DecodedTiles) {
        if self.index.budget == 0 {
            return;
        }
        if keyframe {
            self.index.clear();
            self.spare.extend(self.pixels.drain().map(|(_, v)| v));
        }
        for tile in decoded.tiles() {
            let pixels = decoded.pixels(tile);
            let hash = xxh3_64(pixels);
            self.evicted.clear();
            let inserted = self
                .index
                .touch(hash, pixels.len() as u32, &mut self.evicted);
            for old in self.evicted.drain(..) {
                if let Some(v) = self.pixels.remove(&old) {
                    self.spare.push(v);
                }
            }
            if inserted {
                let mut v = self.spare.pop().unwrap_or_default();
                v.clear();
                v.extend_from_slice(pixels);
                self.pixels.insert(hash, v);
            }
        }
        // Spare buffers beyond a keyframe's worth are not worth keeping.
        self.spare.truncate(64);
    }
}

/// The sender's picture of one viewer's [`TileCache`]: the same order over the same hashes,
/// without pixels.
#[derive(Debug, Default)]
pub struct CacheModel {
    index: LruIndex,
    evicted: Vec<u64>,
}

impl CacheModel {
    /// A model of a cache of `budget` bytes (what the viewer announced; 0: none).
    pub fn new(budget: u32) -> Self {
        Self {
            index: LruIndex::new(budget),
            evicted: Vec::new(),
        }
    }

    /// Whether the viewer can be sent a reference to the tile whose hash is `hash`.
    pub fn holds(&self, hash: u64) -> bool {
        self.index.contains(hash)
    }

    pub fn is_enabled(&self) -> bool {
        self.index.budget > 0
    }

    /// Tiles the model says the viewer holds.
    pub fn len(&self) -> usize {
        self.index.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.entries.is_empty()
    }

    /// Bytes of pixels the model says the viewer holds.
    pub fn bytes(&self) -> u64 {
        self.index.bytes
    }

    /// Records an update sent to the viewer: a keyframe clears the model first, then each
    /// tile `(hash, width, height)` in tile order, as [`TileCache::record`] does.
    pub fn record(&mut self, keyframe: bool, tiles: impl IntoIterator<Item = (u64, u32, u32)>) {
        if self.index.budget == 0 {
            return;
        }
        if keyframe {
            self.index.clear();
        }
        for (hash, width, height) in tiles {
            self.evicted.clear();
            let bytes = width as usize * height as usize * BYTES_PER_PIXEL;
            self.index.touch(hash, bytes as u32, &mut self.evicted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_within_the_budget() {
        let mut lru = LruIndex::new(3 * 100);
        let mut ev = Vec::new();
        for h in [1, 2, 3] {
            assert!(lru.touch(h, 100, &mut ev));
        }
        assert!(ev.is_empty());
        assert!(!lru.touch(1, 100, &mut ev), "a use, not an insert");
        assert!(lru.touch(4, 100, &mut ev));
        assert_eq!(ev, vec![2], "2 was used least recently");
        assert!(lru.contains(1) && lru.contains(3) && lru.contains(4) && !lru.contains(2));
        ev.clear();
        assert!(lru.touch(5, 200, &mut ev));
        assert_eq!(ev, vec![3, 1]);
        assert_eq!(lru.bytes, 300);
        assert!(!lru.touch(6, 301, &mut ev), "larger than the whole budget");
        lru.clear();
        assert!(!lru.contains(5));
        assert_eq!(lru.bytes, 0);
    }

    #[test]
    fn no_budget_keeps_nothing() {
        let mut model = CacheModel::new(0);
        model.record(true, [(7, 64, 64)]);
        assert!(!model.holds(7));
        assert!(!model.is_enabled());
    }

    #[test]
    fn budget_is_capped() {
        assert_eq!(
            LruIndex::new(u32::MAX).budget,
            u64::from(MAX_TILE_CACHE_BYTES)
        );
    }
}
