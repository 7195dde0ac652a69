//! [`TileEncoder`]: packs the dirty tiles of a frame into an update, in parallel, each tile in
//! the smallest form the encoder finds: solid, a patch of what the receiver holds, palette, lz4
//! or raw.

use super::copy::CopyRect;
use super::palette::{encode_palette, PaletteScratch};
use super::update::{PatchHeader, TileCodec, UpdateHeader, COPIES_CAPABILITY};
use crate::frame::PARALLEL_MIN_TILES_TO_ENCODE;
use crate::{CpuFrame, DirtyMask, GridMismatch, PixelFormat, Rect, TileGrid, BYTES_PER_PIXEL};
use rayon::prelude::*;
use thiserror::Error;
use xxhash_rust::xxh3::xxh3_64;

/// Why a frame could not be encoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    #[error(transparent)]
    GridMismatch(#[from] GridMismatch),
    #[error("dirty mask covers {mask} tiles, the grid has {grid}")]
    MaskMismatch { mask: usize, grid: usize },
    #[error("{0} copy commands: this encoder sends none, or more than the format allows")]
    Copies(usize),
}

/// What an encode produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeStats {
    pub tiles: usize,
    pub lz4_tiles: usize,
    pub raw_tiles: usize,
    pub solid_tiles: usize,
    /// Patches and rects.
    pub patch_tiles: usize,
    /// Whole tiles and rects in the palette form.
    pub palette_tiles: usize,
    /// References to the receiver's tile cache.
    pub cached_tiles: usize,
    /// Bytes of the tiles' pixels before compression.
    pub pixel_bytes: usize,
    /// Bytes of the update message written.
    pub message_bytes: usize,
}

/// What a receiver holds, for patches: a frame, the XXH3-64 of each of its tiles' canonical
/// pixels, and the tiles the receiver is known to hold exactly as they are in that frame once
/// it has applied `copies` (which the update carries first).
#[derive(Clone, Copy)]
pub struct PatchBase<'a> {
    pub frame: CpuFrame<'a>,
    pub hashes: &'a [u64],
    pub held: &'a DirtyMask,
    pub copies: &'a [CopyRect],
}

impl PatchBase<'_> {
    /// The bytes a patch header costs on the wire. Deltas travel as compact frame messages
    /// (`stream::compact_frame`), where the rectangle takes 4 bytes and the base hash is left
    /// out but beside copies; the canonical header's 16 would have whole tiles chosen where
    /// the rectangle travels smaller.
    fn wire_header_len(&self) -> usize {
        if self.copies.is_empty() {
            4
        } else {
            4 + 8
        }
    }
}

/// Encodes dirty tiles; parallel over groups of tiles for all but tiny updates.
#[derive(Clone, Copy, Debug)]
pub struct TileEncoder {
    parallel: bool,
    /// The codecs it may use ([`TileCodec::bit`]); raw and lz4 always.
    codecs: u8,
}

impl Default for TileEncoder {
    fn default() -> Self {
        Self {
            parallel: true,
            codecs: TileCodec::ALL
                .iter()
                .fold(COPIES_CAPABILITY, |m, c| m | c.bit()),
        }
    }
}

#[derive(Default)]
struct Scratch {
    /// The tile's new pixels.
    tile: Vec<u8>,
    /// The tile as the receiver holds it.
    base: Vec<u8>,
    /// The whole tile's payload.
    whole: Vec<u8>,
    /// The changed rectangle's pixels (or their XOR with the held ones).
    rect: Vec<u8>,
    /// The rectangle in lz4.
    packed: Vec<u8>,
    /// The rectangle in the palette form.
    part: Vec<u8>,
    palette: PaletteScratch,
}

impl TileEncoder {
    pub fn single_threaded() -> Self {
        Self {
            parallel: false,
            ..Self::default()
        }
    }

