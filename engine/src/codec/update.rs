//! The update message: header and tile records, its byte layout and its parser.
//!
//! All integers are little-endian.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | magic | `[u8; 4]` | `TSU1` |
//! | sequence | `u64` | frame sequence number |
//! | width, height | `u32`, `u32` | frame size in pixels, 1..=limits |
//! | tile_size | `u16` | tile side, 16..=256 |
//! | format | `u8` | 0 BGRA8, 1 RGBA8, 2 BGRx8, 3 RGBx8 |
//! | flags | `u8` | bit 0: keyframe (every tile present); bit 1: copy commands follow; other bits zero |
//! | tile_count | `u32` | number of tile records that follow |
//!
//! With bit 1: `copy_count: u8` (1..=16), then that many [`CopyRect`]s of 20 bytes, applied
//! before the tiles (never in a keyframe).
//!
//! Each tile record: `index: u32` (row-major, < tiles in the grid, each at most once),
//! `codec: u8`, `len: u32`, then `len` bytes:
//!
//! - 0 raw: exactly the tile's pixels, rows packed;
//! - 1 lz4: one lz4 block that decompresses to exactly the tile's pixels;
//! - 2 solid: 4 bytes, the one pixel every pixel of the tile has;
//! - 3 patch (deltas only): the XXH3-64 of the tile the receiver must hold (`u64`), a rectangle
//!   inside the tile (`x, y, width, height: u16`), then one lz4 block that decompresses to the
//!   rectangle's pixels XOR the held ones, rows packed. Everything outside it stays as held.
//! - 4 rect (deltas only): as patch, but the block holds the rectangle's new pixels themselves.
//! - 5 palette: the tile in the palette form (`super::palette`).
//! - 6 palette rect (deltas only): a patch header, then the rectangle's new pixels in the
//!   palette form.
//! - 7 cached (deltas only): the XXH3-64 of the tile's packed pixels (`u64`), a tile the
//!   receiver holds in its tile cache (`super::tile_cache`).

use super::copy::{CopyRect, COPY_LEN, MAX_COPIES};
use super::palette::{max_palette_body, PaletteError, MAX_PALETTE_COLOURS};
use crate::{PixelFormat, Rect, TileGrid, MAX_TILE_SIZE, MIN_TILE_SIZE};
use thiserror::Error;

pub const UPDATE_MAGIC: [u8; 4] = *b"TSU1";
/// Bytes of the update header.
pub const UPDATE_HEADER_LEN: usize = 28;
/// Bytes of a tile record before its payload.
pub const TILE_HEADER_LEN: usize = 9;

/// The bit of [`crate::stream::Capabilities::codecs`] that says copy commands are understood
/// (the other bits are [`TileCodec::bit`]s).
pub const COPIES_CAPABILITY: u8 = 0x80;

/// The update's flags: a keyframe; copy commands follow.
pub(crate) const FLAG_KEYFRAME: u8 = 1;
pub(crate) const FLAG_COPIES: u8 = 2;

/// How one tile's pixels are packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TileCodec {
    /// The pixels as they are, rows packed.
    Raw,
    /// The packed pixels compressed as one lz4 block.
    Lz4,
    /// One colour for the whole tile: 4 bytes.
    Solid,
    /// A rectangle of the tile XOR the pixels the receiver holds, as one lz4 block, checked
    /// against the hash of the held tile ([`PATCH_HEADER_LEN`] bytes of header first).
    Patch,
    /// A rectangle of the tile's new pixels, as one lz4 block, over the held tile (checked by
    /// its hash, as a patch).
    Rect,
    /// The tile's colours (at most 16) and an lz4 block of each pixel's index into them.
    Palette,
    /// A rectangle of the tile's new pixels in the palette form, over the held tile (checked by
    /// its hash, as a patch).
    PaletteRect,
    /// A tile from the receiver's tile cache, named by the hash of its pixels.
    Cached,
}

