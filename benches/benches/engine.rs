//! Diff and codec throughput, with the memory-bandwidth yardsticks measured in the same run.
//!
//! `cargo bench -p tessera-benches` runs criterion as usual and then prints a markdown table of
//! medians and ratios (diff time / flat memcmp time of the same two frames), which is what
//! BENCHMARKS.md records. Ratios from one run are what to compare: the machines are shared.

use criterion::Criterion;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tessera_engine::{
    detect_copy, parse_update, stream::FrameChecksum, CpuCompositor, CpuDiff, DecodeLimits,
    DecodedTiles, DirtyMask, Frame, FrameBuffer, GpuContext, GpuDiff, GpuFrame, PixelFormat, Scene,
    SolidTiles, SyntheticSource, TileEncoder, TileGrid,
};

const TILE: u32 = 64;
const RESOLUTIONS: [(&str, u32, u32); 2] = [("1080p", 1920, 1080), ("4K", 3840, 2160)];
const DIRTY_PERCENT: [u32; 4] = [0, 1, 10, 100];
/// Criterion samples a bench; the table reports their median.
const SAMPLE_SIZE: usize = 20;

/// Seconds per iteration of each bench, one entry per criterion sample.
static SAMPLES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

/// Benchmarks `f` under `id`, recording each sample's time per iteration.
fn measure(c: &mut Criterion, id: &str, mut f: impl FnMut()) {
    c.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            let elapsed = start.elapsed();
            SAMPLES
                .lock()
                .unwrap()
                .entry(id.to_string())
                .or_default()
                .push(elapsed.as_secs_f64() / iters as f64);
            elapsed
        })
    });
}

fn median(id: &str) -> Option<f64> {
    let samples = SAMPLES.lock().unwrap();
    let mut v = samples.get(id)?.clone();
    // The last SAMPLE_SIZE entries are criterion's measured samples; earlier ones its warm-up.
    let keep = v.len().min(SAMPLE_SIZE);
    v.drain(..v.len() - keep);
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// A desktop frame and a copy with `percent` of its tiles changed (one pixel in each
/// tile's middle, tiles spread evenly).
fn frame_pair(w: u32, h: u32, percent: u32) -> (FrameBuffer, FrameBuffer) {
    let a = SyntheticSource::new(Scene::Typing, w, h, PixelFormat::Bgra8)
        .unwrap()
        .frame_buffer()
        .clone();
    changed_copy(a, percent)
}

/// A terminal's frame: a white page with lines of dark marks in its left tenth (where a
/// terminal's short lines are), and a copy with `percent` of its tiles changed as in
/// [`frame_pair`].
fn terminal_pair(w: u32, h: u32, percent: u32) -> (FrameBuffer, FrameBuffer) {
    let mut a = FrameBuffer::new(w, h, PixelFormat::Bgra8).unwrap();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for (y, row) in a.pixels_mut().chunks_exact_mut(w as usize * 4).enumerate() {
        row.fill(0xFF);
        if y % 16 < 12 {
            for px in row[..(w / 10) as usize * 4].chunks_exact_mut(4) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if state.is_multiple_of(3) {
                    px[..3].fill(0x20);
                }
            }
        }
    }
    changed_copy(a, percent)
}

/// `a` and a copy of it with `percent` of its tiles changed.
fn changed_copy(a: FrameBuffer, percent: u32) -> (FrameBuffer, FrameBuffer) {
    let (w, h) = (a.width(), a.height());
    let mut b = a.clone();
    let grid = TileGrid::new(w, h, TILE).unwrap();
    let n = grid.tile_count();
    let dirty = (n * percent as usize).div_ceil(100);
    for k in 0..dirty {
        let r = grid.tile_rect(k * n / dirty.max(1));
        let (x, y) = (r.x + r.width / 2, r.y + r.height / 2);
        b.pixels_mut()[(y as usize * w as usize + x as usize) * 4] ^= 0x5A;
    }
    (a, b)
}

fn yardsticks(c: &mut Criterion) {
    for (name, w, h) in RESOLUTIONS {
        let (a, b) = frame_pair(w, h, 0);
        measure(c, &format!("{name}/memcmp"), || {
            black_box(black_box(a.pixels()) == black_box(b.pixels()));
        });
        let mut dst = vec![0u8; a.pixels().len()];
        measure(c, &format!("{name}/copy"), || {
            dst.copy_from_slice(black_box(a.pixels()));
            black_box(&dst);
        });
    }
}