    /// The same encoder limited to `codecs` ([`TileCodec::bit`]s, and [`COPIES_CAPABILITY`]
    /// for copy commands; raw and lz4 stay).
    pub fn with_codecs(self, codecs: u8) -> Self {
        Self {
            codecs: codecs | TileCodec::Raw.bit() | TileCodec::Lz4.bit(),
            ..self
        }
    }

    pub fn codecs(&self) -> u8 {
        self.codecs
    }

    fn uses(&self, codec: TileCodec) -> bool {
        self.codecs & codec.bit() != 0
    }

    /// Appends an update with the tiles of `mask` to `out` (a frame header, say, may precede it).
    /// With a `base`, its copies go first, and tiles the receiver holds there may go as
    /// patches of it.
    pub fn encode_delta(
        &self,
        frame: &CpuFrame<'_>,
        grid: &TileGrid,
        mask: &DirtyMask,
        base: Option<&PatchBase<'_>>,
        sequence: u64,
        out: &mut Vec<u8>,
    ) -> Result<EncodeStats, EncodeError> {
        self.encode_delta_cached(frame, grid, mask, base, None, sequence, out)
    }

    /// As [`Self::encode_delta`], and the tiles of `cached` (which the receiver holds in its
    /// tile cache with the content they have now, as its [`crate::CacheModel`] says) go as
    /// references unless they are one colour.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_delta_cached(
        &self,
        frame: &CpuFrame<'_>,
        grid: &TileGrid,
        mask: &DirtyMask,
        base: Option<&PatchBase<'_>>,
        cached: Option<&DirtyMask>,
        sequence: u64,
        out: &mut Vec<u8>,
    ) -> Result<EncodeStats, EncodeError> {
        // Tiles left out because a copy makes them right must never lose their copy.
        let copies = base.map_or(&[][..], |b| b.copies);
        if !copies.is_empty()
            && (self.codecs & COPIES_CAPABILITY == 0 || copies.len() > crate::MAX_COPIES)
        {
            return Err(EncodeError::Copies(copies.len()));
        }
        let base = base.filter(|b| {
            self.uses(TileCodec::Patch)
                && (b.frame.width(), b.frame.height(), b.frame.format())
                    == (frame.width(), frame.height(), frame.format())
                && b.hashes.len() == grid.tile_count()
                && b.held.len() == grid.tile_count()
        });
        let cached = cached.filter(|c| c.len() == grid.tile_count() && !c.none());
        self.encode(
            frame, grid, mask, base, cached, copies, sequence, false, out,
        )
    }

    /// Appends an update with every tile of the frame to `out`.
    pub fn encode_keyframe(
        &self,
        frame: &CpuFrame<'_>,
        grid: &TileGrid,
        sequence: u64,
        out: &mut Vec<u8>,
    ) -> Result<EncodeStats, EncodeError> {
        self.encode(
            frame,
            grid,
            &DirtyMask::full(grid.tile_count()),
            None,
            None,
            &[],
            sequence,
            true,
            out,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn encode(
        &self,
        frame: &CpuFrame<'_>,
        grid: &TileGrid,
        mask: &DirtyMask,
        base: Option<&PatchBase<'_>>,
        cached: Option<&DirtyMask>,
        copies: &[CopyRect],
        sequence: u64,
        keyframe: bool,
        out: &mut Vec<u8>,
    ) -> Result<EncodeStats, EncodeError> {
        grid.check_frame(frame.width(), frame.height())?;
        if mask.len() != grid.tile_count() {
            return Err(EncodeError::MaskMismatch {
                mask: mask.len(),
                grid: grid.tile_count(),
            });
        }
        let dirty: Vec<u32> = mask.iter().map(|i| i as u32).collect();
        let start = out.len();
        UpdateHeader {
            sequence,
            width: frame.width(),
            height: frame.height(),
            tile_size: grid.tile_size(),
            format: frame.format(),
            keyframe,
            tile_count: dirty.len() as u32,
        }
        .write(copies, out);

        let new_scratch = Scratch::default;
        let tile = TileJob {
            frame,
            grid,
            base,
            cached,
            solid: self.uses(TileCodec::Solid),
            rect: self.uses(TileCodec::Rect),
            palette: self.uses(TileCodec::Palette),
        };
        let mut stats = EncodeStats::default();
        if self.parallel
            && dirty.len() >= PARALLEL_MIN_TILES_TO_ENCODE
            && rayon::current_num_threads() > 1
        {
            // Groups of tiles, each written to its own buffer, joined in order: one allocation
            // a group, not a tile.
            let groups = rayon::current_num_threads() * 4;
            let per_group = dirty.len().div_ceil(groups).max(4);
            let parts: Vec<(Vec<u8>, EncodeStats)> = dirty
                .par_chunks(per_group)
                .map_init(new_scratch, |scratch, chunk| {
                    let mut part = Vec::new();
                    let mut s = EncodeStats::default();
                    for &index in chunk {
                        tile.encode(index, scratch, &mut part, &mut s);
                    }
                    (part, s)
                })
                .collect();
            for (part, s) in parts {
                out.extend_from_slice(&part);
                stats.add(&s);
            }
        } else {
            let mut scratch = new_scratch();
            for &index in &dirty {
                tile.encode(index, &mut scratch, out, &mut stats);
            }
        }
        stats.message_bytes = out.len() - start;
        Ok(stats)
    }
}

impl EncodeStats {
    /// Adds `o`'s tile and pixel counts (not its message bytes) to these.
    pub fn add(&mut self, o: &EncodeStats) {
        self.tiles += o.tiles;
        self.lz4_tiles += o.lz4_tiles;
        self.raw_tiles += o.raw_tiles;
        self.solid_tiles += o.solid_tiles;
        self.patch_tiles += o.patch_tiles;
        self.palette_tiles += o.palette_tiles;
        self.cached_tiles += o.cached_tiles;
        self.pixel_bytes += o.pixel_bytes;
    }
}

/// What every tile of one encode shares.
struct TileJob<'a> {
    frame: &'a CpuFrame<'a>,
    grid: &'a TileGrid,
    base: Option<&'a PatchBase<'a>>,
    /// Tiles the receiver holds in its tile cache.
    cached: Option<&'a DirtyMask>,
    solid: bool,
    /// Rects may stand in for patches.
    rect: bool,
    palette: bool,
}

