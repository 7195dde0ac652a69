//! The chat and command channel over loopback QUIC, sender and receiver in this process: chat
//! both ways, a viewer's approved pause really pauses the stream and resume resumes it, a denied
//! open-file opens nothing (and an approved one does), requests that leave the shared folders
//! or name unlisted programs are refused, a region moved to another of its size arrives exactly,
//! and a chat flood leaves the frame rate alone.

mod common;

use common::shown;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_engine::chat::Presets;
use tessera_engine::stream::Identity;
use tessera_engine::{BackendRequest, FrameBuffer, PixelFormat, Rect, Scene, SyntheticSource};
use tessera_receiver::{Receiver, ReceiverConfig};
use tessera_sender::chat::{ChatConsole, ChatSetup};
use tessera_sender::source::SourceSpec;
use tessera_sender::{Sender, SenderConfig};

/// A scratch folder for one test: shared files, the opener's record and audit logs.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-chat-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("shared")).unwrap();
        std::fs::create_dir_all(dir.join("opened")).unwrap();
        Self(dir)
    }

    fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    /// What the opener (`cp FILE opened/`) has copied so far.
    fn opened(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path("opened"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn setup(presets: &str, audit: &Path) -> ChatSetup {
    ChatSetup {
        presets: Arc::new(Presets::parse(presets).unwrap()),
        audit_log: Some(audit.to_path_buf()),
    }
}

/// A sender of the typing scene at 30 fps (no frame limit) and a CPU receiver joined to it,
/// with their chat consoles and the receiver's frame counter.
struct Call {
    sharer: ChatConsole,
    viewer: ChatConsole,
    frames: Arc<std::sync::Mutex<tessera_sender::stats::StreamStats>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Call {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The typing scene (320x200, 30 fps, no frame limit) with `chat`.
fn typing_scene(chat: ChatSetup) -> SenderConfig {
    SenderConfig {
        source: SourceSpec::Synthetic(Scene::Typing),
        width: 320,
        height: 200,
        fps: 30,
        diff: BackendRequest::Cpu,
        chat,
        ..SenderConfig::default()
    }
}

/// A running sender: its task, join link and chat console.
type Sharing = (
    tokio::task::JoinHandle<
        Result<tessera_sender::stats::StatsReport, tessera_sender::SenderError>,
    >,
    tessera_engine::stream::JoinLink,
    ChatConsole,
);

/// A sender of the typing scene (320x200, 30 fps, no frame limit) on loopback with `chat`.
fn sharing(chat: ChatSetup) -> Sharing {
    sharing_with(typing_scene(chat))
}

/// A sender of `config` on loopback.
fn sharing_with(config: SenderConfig) -> Sharing {
    let mut sender = Sender::listen(
        config,
        "127.0.0.1:0".parse().unwrap(),
        &Identity::generate().unwrap(),
    )
    .unwrap();
    let link = sender.link().unwrap().clone();
    let console = sender.take_chat_console().unwrap();
    (tokio::spawn(sender.run()), link, console)
}

async fn call(sharer: ChatSetup, viewer: ChatSetup) -> Call {
    let (sending, link, sharer) = sharing(sharer);
    let mut receiver = Receiver::connect(
        ReceiverConfig {
            compositor: BackendRequest::Cpu,
            chat: viewer,
            ..ReceiverConfig::default()
        },
        link,
    );
    let viewer = receiver.take_chat_console().unwrap();
    let frames = receiver.stats();
    let receiving = tokio::spawn(async move {
        let _ = receiver.run().await;
    });
    let sending = tokio::spawn(async move {
        let _ = sending.await;
    });
    let c = Call {
        sharer,
        viewer,
        frames,
        tasks: vec![sending, receiving],
    };
    c.wait_frames(5).await;
    c
}

impl Call {
    fn frames(&self) -> u64 {
        self.frames.lock().unwrap().frames
    }

    /// Frames a second arriving over the next 1.5 s.
    async fn rate(&self) -> f64 {
        let (f0, t0) = (self.frames(), Instant::now());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        (self.frames() - f0) as f64 / t0.elapsed().as_secs_f64()
    }

    async fn wait_frames(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.frames() < n {
            assert!(
                Instant::now() < deadline,
                "only {} frames arrived",
                self.frames()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn typed(console: &ChatConsole, line: &str) {
    console.typed.send(line.into()).unwrap();
}

const SHARER: &str = r#"
[[preset]]
phrase = "show notes"
action = "open-file"
path = "notes.txt"

[[preset]]
phrase = "show secret"
action = "open-file"
path = "../secret.txt"

[[preset]]
phrase = "follow the link"
action = "open-file"
path = "escape"

[[preset]]
phrase = "run it"
action = "launch"
program = "calculator; rm -rf /"

[consent]
unattended = ["resume", "set-region", "follow-window", "set-setting"]
"#;

fn viewer_presets(scratch: &Scratch) -> String {
    format!(
        r#"
[[preset]]
phrase = "pause please"
action = "pause"

[[preset]]
phrase = "resume please"
action = "resume"

[[preset]]
phrase = "just the corner"
action = "set-region"
x = 0
y = 0
width = 160
height = 100

[[preset]]
phrase = "the next corner"
action = "set-region"
x = 160
y = 0
width = 160
height = 100

[[preset]]
phrase = "off the screen"
action = "set-region"
x = 300
y = 0
width = 160
height = 100

[[preset]]
phrase = "no hints"
action = "set-setting"
name = "damage-hints"
value = "off"

[[preset]]
phrase = "hide the pointer"
action = "set-setting"
name = "pointer"
value = "off"

[[preset]]
phrase = "follow the clock"
action = "follow-window"
window = "xclock"

[allow]
folders = [{shared:?}]
opener = ["/bin/cp", "--target-directory={opened}"]
programs = {{ calculator = ["/bin/true"] }}
"#,
        shared = scratch.path("shared").to_str().unwrap(),
        opened = scratch.path("opened").to_str().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_goes_both_ways() {
    let s = Scratch::new("talk");
    let mut c = call(
        setup("", &s.path("sharer.log")),
        setup("", &s.path("viewer.log")),
    )
    .await;
    typed(&c.viewer, "hello from the viewer");
    shown(&mut c.sharer, "other side: hello from the viewer").await;
    typed(&c.sharer, "hello back \u{1b}[2J");
    let line = shown(&mut c.viewer, "other side: hello back").await;
    assert!(
        !line.contains('\u{1b}'),
        "escapes are not passed to the terminal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_pause_pauses_the_stream_and_resume_resumes_it() {
    let s = Scratch::new("pause");
    let mut c = call(
        setup(SHARER, &s.path("sharer.log")),
        setup(&viewer_presets(&s), &s.path("viewer.log")),
    )
    .await;
    typed(&c.viewer, "Pause please");
    shown(&mut c.sharer, "asks to pause").await;
    // Nothing happens before the sharer agrees.
    let before = c.frames();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        c.frames() > before + 3,
        "the stream runs while the question waits"
    );
    typed(&c.sharer, "yes");
    shown(&mut c.viewer, "pause: done").await;
    tokio::time::sleep(Duration::from_millis(200)).await; // updates in flight land
    let paused_at = c.frames();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(c.frames(), paused_at, "no frames while paused");
    // Resume is pre-approved on the sharer for stream control.
    typed(&c.viewer, "resume please");
    shown(&mut c.viewer, "resume: done").await;
    c.wait_frames(paused_at + 10).await;
    let audit = std::fs::read_to_string(s.path("sharer.log")).unwrap();
    assert!(audit.contains("pause: approved by you"), "{audit}");
    assert!(audit.contains("resume: approved unattended"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_open_file_opens_nothing_and_an_approved_one_opens_it() {
    let s = Scratch::new("open");
    std::fs::write(s.path("shared/notes.txt"), "the notes").unwrap();
    let mut c = call(
        setup(SHARER, &s.path("sharer.log")),
        setup(&viewer_presets(&s), &s.path("viewer.log")),
    )
    .await;
    typed(&c.sharer, "show notes");
    shown(&mut c.viewer, "asks to open-file notes.txt").await;
    typed(&c.viewer, "no");
    shown(&mut c.sharer, "open-file notes.txt: denied").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        s.opened().is_empty(),
        "a denied request opened {:?}",
        s.opened()
    );
    typed(&c.sharer, "show notes");
    shown(&mut c.viewer, "asks to open-file notes.txt").await;
    typed(&c.viewer, "yes");
    shown(&mut c.sharer, "open-file notes.txt: done").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.opened().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.opened(), ["notes.txt"]);
    let audit = std::fs::read_to_string(s.path("viewer.log")).unwrap();
    assert!(audit.contains("denied by you"), "{audit}");
    assert!(audit.contains("approved by you"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_and_injection_are_refused() {
    let s = Scratch::new("refuse");
    std::fs::write(s.path("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(s.path("secret.txt"), s.path("shared/escape")).unwrap();
    let mut c = call(
        setup(SHARER, &s.path("sharer.log")),
        setup(&viewer_presets(&s), &s.path("viewer.log")),
    )
    .await;
    // Refused by the viewer's checks before anyone is asked.
    typed(&c.sharer, "show secret");
    shown(&mut c.sharer, "open-file ../secret.txt: refused: '..'").await;
    typed(&c.sharer, "run it");
    shown(&mut c.sharer, "not on the programs allow-list").await;
    // A link out of the shared folder passes the words but not the running: even approved,
    // it fails.
    typed(&c.sharer, "follow the link");
    shown(&mut c.viewer, "asks to open-file escape").await;
    typed(&c.viewer, "yes");
    shown(
        &mut c.sharer,
        "open-file escape: failed: escape leads outside",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.opened().is_empty(), "opened {:?}", s.opened());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_flood_leaves_the_frame_rate_alone() {
    let s = Scratch::new("flood");
    let mut c = call(
        setup("", &s.path("sharer.log")),
        setup("", &s.path("viewer.log")),
    )
    .await;
    let quiet = c.rate().await;
    for i in 0..3000 {
        typed(&c.viewer, &format!("spam {i} {}", "x".repeat(200)));
    }
    let flooded = c.rate().await;
    // The sharer shows a bounded number of them and counts the rest.
    shown(&mut c.sharer, "other side: spam 0").await;
    assert!(
        flooded > 0.8 * quiet,
        "{flooded:.1} fps during the flood against {quiet:.1} before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chat_stream_closes_the_chat_not_the_stream() {
    use tessera_engine::stream::{Capabilities, Role};
    use tessera_engine::DecodeLimits;
    use tessera_sender::net;
    let s = Scratch::new("hostile");
    let (sending, link, mut sharer) = sharing(setup("", &s.path("sharer.log")));
    let (_endpoint, conn) = net::dial(&link, Role::Viewer).await.unwrap();
    let caps = Capabilities::with_limits(&DecodeLimits::default());
    let _hs = net::greet(&conn, Role::Viewer, link.token.secret, caps)
        .await
        .unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    // The magic, then a message that declares 65535 bytes.
    send.write_all(b"TSC1\xff\xff").await.unwrap();
    shown(&mut sharer, "exceeds 4096").await;
    // Updates still come (two: this raw viewer acknowledges none).
    for _ in 0..2 {
        let mut update = tokio::time::timeout(Duration::from_secs(5), conn.accept_uni())
            .await
            .expect("an update in time")
            .unwrap();
        let bytes = update.read_to_end(1 << 20).await.unwrap();
        assert!(!bytes.is_empty());
    }
    sending.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_can_narrow_the_share_to_a_region() {
    let s = Scratch::new("region");
    let mut c = call(
        setup(SHARER, &s.path("sharer.log")),
        setup(&viewer_presets(&s), &s.path("viewer.log")),
    )
    .await;
    let keyframes = || c.frames.lock().unwrap().keyframes;
    assert_eq!(keyframes(), 1);
    typed(&c.viewer, "just the corner");
    shown(&mut c.viewer, "set-region 0,0 160x100: done").await;
    // The new size arrives as a keyframe, verified like every frame.
    let deadline = Instant::now() + Duration::from_secs(10);
    while keyframes() < 2 {
        assert!(Instant::now() < deadline, "no keyframe at the new size");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = c.frames();
    c.wait_frames(now + 5).await;
    assert_eq!(c.frames.lock().unwrap().mismatches, 0);
    // A region off the screen fails on the sharer, and the share goes on.
    typed(&c.viewer, "off the screen");
    shown(&mut c.viewer, "set-region 300,0 160x100: failed").await;
    // A synthetic screen has no windows to follow.
    typed(&c.viewer, "follow the clock");
    shown(&mut c.viewer, "follow-window xclock: failed").await;
    let now = c.frames();
    c.wait_frames(now + 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_moved_to_another_of_its_size_arrives_exactly() {
    // The second region has the first one's size: no new grid, no keyframe. What the viewer
    // held of the first region must still be replaced wherever the second one differs.
    let s = Scratch::new("moved-region");
    let frames = 240;
    let (sending, link, _sharer) = sharing_with(SenderConfig {
        frames: Some(frames),
        ..typing_scene(setup(SHARER, &s.path("sharer.log")))
    });
    let mut receiver = Receiver::connect(
        ReceiverConfig {
            compositor: BackendRequest::Cpu,
            chat: setup(&viewer_presets(&s), &s.path("viewer.log")),
            ..ReceiverConfig::default()
        },
        link,
    );
    let mut viewer = receiver.take_chat_console().unwrap();
    let stats = receiver.stats();
    let receiving = tokio::spawn(receiver.run());
    let arrived = || stats.lock().unwrap().frames;
    let deadline = Instant::now() + Duration::from_secs(20);
    while arrived() < 5 {
        assert!(Instant::now() < deadline, "no frames");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    typed(&viewer, "just the corner");
    shown(&mut viewer, "set-region 0,0 160x100: done").await;
    let at = arrived();
    while arrived() < at + 10 {
        assert!(Instant::now() < deadline, "no frames of the first region");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    typed(&viewer, "the next corner");
    shown(&mut viewer, "set-region 160,0 160x100: done").await;
    let sent = sending.await.unwrap().unwrap();
    let report = receiving.await.unwrap().unwrap();
    assert_eq!(
        sent.frames, frames,
        "the regions moved before the stream ended"
    );
    assert_eq!(report.stats.checksum_mismatches, 0);
    let mut screen = SyntheticSource::new(Scene::Typing, 320, 200, PixelFormat::Bgra8).unwrap();
    for _ in 1..frames {
        screen.advance();
    }
    let want = FrameBuffer::from_frame(
        &screen
            .frame_buffer()
            .canonical()
            .as_frame()
            .crop(&Rect::new(160, 0, 160, 100))
            .unwrap(),
    );
    assert!(
        report.last_frame.unwrap() == want,
        "the viewer shows the second region as the sharer's screen has it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sharing_blanks_every_viewer_and_start_brings_the_screen_back() {
    let s = Scratch::new("stop");
    let (sending, link, mut sharer) = sharing(setup(
        "[[preset]]\nphrase = \"stop sharing\"\naction = \"stop-sharing\"\n\
         [[preset]]\nphrase = \"share again\"\naction = \"start-sharing\"\n",
        &s.path("sharer.log"),
    ));
    // A viewer until told to stop: its report.
    let watch = || {
        let mut r = Receiver::connect(
            ReceiverConfig {
                compositor: BackendRequest::Cpu,
                chat: setup("", &s.path("viewer.log")),
                ..ReceiverConfig::default()
            },
            link.clone(),
        );
        let console = r.take_chat_console().unwrap();
        let stop = r.stop_handle();
        (tokio::spawn(r.run()), stop, console)
    };
    let blank = |f: &tessera_engine::FrameBuffer| f.pixels().chunks(4).all(|p| p[..3] == [0, 0, 0]);
    // A first viewer watches for a while; the sharer stops sharing.
    let (first, stop_first, _c1) = watch();
    tokio::time::sleep(Duration::from_millis(400)).await;
    typed(&sharer, "stop sharing");
    shown(&mut sharer, "stop-sharing: done").await;
    // A viewer who joins now sees only the blank frame.
    let (late, stop_late, _c2) = watch();
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop_first.stop();
    stop_late.stop();
    let first = first.await.unwrap().unwrap();
    let late = late.await.unwrap().unwrap();
    // The last frame each holds is blank, verified by the checksum like any other.
    assert!(first.stats.frames > 2, "{} frames", first.stats.frames);
    assert!(blank(&first.last_frame.unwrap()));
    assert!(blank(&late.last_frame.unwrap()));
    assert_eq!(
        first.stats.checksum_mismatches + late.stats.checksum_mismatches,
        0
    );
    // Sharing again: the screen comes back.
    let (again, stop_again, _c3) = watch();
    tokio::time::sleep(Duration::from_millis(300)).await;
    typed(&sharer, "share again");
    shown(&mut sharer, "start-sharing: done").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop_again.stop();
    let again = again.await.unwrap().unwrap();
    assert_eq!(again.stats.checksum_mismatches, 0);
    assert!(!blank(&again.last_frame.unwrap()));
    sending.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_can_change_a_setting() {
    let s = Scratch::new("setting");
    let mut c = call(
        setup(SHARER, &s.path("sharer.log")),
        setup(&viewer_presets(&s), &s.path("viewer.log")),
    )
    .await;
    typed(&c.viewer, "no hints");
    shown(&mut c.viewer, "set-setting damage-hints off: done").await;
    let now = c.frames();
    c.wait_frames(now + 5).await;
    assert_eq!(c.frames.lock().unwrap().mismatches, 0);
    // The synthetic screen has no pointer: the setting fails there, and says why.
    typed(&c.viewer, "hide the pointer");
    shown(&mut c.viewer, "no pointer to draw").await;
}