fn diffs(c: &mut Criterion, gpu: Option<&GpuContext>) {
    for (name, w, h) in RESOLUTIONS {
        let grid = TileGrid::new(w, h, TILE).unwrap();
        for pct in DIRTY_PERCENT {
            let (a, b) = frame_pair(w, h, pct);
            let (fa, fb) = (a.as_frame(), b.as_frame());
            for (label, diff) in [
                ("cpu-1t", CpuDiff::single_threaded()),
                ("cpu-all", CpuDiff::multi_threaded()),
            ] {
                measure(c, &format!("{name}/diff/{label}/{pct}%"), || {
                    black_box(diff.diff(&grid, &fa, &fb, None).unwrap());
                });
            }
            // Told which tiles of the previous frame are one colour, as the sender tells it: on
            // the desktop, and on a terminal's mostly blank page.
            let diff = CpuDiff::single_threaded();
            let (ta, tb) = terminal_pair(w, h, pct);
            for (label, a, b) in [
                ("cpu-1t-solids", &a, &b),
                ("terminal/cpu-1t-solids", &ta, &tb),
            ] {
                let (fa, fb) = (a.as_frame(), b.as_frame());
                let solids = SolidTiles::of(&fa, &grid).unwrap();
                measure(c, &format!("{name}/diff/{label}/{pct}%"), || {
                    let m = diff.diff_with_solids(&grid, &fa, Some(&solids), &fb, None);
                    black_box(m.unwrap());
                });
            }
            let (tfa, tfb) = (ta.as_frame(), tb.as_frame());
            measure(c, &format!("{name}/diff/terminal/cpu-1t/{pct}%"), || {
                black_box(diff.diff(&grid, &tfa, &tfb, None).unwrap());
            });
            let Some(ctx) = gpu else { continue };
            // Frames from CPU memory: upload, compare, read back the mask.
            let mut d = GpuDiff::new(ctx);
            let frames = [Frame::Cpu(fa), Frame::Cpu(fb)];
            let mut i = 0;
            measure(c, &format!("{name}/diff/gpu-upload/{pct}%"), || {
                i ^= 1;
                black_box(d.diff(frames[i], &grid, None).unwrap());
            });
            // Frames already on the GPU (capture textures): compare, copy to previous, mask back.
            let (ta, tb) = (ctx.create_frame_texture(&fa), ctx.create_frame_texture(&fb));
            let frames = [
                Frame::Gpu(GpuFrame {
                    texture: &ta,
                    format: a.format(),
                }),
                Frame::Gpu(GpuFrame {
                    texture: &tb,
                    format: b.format(),
                }),
            ];
            let mut d = GpuDiff::new(ctx);
            measure(c, &format!("{name}/diff/gpu-resident/{pct}%"), || {
                i ^= 1;
                black_box(d.diff(frames[i], &grid, None).unwrap());
            });
        }
    }
}

/// A terminal 1000x700 pixels at the top left of a white 1080p screen: lines 16 pixels high
/// of dark marks, each line of its own length up to 60 columns of 8 pixels, starting with
/// line `first`.
fn terminal_page(first: u32) -> FrameBuffer {
    let (w, h) = (1920u32, 1080u32);
    let mut f = FrameBuffer::new(w, h, PixelFormat::Bgra8).unwrap();
    f.pixels_mut().fill(0xFF);
    let row_bytes = w as usize * 4;
    for (y, row) in f
        .pixels_mut()
        .chunks_exact_mut(row_bytes)
        .take(700)
        .enumerate()
    {
        let line = first + y as u32 / 16;
        let columns = line.wrapping_mul(2_654_435_761) % 61;
        if y % 16 >= 12 {
            continue;
        }
        for x in 0..(columns * 8).min(1000) as usize {
            if (x as u32 ^ line.wrapping_mul(31) ^ (y % 16) as u32).is_multiple_of(3) {
                row[x * 4..x * 4 + 3].fill(0x20);
            }
        }
    }
    f
}

