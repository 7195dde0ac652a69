//! X11 capture against a real X server (Xvfb) with real clients: the captured frame equals what
//! `xwd` reads from the server, and XDamage hints cover what changed.
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_engine::{CpuDiff, FrameBuffer, Rect, TileGrid};
use tessera_platform::x11::{WindowSelector, X11Capture};
use tessera_platform::xvfb::{xdotool_on_class, Xvfb};
use tessera_platform::Capture;

fn canonical(f: &tessera_engine::CpuFrame<'_>) -> FrameBuffer {
    FrameBuffer::from_frame(f).canonical()
}

#[test]
fn captures_what_the_server_shows_and_damage_covers_changes() {
    let Some(mut x) = Xvfb::start(640, 480) else {
        return;
    };
    x.client(
        "xterm",
        &[
            "-geometry",
            "40x8+10+10",
            "-e",
            "sh",
            "-c",
            "echo hello tessera; sleep 120",
        ],
    );
    x.client(
        "xclock",
        &["-geometry", "120x120+400+40", "-update", "3600"],
    );
    std::thread::sleep(Duration::from_millis(1500));

    let mut stray = X11Capture::open(Some(&x.display)).unwrap();
    let missing = stray
        .follow(&WindowSelector::Title("no such window".into()))
        .unwrap_err();
    assert!(missing.to_string().contains("no such window"), "{missing}");
    let mut capture = X11Capture::open(Some(&x.display)).unwrap();
    // xwd leaves the pointer out; so does this capture.
    assert!(capture.set_cursor(false));
    assert!(capture.describe().contains("640x480"));
    capture.grab().unwrap();
    let first = canonical(&capture.frame());
    let server = x.xwd().canonical();
    assert_eq!((server.width(), server.height()), (640, 480));
    assert!(
        first == server,
        "captured frame differs from xwd's picture of the same still screen"
    );
    assert!(
        first.pixels().chunks(4).any(|p| p[..3] != [0, 0, 0]),
        "the clients drew something"
    );

    // Move the clock: the damage must cover every changed pixel.
    assert!(xdotool_on_class(
        &x.display,
        "xclock",
        &["windowmove", "--sync", "200", "300"]
    ));
    std::thread::sleep(Duration::from_millis(300));
    capture.grab().unwrap();
    let hints = capture.damage().unwrap().to_vec();
    assert!(!hints.is_empty(), "a moved window is damage");
    let second = capture.frame();
    let grid = TileGrid::new(640, 480, 32).unwrap();
    let diff = CpuDiff::single_threaded();
    let everything = diff.diff(&grid, &first.as_frame(), &second, None).unwrap();
    let hinted = diff
        .diff(&grid, &first.as_frame(), &second, Some(&hints))
        .unwrap();
    assert!(everything.count() > 0, "the window moved");
    assert_eq!(hinted, everything, "the hints cover every changed tile");

    // Nothing changes: no damage, and the frame is the same.
    std::thread::sleep(Duration::from_millis(200));
    let before = canonical(&capture.frame());
    capture.grab().unwrap();
    assert!(
        capture.damage().unwrap().is_empty(),
        "no damage on a still screen: {:?}",
        capture.damage()
    );
    assert!(canonical(&capture.frame()) == before);
}

/// Pixels where `a` and `b` differ, as the rectangle around them (x0, y0, x1, y1), if any.
fn differing_box(a: &FrameBuffer, b: &FrameBuffer) -> Option<(u32, u32, u32, u32)> {
    let mut found: Option<(u32, u32, u32, u32)> = None;
    for y in 0..a.height() {
        for x in 0..a.width() {
            let at = y as usize * a.stride() + x as usize * 4;
            if a.pixels()[at..at + 3] != b.pixels()[at..at + 3] {
                let f = found.get_or_insert((x, y, x, y));
                *f = (f.0.min(x), f.1.min(y), f.2.max(x), f.3.max(y));
            }
        }
    }
    found
}

