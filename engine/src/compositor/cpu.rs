//! [`CpuCompositor`]: the reference compositor, a framebuffer in CPU memory.

use super::{decode_for, write_tiles, ApplyError};
use crate::{DecodeLimits, DecodedTiles, FrameBuffer, Rect, UpdateHeader};

/// Applies updates onto a framebuffer in CPU memory.
#[derive(Debug, Default)]
pub struct CpuCompositor {
    limits: DecodeLimits,
    frame: Option<FrameBuffer>,
    decoded: DecodedTiles,
    copied: Vec<Rect>,
}

impl CpuCompositor {
    pub fn new(limits: DecodeLimits) -> Self {
        Self {
            limits,
            frame: None,
            decoded: DecodedTiles::new(),
            copied: Vec::new(),
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

    /// Where the last applied update's copies wrote (for the frame checksum).
    pub fn copied(&self) -> &[Rect] {
        &self.copied
    }

    /// Applies one update message. On error the frame is unchanged.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<UpdateHeader, ApplyError> {
        let (header, reshape, copied) =
            decode_for(bytes, &self.limits, self.frame.as_mut(), &mut self.decoded)?;
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
        Ok(header)
    }
}