/// The scroll and move searches on their own, on a terminal scrolled by three lines and on the
/// synthetic dragged window.
fn searches(c: &mut Criterion) {
    let grid = TileGrid::new(1920, 1080, TILE).unwrap();
    let mut drag = SyntheticSource::new(Scene::Dragging, 1920, 1080, PixelFormat::Bgra8).unwrap();
    for _ in 0..5 {
        drag.advance();
    }
    let dragged_from = drag.frame_buffer().clone();
    drag.advance();
    for (label, a, b) in [
        ("scroll", terminal_page(0), terminal_page(3)),
        ("move", dragged_from, drag.frame_buffer().clone()),
    ] {
        let (fa, fb) = (a.as_frame(), b.as_frame());
        let mask = CpuDiff::single_threaded()
            .diff(&grid, &fa, &fb, None)
            .unwrap();
        let found = detect_copy(&fa, &fb, &grid, &mask);
        assert!(found.is_some(), "the {label} is found");
        measure(c, &format!("1080p/search/{label}"), || {
            black_box(detect_copy(&fa, &fb, &grid, black_box(&mask)));
        });
        SEARCHED
            .lock()
            .unwrap()
            .insert(label.to_string(), (mask.count(), found.map(|c| c.src)));
    }
}

/// Per search: the dirty tiles it was given, and the source rectangle it found.
static SEARCHED: Mutex<BTreeMap<String, (usize, Option<tessera_engine::Rect>)>> =
    Mutex::new(BTreeMap::new());

fn codec(c: &mut Criterion) {
    let (w, h) = (1920, 1080);
    let grid = TileGrid::new(w, h, TILE).unwrap();
    let desktop = SyntheticSource::new(Scene::Scrolling, w, h, PixelFormat::Bgra8)
        .unwrap()
        .frame_buffer()
        .clone();
    let mut noise = FrameBuffer::new(w, h, PixelFormat::Bgra8).unwrap();
    let mut state = 0x1234_5678_9ABC_DEF0u64;
    for chunk in noise.pixels_mut().chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    // The frame checksum of an update's dirty tiles, as the sender takes it: an X11 frame (no
    // alpha, so every pixel's padding byte is made canonical before hashing), one thread.
    let opaque =
        FrameBuffer::from_pixels(w, h, PixelFormat::Bgrx8, desktop.pixels().to_vec()).unwrap();
    let mut dirty = DirtyMask::new(grid.tile_count());
    for t in 0..CHECKSUM_TILES {
        dirty.set(t);
    }
    let mut sum = FrameChecksum::new(grid);
    measure(c, "1080p/checksum", || {
        sum.update_from_frame(&black_box(&opaque).as_frame(), &dirty);
        black_box(sum.value());
    });
    for (content, frame) in [("desktop", &desktop), ("noise", &noise)] {
        let enc = TileEncoder::default();
        let mut msg = Vec::new();
        measure(c, &format!("1080p/encode/{content}"), || {
            black_box(
                {
                    msg.clear();
                    enc.encode_keyframe(&frame.as_frame(), &grid, 0, &mut msg)
                }
                .unwrap(),
            );
        });
        {
            msg.clear();
            enc.encode_keyframe(&frame.as_frame(), &grid, 0, &mut msg)
        }
        .unwrap();
        SIZES.lock().unwrap().insert(content.to_string(), msg.len());
        let mut decoded = DecodedTiles::new();
        measure(c, &format!("1080p/decode/{content}"), || {
            let u = parse_update(black_box(&msg), &DecodeLimits::default()).unwrap();
            decoded.decode(&u, None, None).unwrap();
        });
        let mut comp = CpuCompositor::new(DecodeLimits::default());
        measure(c, &format!("1080p/apply/{content}"), || {
            comp.apply(black_box(&msg)).unwrap();
        });
    }
}

/// Tiles the checksum bench hashes: fewer than the checksum hashes on several threads.
const CHECKSUM_TILES: usize = 200;