impl TileCodec {
    pub const ALL: [TileCodec; 8] = [
        Self::Raw,
        Self::Lz4,
        Self::Solid,
        Self::Patch,
        Self::Rect,
        Self::Palette,
        Self::PaletteRect,
        Self::Cached,
    ];

    pub fn wire_code(self) -> u8 {
        match self {
            Self::Raw => 0,
            Self::Lz4 => 1,
            Self::Solid => 2,
            Self::Patch => 3,
            Self::Rect => 4,
            Self::Palette => 5,
            Self::PaletteRect => 6,
            Self::Cached => 7,
        }
    }
    pub fn from_wire_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.wire_code() == code)
    }
    /// The codec's bit in [`crate::stream::Capabilities::codecs`]. [`Self::Cached`] has none
    /// (0): a viewer takes it when it announces a tile cache
    /// ([`crate::stream::Capabilities::tile_cache_bytes`]).
    pub fn bit(self) -> u8 {
        match self {
            Self::Cached => 0,
            other => 1 << other.wire_code(),
        }
    }

    /// Whether the codec changes part of a tile the receiver holds.
    pub fn patches(self) -> bool {
        matches!(self, Self::Patch | Self::Rect | Self::PaletteRect)
    }
}

/// The fewest bytes of a palette body: one colour and a one-byte lz4 block.
const MIN_PALETTE_BODY: usize = 1 + 4 + 1;
const _: () = assert!(MAX_PALETTE_COLOURS <= u8::MAX as usize);

/// Bytes of a [`TileCodec::Cached`] payload: the tile's hash.
pub const CACHED_LEN: usize = 8;

/// Bytes of a patch payload before its lz4 block: base hash `u64`, then x, y, width, height
/// as `u16`.
pub const PATCH_HEADER_LEN: usize = 16;

/// The header of a [`TileCodec::Patch`], [`TileCodec::Rect`] or [`TileCodec::PaletteRect`]
/// payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchHeader {
    /// XXH3-64 of the canonical pixels of the tile the patch applies to.
    pub base_hash: u64,
    /// Where the patch lies, relative to the tile's top left.
    pub rect: Rect,
}

impl PatchHeader {
    pub(crate) fn to_bytes(self) -> [u8; PATCH_HEADER_LEN] {
        let mut b = [0u8; PATCH_HEADER_LEN];
        b[..8].copy_from_slice(&self.base_hash.to_le_bytes());
        let r = self.rect;
        for (i, v) in [r.x, r.y, r.width, r.height].into_iter().enumerate() {
            b[8 + 2 * i..10 + 2 * i].copy_from_slice(&(v as u16).to_le_bytes());
        }
        b
    }

    /// Reads the header of a patch payload (at least [`PATCH_HEADER_LEN`] bytes, checked by
    /// the parser).
    pub(crate) fn read(payload: &[u8]) -> Self {
        let u16_at = |i: usize| u32::from(u16::from_le_bytes([payload[i], payload[i + 1]]));
        Self {
            base_hash: u64::from_le_bytes(payload[..8].try_into().expect("8 bytes")),
            rect: Rect::new(u16_at(8), u16_at(10), u16_at(12), u16_at(14)),
        }
    }
}

/// What a receiver accepts; anything larger is refused before allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_width: u32,
    pub max_height: u32,
    /// Largest width * height (the framebuffer is 4 bytes a pixel).
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    /// 16384 on a side and 64 Mpx (a 256 MiB framebuffer): 8K and dual 4K fit.
    fn default() -> Self {
        Self {
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 8192 * 8192,
        }
    }
}

