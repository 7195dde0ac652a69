//! The GPU diff must report exactly the tiles the CPU diff reports, on lavapipe in CI.

mod common;

use common::{gpu, noise, padded, Rng};
use tessera_engine::{
    BackendRequest, CpuDiff, CpuFrame, DiffBackend, DirtyMask, Frame, FrameBuffer, FrameDiffer,
    FramesIn, GpuDiff, GpuFrame, PixelFormat, Rect, TileGrid,
};

/// Changes a few bytes of `f`: on tile borders, in the last partial tile, alpha-only, random.
fn perturb(f: &mut FrameBuffer, tile: u32, rng: &mut Rng) {
    let (w, h) = (f.width(), f.height());
    let mut spots = vec![(w - 1, h - 1, 0usize), (rng.below(w), rng.below(h), 3)];
    for _ in 0..3 {
        let tx = rng.below(w.div_ceil(tile)) * tile;
        let ty = rng.below(h.div_ceil(tile)) * tile;
        spots.push((
            (tx + tile - 1).min(w - 1),
            ty.min(h - 1),
            rng.below(4) as usize,
        ));
        spots.push((
            tx.min(w - 1),
            (ty + tile - 1).min(h - 1),
            rng.below(4) as usize,
        ));
    }
    for _ in 0..rng.below(4) {
        spots.push((rng.below(w), rng.below(h), 3)); // alpha (or padding) only
    }
    for (x, y, byte) in spots {
        let i = (y as usize * w as usize + x as usize) * 4 + byte;
        f.pixels_mut()[i] ^= 1 << rng.below(8);
    }
}

fn random_hints(w: u32, h: u32, rng: &mut Rng) -> Vec<Rect> {
    (0..1 + rng.below(4))
        .map(|_| {
            Rect::new(
                rng.below(w),
                rng.below(h),
                1 + rng.below(w / 2 + 1),
                1 + rng.below(h / 2 + 1),
            )
        })
        .collect()
}

fn cpu_mask(
    grid: &TileGrid,
    a: &CpuFrame<'_>,
    b: &CpuFrame<'_>,
    hints: Option<&[Rect]>,
) -> DirtyMask {
    CpuDiff::single_threaded().diff(grid, a, b, hints).unwrap()
}

#[test]
fn gpu_mask_equals_cpu_mask_on_random_frame_pairs() {
    let Some(ctx) = gpu() else { return };
    let mut gpu_diff = GpuDiff::new(&ctx);
    let mut rng = Rng(0x07E5_5E7A);
    let sizes = [(1921, 1079), (257, 129), (64, 64), (1, 1), (300, 17)];
    let mut cases = 0;
    for (i, &(w, h)) in sizes.iter().enumerate() {
        for tile in [16, 64, 128] {
            for with_hints in [false, true] {
                let format = PixelFormat::ALL[(i + tile as usize / 16) % 4];
                let a = noise(w, h, format, &mut rng);
                let mut b = a.clone();
                perturb(&mut b, tile, &mut rng);
                let pad = [0usize, 12, 256][rng.below(3) as usize];
                let stride = w as usize * 4 + pad;
                let (pa, pb) = (padded(&a, stride, 0xAA), padded(&b, stride, 0x55));
                let fa = CpuFrame::new(w, h, stride, format, &pa).unwrap();
                let fb = CpuFrame::new(w, h, stride, format, &pb).unwrap();
                let grid = TileGrid::new(w, h, tile).unwrap();
                let hints = with_hints.then(|| random_hints(w, h, &mut rng));

                gpu_diff.reset();
                let first = gpu_diff
                    .diff(Frame::Cpu(fa), &grid, hints.as_deref())
                    .unwrap();
                assert!(first.all(), "the first frame is all dirty");
                let got = gpu_diff
                    .diff(Frame::Cpu(fb), &grid, hints.as_deref())
                    .unwrap();
                let want = cpu_mask(&grid, &fa, &fb, hints.as_deref());
                assert_eq!(
                    got, want,
                    "{w}x{h} tile {tile} {format:?} stride {stride} hints {hints:?}"
                );
                // And back: the GPU kept `b` as the previous frame.
                let back = gpu_diff
                    .diff(Frame::Cpu(fa), &grid, hints.as_deref())
                    .unwrap();
                assert_eq!(back, want);
                cases += 1;
            }
        }
    }
    assert_eq!(cases, sizes.len() * 6);
}

#[test]
fn frames_already_on_the_gpu_are_diffed_in_place() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng(42);
    let (w, h) = (777, 333);
    for format in [PixelFormat::Bgra8, PixelFormat::Rgbx8] {
        let grid = TileGrid::new(w, h, 32).unwrap();
        let a = noise(w, h, format, &mut rng);
        let mut b = a.clone();
        perturb(&mut b, 32, &mut rng);
        let (ta, tb) = (
            ctx.create_frame_texture(&a.as_frame()),
            ctx.create_frame_texture(&b.as_frame()),
        );
        let mut d = GpuDiff::new(&ctx);
        assert!(d
            .diff(
                Frame::Gpu(GpuFrame {
                    texture: &ta,
                    format
                }),
                &grid,
                None
            )
            .unwrap()
            .all());
        let got = d
            .diff(
                Frame::Gpu(GpuFrame {
                    texture: &tb,
                    format,
                }),
                &grid,
                None,
            )
            .unwrap();
        assert_eq!(got, cpu_mask(&grid, &a.as_frame(), &b.as_frame(), None));
        // The previous frame was copied on the GPU: overwriting the caller's texture does not
        // change what the next diff compares against.
        ctx.write_frame(&tb, &a.as_frame());
        let again = d.diff(Frame::Cpu(b.as_frame()), &grid, None).unwrap();
        assert!(again.none(), "previous frame must be b");
        // CPU and GPU frames mix freely.
        let mixed = d
            .diff(
                Frame::Gpu(GpuFrame {
                    texture: &ta,
                    format,
                }),
                &grid,
                None,
            )
            .unwrap();
        assert_eq!(mixed, cpu_mask(&grid, &b.as_frame(), &a.as_frame(), None));
    }
}

