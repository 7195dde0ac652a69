//! The compact form of a delta frame message: the same message in fewer bytes, for the small
//! updates of typing and pointer moves, where the 56 bytes of the two fixed headers, 9 bytes a
//! tile record and 8 bytes a patch's base hash would outweigh the pixels.
//!
//! A sender's [`FramePacker`] (one per viewer) turns each canonical frame message (frame
//! header, then update message) into its wire form, and the viewer's [`FrameUnpacker`] turns it
//! back, byte for byte, before the update is parsed and checked as ever. Keyframes, and any
//! message whose frame differs from the previous message's, travel canonical; a delta of the
//! same frame travels compact:
//!
//! | field | bytes | meaning |
//! |---|---|---|
//! | tag | 1 | `0xC4` plus the update's flags (`0x02` with copies; never a keyframe), `0x08` for a sequence step of 1, `0x10` for one tile record; a canonical message starts with `T` |
//! | sequence step | varint | sequence minus the previous message's; left out when it is 1 |
//! | time step | varint | capture time step minus the previous message's time step, zigzag |
//! | checksum | 8 | the frame checksum, as in the frame header |
//! | tile count | varint | left out when it is 1 |
//! | copies | | with flag bit 1: as in the update message |
//! | records | | per tile: index step (index minus the previous record's index plus one, zigzag; the first counts from 0) as a varint, codec `u8` (bit 7: base hash left out; bits 6 and 5: how a small block or a cached tile's hash travels; bits 3 and 4: the rectangle's form), payload length varint (left out where the payload's own bytes tell it: the repeat form, or the last record, which runs to the end), payload |
//!
//! Width, height, tile size and format are the previous message's. Payloads are as in the update
//! message, except:
//! - the patch header of patches, rects and palette rects (codecs 3, 4, 6) gives its rectangle
//!   as four bytes (`x`, `y`, `width - 1`, `height - 1`; tiles are at most 256 pixels) instead
//!   of four `u16`s, or in one or two where it continues the rectangle of the tile to its
//!   left or above, or moves the previous message's rectangle of its tile (`patch_rect.rs`);
//! - in an update without copies, such a patch leaves its 8-byte base hash out (codec bit 7)
//!   when the base is the tile as the previous message's frame has it. The viewer puts back the
//!   hash of the tile it holds, but only while it holds that frame (its frame checksum is the
//!   previous message's); otherwise the update is [`Unpacked::not_held`]: not applied, as a
//!   patch of a tile it does not hold;
//! - a palette body (codecs 5, 6) whose colours are those of one of the 8 palette bodies of
//!   compact messages (since the last canonical one) used most recently gives `0x80 + k` for
//!   the `k`-th most recent as its count, and no colours;
//! - a cached tile's hash among the 256 named most recently travels as one byte, its place;
//! - an lz4 block that decompresses to at most 1 KiB travels as a reference to an equal recent
//!   block, or compressed against the ones before it (`block_history.rs`).
//!
//! Both ends see every message in the same order (a viewer reads each one, applied or not), so
//! the previous message is the same on both.

mod block_history;
mod patch_rect;
mod recent;

use super::frame_message::{frame_message_bound, FRAME_HEADER_LEN, FRAME_MAGIC};
use super::FrameChecksum;
use crate::codec::{
    index_bytes, CACHED_LEN, COPY_LEN, FLAG_COPIES, FLAG_KEYFRAME, MAX_COPIES, PATCH_HEADER_LEN,
    TILE_HEADER_LEN, UPDATE_HEADER_LEN,
};
use crate::{TileCodec, TileGrid, BYTES_PER_PIXEL, MAX_PALETTE_COLOURS, UPDATE_MAGIC};
use block_history::{BlockForm, BlockHistory, MAX_SMALL_BLOCK};
use patch_rect::{MessageRects, RECT_FORM};
use recent::Recent;

/// How many palettes both ends keep.
const RECENT_PALETTES: usize = 8;
/// The colours of the palette bodies of compact messages since the last canonical message.
type RecentPalettes = Recent<RECENT_PALETTES>;
/// How many hashes of cached tiles both ends keep.
const RECENT_CACHED: usize = 256;
/// The hashes of the cached tiles named by compact messages since the last canonical message.
type RecentCached = Recent<RECENT_CACHED>;
// One byte names a recent cached tile.
const _: () = assert!(RECENT_CACHED <= 256);
use std::sync::Arc;
use thiserror::Error;

/// The first byte of a compact frame message without copies; with copies it is this plus
/// their flag (the update's flags ride in the tag's two low bits).
pub const COMPACT_TAG: u8 = 0xC4;
/// The tag's bits that are the update's flags.
const TAG_FLAGS: u8 = FLAG_KEYFRAME | FLAG_COPIES;
/// In the tag: the sequence step is 1, and left out.
const STEP_ONE: u8 = 0x08;
/// In the tag: the message has one tile record, and leaves the tile count out.
const ONE_RECORD: u8 = 0x10;

/// Whether a frame message whose first byte is `first` is in the compact form.
pub fn is_compact(first: u8) -> bool {
    first & !(TAG_FLAGS | STEP_ONE | ONE_RECORD) == COMPACT_TAG
}

/// Bytes of a patch's base hash.
const BASE_LEN: usize = 8;
/// In a compact record's codec byte: the patch's base hash is left out.
const BASE_LEFT_OUT: u8 = 0x80;
/// In a compact record's codec byte: the small lz4 block is compressed against the history.
const HISTORY_FORM: u8 = 0x40;
/// In a compact record's codec byte: the small lz4 block (or a cached tile's hash) is one
/// byte naming a recent one.
const REPEAT_FORM: u8 = 0x20;
/// The codec byte's bits that are not the codec (bits 3 and 4 tell a patch rectangle's form:
/// `patch_rect.rs`).
const CODE_FLAGS: u8 = BASE_LEFT_OUT | HISTORY_FORM | REPEAT_FORM | RECT_FORM;
/// A compact palette body's count byte at or above this: the colours of a recent palette body,
/// `RECENT_PALETTE + k` for the `k`-th most recently used.
const RECENT_PALETTE: u8 = 0x80;

