//! diff -> encode -> decode -> composite reproduces every frame of every synthetic scene
//! bit-exactly, on both compositors.

mod common;

use common::gpu;
use tessera_engine::{
    CpuCompositor, DecodeLimits, DiffBackend, Frame, FrameDiffer, GpuCompositor, PixelFormat,
    Scene, SyntheticSource, TileEncoder, TileGrid,
};

const FRAMES: u64 = 120;

/// Streams `FRAMES` frames of `scene` through the differ and encoder into `apply`, then checks
/// the composited frame with `composited` after every update.
fn stream(
    scene: Scene,
    format: PixelFormat,
    (w, h, tile): (u32, u32, u32),
    differ: &mut FrameDiffer,
    use_hints: bool,
    mut apply: impl FnMut(&[u8]),
    mut composited: impl FnMut() -> tessera_engine::FrameBuffer,
) {
    let mut source = SyntheticSource::new(scene, w, h, format).unwrap();
    let grid = TileGrid::new(w, h, tile).unwrap();
    let encoder = TileEncoder::default();
    let mut message = Vec::new();
    let mut dirty_total = 0;
    for seq in 0..FRAMES {
        if seq > 0 {
            source.advance();
        }
        let hints = (use_hints && seq > 0).then(|| source.damage().to_vec());
        let mask = differ
            .diff(Frame::Cpu(source.frame()), &grid, hints.as_deref())
            .unwrap();
        message.clear();
        if seq == 0 {
            encoder
                .encode_keyframe(&source.frame(), &grid, seq, &mut message)
                .unwrap();
        } else {
            encoder
                .encode_delta(&source.frame(), &grid, &mask, seq, &mut message)
                .unwrap();
        }
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
}

#[test]
fn cpu_compositor_reproduces_every_scene_with_cpu_diff_and_damage_hints() {
    for (i, scene) in Scene::ALL.into_iter().enumerate() {
        let format = PixelFormat::ALL[i % 4];
        let mut differ = FrameDiffer::new(DiffBackend::Cpu, None).unwrap();
        let mut compositor = CpuCompositor::new(DecodeLimits::default());
        let comp = std::cell::RefCell::new(&mut compositor);
        stream(
            scene,
            format,
            (1021, 767, 64),
            &mut differ,
            true,
            |m| {
                comp.borrow_mut().apply(m).unwrap();
            },
            || comp.borrow().frame().unwrap().clone(),
        );
    }
}

#[test]
fn gpu_compositor_reproduces_every_scene_with_gpu_diff() {
    let Some(ctx) = gpu() else { return };
    for (i, scene) in Scene::ALL.into_iter().enumerate() {
        let format = PixelFormat::ALL[(i + 1) % 4];
        let mut differ = FrameDiffer::new(DiffBackend::Gpu, Some(&ctx)).unwrap();
        let compositor = std::cell::RefCell::new(GpuCompositor::new(&ctx, DecodeLimits::default()));
        stream(
            scene,
            format,
            (803, 601, 32),
            &mut differ,
            false,
            |m| {
                compositor.borrow_mut().apply(m).unwrap();
            },
            || compositor.borrow_mut().read_back().unwrap().unwrap(),
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
