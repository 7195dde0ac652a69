//! Sharing a real X11 screen or window: an Xvfb with real clients, driven by xdotool while the
//! stream runs; the receiver's last frame equals what the X server shows.
#![cfg(target_os = "linux")]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_engine::stream::Identity;
use tessera_engine::{BackendRequest, FrameBuffer};
use tessera_platform::x11::{WindowSelector, X11Capture};
use tessera_platform::xvfb::{run_on, xdotool_on_class, Xvfb};
use tessera_receiver::{Receiver, ReceiverConfig, ReceiverError, ReceiverReport, StopHandle};
use tessera_sender::source::SourceSpec;
use tessera_sender::stats::{StatsReport, StreamStats};
use tessera_sender::{Sender, SenderConfig, SenderError};
use tokio::task::JoinHandle;

/// An 800x600 Xvfb with an xterm and a still xclock.
async fn desktop() -> Option<Xvfb> {
    let mut x = Xvfb::start(800, 600)?;
    x.client("xterm", &["-geometry", "60x12+20+20"]);
    x.client(
        "xclock",
        &["-geometry", "120x120+500+50", "-update", "3600"],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Some(x)
}

/// A sender of the screen (or `window`) on loopback, without the pointer (xwd leaves it out),
/// at `fps`; `frames: None` grabs the screen only when the X server reports a change.
fn x11_sender(x: &Xvfb, window: Option<WindowSelector>, fps: u32, frames: Option<u64>) -> Sender {
    let config = SenderConfig {
        source: SourceSpec::X11(Some(x.display.clone())),
        window,
        fps,
        frames,
        diff: BackendRequest::Cpu,
        cursor: false,
        ..SenderConfig::default()
    };
    Sender::listen(
        config,
        "127.0.0.1:0".parse().unwrap(),
        &Identity::generate().unwrap(),
    )
    .unwrap()
}

fn cpu_receiver() -> ReceiverConfig {
    ReceiverConfig {
        compositor: BackendRequest::Cpu,
        ..ReceiverConfig::default()
    }
}

/// The typing arrived, and the viewer's last frame is the X server's (still) screen.
fn assert_typed_and_exact(report: ReceiverReport, x: &Xvfb) {
    assert!(
        report.stats.updates > 2,
        "typing produced updates: {}",
        report.stats.updates
    );
    assert!(
        report.last_frame.unwrap() == x.xwd().canonical(),
        "the viewer's frame differs from the X server's screen"
    );
}

/// Streams 90 frames at 30 fps of the screen (or `window`) to a CPU receiver while `act` runs
/// with the display's name; returns the receiver's report once both ends are done.
async fn stream_while(
    x: &Xvfb,
    window: Option<WindowSelector>,
    act: impl FnOnce(&str) + Send + 'static,
) -> ReceiverReport {
    let sender = x11_sender(x, window, 30, Some(90));
    let link = sender.link().unwrap().clone();
    let sending = tokio::spawn(sender.run());
    let display = x.display.clone();
    let acting = tokio::task::spawn_blocking(move || act(&display));
    let report = Receiver::connect(cpu_receiver(), link).run().await.unwrap();
    acting.await.unwrap();
    assert_eq!(sending.await.unwrap().unwrap().frames, 90);
    assert_eq!(report.stats.checksum_mismatches, 0);
    report
}

/// A sender of the screen at `fps` that grabs only when the X server reports a change, and a
/// CPU receiver, both running and past the first picture.
struct WatchedShare {
    sender_stats: Arc<Mutex<StreamStats>>,
    stop: StopHandle,
    sending: JoinHandle<Result<StatsReport, SenderError>>,
    receiving: JoinHandle<Result<ReceiverReport, ReceiverError>>,
}

impl WatchedShare {
    async fn start(x: &Xvfb, fps: u32) -> Self {
        let sender = x11_sender(x, None, fps, None);
        let (link, sender_stats) = (sender.link().unwrap().clone(), sender.stats());
        let sending = tokio::spawn(sender.run());
        let receiver = Receiver::connect(cpu_receiver(), link);
        let stop = receiver.stop_handle();
        let receiving = tokio::spawn(receiver.run());
        tokio::time::sleep(Duration::from_millis(800)).await;
        WatchedShare {
            sender_stats,
            stop,
            sending,
            receiving,
        }
    }

    /// Frames the sender has grabbed so far.
    fn frames(&self) -> u64 {
        self.sender_stats.lock().unwrap().frames
    }

    /// Stops the receiver and the sender; the receiver's report.
    async fn finish(self) -> ReceiverReport {
        self.stop.stop();
        let report = self.receiving.await.unwrap().unwrap();
        self.sending.abort();
        report
    }
}

/// Types `text` into the xterm with `delay_ms` between keys, and waits until it is typed.
async fn type_in_xterm(x: &Xvfb, delay_ms: u32, text: &str) {
    let (display, text) = (x.display.clone(), text.to_owned());
    tokio::task::spawn_blocking(move || {
        let delay = delay_ms.to_string();
        assert!(xdotool_on_class(
            &display,
            "xterm",
            &["windowfocus", "--sync", "type", "--delay", &delay, &text]
        ));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_x11_screen_arrives_exactly() {
    let Some(x) = desktop().await else { return };
    let report = stream_while(&x, None, |display| {
        std::thread::sleep(Duration::from_millis(300));
        assert!(xdotool_on_class(
            display,
            "xterm",
            &[
                "windowfocus",
                "--sync",
                "type",
                "--delay",
                "20",
                "echo tessera"
            ]
        ));
        assert!(run_on(display, "xdotool", &["key", "Return"]));
    })
    .await;
    // The typing finished well before the last of the 3 seconds of frames: the screen is still.
    assert_typed_and_exact(report, &x);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_window_is_shared_as_it_moves_and_resizes() {
    let Some(x) = desktop().await else { return };
    let report = stream_while(
        &x,
        Some(WindowSelector::Title("xclock".into())),
        |display| {
            std::thread::sleep(Duration::from_millis(400));
            assert!(xdotool_on_class(
                display,
                "xclock",
                &["windowmove", "--sync", "300", "250"]
            ));
            std::thread::sleep(Duration::from_millis(400));
            assert!(xdotool_on_class(
                display,
                "xclock",
                &["windowsize", "--sync", "200", "160"]
            ));
        },
    )
    .await;
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
    let want = FrameBuffer::from_frame(&x.xwd().canonical().as_frame().crop(&clock.rect).unwrap());
    let got = report.last_frame.unwrap();
    assert_eq!((got.width(), got.height()), (200, 160));
    assert!(
        got == want,
        "the viewer's frame differs from the window on the X server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_is_grabbed_when_it_changes_not_at_every_frame_time() {
    let Some(x) = desktop().await else { return };
    // No frame count: the sender waits for the X server to report changes.
    let share = WatchedShare::start(&x, 60).await;
    type_in_xterm(&x, 40, "echo watched").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (still_from, started) = (share.frames(), std::time::Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still_frames = share.frames() - still_from;
    let seconds = started.elapsed().as_secs_f64();
    let report = share.finish().await;
    // At 60 fps two still seconds would be 120 grabs; watched, they are the full compares
    // (at most one a second).
    assert!(
        (still_frames as f64) <= seconds + 1.0,
        "{still_frames} frames grabbed in {seconds:.1} s of a still screen"
    );
    assert_eq!(report.stats.checksum_mismatches, 0);
    assert_typed_and_exact(report, &x);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_scrolling_faster_than_the_frame_rate_arrives_exactly() {
    let Some(x) = desktop().await else { return };
    // Watched at 30 fps while the terminal scrolls about every 20 ms: changes outrun the
    // frames, and the sender looks for them at frame times.
    let share = WatchedShare::start(&x, 30).await;
    type_in_xterm(
        &x,
        5,
        "for i in $(seq 60); do seq $i $((i+5)); sleep 0.02; done\n",
    )
    .await;
    let typed = share.frames();
    // The loop takes about 1.5 s; then the screen is still.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let scrolled = share.frames() - typed;
    let report = share.finish().await;
    assert!(
        scrolled > 10,
        "{scrolled} frames while the terminal scrolled"
    );
    assert_eq!(report.stats.checksum_mismatches, 0);
    assert!(
        report.last_frame.unwrap() == x.xwd().canonical(),
        "the viewer's frame differs from the X server's screen"
    );
}
