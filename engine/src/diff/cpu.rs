//! The CPU tile diff.
//!
//! The frame is walked one band of tile rows at a time, each pixel row in memory order. Inside a
//! row, each run of still-undecided tiles is compared as one span, 32 bytes a step by XOR-OR
//! reduction (vectorised, with AVX2 where the processor has it); only a span that differs is
//! split into its tiles. A tile found dirty is skipped for the rest of its band, and a band ends
//! early once every tile in it is decided. Bands run in parallel. A tile the previous frame has
//! in one colour ([`SolidTiles`]) is compared with that colour, reading the new frame only.

use super::{DiffError, SolidTiles};
use crate::frame::PARALLEL_MIN_TILES_TO_SCAN;
use crate::{CpuFrame, DirtyMask, PixelFormat, Rect, TileGrid};
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
    /// With `hints`, only tiles touching a hint rectangle are compared, and in each row of tiles
    /// only the pixels inside the bounding box of the hints there (every hinted pixel, not the
    /// rest of a tile a hint reaches into); the rest are reported clean. Padding bytes of opaque
    /// formats (`x` in BGRx) are ignored.
    pub fn diff(
        &self,
        grid: &TileGrid,
        previous: &CpuFrame<'_>,
        current: &CpuFrame<'_>,
        hints: Option<&[Rect]>,
    ) -> Result<DirtyMask, DiffError> {
        self.diff_with_solids(grid, previous, None, current, hints)
    }

    /// [`Self::diff`], told which tiles of `previous` are one colour (`solids`, made from
    /// `previous` and kept up with it): those are compared with their colour and `previous` is
    /// not read there. Solids of another grid or format are not used.
    pub fn diff_with_solids(
        &self,
        grid: &TileGrid,
        previous: &CpuFrame<'_>,
        solids: Option<&SolidTiles>,
        current: &CpuFrame<'_>,
        hints: Option<&[Rect]>,
    ) -> Result<DirtyMask, DiffError> {
        check_same_shape(previous, current)?;
        grid.check_frame(current.width(), current.height())?;
        let colours = solids.and_then(|s| s.colours_for(grid, current.format()));
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
        let mask = pixel_mask(current.format());
        let cols = grid.cols() as usize;
        let windows = hints.map(|rects| super::hint_windows(grid, rects));
        let window_of = |row: usize| windows.as_ref().and_then(|w| w[row]);
        let band_colours = |row: usize| colours.map(|c| &c[row * cols..(row + 1) * cols]);
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
                    let known = band_colours(row);
                    let window = window_of(row);
                    compare_band(
                        grid, previous, current, row as u32, window, band, known, mask,
                    )
                });
        } else {
            for (row, band) in states.chunks_mut(cols).enumerate() {
                let known = band_colours(row);
                let window = window_of(row);
                compare_band(
                    grid, previous, current, row as u32, window, band, known, mask,
                );
            }
        }
        let mut dirty = DirtyMask::new(grid.tile_count());
        for (i, _) in states.iter().enumerate().filter(|(_, &s)| s == DIRTY) {
            dirty.set(i);
        }
        Ok(dirty)
    }
}

