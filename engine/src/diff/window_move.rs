//! [`detect_move`]: finds a rectangle of the screen that moved in any direction between two
//! frames (a dragged window), as a copy command: the receiver moves the pixels it holds, and only
//! what the window uncovered needs sending.
//!
//! Block matching by content-defined anchors. Inside the changed rectangle every run of
//! [`SEGMENT`] pixels of a row is hashed (every row of the old frame, every [`ROW_STEP`]-th of the
//! new one): each pixel, mixed by a multiply, is XORed into a word that shifts by 64 / `SEGMENT`
//! bits a pixel, so the word holds exactly the last `SEGMENT` pixels and a step is a shift and an
//! XOR. Runs whose hash falls in one sixteenth of the hash space are anchors, so both frames
//! pick the same runs of the same content wherever it lies. Each anchor of the new frame that
//! matches exactly one anchor of the old one votes for their offset. The winning offset's voters
//! bound the moved rectangle, which then grows edge by edge (inside the changed rectangle) while
//! whole rows and columns still match. As with scrolls, the result is a proposal the sender
//! checks tile by tile.

use crate::{hash_rect, CopyRect, CpuFrame, DirtyMask, Rect, TileGrid, BYTES_PER_PIXEL};
use std::collections::HashMap;

/// Pixels in a hashed run.
const SEGMENT: usize = 16;
/// Fewer agreeing anchors than this are chance.
const MIN_VOTES: u32 = 8;
/// One anchor in 2^ANCHOR_BITS runs.
const ANCHOR_BITS: u32 = 4;
/// The new frame is sampled on every this many rows (the old one on every row, so any offset
/// is found).
const ROW_STEP: usize = 2;
/// The bits a pixel's contribution moves up the run hash at each step: after `SEGMENT` steps
/// it has left the word.
const SHIFT: u32 = 64 / SEGMENT as u32;
const _: () = assert!(64 % SEGMENT == 0, "a run fills the hash word exactly");
/// Mixes a pixel before it enters the run hash (odd: no two pixels mix alike).
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// Where a run of the old frame lies, and whether its hash was seen more than once.
#[derive(Clone, Copy)]
struct Anchor {
    x: u32,
    y: u32,
    unique: bool,
}

/// The copy that moves a rectangle of `prev` to where it is in `cur`, inside the changed area of
/// `mask` (a mask over `grid`, both frames its size), if something moved.
pub fn detect_move(
    prev: &CpuFrame<'_>,
    cur: &CpuFrame<'_>,
    grid: &TileGrid,
    mask: &DirtyMask,
) -> Option<CopyRect> {
    move_in(prev, cur, &super::search_area(prev, cur, grid, mask)?)
}

/// [`detect_move`] inside `changed`, the rectangle holding every changed pixel.
pub(super) fn move_in(prev: &CpuFrame<'_>, cur: &CpuFrame<'_>, changed: &Rect) -> Option<CopyRect> {
    let changed = *changed;
    if (changed.width as usize) < 2 * SEGMENT || changed.height < 8 {
        return None;
    }
    let mut old: HashMap<u64, Anchor> = HashMap::new();
    anchors(prev, &changed, 1, |h, x, y| {
        old.entry(h)
            .and_modify(|a| a.unique = false)
            .or_insert(Anchor { x, y, unique: true });
    });
    // Votes per offset, and the bounding box of the runs that cast them.
    let mut votes: HashMap<(i64, i64), (u32, Rect)> = HashMap::new();
    anchors(cur, &changed, ROW_STEP, |h, x, y| {
        if let Some(a) = old.get(&h).filter(|a| a.unique) {
            let offset = (i64::from(a.x) - i64::from(x), i64::from(a.y) - i64::from(y));
            if offset != (0, 0) {
                let run = Rect::new(x, y, SEGMENT as u32, 1);
                let v = votes.entry(offset).or_insert((0, run));
                v.0 += 1;
                v.1 = v.1.union(&run);
            }
        }
    });
    let ((dx, dy), (count, voters)) = votes
        .into_iter()
        .max_by_key(|&((dx, dy), (n, _))| (n, -(dx.abs() + dy.abs())))?;
    if count < MIN_VOTES {
        return None;
    }
    let dst = grow(prev, cur, &changed, voters, dx, dy)?;
    let src = Rect::new(
        (i64::from(dst.x) + dx) as u32,
        (i64::from(dst.y) + dy) as u32,
        dst.width,
        dst.height,
    );
    Some(CopyRect {
        src,
        dst_x: dst.x,
        dst_y: dst.y,
        src_hash: hash_rect(prev, &src),
    })
}

