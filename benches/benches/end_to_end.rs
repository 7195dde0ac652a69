//! End to end: tessera-sender and a headless tessera-receiver in one process over loopback QUIC,
//! for every synthetic scene at 1080p and 4K, paced at 60 fps (latency) and unpaced (the most
//! frames a second the pipeline delivers).
//!
//! `cargo bench -p tessera-benches --bench end_to_end` prints a markdown table and writes
//! `target/tessera-e2e.svg`; BENCHMARKS.md records them. `-- --diff cpu|gpu|auto` and
//! `--compositor cpu|gpu|auto` (default `auto`) set the sender's diff and the headless
//! receiver's compositor; other arguments (`1080p`, `4K`, scene names) keep only the rows that
//! name one of them. Under `cargo test --benches` it runs one
//! tiny configuration to prove it still works.

use std::time::Duration;
use tessera_engine::{BackendRequest, Scene};
use tessera_receiver::{Receiver, ReceiverConfig};

struct Row {
    resolution: &'static str,
    scene: Scene,
    paced: bool,
    fps: f64,
    updates: u64,
    p50_ms: f64,
    p99_ms: f64,
    mbit_per_s: f64,
    bytes_per_update: f64,
    raw_frame_bytes: f64,
    cpu_ms_per_frame: f64,
    mismatches: u64,
    /// Where the sender diffed and the receiver composited, as each reported.
    stages: String,
}

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Where the two GPU-capable stages run.
#[derive(Clone, Copy)]
struct Backends {
    diff: BackendRequest,
    compositor: BackendRequest,
}

impl Backends {
    /// `--diff X` and `--compositor Y` from the bench's arguments.
    fn from_args(args: &[String]) -> Result<Self, String> {
        let pick = |flag: &str| -> Result<BackendRequest, String> {
            match args.iter().position(|a| a == flag) {
                None => Ok(BackendRequest::Auto),
                Some(i) => args
                    .get(i + 1)
                    .ok_or(format!("{flag} needs cpu, gpu or auto"))?
                    .parse(),
            }
        };
        Ok(Self {
            diff: pick("--diff")?,
            compositor: pick("--compositor")?,
        })
    }
}

async fn run_one(
    resolution: &'static str,
    (w, h): (u32, u32),
    scene: Scene,
    fps: u32,
    frames: u64,
    backends: Backends,
) -> Row {
    let (sending, link) =
        tessera_benches::share_synthetic(scene, (w, h), fps, frames, backends.diff);
    let cpu_before = cpu_time();
    let receiver = Receiver::connect(
        ReceiverConfig {
            compositor: backends.compositor,
            ..ReceiverConfig::default()
        },
        link,
    );
    let report = receiver.run().await.expect("receiver");
    let sent = sending.await.unwrap().expect("sender");
    let cpu = cpu_time() - cpu_before;
    let s = report.stats;
    let latency = s.latency_ms.clone().expect("latencies");
    Row {
        resolution,
        scene,
        paced: fps > 0,
        fps: s.fps,
        updates: s.updates,
        p50_ms: latency.p50,
        p99_ms: latency.p99,
        mbit_per_s: s.mbit_per_s,
        bytes_per_update: s.bytes_per_update,
        raw_frame_bytes: f64::from(w) * f64::from(h) * 4.0,
        cpu_ms_per_frame: cpu.as_secs_f64() * 1e3 / sent.frames.max(1) as f64,
        mismatches: s.checksum_mismatches,
        stages: format!(
            "{} / {}",
            sent.labels.diff_backend.as_deref().unwrap_or("?"),
            s.labels
                .compositor
                .as_deref()
                .and_then(|c| c.split_whitespace().next())
                .unwrap_or("?")
        ),
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from("| resolution | scene | pacing | updates | fps delivered | latency p50 ms | p99 ms | Mbit/s | bytes/update | % of raw frame | CPU ms/frame (both ends) | mismatches | diff / compositor |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        // One update (the keyframe) has no rate: the idle scene sends nothing after it.
        let (fps, mbit) = if r.updates > 1 {
            (format!("{:.1}", r.fps), format!("{:.1}", r.mbit_per_s))
        } else {
            ("n/a".to_string(), "n/a".to_string())
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {} | {:.0} | {:.3}% | {:.2} | {} | {} |\n",
            r.resolution,
            r.scene.name(),
            if r.paced { "60 fps" } else { "unpaced" },
            r.updates,
            fps,
            r.p50_ms,
            r.p99_ms,
            mbit,
            r.bytes_per_update,
            100.0 * r.bytes_per_update / r.raw_frame_bytes,
            r.cpu_ms_per_frame,
            r.mismatches,
            r.stages
        ));
    }
    out
}

