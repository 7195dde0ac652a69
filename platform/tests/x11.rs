//! X11 capture against a real X server (Xvfb) with real clients: the captured frame equals what
//! `xwd` reads from the server, and XDamage hints cover what changed.
#![cfg(target_os = "linux")]

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_engine::{CpuDiff, FrameBuffer, Rect, TileGrid};
use tessera_platform::x11::{WindowSelector, X11Capture};
use tessera_platform::xvfb::{xdotool_on_class, Xvfb};
use tessera_platform::{Capture, Watching};

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

/// Starts watching `capture`: the descriptor it turns readable when something changed.
fn watched(capture: &mut X11Capture) -> RawFd {
    match capture.watch_changes(Arc::new(|| panic!("X11 reports through its descriptor"))) {
        Watching::Readable(fd) => fd,
        other => panic!("X11 reports through a descriptor, not {other:?}"),
    }
}

/// Waits up to `within` for `capture` to report a change, as the sender does: for its
/// descriptor to turn readable, then takes what came.
fn reported(capture: &mut X11Capture, fd: RawFd, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        let n = unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) };
        if n > 0 && capture.take_changes() {
            return true;
        }
        if left.is_zero() {
            return false;
        }
    }
}

/// Grabs until nothing is reported during a grab or in the 300 ms after it (a report during a
/// grab may be for something after it, which the next grab shows, as the sender's loop does).
fn settle(capture: &mut X11Capture, fd: RawFd) {
    settle_with(capture, fd, X11Capture::grab);
}

/// [`settle`], grabbing with `grab`.
fn settle_with(
    capture: &mut X11Capture,
    fd: RawFd,
    grab: fn(&mut X11Capture) -> Result<(), tessera_platform::CaptureError>,
) {
    for _ in 0..20 {
        grab(capture).unwrap();
        if !reported(capture, fd, Duration::from_millis(300)) {
            return;
        }
    }
    panic!("the screen never went still");
}

#[test]
fn a_watched_screen_reports_drawing_and_pointer_motion_and_is_silent_when_still() {
    let Some(mut x) = Xvfb::start(400, 300) else {
        return;
    };
    x.move_pointer(50, 50);
    let mut capture = X11Capture::open(Some(&x.display)).unwrap();
    let fd = watched(&mut capture);
    assert!(capture.set_cursor(false));
    capture.grab().unwrap();
    // The damage object was replaced: the first grab's damage is the whole screen.
    assert!(capture
        .damage()
        .unwrap()
        .contains(&Rect::new(0, 0, 400, 300)));
    let before = canonical(&capture.frame());

    // A still screen reports nothing (once the damage object's first, whole region has
    // reported, before or after that grab).
    settle(&mut capture, fd);
    assert!(
        !reported(&mut capture, fd, Duration::from_millis(500)),
        "a still screen reports nothing"
    );

    // A client draws: a report, and the grab after it holds the drawing, its damage covering it.
    x.client("xterm", &["-geometry", "20x4+30+30"]);
    assert!(
        reported(&mut capture, fd, Duration::from_secs(5)),
        "drawing reports"
    );
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

    // Device motion of the pointer reports (it damages nothing on the server).
    settle(&mut capture, fd);
    x.move_pointer(300, 200);
    let within = Duration::from_secs(5);
    assert!(reported(&mut capture, fd, within), "pointer motion reports");
    // Drawn in, the pointer's move is damage.
    assert!(capture.set_cursor(true));
    settle(&mut capture, fd);
    x.move_pointer(320, 220);
    assert!(reported(&mut capture, fd, within), "pointer motion reports");
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
    drop(capture);
}

#[test]
fn a_missing_display_is_a_clear_error() {
    let err = X11Capture::open(Some(":4999"))
        .err()
        .expect("no such display");
    assert!(err.to_string().contains(":4999"), "{err}");
}

