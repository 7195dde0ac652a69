//! PipeWire capture against a real PipeWire daemon started here, fed by the repository's test
//! source: frames arrive exactly as published, damage covers what changed, and a change of
//! size mid-stream comes through.
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_engine::{CpuDiff, FrameBuffer, PixelFormat, TileGrid};
use tessera_platform::pipewire::PipeWireCapture;
use tessera_platform::pipewire_test_source::{PipeWireDaemon, TestSource};
use tessera_platform::{Capture, CaptureError, Watching};

/// Grabs until a frame other than the current one arrives (at most 5 s).
fn next_frame(c: &mut PipeWireCapture) -> FrameBuffer {
    let before = FrameBuffer::from_frame(&c.frame());
    let started = Instant::now();
    loop {
        c.grab().unwrap();
        let now = FrameBuffer::from_frame(&c.frame());
        if now != before {
            return now;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no new frame");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn captures_a_pipewire_node_with_damage_and_follows_a_resize() {
    let Some(daemon) = PipeWireDaemon::start() else {
        return;
    };
    // The only test in this binary: its clients find the private daemon here.
    std::env::set_var("PIPEWIRE_RUNTIME_DIR", daemon.runtime_dir());

    // A node that does not exist: a clear error, not a hang.
    match PipeWireCapture::open(987_654) {
        Err(CaptureError::Unavailable(_) | CaptureError::Failed(_)) => {}
        Ok(_) => panic!("a capture of a node that does not exist"),
    }

    let source = TestSource::start(320, 200).unwrap();
    let mut capture = PipeWireCapture::open(source.node()).unwrap();
    assert!(capture.describe().contains("pipewire node"));
    // Watched, every frame that arrives is announced.
    let signals = Arc::new(AtomicUsize::new(0));
    let count = signals.clone();
    let watching = capture.watch_changes(Arc::new(move || {
        count.fetch_add(1, Ordering::SeqCst);
    }));
    assert_eq!(watching, Watching::Signal);
    let grid = TileGrid::new(320, 200, 32).unwrap();
    let mut prev = FrameBuffer::from_frame(&capture.frame());
    assert_eq!(prev.format(), PixelFormat::Bgrx8);
    let mut seen = Vec::new();
    for _ in 0..20 {
        let f = next_frame(&mut capture);
        assert_eq!((f.width(), f.height()), (320, 200));
        let n =
            TestSource::which_frame(&f, source.published()).expect("a frame as the source drew it");
        seen.push(n);
        // The damage since the previous grab covers every tile that changed.
        let damage = capture.damage().expect("the source sends damage").to_vec();
        let changed = CpuDiff::default()
            .diff(&grid, &prev.as_frame(), &f.as_frame(), None)
            .unwrap();
        let hinted = grid.tiles_touching(&damage);
        for t in changed.iter() {
            assert!(
                hinted.get(t),
                "tile {t} changed outside the damage {damage:?}"
            );
        }
        prev = f;
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "frames in order: {seen:?}"
    );
    assert!(
        signals.load(Ordering::SeqCst) >= seen.len(),
        "{} signals for {} new frames",
        signals.load(Ordering::SeqCst),
        seen.len()
    );
    // Nothing new: the same frame, nothing damaged.
    drop(source);
    std::thread::sleep(Duration::from_millis(100));
    capture.grab().unwrap();
    capture.grab().unwrap();
    assert_eq!(capture.damage(), Some(&[][..]));
    assert_eq!(capture.bad_buffers(), 0);

    // The other layouts the capture takes.
    for format in [PixelFormat::Rgba8, PixelFormat::Bgra8, PixelFormat::Rgbx8] {
        let source = TestSource::start_as(64, 48, format).unwrap();
        let capture = PipeWireCapture::open(source.node()).unwrap();
        let f = FrameBuffer::from_frame(&capture.frame());
        assert_eq!(f.format(), format);
        assert!(
            TestSource::which_frame(&f, source.published()).is_some(),
            "{format:?}"
        );
    }

    // A source that changes size mid-stream.
    let source = TestSource::start(160, 120).unwrap();
    let mut capture = PipeWireCapture::open(source.node()).unwrap();
    assert_eq!(
        (capture.frame().width(), capture.frame().height()),
        (160, 120)
    );
    source.resize(256, 144);
    let started = Instant::now();
    loop {
        let f = next_frame(&mut capture);
        if (f.width(), f.height()) == (256, 144) {
            assert!(TestSource::which_frame(&f, source.published()).is_some());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the resize never came"
        );
    }
}
