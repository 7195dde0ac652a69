//! The tessera-receiver binary: bad command lines get clear errors, and a real run dumps the
//! frame and writes its stats.

mod common;

use std::process::Command;
use tessera_engine::Scene;

fn receiver() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera-receiver"));
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    c
}

#[test]
fn bad_command_lines_are_refused_clearly() {
    let link = "tessera://127.0.0.1:9/#AAAA";
    let valid = tessera_engine::stream::JoinLink {
        addrs: vec!["127.0.0.1:9".parse().unwrap()],
        token: tessera_engine::stream::JoinToken {
            secret: [0; 32],
            fingerprint: [0; 32],
        },
    }
    .to_string();
    let bad_presets =
        std::env::temp_dir().join(format!("tessera-bad-presets-{}.toml", std::process::id()));
    std::fs::write(&bad_presets, "[consent]\nunattended = [\"launch\"]\n").unwrap();
    for (args, needle) in [
        (vec![], "JOIN"),
        (vec!["http://example/", "--headless"], "tessera://"),
        (vec![link, "--headless"], "join token"),
        (
            vec![valid.as_str(), "--headless", "--compositor", "quantum"],
            "unknown backend",
        ),
        (
            vec!["--listen", "not-an-address", "--headless"],
            "invalid socket address",
        ),
        (vec![valid.as_str(), "--compositor", "cpu"], "--headless"),
        (vec![valid.as_str(), "--scale", "2x"], "unknown scale"),
        (
            vec![valid.as_str(), "--headless", "--fullscreen"],
            "cannot be used with",
        ),
        (
            vec![
                valid.as_str(),
                "--headless",
                "--presets",
                "/nonexistent.toml",
            ],
            "/nonexistent.toml",
        ),
        (
            vec![
                valid.as_str(),
                "--headless",
                "--presets",
                bad_presets.to_str().unwrap(),
            ],
            "only stream control",
        ),
    ] {
        let out = receiver().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    std::fs::remove_file(&bad_presets).unwrap();
    let out = receiver()
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    // No display: a clear message that suggests --headless, before anything listens.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no display") && stderr.contains("--headless"),
        "{stderr}"
    );
}

#[test]
fn a_real_run_dumps_the_last_frame_and_its_stats() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shared = common::share_on(&runtime, Scene::Dragging, (320, 200), 0, Some(40));
    let (sending, link) = (shared.task, shared.link);
    let dir = std::env::temp_dir().join(format!("tessera-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (png, json) = (dir.join("last.png"), dir.join("stats.json"));
    let out = receiver()
        .args([&link, "--headless", "--compositor", "cpu", "--dump"])
        .arg(&png)
        .arg("--stats-json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    runtime.block_on(sending).unwrap().unwrap();
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(stats["checksum_mismatches"], 0);
    assert_eq!(stats["compositor"], "cpu");
    assert!(stats["frames"].as_u64().unwrap() >= 1);
    let header = std::fs::read(&png).unwrap();
    assert_eq!(&header[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::remove_dir_all(&dir).unwrap();
}
