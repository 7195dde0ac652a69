//! A frame message: what one unidirectional stream from sender to viewer carries — a 28-byte
//! header (magic `TSF1`, sequence u64, capture time u64 in microseconds of the sender's clock,
//! whole-frame checksum u64) followed by one update message.

use crate::{Capabilities, MIN_TILE_SIZE, TILE_HEADER_LEN, UPDATE_HEADER_LEN};
use thiserror::Error;

pub const FRAME_MAGIC: [u8; 4] = *b"TSF1";
pub const FRAME_HEADER_LEN: usize = 28;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub sequence: u64,
    /// When the frame was captured, in microseconds of the sender's clock.
    pub capture_time_us: u64,
    /// [`crate::FrameChecksum`] of the whole frame after this update.
    pub checksum: u64,
}

impl FrameHeader {
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&FRAME_MAGIC);
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&self.capture_time_us.to_le_bytes());
        out.extend_from_slice(&self.checksum.to_le_bytes());
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameMessageError {
    #[error("frame message of {0} bytes is shorter than its header")]
    Truncated(usize),
    #[error("not a frame message (magic {0:02x?})")]
    BadMagic([u8; 4]),
}

/// Splits a frame message into its header and the update it carries.
pub fn split_frame_message(bytes: &[u8]) -> Result<(FrameHeader, &[u8]), FrameMessageError> {
    if bytes.len() < FRAME_HEADER_LEN {
        return Err(FrameMessageError::Truncated(bytes.len()));
    }
    let magic: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
    if magic != FRAME_MAGIC {
        return Err(FrameMessageError::BadMagic(magic));
    }
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let header = FrameHeader {
        sequence: u64_at(4),
        capture_time_us: u64_at(12),
        checksum: u64_at(20),
    };
    Ok((header, &bytes[FRAME_HEADER_LEN..]))
}

/// The most bytes a valid frame message can have for a viewer with these capabilities: every
/// tile of the largest frame, in the smallest tiles, at lz4's worst-case size. A receiver reads
/// no more than this from one stream.
pub fn max_frame_message_len(caps: &Capabilities) -> usize {
    let pixels = caps
        .max_pixels
        .min(u64::from(caps.max_width) * u64::from(caps.max_height)) as usize;
    let tile = MIN_TILE_SIZE as usize;
    let tiles =
        (caps.max_width as usize).div_ceil(tile) * (caps.max_height as usize).div_ceil(tile);
    let tiles = tiles.min(pixels);
    // lz4's bound is n + n/255 + 16 a block.
    let payload = pixels * 4 + pixels * 4 / 255 + tiles * 16;
    FRAME_HEADER_LEN + UPDATE_HEADER_LEN + tiles * TILE_HEADER_LEN + payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_errors() {
        let h = FrameHeader {
            sequence: 5,
            capture_time_us: 6,
            checksum: 7,
        };
        let mut bytes = Vec::new();
        h.write(&mut bytes);
        bytes.extend_from_slice(b"update");
        assert_eq!(split_frame_message(&bytes).unwrap(), (h, &b"update"[..]));
        assert_eq!(
            split_frame_message(&bytes[..27]),
            Err(FrameMessageError::Truncated(27))
        );
        bytes[0] = b'X';
        assert!(matches!(
            split_frame_message(&bytes),
            Err(FrameMessageError::BadMagic(_))
        ));
    }

    #[test]
    fn bound_holds_a_raw_keyframe_of_the_largest_frame() {
        let caps = Capabilities::with_limits(&crate::DecodeLimits {
            max_width: 1000,
            max_height: 100,
            max_pixels: 100_000,
        });
        let bound = max_frame_message_len(&caps);
        let tiles = 1000usize.div_ceil(16) * 100usize.div_ceil(16);
        assert!(bound >= FRAME_HEADER_LEN + UPDATE_HEADER_LEN + tiles * TILE_HEADER_LEN + 400_000);
        assert!(bound < 500_000);
    }
}