/// Calls `found(hash, x, y)` for every anchor run of `frame` inside `area`, on every
/// `row_step`-th row.
fn anchors(
    frame: &CpuFrame<'_>,
    area: &Rect,
    row_step: usize,
    mut found: impl FnMut(u64, u32, u32),
) {
    let x0 = area.x as usize * BYTES_PER_PIXEL;
    for y in (area.y..area.bottom()).step_by(row_step) {
        let row = &frame.row(y)[x0..x0 + area.width as usize * BYTES_PER_PIXEL];
        let mut h = 0u64;
        for (i, p) in row.chunks_exact(BYTES_PER_PIXEL).enumerate() {
            // The product's high half (rotated down) depends on every bit of the pixel; the
            // shift drops the pixel that left the run.
            let mixed = u64::from(u32::from_le_bytes(p.try_into().expect("4 bytes")))
                .wrapping_mul(MIX)
                .rotate_left(32);
            h = (h << SHIFT) ^ mixed;
            // The top bits hold a share of every pixel of the run.
            if i + 1 >= SEGMENT && h >> (64 - ANCHOR_BITS) == 0 {
                found(h, area.x + (i + 1 - SEGMENT) as u32, y);
            }
        }
    }
}

/// The largest rectangle around `seed` (in `cur`) inside `changed` whose pixels are those of
/// `prev` at an offset of (`dx`, `dy`): the seed shrunk to rows and columns that match, then
/// grown edge by edge. (Outside the changed rectangle nothing needs copying.)
fn grow(
    prev: &CpuFrame<'_>,
    cur: &CpuFrame<'_>,
    changed: &Rect,
    seed: Rect,
    dx: i64,
    dy: i64,
) -> Option<Rect> {
    let (w, h) = (i64::from(cur.width()), i64::from(cur.height()));
    // Where a destination rectangle may lie so that its source stays inside the frame.
    let room = Rect::new(
        (-dx).max(0) as u32,
        (-dy).max(0) as u32,
        (w - dx.abs()).max(0) as u32,
        (h - dy.abs()).max(0) as u32,
    )
    .intersection(changed)?;
    let mut r = seed.intersection(&room)?;
    let matches = |x: u32, y: u32, width: u32, height: u32| -> bool {
        (y..y + height).all(|yy| {
            let a = x as usize * BYTES_PER_PIXEL;
            let b = (i64::from(x) + dx) as usize * BYTES_PER_PIXEL;
            let len = width as usize * BYTES_PER_PIXEL;
            let sy = (i64::from(yy) + dy) as u32;
            cur.row(yy)[a..a + len] == prev.row(sy)[b..b + len]
        })
    };
    // Shrink: drop edge rows and columns of the seed that do not match.
    while r.height > 0 && !matches(r.x, r.y, r.width, 1) {
        r = Rect::new(r.x, r.y + 1, r.width, r.height - 1);
    }
    while r.height > 0 && !matches(r.x, r.bottom() - 1, r.width, 1) {
        r = Rect::new(r.x, r.y, r.width, r.height - 1);
    }
    if r.height == 0 {
        return None;
    }
    while r.width > 0 && !matches(r.x, r.y, 1, r.height) {
        r = Rect::new(r.x + 1, r.y, r.width - 1, r.height);
    }
    while r.width > 0 && !matches(r.right() - 1, r.y, 1, r.height) {
        r = Rect::new(r.x, r.y, r.width - 1, r.height);
    }
    if r.width == 0 {
        return None;
    }
    // Grow while the next whole row or column matches.
    loop {
        let before = r;
        if r.y > room.y && matches(r.x, r.y - 1, r.width, 1) {
            r = Rect::new(r.x, r.y - 1, r.width, r.height + 1);
        }
        if r.bottom() < room.bottom() && matches(r.x, r.bottom(), r.width, 1) {
            r = Rect::new(r.x, r.y, r.width, r.height + 1);
        }
        if r.x > room.x && matches(r.x - 1, r.y, 1, r.height) {
            r = Rect::new(r.x - 1, r.y, r.width + 1, r.height);
        }
        if r.right() < room.right() && matches(r.right(), r.y, 1, r.height) {
            r = Rect::new(r.x, r.y, r.width + 1, r.height);
        }
        if r == before {
            return Some(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply_copies, CpuDiff, FrameBuffer, PixelFormat, Scene, SyntheticSource};

    /// A 640x400 frame of text-like noise with a 200x150 "window" of other noise at (`x`, `y`).
    fn desktop(x: u32, y: u32) -> FrameBuffer {
        let mut f = FrameBuffer::new(640, 400, PixelFormat::Bgra8).unwrap();
        let stride = f.stride();
        let px = f.pixels_mut();
        for yy in 0..400u32 {
            for xx in 0..640u32 {
                let inside = (x..x + 200).contains(&xx) && (y..y + 150).contains(&yy);
                let v = if inside {
                    let (u, v) = (xx - x, yy - y);
                    ((u * 31 + v * 17) ^ (u * v)) as u8
                } else {
                    if (xx / 3 + yy / 5) % 4 == 0 {
                        20
                    } else {
                        240
                    }
                };
                let at = yy as usize * stride + xx as usize * 4;
                px[at..at + 4].copy_from_slice(&[v, v.wrapping_add(40), 255 - v, 255]);
            }
        }
        f
    }

    fn check_move(from: (u32, u32), to: (u32, u32)) {
        let (prev, cur) = (desktop(from.0, from.1), desktop(to.0, to.1));
        let grid = TileGrid::new(640, 400, 32).unwrap();
        let mask = CpuDiff::default()
            .diff(&grid, &prev.as_frame(), &cur.as_frame(), None)
            .unwrap();
        let copy = detect_move(&prev.as_frame(), &cur.as_frame(), &grid, &mask)
            .unwrap_or_else(|| panic!("no move found from {from:?} to {to:?}"));
        let window = Rect::new(to.0, to.1, 200, 150);
        assert_eq!(
            copy.dst().intersection(&window),
            Some(window),
            "the copy covers the window: {copy:?}"
        );
        assert_eq!(
            (
                i64::from(copy.src.x) - i64::from(copy.dst_x),
                i64::from(copy.src.y) - i64::from(copy.dst_y)
            ),
            (
                i64::from(from.0) - i64::from(to.0),
                i64::from(from.1) - i64::from(to.1)
            )
        );
        let mut predicted = prev.clone();
        apply_copies(&mut predicted, &[copy]).unwrap();
        assert_eq!(
            predicted
                .as_frame()
                .changed_rect(&cur.as_frame(), &copy.dst()),
            None,
            "the copy makes the whole window right"
        );
    }

    #[test]
    fn a_dragged_window_is_found_in_every_direction() {
        check_move((100, 100), (110, 100));
        check_move((100, 100), (93, 100));
        check_move((100, 100), (130, 77));
        check_move((300, 200), (250, 240));
        check_move((100, 100), (100, 140));
    }

    #[test]
    fn typing_and_noise_are_not_moves() {
        let grid = TileGrid::new(320, 256, 32).unwrap();
        let mask = DirtyMask::full(grid.tile_count());
        let mut s = SyntheticSource::new(Scene::Typing, 320, 256, PixelFormat::Bgra8).unwrap();
        let prev = s.frame_buffer().clone();
        s.advance();
        assert_eq!(
            detect_move(&prev.as_frame(), &s.frame(), &grid, &mask),
            None
        );
        let mut a = FrameBuffer::new(320, 256, PixelFormat::Bgra8).unwrap();
        let b = FrameBuffer::new(320, 256, PixelFormat::Bgra8).unwrap();
        for (i, p) in a.pixels_mut().iter_mut().enumerate() {
            *p = (i * 7919 % 251) as u8;
        }
        assert_eq!(
            detect_move(&a.as_frame(), &b.as_frame(), &grid, &mask),
            None
        );
    }

    #[test]
    fn the_synthetic_dragged_window_is_found() {
        let mut s = SyntheticSource::new(Scene::Dragging, 640, 400, PixelFormat::Bgra8).unwrap();
        let grid = TileGrid::new(640, 400, 32).unwrap();
        let mut found = 0;
        for _ in 0..10 {
            let prev = s.frame_buffer().clone();
            s.advance();
            let mask = CpuDiff::default()
                .diff(&grid, &prev.as_frame(), &s.frame(), None)
                .unwrap();
            if let Some(copy) = detect_move(&prev.as_frame(), &s.frame(), &grid, &mask) {
                let mut predicted = prev.clone();
                apply_copies(&mut predicted, &[copy]).unwrap();
                assert_eq!(
                    predicted.as_frame().changed_rect(&s.frame(), &copy.dst()),
                    None
                );
                found += 1;
            }
        }
        assert!(found >= 5, "found the move in {found} of 10 frames");
    }
}
