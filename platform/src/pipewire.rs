//! PipeWire capture: a screen-cast stream from a PipeWire node (what the xdg-desktop-portal
//! hands out on Wayland desktops, or any video source on the graph), with the stream's
//! `SPA_META_VideoDamage` regions as damage hints.
//!
//! PipeWire pushes frames; [`Capture::grab`] pulls. A thread runs the PipeWire loop, copies
//! each frame out of its buffer (which goes back to the producer at once) and keeps the newest,
//! with the damage of every frame since the last grab. A grab takes that frame; when none came,
//! the previous one stays and nothing is damaged. The stream offers BGRx, RGBx, BGRA and RGBA
//! at any size, and follows the producer when it changes format or size.

use crate::{Capture, CaptureError, ChangeSignal, ChangeWatcher, Watching};
use pipewire as pw;
use pw::spa;
use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
use spa::param::video::{VideoFormat, VideoInfoRaw};
use spa::pod::{ChoiceValue, Object, Pod, Property, Value};
use spa::utils::{Choice, ChoiceEnum, ChoiceFlags, Id, SpaTypes};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tessera_engine::{CpuFrame, FrameBuffer, PixelFormat, Rect};

/// How long the first grab waits for a frame.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Damage regions asked for in each buffer's metadata.
const MAX_DAMAGE_REGIONS: usize = 32;
/// How long a stream may wait in Paused for a session manager to link it before the capture
/// links it to its node itself (a bare PipeWire daemon has no session manager).
const LINK_GRACE: Duration = Duration::from_millis(300);

/// What the PipeWire thread hands over.
#[derive(Default)]
struct Latest {
    /// The newest frame, when one came since the last grab took one.
    frame: Option<FrameBuffer>,
    /// The buffer the last grab gave back, to copy the next frame into.
    spare: Option<FrameBuffer>,
    /// Its damage, united with that of frames it replaced; `None`: some frame said nothing.
    damage: Option<Vec<Rect>>,
    /// Frames received in all.
    frames: u64,
    /// Why the stream cannot deliver (a format it cannot take, an error from PipeWire).
    error: Option<String>,
    /// A buffer too small for its declared size or stride was dropped.
    bad_buffers: u64,
}

struct Shared {
    latest: Mutex<Latest>,
    arrived: Condvar,
    /// Told of every frame and error, once the capture is watched.
    watcher: ChangeWatcher,
}

impl Shared {
    /// Wakes a grab waiting for the first frame, and the watcher: a frame (or an error) came.
    fn announce(&self) {
        self.arrived.notify_all();
        self.watcher.signal();
    }
}

/// A PipeWire video stream captured into CPU memory.
pub struct PipeWireCapture {
    node: u32,
    shared: Arc<Shared>,
    quit: pw::channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    frame: FrameBuffer,
    /// Damage of the last grab (`None`: unknown, compare everything).
    damage: Option<Vec<Rect>>,
    taken: u64,
    /// The portal session the node came from, kept open while capturing.
    portal: Option<crate::portal::ScreenCastSession>,
}

impl PipeWireCapture {
    /// Connects to node `node` of the PipeWire daemon found in the environment
    /// (`PIPEWIRE_REMOTE`, else `$XDG_RUNTIME_DIR/pipewire-0`) and waits for its first frame.
    pub fn open(node: u32) -> Result<Self, CaptureError> {
        Self::open_remote(node, None)
    }

    /// Asks the desktop portal for a screen cast (Wayland), then captures the node it grants
    /// through the remote it hands out, keeping the portal session open meanwhile.
    pub fn from_portal(kind: crate::portal::CastKind) -> Result<Self, CaptureError> {
        let mut session = crate::portal::start_screen_cast(kind)?;
        let mut capture = Self::open_remote(session.node, session.take_remote())?;
        capture.portal = Some(session);
        Ok(capture)
    }

