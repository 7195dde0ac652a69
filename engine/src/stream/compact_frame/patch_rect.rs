//! How a compact message gives a patch's rectangle (`x`, `y`, `width`, `height` inside its
//! tile): in four bytes, or in fewer where it follows a rectangle both ends already know.
//!
//! Two bits of the record's codec byte tell the form:
//! - neither: four bytes, `x`, `y`, `width - 1`, `height - 1`;
//! - [`RECT_CONTINUED`]: it continues the rectangle of an earlier record of the same message,
//!   that of the tile to its left (same tile row) when there is one, else that of the tile
//!   above: `(0, y, side, height)` from the left, `(x, 0, width, side)` from above, with one
//!   byte `side - 1`. A glyph or a pointer across a tile edge is a patch in each tile, and all
//!   but the first continue;
//! - [`RECT_MOVED`]: the previous message's rectangle of the same tile moved sideways (same
//!   `y`, `width` and `height`), with one byte `x`: a typed character, the text cursor;
//! - both: the previous message's rectangle of the same tile with its `y` and `height`, and
//!   two bytes `x`, `width - 1`.

use std::collections::HashMap;

/// A patch's rectangle inside its tile: x, y, width, height.
pub(super) type TileRect = [u16; 4];

/// In a compact record's codec byte: the rectangle continues a neighbour's in this message.
pub(super) const RECT_CONTINUED: u8 = 0x08;
/// In a compact record's codec byte: the rectangle is the previous message's one of this tile,
/// moved sideways (with [`RECT_CONTINUED`]: and resized sideways).
pub(super) const RECT_MOVED: u8 = 0x10;
/// The codec byte's bits that tell a rectangle's form.
pub(super) const RECT_FORM: u8 = RECT_CONTINUED | RECT_MOVED;

/// The bytes of a rectangle in the form that `code`'s bits tell.
pub(super) fn header_len(code: u8) -> usize {
    match code & RECT_FORM {
        0 => 4,
        RECT_FORM => 2,
        _ => 1,
    }
}

/// The patch rectangles of the message being packed or unpacked, and of the one before it.
#[derive(Default)]
pub(super) struct MessageRects {
    cols: u32,
    current: HashMap<u32, TileRect>,
    previous: HashMap<u32, TileRect>,
}

impl MessageRects {
    /// Starts a compact message of a grid `cols` tiles wide (the grid of the message before,
    /// as a compact message's always is).
    pub(super) fn start(&mut self, cols: u32) {
        self.cols = cols.max(1);
        std::mem::swap(&mut self.current, &mut self.previous);
        self.current.clear();
    }

    /// Forgets every rectangle: the next compact message follows a canonical one.
    pub(super) fn clear(&mut self) {
        self.current.clear();
        self.previous.clear();
    }

    /// Appends `rect` of tile `index` in its shortest form; returns the codec byte's bits for it.
    pub(super) fn encode(&mut self, index: u32, rect: TileRect, out: &mut Vec<u8>) -> u8 {
        let [x, y, w, h] = rect;
        let form = if let Some(side) = self.continuation(index).and_then(|c| c.side_of(rect)) {
            out.push((side - 1) as u8);
            RECT_CONTINUED
        } else {
            match self.previous.get(&index) {
                Some(p) if p[1] == y && p[3] == h && p[2] == w => {
                    out.push(x as u8);
                    RECT_MOVED
                }
                Some(p) if p[1] == y && p[3] == h => {
                    out.extend_from_slice(&[x as u8, (w - 1) as u8]);
                    RECT_FORM
                }
                _ => {
                    out.extend_from_slice(&[x as u8, y as u8, (w - 1) as u8, (h - 1) as u8]);
                    0
                }
            }
        };
        self.current.insert(index, rect);
        form
    }

    /// Reads the rectangle of tile `index`, in the form `code`'s bits tell, from the front of
    /// `bytes`, and moves `bytes` past it.
    pub(super) fn decode(
        &mut self,
        index: u32,
        code: u8,
        bytes: &mut &[u8],
    ) -> Result<TileRect, &'static str> {
        let len = header_len(code);
        let b = bytes.get(..len).ok_or("patch header cut short")?;
        *bytes = &bytes[len..];
        let side = |v: u8| u16::from(v) + 1;
        let rect = match code & RECT_FORM {
            0 => [u16::from(b[0]), u16::from(b[1]), side(b[2]), side(b[3])],
            RECT_CONTINUED => self
                .continuation(index)
                .ok_or("a continued rectangle without a neighbour")?
                .rect(side(b[0])),
            form => {
                let p = self
                    .previous
                    .get(&index)
                    .ok_or("a moved rectangle without one in the previous message")?;
                let w = if form == RECT_MOVED { p[2] } else { side(b[1]) };
                [u16::from(b[0]), p[1], w, p[3]]
            }
        };
        self.current.insert(index, rect);
        Ok(rect)
    }

    /// How a rectangle of tile `index` may continue a neighbour's: the tile to its left when
    /// that has a patch in this message, else the tile above when that has one.
    fn continuation(&self, index: u32) -> Option<Continuation> {
        if !index.is_multiple_of(self.cols) {
            if let Some(left) = self.current.get(&(index - 1)) {
                return Some(Continuation::Right {
                    y: left[1],
                    height: left[3],
                });
            }
        }
        let above = self.current.get(&index.checked_sub(self.cols)?)?;
        Some(Continuation::Below {
            x: above[0],
            width: above[2],
        })
    }
}

