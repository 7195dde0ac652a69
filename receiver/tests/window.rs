//! The viewer window under Xvfb on the GPU (lavapipe here): a synthetic stream lands in the
//! window at 1:1 exactly as the sender's frame, a resize keeps the picture right (centred,
//! black around), `Z` switches to fit with the aspect ratio kept, the window's stats report
//! presented frames, and chat typed in the window reaches the sender (and the sender's in the
//! title).
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};
use tessera_engine::{FrameBuffer, PixelFormat, Scene, SyntheticSource};
use tessera_platform::xvfb::{Spawned, Xvfb};

const W: u32 = 640;
const H: u32 = 400;
const FRAMES: u64 = 90;

/// The sender's last frame.
fn expected() -> FrameBuffer {
    let mut s = SyntheticSource::new(Scene::Typing, W, H, PixelFormat::Bgra8).unwrap();
    for _ in 1..FRAMES {
        s.advance();
    }
    s.frame_buffer().canonical()
}

/// A receiver window process on `display` joined to `link`.
fn open_viewer(display: &str, link: &str, args: &[&str]) -> Spawned {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera-receiver"));
    command
        .arg(link)
        .args(args)
        .env("DISPLAY", display)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    Spawned::start(command, "receiver")
}

/// The id of the receiver's window.
fn window_id(x: &Xvfb) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(out) = x.output("xdotool", &["search", "--name", "^Tessera"]) {
            if let Some(id) = out.lines().next().and_then(|l| l.trim().parse().ok()) {
                return id;
            }
        }
        assert!(Instant::now() < deadline, "no Tessera window appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many pixels of `frame`, placed at (x0, y0) in `shot`, differ in colour.
fn mismatches_at(shot: &FrameBuffer, x0: u32, y0: u32, frame: &FrameBuffer) -> usize {
    let mut bad = 0;
    for y in 0..frame.height() {
        let want = &frame.pixels()[y as usize * frame.stride()..][..frame.width() as usize * 4];
        let got = &shot.pixels()[(y0 + y) as usize * shot.stride() + x0 as usize * 4..]
            [..frame.width() as usize * 4];
        bad += want
            .chunks_exact(4)
            .zip(got.chunks_exact(4))
            .filter(|(a, b)| a[..3] != b[..3])
            .count();
    }
    bad
}

/// How many pixels of `shot` outside the rectangle are not black.
fn lit_outside(shot: &FrameBuffer, x0: u32, y0: u32, w: u32, h: u32) -> usize {
    let mut lit = 0;
    for y in 0..shot.height() {
        for x in 0..shot.width() {
            if (x0..x0 + w).contains(&x) && (y0..y0 + h).contains(&y) {
                continue;
            }
            let p = &shot.pixels()[y as usize * shot.stride() + x as usize * 4..][..3];
            lit += usize::from(p != [0, 0, 0]);
        }
    }
    lit
}

/// Takes screenshots of the window until `check` passes on one (the X server shows a present
/// a moment after it is made); panics with the last complaint after a while.
fn until_shown(x: &Xvfb, id: u32, mut check: impl FnMut(&FrameBuffer) -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shot = x.xwd_window(id);
        match check(&shot) {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => {
                panic!("the window shows the wrong picture: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A GPU adapter, an Xvfb of `width` x `height` and a runtime for the sender; `None` where the
/// test may skip.
fn desktop(width: u32, height: u32) -> Option<(Xvfb, tokio::runtime::Runtime)> {
    if !common::gpu_available() {
        return None;
    }
    let x = Xvfb::start(width, height)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Some((x, runtime))
}

#[test]
fn the_window_shows_the_senders_frame_exactly_and_keeps_it_right_when_resized() {
    let Some((x, runtime)) = desktop(1280, 800) else {
        return;
    };
    let shared = common::share_on(&runtime, Scene::Typing, (W, H), 60, Some(FRAMES));
    let (sending, link) = (shared.task, shared.link);
    let stats = std::env::temp_dir().join(format!("tessera-window-{}.json", std::process::id()));
    let mut viewer = open_viewer(
        &x.display,
        &link,
        &["--scale", "1:1", "--stats-json", stats.to_str().unwrap()],
    );
    viewer.wait_for("the stream ended");
    assert_eq!(runtime.block_on(sending).unwrap().unwrap().frames, FRAMES);
    let want = expected();
    let id = window_id(&x);

    // The window took the frame's size, and shows the frame exactly.
    until_shown(&x, id, |shot| {
        if (shot.width(), shot.height()) != (W, H) {
            return Err(format!("window {}x{}", shot.width(), shot.height()));
        }
        match mismatches_at(shot, 0, 0, &want) {
            0 => Ok(()),
            n => Err(format!("{n} pixels differ at 1:1")),
        }
    });

    // Larger, still 1:1: the frame centred and exact, black around it.
    assert!(x.run(
        "xdotool",
        &["windowsize", "--sync", &id.to_string(), "900", "560"]
    ));
    let (cx, cy) = ((900 - W) / 2, (560 - H) / 2);
    until_shown(&x, id, |shot| {
        if (shot.width(), shot.height()) != (900, 560) {
            return Err(format!("window {}x{}", shot.width(), shot.height()));
        }
        match (
            mismatches_at(shot, cx, cy, &want),
            lit_outside(shot, cx, cy, W, H),
        ) {
            (0, 0) => Ok(()),
            (bad, lit) => Err(format!(
                "{bad} pixels differ in the frame, {lit} lit around it"
            )),
        }
    });

    // Z: fit. 640x400 into 900x560 is 896x560 at x=2: bars on the sides, and the picture is
    // the frame scaled (bilinear, so close rather than exact).
    assert!(x.run("xdotool", &["windowfocus", "--sync", &id.to_string()]));
    assert!(x.run("xdotool", &["key", "z"]));
    let (fw, fh, fx) = (896, 560, 2);
    until_shown(&x, id, |shot| {
        let lit = lit_outside(shot, fx, 0, fw, fh);
        let mut error = 0u64;
        let mut samples = 0u64;
        for y in (0..fh).step_by(7) {
            for x_ in (0..fw).step_by(7) {
                let sx = (x_ * W / fw).min(W - 1);
                let sy = (y * H / fh).min(H - 1);
                let a = &want.pixels()[sy as usize * want.stride() + sx as usize * 4..][..3];
                let b = &shot.pixels()[y as usize * shot.stride() + (fx + x_) as usize * 4..][..3];
                error += a
                    .iter()
                    .zip(b)
                    .map(|(a, b)| a.abs_diff(*b) as u64)
                    .sum::<u64>();
                samples += 3;
            }
        }
        let mean = error as f64 / samples as f64;
        // Black bars must be exactly black; the scaled picture close to the frame (nearest
        // sampling against bilinear on text: a few levels of 255 on average).
        if lit == 0 && mean < 12.0 && shot.pixels()[fx as usize * 4..][..3] != [0, 0, 0] {
            Ok(())
        } else {
            Err(format!("{lit} lit in the bars, mean error {mean:.1}"))
        }
    });

    // Ctrl-C: the window closes and the stats show what was presented.
    assert!(Command::new("kill")
        .args(["-INT", &viewer.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = viewer.child.wait().unwrap();
    assert!(status.success(), "receiver exited with {status}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    std::fs::remove_file(&stats).unwrap();
    assert_eq!(report["checksum_mismatches"], 0);
    assert!(report["presented"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        report["present_latency_ms"]["p50"].as_f64().is_some(),
        "{report}"
    );
    assert!(report["compositor"].as_str().unwrap().ends_with("(window)"));
}

#[test]
fn chat_typed_in_the_window_reaches_the_sender_and_its_answer_shows_in_the_title() {
    let Some((x, runtime)) = desktop(800, 600) else {
        return;
    };
    let mut shared = common::share_on(&runtime, Scene::Idle, (320, 200), 30, None);
    let audit =
        std::env::temp_dir().join(format!("tessera-window-audit-{}.log", std::process::id()));
    let _viewer = open_viewer(
        &x.display,
        &shared.link,
        &["--audit-log", audit.to_str().unwrap()],
    );
    let id = window_id(&x).to_string();
    // Lines typed before the chat is open are dropped ("nobody to talk to yet"): wait for it.
    runtime.block_on(common::shown(&mut shared.chat, "(chat open with peer"));
    let title = || {
        x.output("xdotool", &["getwindowname", &id])
            .unwrap_or_default()
    };
    let title_shows = |needle: &str, within: Duration| {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if title().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    // What a user sees: Enter opens the chat line in the title. A key pressed before the window
    // has taken the focus is not the window's, so press it again until the line opens.
    let mut opened = false;
    for _ in 0..5 {
        assert!(x.run("xdotool", &["windowfocus", "--sync", &id]));
        assert!(x.run("xdotool", &["key", "Return"]));
        if title_shows("say:", Duration::from_secs(3)) {
            opened = true;
            break;
        }
    }
    assert!(opened, "Enter never opened the chat line: {}", title());
    assert!(x.run(
        "xdotool",
        &["type", "--delay", "20", "hello from the window"]
    ));
    assert!(
        title_shows("say: hello from the window", Duration::from_secs(10)),
        "the typed line never showed: {}",
        title()
    );
    assert!(x.run("xdotool", &["key", "Return"]));
    runtime.block_on(common::shown(
        &mut shared.chat,
        "other side: hello from the window",
    ));
    shared.chat.typed.send("hello back".into()).unwrap();
    assert!(
        title_shows("chat: other side: hello back", Duration::from_secs(20)),
        "title never showed the answer: {}",
        title()
    );
    shared.task.abort();
}
