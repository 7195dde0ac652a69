//! [`TileEncoder`]: packs the dirty tiles of a frame into an update, in parallel.

use super::update::{TileCodec, UpdateHeader};
use crate::{CpuFrame, DirtyMask, GridMismatch, TileGrid};
use rayon::prelude::*;
use thiserror::Error;

/// Why a frame could not be encoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    #[error(transparent)]
    GridMismatch(#[from] GridMismatch),
    #[error("dirty mask covers {mask} tiles, the grid has {grid}")]
    MaskMismatch { mask: usize, grid: usize },
}

/// What an encode produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeStats {
    pub tiles: usize,
    pub lz4_tiles: usize,
    pub raw_tiles: usize,
    /// Bytes of the tiles' pixels before compression.
    pub pixel_bytes: usize,
    /// Bytes of the update message written.
    pub message_bytes: usize,
}

/// Encodes dirty tiles; parallel over groups of tiles for all but tiny updates.
#[derive(Clone, Copy, Debug)]
pub struct TileEncoder {
    parallel: bool,
}

impl Default for TileEncoder {
    fn default() -> Self {
        Self { parallel: true }
    }
}

/// Fewer tiles than this are encoded on the calling thread.
const PARALLEL_MIN_TILES: usize = 8;

struct Scratch {
    tile: Vec<u8>,
    packed: Vec<u8>,
}

impl TileEncoder {
    pub fn single_threaded() -> Self {
        Self { parallel: false }
    }

    /// Appends an update with the tiles of `mask` to `out` (a frame header, say, may precede it).
    pub fn encode_delta(
        &self,
        frame: &CpuFrame<'_>,
        grid: &TileGrid,
        mask: &DirtyMask,
        sequence: u64,
        out: &mut Vec<u8>,
    ) -> Result<EncodeStats, EncodeError> {
        self.encode(frame, grid, mask, sequence, false, out)
    }

    /// Appends an update with every tile of the frame to `out`.
    pub fn encode_keyframe(
        &self,
        frame: &CpuFrame<'_>,
        grid: &TileGrid,
        sequence: u64,
        out: &mut Vec<u8>,
    ) -> Result<EncodeStats, EncodeError> {
        self.encode(
            frame,
            grid,
            &DirtyMask::full(grid.tile_count()),
            sequence,
            true,
            out,
        )
    }

    fn encode(
        &self,
        frame: &CpuFrame<'_>,
        grid: &TileGrid,
        mask: &DirtyMask,
        sequence: u64,
        keyframe: bool,
        out: &mut Vec<u8>,
    ) -> Result<EncodeStats, EncodeError> {
        grid.check_frame(frame.width(), frame.height())?;
        if mask.len() != grid.tile_count() {
            return Err(EncodeError::MaskMismatch {
                mask: mask.len(),
                grid: grid.tile_count(),
            });
        }
        let dirty: Vec<u32> = mask.iter().map(|i| i as u32).collect();
        let start = out.len();
        UpdateHeader {
            sequence,
            width: frame.width(),
            height: frame.height(),
            tile_size: grid.tile_size(),
            format: frame.format(),
            keyframe,
            tile_count: dirty.len() as u32,
        }
        .write(out);

        let new_scratch = || Scratch {
            tile: Vec::new(),
            packed: Vec::new(),
        };
        let mut stats = EncodeStats::default();
        if self.parallel && dirty.len() >= PARALLEL_MIN_TILES && rayon::current_num_threads() > 1 {
            // Groups of tiles, each written to its own buffer, joined in order: one allocation
            // a group, not a tile.
            let groups = rayon::current_num_threads() * 4;
            let per_group = dirty.len().div_ceil(groups).max(4);
            let parts: Vec<(Vec<u8>, EncodeStats)> = dirty
                .par_chunks(per_group)
                .map_init(new_scratch, |scratch, chunk| {
                    let mut part = Vec::new();
                    let mut s = EncodeStats::default();
                    for &index in chunk {
                        encode_tile(frame, grid, index, scratch, &mut part, &mut s);
                    }
                    (part, s)
                })
                .collect();
            for (part, s) in parts {
                out.extend_from_slice(&part);
                stats.add(&s);
            }
        } else {
            let mut scratch = new_scratch();
            for &index in &dirty {
                encode_tile(frame, grid, index, &mut scratch, out, &mut stats);
            }
        }
        stats.message_bytes = out.len() - start;
        Ok(stats)
    }
}

impl EncodeStats {
    fn add(&mut self, o: &EncodeStats) {
        self.tiles += o.tiles;
        self.lz4_tiles += o.lz4_tiles;
        self.raw_tiles += o.raw_tiles;
        self.pixel_bytes += o.pixel_bytes;
    }
}

fn encode_tile(
    frame: &CpuFrame<'_>,
    grid: &TileGrid,
    index: u32,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
    stats: &mut EncodeStats,
) {
    frame.copy_tile_canonical(&grid.tile_rect(index as usize), &mut scratch.tile);
    let tile = &scratch.tile;
    let packed = &mut scratch.packed;
    packed.resize(lz4_flex::block::get_maximum_output_size(tile.len()), 0);
    let (codec, payload) = match lz4_flex::block::compress_into(tile, packed) {
        Ok(n) if n < tile.len() => (TileCodec::Lz4, &packed[..n]),
        _ => (TileCodec::Raw, &tile[..]),
    };
    out.extend_from_slice(&index.to_le_bytes());
    out.push(codec.wire_code());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    stats.tiles += 1;
    stats.pixel_bytes += tile.len();
    match codec {
        TileCodec::Lz4 => stats.lz4_tiles += 1,
        TileCodec::Raw => stats.raw_tiles += 1,
    }
}
