//! [`detect_vertical_scroll`]: finds the part of the screen that scrolled between two frames,
//! as a copy command (the receiver moves the pixels it holds; only the newly exposed rows need
//! sending).
//!
//! The changed rectangle is found exactly inside the dirty tiles; each of its rows in both
//! frames is hashed, and every row of the new frame that matches exactly one to four rows of the
//! old one votes for their vertical distance. The distance with the most votes wins if enough
//! rows agree, or if fewer agree but nearly every row the move keeps on screen is the old row
//! that distance away. The result is only a proposal: the sender compares what the copy would
//! give with the new frame tile by tile and sends every tile where they differ.

use crate::{hash_rect, CopyRect, CpuFrame, DirtyMask, Rect, TileGrid, BYTES_PER_PIXEL};
use xxhash_rust::xxh3::xxh3_64;

/// A row hash seen more often than this in the old frame (blank lines) does not vote.
const MAX_MATCHES: usize = 4;

/// The low bits of a sorted row's key that hold its number.
const ROW_BITS: u64 = (1 << 16) - 1;
const _: () = assert!(crate::MAX_DIMENSION as u64 <= ROW_BITS + 1);

/// The fewest votes a distance needs. A quarter of the rows' votes is enough on its own; fewer
/// are enough when [`kept_rows_match`]. Lines of a terminal that differ only in their last
/// digits (`seq`, logs with counters) are a narrow changed area in which most rows look like
/// many others and do not vote: a 78-row scroll of such an area 685 rows high was found with
/// about 155 votes, short of a quarter, while all 607 rows it keeps matched.
const MIN_VOTES: u32 = 8;

/// Whether at least three quarters of the rows that a move by `dy` keeps on screen, and at
/// least half of all rows, are the old row `dy` away (`old`, `new`: the rows' hashes, top
/// down).
fn kept_rows_match(old: &[u64], new: &[u64], dy: i64) -> bool {
    let shift = dy.unsigned_abs() as usize;
    let kept = new.len().saturating_sub(shift);
    let (from, to) = if dy > 0 {
        (&old[shift..], &new[..kept])
    } else {
        (&old[..kept], &new[shift..])
    };
    let same = from.iter().zip(to).filter(|(a, b)| a == b).count();
    same * 4 >= kept * 3 && same * 2 >= new.len()
}

/// The copy that turns `prev` into `cur` best by moving rows up or down inside the changed
/// area of `mask` (a mask over `grid`, both frames its size), if rows moved at all.
pub fn detect_vertical_scroll(
    prev: &CpuFrame<'_>,
    cur: &CpuFrame<'_>,
    grid: &TileGrid,
    mask: &DirtyMask,
) -> Option<CopyRect> {
    scroll_in(prev, cur, &super::search_area(prev, cur, grid, mask)?)
}

