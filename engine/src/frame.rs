//! Frames: pixels borrowed from CPU memory ([`CpuFrame`]), held on the GPU ([`GpuFrame`]),
//! or owned with a tight stride ([`FrameBuffer`]).
//!
//! Every supported format has four bytes a pixel. Formats with an `x` byte ([`PixelFormat::Bgrx8`],
//! [`PixelFormat::Rgbx8`]) are opaque: the diff ignores the padding byte and the codec sends it as
//! `0xFF`, so the receiver's picture is defined even where the OS leaves garbage there.

use thiserror::Error;

/// Bytes in one pixel, for every [`PixelFormat`].
pub const BYTES_PER_PIXEL: usize = 4;

/// Largest width or height the engine accepts for a frame (the largest 2D texture wgpu guarantees
/// on desktop GPUs is 16384).
pub const MAX_DIMENSION: u32 = 16_384;

/// Byte order of a four-byte pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Blue, green, red, alpha.
    Bgra8,
    /// Red, green, blue, alpha.
    Rgba8,
    /// Blue, green, red, padding (opaque).
    Bgrx8,
    /// Red, green, blue, padding (opaque).
    Rgbx8,
}

impl PixelFormat {
    /// Every format, in wire-code order.
    pub const ALL: [PixelFormat; 4] = [Self::Bgra8, Self::Rgba8, Self::Bgrx8, Self::Rgbx8];

    /// Whether the fourth byte carries alpha (else it is padding and the pixel is opaque).
    pub fn has_alpha(self) -> bool {
        matches!(self, Self::Bgra8 | Self::Rgba8)
    }

    /// Mask of the bits that carry picture information in one pixel read as a little-endian `u32`.
    pub fn significant_bits(self) -> u32 {
        if self.has_alpha() {
            u32::MAX
        } else {
            0x00FF_FFFF
        }
    }

    /// Bits to OR into every pixel (read as a little-endian `u32`) to make it canonical: the
    /// padding byte of an opaque format becomes `0xFF`.
    pub fn canonical_bits(self) -> u32 {
        !self.significant_bits()
    }

    /// Whether the red channel is the third byte (BGR order).
    pub fn is_bgr(self) -> bool {
        matches!(self, Self::Bgra8 | Self::Bgrx8)
    }

    /// Code of this format in the update wire format.
    pub fn wire_code(self) -> u8 {
        match self {
            Self::Bgra8 => 0,
            Self::Rgba8 => 1,
            Self::Bgrx8 => 2,
            Self::Rgbx8 => 3,
        }
    }

    /// The format with this wire code, if any.
    pub fn from_wire_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The wgpu texture format that stores these bytes unchanged.
    pub fn texture_format(self) -> wgpu::TextureFormat {
        if self.is_bgr() {
            wgpu::TextureFormat::Bgra8Unorm
        } else {
            wgpu::TextureFormat::Rgba8Unorm
        }
    }
}

/// Makes packed pixels of `format` canonical in place (see [`PixelFormat::canonical_bits`]).
/// Works on 32 bytes (eight pixels) at a time, a plain OR of a repeated byte pattern that the
/// compiler turns into vector ORs; pixel by pixel it read and wrote each byte on its own.
fn canonicalize(format: PixelFormat, pixels: &mut [u8]) {
    const LANES: usize = 32;
    let bits = format.canonical_bits();
    if bits == 0 {
        return;
    }
    let bytes = bits.to_le_bytes();
    let pattern: [u8; LANES] = std::array::from_fn(|i| bytes[i % BYTES_PER_PIXEL]);
    let mut chunks = pixels.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (b, m) in chunk.iter_mut().zip(pattern) {
            *b |= m;
        }
    }
    // Whole pixels are left, so the pattern still starts on a pixel.
    for (b, m) in chunks.into_remainder().iter_mut().zip(pattern) {
        *b |= m;
    }
}

/// Why a frame description was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Width or height is zero.
    #[error("frame is empty ({width}x{height})")]
    Empty { width: u32, height: u32 },
    /// Width or height is above [`MAX_DIMENSION`].
    #[error(
        "frame {width}x{height} exceeds the largest supported size {MAX_DIMENSION}x{MAX_DIMENSION}"
    )]
    TooLarge { width: u32, height: u32 },
    /// The stride is shorter than one row of pixels.
    #[error("stride {stride} is shorter than a row of {width} pixels ({min} bytes)")]
    StrideTooSmall {
        stride: usize,
        width: u32,
        min: usize,
    },
    /// A crop rectangle reaches outside the frame (or is empty).
    #[error("region {rect:?} is not inside the {width}x{height} frame")]
    OutsideFrame {
        rect: crate::Rect,
        width: u32,
        height: u32,
    },
    /// The pixel buffer ends before the last row does.
    #[error("pixel buffer holds {len} bytes, the frame needs {needed}")]
    BufferTooSmall { len: usize, needed: usize },
}