    /// As [`Self::open`], through `remote` (a connected PipeWire socket) when given.
    pub fn open_remote(node: u32, remote: Option<OwnedFd>) -> Result<Self, CaptureError> {
        let shared = Arc::new(Shared {
            latest: Mutex::new(Latest::default()),
            arrived: Condvar::new(),
            watcher: ChangeWatcher::default(),
        });
        let (quit, quit_rx) = pw::channel::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tessera-pipewire".into())
            .spawn(move || {
                if let Err(e) = run_stream(node, remote, &thread_shared, quit_rx, &started_tx) {
                    let _ = started_tx.send(Err(e.clone()));
                    let mut l = thread_shared.latest.lock().expect("pipewire state");
                    l.error = Some(e);
                    thread_shared.announce();
                }
            })
            .map_err(|e| CaptureError::Failed(format!("pipewire thread: {e}")))?;
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(CaptureError::Unavailable(format!("pipewire: {e}")));
            }
            Err(_) => {
                let _ = thread.join();
                return Err(CaptureError::Failed("pipewire thread ended".into()));
            }
        }
        let mut capture = Self {
            node,
            shared,
            quit,
            thread: Some(thread),
            frame: FrameBuffer::new(1, 1, PixelFormat::Bgrx8).expect("a 1x1 frame"),
            damage: None,
            taken: 0,
            portal: None,
        };
        capture.take(FIRST_FRAME_TIMEOUT)?;
        Ok(capture)
    }

    /// Takes the newest frame, waiting up to `wait` for one when none has been taken yet.
    fn take(&mut self, wait: Duration) -> Result<(), CaptureError> {
        let deadline = Instant::now() + wait;
        let mut l = self.shared.latest.lock().expect("pipewire state");
        loop {
            if let Some(e) = &l.error {
                return Err(CaptureError::Failed(format!(
                    "pipewire node {}: {e}",
                    self.node
                )));
            }
            if l.frame.is_some() || self.taken > 0 {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CaptureError::Unavailable(format!(
                    "pipewire node {} sent no frame in {} s",
                    self.node,
                    wait.as_secs()
                )));
            }
            l = self
                .shared
                .arrived
                .wait_timeout(l, left)
                .expect("pipewire state")
                .0;
        }
        match l.frame.take() {
            Some(mut f) => {
                // The old buffer goes back for the next frame to be copied into.
                std::mem::swap(&mut self.frame, &mut f);
                l.spare = Some(f);
                self.damage = l.damage.take();
                self.taken = l.frames;
            }
            None => self.damage = Some(Vec::new()),
        }
        Ok(())
    }

    /// Frames received from the stream so far (grabbed or not).
    pub fn frames_received(&self) -> u64 {
        self.shared.latest.lock().expect("pipewire state").frames
    }

    /// Buffers dropped because they were smaller than their declared size.
    pub fn bad_buffers(&self) -> u64 {
        self.shared
            .latest
            .lock()
            .expect("pipewire state")
            .bad_buffers
    }
}

impl Drop for PipeWireCapture {
    fn drop(&mut self) {
        let _ = self.quit.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Capture for PipeWireCapture {
    fn grab(&mut self) -> Result<(), CaptureError> {
        self.take(Duration::ZERO)
    }

    fn watch_changes(&mut self, signal: ChangeSignal) -> Watching {
        self.shared.watcher.set(signal);
        Watching::Signal
    }

    fn frame(&self) -> CpuFrame<'_> {
        self.frame.as_frame()
    }

    fn damage(&self) -> Option<&[Rect]> {
        self.damage.as_deref()
    }

    fn describe(&self) -> String {
        format!(
            "pipewire node {}{} ({}x{} {:?})",
            self.node,
            if self.portal.is_some() {
                " from the desktop portal"
            } else {
                ""
            },
            self.frame.width(),
            self.frame.height(),
            self.frame.format()
        )
    }
}

/// The engine's format for a PipeWire video format, if it takes it.
fn pixel_format(f: VideoFormat) -> Option<PixelFormat> {
    Some(match f {
        VideoFormat::BGRx => PixelFormat::Bgrx8,
        VideoFormat::RGBx => PixelFormat::Rgbx8,
        VideoFormat::BGRA => PixelFormat::Bgra8,
        VideoFormat::RGBA => PixelFormat::Rgba8,
        _ => return None,
    })
}

/// Serializes a pod object.
fn pod_bytes(object: Object) -> Result<Vec<u8>, String> {
    spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &Value::Object(object),
    )
    .map(|(c, _)| c.into_inner())
    .map_err(|e| format!("pod: {e:?}"))
}

