//! Helpers shared by Tessera's benchmarks (`benches/engine.rs`, `benches/end_to_end.rs`).

/// The processor model and thread count, for the head of a results table.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{cpu}, {} threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    )
}

/// Starts a sender of the synthetic `scene` at `width` x `height` on loopback, `fps` paced
/// (0: unpaced), stopping after `frames`, diffing on `diff`; returns its task and join link.
/// Call inside a tokio runtime.
pub fn share_synthetic(
    scene: tessera_engine::Scene,
    (width, height): (u32, u32),
    fps: u32,
    frames: u64,
    diff: tessera_engine::BackendRequest,
) -> (
    tokio::task::JoinHandle<
        Result<tessera_sender::stats::StatsReport, tessera_sender::SenderError>,
    >,
    tessera_engine::stream::JoinLink,
) {
    let config = tessera_sender::SenderConfig {
        source: tessera_sender::source::SourceSpec::Synthetic(scene),
        width,
        height,
        fps,
        diff,
        frames: Some(frames),
        ..tessera_sender::SenderConfig::default()
    };
    let sender = tessera_sender::Sender::listen(
        config,
        "127.0.0.1:0".parse().expect("loopback address"),
        &tessera_engine::stream::Identity::generate().expect("a certificate"),
    )
    .expect("the sender listens on loopback");
    let link = sender
        .link()
        .expect("a listening sender has a link")
        .clone();
    (tokio::spawn(sender.run()), link)
}
