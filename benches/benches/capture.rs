//! Real X11 capture on a private Xvfb 1920x1080 with real clients (xterm, xclock): how many
//! frames a second the capture gives alone and with the sender's per-frame work behind it
//! (hinted diff, checksum-free encode), and how often the XDamage hints let the diff skip at
//! least 90% of the tiles while someone types or drags a window. Then PipeWire: a private
//! daemon fed by the repository's 1920x1080 test source at 60 fps (a moving square, with damage
//! metadata), captured at 60 grabs a second: the share of the source's frames that arrive, and
//! how much of each frame the damage hints.
//!
//! `cargo bench -p tessera-benches --bench capture` prints the tables for BENCHMARKS.md. Under
//! `cargo test --benches` it runs each part briefly to prove it works.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_engine::{
    system_tests_required, DiffBackend, Frame, FrameDiffer, TileEncoder, TileGrid,
};
use tessera_platform::pipewire::PipeWireCapture;
use tessera_platform::pipewire_test_source::{PipeWireDaemon, TestSource};
use tessera_platform::x11::X11Capture;
use tessera_platform::xvfb::{run_on, Xvfb};
use tessera_platform::Capture;

const W: u32 = 1920;
const H: u32 = 1080;

/// What follows each grab.
#[derive(Clone, Copy, PartialEq)]
enum Consumer {
    None,
    /// Diff narrowed by the hints, then encode.
    Hinted,
    /// Diff of every tile (no hints), then encode.
    Full,
}

/// Frames a second of `grab` followed by `consumer`, and dirty tiles a frame.
fn capture_rate(display: &str, seconds: f64, consumer: Consumer) -> (f64, f64) {
    let mut capture = X11Capture::open(Some(display)).unwrap();
    let grid = TileGrid::new(W, H, 64).unwrap();
    // The sender's differ: it keeps the previous frame and refreshes only the dirty tiles.
    let mut differ = FrameDiffer::new(DiffBackend::Cpu, None).unwrap();
    let encoder = TileEncoder::default();
    capture.grab().unwrap();
    differ
        .diff(Frame::Cpu(capture.frame()), &grid, None)
        .unwrap();
    let mut out = Vec::new();
    let (mut frames, mut dirty) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        capture.grab().unwrap();
        frames += 1;
        if consumer != Consumer::None {
            let frame = capture.frame();
            let hints = capture.damage().filter(|_| consumer == Consumer::Hinted);
            let mask = differ.diff(Frame::Cpu(frame), &grid, hints).unwrap();
            dirty += mask.count() as u64;
            out.clear();
            encoder
                .encode_delta(&frame, &grid, &mask, None, frames, &mut out)
                .unwrap();
        }
    }
    let fps = frames as f64 / start.elapsed().as_secs_f64();
    (fps, dirty as f64 / frames.max(1) as f64)
}

/// Grabs at 60 fps for `seconds` while `act` runs on the display; returns the share of frames
/// whose hints cover at most 10% of the tiles, and the mean share of tiles hinted.
fn damage_skip(
    display: &str,
    seconds: f64,
    mut act: impl FnMut(&str) + Send + 'static,
) -> (f64, f64) {
    let mut capture = X11Capture::open(Some(display)).unwrap();
    let grid = TileGrid::new(W, H, 64).unwrap();
    capture.grab().unwrap();
    let running = Arc::new(AtomicBool::new(true));
    let actor = {
        let (running, display) = (running.clone(), display.to_string());
        std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                act(&display);
            }
        })
    };
    let (frames, skipping, hinted) = grab_hinted(&mut capture, &grid, seconds);
    running.store(false, Ordering::Relaxed);
    actor.join().unwrap();
    (skipping as f64 / frames as f64, hinted / frames as f64)
}

/// Grabs at 60 a second for `seconds`; returns the grabs, those whose hints cover at most 10%
/// of the tiles, and the sum over grabs of the share of tiles hinted.
fn grab_hinted(capture: &mut dyn Capture, grid: &TileGrid, seconds: f64) -> (u64, u64, f64) {
    let (mut grabs, mut skipping, mut hinted) = (0u64, 0u64, 0.0f64);
    let start = Instant::now();
    let mut due = start;
    while start.elapsed().as_secs_f64() < seconds {
        due += Duration::from_secs_f64(1.0 / 60.0);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        capture.grab().unwrap();
        let tiles = match capture.damage() {
            Some(rects) => grid.tiles_touching(rects).count(),
            None => grid.tile_count(),
        };
        let share = tiles as f64 / grid.tile_count() as f64;
        grabs += 1;
        hinted += share;
        skipping += u64::from(share <= 0.10);
    }
    (grabs, skipping, hinted)
}