/// What a message declared that the next compact one leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Context {
    sequence: u64,
    capture_time_us: u64,
    /// The capture time step this message declared (0 for a canonical message): the next
    /// compact message's time step is sent as the difference from it.
    time_step: i64,
    checksum: u64,
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

/// A frame message as the viewer read it, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The canonical message.
    pub message: Vec<u8>,
    /// The message left base hashes out, and this viewer does not hold the frame they stand
    /// for (it did not apply the previous message, or that did not give the frame the sender
    /// checksummed). `message` then has zeros for them: it must not be applied, and the viewer
    /// goes on from a keyframe, as after a patch of a tile it does not hold.
    pub not_held: bool,
}

/// The canonical message's fields a packer needs, if it is well formed.
struct Canonical<'a> {
    context: Context,
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
            time_step: 0,
            checksum: u64_at(message, 20),
            width: u32_at(message, u + 12),
            height: u32_at(message, u + 16),
            tile_size: u16_at(message, u + 20),
            format: message[u + 22],
        },
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

/// Whether a codec's payload is (or, after its patch header, holds) a palette body.
fn has_palette(code: u8) -> bool {
    matches!(
        TileCodec::from_wire_code(code),
        Some(TileCodec::Palette | TileCodec::PaletteRect)
    )
}

/// Bytes the lz4 block of a record decompresses to: a `width` x `height` block of pixels (whole
/// tile, patch or rect) or of palette indices (for `colours` colours); none for codecs without
/// one.
fn block_size(code: u8, width: usize, height: usize, colours: usize) -> Option<usize> {
    match TileCodec::from_wire_code(code)? {
        TileCodec::Lz4 | TileCodec::Patch | TileCodec::Rect => {
            Some(width * height * BYTES_PER_PIXEL)
        }
        TileCodec::Palette | TileCodec::PaletteRect => Some(index_bytes(width, height, colours)),
        TileCodec::Raw | TileCodec::Solid | TileCodec::Cached => None,
    }
}

/// The colours of a palette body, if it has a valid count and holds them all.
fn palette_colours(body: &[u8]) -> Option<&[u8]> {
    let count = usize::from(*body.first()?);
    if !(1..=MAX_PALETTE_COLOURS).contains(&count) {
        return None;
    }
    body.get(1..1 + count * BYTES_PER_PIXEL)
}

/// Turns a viewer's canonical frame messages into their wire form, in the order they are sent.
#[derive(Default)]
pub struct FramePacker {
    previous: Option<Context>,
    /// The tile hashes of the previous message's frame.
    previous_hashes: Vec<u64>,
    palettes: RecentPalettes,
    cached: RecentCached,
    history: BlockHistory,
    rects: MessageRects,
    block: Vec<u8>,
}

impl FramePacker {
    /// The wire form of `message`: the same allocation when it goes canonical (a keyframe, a
    /// new frame size), else its compact form. `hashes` are the tile hashes of the message's
    /// frame (what the viewer holds once it applied it), for the next message's patches.
    pub fn pack(&mut self, message: Arc<Vec<u8>>, hashes: &[u64]) -> Arc<Vec<u8>> {
        let packed = self.pack_message(message);
        self.previous_hashes.clear();
        self.previous_hashes.extend_from_slice(hashes);
        if !packed.first().is_some_and(|&b| is_compact(b)) {
            self.palettes.clear();
            self.cached.clear();
            self.history.clear();
            self.rects.clear();
        }
        packed
    }