impl TileJob<'_> {
    /// Appends tile `index`'s record to `out`: solid when it is one colour; else — when the
    /// receiver holds the tile and the changes fit in at most half of it — the changed
    /// rectangle as a patch, rect or palette rect if that is at most [`SMALL_PART`] bytes or
    /// smaller than the whole tile; else the whole tile (in the palette form when it has few
    /// colours, else lz4, or raw when lz4 does not shrink it).
    fn encode(
        &self,
        index: u32,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
        stats: &mut EncodeStats,
    ) {
        let rect = self.grid.tile_rect(index as usize);
        self.frame.copy_tile_canonical(&rect, &mut scratch.tile);
        let tile = &scratch.tile;
        stats.tiles += 1;
        stats.pixel_bytes += tile.len();
        if self.solid && is_solid(tile) {
            write_record(out, index, TileCodec::Solid, &[&tile[..BYTES_PER_PIXEL]]);
            stats.solid_tiles += 1;
            return;
        }
        if self.cached.is_some_and(|c| c.get(index as usize)) {
            write_record(
                out,
                index,
                TileCodec::Cached,
                &[&xxh3_64(tile).to_le_bytes()],
            );
            stats.cached_tiles += 1;
            return;
        }
        // A small part goes without trying the whole tile: a whole tile is rarely smaller, and
        // never by more than SMALL_PART bytes, and trying it (every pixel through the palette,
        // then lz4) is most of the work for a typed character.
        let part = self
            .base
            .filter(|b| b.held.get(index as usize))
            .and_then(|base| self.find_part(&rect, base, scratch).map(|p| (base, p)));
        if let Some((base, p)) = part.filter(|(b, p)| p.wire_len(b) <= SMALL_PART) {
            write_part(out, index, base, p, scratch, stats);
            return;
        }
        let (tile, whole) = (&scratch.tile, &mut scratch.whole);
        whole.clear();
        let whole_codec = if self.palette
            && encode_palette(tile, rect.width as usize, &mut scratch.palette, whole).is_some()
        {
            TileCodec::Palette
        } else {
            whole.resize(lz4_flex::block::get_maximum_output_size(tile.len()), 0);
            match lz4_flex::block::compress_into(tile, whole) {
                Ok(n) if n < tile.len() => {
                    whole.truncate(n);
                    TileCodec::Lz4
                }
                _ => {
                    whole.clear();
                    whole.extend_from_slice(tile);
                    TileCodec::Raw
                }
            }
        };
        if let Some((base, p)) = part.filter(|(b, p)| p.wire_len(b) < scratch.whole.len()) {
            write_part(out, index, base, p, scratch, stats);
            return;
        }
        write_record(out, index, whole_codec, &[&scratch.whole]);
        match whole_codec {
            TileCodec::Palette => stats.palette_tiles += 1,
            TileCodec::Lz4 => stats.lz4_tiles += 1,
            _ => stats.raw_tiles += 1,
        }
    }

    /// The smallest form of the tile's changed rectangle over the held tile (`rect` on the
    /// screen), when the changes fit in half of the tile; its body is left in `scratch.part`.
    fn find_part(&self, rect: &Rect, base: &PatchBase<'_>, scratch: &mut Scratch) -> Option<Part> {
        let tile = &scratch.tile;
        base.frame.copy_tile_canonical(rect, &mut scratch.base);
        let changed =
            changed_rect(tile, &scratch.base, rect.width).unwrap_or(Rect::new(0, 0, 1, 1));
        let area = u64::from(changed.width) * u64::from(changed.height);
        if area * 2 > u64::from(rect.width) * u64::from(rect.height) {
            return None;
        }
        // The rectangle's new pixels in the palette form, when they have few colours...
        let mut palette = None;
        if self.palette {
            pack_rect(tile, None, rect.width, &changed, &mut scratch.rect);
            scratch.part.clear();
            palette = encode_palette(
                &scratch.rect,
                changed.width as usize,
                &mut scratch.palette,
                &mut scratch.part,
            );
        }
        // ...or in lz4: XOR the held ones where few pixels of the rectangle changed (zeros
        // compress away); the new pixels themselves where most did (XOR of unrelated pictures
        // is noise).
        let differing = count_changed(tile, &scratch.base, rect.width, &changed);
        let codec = if differing * 2 <= area || !self.rect {
            TileCodec::Patch
        } else {
            TileCodec::Rect
        };
        let xor_base = (codec == TileCodec::Patch).then_some(&scratch.base[..]);
        pack_rect(tile, xor_base, rect.width, &changed, &mut scratch.rect);
        let lz4 = &mut scratch.packed;
        lz4.resize(
            lz4_flex::block::get_maximum_output_size(scratch.rect.len()),
            0,
        );
        let n = lz4_flex::block::compress_into(&scratch.rect, lz4)
            .expect("the buffer has lz4's worst-case size");
        let (codec, body) = match palette {
            Some(p) if p <= n => (TileCodec::PaletteRect, p),
            _ => {
                scratch.part.clear();
                scratch.part.extend_from_slice(&lz4[..n]);
                (codec, n)
            }
        };
        Some(Part {
            codec,
            rect: changed,
            body,
        })
    }
}