#[test]
fn unusable_textures_are_refused() {
    let Some(ctx) = gpu() else { return };
    let texture = ctx.device.create_texture(&wgpu::TextureDescriptor {
        label: None,
        size: wgpu::Extent3d {
            width: 64,
            height: 64,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::TEXTURE_BINDING,
        view_formats: &[],
    });
    let grid = TileGrid::new(64, 64, 16).unwrap();
    let mut d = GpuDiff::new(&ctx);
    let frame = Frame::Gpu(GpuFrame {
        texture: &texture,
        format: PixelFormat::Rgba8,
    });
    let err = d.diff(frame, &grid, None).unwrap_err();
    assert!(err.to_string().contains("COPY_SRC"), "{err}");
    let wrong_format = Frame::Gpu(GpuFrame {
        texture: &texture,
        format: PixelFormat::Bgra8,
    });
    assert!(d.diff(wrong_format, &grid, None).is_err());
}

#[test]
fn hinted_dispatch_beyond_one_grid_dimension() {
    // 4096x4096 in 16-pixel tiles is 65,536 tiles: more workgroups than one dispatch dimension
    // allows, so the hinted path must spill into a second dimension.
    let Some(ctx) = gpu() else { return };
    let (w, h) = (4096, 4096);
    let grid = TileGrid::new(w, h, 16).unwrap();
    let a = FrameBuffer::new(w, h, PixelFormat::Rgba8).unwrap();
    let mut b = a.clone();
    let last = b.pixels().len() - 1;
    b.pixels_mut()[last] = 1; // the very last tile, index 65535
    b.pixels_mut()[0] = 1;
    let mut d = GpuDiff::new(&ctx);
    let hints = [Rect::new(0, 0, w, h)];
    d.diff(Frame::Cpu(a.as_frame()), &grid, Some(&hints))
        .unwrap();
    let got = d
        .diff(Frame::Cpu(b.as_frame()), &grid, Some(&hints))
        .unwrap();
    assert_eq!(got.iter().collect::<Vec<_>>(), vec![0, 65_535]);
}

#[test]
fn hints_that_touch_nothing_report_nothing() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng(9);
    let a = noise(100, 100, PixelFormat::Bgra8, &mut rng);
    let b = noise(100, 100, PixelFormat::Bgra8, &mut rng);
    let grid = TileGrid::new(100, 100, 16).unwrap();
    let mut d = GpuDiff::new(&ctx);
    d.diff(Frame::Cpu(a.as_frame()), &grid, None).unwrap();
    let outside = [Rect::new(500, 500, 10, 10)];
    assert!(d
        .diff(Frame::Cpu(b.as_frame()), &grid, Some(&outside))
        .unwrap()
        .none());
    // `b` is now the previous frame even though nothing was compared.
    assert!(d
        .diff(Frame::Cpu(b.as_frame()), &grid, None)
        .unwrap()
        .none());
}

#[test]
fn auto_backend_follows_the_adapter() {
    let Some(ctx) = gpu() else { return };
    let (differ, choice, shared) = FrameDiffer::open(BackendRequest::Auto, FramesIn::Gpu).unwrap();
    let adapter = choice.adapter.clone().expect("an adapter was found");
    assert_eq!(adapter, *ctx.adapter());
    let expected = if adapter.software {
        DiffBackend::Cpu
    } else {
        DiffBackend::Gpu
    };
    assert_eq!(choice.backend, expected, "{choice}");
    assert_eq!(differ.backend(), expected);
    assert_eq!(shared.is_some(), expected == DiffBackend::Gpu);
    let (forced, choice, _) = FrameDiffer::open(BackendRequest::Gpu, FramesIn::Cpu).unwrap();
    assert_eq!(
        (forced.backend(), choice.backend),
        (DiffBackend::Gpu, DiffBackend::Gpu)
    );
    let (cpu, choice, _) = FrameDiffer::open(BackendRequest::Cpu, FramesIn::Gpu).unwrap();
    assert_eq!((cpu.backend(), choice.adapter), (DiffBackend::Cpu, None));
    // Frames in CPU memory stay on the CPU under `auto`, and no GPU is opened for them.
    let (cpu, choice, shared) = FrameDiffer::open(BackendRequest::Auto, FramesIn::Cpu).unwrap();
    assert_eq!((cpu.backend(), choice.adapter), (DiffBackend::Cpu, None));
    assert!(shared.is_none());
}