/// PipeWire: grabs at 60 a second for `seconds` from a 1920x1080 test source; returns the
/// share of the source's frames received, the share of grabs whose hints cover at most 10% of
/// the tiles, and the mean share of tiles hinted. `None` without a PipeWire daemon.
fn pipewire_rates(seconds: f64) -> Option<(f64, f64, f64)> {
    let daemon = PipeWireDaemon::start()?;
    // This bench is one process and one thread here: its PipeWire clients find the daemon.
    std::env::set_var("PIPEWIRE_RUNTIME_DIR", daemon.runtime_dir());
    let source = TestSource::start(W, H).unwrap();
    let mut capture = PipeWireCapture::open(source.node()).unwrap();
    let grid = TileGrid::new(W, H, 64).unwrap();
    let (published0, received0) = (source.published(), capture.frames_received());
    let (grabs, skipping, hinted) = grab_hinted(&mut capture, &grid, seconds);
    let published = source.published() - published0;
    let received = capture.frames_received() - received0;
    assert_eq!(capture.bad_buffers(), 0);
    Some((
        received as f64 / published.max(1) as f64,
        skipping as f64 / grabs as f64,
        hinted / grabs as f64,
    ))
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let seconds = if bench { 5.0 } else { 0.5 };
    // First, while this process has one thread: PipeWire clients read the daemon's place from
    // the environment.
    let pipewire = pipewire_rates(seconds);
    let Some(mut x) = Xvfb::start(W, H) else {
        assert!(!system_tests_required(), "Xvfb is required here");
        println!("capture: NOT RUN: no Xvfb");
        return;
    };
    x.client("xterm", &["-geometry", "80x24+100+100"]);
    x.client("xclock", &["-geometry", "300x300+900+200", "-update", "1"]);
    std::thread::sleep(Duration::from_millis(1500));

    let (alone, _) = capture_rate(&x.display, seconds, Consumer::None);
    let (hinted, dirty) = capture_rate(&x.display, seconds, Consumer::Hinted);
    let (full, _) = capture_rate(&x.display, seconds, Consumer::Full);
    let typing = damage_skip(&x.display, seconds, |d| {
        run_on(
            d,
            "xdotool",
            &[
                "search",
                "--class",
                "xterm",
                "windowfocus",
                "type",
                "--delay",
                "66",
                "hello tessera ",
            ],
        );
    });
    let mut flip = false;
    let dragging = damage_skip(&x.display, seconds, move |d| {
        flip = !flip;
        let (px, py) = if flip { ("150", "150") } else { ("160", "152") };
        run_on(
            d,
            "xdotool",
            &["search", "--class", "xclock", "windowmove", px, py],
        );
        std::thread::sleep(Duration::from_millis(33));
    });
    if !bench {
        assert!(alone > 0.0 && hinted > 0.0 && full > 0.0);
        if let Some((received, ..)) = pipewire {
            assert!(received > 0.0, "no PipeWire frame arrived");
        }
        println!(
            "capture: test run ok ({alone:.0} fps alone, {full:.0} with a full diff+encode, typing {:.0}% skip)",
            typing.0 * 100.0
        );
        return;
    }
    println!(
        "\n## X11 capture (Xvfb {W}x{H}x24, xterm + xclock)\n\nMachine: {}. {seconds} s a row.\n",
        tessera_benches::machine()
    );
    println!("| what follows each grab | frames/s | / grab alone |\n|---|---|---|");
    println!("| nothing (MIT-SHM grab, XDamage fetch, pointer drawn) | {alone:.0} | 1.00 |");
    println!(
        "| hinted CPU diff + encode of the dirty tiles ({dirty:.2} dirty a frame: a still desktop, xclock ticking once a second) | {hinted:.0} | {:.2} |",
        hinted / alone
    );
    println!(
        "| full CPU diff of all 510 tiles + encode | {full:.0} | {:.2} |",
        full / alone
    );
    println!("\n| workload (60 grabs a second) | frames where hints skip >= 90% of tiles | tiles hinted, mean |\n|---|---|---|");
    println!(
        "| typing into an xterm, ~15 chars/s | {:.1}% | {:.2}% |",
        typing.0 * 100.0,
        typing.1 * 100.0
    );
    println!(
        "| dragging a 300x300 window ~30 times/s | {:.1}% | {:.2}% |",
        dragging.0 * 100.0,
        dragging.1 * 100.0
    );
    if let Some((received, skipping, hinted)) = pipewire {
        println!("\n## PipeWire capture (private daemon, the repository's {W}x{H} BGRx test source at 60 fps)\n\n| source frames received | grabs (60 a second) where hints skip >= 90% of tiles | tiles hinted, mean |\n|---|---|---|");
        println!(
            "| {:.1}% | {:.1}% | {:.2}% |",
            received * 100.0,
            skipping * 100.0,
            hinted * 100.0
        );
    }
}
