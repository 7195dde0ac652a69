//! Bad updates get a typed error, never a panic, never an allocation beyond the declared frame,
//! and never a change to the composited frame.

mod common;

use proptest::prelude::*;
use tessera_engine::{
    parse_update, ApplyError, CpuCompositor, DecodeError, DecodeLimits, DecodedTiles, PixelFormat,
    Scene, SyntheticSource, TileEncoder, TileGrid, UPDATE_HEADER_LEN,
};

/// A valid keyframe and a valid delta of a 200x120 typing scene in 32-pixel tiles.
fn valid_updates() -> (Vec<u8>, Vec<u8>) {
    let mut s = SyntheticSource::new(Scene::Typing, 200, 120, PixelFormat::Bgra8).unwrap();
    let grid = TileGrid::new(200, 120, 32).unwrap();
    let enc = TileEncoder::default();
    let mut key = Vec::new();
    enc.encode_keyframe(&s.frame(), &grid, 0, &mut key).unwrap();
    let before = s.frame_buffer().clone();
    s.advance();
    let mask = tessera_engine::CpuDiff::default()
        .diff(&grid, &before.as_frame(), &s.frame(), None)
        .unwrap();
    let mut delta = Vec::new();
    enc.encode_delta(&s.frame(), &grid, &mask, 1, &mut delta)
        .unwrap();
    (key, delta)
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

fn decode(bytes: &[u8]) -> Result<(), DecodeError> {
    let u = parse_update(bytes, &DecodeLimits::default())?;
    DecodedTiles::new().decode(&u)
}

#[test]
fn every_truncation_of_a_valid_update_is_an_error() {
    let (key, delta) = valid_updates();
    for msg in [&key, &delta] {
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
        ("codec", update(32, 32, 16, 0, 0, &[(0, 7, raw(4))]), |e| {
            matches!(e, DecodeError::UnknownCodec { code: 7, .. })
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
        use_delta in any::<bool>(),
    ) {
        let (key, delta) = valid_updates();
        let mut msg = if use_delta { delta } else { key.clone() };
        for (at, byte) in flips {
            let i = at % msg.len();
            msg[i] ^= byte;
        }
        if let Some(c) = cut {
            msg.truncate(c % (msg.len() + 1));
        }
        let mut c = CpuCompositor::new(DecodeLimits::default());
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
}
