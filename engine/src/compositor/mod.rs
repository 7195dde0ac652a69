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

use crate::{
    parse_update, DecodeError, DecodeLimits, DecodedTiles, GpuError, PixelFormat, UpdateHeader,
};
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

/// Parses and decodes `bytes` into `decoded`, and checks the update fits `current`.
/// Returns the header and whether the frame must be (re)made at the update's shape.
fn decode_for(
    bytes: &[u8],
    limits: &DecodeLimits,
    current: Option<FrameShape>,
    decoded: &mut DecodedTiles,
) -> Result<(UpdateHeader, bool), ApplyError> {
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
    decoded.decode(&update)?;
    Ok((h, reshape))
}