/// Below this many tiles (a megabyte of 64-pixel tiles), encoding stays on the calling thread:
/// handing it to rayon's pool (waking workers, which then spin before they sleep) costs more
/// than the work. At 16, a window dragged over an X11 screen (about 50 tiles a frame, four
/// parallel steps) cost the sender 22% more CPU and 25 times the context switches.
pub const PARALLEL_MIN_TILES_TO_ENCODE: usize = 64;

/// Below this many tiles (four megabytes of 64-pixel tiles, half a 1080p screen), work that
/// streams pixels through memory (comparing, hashing, copying tiles: a few microseconds a tile)
/// stays on the calling thread. Such work gains little from a second core, and the pool's wake
/// and spin-down cost as much: an xterm scrolling over about 180 tiles cost the sender 14% more
/// CPU an update with these steps in the pool from 64 tiles (BENCHMARKS.md).
pub const PARALLEL_MIN_TILES_TO_SCAN: usize = 256;

/// Checks a frame's dimensions and returns the bytes one row of pixels takes.
pub fn check_dimensions(width: u32, height: u32) -> Result<usize, FrameError> {
    if width == 0 || height == 0 {
        return Err(FrameError::Empty { width, height });
    }
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(FrameError::TooLarge { width, height });
    }
    Ok(width as usize * BYTES_PER_PIXEL)
}

/// A frame whose pixels are borrowed from CPU memory, rows `stride` bytes apart.
#[derive(Clone, Copy, Debug)]
pub struct CpuFrame<'a> {
    width: u32,
    height: u32,
    stride: usize,
    format: PixelFormat,
    pixels: &'a [u8],
}