/// Two bar charts side by side: unpaced fps (log scale) and paced p99 latency, per resolution
/// and scene, each bar labelled. Idle is left out: it sends one keyframe and then nothing.
fn svg(rows: &[Row]) -> String {
    let scenes: Vec<Scene> = Scene::ALL
        .into_iter()
        .filter(|s| *s != Scene::Idle)
        .collect();
    let (bar, gap, chart_h, base) = (26.0, 34.0, 200.0, 250.0);
    let panel = scenes.len() as f64 * (2.0 * bar + gap) + 60.0;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="300" font-family="sans-serif" font-size="11">"#,
        2.0 * panel + 40.0
    );
    out.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    type Value = fn(&Row) -> f64;
    let charts: [(&str, bool, Value, bool); 2] = [
        ("delivered fps, unpaced (log scale)", false, |r| r.fps, true),
        ("p99 latency ms, paced at 60 fps", true, |r| r.p99_ms, false),
    ];
    for (c, (title, paced, value, log)) in charts.iter().enumerate() {
        let x0 = 30.0 + c as f64 * panel;
        let chosen: Vec<&Row> = rows
            .iter()
            .filter(|r| r.paced == *paced && r.scene != Scene::Idle)
            .collect();
        let max = chosen.iter().map(|r| value(r)).fold(1e-9, f64::max);
        let scale = |v: f64| {
            if *log {
                (v.max(1.0)).log10() / max.log10()
            } else {
                v / max
            }
        };
        out.push_str(&format!(
            r#"<text x="{x0}" y="16" font-weight="bold">{title}</text>"#
        ));
        out.push_str(&format!(
            r##"<line x1="{x0}" y1="{base}" x2="{}" y2="{base}" stroke="#888"/>"##,
            x0 + panel - 40.0
        ));
        for (i, scene) in scenes.iter().enumerate() {
            for (k, res) in ["1080p", "4K"].iter().enumerate() {
                let Some(r) = chosen
                    .iter()
                    .find(|r| r.scene == *scene && r.resolution == *res)
                else {
                    continue;
                };
                let h = chart_h * scale(value(r));
                let x = x0 + i as f64 * (2.0 * bar + gap) + k as f64 * bar;
                let fill = if k == 0 { "#3465a4" } else { "#f57900" };
                out.push_str(&format!(
                    r#"<rect x="{x:.1}" y="{:.1}" width="{}" height="{h:.1}" fill="{fill}"/>"#,
                    base - h,
                    bar - 2.0
                ));
                out.push_str(&format!(
                    r#"<text x="{x:.1}" y="{:.1}" font-size="9">{:.0}</text>"#,
                    base - h - 3.0,
                    value(r)
                ));
            }
            let x = x0 + i as f64 * (2.0 * bar + gap);
            out.push_str(&format!(
                r#"<text x="{x:.1}" y="{}">{}</text>"#,
                base + 16.0,
                scene.name()
            ));
        }
    }
    out.push_str(r##"<text x="30" y="290" fill="#3465a4">■ 1920x1080</text><text x="120" y="290" fill="#f57900">■ 3840x2160</text></svg>"##);
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let backends = match Backends::from_args(&args) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("end_to_end: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if !bench {
        // `cargo test --benches`: one small run, to prove the bench still works.
        let row = runtime.block_on(run_one("test", (320, 180), Scene::Typing, 0, 20, backends));
        assert_eq!(row.mismatches, 0);
        println!("end_to_end: test run ok ({:.0} fps)", row.fps);
        return;
    }
    // Row filters: arguments that are neither flags nor a flag's value.
    let filters: Vec<&str> = args
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, a)| {
            !a.starts_with("--") && !matches!(args[i - 1].as_str(), "--diff" | "--compositor")
        })
        .map(|(_, a)| a.as_str())
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.contains(&name);
    let frames = 300;
    let mut rows = Vec::new();
    for (name, size) in [("1080p", (1920, 1080)), ("4K", (3840, 2160))] {
        for scene in Scene::ALL {
            let named = [name, scene.name()];
            let resolutions = filters.iter().any(|f| *f == "1080p" || *f == "4K");
            let scenes = filters
                .iter()
                .any(|f| Scene::ALL.iter().any(|s| s.name() == *f));
            if (resolutions && !wanted(named[0])) || (scenes && !wanted(named[1])) {
                continue;
            }
            for fps in [60, 0] {
                let row = runtime.block_on(run_one(name, size, scene, fps, frames, backends));
                eprintln!(
                    "{name} {} {}: {:.1} fps",
                    scene.name(),
                    if fps > 0 { "paced" } else { "unpaced" },
                    row.fps
                );
                rows.push(row);
            }
        }
    }
    println!(
        "\n## End to end over loopback\n\nMachine: {}. {frames} frames a run; sender and receiver in one process; diff `{:?}`, compositor `{:?}` (as asked).\n",
        tessera_benches::machine(),
        backends.diff,
        backends.compositor
    );
    println!("{}", table(&rows));
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tessera-e2e.svg");
    match std::fs::write(&target, svg(&rows)) {
        Ok(()) => println!("chart: {}", target.display()),
        Err(e) => eprintln!("chart not written to {}: {e}", target.display()),
    }
}