/// A tile's changed rectangle in its smallest form; the body is in `Scratch::part`.
#[derive(Clone, Copy)]
struct Part {
    codec: TileCodec,
    /// Relative to the tile.
    rect: Rect,
    body: usize,
}

/// A part this small (bytes on the wire) goes without trying the whole tile.
const SMALL_PART: usize = 64;

impl Part {
    /// Bytes on the wire, header included.
    fn wire_len(&self, base: &PatchBase<'_>) -> usize {
        self.body + base.wire_header_len()
    }
}

/// Appends tile `index` as `part` (its body in `scratch.part`) over `base`.
fn write_part(
    out: &mut Vec<u8>,
    index: u32,
    base: &PatchBase<'_>,
    part: Part,
    scratch: &Scratch,
    stats: &mut EncodeStats,
) {
    let head = PatchHeader {
        base_hash: base.hashes[index as usize],
        rect: part.rect,
    }
    .to_bytes();
    write_record(out, index, part.codec, &[&head, &scratch.part]);
    if part.codec == TileCodec::PaletteRect {
        stats.palette_tiles += 1;
    } else {
        stats.patch_tiles += 1;
    }
}

/// Appends a tile record whose payload is `parts`, in order.
fn write_record(out: &mut Vec<u8>, index: u32, codec: TileCodec, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.extend_from_slice(&index.to_le_bytes());
    out.push(codec.wire_code());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// Whether every pixel of the packed `tile` is the first one.
fn is_solid(tile: &[u8]) -> bool {
    let first = &tile[..BYTES_PER_PIXEL];
    tile.chunks_exact(BYTES_PER_PIXEL).all(|p| p == first)
}

/// The smallest rectangle (relative to the tile) holding every pixel where the packed tiles
/// `a` and `b` (`width` pixels a row) differ; none when they are equal.
fn changed_rect(a: &[u8], b: &[u8], width: u32) -> Option<Rect> {
    let height = (a.len() / (width as usize * BYTES_PER_PIXEL)) as u32;
    let packed = |p| {
        CpuFrame::new(
            width,
            height,
            width as usize * BYTES_PER_PIXEL,
            PixelFormat::Bgra8,
            p,
        )
    };
    let (a, b) = (packed(a).ok()?, packed(b).ok()?);
    a.changed_rect(&b, &Rect::new(0, 0, width, height))
}

/// How many pixels of `rect` differ between the packed tiles `a` and `b` (`width` pixels a
/// row).
fn count_changed(a: &[u8], b: &[u8], width: u32, rect: &Rect) -> u64 {
    let stride = width as usize * BYTES_PER_PIXEL;
    let (x0, row) = (
        rect.x as usize * BYTES_PER_PIXEL,
        rect.width as usize * BYTES_PER_PIXEL,
    );
    (rect.y as usize..rect.bottom() as usize)
        .map(|y| {
            let at = y * stride + x0;
            a[at..at + row]
                .chunks_exact(BYTES_PER_PIXEL)
                .zip(b[at..at + row].chunks_exact(BYTES_PER_PIXEL))
                .filter(|(p, q)| p != q)
                .count() as u64
        })
        .sum()
}

/// Writes `rect`'s pixels of the packed `tile` (`width` pixels a row) to `out`, rows packed —
/// XOR the same pixels of `xor` when given.
fn pack_rect(tile: &[u8], xor: Option<&[u8]>, width: u32, rect: &Rect, out: &mut Vec<u8>) {
    let stride = width as usize * BYTES_PER_PIXEL;
    let row = rect.width as usize * BYTES_PER_PIXEL;
    let x0 = rect.x as usize * BYTES_PER_PIXEL;
    out.clear();
    for dy in 0..rect.height as usize {
        let at = (rect.y as usize + dy) * stride + x0;
        let new = &tile[at..at + row];
        match xor {
            Some(held) => out.extend(new.iter().zip(&held[at..at + row]).map(|(a, b)| a ^ b)),
            None => out.extend_from_slice(new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_rect_is_the_bounding_box_of_the_differences() {
        let a = vec![0u8; 8 * 6 * 4];
        let mut b = a.clone();
        assert_eq!(changed_rect(&a, &b, 8), None);
        b[(2 * 8 + 5) * 4 + 1] = 1; // (5, 2)
        b[(4 * 8 + 3) * 4 + 3] = 1; // (3, 4)
        assert_eq!(changed_rect(&a, &b, 8), Some(Rect::new(3, 2, 3, 3)));
    }

    /// A 64x64 frame of two colours: text-like stripes.
    fn text_tile() -> crate::FrameBuffer {
        let mut f = crate::FrameBuffer::new(64, 64, PixelFormat::Bgra8).unwrap();
        for (i, px) in f.pixels_mut().chunks_exact_mut(4).enumerate() {
            let (x, y) = (i % 64, i / 64);
            let ink = (x * 7 + y * 3) % 11 < 3;
            px.copy_from_slice(if ink { &[0, 0, 0, 255] } else { &[255; 4] });
        }
        f
    }

    /// The update of `new` over the held `old` (one tile), and its stats.
    fn encode_over(old: &crate::FrameBuffer, new: &crate::FrameBuffer) -> EncodeStats {
        let grid = TileGrid::new(64, 64, 64).unwrap();
        let mut held = DirtyMask::new(1);
        held.set(0);
        let hashes = [7u64];
        let base = PatchBase {
            frame: old.as_frame(),
            hashes: &hashes,
            held: &held,
            copies: &[],
        };
        let mut out = Vec::new();
        TileEncoder::single_threaded()
            .encode_delta(
                &new.as_frame(),
                &grid,
                &DirtyMask::full(1),
                Some(&base),
                1,
                &mut out,
            )
            .unwrap()
    }

    #[test]
    fn a_typed_character_goes_as_its_rectangle_and_a_changed_tile_whole() {
        let old = text_tile();
        // A 6x10 glyph: a small part, sent without trying the whole tile.
        let mut glyph = old.clone();
        for y in 20..30 {
            for x in 30..36 {
                let at = (y * 64 + x) * 4;
                glyph.pixels_mut()[at..at + 4].copy_from_slice(&[0, 0, 0, 255]);
            }
        }
        let s = encode_over(&old, &glyph);
        assert_eq!((s.tiles, s.palette_tiles + s.patch_tiles), (1, 1), "{s:?}");
        assert!(s.message_bytes < 64 + 64, "{s:?}");
        // Every pixel changed: the whole tile.
        let mut all = old.clone();
        for px in all.pixels_mut().chunks_exact_mut(4) {
            px[0] ^= 0xFF;
        }
        let s = encode_over(&old, &all);
        assert_eq!((s.palette_tiles, s.patch_tiles), (1, 0), "{s:?}");
    }

    #[test]
    fn pack_rect_packs_the_rectangle() {
        let tile: Vec<u8> = (0..4 * 4 * 4).map(|i| i as u8).collect();
        let mut held = vec![0u8; tile.len()];
        held[(4 + 1) * 4] = 0xFF; // (1, 1)
        let (mut base, mut plain) = (Vec::new(), Vec::new());
        pack_rect(&tile, Some(&held), 4, &Rect::new(1, 1, 2, 2), &mut base);
        pack_rect(&tile, None, 4, &Rect::new(1, 1, 2, 2), &mut plain);
        let mut want = Vec::new();
        for (x, y) in [(1, 1), (2, 1), (1, 2), (2, 2)] {
            let at = (y * 4 + x) * 4;
            want.extend_from_slice(&tile[at..at + 4]);
        }
        assert_eq!(plain, want);
        want[0] ^= 0xFF;
        assert_eq!(base, want);
        let mut other = tile.clone();
        other[(4 + 1) * 4 + 2] ^= 1; // (1, 1): inside
        other[(3 * 4 + 3) * 4] ^= 1; // (3, 3): outside
        assert_eq!(count_changed(&tile, &other, 4, &Rect::new(0, 0, 2, 2)), 1);
    }
}