impl<'a> CpuFrame<'a> {
    /// Describes `pixels` as a frame. The last row may end right after its last pixel.
    pub fn new(
        width: u32,
        height: u32,
        stride: usize,
        format: PixelFormat,
        pixels: &'a [u8],
    ) -> Result<Self, FrameError> {
        let row_bytes = check_dimensions(width, height)?;
        if stride < row_bytes {
            return Err(FrameError::StrideTooSmall {
                stride,
                width,
                min: row_bytes,
            });
        }
        let needed = stride
            .checked_mul(height as usize - 1)
            .and_then(|n| n.checked_add(row_bytes))
            .ok_or(FrameError::BufferTooSmall {
                len: pixels.len(),
                needed: usize::MAX,
            })?;
        if pixels.len() < needed {
            return Err(FrameError::BufferTooSmall {
                len: pixels.len(),
                needed,
            });
        }
        Ok(Self {
            width,
            height,
            stride,
            format,
            pixels,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Distance between the starts of two rows, in bytes.
    pub fn stride(&self) -> usize {
        self.stride
    }
    pub fn format(&self) -> PixelFormat {
        self.format
    }
    /// Bytes of one row's pixels, without padding.
    pub fn row_bytes(&self) -> usize {
        self.width as usize * BYTES_PER_PIXEL
    }
    /// The whole borrowed buffer, padding included.
    pub fn pixels(&self) -> &'a [u8] {
        self.pixels
    }
    /// The part of this frame inside `rect`, sharing its pixels (no copy): the same stride,
    /// starting at the rectangle's first pixel.
    pub fn crop(&self, rect: &crate::Rect) -> Result<CpuFrame<'a>, FrameError> {
        let full = crate::Rect::new(0, 0, self.width, self.height);
        if rect.is_empty() || rect.intersection(&full) != Some(*rect) {
            return Err(FrameError::OutsideFrame {
                rect: *rect,
                width: self.width,
                height: self.height,
            });
        }
        let start = rect.y as usize * self.stride + rect.x as usize * BYTES_PER_PIXEL;
        CpuFrame::new(
            rect.width,
            rect.height,
            self.stride,
            self.format,
            &self.pixels[start..],
        )
    }

    /// Copies the pixels of `rect` (inside the frame) into `out`, rows packed, each pixel made
    /// canonical (the padding byte of opaque formats set to 0xFF).
    pub fn copy_tile_canonical(&self, rect: &crate::Rect, out: &mut Vec<u8>) {
        let (x0, len) = (
            rect.x as usize * BYTES_PER_PIXEL,
            rect.width as usize * BYTES_PER_PIXEL,
        );
        out.clear();
        // At once: grown a row at a time, a fresh vector was allocated seven times for a
        // 64-pixel tile (256 bytes, doubling to 16 KiB).
        out.reserve(len * rect.height as usize);
        for y in rect.y..rect.bottom() {
            out.extend_from_slice(&self.row(y)[x0..x0 + len]);
        }
        canonicalize(self.format, out);
    }

    /// The smallest rectangle inside `area` (a rectangle of both frames) holding every pixel
    /// where this frame and `other` differ (bytes compared as they are); none when equal.
    pub fn changed_rect(&self, other: &CpuFrame<'_>, area: &crate::Rect) -> Option<crate::Rect> {
        let run = [(area.x, area.right())];
        changed_box(self, other, area.y..area.bottom(), |_| &run)
    }

    /// As [`Self::changed_rect`], looking only inside the tiles of `grid` that `mask` marks
    /// (a mask over `grid`, both frames its size): a clean tile is known equal and not read, so
    /// a changed area with blank stretches costs what its dirty tiles cost. None when nothing
    /// differs there, or when `mask` is not a mask over `grid`.
    pub fn changed_rect_in_tiles(
        &self,
        other: &CpuFrame<'_>,
        grid: &crate::TileGrid,
        mask: &crate::DirtyMask,
    ) -> Option<crate::Rect> {
        let fits = |f: &CpuFrame<'_>| grid.check_frame(f.width, f.height).is_ok();
        if mask.len() != grid.tile_count() || !fits(self) || !fits(other) {
            return None;
        }
        let (cols, size) = (grid.cols() as usize, grid.tile_size());
        // The dirty tiles of each tile row as runs of pixel columns.
        let runs: Vec<Vec<(u32, u32)>> = (0..grid.rows() as usize)
            .map(|tile_row| {
                let mut runs: Vec<(u32, u32)> = Vec::new();
                for c in 0..cols {
                    if !mask.get(tile_row * cols + c) {
                        continue;
                    }
                    let r = grid.tile_rect(tile_row * cols + c);
                    match runs.last_mut() {
                        Some(last) if last.1 == r.x => last.1 = r.right(),
                        _ => runs.push((r.x, r.right())),
                    }
                }
                runs
            })
            .collect();
        changed_box(self, other, 0..self.height, |y| &runs[(y / size) as usize])
    }

    /// The pixels of row `y`, without padding.
    pub fn row(&self, y: u32) -> &'a [u8] {
        let start = y as usize * self.stride;
        &self.pixels[start..start + self.row_bytes()]
    }
}

/// The box around every difference between frames `a` and `b` in rows `rows`, comparing in
/// row `y` only the pixel columns of `runs_of(y)` ([`CpuFrame::changed_rect`],
/// [`CpuFrame::changed_rect_in_tiles`]); none when they are equal there.
///
/// Whole rows are compared only down to the first that differs and up to the last; the rows
/// between can only widen the box, so only their columns outside it are read.
fn changed_box<'r>(
    a: &CpuFrame<'_>,
    b: &CpuFrame<'_>,
    rows: std::ops::Range<u32>,
    runs_of: impl Fn(u32) -> &'r [(u32, u32)],
) -> Option<crate::Rect> {
    let px = |x: u32| x as usize * BYTES_PER_PIXEL;
    let run = |y: u32, (x0, x1): (u32, u32)| (&a.row(y)[px(x0)..px(x1)], &b.row(y)[px(x0)..px(x1)]);
    // memcmp asks for all of a run's cache lines at once.
    let differs = |y: u32| {
        runs_of(y).iter().any(|&r| {
            let (ra, rb) = run(y, r);
            ra != rb
        })
    };
    let top = rows.clone().find(|&y| differs(y))?;
    let bottom = (top..rows.end).rev().find(|&y| differs(y))? + 1;
    let (mut left, mut right) = (u32::MAX, 0);
    for y in top..bottom {
        for &(x0, x1) in runs_of(y) {
            let (ra, rb) = run(y, (x0, x1));
            // Only columns that would widen the box are read: each part once with memcmp
            // (one call at memory speed), and scanned for where it differs only if it does.
            let head = left.min(x1).saturating_sub(x0);
            let (ha, hb) = (&ra[..px(head)], &rb[..px(head)]);
            if let Some(i) = (ha != hb).then(|| first_difference(ha, hb)).flatten() {
                left = x0 + (i / BYTES_PER_PIXEL) as u32;
            }
            let from = right.clamp(x0, x1) - x0;
            let (ta, tb) = (&ra[px(from)..], &rb[px(from)..]);
            if let Some(i) = (ta != tb).then(|| last_difference(ta, tb)).flatten() {
                right = x0 + from + (i / BYTES_PER_PIXEL) as u32 + 1;
            }
        }
    }
    Some(crate::Rect::new(left, top, right - left, bottom - top))
}

