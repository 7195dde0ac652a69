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
