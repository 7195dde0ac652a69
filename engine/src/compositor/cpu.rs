//! [`CpuCompositor`]: the reference compositor, a framebuffer in CPU memory.

use super::{decode_for, write_tiles, ApplyError};
use crate::{DecodeLimits, DecodedTiles, FrameBuffer, Rect, TileCache, UpdateHeader};

/// Applies updates onto a framebuffer in CPU memory.
#[derive(Debug, Default)]
pub struct CpuCompositor {
    limits: DecodeLimits,
    frame: Option<FrameBuffer>,
    decoded: DecodedTiles,
    copied: Vec<Rect>,
    cache: TileCache,
}

impl CpuCompositor {
    pub fn new(limits: DecodeLimits) -> Self {
        Self {
            limits,
            frame: None,
            decoded: DecodedTiles::new(),
            copied: Vec::new(),
            cache: TileCache::new(0),
        }
    }

    /// The same compositor with a tile cache of `budget` bytes (what the receiver announces).
    pub fn with_tile_cache(mut self, budget: u32) -> Self {
        self.cache = TileCache::new(budget);
        self
    }

    /// The tile cache (empty without one).
    pub fn tile_cache(&self) -> &TileCache {
        &self.cache
    }

    /// The frame as composited so far (none before the first keyframe).
    pub fn frame(&self) -> Option<&FrameBuffer> {
        self.frame.as_ref()
    }

    /// The tiles of the last applied update, decoded (for the frame checksum).
    pub fn decoded(&self) -> &DecodedTiles {
        &self.decoded
    }

    /// Where the last applied update's copies wrote (for the frame checksum).
    pub fn copied(&self) -> &[Rect] {
        &self.copied
    }

    /// Applies one update message. On error the frame is unchanged.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<UpdateHeader, ApplyError> {
        let (header, reshape, copied) = decode_for(
            bytes,
            &self.limits,
            self.frame.as_mut(),
            &mut self.decoded,
            &self.cache,
        )?;
        self.copied = copied;
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
        write_tiles(frame, &self.decoded, header.tile_size);
        self.cache.record(header.keyframe, &self.decoded);
        Ok(header)
    }
}
