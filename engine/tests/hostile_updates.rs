//! Bad updates get a typed error, never a panic, never an allocation beyond the declared frame,
//! and never a change to the composited frame.

mod common;

use proptest::prelude::*;
use tessera_engine::stream::FrameChecksum;
use tessera_engine::{
    parse_update, ApplyError, CpuCompositor, DecodeError, DecodeLimits, DecodedTiles, DirtyMask,
    EncodeStats, FrameBuffer, GpuCompositor, PaletteError, PatchBase, PixelFormat, Scene,
    SyntheticSource, TileCodec, TileEncoder, TileGrid, COPIES_CAPABILITY, UPDATE_HEADER_LEN,
};

/// The first frame of the 200x120 typing scene, as a receiver holds it after the keyframe.
fn first_frame() -> FrameBuffer {
    SyntheticSource::new(Scene::Typing, 200, 120, PixelFormat::Bgra8)
        .unwrap()
        .frame_buffer()
        .canonical()
}

/// A valid keyframe and a valid delta (with patches) of a 200x120 typing scene in 32-pixel
/// tiles.
fn valid_updates() -> (Vec<u8>, Vec<u8>) {
    let no_palettes = TileCodec::ALL
        .iter()
        .filter(|c| !matches!(c, TileCodec::Palette | TileCodec::PaletteRect))
        .fold(COPIES_CAPABILITY, |m, c| m | c.bit());
    let (key, delta, stats) = typing_updates(TileEncoder::default().with_codecs(no_palettes));
    assert!(stats.patch_tiles > 0, "{stats:?}");
    (key, delta)
}

/// As [`valid_updates`], with every codec: the delta's tiles are palette rects.
fn palette_updates() -> (Vec<u8>, Vec<u8>) {
    let (key, delta, stats) = typing_updates(TileEncoder::default());
    assert!(stats.palette_tiles > 0, "{stats:?}");
    (key, delta)
}

/// A keyframe and a delta of the 200x120 typing scene in 32-pixel tiles from `enc`.
fn typing_updates(enc: TileEncoder) -> (Vec<u8>, Vec<u8>, EncodeStats) {
    let mut s = SyntheticSource::new(Scene::Typing, 200, 120, PixelFormat::Bgra8).unwrap();
    let grid = TileGrid::new(200, 120, 32).unwrap();
    let mut key = Vec::new();
    enc.encode_keyframe(&s.frame(), &grid, 0, &mut key).unwrap();
    let before = s.frame_buffer().clone();
    let all = DirtyMask::full(grid.tile_count());
    let mut hashes = FrameChecksum::new(grid);
    hashes.update_from_frame(&before.as_frame(), &all);
    s.advance();
    let mask = tessera_engine::CpuDiff::default()
        .diff(&grid, &before.as_frame(), &s.frame(), None)
        .unwrap();
    let base = PatchBase {
        frame: before.as_frame(),
        hashes: hashes.hashes(),
        held: &all,
        copies: &[],
    };
    let mut delta = Vec::new();
    let stats = enc
        .encode_delta(&s.frame(), &grid, &mask, Some(&base), 1, &mut delta)
        .unwrap();
    (key, delta, stats)
}

/// A valid keyframe and a delta of three references to its tile cache (tiles 9, 10 and 11's
/// content onto tiles 1, 2 and 3) and one solid tile.
fn cached_updates() -> (Vec<u8>, Vec<u8>) {
    let (key, _) = valid_updates();
    let grid = TileGrid::new(200, 120, 32).unwrap();
    let mut sum = FrameChecksum::new(grid);
    sum.update_from_frame(
        &first_frame().as_frame(),
        &DirtyMask::full(grid.tile_count()),
    );
    let h = sum.hashes();
    let mut tiles: Vec<(u32, u8, Vec<u8>)> = (1..4)
        .map(|i| (i, 7, h[i as usize + 8].to_le_bytes().to_vec()))
        .collect();
    tiles.push((5, 2, vec![9, 8, 7, 255]));
    (key, update(200, 120, 32, 0, 0, &tiles))
}