/// Why an update was refused. Nothing was applied.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("update truncated: {what} needs {needed} bytes, {available} left")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("not an update (magic {0:02x?})")]
    BadMagic([u8; 4]),
    #[error("unknown update flags {0:#04x}")]
    UnknownFlags(u8),
    #[error("unknown pixel format code {0}")]
    UnknownFormat(u8),
    #[error("tile size {0} is outside {MIN_TILE_SIZE}..={MAX_TILE_SIZE}")]
    TileSize(u32),
    #[error("frame size {width}x{height} is empty or beyond the limits {limits:?}")]
    FrameSize {
        width: u32,
        height: u32,
        limits: DecodeLimits,
    },
    #[error("update declares {count} tiles, the frame has {max}")]
    TooManyTiles { count: u32, max: usize },
    #[error("tile index {index} outside a grid of {tiles} tiles")]
    TileIndex { index: u32, tiles: usize },
    #[error("tile {0} appears twice")]
    DuplicateTile(u32),
    #[error("tile {index} has unknown codec {code}")]
    UnknownCodec { index: u32, code: u8 },
    #[error("tile {index}: {codec:?} payload of {len} bytes, allowed {allowed}")]
    PayloadLength {
        index: u32,
        codec: TileCodec,
        len: usize,
        allowed: usize,
    },
    #[error("tile {index}: lz4 data is corrupt: {reason}")]
    Lz4 { index: u32, reason: String },
    #[error("tile {index}: decompressed to {got} bytes, the tile has {expected}")]
    DecompressedSize {
        index: u32,
        got: usize,
        expected: usize,
    },
    #[error(
        "tile {index}: patch rectangle {rect:?} is empty or outside the {width}x{height} tile"
    )]
    PatchRect {
        index: u32,
        rect: Rect,
        width: u32,
        height: u32,
    },
    #[error("tile {index}: palette: {error}")]
    Palette { index: u32, error: PaletteError },
    #[error("tile {0}: a keyframe cannot patch what the receiver holds")]
    PatchInKeyframe(u32),
    #[error("tile {0}: a keyframe cannot refer to the tile cache")]
    CachedInKeyframe(u32),
    #[error("tile {index}: no tile with hash {hash:#018x} in the tile cache")]
    CacheMiss { index: u32, hash: u64 },
    #[error("tile {0}: a patch needs the frame it applies to, and there is none")]
    NoBase(u32),
    #[error("tile {index}: the patch is for a tile with hash {expected:#018x}, the one held has {held:#018x}")]
    BaseMismatch {
        index: u32,
        expected: u64,
        held: u64,
    },
    #[error("copy {copy}: the source is expected to hash to {expected:#018x}, the one held hashes to {held:#018x}")]
    CopySourceMismatch {
        copy: usize,
        expected: u64,
        held: u64,
    },
    #[error("copy {copy}: {rect:?} to ({dst_x}, {dst_y}) is empty or leaves the frame")]
    CopyBounds {
        copy: usize,
        rect: Rect,
        dst_x: u32,
        dst_y: u32,
    },
    #[error("{0} copy commands; 1..={MAX_COPIES} allowed, none in a keyframe")]
    CopyCount(usize),
    #[error("copies move {0} pixels, more than the frame holds")]
    CopyArea(u64),
    #[error("keyframe carries {count} tiles, the frame has {expected}")]
    IncompleteKeyframe { count: u32, expected: usize },
    #[error("{0} bytes after the last tile")]
    TrailingBytes(usize),
}

/// The fixed part of an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateHeader {
    pub sequence: u64,
    pub width: u32,
    pub height: u32,
    pub tile_size: u32,
    pub format: PixelFormat,
    /// Every tile of the frame is present: the receiver may start (or restart) from it.
    pub keyframe: bool,
    pub tile_count: u32,
}

impl UpdateHeader {
    /// Writes the header, then `copies` (none in a keyframe).
    pub(crate) fn write(&self, copies: &[CopyRect], out: &mut Vec<u8>) {
        out.extend_from_slice(&UPDATE_MAGIC);
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&self.width.to_le_bytes());
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&(self.tile_size as u16).to_le_bytes());
        out.push(self.format.wire_code());
        let flags = if self.keyframe { FLAG_KEYFRAME } else { 0 }
            | if copies.is_empty() { 0 } else { FLAG_COPIES };
        out.push(flags);
        out.extend_from_slice(&self.tile_count.to_le_bytes());
        if !copies.is_empty() {
            out.push(copies.len() as u8);
            for c in copies {
                c.write(out);
            }
        }
    }
}

