//! Tessera's engine: the sans-IO core of a lossless, tile-based screen-sharing pipeline.
//!
//! It is frames and tile grids, the CPU and GPU tile diff, the lz4 tile codec with a strict
//! decoder, the CPU and GPU compositors, synthetic desktop scenes, the stream protocol and the
//! chat/command protocol ([`chat`]). It is not capture, not
//! networking and not a window: it opens no sockets and reads no clocks; the `tessera-platform`,
//! `tessera-sender` and `tessera-receiver` crates do that around it.
//!
//! The pipeline: a frame ([`Frame`]) is diffed against the previous one ([`FrameDiffer`],
//! [`CpuDiff`], [`GpuDiff`]) into a [`DirtyMask`] over a [`TileGrid`]; the dirty tiles are packed
//! into an update ([`TileEncoder`]); the receiver validates and decodes it ([`parse_update`],
//! [`DecodedTiles`]) and applies it ([`CpuCompositor`], [`GpuCompositor`]).

pub mod chat;
mod codec;
mod compositor;
mod diff;
mod dirty_mask;
mod frame;
mod gpu_context;
mod rect;
pub mod stream;
pub mod synthetic;
mod tile_grid;
mod window_surface;

pub use codec::{
    apply_copies, hash_rect, move_pixels, parse_update, CacheModel, CopyRect, CopyUndo,
    DecodeError, DecodeLimits, DecodedTile, DecodedTiles, EncodeError, EncodeStats, PaletteError,
    PatchBase, PatchHeader, TileCache, TileCodec, TileEncoder, TilePayload, Update, UpdateHeader,
    CACHED_LEN, COPIES_CAPABILITY, COPY_LEN, MAX_COPIES, MAX_PALETTE_COLOURS, MAX_TILE_CACHE_BYTES,
    PATCH_HEADER_LEN, TILE_CACHE_BYTES, TILE_HEADER_LEN, UPDATE_HEADER_LEN, UPDATE_MAGIC,
};
pub use compositor::{ApplyError, CpuCompositor, FrameShape, GpuCompositor};
pub use diff::{
    choose_backend, detect_copy, detect_move, detect_vertical_scroll, needs_gpu, BackendChoice,
    BackendRequest, CopyDetector, CpuDiff, DiffBackend, DiffError, FrameDiffer, FramesIn, GpuDiff,
    SolidTiles,
};
pub use dirty_mask::DirtyMask;
pub use frame::{
    check_dimensions, CpuFrame, Frame, FrameBuffer, FrameError, GpuFrame, PixelFormat,
    BYTES_PER_PIXEL, MAX_DIMENSION,
};
pub use gpu_context::{system_tests_required, AdapterSummary, GpuContext, GpuError};
pub use rect::Rect;
pub use synthetic::{Scene, SyntheticSource};
pub use tile_grid::{
    GridError, GridMismatch, TileGrid, DEFAULT_TILE_SIZE, MAX_TILE_SIZE, MIN_TILE_SIZE,
};
pub use window_surface::{black_pass, fullscreen_pipeline, SurfaceFrame, WindowSurface};
