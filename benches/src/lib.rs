//! Benchmarks live in `benches/engine.rs`; this library is empty.
