//! A PipeWire video source for tests: a node that drives itself at 60 frames a second and
//! publishes [`TestSource::render`]'s picture of frame `n` with header and damage metadata,
//! as a compositor's screen cast does, in one of the four 32-bit layouts. It can change its
//! size while streaming.

use pipewire as pw;
use pw::spa;
use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
use spa::param::video::VideoFormat;
use spa::pod::{Object, Pod, Property, Value};
use spa::utils::SpaTypes;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_engine::{PixelFormat, Rect};

/// The side of the square that moves across the picture.
pub const BOX: u32 = 32;

#[derive(Debug, Default)]
struct SourceState {
    width: u32,
    height: u32,
    /// The next frame's number.
    next: u64,
    /// A size to change to.
    resize: Option<(u32, u32)>,
    format: Option<PixelFormat>,
}

/// A running test source; dropping it stops it.
pub struct TestSource {
    node: u32,
    state: Arc<Mutex<SourceState>>,
    quit: pw::channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestSource {
    /// Starts a `width` x `height` BGRx source on the daemon found in the environment; returns
    /// once it has a node id.
    pub fn start(width: u32, height: u32) -> Result<Self, String> {
        Self::start_as(width, height, PixelFormat::Bgrx8)
    }

    /// As [`Self::start`], offering `format` (the bytes are [`Self::render`]'s either way).
    pub fn start_as(width: u32, height: u32, format: PixelFormat) -> Result<Self, String> {
        let state = Arc::new(Mutex::new(SourceState {
            width,
            height,
            format: Some(format),
            ..SourceState::default()
        }));
        let (quit, quit_rx) = pw::channel::channel::<()>();
        let (node_tx, node_rx) = std::sync::mpsc::channel();
        let thread_state = state.clone();
        let thread = std::thread::spawn(move || {
            if let Err(e) = run(&thread_state, quit_rx, &node_tx) {
                let _ = node_tx.send(Err(e));
            }
        });
        let node = node_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the test source got no node id in 10 s".to_string())??;
        Ok(Self {
            node,
            state,
            quit,
            thread: Some(thread),
        })
    }

    /// Its node id, for [`crate::pipewire::PipeWireCapture::open`].
    pub fn node(&self) -> u32 {
        self.node
    }

    /// Frames published so far.
    pub fn published(&self) -> u64 {
        self.state.lock().expect("source state").next
    }

    /// Changes the size of the frames from the next one on (renegotiating the format).
    pub fn resize(&self, width: u32, height: u32) {
        self.state.lock().expect("source state").resize = Some((width, height));
    }

    /// Where frame `n`'s square is.
    pub fn square(width: u32, height: u32, n: u64) -> Rect {
        let span = u64::from(width.saturating_sub(BOX).max(1));
        let x = (n * 7 % span) as u32;
        let y = (height / 2).saturating_sub(BOX / 2);
        Rect::new(x, y, BOX.min(width), BOX.min(height))
    }

    /// The frame number, among the first `published` (newest first), whose picture `f` is.
    pub fn which_frame(f: &tessera_engine::FrameBuffer, published: u64) -> Option<u64> {
        let mut want = vec![0u8; f.width() as usize * f.height() as usize * 4];
        (0..=published).rev().find(|&n| {
            Self::render(f.width(), f.height(), n, &mut want);
            f.pixels() == want.as_slice()
        })
    }

    /// Frame `n` as BGRx, rows packed: a fixed pattern with a white square that moves 7 pixels
    /// a frame.
    pub fn render(width: u32, height: u32, n: u64, out: &mut [u8]) {
        let sq = Self::square(width, height, n);
        for y in 0..height {
            for x in 0..width {
                let i = (y as usize * width as usize + x as usize) * 4;
                let inside = x >= sq.x && x < sq.right() && y >= sq.y && y < sq.bottom();
                let px = if inside {
                    [255, 255, 255, 255]
                } else {
                    [(x ^ y) as u8, (x / 4) as u8, (y / 4) as u8, 255]
                };
                out[i..i + 4].copy_from_slice(&px);
            }
        }
    }
}

impl Drop for TestSource {
    fn drop(&mut self) {
        let _ = self.quit.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pod_bytes(object: Object) -> Result<Vec<u8>, String> {
    spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &Value::Object(object),
    )
    .map(|(c, _)| c.into_inner())
    .map_err(|e| format!("pod: {e:?}"))
}

/// The one format the source offers: `pixels` at `width` x `height`, 60 fps.
fn format(width: u32, height: u32, pixels: PixelFormat) -> Result<Vec<u8>, String> {
    let video = match pixels {
        PixelFormat::Bgra8 => VideoFormat::BGRA,
        PixelFormat::Rgba8 => VideoFormat::RGBA,
        PixelFormat::Bgrx8 => VideoFormat::BGRx,
        PixelFormat::Rgbx8 => VideoFormat::RGBx,
    };
    pod_bytes(spa::pod::object!(
        SpaTypes::ObjectParamFormat,
        spa::param::ParamType::EnumFormat,
        spa::pod::property!(FormatProperties::MediaType, Id, MediaType::Video),
        spa::pod::property!(FormatProperties::MediaSubtype, Id, MediaSubtype::Raw),
        spa::pod::property!(FormatProperties::VideoFormat, Id, video),
        spa::pod::property!(
            FormatProperties::VideoSize,
            Rectangle,
            spa::utils::Rectangle { width, height }
        ),
        spa::pod::property!(
            FormatProperties::VideoFramerate,
            Fraction,
            spa::utils::Fraction { num: 60, denom: 1 }
        ),
    ))
}

/// Buffers of one BGRx frame each, and the header and damage metadata.
fn buffer_params(width: u32, height: u32) -> Result<Vec<Vec<u8>>, String> {
    let stride = width as i32 * 4;
    let int = |key: u32, v: i32| Property::new(key, Value::Int(v));
    let meta = |t: u32, size: usize| {
        pod_bytes(Object {
            type_: SpaTypes::ObjectParamMeta.as_raw(),
            id: spa::param::ParamType::Meta.as_raw(),
            properties: vec![
                Property::new(spa::sys::SPA_PARAM_META_type, Value::Id(spa::utils::Id(t))),
                int(spa::sys::SPA_PARAM_META_size, size as i32),
            ],
        })
    };
    Ok(vec![
        pod_bytes(Object {
            type_: SpaTypes::ObjectParamBuffers.as_raw(),
            id: spa::param::ParamType::Buffers.as_raw(),
            properties: vec![
                int(spa::sys::SPA_PARAM_BUFFERS_buffers, 4),
                int(spa::sys::SPA_PARAM_BUFFERS_blocks, 1),
                int(spa::sys::SPA_PARAM_BUFFERS_size, stride * height as i32),
                int(spa::sys::SPA_PARAM_BUFFERS_stride, stride),
                int(
                    spa::sys::SPA_PARAM_BUFFERS_dataType,
                    1 << spa::sys::SPA_DATA_MemPtr,
                ),
            ],
        })?,
        meta(
            spa::sys::SPA_META_Header,
            std::mem::size_of::<spa::sys::spa_meta_header>(),
        )?,
        meta(
            spa::sys::SPA_META_VideoDamage,
            std::mem::size_of::<spa::sys::spa_meta_region>() * 4,
        )?,
    ])
}

fn as_pods(bytes: &[Vec<u8>]) -> Vec<&Pod> {
    bytes.iter().filter_map(|b| Pod::from_bytes(b)).collect()
}

struct Drawn {
    state: Arc<Mutex<SourceState>>,
    /// The size the stream has negotiated.
    size: (u32, u32),
    /// Where the last frame's square was, to damage it.
    last_square: Option<Rect>,
    scratch: Vec<u8>,
}

fn run(
    state: &Arc<Mutex<SourceState>>,
    quit: pw::channel::Receiver<()>,
    node: &std::sync::mpsc::Sender<Result<u32, String>>,
) -> Result<(), String> {
    pw::init();
    let mainloop = pw::main_loop::MainLoopRc::new(None).map_err(|e| e.to_string())?;
    let context = pw::context::ContextRc::new(&mainloop, None).map_err(|e| e.to_string())?;
    let core = context
        .connect_rc(None)
        .map_err(|e| format!("no PipeWire daemon: {e}"))?;
    let stream = pw::stream::StreamRc::new(
        core,
        "tessera-test-source",
        pw::properties::properties! {
            *pw::keys::MEDIA_CLASS => "Video/Source",
            *pw::keys::MEDIA_TYPE => "Video",
            *pw::keys::MEDIA_CATEGORY => "Source",
            *pw::keys::MEDIA_ROLE => "Screen",
        },
    )
    .map_err(|e| e.to_string())?;
    let (width, height, pixels) = {
        let s = state.lock().expect("source state");
        (s.width, s.height, s.format.unwrap_or(PixelFormat::Bgrx8))
    };
    let drawn = Drawn {
        state: state.clone(),
        size: (width, height),
        last_square: None,
        scratch: Vec::new(),
    };
    let node_tx = node.clone();
    let _listener = stream
        .add_local_listener_with_user_data(drawn)
        .state_changed(move |stream, _, _, new| {
            if matches!(new, pw::stream::StreamState::Paused) {
                let _ = node_tx.send(Ok(stream.node_id()));
            }
        })
        .param_changed(|stream, drawn, id, param| {
            let Some(param) = param else { return };
            if id != spa::param::ParamType::Format.as_raw() {
                return;
            }
            let mut info = spa::param::video::VideoInfoRaw::default();
            if info.parse(param).is_err() {
                return;
            }
            drawn.size = (info.size().width, info.size().height);
            drawn.last_square = None;
            if let Ok(params) = buffer_params(drawn.size.0, drawn.size.1) {
                let _ = stream.update_params(&mut as_pods(&params));
            }
        })
        .process(|stream, drawn| {
            let (width, height) = drawn.size;
            let n = {
                let mut s = drawn.state.lock().expect("source state");
                if (s.width, s.height) != (width, height) {
                    // A resize is under way: nothing until the new format is in place.
                    return;
                }
                s.next += 1;
                s.next - 1
            };
            let len = width as usize * height as usize * 4;
            drawn.scratch.resize(len, 0);
            TestSource::render(width, height, n, &mut drawn.scratch);
            let square = TestSource::square(width, height, n);
            let damage: Vec<Rect> = match drawn.last_square {
                Some(old) => vec![old, square],
                None => vec![Rect::new(0, 0, width, height)],
            };
            drawn.last_square = Some(square);
            // SAFETY: the buffer comes from this stream and goes back to it below; its data,
            // chunk and metadata pointers are PipeWire's, checked for null and size first.
            unsafe {
                let raw = stream.dequeue_raw_buffer();
                if raw.is_null() {
                    return;
                }
                let buf = (*raw).buffer;
                if !buf.is_null() && (*buf).n_datas > 0 {
                    let d = &mut *(*buf).datas;
                    if !d.data.is_null() && d.maxsize as usize >= len && !d.chunk.is_null() {
                        std::ptr::copy_nonoverlapping(
                            drawn.scratch.as_ptr(),
                            d.data.cast::<u8>(),
                            len,
                        );
                        (*d.chunk).offset = 0;
                        (*d.chunk).size = len as u32;
                        (*d.chunk).stride = width as i32 * 4;
                    }
                    let header = spa::sys::spa_buffer_find_meta_data(
                        buf,
                        spa::sys::SPA_META_Header,
                        std::mem::size_of::<spa::sys::spa_meta_header>(),
                    )
                    .cast::<spa::sys::spa_meta_header>();
                    if !header.is_null() {
                        (*header).seq = n;
                        (*header).pts = n as i64 * 16_666_667;
                        (*header).flags = 0;
                    }
                    let meta = spa::sys::spa_buffer_find_meta(buf, spa::sys::SPA_META_VideoDamage);
                    if !meta.is_null() && !(*meta).data.is_null() {
                        let room = (*meta).size as usize
                            / std::mem::size_of::<spa::sys::spa_meta_region>();
                        let regions = (*meta).data.cast::<spa::sys::spa_meta_region>();
                        let mut i = 0;
                        // Leave room for the terminating empty region.
                        for r in damage.iter().take(room.saturating_sub(1)) {
                            let reg = &mut (*regions.add(i)).region;
                            reg.position.x = r.x as i32;
                            reg.position.y = r.y as i32;
                            reg.size.width = r.width;
                            reg.size.height = r.height;
                            i += 1;
                        }
                        if i < room {
                            let reg = &mut (*regions.add(i)).region;
                            reg.size.width = 0;
                            reg.size.height = 0;
                        }
                    }
                }
                stream.queue_raw_buffer(raw);
            }
        })
        .register()
        .map_err(|e| e.to_string())?;

    let fmt = format(width, height, pixels)?;
    let mut params = [Pod::from_bytes(&fmt).ok_or("format pod")?];
    stream
        .connect(
            spa::utils::Direction::Output,
            None,
            pw::stream::StreamFlags::DRIVER | pw::stream::StreamFlags::MAP_BUFFERS,
            &mut params,
        )
        .map_err(|e| format!("connect: {e}"))?;

    // 60 Hz: trigger a frame, or renegotiate the format when a resize was asked for.
    let timer = mainloop.loop_().add_timer({
        let (stream, state) = (stream.clone(), state.clone());
        move |_| {
            let resize = state.lock().expect("source state").resize.take();
            if let Some((w, h)) = resize {
                if let Ok(fmt) = format(w, h, pixels) {
                    if let Some(pod) = Pod::from_bytes(&fmt) {
                        let mut s = state.lock().expect("source state");
                        s.width = w;
                        s.height = h;
                        drop(s);
                        let _ = stream.update_params(&mut [pod]);
                    }
                }
                return;
            }
            if stream.state() == pw::stream::StreamState::Streaming {
                let _ = stream.trigger_process();
            }
        }
    });
    timer
        .update_timer(
            Some(Duration::from_millis(16)),
            Some(Duration::from_micros(16_667)),
        )
        .into_result()
        .map_err(|e| format!("timer: {e}"))?;
    let _quit = quit.attach(mainloop.loop_(), {
        let mainloop = mainloop.clone();
        move |()| mainloop.quit()
    });
    mainloop.run();
    let _ = stream.disconnect();
    Ok(())
}

/// A daemon a test started, with a directory of its own; stopped (and the directory removed)
/// on drop.
pub struct TestDaemon {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl TestDaemon {
    /// Starts `command` and waits (10 s at most) until it has made `socket` in `dir`. `None`
    /// (test not run) where its program is not installed, a failure where system tests are
    /// required (`CI=true`, `TESSERA_REQUIRE_SYSTEM=1`); `packages` says what to install.
    pub fn start(
        command: &mut std::process::Command,
        dir: std::path::PathBuf,
        socket: &str,
        packages: &str,
    ) -> Option<Self> {
        let program = command.get_program().to_string_lossy().into_owned();
        let Ok(child) = command.spawn() else {
            assert!(
                !tessera_engine::system_tests_required(),
                "{program} is required here: install {packages}"
            );
            eprintln!("NOT RUN: {program} is not installed");
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        };
        let daemon = Self { child, dir };
        let socket = daemon.dir.join(socket);
        let started = std::time::Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{program} made no socket in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(daemon)
    }

    /// Its directory, which holds its socket.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private PipeWire daemon for tests (no session manager, no D-Bus), with its own runtime
/// directory; stopped on drop.
pub struct PipeWireDaemon(TestDaemon);

impl PipeWireDaemon {
    /// Starts `pipewire`; `None` (test not run) where it is not installed, a failure where
    /// system tests are required (`CI=true`, `TESSERA_REQUIRE_SYSTEM=1`).
    pub fn start() -> Option<Self> {
        use std::process::{Command, Stdio};
        let dir = std::env::temp_dir().join(format!(
            "tessera-pipewire-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("a runtime dir");
        let mut command = Command::new("pipewire");
        command
            .env("XDG_RUNTIME_DIR", &dir)
            .env("PIPEWIRE_RUNTIME_DIR", &dir)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        TestDaemon::start(&mut command, dir, "pipewire-0", "pipewire pipewire-bin").map(Self)
    }

    /// The runtime directory holding its socket: `PIPEWIRE_RUNTIME_DIR` for its clients.
    pub fn runtime_dir(&self) -> &std::path::Path {
        self.0.dir()
    }
}
