//! Finding the tiles that changed between two frames: on the CPU ([`CpuDiff`]), on the GPU
//! ([`GpuDiff`]), the choice between them ([`choose_backend`]) and a stateful wrapper that keeps
//! the previous frame, or on the CPU compares with the one its caller keeps ([`FrameDiffer`]); and
//! what scrolled or moved ([`detect_copy`]: a vertical scroll by row hashes,
//! [`detect_vertical_scroll`], else a move by block matching, [`detect_move`]; [`CopyDetector`]
//! does that frame after frame without searching a playing video for moves on every frame).
//!
//! Damage hints (rectangles the OS says changed) narrow the compare to the tiles they touch, and
//! inside a row of tiles to the bounding box of the hints there (`hint_windows`); they never
//! replace it: a hinted tile whose pixels are equal stays clean. What the OS fails to report is
//! left to the sender's periodic compare of whole frames. Knowing which tiles of the
//! previous frame are one colour ([`SolidTiles`]) lets the CPU compare read only the new frame
//! there.

mod backend;
mod copy_detector;
mod cpu;
mod differ;
mod gpu;
mod scroll;
mod solid_tiles;
mod window_move;

pub use backend::{
    choose_backend, needs_gpu, BackendChoice, BackendRequest, DiffBackend, FramesIn,
};
pub use copy_detector::CopyDetector;
pub use cpu::CpuDiff;
pub use differ::FrameDiffer;
pub use gpu::GpuDiff;
pub use scroll::detect_vertical_scroll;
pub use solid_tiles::SolidTiles;
pub use window_move::detect_move;

use crate::{CopyRect, CpuFrame, DirtyMask, GpuError, GridMismatch, PixelFormat, Rect, TileGrid};

/// The copy that turns `prev` into `cur` best inside the changed area of `mask`: a vertical
/// scroll when rows moved as a whole, else a moved rectangle (a dragged window), else none.
/// A proposal: the caller checks what the copy gives, tile by tile.
pub fn detect_copy(
    prev: &CpuFrame<'_>,
    cur: &CpuFrame<'_>,
    grid: &TileGrid,
    mask: &DirtyMask,
) -> Option<CopyRect> {
    let changed = search_area(prev, cur, grid, mask)?;
    scroll::scroll_in(prev, cur, &changed).or_else(|| window_move::move_in(prev, cur, &changed))
}

/// Per tile row of `grid`, the bounding box of the parts of `hints` inside it (none when no
/// hint reaches it). Both diffs compare only these pixels of a row of tiles: every hinted
/// pixel, and between hints only what their bounding box adds.
pub(crate) fn hint_windows(grid: &TileGrid, hints: &[Rect]) -> Vec<Option<Rect>> {
    let size = grid.tile_size();
    (0..grid.rows())
        .map(|row| {
            let band = Rect::new(
                0,
                row * size,
                grid.width(),
                size.min(grid.height() - row * size),
            );
            hints
                .iter()
                .filter_map(|h| h.intersection(&band))
                .reduce(|a, b| a.union(&b))
        })
        .collect()
}

/// Fewer dirty tiles than this are not worth searching for a scroll or move.
const MIN_SEARCH_TILES: usize = 4;

/// Where the scroll and move searches look: the smallest rectangle holding every pixel that
/// differs inside the dirty tiles of `mask` (a mask over `grid`); none when too few tiles are
/// dirty.
fn search_area(
    prev: &CpuFrame<'_>,
    cur: &CpuFrame<'_>,
    grid: &TileGrid,
    mask: &DirtyMask,
) -> Option<Rect> {
    if mask.count() < MIN_SEARCH_TILES {
        return None;
    }
    prev.changed_rect_in_tiles(cur, grid, mask)
}
use thiserror::Error;

/// Why a diff could not run.
#[derive(Debug, Error)]
pub enum DiffError {
    /// The two frames differ in size or pixel format.
    #[error("previous frame is {prev_width}x{prev_height} {prev_format:?}, current is {width}x{height} {format:?}")]
    FrameMismatch {
        prev_width: u32,
        prev_height: u32,
        prev_format: PixelFormat,
        width: u32,
        height: u32,
        format: PixelFormat,
    },
    /// The tile grid was made for a frame of another size.
    #[error(transparent)]
    GridMismatch(#[from] GridMismatch),
    /// A GPU frame handed to the CPU diff.
    #[error("the CPU diff needs frames in CPU memory")]
    NotInCpuMemory,
    /// A texture the GPU diff cannot read.
    #[error("texture not usable for the GPU diff: {0}")]
    UnusableTexture(String),
    /// A failure of the GPU device.
    #[error(transparent)]
    Gpu(#[from] GpuError),
}