/// The formats the stream takes: raw video in the four 32-bit layouts, any size and rate.
fn enum_format() -> Result<Vec<u8>, String> {
    pod_bytes(spa::pod::object!(
        SpaTypes::ObjectParamFormat,
        spa::param::ParamType::EnumFormat,
        spa::pod::property!(FormatProperties::MediaType, Id, MediaType::Video),
        spa::pod::property!(FormatProperties::MediaSubtype, Id, MediaSubtype::Raw),
        spa::pod::property!(
            FormatProperties::VideoFormat,
            Choice,
            Enum,
            Id,
            VideoFormat::BGRx,
            VideoFormat::BGRx,
            VideoFormat::RGBx,
            VideoFormat::BGRA,
            VideoFormat::RGBA
        ),
        spa::pod::property!(
            FormatProperties::VideoSize,
            Choice,
            Range,
            Rectangle,
            spa::utils::Rectangle {
                width: 1920,
                height: 1080
            },
            spa::utils::Rectangle {
                width: 1,
                height: 1
            },
            spa::utils::Rectangle {
                width: 16384,
                height: 16384
            }
        ),
        spa::pod::property!(
            FormatProperties::VideoFramerate,
            Choice,
            Range,
            Fraction,
            spa::utils::Fraction { num: 60, denom: 1 },
            spa::utils::Fraction { num: 0, denom: 1 },
            spa::utils::Fraction {
                num: 1000,
                denom: 1
            }
        ),
    ))
}

/// A `ParamMeta` object asking for metadata `meta` of `size` bytes (a range for damage).
fn meta_param(meta: u32, size: Value) -> Result<Vec<u8>, String> {
    pod_bytes(Object {
        type_: SpaTypes::ObjectParamMeta.as_raw(),
        id: spa::param::ParamType::Meta.as_raw(),
        properties: vec![
            Property::new(spa::sys::SPA_PARAM_META_type, Value::Id(Id(meta))),
            Property::new(spa::sys::SPA_PARAM_META_size, size),
        ],
    })
}

/// Metadata asked for once the format is known: the header and up to
/// [`MAX_DAMAGE_REGIONS`] damage regions.
fn meta_params() -> Result<Vec<Vec<u8>>, String> {
    let region = std::mem::size_of::<spa::sys::spa_meta_region>() as i32;
    Ok(vec![
        meta_param(
            spa::sys::SPA_META_Header,
            Value::Int(std::mem::size_of::<spa::sys::spa_meta_header>() as i32),
        )?,
        meta_param(
            spa::sys::SPA_META_VideoDamage,
            Value::Choice(ChoiceValue::Int(Choice(
                ChoiceFlags::empty(),
                ChoiceEnum::Range {
                    default: region * MAX_DAMAGE_REGIONS as i32,
                    min: region,
                    max: region * MAX_DAMAGE_REGIONS as i32,
                },
            ))),
        )?,
    ])
}

/// The stream's state on the PipeWire thread.
struct StreamData {
    shared: Arc<Shared>,
    format: Option<(u32, u32, PixelFormat)>,
}

