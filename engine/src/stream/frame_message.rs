//! A frame message: what one unidirectional stream from sender to viewer carries — a 28-byte
//! header (magic `TSF1`, sequence u64, capture time u64 in microseconds of the sender's clock,
//! whole-frame checksum u64) followed by one update message. A receiver reads the two headers,
//! checks the declared frame size against its limits, and then reads no more than
//! [`frame_message_bound`] of that size.

use crate::{MIN_TILE_SIZE, TILE_HEADER_LEN, UPDATE_HEADER_LEN};
use thiserror::Error;

pub const FRAME_MAGIC: [u8; 4] = *b"TSF1";
pub const FRAME_HEADER_LEN: usize = 28;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub sequence: u64,
    /// When the frame was captured, in microseconds of the sender's clock.
    pub capture_time_us: u64,
    /// [`crate::stream::FrameChecksum`] of the whole frame after this update.
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

/// The most bytes a valid frame message for a `width` x `height` frame can have: every tile in
/// the smallest tiles, at lz4's worst-case size, each with a patch header, and a full copy
/// section.
pub fn frame_message_bound(width: u32, height: u32) -> usize {
    let pixels = width as usize * height as usize;
    let tile = MIN_TILE_SIZE as usize;
    let tiles = (width as usize).div_ceil(tile) * (height as usize).div_ceil(tile);
    // lz4's bound is n + n/255 + 16 a block.
    let payload = pixels * 4 + pixels * 4 / 255 + tiles * (16 + crate::PATCH_HEADER_LEN);
    let copies = 1 + crate::MAX_COPIES * crate::COPY_LEN;
    FRAME_HEADER_LEN + UPDATE_HEADER_LEN + copies + tiles * TILE_HEADER_LEN + payload
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
        let bound = frame_message_bound(1000, 100);
        let tiles = 1000usize.div_ceil(16) * 100usize.div_ceil(16);
        assert!(bound >= FRAME_HEADER_LEN + UPDATE_HEADER_LEN + tiles * TILE_HEADER_LEN + 400_000);
        assert!(bound < 500_000);
    }
}
