//! [`CopyDetector`]: [`super::detect_copy`] frame after frame, without paying for block matching
//! on every frame of a video: after a move search finds nothing, the same changed area skips
//! it for a while. The changed area is found once a frame, for both searches.

use super::{scroll::scroll_in, window_move::move_in};
use crate::{CopyRect, CpuFrame, DirtyMask, Rect, TileGrid};

/// Frames in a row on which a fruitless area skips the move search before it is tried again.
const SKIP_FRAMES: u32 = 15;

/// Finds scrolls on every frame and moves on every frame but those whose dirty area is the one
/// where the last move search failed (at most `SKIP_FRAMES` in a row).
#[derive(Clone, Debug, Default)]
pub struct CopyDetector {
    /// The changed area where the last move search found nothing, and the frames skipped since.
    fruitless: Option<(Rect, u32)>,
}

impl CopyDetector {
    pub fn new() -> Self {
        Self::default()
    }

    /// As [`super::detect_copy`], remembering where moves were not found.
    pub fn detect(
        &mut self,
        prev: &CpuFrame<'_>,
        cur: &CpuFrame<'_>,
        grid: &TileGrid,
        mask: &DirtyMask,
    ) -> Option<CopyRect> {
        let area = super::search_area(prev, cur, grid, mask)?;
        if let Some(copy) = scroll_in(prev, cur, &area) {
            return Some(copy);
        }
        if let Some((last, skipped)) = &mut self.fruitless {
            if *last == area && *skipped < SKIP_FRAMES {
                *skipped += 1;
                return None;
            }
        }
        let found = move_in(prev, cur, &area);
        self.fruitless = found.is_none().then_some((area, 0));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CpuDiff, FrameBuffer, PixelFormat, Scene, SyntheticSource};

    fn mask(grid: &TileGrid, a: &FrameBuffer, b: &CpuFrame<'_>) -> DirtyMask {
        CpuDiff::default()
            .diff(grid, &a.as_frame(), b, None)
            .unwrap()
    }

    #[test]
    fn a_video_skips_the_move_search_and_a_drag_after_it_is_still_found() {
        let grid = TileGrid::new(640, 400, 32).unwrap();
        let mut detector = CopyDetector::new();
        let mut video = SyntheticSource::new(Scene::Video, 640, 400, PixelFormat::Bgra8).unwrap();
        for _ in 0..3 {
            let prev = video.frame_buffer().clone();
            video.advance();
            let m = mask(&grid, &prev, &video.frame());
            assert_eq!(
                detector.detect(&prev.as_frame(), &video.frame(), &grid, &m),
                None
            );
        }
        assert!(
            matches!(detector.fruitless, Some((_, n)) if n >= 1),
            "the second video frame skipped the search: {:?}",
            detector.fruitless
        );
        let mut drag = SyntheticSource::new(Scene::Dragging, 640, 400, PixelFormat::Bgra8).unwrap();
        let mut found = 0;
        for _ in 0..10 {
            let prev = drag.frame_buffer().clone();
            drag.advance();
            let m = mask(&grid, &prev, &drag.frame());
            found += usize::from(
                detector
                    .detect(&prev.as_frame(), &drag.frame(), &grid, &m)
                    .is_some(),
            );
        }
        assert!(found >= 5, "found the move in {found} of 10 frames");
    }

    #[test]
    fn a_fruitless_area_is_searched_again_after_a_while() {
        let grid = TileGrid::new(320, 256, 32).unwrap();
        let mut a = FrameBuffer::new(320, 256, PixelFormat::Bgra8).unwrap();
        for (i, p) in a.pixels_mut().iter_mut().enumerate() {
            *p = (i * 7919 % 251) as u8;
        }
        let b = FrameBuffer::new(320, 256, PixelFormat::Bgra8).unwrap();
        let m = mask(&grid, &a, &b.as_frame());
        let mut detector = CopyDetector::new();
        let mut skipped = Vec::new();
        for _ in 0..SKIP_FRAMES + 3 {
            assert_eq!(
                detector.detect(&a.as_frame(), &b.as_frame(), &grid, &m),
                None
            );
            skipped.push(detector.fruitless.unwrap().1);
        }
        let searched = skipped.iter().filter(|&&n| n == 0).count();
        assert_eq!(
            searched, 2,
            "searched on the first frame and once after {SKIP_FRAMES} skips: {skipped:?}"
        );
    }
}
