//! Counters both binaries report: frames, bytes, latency percentiles, checksum mismatches; as
//! a live status line on stderr and as JSON (`--stats-json`).

use serde::Serialize;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Latency samples kept for percentiles (the oldest are dropped beyond this).
const MAX_SAMPLES: usize = 1 << 20;

/// Running counters of one end of a stream.
#[derive(Debug)]
pub struct StreamStats {
    started: Instant,
    pub frames: u64,
    pub updates: u64,
    pub keyframes: u64,
    pub bytes: u64,
    pub mismatches: u64,
    /// Updates a receiver could not apply because they patch tiles it does not hold (it asked
    /// for a keyframe instead).
    pub unapplied: u64,
    /// Updates that travelled in the compact form (docs/protocol.md).
    pub compact: u64,
    /// Tiles encoded, by codec (sender).
    pub tiles: TileCounts,
    latencies_us: Vec<u64>,
    /// Frames shown in a window (a window shows only the newest of the frames that landed
    /// while it drew the last one).
    pub presented: u64,
    present_latencies_us: Vec<u64>,
    /// Total frames expected (`--frames`), for the progress bar.
    pub target_frames: Option<u64>,
    pub labels: Labels,
}

/// What ran, for the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Labels {
    pub role: String,
    pub diff_backend: Option<String>,
    pub diff_reason: Option<String>,
    pub adapter: Option<String>,
    pub compositor: Option<String>,
    pub source: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// What `--stats-json` writes.
#[derive(Clone, Debug, Serialize)]
pub struct StatsReport {
    #[serde(flatten)]
    pub labels: Labels,
    pub frames: u64,
    pub updates: u64,
    pub keyframes: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub fps: f64,
    pub mbit_per_s: f64,
    pub bytes_per_update: f64,
    /// Capture to composited, in milliseconds (sender and receiver clocks must agree).
    pub latency_ms: Option<Percentiles>,
    /// Frames presented in the receiver's window (absent headless).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presented: Option<u64>,
    /// Capture to presented in the receiver's window, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present_latency_ms: Option<Percentiles>,
    pub checksum_mismatches: u64,
    pub unapplied_updates: u64,
    /// Updates that travelled in the compact form.
    pub compact_updates: u64,
    /// Tiles sent, by codec (sender; all zero on a receiver).
    pub tiles: TileCounts,
}

/// Tiles encoded with each codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TileCounts {
    pub raw: u64,
    pub lz4: u64,
    pub solid: u64,
    pub patch: u64,
    /// Palette tiles and palette rects.
    pub palette: u64,
    /// Updates that began with a copy (a scroll or a moved window).
    pub copies: u64,
    /// References to the viewer's tile cache.
    pub cached: u64,
}

impl TileCounts {
    pub fn add(&mut self, s: &tessera_engine::EncodeStats) {
        self.raw += s.raw_tiles as u64;
        self.lz4 += s.lz4_tiles as u64;
        self.solid += s.solid_tiles as u64;
        self.patch += s.patch_tiles as u64;
        self.palette += s.palette_tiles as u64;
        self.cached += s.cached_tiles as u64;
    }
}

impl StreamStats {
    pub fn new(labels: Labels, target_frames: Option<u64>) -> Self {
        Self {
            started: Instant::now(),
            frames: 0,
            updates: 0,
            keyframes: 0,
            bytes: 0,
            mismatches: 0,
            unapplied: 0,
            compact: 0,
            tiles: TileCounts::default(),
            latencies_us: Vec::new(),
            presented: 0,
            present_latencies_us: Vec::new(),
            target_frames,
            labels,
        }
    }

    /// Starts the clock again (at the first frame, so waiting for a peer does not count).
    pub fn restart_clock(&mut self) {
        self.started = Instant::now();
    }

    /// Records capture -> composited for one frame.
    pub fn record_latency(&mut self, latency: Duration) {
        push_sample(&mut self.latencies_us, latency);
    }

