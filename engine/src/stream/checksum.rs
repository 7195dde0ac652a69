//! [`FrameChecksum`]: a checksum of the whole frame that costs work only where tiles changed.
//!
//! Each tile's canonical pixels (rows packed, padding bytes of opaque formats set to 0xFF) are
//! hashed with XXH3-64; the frame's checksum is XXH3-64 of the tile hashes in index order. Both
//! ends update only the tiles an update carries, so a 4K frame with one changed tile costs one
//! tile hash plus 16 KiB of hash input.

use crate::frame::PARALLEL_MIN_TILES_TO_SCAN;
use crate::{CpuFrame, DecodedTiles, DirtyMask, TileGrid};
use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

/// Per-tile hashes of a frame and the checksum over them.
#[derive(Clone, Debug)]
pub struct FrameChecksum {
    grid: TileGrid,
    hashes: Vec<u64>,
}

impl FrameChecksum {
    /// Every tile hash zero until updated.
    pub fn new(grid: TileGrid) -> Self {
        Self {
            grid,
            hashes: vec![0; grid.tile_count()],
        }
    }

    /// A checksum whose tile hashes are `hashes` (one a tile of `grid`, else all zero).
    pub fn from_hashes(grid: TileGrid, hashes: Vec<u64>) -> Self {
        if hashes.len() == grid.tile_count() {
            Self { grid, hashes }
        } else {
            Self::new(grid)
        }
    }

    pub fn grid(&self) -> &TileGrid {
        &self.grid
    }

    /// Rehashes the tiles of `mask` from `frame` (same size as the grid).
    pub fn update_from_frame(&mut self, frame: &CpuFrame<'_>, mask: &DirtyMask) {
        let grid = self.grid;
        let dirty: Vec<usize> = mask.iter().collect();
        let hash = |scratch: &mut Vec<u8>, &i: &usize| {
            frame.copy_tile_canonical(&grid.tile_rect(i), scratch);
            (i, xxh3_64(scratch))
        };
        let hashes: Vec<(usize, u64)> = if dirty.len() < PARALLEL_MIN_TILES_TO_SCAN {
            let mut scratch = Vec::new();
            dirty.iter().map(|i| hash(&mut scratch, i)).collect()
        } else {
            dirty.par_iter().map_init(Vec::new, hash).collect()
        };
        for (i, h) in hashes {
            self.hashes[i] = h;
        }
    }

    /// Rehashes the tiles just decoded (they are canonical already).
    pub fn update_from_tiles(&mut self, tiles: &DecodedTiles) {
        let hash = |t: &crate::DecodedTile| (t.index as usize, xxh3_64(tiles.pixels(t)));
        let hashes: Vec<(usize, u64)> = if tiles.tiles().len() < PARALLEL_MIN_TILES_TO_SCAN {
            tiles.tiles().iter().map(hash).collect()
        } else {
            tiles.tiles().par_iter().map(hash).collect()
        };
        for (i, h) in hashes {
            self.hashes[i] = h;
        }
    }

    /// The tile hashes, in index order, taken out.
    pub fn into_hashes(self) -> Vec<u64> {
        self.hashes
    }

    /// Each tile's hash, in index order.
    pub fn hashes(&self) -> &[u64] {
        &self.hashes
    }

    /// The checksum of the whole frame.
    pub fn value(&self) -> u64 {
        xxh3_64(bytemuck::cast_slice(&self.hashes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_update, DecodeLimits, FrameBuffer, PixelFormat, TileEncoder};

    #[test]
    fn sender_and_receiver_agree_and_changes_show() {
        let grid = TileGrid::new(100, 70, 16).unwrap();
        let mut frame = FrameBuffer::new(100, 70, PixelFormat::Bgrx8).unwrap();
        for (i, b) in frame.pixels_mut().iter_mut().enumerate() {
            *b = (i % 253) as u8;
        }
        let all = DirtyMask::full(grid.tile_count());
        let mut sender = FrameChecksum::new(grid);
        sender.update_from_frame(&frame.as_frame(), &all);

        let mut msg = Vec::new();
        TileEncoder::default()
            .encode_keyframe(&frame.as_frame(), &grid, 0, &mut msg)
            .unwrap();
        let mut decoded = DecodedTiles::new();
        decoded
            .decode(
                &parse_update(&msg, &DecodeLimits::default()).unwrap(),
                None,
                None,
            )
            .unwrap();
        let mut receiver = FrameChecksum::new(grid);
        receiver.update_from_tiles(&decoded);
        assert_eq!(sender.value(), receiver.value());

        let before = sender.value();
        frame.pixels_mut()[0] ^= 1;
        let mut one = DirtyMask::new(grid.tile_count());
        one.set(0);
        sender.update_from_frame(&frame.as_frame(), &one);
        assert_ne!(sender.value(), before);
        // A change in the padding byte of an opaque format is no change.
        frame.pixels_mut()[0] ^= 1;
        sender.update_from_frame(&frame.as_frame(), &one);
        frame.pixels_mut()[3] ^= 0x40;
        let with_padding = {
            let mut c = sender.clone();
            c.update_from_frame(&frame.as_frame(), &one);
            c.value()
        };
        assert_eq!(with_padding, before);
    }
}