#[test]
fn a_watched_screen_whose_server_goes_away_reports_it_and_the_grab_is_an_error() {
    let Some(x) = Xvfb::start(200, 150) else {
        return;
    };
    let mut capture = X11Capture::open(Some(&x.display)).unwrap();
    let fd = watched(&mut capture);
    settle(&mut capture, fd);
    drop(x);
    // The watch connection's socket turns readable (end of file), and that is a report...
    assert!(
        reported(&mut capture, fd, Duration::from_secs(5)),
        "a lost server is reported"
    );
    // ...whose grab says what is wrong.
    assert!(capture.grab().is_err(), "a grab without a server fails");
}

#[test]
fn a_damaged_grab_fetches_only_the_damaged_rows_and_shows_what_a_whole_grab_shows() {
    let Some(mut x) = Xvfb::start(640, 480) else {
        return;
    };
    x.client(
        "xterm",
        &[
            "-class",
            "TypeTerm",
            "-geometry",
            "40x10+20+20",
            "-e",
            "cat",
        ],
    );
    x.client(
        "xclock",
        &["-geometry", "100x100+400+300", "-update", "3600"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    // The pointer over the xterm (its keyboard focus without a window manager), drawn into
    // both captures' frames.
    x.move_pointer(120, 60);
    let mut damaged = X11Capture::open(Some(&x.display)).unwrap();
    let fd = watched(&mut damaged);
    let mut whole = X11Capture::open(Some(&x.display)).unwrap();
    settle_with(&mut damaged, fd, X11Capture::grab_damaged);
    let same = |damaged: &X11Capture, whole: &mut X11Capture, what: &str| {
        whole.grab().unwrap();
        let (a, b) = (canonical(&damaged.frame()), canonical(&whole.frame()));
        assert!(
            a == b,
            "{what}: the damaged grab differs from a whole grab around {:?}",
            differing_box(&a, &b)
        );
    };
    same(&damaged, &mut whole, "still");

    // Typing: a character reports a few rows, and only those are fetched; the pointer drawn
    // over the changed text is drawn once, over the new pixels, from the image last looked up
    // (it neither moved nor changed shape).
    let mut fetched = Vec::new();
    let mut looked_up = Vec::new();
    for text in ["a", "bc", "d", "\n", "e"] {
        assert!(x.run("xdotool", &["type", text]));
        assert!(
            reported(&mut damaged, fd, Duration::from_secs(5)),
            "typing reports"
        );
        std::thread::sleep(Duration::from_millis(100));
        damaged.grab_damaged().unwrap();
        fetched.push(damaged.fetched_rows());
        looked_up.push(damaged.looked_up_pointer());
        settle_with(&mut damaged, fd, X11Capture::grab_damaged);
        same(&damaged, &mut whole, "typed");
    }
    assert!(
        fetched.iter().all(|&rows| rows > 0 && rows <= 120),
        "rows fetched for a typed character, of 480: {fetched:?}"
    );
    // The first key changes the pointer's shape (xterm hides the pointer while typing): it is
    // looked up then, and not for the keys after it.
    assert!(
        looked_up[1..].iter().all(|&l| !l),
        "typing looks the pointer up: {looked_up:?}"
    );

    // A window moved and the pointer moved: the same again.
    assert!(xdotool_on_class(
        &x.display,
        "xclock",
        &["windowmove", "--sync", "150", "250"]
    ));
    x.move_pointer(200, 300);
    assert!(reported(&mut damaged, fd, Duration::from_secs(5)));
    let mut looked_up = false;
    for _ in 0..20 {
        damaged.grab_damaged().unwrap();
        looked_up |= damaged.looked_up_pointer();
        if !reported(&mut damaged, fd, Duration::from_millis(300)) {
            break;
        }
    }
    assert!(looked_up, "a pointer that moved is looked up");
    same(&damaged, &mut whole, "moved");

    // A whole grab fetches every row.
    damaged.grab().unwrap();
    assert_eq!(damaged.fetched_rows(), 480);
}
