//! The palette form of a block of few colours (text, window frames, icons): its 1 to 16
//! colours, then one lz4 block of the pixels' indices into them, 1, 2 or 4 bits an index.
//!
//! Layout: `count: u8` (1..=16), `count` colours of 4 bytes, then one lz4 block that
//! decompresses to exactly `height * ceil(width * bits / 8)` bytes: each row's indices, most
//! significant bits first, the row padded to a whole byte. `bits` is 1 for up to 2 colours, 2
//! for up to 4, 4 for up to 16.

use crate::BYTES_PER_PIXEL;

/// The most colours a palette holds.
pub const MAX_PALETTE_COLOURS: usize = 16;

/// Why a palette body does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaletteError {
    #[error("the colour count is not 1..=16, or the body is shorter than its colours")]
    Header,
    #[error("the index block is not lz4, or not exactly the size of the indices")]
    Indices,
    #[error("index {0} names a colour past the palette's end")]
    Index(u8),
}

/// Bits an index for `count` colours.
fn bits_for(count: usize) -> usize {
    match count {
        0..=2 => 1,
        3..=4 => 2,
        _ => 4,
    }
}

/// Bytes of the packed indices of a `width` x `height` block with `count` colours.
pub fn index_bytes(width: usize, height: usize, count: usize) -> usize {
    (width * bits_for(count)).div_ceil(8) * height
}

/// The most bytes a palette body for a `width` x `height` block can have.
pub fn max_palette_body(width: usize, height: usize) -> usize {
    1 + MAX_PALETTE_COLOURS * BYTES_PER_PIXEL
        + lz4_flex::block::get_maximum_output_size(index_bytes(width, height, MAX_PALETTE_COLOURS))
}

/// Reusable buffers of a palette encoder.
#[derive(Default)]
pub struct PaletteScratch {
    colours: Vec<[u8; 4]>,
    indices: Vec<u8>,
    packed: Vec<u8>,
}

/// Appends the palette body of `pixels` (packed, `width` pixels a row) to `out` and returns
/// its length; none (and nothing appended) when the block has more than
/// [`MAX_PALETTE_COLOURS`] colours.
pub fn encode_palette(
    pixels: &[u8],
    width: usize,
    scratch: &mut PaletteScratch,
    out: &mut Vec<u8>,
) -> Option<usize> {
    let colours = &mut scratch.colours;
    colours.clear();
    let mut last: Option<([u8; 4], u8)> = None;
    let indices = &mut scratch.indices;
    indices.clear();
    for px in pixels.chunks_exact(BYTES_PER_PIXEL) {
        let px: [u8; 4] = px.try_into().expect("4 bytes");
        let index = match last {
            Some((colour, index)) if colour == px => index,
            _ => {
                let index = match colours.iter().position(|c| *c == px) {
                    Some(i) => i,
                    None if colours.len() < MAX_PALETTE_COLOURS => {
                        colours.push(px);
                        colours.len() - 1
                    }
                    None => return None,
                } as u8;
                last = Some((px, index));
                index
            }
        };
        indices.push(index);
    }
    // Colours in ascending order, whatever the order they came in: the same colours make the
    // same palette, which the compact frame form sends once.
    let mut order = [0u8; MAX_PALETTE_COLOURS];
    for (i, o) in order.iter_mut().enumerate().take(colours.len()) {
        *o = i as u8;
    }
    let order = &mut order[..colours.len()];
    order.sort_unstable_by_key(|&i| u32::from_le_bytes(colours[usize::from(i)]));
    let mut rank = [0u8; MAX_PALETTE_COLOURS];
    for (r, &i) in order.iter().enumerate() {
        rank[usize::from(i)] = r as u8;
    }
    let bits = bits_for(colours.len());
    let height = indices.len() / width.max(1);
    let packed = &mut scratch.packed;
    packed.clear();
    for row in indices.chunks_exact(width).take(height) {
        for group in row.chunks(8 / bits) {
            let byte = group.iter().enumerate().fold(0u8, |b, (i, &ix)| {
                b | rank[usize::from(ix)] << (8 - bits * (i + 1))
            });
            packed.push(byte);
        }
    }
    let start = out.len();
    out.push(colours.len() as u8);
    for &i in order.iter() {
        out.extend_from_slice(&colours[usize::from(i)]);
    }
    let at = out.len();
    out.resize(
        at + lz4_flex::block::get_maximum_output_size(packed.len()),
        0,
    );
    let n = lz4_flex::block::compress_into(packed, &mut out[at..])
        .expect("the buffer has lz4's worst-case size");
    out.truncate(at + n);
    Some(out.len() - start)
}

