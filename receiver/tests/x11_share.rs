//! Sharing a real X11 screen: an Xvfb with an xterm typed into by xdotool while the stream runs;
//! the receiver's last frame equals what the X server shows.
#![cfg(target_os = "linux")]

use std::time::Duration;
use tessera_engine::stream::Identity;
use tessera_engine::BackendRequest;
use tessera_platform::xvfb::Xvfb;
use tessera_receiver::{Receiver, ReceiverConfig};
use tessera_sender::source::SourceSpec;
use tessera_sender::{Sender, SenderConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_x11_screen_arrives_exactly() {
    let Some(mut x) = Xvfb::start(800, 600) else {
        return;
    };
    x.client("xterm", &["-geometry", "60x12+20+20"]);
    x.client(
        "xclock",
        &["-geometry", "150x150+500+50", "-update", "3600"],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let config = SenderConfig {
        source: SourceSpec::X11(Some(x.display.clone())),
        fps: 30,
        frames: Some(90),
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
    let display = x.display.clone();
    let typing = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(300));
        let run = |args: &[&str]| {
            std::process::Command::new("xdotool")
                .args(args)
                .env("DISPLAY", &display)
                .status()
                .unwrap()
                .success()
        };
        assert!(run(&[
            "search",
            "--sync",
            "--class",
            "xterm",
            "windowfocus",
            "--sync",
            "type",
            "--delay",
            "20",
            "echo tessera"
        ]));
        assert!(run(&["key", "Return"]));
    });
    let cpu = ReceiverConfig {
        compositor: BackendRequest::Cpu,
        ..ReceiverConfig::default()
    };
    let report = Receiver::connect(cpu, link).run().await.unwrap();
    typing.await.unwrap();
    let sent = sending.await.unwrap().unwrap();
    assert_eq!(sent.frames, 90);
    assert_eq!(report.stats.checksum_mismatches, 0);
    assert!(
        report.stats.updates > 2,
        "typing produced updates: {}",
        report.stats.updates
    );
    // The typing finished well before the last of the 3 seconds of frames: the screen is still.
    let server = x.xwd().canonical();
    assert!(
        report.last_frame.unwrap() == server,
        "the viewer's frame differs from the X server's screen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_window_is_shared_as_it_moves_and_resizes() {
    use tessera_platform::x11::{WindowSelector, X11Capture};
    let Some(mut x) = Xvfb::start(800, 600) else {
        return;
    };
    x.client("xterm", &["-geometry", "60x12+20+20"]);
    x.client(
        "xclock",
        &["-geometry", "120x120+500+50", "-update", "3600"],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let config = SenderConfig {
        source: SourceSpec::X11(Some(x.display.clone())),
        window: Some(WindowSelector::Title("xclock".into())),
        fps: 30,
        frames: Some(90),
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
    let display = x.display.clone();
    let moving = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            std::process::Command::new("xdotool")
                .args(args)
                .env("DISPLAY", &display)
                .status()
                .unwrap()
                .success()
        };
        std::thread::sleep(Duration::from_millis(400));
        assert!(run(&[
            "search",
            "--sync",
            "--class",
            "xclock",
            "windowmove",
            "--sync",
            "300",
            "250"
        ]));
        std::thread::sleep(Duration::from_millis(400));
        assert!(run(&[
            "search",
            "--sync",
            "--class",
            "xclock",
            "windowsize",
            "--sync",
            "200",
            "160"
        ]));
    });
    let cpu = ReceiverConfig {
        compositor: BackendRequest::Cpu,
        ..ReceiverConfig::default()
    };
    let report = Receiver::connect(cpu, link).run().await.unwrap();
    moving.await.unwrap();
    sending.await.unwrap().unwrap();
    assert_eq!(report.stats.checksum_mismatches, 0);
    assert!(
        report.stats.keyframes >= 2,
        "a resize starts a new keyframe: {}",
        report.stats.keyframes
    );

    let windows = X11Capture::open(Some(&x.display))
        .unwrap()
        .windows()
        .unwrap();
    let clock = windows
        .iter()
        .find(|w| w.title.contains("xclock"))
        .expect("xclock is listed");
    assert_eq!((clock.rect.width, clock.rect.height), (200, 160));
    let screen = x.xwd().canonical();
    let want =
        tessera_engine::FrameBuffer::from_frame(&screen.as_frame().crop(&clock.rect).unwrap());
    let got = report.last_frame.unwrap();
    assert_eq!((got.width(), got.height()), (200, 160));
    assert!(
        got == want,
        "the viewer's frame differs from the window on the X server"
    );
}
