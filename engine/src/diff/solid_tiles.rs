//! [`SolidTiles`]: which tiles of a frame are one colour. The CPU diff compares such a tile of
//! the previous frame with its colour alone, so it reads only the new frame there: blank
//! backgrounds, margins and empty terminal lines are most of the tiles that stay clean.

use super::cpu::{pixel_mask, ColourRun};
use crate::{CpuFrame, DirtyMask, GridMismatch, PixelFormat, Rect, TileGrid};

/// The colour of each tile of one frame that is one colour, in the bits its format carries (the
/// padding byte of opaque formats is ignored, as the diff ignores it).
///
/// It describes the frame it was made from only while it is told of every change to it
/// ([`SolidTiles::update`]); the diff trusts it, so a stale one is a wrong diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolidTiles {
    grid: TileGrid,
    format: PixelFormat,
    colours: Vec<Option<u32>>,
}

impl SolidTiles {
    /// Looks at every tile of `frame`.
    pub fn of(frame: &CpuFrame<'_>, grid: &TileGrid) -> Result<Self, GridMismatch> {
        grid.check_frame(frame.width(), frame.height())?;
        let mask = pixel_mask(frame.format());
        let colours = (0..grid.tile_count())
            .map(|t| tile_colour(frame, &grid.tile_rect(t), mask))
            .collect();
        Ok(Self {
            grid: *grid,
            format: frame.format(),
            colours,
        })
    }

    /// Looks again at the tiles of `changed` (tiles of `grid`) in `frame`: the frame this
    /// describes, changed there. Another grid or format than this was made for looks at every
    /// tile. A grid that does not fit the frame is an error, and leaves this as it was.
    pub fn update(
        &mut self,
        frame: &CpuFrame<'_>,
        grid: &TileGrid,
        changed: &DirtyMask,
    ) -> Result<(), GridMismatch> {
        grid.check_frame(frame.width(), frame.height())?;
        if (*grid, frame.format()) != (self.grid, self.format) {
            *self = Self::of(frame, grid)?;
            return Ok(());
        }
        let mask = pixel_mask(self.format);
        let count = self.colours.len();
        for t in changed.iter().take_while(|&t| t < count) {
            self.colours[t] = tile_colour(frame, &self.grid.tile_rect(t), mask);
        }
        Ok(())
    }

    /// The colour of tile `index` (its pixel as a little-endian `u32`, in the format's
    /// significant bits) when the whole tile is that colour.
    pub fn colour(&self, index: usize) -> Option<u32> {
        self.colours.get(index).copied().flatten()
    }

    /// How many tiles are one colour.
    pub fn count(&self) -> usize {
        self.colours.iter().filter(|c| c.is_some()).count()
    }

    /// The colours of the tiles, when this describes frames of `grid` in `format`.
    pub(crate) fn colours_for(
        &self,
        grid: &TileGrid,
        format: PixelFormat,
    ) -> Option<&[Option<u32>]> {
        (self.grid == *grid && self.format == format).then_some(&self.colours[..])
    }
}

/// The colour of the pixels of `rect` in `frame` when they are all one colour (in the bits of
/// `mask`, one pixel mask repeated twice).
fn tile_colour(frame: &CpuFrame<'_>, rect: &Rect, mask: u64) -> Option<u32> {
    let x0 = rect.x as usize * crate::BYTES_PER_PIXEL;
    let len = rect.width as usize * crate::BYTES_PER_PIXEL;
    let first = &frame.row(rect.y)[x0..x0 + crate::BYTES_PER_PIXEL];
    let colour = u32::from_le_bytes(first.try_into().expect("4 bytes")) & mask as u32;
    let run = ColourRun::of(colour);
    (rect.y..rect.bottom())
        .all(|y| !run.differs(&frame.row(y)[x0..x0 + len], mask))
        .then_some(colour)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FrameBuffer;

    fn filled(w: u32, h: u32, format: PixelFormat, pixel: [u8; 4]) -> FrameBuffer {
        let mut f = FrameBuffer::new(w, h, format).unwrap();
        for p in f.pixels_mut().chunks_exact_mut(4) {
            p.copy_from_slice(&pixel);
        }
        f
    }

    fn set(f: &mut FrameBuffer, x: u32, y: u32, byte: usize, value: u8) {
        let i = (y as usize * f.width() as usize + x as usize) * 4 + byte;
        f.pixels_mut()[i] = value;
    }

    #[test]
    fn finds_one_colour_tiles_to_the_frame_edges() {
        // 3x2 tiles, the right column and bottom row partial.
        let mut f = filled(40, 20, PixelFormat::Bgra8, [1, 2, 3, 4]);
        let grid = TileGrid::new(40, 20, 16).unwrap();
        set(&mut f, 39, 19, 0, 9); // last pixel of the last (partial) tile
        set(&mut f, 16, 0, 3, 9); // first pixel of tile 1, alpha
        let s = SolidTiles::of(&f.as_frame(), &grid).unwrap();
        let colour = u32::from_le_bytes([1, 2, 3, 4]);
        let got: Vec<_> = (0..6).map(|t| s.colour(t)).collect();
        assert_eq!(
            got,
            [
                Some(colour),
                None,
                Some(colour),
                Some(colour),
                Some(colour),
                None
            ]
        );
        assert_eq!(s.count(), 4);
        assert_eq!(s.colour(6), None);
    }

    #[test]
    fn ignores_the_padding_byte_of_opaque_formats() {
        let mut f = filled(32, 16, PixelFormat::Bgrx8, [5, 6, 7, 0]);
        let grid = TileGrid::new(32, 16, 16).unwrap();
        set(&mut f, 3, 3, 3, 0xFF);
        let s = SolidTiles::of(&f.as_frame(), &grid).unwrap();
        assert_eq!(s.colour(0), Some(u32::from_le_bytes([5, 6, 7, 0])));
        set(&mut f, 20, 15, 2, 8);
        let s = SolidTiles::of(&f.as_frame(), &grid).unwrap();
        assert_eq!(s.colour(1), None);
    }

    #[test]
    fn update_looks_again_only_where_told() {
        let mut f = filled(32, 32, PixelFormat::Rgba8, [0; 4]);
        let grid = TileGrid::new(32, 32, 16).unwrap();
        let mut s = SolidTiles::of(&f.as_frame(), &grid).unwrap();
        set(&mut f, 0, 0, 0, 1); // tile 0
        set(&mut f, 31, 31, 0, 1); // tile 3
        let mut changed = DirtyMask::new(4);
        changed.set(3);
        s.update(&f.as_frame(), &grid, &changed).unwrap();
        // Tile 0 was not reported changed: this still says what the frame was.
        assert_eq!(s.colour(0), Some(0));
        assert_eq!(s.colour(3), None);
        assert_eq!(s, {
            let mut whole = SolidTiles::of(&f.as_frame(), &grid).unwrap();
            whole.colours[0] = Some(0);
            whole
        });
        // A grid that does not fit the frame is an error and changes nothing.
        let other = filled(48, 32, PixelFormat::Rgba8, [0; 4]);
        let before = s.clone();
        assert!(s.update(&other.as_frame(), &grid, &changed).is_err());
        assert_eq!(s, before);
        // Another grid looks at every tile of it.
        let coarser = TileGrid::new(32, 32, 32).unwrap();
        s.update(&f.as_frame(), &coarser, &DirtyMask::new(1))
            .unwrap();
        assert_eq!(s, SolidTiles::of(&f.as_frame(), &coarser).unwrap());
        assert_eq!(s.count(), 0);
    }
}