#[test]
fn the_pointer_is_drawn_in_and_its_moves_are_damage() {
    let Some(x) = Xvfb::start(400, 300) else {
        return;
    };
    x.warp_pointer(100, 100);
    let mut capture = X11Capture::open(Some(&x.display)).unwrap();
    capture.grab().unwrap();
    let with_pointer = canonical(&capture.frame());
    let server = x.xwd().canonical();
    // The picture is the server's, but for the pointer near (100, 100).
    let (x0, y0, x1, y1) = differing_box(&with_pointer, &server).expect("a pointer is drawn");
    assert!(
        x0 + 64 >= 100 && x1 <= 100 + 64 && y0 + 64 >= 100 && y1 <= 100 + 64,
        "pointer drawn at {x0},{y0}..{x1},{y1}"
    );

    // Only the pointer moves: no server damage, yet both places are hinted, so the hinted
    // diff finds every changed tile.
    x.warp_pointer(300, 200);
    capture.grab().unwrap();
    let hints = capture.damage().unwrap().to_vec();
    let moved = capture.frame();
    let grid = TileGrid::new(400, 300, 32).unwrap();
    let diff = CpuDiff::single_threaded();
    let everything = diff
        .diff(&grid, &with_pointer.as_frame(), &moved, None)
        .unwrap();
    let hinted = diff
        .diff(&grid, &with_pointer.as_frame(), &moved, Some(&hints))
        .unwrap();
    assert!(
        everything.count() >= 2,
        "the old and new pointer tiles changed"
    );
    assert_eq!(hinted, everything, "pointer moves are damage: {hints:?}");

    // Still: nothing to report.
    capture.grab().unwrap();
    assert!(capture.damage().unwrap().is_empty());

    // Turned off, the capture is the server's picture again.
    assert!(capture.set_cursor(false));
    capture.grab().unwrap();
    assert!(canonical(&capture.frame()) == x.xwd().canonical());
}

/// Counts the signals a watched capture gives.
fn watched(capture: &mut X11Capture) -> Arc<AtomicUsize> {
    let signals = Arc::new(AtomicUsize::new(0));
    let count = signals.clone();
    assert!(capture.watch_changes(Arc::new(move || {
        count.fetch_add(1, Ordering::SeqCst);
    })));
    signals
}

/// Waits up to 5 s for `signals` to pass `seen`; whether it did.
fn signalled(signals: &AtomicUsize, seen: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if signals.load(Ordering::SeqCst) > seen {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Grabs until no signal came during a grab or in the 300 ms after it (a signal during a grab
/// may be for something after it, which the next grab shows, as the sender's loop does); the
/// signals seen then.
fn settle(capture: &mut X11Capture, signals: &AtomicUsize) -> usize {
    for _ in 0..20 {
        let seen = signals.load(Ordering::SeqCst);
        capture.grab().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        if signals.load(Ordering::SeqCst) == seen {
            return seen;
        }
    }
    panic!("the screen never went still");
}

#[test]
fn a_watched_screen_signals_drawing_and_pointer_motion_and_is_silent_when_still() {
    let Some(mut x) = Xvfb::start(400, 300) else {
        return;
    };
    x.move_pointer(50, 50);
    let mut capture = X11Capture::open(Some(&x.display)).unwrap();
    let signals = watched(&mut capture);
    assert!(capture.set_cursor(false));
    capture.grab().unwrap();
    // The damage object was replaced: the first grab's damage is the whole screen.
    assert!(capture
        .damage()
        .unwrap()
        .contains(&Rect::new(0, 0, 400, 300)));
    let before = canonical(&capture.frame());

    // A still screen signals nothing (once the damage object's first, whole region has
    // signalled, before or after that grab).
    let seen = settle(&mut capture, &signals);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        signals.load(Ordering::SeqCst),
        seen,
        "a still screen signals nothing"
    );

    // A client draws: a signal, and the grab after it holds the drawing, its damage covering it.
    x.client("xterm", &["-geometry", "20x4+30+30"]);
    assert!(signalled(&signals, seen), "drawing signals");
    std::thread::sleep(Duration::from_millis(1000));
    capture.grab().unwrap();
    let hints = capture.damage().unwrap().to_vec();
    let drawn = capture.frame();
    assert!(
        canonical(&drawn) == x.xwd().canonical(),
        "the grab is the server's screen"
    );
    let grid = TileGrid::new(400, 300, 32).unwrap();
    let diff = CpuDiff::single_threaded();
    let everything = diff.diff(&grid, &before.as_frame(), &drawn, None).unwrap();
    let hinted = diff
        .diff(&grid, &before.as_frame(), &drawn, Some(&hints))
        .unwrap();
    assert!(everything.count() > 0, "the xterm drew");
    assert_eq!(hinted, everything, "the hints cover the drawing");

    // Device motion of the pointer signals (it damages nothing on the server).
    let seen = settle(&mut capture, &signals);
    x.move_pointer(300, 200);
    assert!(signalled(&signals, seen), "pointer motion signals");
    // Drawn in, the pointer's move is damage.
    assert!(capture.set_cursor(true));
    let seen = settle(&mut capture, &signals);
    x.move_pointer(320, 220);
    assert!(signalled(&signals, seen), "pointer motion signals");
    capture.grab().unwrap();
    assert!(
        capture
            .damage()
            .unwrap()
            .iter()
            .any(|r| r.intersection(&Rect::new(320, 220, 1, 1)).is_some()),
        "the pointer's new place is damage: {:?}",
        capture.damage()
    );
    // Dropping a watched capture ends its thread (the test would hang otherwise).
    drop(capture);
}

#[test]
fn a_missing_display_is_a_clear_error() {
    let err = X11Capture::open(Some(":4999"))
        .err()
        .expect("no such display");
    assert!(err.to_string().contains(":4999"), "{err}");
}
