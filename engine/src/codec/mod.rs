//! The tile codec: dirty tiles packed into an update message ([`TileEncoder`]), and the strict
//! reverse ([`parse_update`], [`DecodedTiles`]).
//!
//! Each tile is compressed with lz4 (block format) and sent raw when that does not shrink it.
//! Decoding checks every length, index and size against [`DecodeLimits`] before it allocates or
//! writes anything, and answers bad input with a [`DecodeError`], never a panic.

mod decode;
mod encode;
mod update;

pub use decode::{DecodedTile, DecodedTiles};
pub use encode::{EncodeError, EncodeStats, TileEncoder};
pub use update::{
    parse_update, DecodeError, DecodeLimits, TileCodec, TilePayload, Update, UpdateHeader,
    TILE_HEADER_LEN, UPDATE_HEADER_LEN, UPDATE_MAGIC,
};