/// Bytes compared at once before the word-wide scan looks inside (the compiler makes the
/// compare of two arrays this long a few vector compares).
const SCAN_CHUNK: usize = 64;

/// The index of the first byte where two equal-length runs differ; none when equal.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    let mut skip = 0;
    for (x, y) in a.chunks_exact(SCAN_CHUNK).zip(b.chunks_exact(SCAN_CHUNK)) {
        if as_chunk(x) != as_chunk(y) {
            break;
        }
        skip += SCAN_CHUNK;
    }
    first_difference_by_words(&a[skip..], &b[skip..]).map(|i| skip + i)
}

/// The index of the last byte where two equal-length runs differ; none when equal.
fn last_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    let mut end = a.len();
    for (x, y) in a.rchunks_exact(SCAN_CHUNK).zip(b.rchunks_exact(SCAN_CHUNK)) {
        if as_chunk(x) != as_chunk(y) {
            break;
        }
        end -= SCAN_CHUNK;
    }
    last_difference_by_words(&a[..end], &b[..end])
}

fn as_chunk(s: &[u8]) -> &[u8; SCAN_CHUNK] {
    s.try_into().expect("a whole chunk")
}

/// [`first_difference`], eight bytes a step.
fn first_difference_by_words(a: &[u8], b: &[u8]) -> Option<usize> {
    let (mut wa, mut wb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (i, (x, y)) in (&mut wa).zip(&mut wb).enumerate() {
        let d = u64::from_le_bytes(x.try_into().expect("8 bytes"))
            ^ u64::from_le_bytes(y.try_into().expect("8 bytes"));
        if d != 0 {
            // Little-endian: the lowest set bit is in the first differing byte.
            return Some(i * 8 + d.trailing_zeros() as usize / 8);
        }
    }
    let tail = a.len() - wa.remainder().len();
    (tail..a.len()).find(|&i| a[i] != b[i])
}

/// [`last_difference`], eight bytes a step.
fn last_difference_by_words(a: &[u8], b: &[u8]) -> Option<usize> {
    let (mut wa, mut wb) = (a.rchunks_exact(8), b.rchunks_exact(8));
    for (i, (x, y)) in (&mut wa).zip(&mut wb).enumerate() {
        let d = u64::from_le_bytes(x.try_into().expect("8 bytes"))
            ^ u64::from_le_bytes(y.try_into().expect("8 bytes"));
        if d != 0 {
            // Little-endian: the highest set bit is in the last differing byte.
            return Some(a.len() - i * 8 - 1 - d.leading_zeros() as usize / 8);
        }
    }
    let head = wa.remainder().len();
    (0..head).rev().find(|&i| a[i] != b[i])
}

/// A frame that already lives on the GPU: the zero-copy entry used by capture backends.
///
/// The texture must be 2D, one mip level, in [`PixelFormat::texture_format`] of `format`, with
/// `TEXTURE_BINDING` and `COPY_SRC` usage.
#[derive(Clone, Copy, Debug)]
pub struct GpuFrame<'a> {
    pub texture: &'a wgpu::Texture,
    pub format: PixelFormat,
}

/// A frame from CPU memory or from the GPU.
#[derive(Clone, Copy, Debug)]
pub enum Frame<'a> {
    Cpu(CpuFrame<'a>),
    Gpu(GpuFrame<'a>),
}

impl Frame<'_> {
    pub fn width(&self) -> u32 {
        match self {
            Frame::Cpu(f) => f.width(),
            Frame::Gpu(f) => f.texture.width(),
        }
    }
    pub fn height(&self) -> u32 {
        match self {
            Frame::Cpu(f) => f.height(),
            Frame::Gpu(f) => f.texture.height(),
        }
    }
    pub fn format(&self) -> PixelFormat {
        match self {
            Frame::Cpu(f) => f.format(),
            Frame::Gpu(f) => f.format,
        }
    }
}