/// [`detect_vertical_scroll`] inside `changed`, the rectangle holding every changed pixel.
pub(super) fn scroll_in(
    prev: &CpuFrame<'_>,
    cur: &CpuFrame<'_>,
    changed: &Rect,
) -> Option<CopyRect> {
    let changed = *changed;
    if changed.height < 16 {
        return None;
    }
    let row_hashes = |f: &CpuFrame<'_>| -> Vec<u64> {
        let (x0, len) = (
            changed.x as usize * BYTES_PER_PIXEL,
            changed.width as usize * BYTES_PER_PIXEL,
        );
        (changed.y..changed.bottom())
            .map(|y| xxh3_64(&f.row(y)[x0..x0 + len]))
            .collect()
    };
    let (old_rows, new_rows) = (row_hashes(prev), row_hashes(cur));
    // The rows of both frames sorted by hash: the rows with one hash are one run in each, and
    // one walk through both pairs the runs (no map, no allocation a hash, no search a row).
    // Each row is one u64 to sort, its hash's top 48 bits over its number (a frame's rows fit in
    // ROW_BITS): two rows whose hashes share those bits only add a vote to a proposal.
    let sorted = |hashes: &[u64]| {
        let mut rows: Vec<u64> = hashes
            .iter()
            .zip(0u64..)
            .map(|(h, y)| (h & !ROW_BITS) | y)
            .collect();
        rows.sort_unstable();
        rows
    };
    let (old, new) = (sorted(&old_rows), sorted(&new_rows));
    let rows = changed.height as usize;
    // votes[rows - 1 + dy]: the rows that moved by dy (old row minus new row), |dy| < rows.
    let mut votes = vec![0u32; 2 * rows - 1];
    let (mut i, mut j) = (0, 0);
    let row = |key: u64| (key & ROW_BITS) as usize;
    while i < old.len() && j < new.len() {
        let h = (old[i] & !ROW_BITS).min(new[j] & !ROW_BITS);
        let run_end = |rows: &[u64], mut k: usize| {
            while k < rows.len() && rows[k] & !ROW_BITS == h {
                k += 1;
            }
            k
        };
        let (old_end, new_end) = (run_end(&old, i), run_end(&new, j));
        if old_end - i <= MAX_MATCHES {
            for &y in &new[j..new_end] {
                for &from in &old[i..old_end] {
                    votes[rows - 1 + row(from) - row(y)] += 1;
                }
            }
        }
        (i, j) = (old_end, new_end);
    }
    votes[rows - 1] = 0;
    // The most votes; of equals, the shortest move, then the upward one.
    let (dy, count) = votes
        .iter()
        .enumerate()
        .map(|(i, &n)| (i as i64 - (rows as i64 - 1), n))
        .max_by_key(|&(dy, n)| (n, -dy.abs(), dy))?;
    let shift = dy.unsigned_abs() as u32;
    let height = changed.height.checked_sub(shift).filter(|&h| h > 0)?;
    if count < MIN_VOTES
        || (count < changed.height / 4 && !kept_rows_match(&old_rows, &new_rows, dy))
    {
        return None;
    }
    // dy > 0: the content moved up (rows come from further down).
    let (src_y, dst_y) = if dy > 0 {
        (changed.y + shift, changed.y)
    } else {
        (changed.y, changed.y + shift)
    };
    let src = Rect::new(changed.x, src_y, changed.width, height);
    Some(CopyRect {
        src,
        dst_x: changed.x,
        dst_y,
        src_hash: hash_rect(prev, &src),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply_copies, CpuDiff, FrameBuffer, PixelFormat, Scene, SyntheticSource};

    #[test]
    fn a_scrolling_editor_is_found_and_the_copy_rebuilds_all_but_the_new_rows() {
        let mut s = SyntheticSource::new(Scene::Scrolling, 640, 400, PixelFormat::Bgra8).unwrap();
        for _ in 0..30 {
            s.advance();
        }
        let prev = s.frame_buffer().clone();
        s.advance();
        let grid = TileGrid::new(640, 400, 32).unwrap();
        let mask = CpuDiff::default()
            .diff(&grid, &prev.as_frame(), &s.frame(), None)
            .unwrap();
        let copy =
            detect_vertical_scroll(&prev.as_frame(), &s.frame(), &grid, &mask).expect("a scroll");
        assert_eq!(
            copy.src.y - copy.dst_y,
            4,
            "the scene scrolls 4 pixels a frame"
        );
        let mut predicted = prev.clone();
        apply_copies(&mut predicted, &[copy]).unwrap();
        let left = CpuDiff::default()
            .diff(&grid, &predicted.as_frame(), &s.frame(), None)
            .unwrap();
        assert!(
            left.count() * 4 < mask.count(),
            "after the copy {} of {} dirty tiles are left",
            left.count(),
            mask.count()
        );
    }

    #[test]
    fn scrolls_up_and_down_by_any_distance_are_found_among_blank_lines() {
        let (w, h) = (128u32, 256u32);
        let grid = TileGrid::new(w, h, 32).unwrap();
        let row_bytes = w as usize * 4;
        // Text lines of pseudo-random marks; every third line blank (a hash many rows share).
        let line = |n: i64, out: &mut [u8]| {
            out.fill(0xFF);
            if n.rem_euclid(3) != 0 {
                for (i, b) in out.iter_mut().enumerate().take(row_bytes / 2) {
                    *b = ((n * 7919 + i as i64 * 104_729) % 251) as u8;
                }
            }
        };
        let page = |first: i64| {
            let mut f = FrameBuffer::new(w, h, PixelFormat::Bgrx8).unwrap();
            for (y, row) in f.pixels_mut().chunks_exact_mut(row_bytes).enumerate() {
                line(first + y as i64, row);
            }
            f
        };
        for shift in [1i64, 3, 17, 64, 100, -1, -5, -40, -120] {
            let (prev, cur) = (page(1000), page(1000 + shift));
            let mask = CpuDiff::default()
                .diff(&grid, &prev.as_frame(), &cur.as_frame(), None)
                .unwrap();
            let copy = detect_vertical_scroll(&prev.as_frame(), &cur.as_frame(), &grid, &mask)
                .unwrap_or_else(|| panic!("a scroll by {shift} rows"));
            assert_eq!(
                i64::from(copy.src.y) - i64::from(copy.dst_y),
                shift,
                "{copy:?}"
            );
            assert_eq!(copy.src.height, h - shift.unsigned_abs() as u32);
            let mut predicted = prev.clone();
            apply_copies(&mut predicted, &[copy]).unwrap();
            let kept = if shift > 0 {
                0..h - shift as u32
            } else {
                (-shift) as u32..h
            };
            for y in kept {
                assert_eq!(
                    predicted.as_frame().row(y),
                    cur.as_frame().row(y),
                    "row {y}"
                );
            }
        }
    }

    /// A page of 13-row text lines, 8 pixels of marks a row: most lines show one of three
    /// glyphs (each of their rows is seen too often to vote), every eighth line one of its own.
    /// `first`: the page's first row in the text; `odd`: rows (of the page) drawn as noise.
    fn look_alike_lines(first: i64, odd: &dyn Fn(u32) -> bool) -> FrameBuffer {
        let (w, h) = (64u32, 400u32);
        let mut f = FrameBuffer::new(w, h, PixelFormat::Bgrx8).unwrap();
        for (y, row) in f.pixels_mut().chunks_exact_mut(w as usize * 4).enumerate() {
            row.fill(0xFF);
            let text_row = first + y as i64;
            let (line, r) = (text_row.div_euclid(13), text_row.rem_euclid(13));
            let glyph = if odd(y as u32) {
                1_000_000 + y as i64
            } else if line % 8 == 0 {
                1000 + line
            } else {
                line.rem_euclid(3)
            };
            if r < 11 || odd(y as u32) {
                for (i, b) in row.iter_mut().enumerate().take(8 * 4) {
                    *b = ((glyph * 7919 + r * 613 + i as i64 * 104_729) % 251) as u8;
                }
            }
        }
        f
    }

    #[test]
    fn a_narrow_scroll_of_look_alike_lines_is_found_by_the_rows_it_keeps() {
        let grid = TileGrid::new(64, 400, 32).unwrap();
        let plain = |_: u32| false;
        let (prev, cur) = (
            look_alike_lines(1000, &plain),
            look_alike_lines(1078, &plain),
        );
        let mask = CpuDiff::default()
            .diff(&grid, &prev.as_frame(), &cur.as_frame(), None)
            .unwrap();
        let copy = detect_vertical_scroll(&prev.as_frame(), &cur.as_frame(), &grid, &mask)
            .expect("the scroll, though under a quarter of the rows vote");
        assert_eq!(
            (copy.src.y - copy.dst_y, copy.src.width),
            (78, 8),
            "{copy:?}"
        );
        let mut predicted = prev.clone();
        apply_copies(&mut predicted, &[copy]).unwrap();
        for y in 0..400 - 78 {
            assert_eq!(
                predicted.as_frame().row(y),
                cur.as_frame().row(y),
                "row {y}"
            );
        }
        // The same few votes, but a third of the rows the move keeps are not the rows 78
        // above them: not a scroll.
        let (prev, cur) = (
            look_alike_lines(1000, &plain),
            look_alike_lines(1078, &|y| y % 3 == 0 && y < 330),
        );
        let mask = CpuDiff::default()
            .diff(&grid, &prev.as_frame(), &cur.as_frame(), None)
            .unwrap();
        assert_eq!(
            detect_vertical_scroll(&prev.as_frame(), &cur.as_frame(), &grid, &mask),
            None
        );
    }

    #[test]
    fn typing_and_noise_are_not_scrolls() {
        let grid = TileGrid::new(256, 256, 32).unwrap();
        let mut s = SyntheticSource::new(Scene::Typing, 256, 256, PixelFormat::Bgra8).unwrap();
        let prev = s.frame_buffer().clone();
        s.advance();
        let mask = DirtyMask::full(grid.tile_count());
        assert_eq!(
            detect_vertical_scroll(&prev.as_frame(), &s.frame(), &grid, &mask),
            None
        );
        let mut a = FrameBuffer::new(256, 256, PixelFormat::Bgra8).unwrap();
        let b = FrameBuffer::new(256, 256, PixelFormat::Bgra8).unwrap();
        for (i, p) in a.pixels_mut().iter_mut().enumerate() {
            *p = (i * 7919 % 251) as u8;
        }
        assert_eq!(
            detect_vertical_scroll(&a.as_frame(), &b.as_frame(), &grid, &mask),
            None
        );
    }
}