/// The bits of two pixels of `format` read as one little-endian `u64` that carry picture
/// information.
pub(crate) fn pixel_mask(format: PixelFormat) -> u64 {
    let bits = u64::from(format.significant_bits());
    bits | (bits << 32)
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

#[allow(clippy::too_many_arguments)]
fn compare_band(
    grid: &TileGrid,
    previous: &CpuFrame<'_>,
    current: &CpuFrame<'_>,
    row: u32,
    window: Option<Rect>,
    states: &mut [u8],
    known: Option<&[Option<u32>]>,
    mask: u64,
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2, checked just above.
        unsafe { compare_band_avx2(grid, previous, current, row, window, states, known, mask) };
        return;
    }
    compare_band_portable(grid, previous, current, row, window, states, known, mask);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn compare_band_avx2(
    grid: &TileGrid,
    previous: &CpuFrame<'_>,
    current: &CpuFrame<'_>,
    row: u32,
    window: Option<Rect>,
    states: &mut [u8],
    known: Option<&[Option<u32>]>,
    mask: u64,
) {
    compare_band_portable(grid, previous, current, row, window, states, known, mask);
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn compare_band_portable(
    grid: &TileGrid,
    previous: &CpuFrame<'_>,
    current: &CpuFrame<'_>,
    row: u32,
    window: Option<Rect>,
    states: &mut [u8],
    known: Option<&[Option<u32>]>,
    mask: u64,
) {
    let mut pending = states.iter().filter(|&&s| s == PENDING).count();
    if pending == 0 {
        return;
    }
    let seg = grid.tile_size() as usize * crate::BYTES_PER_PIXEL;
    let cols = states.len();
    // The rows and bytes of a row compared: the hints' window, else the whole band.
    let (y0, y1, x0, x1) = match window {
        Some(w) => (w.y, w.bottom(), w.x as usize * 4, w.right() as usize * 4),
        None => {
            let y0 = row * grid.tile_size();
            let y1 = (y0 + grid.tile_size()).min(grid.height());
            (y0, y1, 0, current.row_bytes())
        }
    };
    let colour_of = |col: usize| known.and_then(|k| k[col]);
    // The runs of undecided tiles (all of one colour in the previous frame, or none of them),
    // each compared as one span a row; made again (in the same vector) only when a tile is
    // found dirty.
    let spans_of = |states: &[u8], spans: &mut Vec<(usize, usize, Option<ColourRun>)>| {
        spans.clear();
        let mut col = 0;
        while col < cols {
            if states[col] != PENDING {
                col += 1;
                continue;
            }
            let first = col;
            let colour = colour_of(first);
            while col < cols && states[col] == PENDING && colour_of(col) == colour {
                col += 1;
            }
            spans.push((first, col, colour.map(ColourRun::of)));
        }
    };
    let mut spans = Vec::new();
    spans_of(states, &mut spans);
    for y in y0..y1 {
        let (prev_row, cur_row) = (previous.row(y), current.row(y));
        let mut found = false;
        for (first, end, colour) in &spans {
            let (first, end, colour) = (*first, *end, colour.as_ref());
            let span = (first * seg).max(x0)..(end * seg).min(x1);
            // Split a span into its tiles only if it differs.
            if span.is_empty() || !span_differs(prev_row, cur_row, span, colour, mask) {
                continue;
            }
            for (c, state) in states[first..end].iter_mut().enumerate() {
                let start = ((first + c) * seg).max(x0);
                let stop = ((first + c + 1) * seg).min(x1);
                if start < stop && span_differs(prev_row, cur_row, start..stop, colour, mask) {
                    *state = DIRTY;
                    pending -= 1;
                    found = true;
                }
            }
            if pending == 0 {
                return;
            }
        }
        if found {
            spans_of(states, &mut spans);
        }
    }
}

/// Whether bytes `range` of a row differ between the previous frame (`prev_row`) and the
/// current one (`cur_row`); `colour`: the previous frame has that colour in all of them, and is
/// not read. A function, not a closure, so that it is compiled with the caller's AVX2.
#[inline(always)]
fn span_differs(
    prev_row: &[u8],
    cur_row: &[u8],
    range: std::ops::Range<usize>,
    colour: Option<&ColourRun>,
    mask: u64,
) -> bool {
    match colour {
        None => differs(&prev_row[range.clone()], &cur_row[range], mask),
        Some(run) => run.differs(&cur_row[range], mask),
    }
}

/// Whether two equal-length runs of pixels differ in the bits of `mask` (one pixel mask repeated
/// twice in a `u64`). Lengths are multiples of 4.
#[inline(always)]
fn differs(a: &[u8], b: &[u8], mask: u64) -> bool {
    xor_lanes(a, b).iter().fold(0, |t, &l| t | l) & mask != 0
}

/// The OR of the XOR of two equal-length runs of pixels (lengths multiples of 4), in eight
/// lanes.
///
/// Eight independent accumulators a 64-byte step keep the OR reduction free of a serial
/// dependency chain, and vectorise to two 256-bit registers under AVX2 (kept local: accumulators
/// behind a reference vectorise worse).
#[inline(always)]
fn xor_lanes(a: &[u8], b: &[u8]) -> [u64; 8] {
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
    acc[0] |= tail;
    acc
}

/// One colour laid out over 256 bytes (one row of a 64-pixel tile), to compare runs of pixels
/// with by [`differs`], which vectorises well: written as a loop against a constant, the
/// compiler vectorises across iterations instead, with one narrow load per lane.
pub(crate) struct ColourRun {
    bytes: [u8; 256],
}

impl ColourRun {
    #[inline(always)]
    pub(crate) fn of(colour: u32) -> Self {
        let mut bytes = [0u8; 256];
        for p in bytes.chunks_exact_mut(4) {
            p.copy_from_slice(&colour.to_le_bytes());
        }
        Self { bytes }
    }

    /// Whether a run of pixels differs from the colour in the bits of `mask` (one pixel mask
    /// repeated twice in a `u64`). The length is a multiple of 4.
    #[inline(always)]
    pub(crate) fn differs(&self, a: &[u8], mask: u64) -> bool {
        let mut acc = [0u64; 8];
        // A loop, not an iterator adapter, whose closure would be compiled apart, without AVX2.
        for x in a.chunks(self.bytes.len()) {
            for (lane, l) in acc.iter_mut().zip(xor_lanes(x, &self.bytes[..x.len()])) {
                *lane |= l;
            }
        }
        acc.iter().fold(0, |t, &l| t | l) & mask != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FrameBuffer;

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
    fn hints_are_compared_inside_their_bounding_box_in_each_row_of_tiles() {
        let grid = TileGrid::new(128, 128, 32).unwrap();
        // Two hints in the first row of tiles, their box x 10..110, y 4..20; one in the fourth.
        let hints = [
            Rect::new(10, 4, 10, 6),
            Rect::new(100, 14, 10, 6),
            Rect::new(0, 120, 5, 5),
        ];
        for (x, y, dirty) in [
            (12, 5, Some(0)),   // inside a hint
            (60, 10, None),     // tile 1 is touched by no hint
            (105, 8, Some(3)),  // inside the box, beside a hint
            (15, 25, None),     // tile 0, below the box
            (15, 2, None),      // tile 0, above the box
            (2, 121, Some(12)), // inside the last hint
            (10, 121, None),    // tile 12, right of the last hint
        ] {
            let (a, mut b) = frames(128, 128, PixelFormat::Bgrx8);
            poke(&mut b, x, y, 1);
            for diff in [CpuDiff::single_threaded(), CpuDiff::multi_threaded()] {
                let m = diff
                    .diff(&grid, &a.as_frame(), &b.as_frame(), Some(&hints))
                    .unwrap();
                assert_eq!(m.iter().next(), dirty, "a change at ({x}, {y})");
            }
        }
    }

    /// A frame of flat 40x40 blocks, so that many 32-pixel tiles are one colour.
    fn blocks(w: u32, h: u32, format: PixelFormat, seed: u8) -> FrameBuffer {
        let mut f = FrameBuffer::new(w, h, format).unwrap();
        for (i, p) in f.pixels_mut().chunks_exact_mut(4).enumerate() {
            let (x, y) = (i as u32 % w / 40, i as u32 / w / 40);
            let v = (x * 3 + y * 5) as u8 ^ seed;
            p.copy_from_slice(&[v, v.wrapping_mul(7), 9, v | 1]);
        }
        f
    }

    #[test]
    fn one_colour_tiles_compared_with_their_colour_give_the_same_mask() {
        let (w, h) = (200, 130);
        let grid = TileGrid::new(w, h, 32).unwrap();
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for format in PixelFormat::ALL {
            let mut a = blocks(w, h, format, 0);
            let mut solids = SolidTiles::of(&a.as_frame(), &grid).unwrap();
            assert!(solids.count() >= 6, "{format:?}: {}", solids.count());
            for round in 0..300 {
                let mut b = a.clone();
                if round % 50 == 0 {
                    b = blocks(w, h, format, round as u8);
                }
                for _ in 0..next(4) {
                    let (x, y) = (next(u64::from(w)) as u32, next(u64::from(h)) as u32);
                    let i = (y as usize * w as usize + x as usize) * 4 + next(4) as usize;
                    b.pixels_mut()[i] = next(256) as u8;
                }
                let hints = [Rect::new(next(200) as u32, next(130) as u32, 70, 50)];
                for hints in [None, Some(&hints[..])] {
                    for diff in [CpuDiff::single_threaded(), CpuDiff::multi_threaded()] {
                        let (pa, pb) = (a.as_frame(), b.as_frame());
                        let plain = diff.diff(&grid, &pa, &pb, hints).unwrap();
                        let known = diff
                            .diff_with_solids(&grid, &pa, Some(&solids), &pb, hints)
                            .unwrap();
                        assert_eq!(known, plain, "{format:?} round {round}");
                    }
                }
                // The next round compares with this frame: keep the solids up with it.
                let changed = CpuDiff::default()
                    .diff(&grid, &a.as_frame(), &b.as_frame(), None)
                    .unwrap();
                solids.update(&b.as_frame(), &grid, &changed).unwrap();
                assert_eq!(solids, SolidTiles::of(&b.as_frame(), &grid).unwrap());
                a = b;
            }
        }
    }

    #[test]
    fn a_colour_run_finds_any_pixel_off_its_colour_in_the_masked_bits() {
        let colour = 0x80ff_2040u32;
        let run = ColourRun::of(colour);
        for (format, mask) in [
            (PixelFormat::Bgrx8, pixel_mask(PixelFormat::Bgrx8)),
            (PixelFormat::Bgra8, pixel_mask(PixelFormat::Bgra8)),
        ] {
            let significant = mask as u32;
            // Lengths around the 64-byte steps and their remainders; every byte changed once.
            for pixels in [0usize, 1, 15, 16, 17, 31, 64, 65, 150] {
                let even = colour.to_le_bytes().repeat(pixels);
                assert!(!run.differs(&even, mask), "{format:?}, {pixels} pixels");
                for byte in 0..even.len() {
                    let mut odd = even.clone();
                    odd[byte] ^= 0x01;
                    let expected = significant.to_le_bytes()[byte % 4] & 0x01 != 0;
                    assert_eq!(
                        run.differs(&odd, mask),
                        expected,
                        "{format:?}, {pixels} pixels, byte {byte} changed"
                    );
                }
            }
        }
    }

    #[test]
    fn one_colour_tiles_are_not_read_in_the_previous_frame() {
        // Solids that say every tile of `previous` is black, though it is not: the compare trusts
        // them, which is why they must be kept up with the frame they describe.
        let (previous, _) = frames(64, 64, PixelFormat::Rgba8);
        let black = FrameBuffer::new(64, 64, PixelFormat::Rgba8).unwrap();
        let grid = TileGrid::new(64, 64, 32).unwrap();
        let claims = SolidTiles::of(&black.as_frame(), &grid).unwrap();
        let diff = CpuDiff::default();
        let (p, c) = (previous.as_frame(), black.as_frame());
        assert!(diff.diff(&grid, &p, &c, None).unwrap().all());
        let m = diff.diff_with_solids(&grid, &p, Some(&claims), &c, None);
        assert!(m.unwrap().none());
        // Solids of another grid or format are not used.
        let other = TileGrid::new(64, 64, 16).unwrap();
        let elsewhere = SolidTiles::of(&black.as_frame(), &other).unwrap();
        let m = diff.diff_with_solids(&grid, &p, Some(&elsewhere), &c, None);
        assert!(m.unwrap().all());
        let opaque = CpuFrame::new(64, 64, 256, PixelFormat::Rgbx8, black.pixels()).unwrap();
        let opaque_claims = SolidTiles::of(&opaque, &grid).unwrap();
        let m = diff.diff_with_solids(&grid, &p, Some(&opaque_claims), &c, None);
        assert!(m.unwrap().all());
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
