//! The CPU tile diff.
//!
//! The frame is walked one band of tile rows at a time, each pixel row in memory order. Inside a
//! row, each run of still-undecided tiles is compared as one span, 32 bytes a step by XOR-OR
//! reduction (vectorised, with AVX2 where the processor has it); only a span that differs is
//! split into its tiles. A tile found dirty is skipped for the rest of its band, and a band ends
//! early once every tile in it is decided. Bands run in parallel.

use super::DiffError;
use crate::frame::PARALLEL_MIN_TILES_TO_SCAN;
use crate::{CpuFrame, DirtyMask, Rect, TileGrid};
use rayon::prelude::*;

/// Below this many bytes to compare, threads cost more than they save: as many as
/// [`PARALLEL_MIN_TILES_TO_SCAN`] tiles of 64 pixels.
const PARALLEL_MIN_BYTES: usize = PARALLEL_MIN_TILES_TO_SCAN * 64 * 64 * 4;

const SKIP: u8 = 0;
const PENDING: u8 = 1;
const DIRTY: u8 = 2;

/// Compares two frames in CPU memory tile by tile.
#[derive(Clone, Copy, Debug)]
pub struct CpuDiff {
    parallel: bool,
}

impl Default for CpuDiff {
    fn default() -> Self {
        Self::multi_threaded()
    }
}

impl CpuDiff {
    /// Runs on the calling thread only.
    pub fn single_threaded() -> Self {
        Self { parallel: false }
    }

    /// Splits large frames across rayon's thread pool (all cores by default).
    pub fn multi_threaded() -> Self {
        Self { parallel: true }
    }

    /// The tiles of `grid` whose pixels differ between `previous` and `current`.
    ///
    /// With `hints`, only tiles touching a hint rectangle are compared; the rest are reported
    /// clean. Padding bytes of opaque formats (`x` in BGRx) are ignored.
    pub fn diff(
        &self,
        grid: &TileGrid,
        previous: &CpuFrame<'_>,
        current: &CpuFrame<'_>,
        hints: Option<&[Rect]>,
    ) -> Result<DirtyMask, DiffError> {
        check_same_shape(previous, current)?;
        grid.check_frame(current.width(), current.height())?;
        let mut states = match hints {
            None => vec![PENDING; grid.tile_count()],
            Some(rects) => {
                let touched = grid.tiles_touching(rects);
                let mut states = vec![SKIP; grid.tile_count()];
                for i in touched.iter() {
                    states[i] = PENDING;
                }
                states
            }
        };
        let bits = u64::from(current.format().significant_bits());
        let mask = bits | (bits << 32);
        let cols = grid.cols() as usize;
        // Hints can leave little to compare; handing that to the pool costs more than doing it
        // here (waking workers that then spin).
        let tile_bytes = grid.tile_size() as usize * grid.tile_size() as usize * 4;
        let pending = states.iter().filter(|&&s| s == PENDING).count();
        let big = pending * tile_bytes >= PARALLEL_MIN_BYTES;
        if self.parallel && big && rayon::current_num_threads() > 1 {
            states
                .par_chunks_mut(cols)
                .enumerate()
                .for_each(|(row, band)| {
                    compare_band(grid, previous, current, row as u32, band, mask)
                });
        } else {
            for (row, band) in states.chunks_mut(cols).enumerate() {
                compare_band(grid, previous, current, row as u32, band, mask);
            }
        }
        let mut dirty = DirtyMask::new(grid.tile_count());
        for (i, _) in states.iter().enumerate().filter(|(_, &s)| s == DIRTY) {
            dirty.set(i);
        }
        Ok(dirty)
    }
}

pub(crate) fn check_same_shape(a: &CpuFrame<'_>, b: &CpuFrame<'_>) -> Result<(), DiffError> {
    if a.width() != b.width() || a.height() != b.height() || a.format() != b.format() {
        return Err(DiffError::FrameMismatch {
            prev_width: a.width(),
            prev_height: a.height(),
            prev_format: a.format(),
            width: b.width(),
            height: b.height(),
            format: b.format(),
        });
    }
    Ok(())
}

fn compare_band(
    grid: &TileGrid,
    previous: &CpuFrame<'_>,
    current: &CpuFrame<'_>,
    row: u32,
    states: &mut [u8],
    mask: u64,
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2, checked just above.
        unsafe { compare_band_avx2(grid, previous, current, row, states, mask) };
        return;
    }
    compare_band_portable(grid, previous, current, row, states, mask);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn compare_band_avx2(
    grid: &TileGrid,
    previous: &CpuFrame<'_>,
    current: &CpuFrame<'_>,
    row: u32,
    states: &mut [u8],
    mask: u64,
) {
    compare_band_portable(grid, previous, current, row, states, mask);
}