/// Runs the stream until `quit` fires; reports on `started` once it is connected.
fn run_stream(
    node: u32,
    remote: Option<OwnedFd>,
    shared: &Arc<Shared>,
    quit: pw::channel::Receiver<()>,
    started: &std::sync::mpsc::Sender<Result<(), String>>,
) -> Result<(), String> {
    pw::init();
    let mainloop = pw::main_loop::MainLoopRc::new(None).map_err(|e| format!("main loop: {e}"))?;
    let context =
        pw::context::ContextRc::new(&mainloop, None).map_err(|e| format!("context: {e}"))?;
    let core = match remote {
        Some(fd) => context.connect_fd_rc(fd, None),
        None => context.connect_rc(None),
    }
    .map_err(|e| format!("no PipeWire daemon to connect to: {e}"))?;
    let stream = pw::stream::StreamRc::new(
        core.clone(),
        "tessera-capture",
        pw::properties::properties! {
            *pw::keys::MEDIA_TYPE => "Video",
            *pw::keys::MEDIA_CATEGORY => "Capture",
            *pw::keys::MEDIA_ROLE => "Screen",
        },
    )
    .map_err(|e| format!("stream: {e}"))?;
    let data = StreamData {
        shared: shared.clone(),
        format: None,
    };
    let _listener = stream
        .add_local_listener_with_user_data(data)
        .state_changed(|_, data, _, new| {
            if let pw::stream::StreamState::Error(e) = new {
                let mut l = data.shared.latest.lock().expect("pipewire state");
                l.error = Some(format!("stream error: {e}"));
                data.shared.announce();
            }
        })
        .param_changed(|stream, data, id, param| {
            let Some(param) = param else { return };
            if id != spa::param::ParamType::Format.as_raw() {
                return;
            }
            let mut info = VideoInfoRaw::default();
            if info.parse(param).is_err() {
                return;
            }
            let size = info.size();
            let Some(format) = pixel_format(info.format()) else {
                let mut l = data.shared.latest.lock().expect("pipewire state");
                l.error = Some(format!("unsupported video format {:?}", info.format()));
                data.shared.announce();
                return;
            };
            data.format = Some((size.width, size.height, format));
            if let Ok(params) = meta_params() {
                let pods: Vec<&Pod> = params.iter().filter_map(|b| Pod::from_bytes(b)).collect();
                let mut pods = pods;
                let _ = stream.update_params(&mut pods);
            }
        })
        .process(|stream, data| {
            let Some(mut buffer) = stream.dequeue_buffer() else {
                return;
            };
            let Some((width, height, format)) = data.format else {
                return;
            };
            let damage: Option<Vec<Rect>> = buffer
                .find_meta::<spa::buffer::meta::MetaVideoDamage>()
                .map(|d| {
                    d.iter()
                        .filter_map(|r| {
                            let (p, s) = (r.position(), r.size());
                            clip(p.x, p.y, s.width, s.height, width, height)
                        })
                        .collect()
                });
            let datas = buffer.datas_mut();
            let Some(plane) = datas.first_mut() else {
                return;
            };
            let chunk = plane.chunk();
            let (offset, size, stride) = (
                chunk.offset() as usize,
                chunk.size() as usize,
                chunk.stride(),
            );
            let row = width as usize * 4;
            let stride = if stride <= 0 { row } else { stride as usize };
            let Some(bytes) = plane.data() else { return };
            let needed = (stride * (height as usize).saturating_sub(1)).saturating_add(row);
            let end = offset.checked_add(needed);
            let ok = height > 0
                && stride >= row
                && size >= needed
                && end.is_some_and(|e| e <= bytes.len());
            // A frame not yet grabbed is overwritten (the grab gets the newest); else the
            // buffer the last grab gave back is reused.
            let (reused, pending) = {
                let mut l = data.shared.latest.lock().expect("pipewire state");
                if !ok {
                    l.bad_buffers += 1;
                    return;
                }
                match l.frame.take() {
                    Some(f) => (Some(f), true),
                    None => (l.spare.take(), false),
                }
            };
            let mut frame = match reused {
                Some(f) if (f.width(), f.height(), f.format()) == (width, height, format) => f,
                _ => match FrameBuffer::new(width, height, format) {
                    Ok(f) => f,
                    Err(e) => {
                        let mut l = data.shared.latest.lock().expect("pipewire state");
                        l.error = Some(format!("frame {width}x{height}: {e}"));
                        data.shared.announce();
                        return;
                    }
                },
            };
            let src = &bytes[offset..offset + needed];
            for (y, dst) in frame.pixels_mut().chunks_exact_mut(row).enumerate() {
                dst.copy_from_slice(&src[y * stride..y * stride + row]);
            }
            let mut l = data.shared.latest.lock().expect("pipewire state");
            // Damage since the last grab: this frame's, with that of the frame it replaces.
            l.damage = match (pending, l.damage.take(), damage) {
                (false, _, d) => d,
                (true, Some(mut old), Some(new)) => {
                    old.extend(new);
                    Some(old)
                }
                _ => None,
            };
            l.frame = Some(frame);
            l.frames += 1;
            data.shared.announce();
        })
        .register()
        .map_err(|e| format!("listener: {e}"))?;

    let format = enum_format()?;
    let mut params = [Pod::from_bytes(&format).ok_or("format pod")?];
    stream
        .connect(
            spa::utils::Direction::Input,
            Some(node),
            pw::stream::StreamFlags::AUTOCONNECT | pw::stream::StreamFlags::MAP_BUFFERS,
            &mut params,
        )
        .map_err(|e| format!("connect to node {node}: {e}"))?;

    // Without a session manager (a bare daemon) nothing links the stream: once it has waited
    // in Paused for a while, link it to the node itself.
    let link: std::rc::Rc<std::cell::RefCell<Option<pw::link::Link>>> = Default::default();
    let paused_since: std::rc::Rc<std::cell::Cell<Option<Instant>>> = Default::default();
    let timer = mainloop.loop_().add_timer({
        let (stream, core, link) = (stream.clone(), core.clone(), link.clone());
        move |_| {
            if link.borrow().is_some() {
                return;
            }
            if stream.state() != pw::stream::StreamState::Paused {
                paused_since.set(None);
                return;
            }
            let since = paused_since.get().unwrap_or_else(Instant::now);
            paused_since.set(Some(since));
            if since.elapsed() < LINK_GRACE {
                return;
            }
            let made = core.create_object::<pw::link::Link>(
                "link-factory",
                &pw::properties::properties! {
                    *pw::keys::LINK_OUTPUT_NODE => node.to_string(),
                    *pw::keys::LINK_INPUT_NODE => stream.node_id().to_string(),
                },
            );
            if let Ok(l) = made {
                *link.borrow_mut() = Some(l);
            }
        }
    });
    timer
        .update_timer(
            Some(Duration::from_millis(50)),
            Some(Duration::from_millis(50)),
        )
        .into_result()
        .map_err(|e| format!("timer: {e}"))?;
    let _quit = quit.attach(mainloop.loop_(), {
        let mainloop = mainloop.clone();
        move |()| mainloop.quit()
    });
    let _ = started.send(Ok(()));
    mainloop.run();
    let _ = stream.disconnect();
    Ok(())
}