/// Decodes a palette `body` into `out`, the packed pixels of a block `width` pixels wide
/// (`out.len()` fixes its height). `scratch` holds the indices.
pub fn decode_palette(
    body: &[u8],
    width: usize,
    scratch: &mut Vec<u8>,
    out: &mut [u8],
) -> Result<(), PaletteError> {
    let count = usize::from(*body.first().ok_or(PaletteError::Header)?);
    if !(1..=MAX_PALETTE_COLOURS).contains(&count) || body.len() < 1 + count * BYTES_PER_PIXEL {
        return Err(PaletteError::Header);
    }
    let colours = &body[1..1 + count * BYTES_PER_PIXEL];
    let row_px = width.max(1);
    let height = out.len() / (row_px * BYTES_PER_PIXEL);
    let bits = bits_for(count);
    let row_bytes = (row_px * bits).div_ceil(8);
    scratch.resize(row_bytes * height, 0);
    match lz4_flex::block::decompress_into(&body[1 + count * BYTES_PER_PIXEL..], scratch) {
        Ok(n) if n == scratch.len() => {}
        _ => return Err(PaletteError::Indices),
    }
    let mask = (1u8 << bits) - 1;
    for (row, packed) in out
        .chunks_exact_mut(row_px * BYTES_PER_PIXEL)
        .zip(scratch.chunks_exact(row_bytes))
    {
        for (x, px) in row.chunks_exact_mut(BYTES_PER_PIXEL).enumerate() {
            let bit = x * bits;
            let index = (packed[bit / 8] >> (8 - bits - bit % 8)) & mask;
            let at = usize::from(index) * BYTES_PER_PIXEL;
            px.copy_from_slice(
                colours
                    .get(at..at + BYTES_PER_PIXEL)
                    .ok_or(PaletteError::Index(index))?,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(width: usize, height: usize, colours: usize) -> Vec<u8> {
        (0..width * height)
            .flat_map(|i| {
                let c = ((i * 7 + i / width) % colours) as u8;
                [c, c.wrapping_mul(3), 200 - c, 255]
            })
            .collect()
    }

    #[test]
    fn round_trips_every_index_width_and_odd_sizes() {
        let mut scratch = PaletteScratch::default();
        for colours in [1, 2, 3, 4, 5, 16] {
            for (w, h) in [(1, 1), (7, 3), (64, 64), (13, 5)] {
                let pixels = block(w, h, colours);
                let mut body = Vec::new();
                let n = encode_palette(&pixels, w, &mut scratch, &mut body).expect("few colours");
                assert_eq!(n, body.len());
                assert!(n <= max_palette_body(w, h));
                let mut out = vec![0u8; pixels.len()];
                decode_palette(&body, w, &mut Vec::new(), &mut out).unwrap();
                assert_eq!(out, pixels, "{colours} colours, {w}x{h}");
            }
        }
        let many = block(64, 4, 17);
        assert_eq!(
            encode_palette(&many, 64, &mut scratch, &mut Vec::new()),
            None
        );
    }

    #[test]
    fn the_same_colours_make_the_same_palette_in_any_order() {
        let (dark, light) = ([0u8, 0, 0, 255], [250u8, 250, 250, 255]);
        // A dark glyph on light, one starting dark and one starting light.
        let glyph = |first: [u8; 4], second: [u8; 4]| -> Vec<u8> {
            (0..16)
                .flat_map(|i| if i % 3 == 0 { first } else { second })
                .collect()
        };
        let mut scratch = PaletteScratch::default();
        let mut colours = Vec::new();
        for pixels in [glyph(dark, light), glyph(light, dark)] {
            let mut body = Vec::new();
            encode_palette(&pixels, 4, &mut scratch, &mut body).unwrap();
            colours.push(body[..9].to_vec());
            let mut out = vec![0u8; pixels.len()];
            decode_palette(&body, 4, &mut Vec::new(), &mut out).unwrap();
            assert_eq!(out, pixels);
        }
        assert_eq!(colours[0], colours[1]);
        assert_eq!(&colours[0][1..5], &dark, "ascending: the dark one first");
    }

    #[test]
    fn text_is_far_smaller_than_its_pixels() {
        let pixels = block(64, 64, 2);
        let mut body = Vec::new();
        encode_palette(&pixels, 64, &mut PaletteScratch::default(), &mut body).unwrap();
        assert!(body.len() * 16 < pixels.len(), "{} bytes", body.len());
    }

    #[test]
    fn bad_bodies_are_errors() {
        let pixels = block(8, 8, 3);
        let mut body = Vec::new();
        encode_palette(&pixels, 8, &mut PaletteScratch::default(), &mut body).unwrap();
        let mut out = vec![0u8; pixels.len()];
        let mut scratch = Vec::new();
        let mut decode = |b: &[u8]| decode_palette(b, 8, &mut scratch, &mut out);
        assert_eq!(decode(&[]), Err(PaletteError::Header));
        assert_eq!(decode(&[0]), Err(PaletteError::Header));
        assert_eq!(decode(&[17; 80]), Err(PaletteError::Header));
        assert_eq!(decode(&body[..5]), Err(PaletteError::Header));
        assert_eq!(decode(&body[..body.len() - 1]), Err(PaletteError::Indices));
        // Three colours use 2-bit indices: index 3 names a fourth that is not there.
        let mut bad = body[..1 + 3 * 4].to_vec();
        let indices = [0xFFu8; 16];
        bad.extend_from_slice(&lz4_flex::block::compress(&indices));
        assert_eq!(decode(&bad), Err(PaletteError::Index(3)));
    }
}
