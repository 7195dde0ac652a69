//! [`CopyRect`]: an update's copy commands — move a rectangle of the frame the receiver holds
//! to another place (a scroll, a window move) — their bytes, and applying them with an undo.
//!
//! A copy carries the XXH3-64 of its source pixels as the receiver must hold them; a receiver
//! that holds something else refuses the update instead of building on the wrong picture.

use super::update::DecodeError;
use crate::{CpuFrame, FrameBuffer, Rect, BYTES_PER_PIXEL};
use xxhash_rust::xxh3::Xxh3;

/// Bytes of one copy command: source x, y, width, height, destination x, y (`u16` each),
/// source hash (`u64`).
pub const COPY_LEN: usize = 20;
/// Most copy commands in one update.
pub const MAX_COPIES: usize = 16;

/// Copy `src` (in the frame as held before the update) to (`dst_x`, `dst_y`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CopyRect {
    pub src: Rect,
    pub dst_x: u32,
    pub dst_y: u32,
    /// [`hash_rect`] of `src` in the frame the copy applies to.
    pub src_hash: u64,
}

impl CopyRect {
    /// Where the pixels land.
    pub fn dst(&self) -> Rect {
        Rect::new(self.dst_x, self.dst_y, self.src.width, self.src.height)
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let s = &self.src;
        for v in [s.x, s.y, s.width, s.height, self.dst_x, self.dst_y] {
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        out.extend_from_slice(&self.src_hash.to_le_bytes());
    }

    /// Reads one command from exactly [`COPY_LEN`] bytes.
    pub(crate) fn read(b: &[u8]) -> Self {
        let at = |i: usize| u32::from(u16::from_le_bytes([b[2 * i], b[2 * i + 1]]));
        Self {
            src: Rect::new(at(0), at(1), at(2), at(3)),
            dst_x: at(4),
            dst_y: at(5),
            src_hash: u64::from_le_bytes(b[12..20].try_into().expect("8 bytes")),
        }
    }

    /// Whether source and destination are non-empty and inside a `width` x `height` frame.
    pub fn fits(&self, width: u32, height: u32) -> bool {
        let frame = Rect::new(0, 0, width, height);
        let inside = |r: &Rect| !r.is_empty() && r.intersection(&frame) == Some(*r);
        inside(&self.src) && inside(&self.dst())
    }
}

/// Bytes of canonical pixels [`hash_rect`] gathers before hashing them (whole rows, at least
/// one): few hash calls, and a buffer that stays in cache.
const HASH_BATCH: usize = 32 * 1024;

/// XXH3-64 of the canonical pixels of `rect` (inside `frame`), rows in order.
pub fn hash_rect(frame: &CpuFrame<'_>, rect: &Rect) -> u64 {
    let mut h = Xxh3::new();
    let row = rect.width as usize * BYTES_PER_PIXEL;
    let rows_a_batch = (HASH_BATCH / row.max(1)).max(1) as u32;
    let mut batch = Vec::with_capacity(row * rows_a_batch.min(rect.height) as usize);
    let mut y = rect.y;
    while y < rect.bottom() {
        let rows = rows_a_batch.min(rect.bottom() - y);
        frame.copy_tile_canonical(&Rect::new(rect.x, y, rect.width, rows), &mut batch);
        h.update(&batch);
        y += rows;
    }
    h.digest()
}

/// Moves the pixels of `copy.src` to `copy.dst()` inside `frame`, as [`apply_copies`] does but
/// without checking the source hash or keeping what was overwritten: for the frame the copy
/// was found in, whose pixels the hash was taken from. Source and destination may overlap.
/// The copy must fit the frame ([`CopyRect::fits`]).
pub fn move_pixels(frame: &mut FrameBuffer, copy: &CopyRect) {
    let (stride, len) = (frame.stride(), copy.src.width as usize * BYTES_PER_PIXEL);
    let (sx, dx) = (
        copy.src.x as usize * BYTES_PER_PIXEL,
        copy.dst_x as usize * BYTES_PER_PIXEL,
    );
    let pixels = frame.pixels_mut();
    let mut move_row = |dy: u32| {
        let from = (copy.src.y + dy) as usize * stride + sx;
        pixels.copy_within(from..from + len, (copy.dst_y + dy) as usize * stride + dx);
    };
    // Rows are read before they are overwritten: a move down goes from the bottom row up.
    if copy.dst_y > copy.src.y {
        (0..copy.src.height).rev().for_each(&mut move_row);
    } else {
        (0..copy.src.height).for_each(&mut move_row);
    }
}

/// What copies overwrote, to put back if the rest of the update fails.
#[derive(Debug, Default)]
pub struct CopyUndo {
    saved: Vec<(Rect, Vec<u8>)>,
}

impl CopyUndo {
    /// Puts the overwritten pixels back, last copy first.
    pub fn restore(self, frame: &mut FrameBuffer) {
        for (rect, pixels) in self.saved.into_iter().rev() {
            write_rect(frame, &rect, &pixels);
        }
    }
}

/// Checks every copy's source hash against `frame`, then applies them in order (each reads the
/// frame as the copies before it left it, the source whole before the destination is written).
/// On a hash mismatch nothing is changed.
pub fn apply_copies(frame: &mut FrameBuffer, copies: &[CopyRect]) -> Result<CopyUndo, DecodeError> {
    let mut undo = CopyUndo::default();
    for (i, c) in copies.iter().enumerate() {
        let held = hash_rect(&frame.as_frame(), &c.src);
        if held != c.src_hash {
            undo.restore(frame);
            return Err(DecodeError::CopySourceMismatch {
                copy: i,
                expected: c.src_hash,
                held,
            });
        }
        undo.saved.push((c.dst(), read_rect(frame, &c.dst())));
        move_pixels(frame, c);
    }
    Ok(undo)
}

fn read_rect(frame: &FrameBuffer, rect: &Rect) -> Vec<u8> {
    let (stride, row) = (frame.stride(), rect.width as usize * BYTES_PER_PIXEL);
    let mut out = Vec::with_capacity(row * rect.height as usize);
    for y in rect.y..rect.bottom() {
        let at = y as usize * stride + rect.x as usize * BYTES_PER_PIXEL;
        out.extend_from_slice(&frame.pixels()[at..at + row]);
    }
    out
}

fn write_rect(frame: &mut FrameBuffer, rect: &Rect, pixels: &[u8]) {
    let (stride, row) = (frame.stride(), rect.width as usize * BYTES_PER_PIXEL);
    for (dy, src) in pixels.chunks_exact(row).enumerate() {
        let at = (rect.y as usize + dy) * stride + rect.x as usize * BYTES_PER_PIXEL;
        frame.pixels_mut()[at..at + row].copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PixelFormat;

    fn numbered(w: u32, h: u32) -> FrameBuffer {
        let pixels = (0..w * h * 4).map(|i| (i / 4) as u8).collect();
        FrameBuffer::from_pixels(w, h, PixelFormat::Bgra8, pixels).unwrap()
    }

    #[test]
    fn bytes_round_trip_and_bounds() {
        let c = CopyRect {
            src: Rect::new(1, 2, 3, 4),
            dst_x: 5,
            dst_y: 6,
            src_hash: 0x0102_0304_0506_0708,
        };
        let mut b = Vec::new();
        c.write(&mut b);
        assert_eq!(b.len(), COPY_LEN);
        assert_eq!(CopyRect::read(&b), c);
        assert!(c.fits(8, 10));
        assert!(!c.fits(7, 10), "destination past the right edge");
        assert!(!CopyRect {
            src: Rect::new(0, 0, 0, 4),
            ..c
        }
        .fits(8, 10));
    }

    #[test]
    fn hashing_in_batches_hashes_the_whole_rectangle() {
        for (w, h, format) in [
            (300, 200, PixelFormat::Bgrx8),
            (4000, 3, PixelFormat::Bgra8),
            (1, 1, PixelFormat::Rgbx8),
        ] {
            let pixels = (0..w * h * 4).map(|i| (i * 31 % 253) as u8).collect();
            let f = FrameBuffer::from_pixels(w, h, format, pixels).unwrap();
            let rect = Rect::new(w / 3, h / 4, w - w / 3, h - h / 4);
            let mut whole = Vec::new();
            f.as_frame().copy_tile_canonical(&rect, &mut whole);
            assert_eq!(
                hash_rect(&f.as_frame(), &rect),
                xxhash_rust::xxh3::xxh3_64(&whole),
                "{w}x{h} {format:?}"
            );
        }
    }

    #[test]
    fn moving_pixels_in_place_equals_reading_the_source_then_writing_it() {
        let mut state = 0x9E37_79B9u64;
        let mut next = |n: u32| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % u64::from(n)) as u32
        };
        for _ in 0..500 {
            let (w, h) = (1 + next(40), 1 + next(30));
            let (width, height) = (1 + next(w), 1 + next(h));
            let src = Rect::new(next(w - width + 1), next(h - height + 1), width, height);
            let (dst_x, dst_y) = (next(w - width + 1), next(h - height + 1));
            let mut f = numbered(w, h);
            let copy = CopyRect {
                src,
                dst_x,
                dst_y,
                src_hash: 0,
            };
            let mut expected = f.clone();
            let source = read_rect(&f, &src);
            write_rect(&mut expected, &copy.dst(), &source);
            move_pixels(&mut f, &copy);
            assert_eq!(f, expected, "{w}x{h}, {copy:?}");
        }
    }

    #[test]
    fn an_overlapping_scroll_moves_the_rows_and_undo_puts_them_back() {
        let mut f = numbered(4, 6);
        let before = f.clone();
        let src = Rect::new(0, 2, 4, 4);
        let copy = CopyRect {
            src,
            dst_x: 0,
            dst_y: 0,
            src_hash: hash_rect(&f.as_frame(), &src),
        };
        let undo = apply_copies(&mut f, &[copy]).unwrap();
        for y in 0..4 {
            assert_eq!(
                f.pixels()[y * 16..y * 16 + 16],
                before.pixels()[(y + 2) * 16..(y + 3) * 16]
            );
        }
        undo.restore(&mut f);
        assert_eq!(f, before);
        let wrong = CopyRect {
            src_hash: copy.src_hash ^ 1,
            ..copy
        };
        assert!(matches!(
            apply_copies(&mut f, &[copy, wrong]),
            Err(DecodeError::CopySourceMismatch { copy: 1, .. })
        ));
        assert_eq!(f, before, "nothing changed by a refused copy list");
    }
}
