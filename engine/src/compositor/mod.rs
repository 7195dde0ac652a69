//! Compositors: apply updates onto the receiver's frame. [`CpuCompositor`] is the reference;
//! [`GpuCompositor`] keeps the frame in a wgpu texture and uploads only the dirty tiles.
//!
//! Both decode every tile of an update before touching the frame, so a bad update changes
//! nothing. A delta must match the frame it lands on (size and format); a keyframe may start a
//! new one.

mod cpu;
mod gpu;

pub use cpu::CpuCompositor;
pub use gpu::GpuCompositor;

use crate::frame::PARALLEL_MIN_TILES_TO_SCAN;
use crate::{
    apply_copies, parse_update, DecodeError, DecodeLimits, DecodedTiles, FrameBuffer, GpuError,
    PixelFormat, Rect, TileCache, UpdateHeader, BYTES_PER_PIXEL,
};
use rayon::prelude::*;
use thiserror::Error;

/// Why an update was not applied. The frame is unchanged.
#[derive(Debug, Error)]
pub enum ApplyError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("delta update before any keyframe")]
    NoKeyframe,
    #[error("delta update for {width}x{height} {format:?} onto a {frame_width}x{frame_height} {frame_format:?} frame")]
    ShapeMismatch {
        width: u32,
        height: u32,
        format: PixelFormat,
        frame_width: u32,
        frame_height: u32,
        frame_format: PixelFormat,
    },
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// Size and format of a compositor's frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameShape {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
}

impl ApplyError {
    /// Whether the update was well formed but needs what this receiver does not hold (a patch
    /// of another tile than the one held, a copy of other pixels, a tile not in its cache): the
    /// stream goes on from a keyframe.
    pub fn needs_keyframe(&self) -> bool {
        matches!(
            self,
            Self::Decode(
                DecodeError::BaseMismatch { .. }
                    | DecodeError::NoBase(_)
                    | DecodeError::CopySourceMismatch { .. }
                    | DecodeError::CacheMiss { .. }
            )
        )
    }
}

/// Parses `bytes`, checks the update fits `held` (the frame as held now, in CPU memory),
/// applies its copies to `held`, and decodes its tiles into `decoded`, patches applied to the
/// copied frame. Returns the header, whether the frame must be (re)made at the update's shape,
/// and where the copies wrote. On error `held` is as it was.
fn decode_for(
    bytes: &[u8],
    limits: &DecodeLimits,
    mut held: Option<&mut FrameBuffer>,
    decoded: &mut DecodedTiles,
    cache: &TileCache,
) -> Result<(UpdateHeader, bool, Vec<Rect>), ApplyError> {
    let current = held.as_ref().map(|f| FrameShape {
        width: f.width(),
        height: f.height(),
        format: f.format(),
    });
    let update = parse_update(bytes, limits)?;
    let h = update.header;
    let shape = FrameShape {
        width: h.width,
        height: h.height,
        format: h.format,
    };
    let reshape = current != Some(shape);
    if reshape && !h.keyframe {
        return Err(match current {
            None => ApplyError::NoKeyframe,
            Some(c) => ApplyError::ShapeMismatch {
                width: h.width,
                height: h.height,
                format: h.format,
                frame_width: c.width,
                frame_height: c.height,
                frame_format: c.format,
            },
        });
    }
    // Copies only come in deltas, which match the held frame's shape.
    let undo = match (&mut held, update.copies.is_empty()) {
        (Some(frame), false) => Some(apply_copies(frame, &update.copies)?),
        _ => None,
    };
    let base = held.as_ref().map(|f| f.as_frame());
    if let Err(e) = decoded.decode(&update, base.as_ref(), Some(cache)) {
        if let (Some(frame), Some(undo)) = (held, undo) {
            undo.restore(frame);
        }
        return Err(e.into());
    }
    Ok((h, reshape, update.copies.iter().map(|c| c.dst()).collect()))
}

/// Writes the decoded tiles into `frame` (the update's size), band by band; in parallel for
/// [`PARALLEL_MIN_TILES_TO_SCAN`] tiles or more.
fn write_tiles(frame: &mut FrameBuffer, decoded: &DecodedTiles, tile_size: u32) {
    let stride = frame.stride();
    let tile_size = tile_size as usize;
    let tiles = decoded.tiles();
    // Tiles are sorted by index, so each band's tiles are one run.
    let write_band = |(row, band): (usize, &mut [u8])| {
        let y0 = (row * tile_size) as u32;
        let start = tiles.partition_point(|t| t.rect.y < y0);
        let end = tiles.partition_point(|t| t.rect.y <= y0);
        for tile in &tiles[start..end] {
            let r = tile.rect;
            let len = r.width as usize * BYTES_PER_PIXEL;
            let x0 = r.x as usize * BYTES_PER_PIXEL;
            for (dy, src) in decoded.pixels(tile).chunks_exact(len).enumerate() {
                let at = dy * stride + x0;
                band[at..at + len].copy_from_slice(src);
            }
        }
    };
    let bands = frame.pixels_mut();
    if tiles.len() < PARALLEL_MIN_TILES_TO_SCAN {
        bands
            .chunks_mut(stride * tile_size)
            .enumerate()
            .for_each(write_band);
    } else {
        bands
            .par_chunks_mut(stride * tile_size)
            .enumerate()
            .for_each(write_band);
    }
}
