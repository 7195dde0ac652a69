//! The tessera-sender binary refuses bad command lines with clear errors.

use std::process::Command;

fn sender(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-sender"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_command_lines_are_refused_clearly() {
    for (args, needle) in [
        (vec!["--region", "1,2,3"], "x,y,w,h"),
        (vec!["--region", "0,0,0,5"], "x,y,w,h"),
        (vec!["--tile", "8"], "16..=256"),
        (vec!["--source", "vnc"], "unknown source"),
        (vec!["--source", "synthetic:movie"], "unknown scene"),
        (vec!["--size", "0x10"], "empty"),
        (vec!["--size", "99999x10"], "exceeds"),
        (vec!["--diff", "tpu"], "unknown backend"),
        (vec!["--connect", "tessera://nowhere/#x"], "address"),
        (vec!["--cert", "a.pem"], "--key"),
        (vec!["--fps", "-1"], "'-1'"),
    ] {
        let (code, stderr) = sender(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn bad_values_found_at_start_are_errors_not_panics() {
    let (code, stderr) = sender(&[
        "--listen",
        "127.0.0.1:0",
        "--size",
        "640x480",
        "--region",
        "600,0,100,10",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("region"), "{stderr}");
    let (code, stderr) = sender(&[
        "--listen",
        "127.0.0.1:0",
        "--cert",
        "/nonexistent/c.pem",
        "--key",
        "/nonexistent/k.pem",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("No such file"), "{stderr}");
    let (code, stderr) = sender(&["--listen", "127.0.0.1:0", "--source", "x11"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot open X display"), "{stderr}");
    let (code, stderr) = sender(&["--listen", "127.0.0.1:0", "--source", "screen"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no screen capture backend"), "{stderr}");
}