/// A damage region clipped to the frame, if anything of it is inside.
fn clip(x: i32, y: i32, w: u32, h: u32, width: u32, height: u32) -> Option<Rect> {
    let (x0, y0) = (i64::from(x).max(0), i64::from(y).max(0));
    let x1 = (i64::from(x) + i64::from(w)).min(i64::from(width));
    let y1 = (i64::from(y) + i64::from(h)).min(i64::from(height));
    (x1 > x0 && y1 > y0)
        .then(|| Rect::new(x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_is_clipped_to_the_frame() {
        assert_eq!(clip(-5, 10, 20, 5, 100, 50), Some(Rect::new(0, 10, 15, 5)));
        assert_eq!(
            clip(90, 45, 20, 20, 100, 50),
            Some(Rect::new(90, 45, 10, 5))
        );
        assert_eq!(clip(100, 0, 5, 5, 100, 50), None);
        assert_eq!(clip(0, 0, 0, 5, 100, 50), None);
        assert_eq!(clip(i32::MAX, i32::MAX, u32::MAX, u32::MAX, 100, 50), None);
    }

    #[test]
    fn takes_the_four_32_bit_layouts() {
        assert_eq!(pixel_format(VideoFormat::BGRx), Some(PixelFormat::Bgrx8));
        assert_eq!(pixel_format(VideoFormat::RGBA), Some(PixelFormat::Rgba8));
        assert_eq!(pixel_format(VideoFormat::I420), None);
        assert!(enum_format().is_ok());
        assert_eq!(meta_params().unwrap().len(), 2);
    }
}
