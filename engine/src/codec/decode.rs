//! [`DecodedTiles`]: an update's tiles decompressed, in parallel, into one reusable buffer.

use super::update::{DecodeError, TileCodec, Update};
use crate::{Rect, BYTES_PER_PIXEL};
use rayon::prelude::*;

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

    /// Decodes every tile of `update`. On error the previous contents are gone and nothing
    /// half-decoded is exposed: [`Self::tiles`] is empty.
    pub fn decode(&mut self, update: &Update<'_>) -> Result<(), DecodeError> {
        self.tiles.clear();
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
            slots.push((payload, slot));
        }
        let decode_one = |(payload, slot): (&crate::TilePayload<'_>, &mut [u8])| match payload.codec
        {
            TileCodec::Raw => {
                slot.copy_from_slice(payload.data);
                Ok(())
            }
            TileCodec::Lz4 => {
                let got = lz4_flex::block::decompress_into(payload.data, slot).map_err(|e| {
                    DecodeError::Lz4 {
                        index: payload.index,
                        reason: e.to_string(),
                    }
                })?;
                if got != slot.len() {
                    return Err(DecodeError::DecompressedSize {
                        index: payload.index,
                        got,
                        expected: slot.len(),
                    });
                }
                Ok(())
            }
        };
        if slots.len() >= 8 {
            slots.into_par_iter().try_for_each(decode_one)?;
        } else {
            slots.into_iter().try_for_each(decode_one)?;
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
