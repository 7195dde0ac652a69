//! Freeze-and-select under Xvfb on the GPU (lavapipe here): a real drag over the frozen screen
//! shares that area; a drag over a window offers to follow it and Enter does; Esc cancels.
#![cfg(target_os = "linux")]

use std::process::Command;
use std::time::{Duration, Instant};
use tessera_engine::{system_tests_required, GpuContext};
use tessera_platform::x11::X11Capture;
use tessera_platform::xvfb::{Spawned, Xvfb};

/// `tessera-sender --select` on the display, once its selection window is up.
fn start_selecting(x: &Xvfb) -> Spawned {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera-sender"));
    command
        .args([
            "--source",
            &format!("x11:{}", x.display),
            "--select",
            "--listen",
            "127.0.0.1:0",
            "--diff",
            "cpu",
            "--quiet",
        ])
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    let sender = Spawned::start(command, "sender");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !window_titled(x, "select the area") {
        assert!(Instant::now() < deadline, "no selection window appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    sender
}

/// Whether a window whose title contains `needle` is on the display.
fn window_titled(x: &Xvfb, needle: &str) -> bool {
    x.output("xdotool", &["search", "--name", needle])
        .is_some_and(|o| !o.trim().is_empty())
}

fn desktop() -> Option<Xvfb> {
    if let Err(e) = GpuContext::new() {
        assert!(!system_tests_required(), "no GPU adapter: {e}");
        eprintln!("NOT RUN: no GPU adapter ({e})");
        return None;
    }
    let mut x = Xvfb::start(640, 480)?;
    x.client("xterm", &["-geometry", "40x10+100+80"]);
    std::thread::sleep(Duration::from_millis(1500));
    Some(x)
}

#[test]
fn a_dragged_area_is_shared() {
    let Some(x) = desktop() else { return };
    let s = start_selecting(&x);
    x.drag((400, 300), (519, 389));
    s.wait_for("sharing the area 400,300 120x90");
    // Then the share starts on it.
    s.wait_for("| diff on cpu");
}

#[test]
fn a_drag_over_a_window_offers_to_follow_it() {
    let Some(x) = desktop() else { return };
    let xterm = X11Capture::open(Some(&x.display))
        .unwrap()
        .windows()
        .unwrap()
        .into_iter()
        .find(|w| w.title.contains("xterm"))
        .expect("the xterm is listed");
    let r = xterm.rect;
    let s = start_selecting(&x);
    x.drag(
        (r.x as i16 + 2, r.y as i16 + 1),
        ((r.x + r.width) as i16 - 2, (r.y + r.height) as i16),
    );
    let offer = Instant::now() + Duration::from_secs(10);
    while !window_titled(&x, "Enter follows it") {
        assert!(Instant::now() < offer, "no offer to follow the window");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(x.run("xdotool", &["key", "Return"]));
    let line = s.wait_for("following window");
    assert!(line.contains(&format!("{:#x}", xterm.id)), "{line}");
}

#[test]
fn escape_cancels() {
    let Some(x) = desktop() else { return };
    let mut s = start_selecting(&x);
    assert!(x.run("xdotool", &["key", "Escape"]));
    s.wait_for("cancelled");
    let status = s.child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
}
