//! Helpers the receiver's test files share.

#![allow(dead_code)] // each test file uses its own part

use tessera_engine::stream::Identity;
use tessera_engine::{system_tests_required, BackendRequest, GpuContext, Scene};
use tessera_sender::source::SourceSpec;
use tessera_sender::{Sender, SenderConfig, SenderError};

/// Whether a GPU adapter (lavapipe will do) is here; where system tests are required, its
/// absence fails the test instead of skipping it.
pub fn gpu_available() -> bool {
    match GpuContext::new() {
        Ok(_) => true,
        Err(e) if system_tests_required() => {
            panic!("no GPU adapter, and GPU tests are required here: {e}")
        }
        Err(e) => {
            eprintln!("NOT RUN: no GPU adapter ({e})");
            false
        }
    }
}

/// A running sender for a receiver process to join: its task, join link and chat console.
pub struct Shared {
    pub task: tokio::task::JoinHandle<Result<tessera_sender::stats::StatsReport, SenderError>>,
    pub link: String,
    pub chat: tessera_sender::chat::ChatConsole,
}

/// A sender of a synthetic scene on loopback (CPU diff) running on `runtime`, until `frames`
/// (or until stopped).
pub fn share_on(
    runtime: &tokio::runtime::Runtime,
    scene: Scene,
    (width, height): (u32, u32),
    fps: u32,
    frames: Option<u64>,
) -> Shared {
    let config = SenderConfig {
        source: SourceSpec::Synthetic(scene),
        width,
        height,
        fps,
        diff: BackendRequest::Cpu,
        frames,
        chat: tessera_sender::chat::ChatSetup {
            audit_log: Some(
                std::env::temp_dir().join(format!("tessera-test-audit-{}.log", std::process::id())),
            ),
            ..Default::default()
        },
        ..SenderConfig::default()
    };
    let mut sender = runtime
        .block_on(async {
            Sender::listen(
                config,
                "127.0.0.1:0".parse().unwrap(),
                &Identity::generate().unwrap(),
            )
        })
        .unwrap();
    let link = sender.link().unwrap().to_string();
    let chat = sender.take_chat_console().unwrap();
    Shared {
        task: runtime.spawn(sender.run()),
        link,
        chat,
    }
}

/// Waits (up to 20 s) for a line containing `needle` shown by `console`; returns it.
pub async fn shown(console: &mut tessera_sender::chat::ChatConsole, needle: &str) -> String {
    let wait = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(line) = console.shown.recv().await {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("chat console closed");
    });
    wait.await
        .unwrap_or_else(|_| panic!("never shown: {needle:?}"))
}
