//! diff -> encode -> decode -> composite reproduces every frame of every synthetic scene
//! bit-exactly, on both compositors, with every tile codec (patches of the previous frame
//! and scroll copies included), and over long sequences of random edits.

mod common;

use common::{cached_tiles, gpu, plan, record_sent, Rng};
use tessera_engine::stream::FrameChecksum;
use tessera_engine::{
    CacheModel, CpuCompositor, CpuDiff, DecodeLimits, DiffBackend, DirtyMask, EncodeStats, Frame,
    FrameBuffer, FrameDiffer, GpuCompositor, PatchBase, PixelFormat, Rect, Scene, SyntheticSource,
    TileCodec, TileEncoder, TileGrid, COPIES_CAPABILITY, TILE_CACHE_BYTES,
};

const FRAMES: u64 = 120;

/// Streams `FRAMES` frames of `scene` through the differ and `encoder` (patching the previous
/// frame, as a sender does for a viewer that keeps up, and referring to the viewer's tile
/// cache of `cache` bytes) into `apply`, then checks the composited frame with `composited`
/// after every update. Returns what the encodes used.
#[allow(clippy::too_many_arguments)]
fn stream(
    scene: Scene,
    format: PixelFormat,
    (w, h, tile): (u32, u32, u32),
    differ: &mut FrameDiffer,
    use_hints: bool,
    encoder: TileEncoder,
    cache: u32,
    mut apply: impl FnMut(&[u8]),
    mut composited: impl FnMut() -> tessera_engine::FrameBuffer,
) -> (EncodeStats, usize) {
    let mut source = SyntheticSource::new(scene, w, h, format).unwrap();
    let grid = TileGrid::new(w, h, tile).unwrap();
    let mut message = Vec::new();
    let mut dirty_total = 0;
    let mut used = EncodeStats::default();
    let mut copies = 0;
    let mut previous = source.frame_buffer().clone();
    let mut sum = FrameChecksum::new(grid);
    let held = DirtyMask::full(grid.tile_count());
    let mut model = CacheModel::new(cache);
    for seq in 0..FRAMES {
        if seq > 0 {
            previous.clone_from(source.frame_buffer());
            source.advance();
        }
        let hints = (use_hints && seq > 0).then(|| source.damage().to_vec());
        let mask = differ
            .diff(Frame::Cpu(source.frame()), &grid, hints.as_deref())
            .unwrap();
        message.clear();
        let mut now = sum.clone();
        now.update_from_frame(&source.frame(), &mask);
        let stats = if seq == 0 {
            let all = DirtyMask::full(grid.tile_count());
            record_sent(&mut model, true, &grid, &all, now.hashes());
            encoder
                .encode_keyframe(&source.frame(), &grid, seq, &mut message)
                .unwrap()
        } else {
            let p = plan(&encoder, &previous, &sum, &source.frame(), &grid, &mask);
            copies += p.copies.len();
            let base = PatchBase {
                frame: p.after.as_frame(),
                hashes: &p.hashes,
                held: &held,
                copies: &p.copies,
            };
            let cached = cached_tiles(&model, &p.tiles, now.hashes());
            record_sent(&mut model, false, &grid, &p.tiles, now.hashes());
            encoder
                .encode_delta_cached(
                    &source.frame(),
                    &grid,
                    &p.tiles,
                    Some(&base),
                    cached.as_ref(),
                    seq,
                    &mut message,
                )
                .unwrap()
        };
        sum = now;
        used.add(&stats);
        dirty_total += mask.count();
        apply(&message);
        let got = composited();
        let want = source.frame_buffer().canonical();
        assert!(
            got == want,
            "{scene:?} {format:?} frame {seq}: composited frame differs"
        );
    }
    if scene == Scene::Idle {
        assert_eq!(
            dirty_total,
            grid.tile_count(),
            "idle sends only the keyframe"
        );
    } else {
        assert!(dirty_total > grid.tile_count(), "{scene:?} sent no deltas");
    }
    (used, copies)
}

/// Every codec set a sender may use: lz4 (and raw) alone, with solid, with patches, with
/// palettes, all.
fn codec_sets() -> [TileEncoder; 5] {
    let solid = TileCodec::Solid.bit();
    let patch = TileCodec::Patch.bit() | TileCodec::Rect.bit();
    let palette = TileCodec::Palette.bit() | TileCodec::PaletteRect.bit();
    [
        0,
        solid,
        patch,
        palette,
        solid | patch | palette | COPIES_CAPABILITY,
    ]
    .map(|c| TileEncoder::default().with_codecs(c))
}