    fn pack_message(&mut self, message: Arc<Vec<u8>>) -> Arc<Vec<u8>> {
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
                match self.compact(&parts, &p) {
                    Some(packed) => Arc::new(packed),
                    None => message,
                }
            }
            _ => message,
        }
    }

    /// The compact form of a delta, or `None` where its records do not parse (it then goes
    /// canonical, for the viewer to refuse).
    fn compact(&mut self, parts: &Canonical<'_>, previous: &Context) -> Option<Vec<u8>> {
        let c = &parts.context;
        let grid = TileGrid::new(c.width, c.height, u32::from(c.tile_size)).ok()?;
        let mut out = Vec::with_capacity(32 + parts.copies.len() + parts.records.len());
        if parts.flags & TAG_FLAGS != parts.flags {
            return None;
        }
        let sequence_step = c.sequence.wrapping_sub(previous.sequence);
        let time_step = c.capture_time_us.wrapping_sub(previous.capture_time_us) as i64;
        let mut tag = COMPACT_TAG | parts.flags;
        if sequence_step == 1 {
            tag |= STEP_ONE;
        }
        if parts.tile_count == 1 {
            tag |= ONE_RECORD;
        }
        out.push(tag);
        if tag & STEP_ONE == 0 {
            put_varint(&mut out, sequence_step);
        }
        put_varint(&mut out, zigzag(time_step.wrapping_sub(previous.time_step)));
        out.extend_from_slice(&c.checksum.to_le_bytes());
        if tag & ONE_RECORD == 0 {
            put_varint(&mut out, u64::from(parts.tile_count));
        }
        out.extend_from_slice(parts.copies);
        self.rects.start(grid.cols());
        // Copies change tiles before the patches apply: their bases are not the previous frame's.
        let bases_known = parts.flags & FLAG_COPIES == 0;
        let mut records = parts.records;
        let mut next_index = 0i64;
        let mut head = Vec::with_capacity(BASE_LEN + 5);
        // A recent cached tile's place in the list.
        let mut named = [0u8; 1];
        for n in 0..parts.tile_count {
            if records.len() < TILE_HEADER_LEN {
                return None;
            }
            let index = u32_at(records, 0);
            // An index past the grid is refused by the viewer: leave the message canonical.
            if index as usize >= grid.tile_count() {
                return None;
            }
            let mut code = records[4];
            let len = u32_at(records, 5) as usize;
            let payload = records.get(TILE_HEADER_LEN..TILE_HEADER_LEN + len)?;
            records = &records[TILE_HEADER_LEN + len..];
            put_varint(&mut out, zigzag(i64::from(index) - next_index));
            next_index = i64::from(index) + 1;
            head.clear();
            let mut body = payload;
            // The size of the pixels the record's lz4 block stands for, if it has one.
            let (block_width, block_height);
            if TileCodec::from_wire_code(code).is_some_and(|c| c.patches()) {
                if len < PATCH_HEADER_LEN {
                    return None;
                }
                let (x, y) = (u16_at(payload, 8), u16_at(payload, 10));
                let (w, h) = (u16_at(payload, 12), u16_at(payload, 14));
                if x > 255 || y > 255 || !(1..=256).contains(&w) || !(1..=256).contains(&h) {
                    return None;
                }
                let base = u64_at(payload, 0);
                if bases_known && self.previous_hashes.get(index as usize) == Some(&base) {
                    code |= BASE_LEFT_OUT;
                } else {
                    head.extend_from_slice(&payload[..BASE_LEN]);
                }
                code |= self.rects.encode(index, [x, y, w, h], &mut head);
                body = &payload[PATCH_HEADER_LEN..];
                (block_width, block_height) = (usize::from(w), usize::from(h));
            } else {
                let r = grid.tile_rect(index as usize);
                (block_width, block_height) = (r.width as usize, r.height as usize);
            }
            if TileCodec::from_wire_code(code) == Some(TileCodec::Cached) && len == CACHED_LEN {
                // A tile named again by its hash: one byte while the hash is recent.
                if let Some(k) = self.cached.find(payload) {
                    self.cached.use_entry(k);
                    code |= REPEAT_FORM;
                    named[0] = k as u8;
                    body = &named;
                } else {
                    self.cached.add(payload);
                }
            }
            let mut colours = 0;
            if has_palette(code & !CODE_FLAGS) {
                let palette = palette_colours(body)?;
                colours = palette.len() / BYTES_PER_PIXEL;
                match self.palettes.find(palette) {
                    Some(k) => {
                        self.palettes.use_entry(k);
                        head.push(RECENT_PALETTE + k as u8);
                    }
                    None => {
                        self.palettes.add(palette);
                        head.extend_from_slice(&body[..1 + palette.len()]);
                    }
                }
                body = &body[1 + palette.len()..];
            }
            let small = block_size(code & !CODE_FLAGS, block_width, block_height, colours)
                .filter(|&size| size <= MAX_SMALL_BLOCK);
            if let Some(size) = small {
                self.block.clear();
                code |= match self.history.pack(body, size, &mut self.block).ok()? {
                    BlockForm::Plain => 0,
                    BlockForm::History => HISTORY_FORM,
                    BlockForm::Repeat => REPEAT_FORM,
                };
                body = &self.block;
            }
            out.push(code);
            // The last record runs to the end, and a repeated block's record tells its length.
            if n + 1 < parts.tile_count && code & REPEAT_FORM == 0 {
                put_varint(&mut out, (head.len() + body.len()) as u64);
            }
            out.extend_from_slice(&head);
            out.extend_from_slice(body);
        }
        // Bytes after the last record: the viewer refuses the canonical form; keep it so.
        if !records.is_empty() {
            return None;
        }
        if let Some(p) = self.previous.as_mut() {
            p.time_step = time_step;
        }
        Some(out)
    }
}

/// The payload length of a record whose small block is in the repeat form (one byte), from
/// the bytes before the block: the patch header, and a palette body's count (`rest` starts at
/// the payload).
fn repeat_record_len(code: u8, wire_code: u8, rest: &[u8]) -> Result<usize, CompactError> {
    let mut len = 0;
    if TileCodec::from_wire_code(code).is_some_and(|c| c.patches()) {
        if wire_code & BASE_LEFT_OUT == 0 {
            len += BASE_LEN;
        }
        len += patch_rect::header_len(wire_code);
    }
    if has_palette(code) {
        len += match rest.get(len) {
            Some(&k) if k >= RECENT_PALETTE => 1,
            Some(&count) => 1 + usize::from(count) * BYTES_PER_PIXEL,
            None => return Err(CompactError::Truncated),
        };
    }
    Ok(len + 1)
}

