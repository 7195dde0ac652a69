//! [`DecodedTiles`]: an update's tiles decompressed, in parallel, into one reusable buffer.

use super::palette::decode_palette;
use super::tile_cache::TileCache;
use super::update::{DecodeError, PatchHeader, TileCodec, Update, PATCH_HEADER_LEN};
use crate::{CpuFrame, Rect, TilePayload, BYTES_PER_PIXEL};
use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

/// A tile's payload, its place in the frame, and where its pixels go.
type Slot<'p, 's> = (&'p TilePayload<'p>, Rect, &'s mut [u8]);

/// One decoded tile: where it goes and where its packed pixels are in [`DecodedTiles`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedTile {
    pub index: u32,
    pub rect: Rect,
    offset: usize,
}

/// The tiles of the last decoded update, sorted by tile index, their pixels packed row by row
/// (`rect.width * 4` bytes a row). Reused between updates: steady state allocates nothing.
#[derive(Debug, Default)]
pub struct DecodedTiles {
    pixels: Vec<u8>,
    tiles: Vec<DecodedTile>,
}

impl DecodedTiles {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes every tile of `update` into whole tiles. Patches apply to `base`, the frame the
    /// receiver holds (the update's size), whose tile must hash to the patch's base hash;
    /// cached tiles come from `cache`. On error the previous contents are gone and nothing
    /// half-decoded is exposed: [`Self::tiles`] is empty.
    pub fn decode(
        &mut self,
        update: &Update<'_>,
        base: Option<&CpuFrame<'_>>,
        cache: Option<&TileCache>,
    ) -> Result<(), DecodeError> {
        self.tiles.clear();
        let h = &update.header;
        let base =
            base.filter(|b| (b.width(), b.height(), b.format()) == (h.width, h.height, h.format));
        let mut offset = 0;
        let mut tiles = Vec::with_capacity(update.tiles.len());
        for t in &update.tiles {
            let rect = update.grid.tile_rect(t.index as usize);
            tiles.push(DecodedTile {
                index: t.index,
                rect,
                offset,
            });
            offset += rect.width as usize * rect.height as usize * BYTES_PER_PIXEL;
        }
        // `offset` is at most the frame's size: indices are unique and inside the grid, and
        // the frame's size was checked against the limits.
        self.pixels.resize(offset, 0);
        let mut slots = Vec::with_capacity(update.tiles.len());
        let mut rest = &mut self.pixels[..];
        for (payload, tile) in update.tiles.iter().zip(&tiles) {
            let len = tile.rect.width as usize * tile.rect.height as usize * BYTES_PER_PIXEL;
            let (slot, tail) = rest.split_at_mut(len);
            rest = tail;
            slots.push((payload, tile.rect, slot));
        }
        let decode_one = |scratch: &mut Scratch, (payload, rect, slot): Slot<'_, '_>| {
            decode_tile(payload, &rect, base, cache, scratch, slot)
        };
        if slots.len() >= 8 {
            slots
                .into_par_iter()
                .try_for_each_init(Scratch::default, decode_one)?;
        } else {
            let mut scratch = Scratch::default();
            slots
                .into_iter()
                .try_for_each(|s| decode_one(&mut scratch, s))?;
        }
        tiles.sort_unstable_by_key(|t| t.index);
        self.tiles = tiles;
        Ok(())
    }

    /// The decoded tiles, by ascending index.
    pub fn tiles(&self) -> &[DecodedTile] {
        &self.tiles
    }

    /// The packed pixels of `tile`.
    pub fn pixels(&self, tile: &DecodedTile) -> &[u8] {
        let len = tile.rect.width as usize * tile.rect.height as usize * BYTES_PER_PIXEL;
        &self.pixels[tile.offset..tile.offset + len]
    }
}

/// Decompresses one lz4 block into exactly `out`.
fn lz4_exact(index: u32, data: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
    let got = lz4_flex::block::decompress_into(data, out).map_err(|e| DecodeError::Lz4 {
        index,
        reason: e.to_string(),
    })?;
    if got != out.len() {
        return Err(DecodeError::DecompressedSize {
            index,
            got,
            expected: out.len(),
        });
    }
    Ok(())
}

/// Reusable buffers of one decoding thread.
#[derive(Default)]
struct Scratch {
    /// The held tile, then a patch's rectangle.
    block: Vec<u8>,
    /// Palette indices.
    indices: Vec<u8>,
}

/// Decodes one tile (at `rect` in the frame) into `slot`, its packed pixels.
fn decode_tile(
    payload: &TilePayload<'_>,
    rect: &Rect,
    base: Option<&CpuFrame<'_>>,
    cache: Option<&TileCache>,
    scratch: &mut Scratch,
    slot: &mut [u8],
) -> Result<(), DecodeError> {
    let index = payload.index;
    let palette = |body: &[u8], width: u32, indices: &mut Vec<u8>, out: &mut [u8]| {
        decode_palette(body, width as usize, indices, out)
            .map_err(|error| DecodeError::Palette { index, error })
    };
    match payload.codec {
        TileCodec::Raw => slot.copy_from_slice(payload.data),
        TileCodec::Lz4 => lz4_exact(index, payload.data, slot)?,
        TileCodec::Solid => {
            for px in slot.chunks_exact_mut(BYTES_PER_PIXEL) {
                px.copy_from_slice(payload.data);
            }
        }
        TileCodec::Palette => palette(payload.data, rect.width, &mut scratch.indices, slot)?,
        TileCodec::Cached => {
            let hash = u64::from_le_bytes(payload.data.try_into().map_err(|_| {
                DecodeError::PayloadLength {
                    index,
                    codec: TileCodec::Cached,
                    len: payload.data.len(),
                    allowed: 8,
                }
            })?);
            // An entry of another size (an edge tile's twin by hash) is no hit.
            match cache
                .and_then(|c| c.get(hash))
                .filter(|p| p.len() == slot.len())
            {
                Some(pixels) => slot.copy_from_slice(pixels),
                None => return Err(DecodeError::CacheMiss { index, hash }),
            }
        }
        TileCodec::Patch | TileCodec::Rect | TileCodec::PaletteRect => {
            let base = base.ok_or(DecodeError::NoBase(index))?;
            let header = PatchHeader::read(payload.data);
            let block = &mut scratch.block;
            base.copy_tile_canonical(rect, block);
            let held = xxh3_64(block);
            if held != header.base_hash {
                return Err(DecodeError::BaseMismatch {
                    index,
                    expected: header.base_hash,
                    held,
                });
            }
            slot.copy_from_slice(block);
            let p = header.rect;
            let row = p.width as usize * BYTES_PER_PIXEL;
            block.resize(row * p.height as usize, 0);
            let body = &payload.data[PATCH_HEADER_LEN..];
            if payload.codec == TileCodec::PaletteRect {
                palette(body, p.width, &mut scratch.indices, block)?;
            } else {
                lz4_exact(index, body, block)?;
            }
            let stride = rect.width as usize * BYTES_PER_PIXEL;
            let xor = payload.codec == TileCodec::Patch;
            for (dy, src) in block.chunks_exact(row).enumerate() {
                let at = (p.y as usize + dy) * stride + p.x as usize * BYTES_PER_PIXEL;
                let dst = &mut slot[at..at + row];
                if xor {
                    dst.iter_mut().zip(src).for_each(|(d, x)| *d ^= x);
                } else {
                    dst.copy_from_slice(src);
                }
            }
        }
    }
    Ok(())
}
