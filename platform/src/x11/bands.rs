//! Which rows of the screen a grab fetches: the damage region's rectangles as bands of whole
//! rows. An MIT-SHM image of whole rows lands in the shared segment exactly where those rows
//! lie in the frame, so a grab after one typed character asks the server for a few dozen rows
//! instead of the whole screen.

use tessera_engine::Rect;

/// Bands closer than this many rows are fetched as one: a request costs more than a few rows.
const JOIN_WITHIN: u32 = 16;
/// At most this many bands a grab; past it, the rows from the first to the last.
const MOST_BANDS: usize = 16;

/// The row ranges `[start, end)` within `rows` that hold every row of `rects`, in order,
/// apart by more than [`JOIN_WITHIN`] rows, at most [`MOST_BANDS`] of them.
pub(super) fn bands(rects: &[Rect], rows: std::ops::Range<u32>) -> Vec<std::ops::Range<u32>> {
    let mut spans: Vec<(u32, u32)> = rects
        .iter()
        .map(|r| (r.y.max(rows.start), (r.y + r.height).min(rows.end)))
        .filter(|(a, b)| a < b)
        .collect();
    spans.sort_unstable();
    let mut out: Vec<std::ops::Range<u32>> = Vec::new();
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.end + JOIN_WITHIN => last.end = last.end.max(b),
            _ => out.push(a..b),
        }
    }
    if out.len() > MOST_BANDS {
        let all = out[0].start..out[out.len() - 1].end;
        out.clear();
        out.push(all);
    }
    out
}

/// At most this many rows are fetched on the guess that the damage is where it was, unless it
/// was there twice in a row.
const MOST_LIKELY_ROWS: u32 = 64;

/// The bands of the last grab's damage, `last`, to fetch before this grab's damage is known:
/// when they are at most [`MOST_LIKELY_ROWS`] rows, or when the grab before it had the same
/// bands (`repeated`: a terminal scrolling, a video playing, in one place). A wrong guess costs
/// the server a copy of those rows, a right one the second round trip.
pub(super) fn likely(last: &[std::ops::Range<u32>], repeated: bool) -> Vec<std::ops::Range<u32>> {
    if repeated || last.iter().map(|b| b.end - b.start).sum::<u32>() <= MOST_LIKELY_ROWS {
        last.to_vec()
    } else {
        Vec::new()
    }
}

/// The rows of `bands` that `fetched` (sorted, apart) does not hold, as sorted ranges.
pub(super) fn missing(
    bands: &[std::ops::Range<u32>],
    fetched: &[std::ops::Range<u32>],
) -> Vec<std::ops::Range<u32>> {
    let mut out = Vec::new();
    for band in bands {
        let mut from = band.start;
        for f in fetched
            .iter()
            .filter(|f| f.start < band.end && f.end > band.start)
        {
            if f.start > from {
                out.push(from..f.start);
            }
            from = from.max(f.end);
        }
        if from < band.end {
            out.push(from..band.end);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_nearby_rects_join_and_far_ones_stay_apart() {
        let rects = [
            Rect::new(10, 100, 8, 13),
            Rect::new(500, 105, 8, 20),
            Rect::new(0, 130, 1, 1),
            Rect::new(0, 400, 50, 10),
        ];
        assert_eq!(bands(&rects, 0..1080), vec![100..131, 400..410]);
    }

    #[test]
    fn bands_stay_within_the_rows_asked_for() {
        let rects = [Rect::new(0, 0, 10, 50), Rect::new(0, 90, 10, 50)];
        assert_eq!(bands(&rects, 20..100), vec![20..50, 90..100]);
        assert!(bands(&rects, 50..90).is_empty());
        assert!(bands(&[], 0..1080).is_empty());
    }

    #[test]
    fn a_few_rows_are_guessed_and_many_only_when_they_repeat() {
        let typed = bands(&[Rect::new(391, 103, 12, 13)], 0..1080);
        assert_eq!(likely(&typed, false), vec![103..116]);
        let scrolled = bands(&[Rect::new(0, 0, 1000, 700)], 0..1080);
        assert!(likely(&scrolled, false).is_empty());
        assert_eq!(likely(&scrolled, true), vec![0..700]);
        assert!(likely(&[], false).is_empty());
        assert!(likely(&[], true).is_empty());
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one band, not the rows of a range
    fn missing_rows_are_those_no_fetched_range_holds() {
        let fetched = [10..20, 30..40];
        assert_eq!(
            missing(&[12..18], &fetched),
            Vec::<std::ops::Range<u32>>::new()
        );
        assert_eq!(missing(&[0..50], &fetched), vec![0..10, 20..30, 40..50]);
        assert_eq!(missing(&[5..15, 35..45], &fetched), vec![5..10, 40..45]);
        assert_eq!(missing(&[0..5], &[]), vec![0..5]);
        // Every row of the bands is fetched or missing, never both.
        let bands = [0..25, 28..60];
        let gaps = missing(&bands, &fetched);
        for y in 0..60 {
            let wanted = bands.iter().any(|b| b.contains(&y));
            let got = fetched.iter().any(|f| f.contains(&y));
            let gap = gaps.iter().filter(|g| g.contains(&y)).count();
            assert_eq!(gap, usize::from(wanted && !got), "row {y}");
        }
    }

    #[test]
    fn many_bands_become_one_from_the_first_row_to_the_last() {
        let rects: Vec<Rect> = (0..40).map(|i| Rect::new(0, i * 25, 4, 2)).collect();
        assert_eq!(bands(&rects, 0..1080), vec![0..977]);
    }

    #[test]
    fn every_reported_row_is_in_a_band() {
        // Pseudo-random rectangles: each of their rows lies in exactly one band.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % u64::from(m)) as u32
        };
        for _ in 0..200 {
            let rects: Vec<Rect> = (0..next(30))
                .map(|_| Rect::new(next(1900), next(1070), 1 + next(20), 1 + next(60)))
                .collect();
            let b = bands(&rects, 0..1080);
            assert!(b.windows(2).all(|w| w[0].end + JOIN_WITHIN < w[1].start));
            for r in &rects {
                for y in r.y..(r.y + r.height).min(1080) {
                    assert_eq!(b.iter().filter(|s| s.contains(&y)).count(), 1, "row {y}");
                }
            }
        }
    }
}
