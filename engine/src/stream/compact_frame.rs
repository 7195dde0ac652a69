//! The compact form of a delta frame message: the same message in fewer bytes, for the small
//! updates of typing and pointer moves, where the 56 bytes of the two fixed headers and 9 bytes
//! a tile record would outweigh the pixels.
//!
//! A sender's [`FramePacker`] (one per viewer) turns each canonical frame message (frame
//! header, then update message) into its wire form, and the viewer's [`FrameUnpacker`] turns it
//! back, byte for byte, before the update is parsed and checked as ever. Keyframes, and any
//! message whose frame differs from the previous message's, travel canonical; a delta of the
//! same frame travels compact:
//!
//! | field | bytes | meaning |
//! |---|---|---|
//! | tag | 1 | `0xC5` (a canonical message starts with `T`) |
//! | sequence step | varint | sequence minus the previous message's |
//! | time step | varint | capture time minus the previous message's, zigzag |
//! | checksum | 8 | the frame checksum, as in the frame header |
//! | flags | 1 | the update's flags (never a keyframe) |
//! | tile count | varint | |
//! | copies | | with flag bit 1: as in the update message |
//! | records | | per tile: index step (index minus the previous record's index plus one, zigzag; the first counts from 0) as a varint, codec `u8`, payload length varint, payload |
//!
//! Width, height, tile size and format are the previous message's. Payloads are as in the update
//! message, except that the patch header of patches, rects and palette rects (codecs 3, 4, 6)
//! gives its rectangle as four bytes (`x`, `y`, `width - 1`, `height - 1`; tiles are at most 256
//! pixels) instead of four `u16`s. Varints are LEB128, at most 10 bytes.
//!
//! Both ends see every message in the same order (a viewer reads each one, applied or not), so
//! the previous message is the same on both.

use super::frame_message::{frame_message_bound, FRAME_HEADER_LEN, FRAME_MAGIC};
use crate::codec::{COPY_LEN, MAX_COPIES, PATCH_HEADER_LEN, TILE_HEADER_LEN, UPDATE_HEADER_LEN};
use crate::{TileCodec, TileGrid, UPDATE_MAGIC};
use std::sync::Arc;
use thiserror::Error;

/// The first byte of a compact frame message.
pub const COMPACT_TAG: u8 = 0xC5;

const FLAG_KEYFRAME: u8 = 1;
const FLAG_COPIES: u8 = 2;
/// Bytes a compact patch header saves: its rectangle in 4 bytes instead of 8.
const PATCH_SAVING: usize = 4;