/// Writes the length of the canonical payload that runs from `len_at + 4` to the end of `out`
/// into the 4 bytes at `len_at`.
fn set_payload_len(out: &mut [u8], len_at: usize) -> Result<(), CompactError> {
    let len = u32::try_from(out.len() - len_at - 4)
        .map_err(|_| CompactError::Invalid("payload too long"))?;
    out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Turns what a viewer reads back into canonical frame messages, in the order they came.
#[derive(Default)]
pub struct FrameUnpacker {
    previous: Option<Context>,
    palettes: RecentPalettes,
    cached: RecentCached,
    history: BlockHistory,
    rects: MessageRects,
    /// Rectangles read in a short form, for tests.
    #[cfg(test)]
    short_rects: usize,
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
    /// `held` is the checksum of the frame the viewer holds now (none before a keyframe): it
    /// stands for the base hashes a compact message leaves out.
    pub fn unpack(
        &mut self,
        wire: Vec<u8>,
        held: Option<&FrameChecksum>,
    ) -> Result<Unpacked, CompactError> {
        match wire.first() {
            Some(&tag) if is_compact(tag) => {
                let previous = self.previous.ok_or(CompactError::NoContext)?;
                let (unpacked, context) = self.expand(&wire, &previous, held)?;
                self.previous = Some(context);
                Ok(unpacked)
            }
            Some(b'T') => {
                // The frame message parser checks the rest; a message it cannot read ends
                // the connection, so no compact message follows one.
                self.previous = canonical(&wire).map(|c| c.context);
                self.palettes.clear();
                self.cached.clear();
                self.history.clear();
                self.rects.clear();
                Ok(Unpacked {
                    message: wire,
                    not_held: false,
                })
            }
            Some(&other) => Err(CompactError::UnknownForm(other)),
            None => Err(CompactError::Truncated),
        }
    }

    /// The canonical message a compact one stands for, and its context.
    fn expand(
        &mut self,
        wire: &[u8],
        previous: &Context,
        held: Option<&FrameChecksum>,
    ) -> Result<(Unpacked, Context), CompactError> {
        let mut r = Reader { bytes: wire, at: 1 };
        let tag = wire[0];
        let sequence_step = if tag & STEP_ONE != 0 { 1 } else { r.varint()? };
        let sequence = previous.sequence.wrapping_add(sequence_step);
        let time_step = previous.time_step.wrapping_add(unzigzag(r.varint()?));
        let capture_time_us = previous.capture_time_us.wrapping_add(time_step as u64);
        let checksum = u64_at(r.take(8)?, 0);
        let flags = tag & TAG_FLAGS;
        if flags & FLAG_KEYFRAME != 0 {
            return Err(CompactError::Invalid("a keyframe in compact form"));
        }
        let grid = TileGrid::new(
            previous.width,
            previous.height,
            u32::from(previous.tile_size),
        )
        .map_err(|_| CompactError::Invalid("the previous message's frame has no tile grid"))?;
        let tile_count = if tag & ONE_RECORD != 0 {
            1
        } else {
            r.varint()?
        };
        if tile_count > grid.tile_count() as u64 {
            return Err(CompactError::Invalid("more tiles than the frame has"));
        }
        // The tile hashes of the previous message's frame, if this viewer holds that frame.
        let held = held
            .filter(|h| *h.grid() == grid && h.value() == previous.checksum)
            .map(FrameChecksum::hashes);
        let context = Context {
            sequence,
            capture_time_us,
            time_step,
            checksum,
            ..*previous
        };
        let mut out = Vec::with_capacity(
            wire.len() + FRAME_HEADER_LEN + UPDATE_HEADER_LEN + 21 * tile_count as usize,
        );
        out.extend_from_slice(&FRAME_MAGIC);
        out.extend_from_slice(&sequence.to_le_bytes());
        out.extend_from_slice(&capture_time_us.to_le_bytes());
        out.extend_from_slice(&checksum.to_le_bytes());
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
        let mut not_held = false;
        let mut next_index = 0i64;
        self.rects.start(grid.cols());
        for n in 0..tile_count {
            let index = next_index
                .checked_add(unzigzag(r.varint()?))
                .filter(|&i| (0..grid.tile_count() as i64).contains(&i))
                .ok_or(CompactError::Invalid("tile index out of range"))?;
            next_index = index + 1;
            let wire_code = r.byte()?;
            let code = wire_code & !CODE_FLAGS;
            let len = if n + 1 == tile_count {
                wire.len() - r.at
            } else if wire_code & REPEAT_FORM != 0 {
                repeat_record_len(code, wire_code, &wire[r.at..])?
            } else {
                usize::try_from(r.varint()?).map_err(|_| CompactError::Truncated)?
            };
            let mut payload = r.take(len)?;
            out.extend_from_slice(&(index as u32).to_le_bytes());
            out.push(code);
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            let (block_width, block_height);
            if TileCodec::from_wire_code(code).is_some_and(|c| c.patches()) {
                if wire_code & BASE_LEFT_OUT != 0 {
                    if flags & FLAG_COPIES != 0 {
                        return Err(CompactError::Invalid("a base hash left out beside copies"));
                    }
                    let base = match held {
                        Some(hashes) => hashes[index as usize],
                        None => {
                            not_held = true;
                            0
                        }
                    };
                    out.extend_from_slice(&base.to_le_bytes());
                } else {
                    let base = payload
                        .get(..BASE_LEN)
                        .ok_or(CompactError::Invalid("patch header cut short"))?;
                    out.extend_from_slice(base);
                    payload = &payload[BASE_LEN..];
                }
                let rect = self
                    .rects
                    .decode(index as u32, wire_code, &mut payload)
                    .map_err(CompactError::Invalid)?;
                #[cfg(test)]
                {
                    self.short_rects += usize::from(wire_code & RECT_FORM != 0);
                }
                for v in rect {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                (block_width, block_height) = (usize::from(rect[2]), usize::from(rect[3]));
            } else if wire_code & (BASE_LEFT_OUT | RECT_FORM) != 0 {
                return Err(CompactError::Invalid(
                    "a base hash or rectangle on a whole tile",
                ));
            } else if code == TileCodec::Cached.wire_code() {
                match wire_code & (HISTORY_FORM | REPEAT_FORM) {
                    0 => {
                        if payload.len() == CACHED_LEN {
                            self.cached.add(payload);
                        }
                        out.extend_from_slice(payload);
                    }
                    REPEAT_FORM => {
                        let hash = match payload {
                            &[k] => self.cached.use_entry(usize::from(k)),
                            _ => None,
                        }
                        .ok_or(CompactError::Invalid("no such recent cached tile"))?;
                        out.extend_from_slice(hash);
                    }
                    _ => return Err(CompactError::Invalid("history form on a cached tile")),
                }
                set_payload_len(&mut out, len_at)?;
                continue;
            } else {
                let r = grid.tile_rect(index as usize);
                (block_width, block_height) = (r.width as usize, r.height as usize);
            }
            let mut colours = 0;
            if has_palette(code) {
                match payload.first() {
                    Some(&k) if k >= RECENT_PALETTE => {
                        let palette = self
                            .palettes
                            .use_entry(usize::from(k - RECENT_PALETTE))
                            .ok_or(CompactError::Invalid("no such recent palette"))?;
                        colours = palette.len() / BYTES_PER_PIXEL;
                        out.push(colours as u8);
                        out.extend_from_slice(palette);
                        payload = &payload[1..];
                    }
                    _ => {
                        let palette = palette_colours(payload)
                            .ok_or(CompactError::Invalid("palette colours cut short"))?;
                        self.palettes.add(palette);
                        colours = palette.len() / BYTES_PER_PIXEL;
                        out.extend_from_slice(&payload[..1 + palette.len()]);
                        payload = &payload[1 + palette.len()..];
                    }
                }
            }
            let small = block_size(code, block_width, block_height, colours)
                .filter(|&size| size <= MAX_SMALL_BLOCK);
            match small {
                Some(size) => {
                    let form = match wire_code & (HISTORY_FORM | REPEAT_FORM) {
                        0 => BlockForm::Plain,
                        HISTORY_FORM => BlockForm::History,
                        REPEAT_FORM => BlockForm::Repeat,
                        _ => return Err(CompactError::Invalid("two forms of one block")),
                    };
                    self.history
                        .unpack(payload, size, form, &mut out)
                        .map_err(|_| CompactError::Invalid("a small block does not decompress"))?;
                }
                None if wire_code & (HISTORY_FORM | REPEAT_FORM) != 0 => {
                    return Err(CompactError::Invalid(
                        "history form on a block that is not small",
                    ));
                }
                None => out.extend_from_slice(payload),
            }
            set_payload_len(&mut out, len_at)?;
        }
        if r.at != wire.len() {
            return Err(CompactError::Invalid("bytes after the last tile record"));
        }
        Ok((
            Unpacked {
                message: out,
                not_held,
            },
            context,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::UpdateHeader;
    use crate::stream::{FrameChecksum, FrameHeader};
    use crate::{
        CpuDiff, DirtyMask, FrameBuffer, PatchBase, PixelFormat, Scene, SyntheticSource,
        TileEncoder, TileGrid,
    };

    /// A frame message with the given update bytes behind its header.
    fn message(sequence: u64, time: u64, update: &[u8]) -> Vec<u8> {
        framed(
            sequence,
            time,
            sequence.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            update,
        )
    }

    /// A frame message of a frame with checksum `checksum`.
    fn framed(sequence: u64, time: u64, checksum: u64, update: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        FrameHeader {
            sequence,
            capture_time_us: time,
            checksum,
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

    /// What a viewer makes of a wire message: the canonical one, which must be held.
    fn unpack_held(
        unpacker: &mut FrameUnpacker,
        wire: &[u8],
        held: Option<&FrameChecksum>,
    ) -> Vec<u8> {
        let unpacked = unpacker.unpack(wire.to_vec(), held).unwrap();
        assert!(!unpacked.not_held);
        unpacked.message
    }

    /// Encodes a keyframe and deltas of a synthetic scene (as patches of the previous frame
    /// or not), packs each (given the frame's tile hashes, or none, which leaves every base
    /// hash in), and checks the viewer, holding each frame in turn, gets the very same
    /// canonical bytes back; returns the canonical and wire byte totals of the deltas.
    fn round_trip(scene: Scene, with_patches: bool, give_hashes: bool) -> (usize, usize) {
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
            let before = sum.clone();
            if i == 0 {
                encoder
                    .encode_keyframe(&source.frame(), &grid, i, &mut update)
                    .unwrap();
            } else {
                let previous = source.frame_buffer().clone();
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
            let canonical = framed(i, 1_000_000 + i * 16_667, sum.value(), &update);
            let hashes = if give_hashes { sum.hashes() } else { &[] };
            let wire = packer.pack(Arc::new(canonical.clone()), hashes);
            if i == 0 {
                assert_eq!(*wire, canonical, "a keyframe goes canonical");
                assert_eq!(unpack_held(&mut unpacker, &wire, None), canonical);
                continue;
            }
            assert!(is_compact(wire[0]) && wire[0] & TAG_FLAGS == 0);
            assert!(wire.len() < canonical.len());
            assert!(wire.len() <= unpacker.compact_bound().unwrap());
            canonical_bytes += canonical.len();
            wire_bytes += wire.len();
            // The viewer holds the previous message's frame.
            assert_eq!(unpack_held(&mut unpacker, &wire, Some(&before)), canonical);
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
                for hashes in [true, false] {
                    let (canonical, wire) = round_trip(scene, patches, hashes);
                    assert!(wire <= canonical, "{scene:?}: {wire} of {canonical} bytes");
                }
            }
        }
        let (canonical, wire) = round_trip(Scene::Typing, true, true);
        // Typing's updates are mostly headers: the compact form must cut a good part.
        assert!(
            wire * 10 < canonical * 6,
            "typing: {wire} of {canonical} bytes"
        );
        // Leaving base hashes out saves 8 bytes a patch: typing patches every update.
        let (_, with_bases) = round_trip(Scene::Typing, true, false);
        assert!(wire + 39 * 8 <= with_bases, "{wire} against {with_bases}");
    }

    /// A keyframe and one delta of a 128x64 frame (two tiles) that draws a two-colour "glyph"
    /// in each tile, both framed with their frames' checksums, and the checksum of the
    /// keyframe's frame (what the viewer holds after it).
    fn typed_glyph() -> (Vec<u8>, Vec<u8>, FrameChecksum) {
        glyphs(64, &[(10..20, 20..24), (10..20, 84..88)], 2)
    }

    /// As [`typed_glyph`], in a 128-pixel-wide frame `height` high, with glyphs over the
    /// `(rows, columns)` given, which make `patches` palette rects.
    fn glyphs(
        height: usize,
        spans: &[(std::ops::Range<usize>, std::ops::Range<usize>)],
        patches: usize,
    ) -> (Vec<u8>, Vec<u8>, FrameChecksum) {
        let grid = TileGrid::new(128, height as u32, 64).unwrap();
        // A background of many colours: no whole tile goes as a palette.
        let mut frame = FrameBuffer::new(128, height as u32, PixelFormat::Bgra8).unwrap();
        for (i, p) in frame.pixels_mut().chunks_exact_mut(4).enumerate() {
            p.copy_from_slice(&[(i % 64 * 3) as u8, (i / 128 * 3) as u8, 40, 0xff]);
        }
        let all = DirtyMask::full(grid.tile_count());
        let mut sum = FrameChecksum::new(grid);
        sum.update_from_frame(&frame.as_frame(), &all);
        let before = sum.clone();
        let encoder = TileEncoder::single_threaded();
        let mut key = Vec::new();
        encoder
            .encode_keyframe(&frame.as_frame(), &grid, 1, &mut key)
            .unwrap();
        let previous = frame.clone();
        let pixels = spans.iter().flat_map(|(rows, cols)| {
            rows.clone()
                .flat_map(move |y| cols.clone().map(move |x| (x, y)))
        });
        for (x, y) in pixels {
            {
                let i = (y * 128 + x) * 4;
                let ink = (x % 64 * 7 + y * y * 13) % 5 < 2;
                frame.pixels_mut()[i..i + 4].copy_from_slice(&[0, 0, 0, 0xff].map(|v| {
                    if ink {
                        v
                    } else {
                        0xff
                    }
                }));
            }
        }
        sum.update_from_frame(&frame.as_frame(), &all);
        let base = PatchBase {
            frame: previous.as_frame(),
            hashes: before.hashes(),
            held: &all,
            copies: &[],
        };
        let mut delta = Vec::new();
        let stats = encoder
            .encode_delta(&frame.as_frame(), &grid, &all, Some(&base), 2, &mut delta)
            .unwrap();
        assert_eq!(
            stats.palette_tiles, patches,
            "the glyphs go as palette rects: {stats:?}"
        );
        (
            framed(1, 0, before.value(), &key),
            framed(2, 10, sum.value(), &delta),
            before,
        )
    }

    #[test]
    fn a_glyph_leaves_out_its_base_hashes_repeated_colours_and_repeated_indices() {
        let (key, delta, held) = typed_glyph();
        let mut packer = FramePacker::default();
        packer.pack(Arc::new(key.clone()), held.hashes());
        let wire = packer.pack(Arc::new(delta.clone()), &[]);
        // Against the canonical form: the headers (11 bytes left of 56: tag with the flags
        // and the sequence step of 1, 1-byte time step, checksum, count), two record headers (3 bytes left of 9, then 2: the
        // last record's length is the rest), two base hashes, the second rect's two colours,
        // 4 bytes of each rectangle, and the second rect's index block (the first one's again:
        // 11 bytes of lz4, 10 of them literals) but for the one byte that names it.
        let saved = (FRAME_HEADER_LEN + UPDATE_HEADER_LEN - 11)
            + (9 - 3)
            + (9 - 2)
            + 2 * 8
            + 8
            + 2 * 4
            + (11 - 1);
        assert_eq!(wire.len() + saved, delta.len());
        let mut unpacker = FrameUnpacker::default();
        assert_eq!(unpack_held(&mut unpacker, &key, None), key);
        assert_eq!(unpack_held(&mut unpacker, &wire, Some(&held)), delta);
    }

    #[test]
    fn a_glyph_across_tile_edges_continues_its_rectangle_in_one_byte() {
        // One glyph over the corner where four 64-pixel tiles meet: four patches, and each
        // but the first continues a rectangle to its left or above.
        let (key, delta, held) = glyphs(128, &[(58..70, 60..68)], 4);
        let mut packer = FramePacker::default();
        packer.pack(Arc::new(key.clone()), held.hashes());
        let wire = packer.pack(Arc::new(delta.clone()), &[]);
        let mut unpacker = FrameUnpacker::default();
        assert_eq!(unpack_held(&mut unpacker, &key, None), key);
        assert_eq!(unpack_held(&mut unpacker, &wire, Some(&held)), delta);
        assert_eq!(unpacker.short_rects, 3);
    }

    /// A delta of a 128x128 frame (64-pixel tiles) with `records`: (tile, codec, payload).
    fn delta_of(sequence: u64, records: &[(u32, TileCodec, &[u8])]) -> Vec<u8> {
        let mut update = Vec::new();
        UpdateHeader {
            sequence,
            width: 128,
            height: 128,
            tile_size: 64,
            format: PixelFormat::Bgra8,
            keyframe: false,
            tile_count: records.len() as u32,
        }
        .write(&[], &mut update);
        for &(index, codec, payload) in records {
            update.extend_from_slice(&index.to_le_bytes());
            update.push(codec.wire_code());
            update.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            update.extend_from_slice(payload);
        }
        message(sequence, sequence * 1000, &update)
    }

    /// The keyframe update (sequence 1) of a blank 128x128 frame of 64-pixel tiles (4 tiles).
    fn blank_keyframe() -> Vec<u8> {
        let frame = FrameBuffer::new(128, 128, PixelFormat::Bgra8).unwrap();
        let grid = TileGrid::new(128, 128, 64).unwrap();
        let mut update = Vec::new();
        TileEncoder::single_threaded()
            .encode_keyframe(&frame.as_frame(), &grid, 1, &mut update)
            .unwrap();
        update
    }

    #[test]
    fn a_cached_tile_named_again_takes_one_byte() {
        let key = message(1, 1000, &blank_keyframe());
        let (a, b) = ([0xa; CACHED_LEN], [0xb; CACHED_LEN]);
        let messages = [
            delta_of(2, &[(0, TileCodec::Cached, &a), (1, TileCodec::Cached, &b)]),
            delta_of(3, &[(0, TileCodec::Cached, &b), (3, TileCodec::Cached, &a)]),
            delta_of(4, &[(2, TileCodec::Cached, &a)]),
        ];
        let mut packer = FramePacker::default();
        let mut unpacker = FrameUnpacker::default();
        packer.pack(Arc::new(key.clone()), &[0; 4]);
        unpacker.unpack(key, None).unwrap();
        let mut sizes = Vec::new();
        for m in messages {
            let wire = packer.pack(Arc::new(m.clone()), &[0; 4]);
            sizes.push(wire.len());
            assert_eq!(unpacker.unpack(wire.to_vec(), None).unwrap().message, m);
        }
        // Tag, time step (2 bytes for the first step of 1 ms, then 1 for no change of it),
        // checksum, count; then per record index step, codec, hash (with a length but for the
        // last record): the first names two new hashes, the second the same two again in one
        // byte each, the third one in a message of one record (no count).
        assert_eq!(sizes, [12 + (2 + 1 + 8) + (1 + 1 + 8), 11 + 3 + 3, 10 + 3]);
    }

    #[test]
    fn irregular_capture_times_and_sequence_steps_round_trip() {
        let (key, _, held) = typed_glyph();
        let mut packer = FramePacker::default();
        let mut unpacker = FrameUnpacker::default();
        packer.pack(Arc::new(key.clone()), held.hashes());
        unpacker.unpack(key, None).unwrap();
        let update = |sequence: u64| {
            let mut u = Vec::new();
            UpdateHeader {
                sequence,
                width: 128,
                height: 64,
                tile_size: 64,
                format: PixelFormat::Bgra8,
                keyframe: false,
                tile_count: 0,
            }
            .write(&[], &mut u);
            u
        };
        let times = [5, 70_000, 3, u64::MAX, 1 << 40, 1 << 40, 0];
        for (n, &time) in times.iter().enumerate() {
            let sequence = 2 + n as u64 * n as u64;
            let m = framed(sequence, time, held.value(), &update(sequence));
            let wire = packer.pack(Arc::new(m.clone()), held.hashes());
            assert!(is_compact(wire[0]));
            assert_eq!(
                unpacker.unpack(wire.to_vec(), Some(&held)).unwrap().message,
                m
            );
        }
    }

    #[test]
    fn a_viewer_without_the_previous_frame_does_not_apply_what_left_bases_out() {
        let (key, delta, held) = typed_glyph();
        let mut packer = FramePacker::default();
        packer.pack(Arc::new(key.clone()), held.hashes());
        let wire = packer.pack(Arc::new(delta.clone()), &[]);
        // No frame held, or another frame (a tile changed since the keyframe).
        let mut other = held.clone();
        let mut mask = DirtyMask::new(2);
        mask.set(1);
        let mut changed = FrameBuffer::new(128, 64, PixelFormat::Bgra8).unwrap();
        changed.pixels_mut().fill(7);
        other.update_from_frame(&changed.as_frame(), &mask);
        for held in [None, Some(&other)] {
            let mut unpacker = FrameUnpacker::default();
            unpacker.unpack(key.clone(), None).unwrap();
            let unpacked = unpacker.unpack(wire.to_vec(), held).unwrap();
            assert!(unpacked.not_held);
            assert_eq!(unpacked.message.len(), delta.len());
        }
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
            let wire = packer.pack(Arc::new(canonical.clone()), &[]);
            assert_eq!(*wire, canonical, "no previous message of this size");
            assert_eq!(unpack_held(&mut unpacker, &wire, None), canonical);
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
            let wire = packer.pack(Arc::new(canonical.clone()), &[]);
            assert_eq!(*wire, canonical);
            assert_eq!(unpack_held(&mut unpacker, &wire, None), canonical);
        }
    }

    #[test]
    fn hostile_compact_messages_are_errors() {
        let mut unpacker = FrameUnpacker::default();
        assert_eq!(
            unpacker.unpack(vec![COMPACT_TAG, 1, 0], None),
            Err(CompactError::NoContext)
        );
        assert_eq!(
            unpacker.unpack(vec![7], None),
            Err(CompactError::UnknownForm(7))
        );
        assert_eq!(
            unpacker.unpack(Vec::new(), None),
            Err(CompactError::Truncated)
        );
        // Establish a 128x128 frame of 64-pixel tiles (4 tiles).
        unpacker
            .unpack(message(1, 0, &blank_keyframe()), None)
            .unwrap();
        let head = |flags: u8, tiles: u8| {
            let mut m = vec![COMPACT_TAG | flags, 1, 0];
            m.extend_from_slice(&[0; 8]);
            m.push(tiles);
            m
        };
        let mut keyframe = head(FLAG_KEYFRAME, 0);
        assert!(is_compact(keyframe[0]));
        assert!(matches!(
            unpacker.unpack(keyframe.clone(), None),
            Err(CompactError::Invalid(_))
        ));
        keyframe[0] = COMPACT_TAG;
        assert!(
            unpacker.unpack(keyframe, None).is_ok(),
            "an empty delta is fine"
        );
        assert!(matches!(
            unpacker.unpack(head(0, 5), None),
            Err(CompactError::Invalid("more tiles than the frame has"))
        ));
        // A record (not the last) whose payload runs past the end.
        let mut cut = head(0, 2);
        cut.extend_from_slice(&[0, 1, 100, 1, 2, 3]);
        assert_eq!(unpacker.unpack(cut, None), Err(CompactError::Truncated));
        // A record whose repeated block's length its bytes tell, cut short: a palette rect
        // with its base hash (8 bytes), its rectangle (4) and a palette of 2 colours (9).
        let mut cut = head(0, 2);
        cut.extend_from_slice(&[0, 6 | REPEAT_FORM]);
        cut.extend_from_slice(&[0; 12]);
        cut.extend_from_slice(&[2, 0, 0]);
        assert_eq!(unpacker.unpack(cut, None), Err(CompactError::Truncated));
        let mut no_count = head(0, 2);
        no_count.extend_from_slice(&[0, 5 | REPEAT_FORM]);
        assert_eq!(
            unpacker.unpack(no_count, None),
            Err(CompactError::Truncated)
        );
        // A tile index below zero.
        let mut negative = head(0, 1);
        negative.extend_from_slice(&[1, 2, 1, 2, 3, 4]);
        assert!(matches!(
            unpacker.unpack(negative, None),
            Err(CompactError::Invalid(_))
        ));
        // A patch too short for its header.
        let mut patch = head(0, 1);
        patch.extend_from_slice(&[0, 3, 0, 0]);
        assert!(matches!(
            unpacker.unpack(patch, None),
            Err(CompactError::Invalid(_))
        ));
        // Too many copies.
        let mut copies = head(FLAG_COPIES, 0);
        copies.push(17);
        assert!(matches!(
            unpacker.unpack(copies, None),
            Err(CompactError::Invalid(_))
        ));
        // A base hash left out of a whole tile, or beside copies.
        let mut whole = head(0, 1);
        whole.extend_from_slice(&[0, 1 | BASE_LEFT_OUT, 0]);
        assert_eq!(
            unpacker.unpack(whole, None),
            Err(CompactError::Invalid(
                "a base hash or rectangle on a whole tile"
            ))
        );
        let mut copied = head(FLAG_COPIES, 1);
        copied.push(0);
        copied.extend_from_slice(&[0, 3 | BASE_LEFT_OUT, 0, 0, 0, 0, 0]);
        assert_eq!(
            unpacker.unpack(copied, None),
            Err(CompactError::Invalid("a base hash left out beside copies"))
        );
        // A recent palette with none before, and colours cut short.
        let mut repeat = head(0, 1);
        repeat.extend_from_slice(&[0, 5, RECENT_PALETTE, 0]);
        assert_eq!(
            unpacker.unpack(repeat, None),
            Err(CompactError::Invalid("no such recent palette"))
        );
        let mut short = head(0, 1);
        short.extend_from_slice(&[0, 5, 2, 0, 0]);
        assert_eq!(
            unpacker.unpack(short, None),
            Err(CompactError::Invalid("palette colours cut short"))
        );
        // A continued rectangle without a tile to its left or above with a patch, and on a
        // whole tile.
        let mut alone = head(0, 1);
        alone.extend_from_slice(&[0, 3 | patch_rect::RECT_CONTINUED, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(
            unpacker.unpack(alone, None),
            Err(CompactError::Invalid(
                "a continued rectangle without a neighbour"
            ))
        );
        let mut whole_continued = head(0, 1);
        whole_continued.extend_from_slice(&[0, 1 | patch_rect::RECT_CONTINUED, 0]);
        assert_eq!(
            unpacker.unpack(whole_continued, None),
            Err(CompactError::Invalid(
                "a base hash or rectangle on a whole tile"
            ))
        );
        // A cached tile naming a recent hash when none was named, and in the history form.
        let mut unnamed = head(0, 1);
        unnamed.extend_from_slice(&[0, 7 | REPEAT_FORM, 0]);
        assert_eq!(
            unpacker.unpack(unnamed, None),
            Err(CompactError::Invalid("no such recent cached tile"))
        );
        let mut history = head(0, 1);
        history.extend_from_slice(&[0, 7 | HISTORY_FORM]);
        history.extend_from_slice(&[0; CACHED_LEN]);
        assert_eq!(
            unpacker.unpack(history, None),
            Err(CompactError::Invalid("history form on a cached tile"))
        );
        // The tag's one-record bit with no record.
        let mut one = head(0, 0);
        one[0] |= ONE_RECORD;
        one.pop();
        assert_eq!(unpacker.unpack(one, None), Err(CompactError::Truncated));
        // Trailing bytes.
        let mut trailing = head(0, 0);
        trailing.push(0);
        assert!(matches!(
            unpacker.unpack(trailing, None),
            Err(CompactError::Invalid(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            tag in 0u8..16,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let mut unpacker = FrameUnpacker {
                previous: Some(Context { sequence: 1, capture_time_us: 2, time_step: 3, checksum: 3, width: 256, height: 256, tile_size: 16, format: 0 }),
                ..FrameUnpacker::default()
            };
            // Any mix of the tag's bits.
            let tag = COMPACT_TAG
                | (tag & 3) << 3
                | if tag & 4 != 0 { FLAG_COPIES } else { 0 }
                | if tag & 8 != 0 { FLAG_KEYFRAME } else { 0 };
            let mut wire = vec![tag];
            wire.extend_from_slice(&body);
            unpacker.palettes.add(&[1, 2, 3, 4]);
            unpacker.cached.add(&[7; CACHED_LEN]);
            let held = FrameChecksum::new(TileGrid::new(256, 256, 16).unwrap());
            if let Ok(Unpacked { message: canonical, .. }) = unpacker.unpack(wire, Some(&held)) {
                // Whatever unpacks is a whole canonical message of the same frame.
                proptest::prop_assert!(canonical.len() >= FRAME_HEADER_LEN + UPDATE_HEADER_LEN);
                proptest::prop_assert_eq!(&canonical[..4], &FRAME_MAGIC[..]);
                proptest::prop_assert_eq!(u32_at(&canonical, FRAME_HEADER_LEN + 12), 256);
            }
        }
    }
}
