//! The tile codec: dirty tiles packed into an update message ([`TileEncoder`]), and the strict
//! reverse ([`parse_update`], [`DecodedTiles`]).
//!
//! Each tile goes solid when it is one colour, as a patch or rect (a rectangle of the tile, XOR
//! the pixels the receiver holds or as they are, over the held tile, which is checked by its
//! hash) when little of a held tile changed, in the palette form when it has at most 16
//! colours, else compressed with lz4 (block format), or raw when that does not shrink it; a
//! tile the receiver holds in its tile cache goes as a reference to it.
//! Decoding checks every length, index and size against [`DecodeLimits`] before it allocates or
//! writes anything, and answers bad input with a [`DecodeError`], never a panic.

mod copy;
mod decode;
mod encode;
mod palette;
mod tile_cache;
mod update;

pub use copy::{apply_copies, hash_rect, move_pixels, CopyRect, CopyUndo, COPY_LEN, MAX_COPIES};
pub use decode::{DecodedTile, DecodedTiles};
pub use encode::{EncodeError, EncodeStats, PatchBase, TileEncoder};
pub(crate) use palette::index_bytes;
pub use palette::{PaletteError, MAX_PALETTE_COLOURS};
pub use tile_cache::{CacheModel, TileCache, MAX_TILE_CACHE_BYTES, TILE_CACHE_BYTES};
pub use update::{
    parse_update, DecodeError, DecodeLimits, PatchHeader, TileCodec, TilePayload, Update,
    UpdateHeader, CACHED_LEN, COPIES_CAPABILITY, PATCH_HEADER_LEN, TILE_HEADER_LEN,
    UPDATE_HEADER_LEN, UPDATE_MAGIC,
};
pub(crate) use update::{FLAG_COPIES, FLAG_KEYFRAME};