/// What a message declared that the next compact one leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Context {
    sequence: u64,
    capture_time_us: u64,
    width: u32,
    height: u32,
    tile_size: u16,
    format: u8,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CompactError {
    #[error("a compact frame message before any canonical one")]
    NoContext,
    #[error("compact frame message cut short")]
    Truncated,
    #[error("bad varint in a compact frame message")]
    BadVarint,
    #[error("compact frame message: {0}")]
    Invalid(&'static str),
    #[error("not a frame message (first byte {0:#04x})")]
    UnknownForm(u8),
}

/// The canonical message's fields a packer needs, if it is well formed.
struct Canonical<'a> {
    context: Context,
    checksum: [u8; 8],
    flags: u8,
    tile_count: u32,
    copies: &'a [u8],
    records: &'a [u8],
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// The context and parts of a canonical message; `None` if it is not one the compact form can
/// stand for (too short, wrong magic, a copy section cut short, two sequence numbers).
fn canonical(message: &[u8]) -> Option<Canonical<'_>> {
    let headers = FRAME_HEADER_LEN + UPDATE_HEADER_LEN;
    if message.len() < headers
        || message[..4] != FRAME_MAGIC
        || message[FRAME_HEADER_LEN..FRAME_HEADER_LEN + 4] != UPDATE_MAGIC
    {
        return None;
    }
    let u = FRAME_HEADER_LEN;
    let flags = message[u + 23];
    let mut at = headers;
    let copies = if flags & FLAG_COPIES != 0 {
        let count = *message.get(at)? as usize;
        let end = at + 1 + count * COPY_LEN;
        let copies = message.get(at..end)?;
        at = end;
        copies
    } else {
        &[]
    };
    // The compact form carries one sequence number for both headers.
    if u64_at(message, u + 4) != u64_at(message, 4) {
        return None;
    }
    Some(Canonical {
        context: Context {
            sequence: u64_at(message, 4),
            capture_time_us: u64_at(message, 12),
            width: u32_at(message, u + 12),
            height: u32_at(message, u + 16),
            tile_size: u16_at(message, u + 20),
            format: message[u + 22],
        },
        checksum: message[20..28].try_into().expect("8 bytes"),
        flags,
        tile_count: u32_at(message, u + 24),
        copies,
        records: &message[at..],
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// Turns a viewer's canonical frame messages into their wire form, in the order they are sent.
#[derive(Default)]
pub struct FramePacker {
    previous: Option<Context>,
}

impl FramePacker {
    /// The wire form of `message`: the same allocation when it goes canonical (a keyframe, a
    /// new frame size), else its compact form.
    pub fn pack(&mut self, message: Arc<Vec<u8>>) -> Arc<Vec<u8>> {
        let Some(parts) = canonical(&message) else {
            // Not a message the compact form can stand for: it goes as it is, and the next
            // compact message needs a canonical one first.
            self.previous = None;
            return message;
        };
        let previous = self.previous.replace(parts.context);
        let same_frame = previous.is_some_and(|p| {
            (p.width, p.height, p.tile_size, p.format)
                == (
                    parts.context.width,
                    parts.context.height,
                    parts.context.tile_size,
                    parts.context.format,
                )
        });
        match previous {
            Some(p) if same_frame && parts.flags & FLAG_KEYFRAME == 0 => {
                match compact(&parts, &p) {
                    Some(packed) => Arc::new(packed),
                    None => message,
                }
            }
            _ => message,
        }
    }
}

/// The compact form of a delta, or `None` where its records do not parse (it then goes
/// canonical, for the viewer to refuse).
fn compact(parts: &Canonical<'_>, previous: &Context) -> Option<Vec<u8>> {
    let c = &parts.context;
    let mut out = Vec::with_capacity(32 + parts.copies.len() + parts.records.len());
    out.push(COMPACT_TAG);
    put_varint(&mut out, c.sequence.wrapping_sub(previous.sequence));
    put_varint(
        &mut out,
        zigzag(c.capture_time_us.wrapping_sub(previous.capture_time_us) as i64),
    );
    out.extend_from_slice(&parts.checksum);
    out.push(parts.flags);
    put_varint(&mut out, u64::from(parts.tile_count));
    out.extend_from_slice(parts.copies);
    let mut records = parts.records;
    let mut next_index = 0i64;
    for _ in 0..parts.tile_count {
        if records.len() < TILE_HEADER_LEN {
            return None;
        }
        let index = u32_at(records, 0);
        let code = records[4];
        let len = u32_at(records, 5) as usize;
        let payload = records.get(TILE_HEADER_LEN..TILE_HEADER_LEN + len)?;
        records = &records[TILE_HEADER_LEN + len..];
        put_varint(&mut out, zigzag(i64::from(index) - next_index));
        next_index = i64::from(index) + 1;
        out.push(code);
        let patches = TileCodec::from_wire_code(code).is_some_and(|c| c.patches());
        if patches {
            if len < PATCH_HEADER_LEN {
                return None;
            }
            let (x, y) = (u16_at(payload, 8), u16_at(payload, 10));
            let (w, h) = (u16_at(payload, 12), u16_at(payload, 14));
            if x > 255 || y > 255 || !(1..=256).contains(&w) || !(1..=256).contains(&h) {
                return None;
            }
            put_varint(&mut out, (len - PATCH_SAVING) as u64);
            out.extend_from_slice(&payload[..8]);
            out.extend_from_slice(&[x as u8, y as u8, (w - 1) as u8, (h - 1) as u8]);
            out.extend_from_slice(&payload[PATCH_HEADER_LEN..]);
        } else {
            put_varint(&mut out, len as u64);
            out.extend_from_slice(payload);
        }
    }
    // Bytes after the last record: the viewer refuses the canonical form; keep it so.
    records.is_empty().then_some(out)
}

/// Turns what a viewer reads back into canonical frame messages, in the order they came.
#[derive(Default)]
pub struct FrameUnpacker {
    previous: Option<Context>,
}

/// A cursor over a compact message.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CompactError> {
        let end = self.at.checked_add(n).ok_or(CompactError::Truncated)?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or(CompactError::Truncated)?;
        self.at = end;
        Ok(slice)
    }
    fn byte(&mut self) -> Result<u8, CompactError> {
        Ok(self.take(1)?[0])
    }
    fn varint(&mut self) -> Result<u64, CompactError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                return Err(CompactError::BadVarint);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CompactError::BadVarint)
    }
}