/// An update header followed by hand-made tile records.
fn update(
    w: u32,
    h: u32,
    tile: u16,
    format: u8,
    flags: u8,
    tiles: &[(u32, u8, Vec<u8>)],
) -> Vec<u8> {
    let mut out = b"TSU1".to_vec();
    out.extend_from_slice(&7u64.to_le_bytes());
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&tile.to_le_bytes());
    out.push(format);
    out.push(flags);
    out.extend_from_slice(&(tiles.len() as u32).to_le_bytes());
    for (index, codec, payload) in tiles {
        out.extend_from_slice(&index.to_le_bytes());
        out.push(*codec);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// Recognises the error a hostile case must produce.
type ExpectedError = fn(&DecodeError) -> bool;

/// A valid keyframe of a 200x120 frame of one colour: every tile solid.
fn solid_keyframe() -> Vec<u8> {
    let frame = FrameBuffer::new(200, 120, PixelFormat::Bgra8).unwrap();
    let grid = TileGrid::new(200, 120, 32).unwrap();
    let mut key = Vec::new();
    let stats = TileEncoder::default()
        .encode_keyframe(&frame.as_frame(), &grid, 0, &mut key)
        .unwrap();
    assert_eq!(stats.solid_tiles, grid.tile_count());
    key
}

/// A keyframe of the scrolling scene at 320x200 and a delta that starts with the scroll's copy.
fn scroll_updates() -> (Vec<u8>, Vec<u8>) {
    let mut s = SyntheticSource::new(Scene::Scrolling, 320, 200, PixelFormat::Bgra8).unwrap();
    let grid = TileGrid::new(320, 200, 32).unwrap();
    let enc = TileEncoder::default();
    for _ in 0..20 {
        s.advance();
    }
    let mut key = Vec::new();
    enc.encode_keyframe(&s.frame(), &grid, 0, &mut key).unwrap();
    let before = s.frame_buffer().clone();
    let all = DirtyMask::full(grid.tile_count());
    let mut sum = FrameChecksum::new(grid);
    sum.update_from_frame(&before.as_frame(), &all);
    s.advance();
    let mask = tessera_engine::CpuDiff::default()
        .diff(&grid, &before.as_frame(), &s.frame(), None)
        .unwrap();
    let p = common::plan(&enc, &before, &sum, &s.frame(), &grid, &mask);
    assert_eq!(p.copies.len(), 1, "the scroll is found");
    let base = PatchBase {
        frame: p.after.as_frame(),
        hashes: &p.hashes,
        held: &all,
        copies: &p.copies,
    };
    let mut delta = Vec::new();
    enc.encode_delta(&s.frame(), &grid, &p.tiles, Some(&base), 1, &mut delta)
        .unwrap();
    (key, delta)
}

/// `copies` as an update's copy section: count, then each command.
fn with_copies(mut update: Vec<u8>, copies: &[[u16; 6]], count: u8) -> Vec<u8> {
    update[23] |= 2;
    let mut section = vec![count];
    for c in copies {
        for v in c {
            section.extend_from_slice(&v.to_le_bytes());
        }
        section.extend_from_slice(&0u64.to_le_bytes());
    }
    update.splice(UPDATE_HEADER_LEN..UPDATE_HEADER_LEN, section);
    update
}

/// Decodes `bytes` with the first typing frame held, and its tiles in the tile cache (used
/// where the sizes match).
fn decode(bytes: &[u8]) -> Result<(), DecodeError> {
    static HELD: std::sync::OnceLock<CpuCompositor> = std::sync::OnceLock::new();
    let held = HELD.get_or_init(|| {
        let mut c = CpuCompositor::new(DecodeLimits::default())
            .with_tile_cache(tessera_engine::TILE_CACHE_BYTES);
        c.apply(&valid_updates().0).expect("the keyframe applies");
        c
    });
    let u = parse_update(bytes, &DecodeLimits::default())?;
    DecodedTiles::new().decode(&u, Some(&first_frame().as_frame()), Some(held.tile_cache()))
}

/// A patch payload: base hash, rectangle, then `block`.
fn patch(base_hash: u64, (x, y, w, h): (u16, u16, u16, u16), block: &[u8]) -> Vec<u8> {
    let mut p = base_hash.to_le_bytes().to_vec();
    for v in [x, y, w, h] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(block);
    p
}

/// A palette body of `colours` grey levels and the lz4 block of `indices`.
fn palette_body(colours: u8, indices: &[u8]) -> Vec<u8> {
    let mut b = vec![colours];
    for c in 0..colours {
        b.extend_from_slice(&[c, c, c, 255]);
    }
    b.extend_from_slice(&lz4_flex::block::compress(indices));
    b
}

#[test]
fn every_truncation_of_a_valid_update_is_an_error() {
    let (key, delta) = valid_updates();
    let (_, palette_delta) = palette_updates();
    let (_, cached_delta) = cached_updates();
    for msg in [&key, &delta, &palette_delta, &cached_delta] {
        assert!(decode(msg).is_ok());
        for len in 0..msg.len() {
            assert!(
                decode(&msg[..len]).is_err(),
                "prefix of {len} bytes accepted"
            );
        }
        let mut longer = msg.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(DecodeError::TrailingBytes(1)));
    }
}