/// An owned frame with tightly packed rows (stride = width * 4).
#[derive(Debug, PartialEq, Eq)]
pub struct FrameBuffer {
    width: u32,
    height: u32,
    format: PixelFormat,
    pixels: Vec<u8>,
}

impl Clone for FrameBuffer {
    fn clone(&self) -> Self {
        Self {
            width: self.width,
            height: self.height,
            format: self.format,
            pixels: self.pixels.clone(),
        }
    }

    /// Copies `source` into this buffer's allocation (a frame a frame, no new allocation once
    /// it is large enough).
    fn clone_from(&mut self, source: &Self) {
        self.width = source.width;
        self.height = source.height;
        self.format = source.format;
        self.pixels.clone_from(&source.pixels);
    }
}

impl FrameBuffer {
    /// A frame of the given size with every byte zero.
    pub fn new(width: u32, height: u32, format: PixelFormat) -> Result<Self, FrameError> {
        let row_bytes = check_dimensions(width, height)?;
        Ok(Self {
            width,
            height,
            format,
            pixels: vec![0; row_bytes * height as usize],
        })
    }

    /// Copies a borrowed frame, dropping its row padding.
    pub fn from_frame(frame: &CpuFrame<'_>) -> Self {
        let mut pixels = Vec::with_capacity(frame.row_bytes() * frame.height() as usize);
        for y in 0..frame.height() {
            pixels.extend_from_slice(frame.row(y));
        }
        Self {
            width: frame.width(),
            height: frame.height(),
            format: frame.format(),
            pixels,
        }
    }

