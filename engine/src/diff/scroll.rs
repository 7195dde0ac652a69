//! [`detect_vertical_scroll`]: finds the part of the screen that scrolled between two frames,
//! as a copy command (the receiver moves the pixels it holds; only the newly exposed rows need
//! sending).
//!
//! The changed rectangle is found exactly inside the dirty tiles; each of its rows in both
//! frames is hashed, and every row of the new frame that matches exactly one to four rows of the
//! old one votes for their vertical distance. The distance with the most votes wins if enough
//! rows agree. The result is only a proposal: the sender compares what the copy would give with
//! the new frame tile by tile and sends every tile where they differ.

use crate::{hash_rect, CopyRect, CpuFrame, DirtyMask, Rect, TileGrid, BYTES_PER_PIXEL};
use xxhash_rust::xxh3::xxh3_64;

/// Fewer dirty tiles than this are not worth looking at.
const MIN_TILES: usize = 4;
/// A row hash seen more often than this in the old frame (blank lines) does not vote.
const MAX_MATCHES: usize = 4;

/// The copy that turns `prev` into `cur` best by moving rows up or down inside the changed
/// area of `mask` (a mask over `grid`, both frames its size), if rows moved at all.
pub fn detect_vertical_scroll(
    prev: &CpuFrame<'_>,
    cur: &CpuFrame<'_>,
    grid: &TileGrid,
    mask: &DirtyMask,
) -> Option<CopyRect> {
    if mask.count() < MIN_TILES || mask.len() != grid.tile_count() {
        return None;
    }
    let dirty = mask
        .iter()
        .map(|i| grid.tile_rect(i))
        .reduce(|a, b| a.union(&b))?;
    let changed = prev.changed_rect(cur, &dirty)?;
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
    // The old rows sorted by hash: the rows with one hash are one run, found by binary search
    // (no map, no allocation a hash).
    let mut old: Vec<(u64, u32)> = row_hashes(prev).into_iter().zip(0..).collect::<Vec<_>>();
    old.sort_unstable();
    let rows = changed.height as usize;
    // votes[rows - 1 + dy]: the rows that moved by dy (old row minus new row), |dy| < rows.
    let mut votes = vec![0u32; 2 * rows - 1];
    for (y, h) in row_hashes(cur).into_iter().enumerate() {
        let start = old.partition_point(|&(o, _)| o < h);
        let end = start + old[start..].partition_point(|&(o, _)| o == h);
        if end - start > MAX_MATCHES {
            continue;
        }
        for &(_, from) in &old[start..end] {
            votes[rows - 1 + from as usize - y] += 1;
        }
    }
    votes[rows - 1] = 0;
    // The most votes; of equals, the shortest move, then the upward one.
    let (dy, count) = votes
        .iter()
        .enumerate()
        .map(|(i, &n)| (i as i64 - (rows as i64 - 1), n))
        .max_by_key(|&(dy, n)| (n, -dy.abs(), dy))?;
    if count < (changed.height / 4).max(8) {
        return None;
    }
    let shift = dy.unsigned_abs() as u32;
    let height = changed.height.checked_sub(shift).filter(|&h| h > 0)?;
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
