//! [`CpuCompositor`]: the reference compositor, a framebuffer in CPU memory.

use super::{decode_for, ApplyError, FrameShape};
use crate::{DecodeLimits, DecodedTiles, FrameBuffer, UpdateHeader, BYTES_PER_PIXEL};
use rayon::prelude::*;

/// Applies updates onto a framebuffer in CPU memory.
#[derive(Debug, Default)]
pub struct CpuCompositor {
    limits: DecodeLimits,
    frame: Option<FrameBuffer>,
    decoded: DecodedTiles,
}

impl CpuCompositor {
    pub fn new(limits: DecodeLimits) -> Self {
        Self {
            limits,
            frame: None,
            decoded: DecodedTiles::new(),
        }
    }

    /// The frame as composited so far (none before the first keyframe).
    pub fn frame(&self) -> Option<&FrameBuffer> {
        self.frame.as_ref()
    }

    /// The tiles of the last applied update, decoded (for the frame checksum).
    pub fn decoded(&self) -> &DecodedTiles {
        &self.decoded
    }

    /// Applies one update message. On error the frame is unchanged.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<UpdateHeader, ApplyError> {
        let shape = self.frame.as_ref().map(|f| FrameShape {
            width: f.width(),
            height: f.height(),
            format: f.format(),
        });
        let (header, reshape) = decode_for(bytes, &self.limits, shape, &mut self.decoded)?;
        if reshape {
            self.frame = Some(
                FrameBuffer::new(header.width, header.height, header.format)
                    .expect("size was checked against the decode limits"),
            );
        }
        let frame = self
            .frame
            .as_mut()
            .expect("a frame exists after a keyframe");
        let stride = frame.stride();
        let tile_size = header.tile_size as usize;
        let decoded = &self.decoded;
        let tiles = decoded.tiles();
        // Tiles are sorted by index, so each band's tiles are one run.
        frame
            .pixels_mut()
            .par_chunks_mut(stride * tile_size)
            .enumerate()
            .for_each(|(row, band)| {
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
            });
        Ok(header)
    }
}
