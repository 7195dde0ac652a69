//! Sharing a PipeWire node: a private PipeWire daemon fed by the repository's test source, the
//! sender on `--source pipewire:NODE` with the source's damage as hints, a headless receiver;
//! every frame arrives exactly, and a change of size mid-stream restarts from a keyframe.
#![cfg(target_os = "linux")]

use std::time::Duration;
use tessera_engine::stream::Identity;
use tessera_engine::{BackendRequest, FrameBuffer, PixelFormat};
use tessera_platform::pipewire_test_source::{PipeWireDaemon, TestSource};
use tessera_receiver::{Receiver, ReceiverConfig};
use tessera_sender::source::SourceSpec;
use tessera_sender::{Sender, SenderConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipewire_node_arrives_exactly_through_a_resize() {
    let Some(daemon) = PipeWireDaemon::start() else {
        return;
    };
    // The only test in this binary: its PipeWire clients find the private daemon here.
    std::env::set_var("PIPEWIRE_RUNTIME_DIR", daemon.runtime_dir());
    let source = TestSource::start(320, 240).unwrap();
    let frames = 120;
    let config = SenderConfig {
        source: SourceSpec::PipeWire(source.node()),
        fps: 60,
        frames: Some(frames),
        diff: BackendRequest::Cpu,
        ..SenderConfig::default()
    };
    let sender = Sender::listen(
        config,
        "127.0.0.1:0".parse().unwrap(),
        &Identity::generate().unwrap(),
    )
    .unwrap();
    let link = sender.link().unwrap().clone();
    let sending = tokio::spawn(sender.run());
    let cpu = ReceiverConfig {
        compositor: BackendRequest::Cpu,
        ..ReceiverConfig::default()
    };
    let receiving = tokio::spawn(Receiver::connect(cpu, link).run());
    tokio::time::sleep(Duration::from_millis(700)).await;
    source.resize(256, 144);
    let report = receiving.await.unwrap().unwrap();
    let sent = sending.await.unwrap().unwrap();
    assert_eq!(sent.frames, frames);
    assert_eq!(report.stats.checksum_mismatches, 0);
    assert!(
        sent.updates > 10,
        "the moving square made updates: {}",
        sent.updates
    );
    assert!(
        sent.keyframes >= 2,
        "the new size starts from a keyframe: {}",
        sent.keyframes
    );
    // The last frame is one the source drew, at the new size.
    let last = report.last_frame.unwrap();
    assert_eq!((last.width(), last.height()), (256, 144));
    let mut want = FrameBuffer::new(256, 144, PixelFormat::Bgrx8).unwrap();
    let found = (0..=source.published()).rev().any(|n| {
        TestSource::render(256, 144, n, want.pixels_mut());
        last == want.canonical()
    });
    assert!(found, "the viewer's frame is no frame the source drew");
}