/// One tile record, its payload borrowed from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TilePayload<'a> {
    pub index: u32,
    pub codec: TileCodec,
    pub data: &'a [u8],
}

/// A parsed, validated update.
#[derive(Clone, Debug)]
pub struct Update<'a> {
    pub header: UpdateHeader,
    /// Applied, in order, before the tiles.
    pub copies: Vec<CopyRect>,
    pub grid: TileGrid,
    pub tiles: Vec<TilePayload<'a>>,
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated {
                what,
                needed: n,
                available: self.bytes.len(),
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N, what)?.try_into().expect("took N bytes"))
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
}

/// Parses and validates `bytes` as one update. Payloads are checked for length here and for
/// content when decoded ([`crate::DecodedTiles::decode`]).
pub fn parse_update<'a>(bytes: &'a [u8], limits: &DecodeLimits) -> Result<Update<'a>, DecodeError> {
    let mut r = Reader { bytes };
    let magic = r.array::<4>("magic")?;
    if magic != UPDATE_MAGIC {
        return Err(DecodeError::BadMagic(magic));
    }
    let sequence = r.u64("sequence")?;
    let width = r.u32("width")?;
    let height = r.u32("height")?;
    let tile_size = u32::from(r.u16("tile size")?);
    let format_code = r.u8("pixel format")?;
    let flags = r.u8("flags")?;
    let tile_count = r.u32("tile count")?;

    if flags & !(FLAG_KEYFRAME | FLAG_COPIES) != 0 {
        return Err(DecodeError::UnknownFlags(flags));
    }
    let format =
        PixelFormat::from_wire_code(format_code).ok_or(DecodeError::UnknownFormat(format_code))?;
    if !(MIN_TILE_SIZE..=MAX_TILE_SIZE).contains(&tile_size) {
        return Err(DecodeError::TileSize(tile_size));
    }
    if width == 0
        || height == 0
        || width > limits.max_width
        || height > limits.max_height
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(DecodeError::FrameSize {
            width,
            height,
            limits: *limits,
        });
    }
    let grid =
        TileGrid::new(width, height, tile_size).map_err(|_| DecodeError::TileSize(tile_size))?;
    let tiles_in_grid = grid.tile_count();
    if tile_count as usize > tiles_in_grid {
        return Err(DecodeError::TooManyTiles {
            count: tile_count,
            max: tiles_in_grid,
        });
    }
    let keyframe = flags & FLAG_KEYFRAME != 0;
    let mut copies = Vec::new();
    if flags & FLAG_COPIES != 0 {
        let count = usize::from(r.u8("copy count")?);
        if keyframe || count == 0 || count > MAX_COPIES {
            return Err(DecodeError::CopyCount(if keyframe {
                count.max(1)
            } else {
                count
            }));
        }
        let mut area = 0u64;
        for copy in 0..count {
            let c = CopyRect::read(r.take(COPY_LEN, "copy command")?);
            if !c.fits(width, height) {
                return Err(DecodeError::CopyBounds {
                    copy,
                    rect: c.src,
                    dst_x: c.dst_x,
                    dst_y: c.dst_y,
                });
            }
            area += u64::from(c.src.width) * u64::from(c.src.height);
            copies.push(c);
        }
        // Applying copies keeps what they overwrite: at most one frame's worth.
        if area > u64::from(width) * u64::from(height) {
            return Err(DecodeError::CopyArea(area));
        }
    }
    if keyframe && tile_count as usize != tiles_in_grid {
        return Err(DecodeError::IncompleteKeyframe {
            count: tile_count,
            expected: tiles_in_grid,
        });
    }
    // Never reserve more records than the remaining bytes could hold.
    let mut tiles = Vec::with_capacity((tile_count as usize).min(r.bytes.len() / TILE_HEADER_LEN));
    let mut seen = crate::DirtyMask::new(tiles_in_grid);
    for _ in 0..tile_count {
        let index = r.u32("tile index")?;
        let code = r.u8("tile codec")?;
        let len = r.u32("tile length")? as usize;
        if index as usize >= tiles_in_grid {
            return Err(DecodeError::TileIndex {
                index,
                tiles: tiles_in_grid,
            });
        }
        if seen.get(index as usize) {
            return Err(DecodeError::DuplicateTile(index));
        }
        seen.set(index as usize);
        let codec =
            TileCodec::from_wire_code(code).ok_or(DecodeError::UnknownCodec { index, code })?;
        let tile_bytes = grid.tile_bytes(index as usize);
        let max_lz4 = lz4_flex::block::get_maximum_output_size;
        let (allowed, length_ok) = match codec {
            TileCodec::Raw => (tile_bytes, len == tile_bytes),
            TileCodec::Lz4 => (max_lz4(tile_bytes), len > 0 && len <= max_lz4(tile_bytes)),
            TileCodec::Solid => (4, len == 4),
            TileCodec::Palette => {
                let t = grid.tile_rect(index as usize);
                let most = max_palette_body(t.width as usize, t.height as usize);
                (most, len >= MIN_PALETTE_BODY && len <= most)
            }
            // The rectangle is checked once the header is read; this bounds the whole tile.
            TileCodec::Patch | TileCodec::Rect => {
                let most = PATCH_HEADER_LEN + max_lz4(tile_bytes);
                (most, len > PATCH_HEADER_LEN && len <= most)
            }
            TileCodec::PaletteRect => {
                let t = grid.tile_rect(index as usize);
                let most = PATCH_HEADER_LEN + max_palette_body(t.width as usize, t.height as usize);
                (
                    most,
                    len >= PATCH_HEADER_LEN + MIN_PALETTE_BODY && len <= most,
                )
            }
            TileCodec::Cached => (CACHED_LEN, len == CACHED_LEN),
        };
        if !length_ok {
            return Err(DecodeError::PayloadLength {
                index,
                codec,
                len,
                allowed,
            });
        }
        let data = r.take(len, "tile payload")?;
        if keyframe && codec == TileCodec::Cached {
            return Err(DecodeError::CachedInKeyframe(index));
        }
        if codec.patches() {
            if keyframe {
                return Err(DecodeError::PatchInKeyframe(index));
            }
            let tile = grid.tile_rect(index as usize);
            let rect = PatchHeader::read(data).rect;
            let inside = rect.width > 0
                && rect.height > 0
                && rect.right() <= tile.width
                && rect.bottom() <= tile.height;
            let (w, h) = (rect.width as usize, rect.height as usize);
            let allowed = PATCH_HEADER_LEN
                + if codec == TileCodec::PaletteRect {
                    max_palette_body(w, h)
                } else {
                    max_lz4(w * h * 4)
                };
            if !inside {
                return Err(DecodeError::PatchRect {
                    index,
                    rect,
                    width: tile.width,
                    height: tile.height,
                });
            }
            if len > allowed {
                return Err(DecodeError::PayloadLength {
                    index,
                    codec,
                    len,
                    allowed,
                });
            }
        }
        tiles.push(TilePayload { index, codec, data });
    }
    if !r.bytes.is_empty() {
        return Err(DecodeError::TrailingBytes(r.bytes.len()));
    }
    let header = UpdateHeader {
        sequence,
        width,
        height,
        tile_size,
        format,
        keyframe,
        tile_count,
    };
    Ok(Update {
        header,
        copies,
        grid,
        tiles,
    })
}
