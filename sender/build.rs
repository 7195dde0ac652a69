//! Links ScreenCaptureKit weakly on macOS, so that the sender starts on systems older than 12.3,
//! which lack the framework, and captures through Core Graphics there
//! (`tessera_platform::screencapturekit::available` decides at run time).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
        println!("cargo:rustc-link-arg-bins=-Wl,-weak_framework,ScreenCaptureKit");
    }
}