#[test]
fn cpu_compositor_reproduces_every_scene_with_cpu_diff_and_damage_hints() {
    for (c, encoder) in codec_sets().into_iter().enumerate() {
        let mut used = EncodeStats::default();
        // The set with every codec also refers to the tile cache.
        let cache = if c == 4 { TILE_CACHE_BYTES } else { 0 };
        for (i, scene) in Scene::ALL.into_iter().enumerate() {
            let format = PixelFormat::ALL[(i + c) % 4];
            let mut differ = FrameDiffer::new(DiffBackend::Cpu, None).unwrap();
            let mut compositor = CpuCompositor::new(DecodeLimits::default()).with_tile_cache(cache);
            let comp = std::cell::RefCell::new(&mut compositor);
            let (stats, copies) = stream(
                scene,
                format,
                (1021, 767, 64),
                &mut differ,
                true,
                encoder,
                cache,
                |m| {
                    comp.borrow_mut().apply(m).unwrap();
                },
                || comp.borrow().frame().unwrap().clone(),
            );
            used.add(&stats);
            if matches!(scene, Scene::Scrolling | Scene::Dragging) {
                assert_eq!(
                    copies > 0,
                    encoder.codecs() & COPIES_CAPABILITY != 0,
                    "{scene:?}: copies: {copies}"
                );
            }
        }
        let uses = |codec: TileCodec| encoder.codecs() & codec.bit() != 0;
        assert_eq!(used.solid_tiles > 0, uses(TileCodec::Solid), "{used:?}");
        assert_eq!(used.patch_tiles > 0, uses(TileCodec::Patch), "{used:?}");
        assert_eq!(used.palette_tiles > 0, uses(TileCodec::Palette), "{used:?}");
        assert_eq!(used.cached_tiles > 0, cache > 0, "{used:?}");
        assert!(used.lz4_tiles > 0, "{used:?}");
    }
}

#[test]
fn gpu_compositor_reproduces_every_scene_with_gpu_diff() {
    let Some(ctx) = gpu() else { return };
    for (i, scene) in Scene::ALL.into_iter().enumerate() {
        let format = PixelFormat::ALL[(i + 1) % 4];
        let mut differ = FrameDiffer::new(DiffBackend::Gpu, Some(&ctx)).unwrap();
        let compositor = std::cell::RefCell::new(
            GpuCompositor::new(&ctx, DecodeLimits::default()).with_tile_cache(TILE_CACHE_BYTES),
        );
        let (_, copies) = stream(
            scene,
            format,
            (803, 601, 32),
            &mut differ,
            false,
            TileEncoder::default(),
            TILE_CACHE_BYTES,
            |m| {
                compositor.borrow_mut().apply(m).unwrap();
            },
            || compositor.borrow_mut().read_back().unwrap().unwrap(),
        );
        assert!(
            !matches!(scene, Scene::Scrolling | Scene::Dragging) || copies > 0,
            "{scene:?}: nothing copied"
        );
    }
}

#[test]
fn a_keyframe_at_a_new_size_restarts_both_compositors() {
    let Some(ctx) = gpu() else { return };
    let mut cpu = CpuCompositor::new(DecodeLimits::default());
    let mut gpu_comp = GpuCompositor::new(&ctx, DecodeLimits::default());
    let encoder = TileEncoder::default();
    let mut message = Vec::new();
    for (seq, (w, h)) in [(640u32, 480u32), (333, 222), (640, 480)]
        .into_iter()
        .enumerate()
    {
        let source = SyntheticSource::new(Scene::Typing, w, h, PixelFormat::Bgra8).unwrap();
        let grid = TileGrid::new(w, h, 64).unwrap();
        message.clear();
        encoder
            .encode_keyframe(&source.frame(), &grid, seq as u64, &mut message)
            .unwrap();
        cpu.apply(&message).unwrap();
        gpu_comp.apply(&message).unwrap();
        assert_eq!(cpu.frame().unwrap(), source.frame_buffer());
        assert_eq!(
            &gpu_comp.read_back().unwrap().unwrap(),
            source.frame_buffer()
        );
    }
}

/// Draws one random edit into `f`: a filled rectangle, noise, a copy of another area (a move),
/// or a single pixel.
fn random_edit(f: &mut FrameBuffer, rng: &mut Rng) {
    let (w, h) = (f.width(), f.height());
    let r = Rect::new(
        rng.below(w),
        rng.below(h),
        1 + rng.below(w / 3),
        1 + rng.below(h / 3),
    );
    let r = r.intersection(&Rect::new(0, 0, w, h)).unwrap();
    let stride = f.stride();
    let kind = rng.below(5);
    if kind == 4 {
        // A vertical scroll of the area by a few rows; the rows it exposes get noise.
        let shift = 1 + rng.below(r.height.min(24));
        let src = f.clone();
        let stride = f.stride();
        let row = r.width as usize * 4;
        for y in r.y..r.bottom() {
            let at = y as usize * stride + r.x as usize * 4;
            if y + shift < r.bottom() {
                let from = (y + shift) as usize * stride + r.x as usize * 4;
                f.pixels_mut()[at..at + row].copy_from_slice(&src.pixels()[from..from + row]);
            } else {
                rng.fill(&mut f.pixels_mut()[at..at + row]);
            }
        }
        return;
    }
    let colour = (rng.next() as u32).to_le_bytes();
    let (dx, dy) = (rng.below(w - r.width + 1), rng.below(h - r.height + 1));
    let src = f.clone();
    let px = f.pixels_mut();
    for y in r.y..r.bottom() {
        for x in r.x..r.right() {
            let at = y as usize * stride + x as usize * 4;
            match kind {
                0 => px[at..at + 4].copy_from_slice(&colour),
                1 => px[at..at + 4].copy_from_slice(&(rng.next() as u32).to_le_bytes()),
                2 => {
                    let from = (dy + y - r.y) as usize * stride + (dx + x - r.x) as usize * 4;
                    px[at..at + 4].copy_from_slice(&src.pixels()[from..from + 4]);
                }
                _ => {
                    if (x, y) == (r.x, r.y) {
                        px[at] ^= 1 + rng.below(255) as u8;
                    }
                }
            }
        }
    }
}