#[test]
fn each_hostile_field_gets_its_own_error() {
    let tile = 16 * 16 * 4;
    let raw = |n: usize| vec![0u8; n];
    let cases: Vec<(&str, Vec<u8>, ExpectedError)> = vec![
        ("empty", vec![], |e| {
            matches!(e, DecodeError::Truncated { .. })
        }),
        (
            "magic",
            b"HTTP/1.1 200 OK\r\n\r\n0123456789".to_vec(),
            |e| matches!(e, DecodeError::BadMagic(_)),
        ),
        ("flags", update(16, 16, 16, 0, 0x80, &[]), |e| {
            matches!(e, DecodeError::UnknownFlags(0x80))
        }),
        ("format", update(16, 16, 16, 9, 0, &[]), |e| {
            matches!(e, DecodeError::UnknownFormat(9))
        }),
        ("tile size 8", update(16, 16, 8, 0, 0, &[]), |e| {
            matches!(e, DecodeError::TileSize(8))
        }),
        ("tile size 300", update(16, 16, 300, 0, 0, &[]), |e| {
            matches!(e, DecodeError::TileSize(300))
        }),
        (
            "100000x100000",
            update(100_000, 100_000, 64, 0, 0, &[]),
            |e| matches!(e, DecodeError::FrameSize { .. }),
        ),
        (
            "16384x16384 beyond max pixels",
            update(16_384, 16_384, 64, 0, 0, &[]),
            |e| matches!(e, DecodeError::FrameSize { .. }),
        ),
        ("zero width", update(0, 16, 16, 0, 0, &[]), |e| {
            matches!(e, DecodeError::FrameSize { .. })
        }),
        (
            "index out of range",
            update(32, 32, 16, 0, 0, &[(4, 0, raw(tile))]),
            |e| matches!(e, DecodeError::TileIndex { index: 4, tiles: 4 }),
        ),
        (
            "duplicate",
            update(32, 32, 16, 0, 0, &[(1, 0, raw(tile)), (1, 0, raw(tile))]),
            |e| matches!(e, DecodeError::DuplicateTile(1)),
        ),
        ("codec", update(32, 32, 16, 0, 0, &[(0, 8, raw(4))]), |e| {
            matches!(e, DecodeError::UnknownCodec { code: 8, .. })
        }),
        (
            "raw too short",
            update(32, 32, 16, 0, 0, &[(0, 0, raw(tile - 4))]),
            |e| matches!(e, DecodeError::PayloadLength { .. }),
        ),
        (
            "raw too long",
            update(32, 32, 16, 0, 0, &[(0, 0, raw(tile + 4))]),
            |e| matches!(e, DecodeError::PayloadLength { .. }),
        ),
        (
            "lz4 empty",
            update(32, 32, 16, 0, 0, &[(0, 1, vec![])]),
            |e| matches!(e, DecodeError::PayloadLength { .. }),
        ),
        (
            "lz4 says less",
            update(
                32,
                32,
                16,
                0,
                0,
                &[(0, 1, lz4_flex::block::compress(&raw(tile - 64)))],
            ),
            |e| {
                matches!(
                    e,
                    DecodeError::DecompressedSize {
                        got: 960,
                        expected: 1024,
                        ..
                    }
                )
            },
        ),
        (
            "lz4 says more",
            update(
                32,
                32,
                16,
                0,
                0,
                &[(0, 1, lz4_flex::block::compress(&raw(tile * 4)))],
            ),
            |e| matches!(e, DecodeError::Lz4 { .. }),
        ),
        (
            "lz4 garbage",
            update(
                32,
                32,
                16,
                0,
                0,
                &[(0, 1, vec![0xF0, 0xFF, 0xFF, 0xFF, 0x01])],
            ),
            |e| matches!(e, DecodeError::Lz4 { .. }),
        ),
        (
            "solid of 3 bytes",
            update(32, 32, 16, 0, 0, &[(0, 2, raw(3))]),
            |e| {
                matches!(
                    e,
                    DecodeError::PayloadLength {
                        len: 3,
                        allowed: 4,
                        ..
                    }
                )
            },
        ),
        (
            "patch with no block",
            update(32, 32, 16, 0, 0, &[(0, 3, patch(0, (0, 0, 1, 1), &[]))]),
            |e| matches!(e, DecodeError::PayloadLength { .. }),
        ),
        (
            "patch in a keyframe",
            update(
                16,
                16,
                16,
                0,
                1,
                &[(0, 3, patch(0, (0, 0, 1, 1), &[0x40, 0, 0, 0, 0]))],
            ),
            |e| matches!(e, DecodeError::PatchInKeyframe(0)),
        ),
        (
            "patch rectangle past the tile",
            update(32, 32, 16, 0, 0, &[(0, 3, patch(0, (8, 0, 9, 1), &[0x40]))]),
            |e| matches!(e, DecodeError::PatchRect { .. }),
        ),
        (
            "rect codec in a keyframe",
            update(
                16,
                16,
                16,
                0,
                1,
                &[(0, 4, patch(0, (0, 0, 1, 1), &[0x40, 0, 0, 0, 0]))],
            ),
            |e| matches!(e, DecodeError::PatchInKeyframe(0)),
        ),
        (
            "rect codec past the tile",
            update(
                32,
                32,
                16,
                0,
                0,
                &[(0, 4, patch(0, (0, 15, 1, 2), &[0x40]))],
            ),
            |e| matches!(e, DecodeError::PatchRect { .. }),
        ),
        (
            "empty patch rectangle",
            update(32, 32, 16, 0, 0, &[(0, 3, patch(0, (0, 0, 0, 4), &[0x40]))]),
            |e| matches!(e, DecodeError::PatchRect { .. }),
        ),
        (
            "patch longer than its rectangle allows",
            update(
                32,
                32,
                16,
                0,
                0,
                &[(0, 3, patch(0, (0, 0, 1, 1), &raw(64)))],
            ),
            |e| matches!(e, DecodeError::PayloadLength { .. }),
        ),
        (
            "patch with nothing held",
            update(
                32,
                32,
                16,
                0,
                0,
                &[(
                    0,
                    3,
                    patch(0, (0, 0, 1, 1), &lz4_flex::block::compress(&raw(4))),
                )],
            ),
            |e| matches!(e, DecodeError::NoBase(0)),
        ),
        (
            "patch of another tile than the one held",
            update(
                200,
                120,
                32,
                0,
                0,
                &[(
                    0,
                    3,
                    patch(42, (0, 0, 1, 1), &lz4_flex::block::compress(&raw(4))),
                )],
            ),
            |e| matches!(e, DecodeError::BaseMismatch { expected: 42, .. }),
        ),
        (
            "patch block decompressing short",
            update(
                200,
                120,
                32,
                0,
                0,
                &[(0, 3, {
                    let mut sum = FrameChecksum::new(TileGrid::new(200, 120, 32).unwrap());
                    sum.update_from_frame(&first_frame().as_frame(), &DirtyMask::full(28));
                    patch(
                        sum.hashes()[0],
                        (0, 0, 2, 2),
                        &lz4_flex::block::compress(&raw(12)),
                    )
                })],
            ),
            |e| {
                matches!(
                    e,
                    DecodeError::DecompressedSize {
                        got: 12,
                        expected: 16,
                        ..
                    }
                )
            },
        ),
        (
            "palette of no colours",
            update(32, 32, 16, 0, 0, &[(0, 5, raw(6))]),
            |e| {
                matches!(
                    e,
                    DecodeError::Palette {
                        error: PaletteError::Header,
                        ..
                    }
                )
            },
        ),
        (
            "palette of 17 colours",
            update(
                32,
                32,
                16,
                0,
                0,
                &[(0, 5, {
                    let mut b = vec![17u8];
                    b.extend_from_slice(&raw(17 * 4 + 1));
                    b
                })],
            ),
            |e| {
                matches!(
                    e,
                    DecodeError::Palette {
                        error: PaletteError::Header,
                        ..
                    }
                )
            },
        ),
        (
            "palette indices short",
            update(32, 32, 16, 0, 0, &[(0, 5, palette_body(2, &raw(31)))]),
            |e| {
                matches!(
                    e,
                    DecodeError::Palette {
                        error: PaletteError::Indices,
                        ..
                    }
                )
            },
        ),
        (
            "palette index past its colours",
            update(32, 32, 16, 0, 0, &[(0, 5, palette_body(3, &[0xFF; 64]))]),
            |e| {
                matches!(
                    e,
                    DecodeError::Palette {
                        error: PaletteError::Index(3),
                        index: 0
                    }
                )
            },
        ),
        (
            "palette too long",
            update(32, 32, 16, 0, 0, &[(0, 5, raw(4096))]),
            |e| matches!(e, DecodeError::PayloadLength { .. }),
        ),
        (
            "palette rect in a keyframe",
            update(
                16,
                16,
                16,
                0,
                1,
                &[(0, 6, patch(0, (0, 0, 1, 1), &palette_body(1, &[0])))],
            ),
            |e| matches!(e, DecodeError::PatchInKeyframe(0)),
        ),
        (
            "palette rect outside the tile",
            update(
                32,
                32,
                16,
                0,
                0,
                &[(0, 6, patch(0, (10, 10, 8, 8), &palette_body(1, &raw(8))))],
            ),
            |e| matches!(e, DecodeError::PatchRect { .. }),
        ),
        (
            "copy in a keyframe",
            with_copies(update(32, 32, 16, 0, 1, &[]), &[[0, 0, 4, 4, 8, 8]], 1),
            |e| matches!(e, DecodeError::CopyCount(1)),
        ),
        (
            "no copies behind the flag",
            with_copies(update(32, 32, 16, 0, 0, &[]), &[], 0),
            |e| matches!(e, DecodeError::CopyCount(0)),
        ),
        (
            "17 copies",
            with_copies(update(32, 32, 16, 0, 0, &[]), &[[0, 0, 1, 1, 1, 1]; 17], 17),
            |e| matches!(e, DecodeError::CopyCount(17)),
        ),
        (
            "copy destination past the edge",
            with_copies(update(32, 32, 16, 0, 0, &[]), &[[0, 0, 8, 8, 30, 0]], 1),
            |e| matches!(e, DecodeError::CopyBounds { copy: 0, .. }),
        ),
        (
            "empty copy",
            with_copies(update(32, 32, 16, 0, 0, &[]), &[[0, 0, 0, 8, 3, 0]], 1),
            |e| matches!(e, DecodeError::CopyBounds { .. }),
        ),
        (
            "copies moving more than the frame",
            with_copies(
                update(32, 32, 16, 0, 0, &[]),
                &[[0, 0, 32, 32, 0, 0], [0, 0, 1, 1, 2, 2]],
                2,
            ),
            |e| matches!(e, DecodeError::CopyArea(1025)),
        ),
        (
            "copy section cut short",
            with_copies(update(32, 32, 16, 0, 0, &[]), &[[0, 0, 1, 1, 2, 2]], 2),
            |e| matches!(e, DecodeError::Truncated { .. }),
        ),
        (
            "too many tiles",
            {
                let mut m = update(32, 32, 16, 0, 0, &[]);
                m[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
                m
            },
            |e| matches!(e, DecodeError::TooManyTiles { .. }),
        ),
        (
            "incomplete keyframe",
            update(32, 32, 16, 0, 1, &[(0, 0, raw(tile))]),
            |e| {
                matches!(
                    e,
                    DecodeError::IncompleteKeyframe {
                        count: 1,
                        expected: 4
                    }
                )
            },
        ),
        (
            "declared tiles missing",
            {
                let mut m = update(32, 32, 16, 0, 0, &[(0, 0, raw(tile))]);
                m[24..28].copy_from_slice(&3u32.to_le_bytes());
                m
            },
            |e| matches!(e, DecodeError::Truncated { .. }),
        ),
        (
            "length beyond message",
            {
                let mut m = update(32, 32, 16, 0, 0, &[(0, 1, raw(10))]);
                let at = UPDATE_HEADER_LEN + 5;
                m[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
                m
            },
            |e| matches!(e, DecodeError::Truncated { .. }),
        ),
    ];
    for (name, bytes, expected) in cases {
        let err = decode(&bytes).expect_err(name);
        assert!(expected(&err), "{name}: got {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn a_refused_update_leaves_the_frame_unchanged() {
    let (key, delta) = valid_updates();
    let mut c = CpuCompositor::new(DecodeLimits::default());
    assert!(matches!(c.apply(&delta), Err(ApplyError::NoKeyframe)));
    assert!(c.frame().is_none());
    c.apply(&key).unwrap();
    let before = c.frame().unwrap().clone();
    // Only the last tile is bad (its lz4 data decompresses short): every earlier tile decodes,
    // and still nothing is applied.
    let grid = TileGrid::new(200, 120, 32).unwrap();
    let tiles = vec![
        (0, 0, vec![1u8; grid.tile_bytes(0)]),
        (
            1,
            1,
            lz4_flex::block::compress(&vec![9u8; grid.tile_bytes(1) - 4]),
        ),
    ];
    let bad = update(200, 120, 32, 0, 0, &tiles);
    assert!(matches!(
        c.apply(&bad),
        Err(ApplyError::Decode(DecodeError::DecompressedSize { .. }))
    ));
    assert_eq!(c.frame().unwrap(), &before);
    // A delta for another frame size is refused until a keyframe comes.
    let other = update(64, 64, 16, 0, 0, &[(0, 0, vec![1; 1024])]);
    assert!(matches!(
        c.apply(&other),
        Err(ApplyError::ShapeMismatch { .. })
    ));
    assert_eq!(c.frame().unwrap(), &before);
    c.apply(&delta).unwrap();
    assert_ne!(c.frame().unwrap(), &before);
}

#[test]
fn limits_are_the_receivers_to_set() {
    let (key, _) = valid_updates();
    let small = DecodeLimits {
        max_width: 100,
        max_height: 100,
        max_pixels: 10_000,
    };
    assert!(matches!(
        parse_update(&key, &small),
        Err(DecodeError::FrameSize { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = decode(&bytes);
        let mut c = CpuCompositor::new(DecodeLimits::default());
        let _ = c.apply(&bytes);
    }

    #[test]
    fn mutated_updates_decode_or_fail_cleanly(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<Option<usize>>(),
        which in 0..6usize,
    ) {
        let (key, delta) = valid_updates();
        let (scroll_key, scroll_delta) = scroll_updates();
        let (key, mut msg) = match which {
            0 => (key.clone(), key),
            1 => (key, delta),
            2 => (key, solid_keyframe()),
            3 => palette_updates(),
            4 => cached_updates(),
            _ => (scroll_key, scroll_delta),
        };
        for (at, byte) in flips {
            let i = at % msg.len();
            msg[i] ^= byte;
        }
        if let Some(c) = cut {
            msg.truncate(c % (msg.len() + 1));
        }
        let mut c = CpuCompositor::new(DecodeLimits::default())
            .with_tile_cache(tessera_engine::TILE_CACHE_BYTES);
        c.apply(&key).unwrap();
        let before = c.frame().unwrap().clone();
        match c.apply(&msg) {
            Ok(h) => {
                let f = c.frame().unwrap();
                prop_assert_eq!((f.width(), f.height()), (h.width, h.height));
            }
            Err(_) => prop_assert_eq!(c.frame().unwrap(), &before),
        }
        if let Ok(u) = parse_update(&msg, &DecodeLimits::default()) {
            let declared = u.header.width as usize * u.header.height as usize * 4;
            let payload: usize = u.tiles.iter().map(|t| u.grid.tile_bytes(t.index as usize)).sum();
            prop_assert!(payload <= declared);
        }
    }

    #[test]
    fn mutated_compact_messages_unpack_or_fail_cleanly(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<Option<usize>>(),
        which in 0..4usize,
        again in any::<bool>(),
    ) {
        use std::sync::Arc;
        use tessera_engine::stream::{split_frame_message, FrameHeader, FramePacker, FrameUnpacker, is_compact};
        let (key, delta) = match which {
            0 => valid_updates(),
            1 => palette_updates(),
            2 => cached_updates(),
            _ => scroll_updates(),
        };
        let framed = |sequence: u64, checksum: u64, update: &[u8]| {
            let mut m = Vec::new();
            FrameHeader { sequence, capture_time_us: 0, checksum }.write(&mut m);
            m.extend_from_slice(update);
            m
        };
        // The keyframe's frame as the viewer holds it, so that the delta's patches leave their
        // base hashes out and the viewer puts them back.
        let mut c = CpuCompositor::new(DecodeLimits::default())
            .with_tile_cache(tessera_engine::TILE_CACHE_BYTES);
        let h = c.apply(&key).unwrap();
        let grid = TileGrid::new(h.width, h.height, h.tile_size).unwrap();
        let mut held = FrameChecksum::new(grid);
        held.update_from_frame(&c.frame().unwrap().as_frame(), &DirtyMask::full(grid.tile_count()));
        let before = c.frame().unwrap().clone();
        // The updates carry their own sequence numbers; the frame headers take them.
        let seq = |update: &[u8]| u64::from_le_bytes(update[4..12].try_into().unwrap());
        let mut packer = FramePacker::default();
        let key = packer.pack(Arc::new(framed(seq(&key), held.value(), &key)), held.hashes());
        // Sent twice, the second time its small blocks name the first time's.
        let first = packer.pack(Arc::new(framed(seq(&delta), 0, &delta)), &[]).to_vec();
        let mut wire = if again {
            packer.pack(Arc::new(framed(seq(&delta), 0, &delta)), &[]).to_vec()
        } else {
            first.clone()
        };
        prop_assert!(is_compact(wire[0]));
        for (at, byte) in flips {
            let i = 1 + at % (wire.len() - 1);
            wire[i] ^= byte;
        }
        if let Some(c) = cut {
            wire.truncate(c % (wire.len() + 1));
        }
        let mut unpacker = FrameUnpacker::default();
        prop_assert!(!unpacker.unpack(key.to_vec(), None).unwrap().not_held);
        let mut before = before;
        if again {
            let unpacked = unpacker.unpack(first, Some(&held)).unwrap();
            prop_assert!(!unpacked.not_held);
            c.apply(split_frame_message(&unpacked.message).unwrap().1).unwrap();
            before = c.frame().unwrap().clone();
        }
        if let Ok(unpacked) = unpacker.unpack(wire, Some(&held)) {
            let (_, update) = split_frame_message(&unpacked.message).unwrap();
            if !unpacked.not_held && c.apply(update).is_err() {
                prop_assert_eq!(c.frame().unwrap(), &before);
            }
        }
    }
}

#[test]
fn a_patch_of_a_tile_the_receiver_does_not_hold_asks_for_a_keyframe_and_changes_nothing() {
    for (key, delta) in [valid_updates(), palette_updates()] {
        patch_of_what_is_not_held(key, delta);
    }
}

/// Applies `delta`, made against `key`, to another picture, then to `key`.
fn patch_of_what_is_not_held(key: Vec<u8>, delta: Vec<u8>) {
    // The receiver holds another picture than the one the delta's patches were made against.
    let mut other = SyntheticSource::new(Scene::Typing, 200, 120, PixelFormat::Bgra8).unwrap();
    for _ in 0..40 {
        other.advance();
    }
    let grid = TileGrid::new(200, 120, 32).unwrap();
    let mut wrong_key = Vec::new();
    TileEncoder::default()
        .encode_keyframe(&other.frame(), &grid, 0, &mut wrong_key)
        .unwrap();
    let mut c = CpuCompositor::new(DecodeLimits::default());
    c.apply(&wrong_key).unwrap();
    let before = c.frame().unwrap().clone();
    let err = c.apply(&delta).unwrap_err();
    assert!(
        matches!(err, ApplyError::Decode(DecodeError::BaseMismatch { .. })),
        "{err}"
    );
    assert!(err.needs_keyframe());
    assert_eq!(c.frame().unwrap(), &before, "never a wrong picture");
    // From a keyframe the same delta applies.
    c.apply(&key).unwrap();
    c.apply(&delta).unwrap();
    // A malformed update is not a matter of keyframes.
    let bad = c.apply(&delta[..delta.len() - 1]).unwrap_err();
    assert!(!bad.needs_keyframe());

    // The GPU compositor checks patches against its own copy the same way.
    let Some(ctx) = common::gpu() else { return };
    let mut g = GpuCompositor::new(&ctx, DecodeLimits::default());
    g.apply(&wrong_key).unwrap();
    assert!(g.apply(&delta).unwrap_err().needs_keyframe());
    assert_eq!(g.read_back().unwrap().unwrap(), before);
    g.apply(&key).unwrap();
    g.apply(&delta).unwrap();
    assert_eq!(&g.read_back().unwrap().unwrap(), c.frame().unwrap());
}

#[test]
fn a_copy_of_pixels_the_receiver_does_not_hold_asks_for_a_keyframe_and_changes_nothing() {
    let (key, delta) = scroll_updates();
    // Same size, other pixels: the typing scene at 320x200.
    let other = SyntheticSource::new(Scene::Typing, 320, 200, PixelFormat::Bgra8).unwrap();
    let mut wrong_key = Vec::new();
    TileEncoder::default()
        .encode_keyframe(
            &other.frame(),
            &TileGrid::new(320, 200, 32).unwrap(),
            0,
            &mut wrong_key,
        )
        .unwrap();
    let mut c = CpuCompositor::new(DecodeLimits::default());
    c.apply(&wrong_key).unwrap();
    let before = c.frame().unwrap().clone();
    let err = c.apply(&delta).unwrap_err();
    assert!(
        matches!(
            err,
            ApplyError::Decode(DecodeError::CopySourceMismatch { copy: 0, .. })
        ),
        "{err}"
    );
    assert!(err.needs_keyframe());
    assert_eq!(c.frame().unwrap(), &before, "never a wrong picture");
    c.apply(&key).unwrap();
    c.apply(&delta).unwrap();
    assert!(!c.copied().is_empty());

    let Some(ctx) = common::gpu() else { return };
    let mut g = GpuCompositor::new(&ctx, DecodeLimits::default());
    g.apply(&wrong_key).unwrap();
    assert!(g.apply(&delta).unwrap_err().needs_keyframe());
    assert_eq!(g.read_back().unwrap().unwrap(), before);
    g.apply(&key).unwrap();
    g.apply(&delta).unwrap();
    assert_eq!(&g.read_back().unwrap().unwrap(), c.frame().unwrap());
}

#[test]
fn a_reference_to_a_tile_not_in_the_tile_cache_asks_for_a_keyframe_and_changes_nothing() {
    let (key, _) = valid_updates();
    let grid = TileGrid::new(200, 120, 32).unwrap();
    let frame = first_frame();
    let mut sum = FrameChecksum::new(grid);
    sum.update_from_frame(&frame.as_frame(), &DirtyMask::full(grid.tile_count()));
    let hashes = sum.hashes().to_vec();
    // Tile 9 (row 1, a 32x32 tile) is not one colour: its hash is no solid tile's.
    let solid = solid_keyframe();
    let mut plain = CpuCompositor::new(DecodeLimits::default());
    plain.apply(&solid).unwrap();
    let mut solid_sum = FrameChecksum::new(grid);
    solid_sum.update_from_frame(
        &plain.frame().unwrap().as_frame(),
        &DirtyMask::full(grid.tile_count()),
    );
    let t = 9u32;
    assert_ne!(hashes[t as usize], solid_sum.hashes()[0]);
    let reference = |index: u32, hash: u64| {
        update(
            200,
            120,
            32,
            0,
            0,
            &[(index, 7, hash.to_le_bytes().to_vec())],
        )
    };

    let mut c = CpuCompositor::new(DecodeLimits::default())
        .with_tile_cache(tessera_engine::TILE_CACHE_BYTES);
    c.apply(&key).unwrap();
    assert_eq!(c.tile_cache().len(), {
        let mut distinct = hashes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        distinct.len()
    });
    // A hit: tile 9's content, named by its hash, lands on tile 1 (also 32x32).
    c.apply(&reference(1, hashes[t as usize])).unwrap();
    let got = c.frame().unwrap().clone();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    got.as_frame()
        .copy_tile_canonical(&grid.tile_rect(1), &mut a);
    frame
        .as_frame()
        .copy_tile_canonical(&grid.tile_rect(t as usize), &mut b);
    assert_eq!(a, b);

    let misses = [
        // A hash nothing has.
        reference(2, 0xdead_beef),
        // Tile 9's hash on the 8-pixel-wide edge tile 6: another size, no hit.
        reference(6, hashes[t as usize]),
    ];
    for miss in &misses {
        let err = c.apply(miss).unwrap_err();
        assert!(
            matches!(err, ApplyError::Decode(DecodeError::CacheMiss { .. })),
            "{err}"
        );
        assert!(err.needs_keyframe());
        assert_eq!(c.frame().unwrap(), &got, "never a wrong picture");
    }
    // A keyframe empties the cache: tile 9's old content is gone.
    c.apply(&solid).unwrap();
    let err = c.apply(&reference(1, hashes[t as usize])).unwrap_err();
    assert!(err.needs_keyframe(), "{err}");
    // A receiver without a cache misses every reference.
    let mut none = CpuCompositor::new(DecodeLimits::default());
    none.apply(&key).unwrap();
    assert!(none
        .apply(&reference(1, hashes[t as usize]))
        .unwrap_err()
        .needs_keyframe());

    // Malformed references are refused while parsing.
    let short = update(200, 120, 32, 0, 0, &[(1, 7, vec![0; 7])]);
    assert!(matches!(
        decode(&short),
        Err(DecodeError::PayloadLength {
            codec: TileCodec::Cached,
            len: 7,
            ..
        })
    ));
    let mut in_key: Vec<(u32, u8, Vec<u8>)> = (0..grid.tile_count() as u32)
        .map(|i| (i, 2, vec![1, 2, 3, 4]))
        .collect();
    in_key[3] = (3, 7, hashes[3].to_le_bytes().to_vec());
    assert_eq!(
        decode(&update(200, 120, 32, 0, 1, &in_key)),
        Err(DecodeError::CachedInKeyframe(3))
    );

    // The GPU compositor resolves references the same way.
    let Some(ctx) = common::gpu() else { return };
    let mut g = GpuCompositor::new(&ctx, DecodeLimits::default())
        .with_tile_cache(tessera_engine::TILE_CACHE_BYTES);
    g.apply(&key).unwrap();
    g.apply(&reference(1, hashes[t as usize])).unwrap();
    assert_eq!(g.read_back().unwrap().unwrap(), got);
    assert!(g.apply(&misses[0]).unwrap_err().needs_keyframe());
    assert_eq!(g.read_back().unwrap().unwrap(), got);
}