impl FrameUnpacker {
    /// The most bytes a message may have: a canonical one by its own header, a compact one by
    /// the frame of the previous message (`None` before any: a compact message is then an
    /// error).
    pub fn compact_bound(&self) -> Option<usize> {
        self.previous.map(|p| {
            let tiles = (p.width as usize).div_ceil(crate::MIN_TILE_SIZE as usize)
                * (p.height as usize).div_ceil(crate::MIN_TILE_SIZE as usize);
            // A compact record header takes at most 11 bytes against the canonical 9.
            frame_message_bound(p.width, p.height) + 2 * tiles
        })
    }

    /// The canonical form of a message read from the wire (either form). A canonical message
    /// is returned as it is; what it declares becomes the context of the next compact one.
    pub fn unpack(&mut self, wire: Vec<u8>) -> Result<Vec<u8>, CompactError> {
        match wire.first() {
            Some(&COMPACT_TAG) => {
                let previous = self.previous.ok_or(CompactError::NoContext)?;
                let (message, context) = expand(&wire, &previous)?;
                self.previous = Some(context);
                Ok(message)
            }
            Some(b'T') => {
                // The frame message parser checks the rest; a message it cannot read ends
                // the connection, so no compact message follows one.
                self.previous = canonical(&wire).map(|c| c.context);
                Ok(wire)
            }
            Some(&other) => Err(CompactError::UnknownForm(other)),
            None => Err(CompactError::Truncated),
        }
    }
}