    /// Takes ownership of tightly packed pixels.
    pub fn from_pixels(
        width: u32,
        height: u32,
        format: PixelFormat,
        pixels: Vec<u8>,
    ) -> Result<Self, FrameError> {
        let row_bytes = check_dimensions(width, height)?;
        let needed = row_bytes * height as usize;
        if pixels.len() != needed {
            return Err(FrameError::BufferTooSmall {
                len: pixels.len(),
                needed,
            });
        }
        Ok(Self {
            width,
            height,
            format,
            pixels,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn format(&self) -> PixelFormat {
        self.format
    }
    pub fn stride(&self) -> usize {
        self.width as usize * BYTES_PER_PIXEL
    }
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }
    pub fn pixels_mut(&mut self) -> &mut [u8] {
        &mut self.pixels
    }
    /// This buffer as a borrowed frame.
    pub fn as_frame(&self) -> CpuFrame<'_> {
        CpuFrame {
            width: self.width,
            height: self.height,
            stride: self.stride(),
            format: self.format,
            pixels: &self.pixels,
        }
    }

    /// Copies the tiles of `mask` (a mask over `grid`, this frame's grid) from `src`, a frame
    /// of the same size, band by band (in parallel for [`PARALLEL_MIN_TILES_TO_SCAN`] tiles or
    /// more).
    pub fn copy_tiles_from(
        &mut self,
        src: &CpuFrame<'_>,
        grid: &crate::TileGrid,
        mask: &crate::DirtyMask,
    ) {
        use rayon::prelude::*;
        if mask.none() {
            return;
        }
        let stride = self.stride();
        let band_bytes = stride * grid.tile_size() as usize;
        let cols = grid.cols() as usize;
        let copy_band = |(row, band): (usize, &mut [u8])| {
            for col in 0..cols {
                let index = row * cols + col;
                if !mask.get(index) {
                    continue;
                }
                let r = grid.tile_rect(index);
                let (x0, len) = (
                    r.x as usize * BYTES_PER_PIXEL,
                    r.width as usize * BYTES_PER_PIXEL,
                );
                for dy in 0..r.height {
                    let src_row = &src.row(r.y + dy)[x0..x0 + len];
                    let at = dy as usize * stride + x0;
                    band[at..at + len].copy_from_slice(src_row);
                }
            }
        };
        // A few tiles are copied here: the pool would cost more than the copy.
        if mask.count() < PARALLEL_MIN_TILES_TO_SCAN {
            self.pixels
                .chunks_mut(band_bytes)
                .enumerate()
                .for_each(copy_band);
        } else {
            self.pixels
                .par_chunks_mut(band_bytes)
                .enumerate()
                .for_each(copy_band);
        }
    }

    /// The same picture with every pixel made canonical (see [`PixelFormat::canonical_bits`]):
    /// what a receiver holds after a lossless transfer.
    pub fn canonical(&self) -> FrameBuffer {
        let mut out = self.clone();
        canonicalize(self.format, &mut out.pixels);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_frame_checks_stride_and_length() {
        let buf = vec![0u8; 10 * 4 * 3];
        assert!(CpuFrame::new(10, 3, 40, PixelFormat::Bgra8, &buf).is_ok());
        assert_eq!(
            CpuFrame::new(10, 3, 39, PixelFormat::Bgra8, &buf).unwrap_err(),
            FrameError::StrideTooSmall {
                stride: 39,
                width: 10,
                min: 40
            }
        );
        // A padded stride whose last row is unpadded.
        let padded = vec![0u8; 48 * 2 + 40];
        assert!(CpuFrame::new(10, 3, 48, PixelFormat::Bgra8, &padded).is_ok());
        assert!(matches!(
            CpuFrame::new(10, 3, 48, PixelFormat::Bgra8, &padded[..padded.len() - 1]),
            Err(FrameError::BufferTooSmall { .. })
        ));
        assert!(matches!(
            CpuFrame::new(0, 3, 48, PixelFormat::Bgra8, &padded),
            Err(FrameError::Empty { .. })
        ));
        assert!(matches!(
            CpuFrame::new(
                MAX_DIMENSION + 1,
                1,
                usize::MAX,
                PixelFormat::Bgra8,
                &padded
            ),
            Err(FrameError::TooLarge { .. })
        ));
        // A stride so large that stride * height overflows is an error, not a panic.
        assert!(matches!(
            CpuFrame::new(10, 3, usize::MAX, PixelFormat::Bgra8, &padded),
            Err(FrameError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn crop_shares_pixels_and_checks_bounds() {
        let mut f = FrameBuffer::new(8, 4, PixelFormat::Rgba8).unwrap();
        f.pixels_mut()[(2 * 8 + 3) * 4] = 77;
        let frame = f.as_frame();
        let c = frame.crop(&crate::Rect::new(3, 2, 5, 2)).unwrap();
        assert_eq!((c.width(), c.height(), c.stride()), (5, 2, 32));
        assert_eq!(c.row(0)[0], 77);
        assert!(frame.crop(&crate::Rect::new(4, 0, 5, 1)).is_err());
        assert!(frame.crop(&crate::Rect::new(0, 0, 0, 1)).is_err());
        assert!(frame.crop(&crate::Rect::new(u32::MAX, 0, 2, 1)).is_err());
    }

    #[test]
    fn wire_codes_round_trip() {
        for f in PixelFormat::ALL {
            assert_eq!(PixelFormat::from_wire_code(f.wire_code()), Some(f));
        }
        assert_eq!(PixelFormat::from_wire_code(4), None);
    }

    #[test]
    fn canonical_sets_padding_byte_only_for_opaque_formats() {
        let px = vec![1, 2, 3, 4];
        let x = FrameBuffer::from_pixels(1, 1, PixelFormat::Bgrx8, px.clone()).unwrap();
        assert_eq!(x.canonical().pixels(), &[1, 2, 3, 0xFF]);
        let a = FrameBuffer::from_pixels(1, 1, PixelFormat::Rgba8, px.clone()).unwrap();
        assert_eq!(a.canonical().pixels(), &px[..]);
        // Rows of 13 pixels: whole 32-byte runs and a remainder, in a frame and in a tile.
        let (w, h) = (13, 3);
        let noise: Vec<u8> = (0..w * h * 4).map(|i| (i * 37 % 256) as u8).collect();
        for f in PixelFormat::ALL {
            let frame = FrameBuffer::from_pixels(w, h, f, noise.clone()).unwrap();
            let mut want = noise.clone();
            for px in want.chunks_exact_mut(4) {
                let v = u32::from_le_bytes(px.try_into().unwrap()) | f.canonical_bits();
                px.copy_from_slice(&v.to_le_bytes());
            }
            assert_eq!(frame.canonical().pixels(), &want[..], "{f:?}");
            let mut tile = Vec::new();
            let rect = crate::Rect::new(1, 1, 11, 2);
            frame.as_frame().copy_tile_canonical(&rect, &mut tile);
            let rows = want.chunks_exact(w as usize * 4).skip(1);
            let want_tile: Vec<u8> = rows.flat_map(|r| r[4..48].to_vec()).collect();
            assert_eq!(tile, want_tile, "{f:?}");
        }
    }

    /// The changed rectangle, pixel by pixel: what the word-wide scan must agree with.
    fn changed_rect_by_pixels(
        a: &CpuFrame<'_>,
        b: &CpuFrame<'_>,
        area: &crate::Rect,
    ) -> Option<crate::Rect> {
        let mut found: Option<crate::Rect> = None;
        for y in area.y..area.bottom() {
            for x in area.x..area.right() {
                let at = x as usize * 4..x as usize * 4 + 4;
                if a.row(y)[at.clone()] != b.row(y)[at] {
                    let p = crate::Rect::new(x, y, 1, 1);
                    found = Some(found.map_or(p, |f| f.union(&p)));
                }
            }
        }
        found
    }

    #[test]
    fn changed_rect_in_tiles_refuses_a_mask_or_frame_of_another_grid() {
        let a = FrameBuffer::new(64, 32, PixelFormat::Bgra8).unwrap();
        let mut b = a.clone();
        b.pixels_mut()[0] = 1;
        let grid = crate::TileGrid::new(64, 32, 16).unwrap();
        let (fa, fb) = (a.as_frame(), b.as_frame());
        let full = crate::DirtyMask::full(grid.tile_count());
        assert_eq!(
            fa.changed_rect_in_tiles(&fb, &grid, &full),
            Some(crate::Rect::new(0, 0, 1, 1))
        );
        let short = crate::DirtyMask::full(grid.tile_count() - 1);
        assert_eq!(fa.changed_rect_in_tiles(&fb, &grid, &short), None);
        let small = FrameBuffer::new(32, 32, PixelFormat::Bgra8).unwrap();
        assert_eq!(
            fa.changed_rect_in_tiles(&small.as_frame(), &grid, &full),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn changed_rect_is_the_box_of_every_differing_byte(
            (width, height) in (1u32..40, 1u32..12),
            pokes in proptest::collection::vec((0u32..40, 0u32..12, 0usize..4, 1u8..=255), 0..6),
            area in (0u32..40, 0u32..12, 1u32..40, 1u32..12),
        ) {
            let a = FrameBuffer::new(width, height, PixelFormat::Bgra8).unwrap();
            let mut b = a.clone();
            for (x, y, byte, v) in pokes {
                let (x, y) = (x % width, y % height);
                b.pixels_mut()[(y * width + x) as usize * 4 + byte] = v;
            }
            let (x, y) = (area.0 % width, area.1 % height);
            let area = crate::Rect::new(x, y, area.2.min(width - x), area.3.min(height - y));
            let (fa, fb) = (a.as_frame(), b.as_frame());
            proptest::prop_assert_eq!(
                fa.changed_rect(&fb, &area),
                changed_rect_by_pixels(&fa, &fb, &area)
            );
        }

        #[test]
        fn changed_rect_in_tiles_is_the_box_of_every_differing_byte_in_dirty_tiles(
            (width, height) in (1u32..120, 1u32..50),
            pokes in proptest::collection::vec((0u32..120, 0u32..50, 0usize..4, 1u8..=255), 0..12),
            dirty in proptest::collection::vec(proptest::bool::ANY, 32),
        ) {
            let a = FrameBuffer::new(width, height, PixelFormat::Bgrx8).unwrap();
            let mut b = a.clone();
            for (x, y, byte, v) in pokes {
                let (x, y) = (x % width, y % height);
                b.pixels_mut()[(y * width + x) as usize * 4 + byte] = v;
            }
            let grid = crate::TileGrid::new(width, height, 16).unwrap();
            let mut mask = crate::DirtyMask::new(grid.tile_count());
            for t in (0..grid.tile_count()).filter(|&t| dirty[t]) {
                mask.set(t);
            }
            let (fa, fb) = (a.as_frame(), b.as_frame());
            let expected = mask
                .iter()
                .filter_map(|t| changed_rect_by_pixels(&fa, &fb, &grid.tile_rect(t)))
                .reduce(|p, q| p.union(&q));
            proptest::prop_assert_eq!(fa.changed_rect_in_tiles(&fb, &grid, &mask), expected);
        }
    }
}