/// Encoded keyframe bytes by content.
static SIZES: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn print_table(gpu: &str) {
    let ms = |s: f64| format!("{:.3}", s * 1e3);
    println!("\n## Tessera engine benchmarks\n\nMachine: {}. GPU adapter: {gpu}. Tile {TILE}x{TILE}, BGRA8, desktop-like frames; medians of criterion samples.\n", tessera_benches::machine());
    for (name, w, h) in RESOLUTIONS {
        let Some(memcmp) = median(&format!("{name}/memcmp")) else {
            continue;
        };
        let copy = median(&format!("{name}/copy")).unwrap_or(f64::NAN);
        let bytes = f64::from(w) * f64::from(h) * 4.0;
        println!("### Diff, {name} ({w}x{h})\n");
        println!("Yardsticks: flat memcmp of the two frames {} ms ({:.1} GB/s of both frames read), one frame copy {} ms.\n", ms(memcmp), 2.0 * bytes / memcmp / 1e9, ms(copy));
        let grid = TileGrid::new(w, h, TILE).unwrap();
        let solid = |a: FrameBuffer| SolidTiles::of(&a.as_frame(), &grid).unwrap().count();
        let (desktop, terminal) = (
            solid(frame_pair(w, h, 0).0),
            solid(terminal_pair(w, h, 0).0),
        );
        println!("`cpu-1t-solids`: `cpu-1t` told which tiles of the previous frame are one colour ({desktop} of {} here). `terminal/`: a terminal's frame instead, a white page with marks in its left tenth ({terminal} tiles of one colour).\n", grid.tile_count());
        println!("| diff | dirty tiles | ms | / memcmp | / copy |");
        println!("|---|---|---|---|---|");
        for label in [
            "cpu-1t",
            "cpu-1t-solids",
            "terminal/cpu-1t",
            "terminal/cpu-1t-solids",
            "cpu-all",
            "gpu-upload",
            "gpu-resident",
        ] {
            for pct in DIRTY_PERCENT {
                if let Some(t) = median(&format!("{name}/diff/{label}/{pct}%")) {
                    println!(
                        "| {label} | {pct}% | {} | {:.2} | {:.2} |",
                        ms(t),
                        t / memcmp,
                        t / copy
                    );
                }
            }
        }
        println!();
    }
    if let Some(memcmp) = median("1080p/memcmp") {
        println!("### Copy search, 1080p\n");
        println!("`detect_copy` on its own: `scroll`, a 1000x700 terminal scrolled by three lines; `move`, the synthetic dragged window. `/ memcmp`: over the flat memcmp of two whole frames.\n");
        println!("| search | dirty tiles | found | ms | / memcmp |");
        println!("|---|---|---|---|---|");
        for (label, (tiles, found)) in SEARCHED.lock().unwrap().iter() {
            if let Some(t) = median(&format!("1080p/search/{label}")) {
                let found = found.map_or("nothing".into(), |r| {
                    format!("{}x{} at ({}, {})", r.width, r.height, r.x, r.y)
                });
                println!(
                    "| {label} | {tiles} | {found} | {} | {:.2} |",
                    ms(t),
                    t / memcmp
                );
            }
        }
        println!();
    }
    if let (Some(sum), Some(copy)) = (median("1080p/checksum"), median("1080p/copy")) {
        let share =
            CHECKSUM_TILES as f64 / TileGrid::new(1920, 1080, TILE).unwrap().tile_count() as f64;
        println!("### Frame checksum, 1080p\n");
        println!("`FrameChecksum::update_from_frame` of {CHECKSUM_TILES} tiles of an opaque (BGRX) frame on one thread: {} ms, {:.2}x the time of copying as many bytes (the `copy` yardstick scaled to them).\n", ms(sum), sum / (copy * share));
    }
    println!(
        "### Tile codec, 1080p keyframe (all {} tiles)\n",
        TileGrid::new(1920, 1080, TILE).unwrap().tile_count()
    );
    println!("| content | encoded size | encode ms | encode GB/s | decode ms | decode GB/s | apply (decode + composite) GB/s |");
    println!("|---|---|---|---|---|---|---|");
    let bytes = 1920.0 * 1080.0 * 4.0;
    for content in ["desktop", "noise"] {
        let (Some(e), Some(d), Some(a)) = (
            median(&format!("1080p/encode/{content}")),
            median(&format!("1080p/decode/{content}")),
            median(&format!("1080p/apply/{content}")),
        ) else {
            continue;
        };
        let size = SIZES.lock().unwrap().get(content).copied().unwrap_or(0);
        println!(
            "| {content} | {:.1}% | {} | {:.2} | {} | {:.2} | {:.2} |",
            100.0 * size as f64 / bytes,
            ms(e),
            bytes / e / 1e9,
            ms(d),
            bytes / d / 1e9,
            bytes / a / 1e9
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let gpu = match GpuContext::new() {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            eprintln!("no GPU adapter, GPU rows skipped: {e}");
            None
        }
    };
    let adapter = gpu
        .as_ref()
        .map_or("none".to_string(), |g| g.adapter().to_string());
    yardsticks(&mut c);
    diffs(&mut c, gpu.as_ref());
    searches(&mut c);
    codec(&mut c);
    c.final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` runs each bench once, without it.
    if std::env::args().any(|a| a == "--bench") && !std::env::args().any(|a| a == "--list") {
        print_table(&adapter);
    }
}