#[inline(always)]
fn compare_band_portable(
    grid: &TileGrid,
    previous: &CpuFrame<'_>,
    current: &CpuFrame<'_>,
    row: u32,
    states: &mut [u8],
    mask: u64,
) {
    let mut pending = states.iter().filter(|&&s| s == PENDING).count();
    if pending == 0 {
        return;
    }
    let seg = grid.tile_size() as usize * crate::BYTES_PER_PIXEL;
    let cols = states.len();
    let y0 = row * grid.tile_size();
    let y1 = (y0 + grid.tile_size()).min(grid.height());
    for y in y0..y1 {
        let (prev_row, cur_row) = (previous.row(y), current.row(y));
        let mut col = 0;
        while col < cols {
            if states[col] != PENDING {
                col += 1;
                continue;
            }
            // Compare a run of undecided tiles as one span; split it only if it differs.
            let first = col;
            while col < cols && states[col] == PENDING {
                col += 1;
            }
            let span = first * seg..(col * seg).min(cur_row.len());
            if !differs(&prev_row[span.clone()], &cur_row[span], mask) {
                continue;
            }
            for (c, state) in states[first..col].iter_mut().enumerate() {
                let start = (first + c) * seg;
                let end = (start + seg).min(cur_row.len());
                if differs(&prev_row[start..end], &cur_row[start..end], mask) {
                    *state = DIRTY;
                    pending -= 1;
                }
            }
            if pending == 0 {
                return;
            }
        }
    }
}

/// Whether two equal-length runs of pixels differ in the bits of `mask` (one pixel mask repeated
/// twice in a `u64`). Lengths are multiples of 4.
///
/// Eight independent accumulators a 64-byte step keep the OR reduction free of a serial
/// dependency chain, and vectorise to two 256-bit registers under AVX2.
#[inline(always)]
fn differs(a: &[u8], b: &[u8], mask: u64) -> bool {
    let mut acc = [0u64; 8];
    let (mut ca, mut cb) = (a.chunks_exact(64), b.chunks_exact(64));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for (k, lane) in acc.iter_mut().enumerate() {
            let xa = u64::from_le_bytes(x[k * 8..k * 8 + 8].try_into().expect("8 bytes"));
            let yb = u64::from_le_bytes(y[k * 8..k * 8 + 8].try_into().expect("8 bytes"));
            *lane |= xa ^ yb;
        }
    }
    let mut tail = 0u64;
    for (x, y) in ca
        .remainder()
        .chunks_exact(4)
        .zip(cb.remainder().chunks_exact(4))
    {
        let xa = u32::from_le_bytes(x.try_into().expect("4 bytes"));
        let yb = u32::from_le_bytes(y.try_into().expect("4 bytes"));
        tail |= u64::from(xa ^ yb);
    }
    (acc.iter().fold(tail, |t, &l| t | l)) & mask != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FrameBuffer, PixelFormat};

    fn frames(w: u32, h: u32, format: PixelFormat) -> (FrameBuffer, FrameBuffer) {
        let mut a = FrameBuffer::new(w, h, format).unwrap();
        for (i, b) in a.pixels_mut().iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        (a.clone(), a)
    }

    fn poke(f: &mut FrameBuffer, x: u32, y: u32, byte: usize) {
        let i = (y as usize * f.width() as usize + x as usize) * 4 + byte;
        f.pixels_mut()[i] ^= 0x10;
    }

    #[test]
    fn finds_single_pixel_changes_on_tile_borders() {
        let (a, mut b) = frames(1921, 1079, PixelFormat::Bgra8);
        let grid = TileGrid::new(1921, 1079, 64).unwrap();
        for (x, y) in [(63, 0), (64, 0), (1920, 1078), (0, 1024)] {
            poke(&mut b, x, y, 3);
        }
        for diff in [CpuDiff::single_threaded(), CpuDiff::multi_threaded()] {
            let m = diff
                .diff(&grid, &a.as_frame(), &b.as_frame(), None)
                .unwrap();
            let expect = [0, 1, grid.tile_count() - 1, 16 * 31];
            let mut expect = expect.to_vec();
            expect.sort();
            assert_eq!(m.iter().collect::<Vec<_>>(), expect);
        }
    }

    #[test]
    fn ignores_padding_byte_of_opaque_formats() {
        let (a, mut b) = frames(100, 50, PixelFormat::Bgrx8);
        poke(&mut b, 10, 10, 3);
        let grid = TileGrid::new(100, 50, 16).unwrap();
        let m = CpuDiff::default()
            .diff(&grid, &a.as_frame(), &b.as_frame(), None)
            .unwrap();
        assert!(m.none());
        poke(&mut b, 10, 10, 2);
        let m = CpuDiff::default()
            .diff(&grid, &a.as_frame(), &b.as_frame(), None)
            .unwrap();
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn hints_narrow_but_do_not_replace_the_compare() {
        let (a, mut b) = frames(128, 128, PixelFormat::Rgba8);
        poke(&mut b, 5, 5, 0); // tile 0
        poke(&mut b, 100, 100, 0); // tile 15, not hinted
        let grid = TileGrid::new(128, 128, 32).unwrap();
        let hints = [Rect::new(0, 0, 40, 10)]; // touches tiles 0 and 1; tile 1 is unchanged
        let m = CpuDiff::default()
            .diff(&grid, &a.as_frame(), &b.as_frame(), Some(&hints))
            .unwrap();
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn mismatched_frames_and_grid_are_errors() {
        let (a, _) = frames(64, 64, PixelFormat::Rgba8);
        let (b, _) = frames(64, 65, PixelFormat::Rgba8);
        let grid = TileGrid::new(64, 64, 16).unwrap();
        let d = CpuDiff::default();
        assert!(matches!(
            d.diff(&grid, &a.as_frame(), &b.as_frame(), None),
            Err(DiffError::FrameMismatch { .. })
        ));
        let other = TileGrid::new(32, 64, 16).unwrap();
        assert!(matches!(
            d.diff(&other, &a.as_frame(), &a.as_frame(), None),
            Err(DiffError::GridMismatch(_))
        ));
    }
}
