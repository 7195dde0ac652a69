//! [`TileGrid`]: how a frame is cut into square tiles, with partial tiles on the right and
//! bottom edges.

use crate::{DirtyMask, Rect};
use thiserror::Error;

/// Smallest tile side the engine accepts.
pub const MIN_TILE_SIZE: u32 = 16;
/// Largest tile side the engine accepts.
pub const MAX_TILE_SIZE: u32 = 256;
/// Tile side used unless configured otherwise (as RemoteFX, Guacamole and TigerVNC use).
pub const DEFAULT_TILE_SIZE: u32 = 64;

/// Why a grid could not be made.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GridError {
    #[error("tile size {0} is outside {MIN_TILE_SIZE}..={MAX_TILE_SIZE}")]
    TileSize(u32),
    #[error("frame {width}x{height} has no pixels")]
    Empty { width: u32, height: u32 },
}

/// A tile grid used with a frame of another size.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("tile grid is for {grid_width}x{grid_height}, frame is {width}x{height}")]
pub struct GridMismatch {
    pub grid_width: u32,
    pub grid_height: u32,
    pub width: u32,
    pub height: u32,
}

/// Square tiles of `tile_size` pixels over a `width` x `height` frame, numbered row by row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileGrid {
    width: u32,
    height: u32,
    tile_size: u32,
    cols: u32,
    rows: u32,
}

impl TileGrid {
    pub fn new(width: u32, height: u32, tile_size: u32) -> Result<Self, GridError> {
        if !(MIN_TILE_SIZE..=MAX_TILE_SIZE).contains(&tile_size) {
            return Err(GridError::TileSize(tile_size));
        }
        if width == 0 || height == 0 {
            return Err(GridError::Empty { width, height });
        }
        Ok(Self {
            width,
            height,
            tile_size,
            cols: width.div_ceil(tile_size),
            rows: height.div_ceil(tile_size),
        })
    }

    /// Checks that this grid was made for a `width` x `height` frame.
    pub fn check_frame(&self, width: u32, height: u32) -> Result<(), GridMismatch> {
        if (self.width, self.height) != (width, height) {
            return Err(GridMismatch {
                grid_width: self.width,
                grid_height: self.height,
                width,
                height,
            });
        }
        Ok(())
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn tile_size(&self) -> u32 {
        self.tile_size
    }
    /// Tiles across.
    pub fn cols(&self) -> u32 {
        self.cols
    }
    /// Tiles down.
    pub fn rows(&self) -> u32 {
        self.rows
    }
    pub fn tile_count(&self) -> usize {
        self.cols as usize * self.rows as usize
    }

    /// Pixel bounds of tile `index` (smaller than `tile_size` on the right and bottom edges).
    ///
    /// # Panics
    /// If `index >= tile_count()`.
    pub fn tile_rect(&self, index: usize) -> Rect {
        assert!(
            index < self.tile_count(),
            "tile {index} outside a grid of {}",
            self.tile_count()
        );
        let col = (index % self.cols as usize) as u32;
        let row = (index / self.cols as usize) as u32;
        let x = col * self.tile_size;
        let y = row * self.tile_size;
        Rect::new(
            x,
            y,
            self.tile_size.min(self.width - x),
            self.tile_size.min(self.height - y),
        )
    }

    /// Bytes of tile `index`'s pixels packed without padding.
    pub fn tile_bytes(&self, index: usize) -> usize {
        let r = self.tile_rect(index);
        r.width as usize * r.height as usize * crate::BYTES_PER_PIXEL
    }

    /// Marks every tile that `rect` touches (clipped to the frame) in `mask`.
    pub fn mark_rect(&self, rect: &Rect, mask: &mut DirtyMask) {
        let Some(r) = rect.intersection(&Rect::new(0, 0, self.width, self.height)) else {
            return;
        };
        let (c0, c1) = (r.x / self.tile_size, (r.right() - 1) / self.tile_size);
        let (r0, r1) = (r.y / self.tile_size, (r.bottom() - 1) / self.tile_size);
        for row in r0..=r1 {
            for col in c0..=c1 {
                mask.set(row as usize * self.cols as usize + col as usize);
            }
        }
    }

    /// The tiles touched by any of `rects`.
    pub fn tiles_touching(&self, rects: &[Rect]) -> DirtyMask {
        let mut mask = DirtyMask::new(self.tile_count());
        for r in rects {
            self.mark_rect(r, &mut mask);
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_tiles_on_edges() {
        let g = TileGrid::new(1921, 1079, 64).unwrap();
        assert_eq!((g.cols(), g.rows()), (31, 17));
        assert_eq!(g.tile_rect(30), Rect::new(1920, 0, 1, 64));
        assert_eq!(
            g.tile_rect(g.tile_count() - 1),
            Rect::new(1920, 1024, 1, 55)
        );
        assert_eq!(g.tile_bytes(g.tile_count() - 1), 55 * 4);
    }

    #[test]
    fn tile_size_limits() {
        assert_eq!(TileGrid::new(10, 10, 15), Err(GridError::TileSize(15)));
        assert_eq!(TileGrid::new(10, 10, 257), Err(GridError::TileSize(257)));
        assert!(TileGrid::new(10, 10, 256).is_ok());
        assert_eq!(
            TileGrid::new(0, 10, 16),
            Err(GridError::Empty {
                width: 0,
                height: 10
            })
        );
    }

    #[test]
    fn rect_marks_touched_tiles_and_clips() {
        let g = TileGrid::new(100, 100, 16).unwrap();
        let m = g.tiles_touching(&[Rect::new(15, 15, 2, 2), Rect::new(99, 99, 1000, 1000)]);
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![0, 1, 7, 8, 48]);
        assert!(g
            .tiles_touching(&[Rect::new(100, 0, 5, 5), Rect::new(0, 0, 0, 5)])
            .none());
    }
}