/// How a rectangle continues its neighbour's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Continuation {
    /// From the tile to the left: `[0, y, free, height]`.
    Right { y: u16, height: u16 },
    /// From the tile above: `[x, 0, width, free]`.
    Below { x: u16, width: u16 },
}

impl Continuation {
    /// The rectangle whose free side is `side`.
    fn rect(self, side: u16) -> TileRect {
        match self {
            Self::Right { y, height } => [0, y, side, height],
            Self::Below { x, width } => [x, 0, width, side],
        }
    }

    /// `rect`'s free side, if `rect` continues its neighbour this way.
    fn side_of(self, rect: TileRect) -> Option<u16> {
        let side = match self {
            Self::Right { .. } => rect[2],
            Self::Below { .. } => rect[3],
        };
        (self.rect(side) == rect).then_some(side)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `rect` of tile `index` on one side and decodes it on the other: the bytes and
    /// the form's bits.
    fn both(
        a: &mut MessageRects,
        b: &mut MessageRects,
        index: u32,
        rect: TileRect,
    ) -> (Vec<u8>, u8) {
        let mut out = Vec::new();
        let form = a.encode(index, rect, &mut out);
        assert_eq!(out.len(), header_len(form));
        let mut bytes = &out[..];
        assert_eq!(b.decode(index, form, &mut bytes), Ok(rect));
        assert!(bytes.is_empty());
        (out, form)
    }

    /// Both ends start the next message.
    fn next(a: &mut MessageRects, b: &mut MessageRects) {
        a.start(4);
        b.start(4);
    }

    #[test]
    fn the_left_neighbour_comes_before_the_one_above() {
        let (mut a, mut b) = (MessageRects::default(), MessageRects::default());
        next(&mut a, &mut b);
        assert_eq!(a.continuation(5), None);
        assert_eq!(
            both(&mut a, &mut b, 1, [10, 60, 4, 4]),
            (vec![10, 60, 3, 3], 0)
        );
        assert_eq!(
            a.continuation(5),
            Some(Continuation::Below { x: 10, width: 4 })
        );
        assert_eq!(both(&mut a, &mut b, 4, [60, 0, 4, 2]).1, 0);
        // Tile 5 has both neighbours: the one to its left counts.
        assert_eq!(
            a.continuation(5),
            Some(Continuation::Right { y: 0, height: 2 })
        );
        assert_eq!(
            both(&mut a, &mut b, 5, [0, 0, 3, 2]),
            (vec![2], RECT_CONTINUED)
        );
        // Not a continuation of the left one: four bytes.
        assert_eq!(both(&mut a, &mut b, 6, [0, 1, 3, 2]).1, 0);
        // A tile at the left edge has no left neighbour (the last tile of the row above is
        // not one): it continues the tile above.
        assert_eq!(
            both(&mut a, &mut b, 8, [60, 0, 4, 9]),
            (vec![8], RECT_CONTINUED)
        );
    }

    #[test]
    fn a_rectangle_moved_or_resized_sideways_since_the_previous_message_is_short() {
        let (mut a, mut b) = (MessageRects::default(), MessageRects::default());
        next(&mut a, &mut b);
        both(&mut a, &mut b, 2, [10, 20, 12, 13]);
        next(&mut a, &mut b);
        assert_eq!(
            both(&mut a, &mut b, 2, [16, 20, 12, 13]),
            (vec![16], RECT_MOVED)
        );
        next(&mut a, &mut b);
        assert_eq!(
            both(&mut a, &mut b, 2, [22, 20, 6, 13]),
            (vec![22, 5], RECT_FORM)
        );
        // Only the message right before counts, and only the same tile.
        next(&mut a, &mut b);
        next(&mut a, &mut b);
        assert_eq!(both(&mut a, &mut b, 2, [22, 20, 6, 13]).1, 0);
        assert_eq!(both(&mut a, &mut b, 3, [0, 21, 6, 13]).1, 0);
    }

    #[test]
    fn a_form_without_what_it_follows_is_an_error() {
        let mut m = MessageRects::default();
        m.start(4);
        assert_eq!(
            m.decode(5, RECT_CONTINUED, &mut &[1u8, 2][..]),
            Err("a continued rectangle without a neighbour")
        );
        assert_eq!(
            m.decode(5, RECT_MOVED, &mut &[1u8][..]),
            Err("a moved rectangle without one in the previous message")
        );
        assert_eq!(
            m.decode(5, 0, &mut &[1u8, 2, 3][..]),
            Err("patch header cut short")
        );
        m.decode(5, 0, &mut &[1u8, 2, 3, 4][..]).unwrap();
        m.start(4);
        m.clear();
        assert!(m.decode(5, RECT_MOVED, &mut &[1u8][..]).is_err(), "cleared");
    }
}