/// The canonical message a compact one stands for, and its context.
fn expand(wire: &[u8], previous: &Context) -> Result<(Vec<u8>, Context), CompactError> {
    let mut r = Reader { bytes: wire, at: 1 };
    let sequence = previous.sequence.wrapping_add(r.varint()?);
    let capture_time_us = previous
        .capture_time_us
        .wrapping_add(unzigzag(r.varint()?) as u64);
    let checksum = r.take(8)?;
    let flags = r.byte()?;
    if flags & FLAG_KEYFRAME != 0 {
        return Err(CompactError::Invalid("a keyframe in compact form"));
    }
    let grid = TileGrid::new(
        previous.width,
        previous.height,
        u32::from(previous.tile_size),
    )
    .map_err(|_| CompactError::Invalid("the previous message's frame has no tile grid"))?;
    let tile_count = r.varint()?;
    if tile_count > grid.tile_count() as u64 {
        return Err(CompactError::Invalid("more tiles than the frame has"));
    }
    let context = Context {
        sequence,
        capture_time_us,
        ..*previous
    };
    let mut out = Vec::with_capacity(
        wire.len() + FRAME_HEADER_LEN + UPDATE_HEADER_LEN + 13 * tile_count as usize,
    );
    out.extend_from_slice(&FRAME_MAGIC);
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&capture_time_us.to_le_bytes());
    out.extend_from_slice(checksum);
    out.extend_from_slice(&UPDATE_MAGIC);
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&previous.width.to_le_bytes());
    out.extend_from_slice(&previous.height.to_le_bytes());
    out.extend_from_slice(&previous.tile_size.to_le_bytes());
    out.push(previous.format);
    out.push(flags);
    out.extend_from_slice(&(tile_count as u32).to_le_bytes());
    if flags & FLAG_COPIES != 0 {
        let count = r.byte()? as usize;
        if count > MAX_COPIES {
            return Err(CompactError::Invalid("too many copy commands"));
        }
        out.push(count as u8);
        out.extend_from_slice(r.take(count * COPY_LEN)?);
    }
    let mut next_index = 0i64;
    for _ in 0..tile_count {
        let index = next_index
            .checked_add(unzigzag(r.varint()?))
            .filter(|i| (0..i64::from(u32::MAX)).contains(i))
            .ok_or(CompactError::Invalid("tile index out of range"))?;
        next_index = index + 1;
        let code = r.byte()?;
        let len = usize::try_from(r.varint()?).map_err(|_| CompactError::Truncated)?;
        let payload = r.take(len)?;
        out.extend_from_slice(&(index as u32).to_le_bytes());
        out.push(code);
        let patches = TileCodec::from_wire_code(code).is_some_and(|c| c.patches());
        if patches {
            if len < PATCH_HEADER_LEN - PATCH_SAVING {
                return Err(CompactError::Invalid("patch header cut short"));
            }
            let canonical_len = u32::try_from(len + PATCH_SAVING)
                .map_err(|_| CompactError::Invalid("payload too long"))?;
            out.extend_from_slice(&canonical_len.to_le_bytes());
            out.extend_from_slice(&payload[..8]);
            for (i, &v) in payload[8..12].iter().enumerate() {
                // x and y as they are; width and height less one.
                let v = u16::from(v) + u16::from(i >= 2);
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&payload[12..]);
        } else {
            let len = u32::try_from(len).map_err(|_| CompactError::Invalid("payload too long"))?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(payload);
        }
    }
    if r.at != wire.len() {
        return Err(CompactError::Invalid("bytes after the last tile record"));
    }
    Ok((out, context))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{FrameChecksum, FrameHeader};
    use crate::{
        CpuDiff, DirtyMask, FrameBuffer, PatchBase, PixelFormat, Scene, SyntheticSource,
        TileEncoder, TileGrid,
    };

    /// A frame message with the given update bytes behind its header.
    fn message(sequence: u64, time: u64, update: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        FrameHeader {
            sequence,
            capture_time_us: time,
            checksum: sequence.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        }
        .write(&mut m);
        m.extend_from_slice(update);
        m
    }

    #[test]
    fn varints_and_zigzag_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert!(b.len() <= 10);
            let mut r = Reader { bytes: &b, at: 0 };
            assert_eq!(r.varint().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -33_000] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        let overlong = [0xffu8; 11];
        let mut r = Reader {
            bytes: &overlong,
            at: 0,
        };
        assert_eq!(r.varint(), Err(CompactError::BadVarint));
    }

    /// Encodes a keyframe and deltas of a synthetic scene (as patches of the previous frame
    /// or not), packs each, and checks the viewer gets the very same canonical bytes back;
    /// returns the canonical and wire byte totals of the deltas.
    fn round_trip(scene: Scene, with_patches: bool) -> (usize, usize) {
        let (w, h) = (320, 200);
        let mut source = SyntheticSource::new(scene, w, h, PixelFormat::Bgra8).unwrap();
        let grid = TileGrid::new(w, h, 64).unwrap();
        let encoder = TileEncoder::single_threaded();
        let held = DirtyMask::full(grid.tile_count());
        let mut sum = FrameChecksum::new(grid);
        sum.update_from_frame(&source.frame(), &held);
        let mut packer = FramePacker::default();
        let mut unpacker = FrameUnpacker::default();
        let (mut canonical_bytes, mut wire_bytes) = (0, 0);
        for i in 0..40u64 {
            let mut update = Vec::new();
            if i == 0 {
                encoder
                    .encode_keyframe(&source.frame(), &grid, i, &mut update)
                    .unwrap();
            } else {
                let previous = source.frame_buffer().clone();
                let before = sum.clone();
                source.advance();
                let mask = CpuDiff::single_threaded()
                    .diff(&grid, &previous.as_frame(), &source.frame(), None)
                    .unwrap();
                sum.update_from_frame(&source.frame(), &mask);
                let base = PatchBase {
                    frame: previous.as_frame(),
                    hashes: before.hashes(),
                    held: &held,
                    copies: &[],
                };
                encoder
                    .encode_delta(
                        &source.frame(),
                        &grid,
                        &mask,
                        with_patches.then_some(&base),
                        i,
                        &mut update,
                    )
                    .unwrap();
            }
            let sequence = i;
            let canonical = message(sequence, 1_000_000 + i * 16_667, &update);
            let wire = packer.pack(Arc::new(canonical.clone()));
            if i == 0 {
                assert_eq!(*wire, canonical, "a keyframe goes canonical");
            } else {
                assert_eq!(wire[0], COMPACT_TAG);
                assert!(wire.len() < canonical.len());
                assert!(wire.len() <= unpacker.compact_bound().unwrap());
                canonical_bytes += canonical.len();
                wire_bytes += wire.len();
            }
            assert_eq!(unpacker.unpack(wire.to_vec()).unwrap(), canonical);
        }
        (canonical_bytes, wire_bytes)
    }

    #[test]
    fn deltas_pack_small_and_unpack_to_the_same_bytes() {
        for scene in [
            Scene::Typing,
            Scene::Dragging,
            Scene::Scrolling,
            Scene::Idle,
        ] {
            for patches in [true, false] {
                let (canonical, wire) = round_trip(scene, patches);
                assert!(wire <= canonical, "{scene:?}: {wire} of {canonical} bytes");
            }
        }
        let (canonical, wire) = round_trip(Scene::Typing, true);
        // Typing's updates are mostly headers: the compact form must cut a good part.
        assert!(
            wire * 10 < canonical * 8,
            "typing: {wire} of {canonical} bytes"
        );
    }

    #[test]
    fn a_new_frame_size_goes_canonical_and_resets_the_context() {
        let mut packer = FramePacker::default();
        let mut unpacker = FrameUnpacker::default();
        let encoder = TileEncoder::single_threaded();
        for (sequence, (w, h)) in [(1u64, (64u32, 64u32)), (2, (128, 64))].into_iter() {
            let frame = FrameBuffer::new(w, h, PixelFormat::Bgra8).unwrap();
            let grid = TileGrid::new(w, h, 64).unwrap();
            let mut update = Vec::new();
            // A delta in the new size (the viewer will refuse it; the framing must not care).
            encoder
                .encode_delta(
                    &frame.as_frame(),
                    &grid,
                    &DirtyMask::full(grid.tile_count()),
                    None,
                    sequence,
                    &mut update,
                )
                .unwrap();
            let canonical = message(sequence, 0, &update);
            let wire = packer.pack(Arc::new(canonical.clone()));
            assert_eq!(*wire, canonical, "no previous message of this size");
            assert_eq!(unpacker.unpack(wire.to_vec()).unwrap(), canonical);
        }
    }

    #[test]
    fn two_sequence_numbers_go_canonical() {
        let frame = FrameBuffer::new(64, 64, PixelFormat::Bgra8).unwrap();
        let grid = TileGrid::new(64, 64, 64).unwrap();
        let encoder = TileEncoder::single_threaded();
        let mut packer = FramePacker::default();
        let mut unpacker = FrameUnpacker::default();
        let mut keyframe = Vec::new();
        encoder
            .encode_keyframe(&frame.as_frame(), &grid, 1, &mut keyframe)
            .unwrap();
        let mut delta = Vec::new();
        encoder
            .encode_delta(
                &frame.as_frame(),
                &grid,
                &DirtyMask::full(1),
                None,
                5,
                &mut delta,
            )
            .unwrap();
        for canonical in [message(1, 0, &keyframe), message(2, 0, &delta)] {
            let wire = packer.pack(Arc::new(canonical.clone()));
            assert_eq!(*wire, canonical);
            assert_eq!(unpacker.unpack(wire.to_vec()).unwrap(), canonical);
        }
    }

    #[test]
    fn hostile_compact_messages_are_errors() {
        let mut unpacker = FrameUnpacker::default();
        assert_eq!(
            unpacker.unpack(vec![COMPACT_TAG, 1, 0]),
            Err(CompactError::NoContext)
        );
        assert_eq!(unpacker.unpack(vec![7]), Err(CompactError::UnknownForm(7)));
        assert_eq!(unpacker.unpack(Vec::new()), Err(CompactError::Truncated));
        // Establish a 128x128 frame of 64-pixel tiles (4 tiles).
        let frame = FrameBuffer::new(128, 128, PixelFormat::Bgra8).unwrap();
        let grid = TileGrid::new(128, 128, 64).unwrap();
        let mut update = Vec::new();
        TileEncoder::single_threaded()
            .encode_keyframe(&frame.as_frame(), &grid, 1, &mut update)
            .unwrap();
        unpacker.unpack(message(1, 0, &update)).unwrap();
        let head = |flags: u8, tiles: u8| {
            let mut m = vec![COMPACT_TAG, 1, 0];
            m.extend_from_slice(&[0; 8]);
            m.push(flags);
            m.push(tiles);
            m
        };
        let mut keyframe = head(FLAG_KEYFRAME, 0);
        assert!(matches!(
            unpacker.unpack(keyframe.clone()),
            Err(CompactError::Invalid(_))
        ));
        keyframe[11] = 0;
        assert!(unpacker.unpack(keyframe).is_ok(), "an empty delta is fine");
        assert!(matches!(
            unpacker.unpack(head(0, 5)),
            Err(CompactError::Invalid("more tiles than the frame has"))
        ));
        // One record whose payload runs past the end.
        let mut cut = head(0, 1);
        cut.extend_from_slice(&[0, 1, 100, 1, 2, 3]);
        assert_eq!(unpacker.unpack(cut), Err(CompactError::Truncated));
        // A tile index below zero.
        let mut negative = head(0, 1);
        negative.extend_from_slice(&[1, 2, 4, 1, 2, 3, 4]);
        assert!(matches!(
            unpacker.unpack(negative),
            Err(CompactError::Invalid(_))
        ));
        // A patch too short for its header.
        let mut patch = head(0, 1);
        patch.extend_from_slice(&[0, 3, 2, 0, 0]);
        assert!(matches!(
            unpacker.unpack(patch),
            Err(CompactError::Invalid(_))
        ));
        // Too many copies.
        let mut copies = head(FLAG_COPIES, 0);
        copies.push(17);
        assert!(matches!(
            unpacker.unpack(copies),
            Err(CompactError::Invalid(_))
        ));
        // Trailing bytes.
        let mut trailing = head(0, 0);
        trailing.push(0);
        assert!(matches!(
            unpacker.unpack(trailing),
            Err(CompactError::Invalid(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut unpacker = FrameUnpacker {
                previous: Some(Context { sequence: 1, capture_time_us: 2, width: 256, height: 256, tile_size: 16, format: 0 }),
            };
            let mut wire = vec![COMPACT_TAG];
            wire.extend_from_slice(&body);
            if let Ok(canonical) = unpacker.unpack(wire) {
                // Whatever unpacks is a whole canonical message of the same frame.
                proptest::prop_assert!(canonical.len() >= FRAME_HEADER_LEN + UPDATE_HEADER_LEN);
                proptest::prop_assert_eq!(&canonical[..4], &FRAME_MAGIC[..]);
                proptest::prop_assert_eq!(u32_at(&canonical, FRAME_HEADER_LEN + 12), 256);
            }
        }
    }
}