#[test]
fn long_random_sequences_round_trip_with_every_codec_and_any_held_tiles() {
    let mut used = EncodeStats::default();
    let mut copies = 0;
    for seed in 0..8u64 {
        let mut rng = Rng(seed);
        let (w, h) = (17 + rng.below(300), 17 + rng.below(200));
        let tile = [16, 32, 64][rng.below(3) as usize];
        let format = PixelFormat::ALL[rng.below(4) as usize];
        let grid = TileGrid::new(w, h, tile).unwrap();
        let mut frame = FrameBuffer::new(w, h, format).unwrap();
        for _ in 0..6 {
            random_edit(&mut frame, &mut rng);
        }
        // A tile cache of 4 to 40 whole tiles: small enough to evict all the time.
        let cache = (4 + rng.below(37)) * tile * tile * 4;
        let mut compositor = CpuCompositor::new(DecodeLimits::default()).with_tile_cache(cache);
        let mut model = CacheModel::new(cache);
        let mut message = Vec::new();
        TileEncoder::default()
            .encode_keyframe(&frame.as_frame(), &grid, 0, &mut message)
            .unwrap();
        compositor.apply(&message).unwrap();
        let mut sum = FrameChecksum::new(grid);
        let all = DirtyMask::full(grid.tile_count());
        sum.update_from_frame(&frame.as_frame(), &all);
        record_sent(&mut model, true, &grid, &all, sum.hashes());
        let mut history = vec![frame.clone()];
        for seq in 1..250u64 {
            let previous = frame.clone();
            if rng.below(6) == 0 {
                // Back to an earlier picture (a tab switched to again), perhaps edited.
                frame = history[rng.below(history.len() as u32) as usize].clone();
            }
            for _ in 0..rng.below(3) {
                random_edit(&mut frame, &mut rng);
            }
            if history.len() == 8 {
                history.remove(0);
            }
            history.push(frame.clone());
            let mask = CpuDiff::default()
                .diff(&grid, &previous.as_frame(), &frame.as_frame(), None)
                .unwrap();
            // The receiver holds every tile of `previous`; the sender may know of any subset.
            let mut held = DirtyMask::new(grid.tile_count());
            for i in 0..grid.tile_count() {
                if rng.below(4) != 0 {
                    held.set(i);
                }
            }
            let encoder = codec_sets()[rng.below(5) as usize];
            let p = plan(&encoder, &previous, &sum, &frame.as_frame(), &grid, &mask);
            copies += p.copies.len();
            if !p.copies.is_empty() {
                // What the copy writes, the receiver holds as `p.after`.
                for t in grid.tiles_touching(&[p.copies[0].dst()]).iter() {
                    held.set(t);
                }
            }
            let base = PatchBase {
                frame: p.after.as_frame(),
                hashes: &p.hashes,
                held: &held,
                copies: &p.copies,
            };
            message.clear();
            let mut now = sum.clone();
            now.update_from_frame(&frame.as_frame(), &mask);
            // The sender may leave some cache hits unused; the viewer records the tiles anyway.
            let cached = cached_tiles(&model, &p.tiles, now.hashes()).filter(|_| rng.below(4) != 0);
            record_sent(&mut model, false, &grid, &p.tiles, now.hashes());
            let stats = encoder
                .encode_delta_cached(
                    &frame.as_frame(),
                    &grid,
                    &p.tiles,
                    Some(&base),
                    cached.as_ref(),
                    seq,
                    &mut message,
                )
                .unwrap();
            used.add(&stats);
            sum = now;
            compositor.apply(&message).unwrap();
            assert!(
                compositor.frame().unwrap() == &frame.canonical(),
                "seed {seed} step {seq}: composited frame differs"
            );
            // Both ends keep the same tiles in the same budget.
            let held = compositor.tile_cache();
            assert_eq!((held.len(), held.bytes()), (model.len(), model.bytes()));
            assert!(held.bytes() <= u64::from(cache));
        }
    }
    for (name, n) in [
        ("solid", used.solid_tiles),
        ("patch", used.patch_tiles),
        ("palette", used.palette_tiles),
        ("lz4", used.lz4_tiles),
        ("raw", used.raw_tiles),
        ("cached", used.cached_tiles),
    ] {
        assert!(n > 0, "no {name} tiles in {used:?}");
    }
    assert!(copies > 0, "no scroll found in the random edits");
}