    /// Records capture -> presented for one frame shown in a window.
    pub fn record_present(&mut self, latency: Duration) {
        self.presented += 1;
        push_sample(&mut self.present_latencies_us, latency);
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn report(&self) -> StatsReport {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        StatsReport {
            labels: self.labels.clone(),
            frames: self.frames,
            updates: self.updates,
            keyframes: self.keyframes,
            bytes: self.bytes,
            seconds,
            fps: self.frames as f64 / seconds,
            mbit_per_s: self.bytes as f64 * 8.0 / seconds / 1e6,
            bytes_per_update: if self.updates == 0 {
                0.0
            } else {
                self.bytes as f64 / self.updates as f64
            },
            latency_ms: percentiles(&self.latencies_us),
            presented: (self.presented > 0).then_some(self.presented),
            present_latency_ms: percentiles(&self.present_latencies_us),
            checksum_mismatches: self.mismatches,
            unapplied_updates: self.unapplied,
            compact_updates: self.compact,
            tiles: self.tiles,
        }
    }

    /// One line: progress, fps, bandwidth, latency, mismatches.
    pub fn status_line(&self) -> String {
        let r = self.report();
        let mut line = String::new();
        if let Some(total) = self.target_frames {
            let done = self.frames.min(total);
            let width = 20;
            let filled = (done * width / total.max(1)) as usize;
            line.push_str(&format!(
                "[{}{}] {done}/{total} ",
                "#".repeat(filled),
                "-".repeat(width as usize - filled)
            ));
        } else {
            line.push_str(&format!("{} frames ", self.frames));
        }
        line.push_str(&format!(
            "| {:.1} fps | {:.2} Mbit/s | {:.0} B/update",
            r.fps, r.mbit_per_s, r.bytes_per_update
        ));
        if let Some(p) = &r.latency_ms {
            line.push_str(&format!(
                " | latency p50 {:.2} ms p99 {:.2} ms",
                p.p50, p.p99
            ));
        }
        if let Some(p) = &r.present_latency_ms {
            line.push_str(&format!(
                " | presented {} p50 {:.2} ms p99 {:.2} ms",
                self.presented, p.p50, p.p99
            ));
        }
        if self.labels.role == "receiver" {
            line.push_str(&format!(" | mismatches {}", self.mismatches));
        }
        line
    }

    pub fn write_json(&self, path: &std::path::Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(&self.report()).expect("stats serialise");
        std::fs::write(path, json + "\n")
    }
}

fn push_sample(samples_us: &mut Vec<u64>, latency: Duration) {
    if samples_us.len() == MAX_SAMPLES {
        samples_us.drain(..MAX_SAMPLES / 2);
    }
    samples_us.push(latency.as_micros() as u64);
}

fn percentiles(samples_us: &[u64]) -> Option<Percentiles> {
    if samples_us.is_empty() {
        return None;
    }
    let mut v = samples_us.to_vec();
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    Some(Percentiles {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: at(1.0),
    })
}

/// Prints `stats`' status line to stderr every half second until the returned guard drops:
/// rewritten in place on a terminal, a line every two seconds otherwise.
pub fn spawn_status(
    stats: std::sync::Arc<std::sync::Mutex<StreamStats>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let tty = std::io::stderr().is_terminal();
        let period = if tty {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(2)
        };
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            let line = stats.lock().expect("stats lock").status_line();
            if tty {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_status() {
        let mut s = StreamStats::new(
            Labels {
                role: "receiver".into(),
                ..Labels::default()
            },
            Some(10),
        );
        for ms in 1..=100 {
            s.record_latency(Duration::from_millis(ms));
        }
        s.frames = 5;
        let p = s.report().latency_ms.unwrap();
        assert_eq!((p.p50, p.p99, p.max), (51.0, 99.0, 100.0));
        let line = s.status_line();
        assert!(line.starts_with("[##########----------] 5/10"), "{line}");
        assert!(line.contains("mismatches 0"));
        assert!(percentiles(&[]).is_none());
    }
}
