//! Capture -> presented latency in the receiver's window: a synthetic sender paced at 60 fps
//! and the receiver window at 1:1 on a private Xvfb, in one process per row (winit allows one
//! event loop a process, so the bench runs itself again for each row).
//!
//! `cargo bench -p tessera-benches --bench window_latency` prints a markdown table for
//! BENCHMARKS.md. Under `cargo test --benches` it runs one tiny row to prove it still works
//! (and fails where system tests are required but no X server or GPU adapter is here).

use std::process::Command;
use tessera_engine::{system_tests_required, GpuContext, Scene};
use tessera_platform::xvfb::Xvfb;
use tessera_receiver::window::{layout::Scale, run_window, WindowOptions};
use tessera_receiver::{Receiver, ReceiverConfig};

/// Set in a child run: `WIDTHxHEIGHT,SCENE,FRAMES`.
const ROW_VAR: &str = "TESSERA_WINDOW_ROW";

/// Child: streams one configuration into a window and prints the receiver's stats as JSON.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split(',').collect();
    let (w, h) = parts[0].split_once('x').expect("WIDTHxHEIGHT");
    let size = (w.parse().unwrap(), h.parse().unwrap());
    let scene: Scene = parts[1].parse().unwrap();
    let frames: u64 = parts[2].parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let (sending, link) = tessera_benches::share_synthetic(
        scene,
        size,
        60,
        frames,
        tessera_engine::BackendRequest::Auto,
    );
    let receiver = Receiver::connect(ReceiverConfig::default(), link);
    let options = WindowOptions {
        scale: Scale::Actual,
        fullscreen: false,
        show_stats: true,
        close_at_end: true,
        chat: None,
    };
    let report = run_window(receiver, options, runtime.handle().clone()).expect("window run");
    runtime.block_on(sending).unwrap().expect("sender");
    println!("{}", serde_json::to_string(&report.stats).unwrap());
}

fn run_row(x: &Xvfb, size: (u32, u32), scene: Scene, frames: u64) -> serde_json::Value {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(
            ROW_VAR,
            format!("{}x{},{},{frames}", size.0, size.1, scene.name()),
        )
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "window row failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().expect("a report line");
    serde_json::from_str(line).unwrap()
}

fn main() {
    if let Ok(spec) = std::env::var(ROW_VAR) {
        return child(&spec);
    }
    let bench = std::env::args().any(|a| a == "--bench");
    if let Err(e) = GpuContext::new() {
        assert!(!system_tests_required(), "no GPU adapter: {e}");
        println!("window_latency: NOT RUN: no GPU adapter ({e})");
        return;
    }
    let Some(x) = Xvfb::start(3840, 2160) else {
        println!("window_latency: NOT RUN: no Xvfb");
        return;
    };
    if !bench {
        let r = run_row(&x, (320, 180), Scene::Typing, 20);
        assert_eq!(r["checksum_mismatches"], 0, "{r}");
        assert!(r["presented"].as_u64().unwrap() >= 1, "{r}");
        println!("window_latency: test run ok ({} presented)", r["presented"]);
        return;
    }
    let frames = 600;
    println!(
        "\n## Capture to presented, in the receiver window\n\nMachine: {}. Xvfb 3840x2160x24, window at 1:1, sender paced at 60 fps, {frames} frames a run, sender and receiver in one process; the window composites on its own device: {}.\n",
        tessera_benches::machine(),
        GpuContext::new().unwrap().adapter()
    );
    println!("| resolution | scene | updates | presented | composited p50 ms | p99 ms | presented p50 ms | p99 ms | mismatches |\n|---|---|---|---|---|---|---|---|---|");
    for (name, size) in [("1080p", (1920, 1080)), ("4K", (3840, 2160))] {
        for scene in [Scene::Typing, Scene::Scrolling] {
            let r = run_row(&x, size, scene, frames);
            let ms = |k: &str, q: &str| r[k][q].as_f64().unwrap_or(f64::NAN);
            println!(
                "| {name} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                scene.name(),
                r["updates"],
                r["presented"],
                ms("latency_ms", "p50"),
                ms("latency_ms", "p99"),
                ms("present_latency_ms", "p50"),
                ms("present_latency_ms", "p99"),
                r["checksum_mismatches"]
            );
        }
    }
}
