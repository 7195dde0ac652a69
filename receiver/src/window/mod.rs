//! The viewer window: winit on the main thread, the stream on a tokio runtime beside it.
//!
//! Updates are composited straight into one texture on the window's own device (the engine's
//! GPU compositor uploads only dirty tiles); after each one the network side wakes the window,
//! which draws the newest frame and presents it at once. Frames that land while the window
//! draws are not queued: the next present shows the newest.
//!
//! Keys: `Z` toggles fit / 1:1, `F11` fullscreen (`Esc` leaves it), `I` the live stats in the
//! title, `Enter` starts a chat line (shown in the title; `Enter` sends it, `Esc` drops it).
//! The latest chat line from the other side shows in the title too.

pub mod layout;
mod present;

use crate::{Compositor, Receiver, ReceiverError, ReceiverReport};
use layout::Scale;
use present::Presenter;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_engine::{GpuCompositor, GpuError};
use tessera_sender::stats::StreamStats;
use thiserror::Error;
use winit::application::ApplicationHandler;
use winit::dpi::PhysicalSize;
use winit::event::{ElementState, KeyEvent, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop, EventLoopProxy};
use winit::keyboard::{Key, NamedKey};
use winit::window::{Fullscreen, Window, WindowId};

/// How the window starts.
#[derive(Clone, Debug)]
pub struct WindowOptions {
    pub scale: Scale,
    pub fullscreen: bool,
    /// Live fps, latency and bandwidth in the title.
    pub show_stats: bool,
    /// Close the window when the stream ends (else it keeps the last frame until closed).
    pub close_at_end: bool,
    /// The chat, when the window takes part in it.
    pub chat: Option<WindowChat>,
}

/// The window's part in the chat: lines typed in the window go to `typed`; `last_shown` holds
/// the latest line the chat showed, for the title.
#[derive(Clone, Debug)]
pub struct WindowChat {
    pub typed: tokio::sync::mpsc::UnboundedSender<String>,
    pub last_shown: Arc<Mutex<Option<String>>>,
}

/// Longest chat text kept in the title.
const TITLE_CHAT_CHARS: usize = 80;

#[derive(Debug, Error)]
pub enum WindowError {
    #[error("no display to open a window on ({0}); run with --headless to view without a window")]
    NoDisplay(String),
    #[error("window: {0}")]
    Window(String),
    #[error("GPU: {0}")]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Receiver(#[from] ReceiverError),
}

/// The newest composited frame, handed from the network side to the window.
#[derive(Default)]
struct Latest {
    texture: Option<wgpu::Texture>,
    capture_time_us: u64,
    /// Not yet presented.
    fresh: bool,
}

enum Wake {
    /// A frame was composited.
    Frame,
    /// The stream is over (the result waits in the channel).
    Ended,
    /// Ctrl-C.
    Quit,
}

/// Title refreshes, at most this often.
const TITLE_EVERY: Duration = Duration::from_millis(500);

/// Fails early, before any connection, where no window can be opened (no X11 or Wayland
/// display on Linux and the BSDs; Windows and macOS always have one).
pub fn check_display() -> Result<(), WindowError> {
    #[cfg(all(unix, not(target_os = "macos")))]
    if std::env::var_os("DISPLAY").is_none_or(|d| d.is_empty())
        && std::env::var_os("WAYLAND_DISPLAY").is_none_or(|d| d.is_empty())
    {
        return Err(WindowError::NoDisplay(
            "neither DISPLAY nor WAYLAND_DISPLAY is set".into(),
        ));
    }
    Ok(())
}

/// Opens the window, views the stream in it, and returns what the receiver saw once the
/// stream ends (with `close_at_end`) or the window is closed. The stream runs on `runtime`.
pub fn run_window(
    receiver: Receiver,
    options: WindowOptions,
    runtime: tokio::runtime::Handle,
) -> Result<ReceiverReport, WindowError> {
    check_display()?;
    let event_loop = EventLoop::<Wake>::with_user_event()
        .build()
        .map_err(|e| WindowError::NoDisplay(e.to_string()))?;
    let proxy = event_loop.create_proxy();
    {
        let proxy = proxy.clone();
        runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = proxy.send_event(Wake::Quit);
            }
        });
    }
    let (done_tx, done_rx) = mpsc::channel();
    let stats = receiver.stats();
    let stop = receiver.stop_handle();
    let mut app = App {
        options,
        runtime,
        proxy,
        receiver: Some(receiver),
        done_tx: Some(done_tx),
        done_rx,
        stats,
        window: None,
        presenter: None,
        latest: Arc::new(Mutex::new(Latest::default())),
        frame_size: None,
        outcome: None,
        title: TitleStats::default(),
        composing: None,
    };
    event_loop
        .run_app(&mut app)
        .map_err(|e| WindowError::Window(e.to_string()))?;
    if let Some(outcome) = app.outcome.take() {
        return outcome;
    }
    // The window was closed while the stream ran: end it as done and collect the report.
    stop.stop();
    match app.done_rx.recv_timeout(Duration::from_secs(5)) {
        Ok(result) => Ok(result?),
        Err(_) => Err(WindowError::Window(
            "the stream did not stop after the window closed".into(),
        )),
    }
}

struct App {
    options: WindowOptions,
    runtime: tokio::runtime::Handle,
    proxy: EventLoopProxy<Wake>,
    /// Until the window exists (the stream starts with it).
    receiver: Option<Receiver>,
    done_tx: Option<mpsc::Sender<Result<ReceiverReport, ReceiverError>>>,
    done_rx: mpsc::Receiver<Result<ReceiverReport, ReceiverError>>,
    stats: Arc<Mutex<StreamStats>>,
    window: Option<Arc<Window>>,
    presenter: Option<Presenter>,
    latest: Arc<Mutex<Latest>>,
    /// Size of the frame last shown: a new size resizes the window to it.
    frame_size: Option<(u32, u32)>,
    /// Set when the app must leave with this result.
    outcome: Option<Result<ReceiverReport, WindowError>>,
    title: TitleStats,
    /// A chat line being typed in the window.
    composing: Option<String>,
}

/// Counters at the last title refresh, for rates over the interval.
#[derive(Default)]
struct TitleStats {
    at: Option<Instant>,
    presented: u64,
    bytes: u64,
    latencies_ms: Vec<f64>,
    ended: bool,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl App {
    fn fail(&mut self, event_loop: &ActiveEventLoop, error: WindowError) {
        self.outcome = Some(Err(error));
        event_loop.exit();
    }

    /// Creates the window, its presenter, and starts the stream compositing into it.
    fn open(&mut self, event_loop: &ActiveEventLoop) -> Result<(), WindowError> {
        let mut attributes = Window::default_attributes()
            .with_title("Tessera")
            .with_inner_size(PhysicalSize::new(1280, 720));
        if self.options.fullscreen {
            attributes = attributes.with_fullscreen(Some(Fullscreen::Borderless(None)));
        }
        let window = Arc::new(
            event_loop
                .create_window(attributes)
                .map_err(|e| WindowError::Window(e.to_string()))?,
        );
        let presenter = Presenter::new(window.clone())?;
        eprintln!("tessera-receiver: window on {}", presenter.describe());
        let ctx = presenter.context().clone();
        let label = format!("gpu on {} (window)", ctx.adapter());
        let receiver = self.receiver.take().expect("opened once");
        let config = receiver.config();
        let compositor = Compositor::Gpu(Box::new(
            GpuCompositor::new(&ctx, config.limits).with_tile_cache(config.tile_cache_bytes),
        ));
        let latest = self.latest.clone();
        let proxy = self.proxy.clone();
        let done = self.done_tx.take().expect("opened once");
        self.runtime.spawn(async move {
            let wake = proxy.clone();
            let result = receiver
                .run_with(compositor, label, move |c, header| {
                    if let Compositor::Gpu(g) = c {
                        let mut l = latest.lock().expect("latest lock");
                        l.texture = g.texture().cloned();
                        l.capture_time_us = header.capture_time_us;
                        l.fresh = true;
                    }
                    let _ = wake.send_event(Wake::Frame);
                })
                .await;
            let _ = done.send(result);
            let _ = proxy.send_event(Wake::Ended);
        });
        window.request_redraw();
        self.window = Some(window);
        self.presenter = Some(presenter);
        Ok(())
    }

    /// Draws the newest frame. `fresh_only`: only when one landed since the last present.
    fn draw(&mut self, fresh_only: bool) -> Result<(), WindowError> {
        let (Some(window), Some(presenter)) = (&self.window, &mut self.presenter) else {
            return Ok(());
        };
        let (texture, capture_time_us, fresh) = {
            let mut l = self.latest.lock().expect("latest lock");
            let fresh = std::mem::take(&mut l.fresh);
            (l.texture.clone(), l.capture_time_us, fresh)
        };
        if fresh_only && !fresh {
            return Ok(());
        }
        if let Some(t) = &texture {
            let size = (t.width(), t.height());
            if self.frame_size != Some(size) {
                self.frame_size = Some(size);
                fit_window_to_frame(window, size);
            }
        }
        let presented = presenter.present(texture.as_ref(), self.options.scale)?;
        if presented && fresh {
            let latency = Duration::from_micros(now_us().saturating_sub(capture_time_us));
            self.stats
                .lock()
                .expect("stats lock")
                .record_present(latency);
            self.title.latencies_ms.push(latency.as_secs_f64() * 1e3);
        } else if fresh {
            // Not drawn (occluded, timed out): keep it for the next chance.
            self.latest.lock().expect("latest lock").fresh = true;
        }
        Ok(())
    }

    /// Refreshes the title: frame size, scale, and (when shown) rates since the last refresh.
    fn refresh_title(&mut self) {
        let Some(window) = &self.window else { return };
        let now = Instant::now();
        let (presented, bytes) = {
            let s = self.stats.lock().expect("stats lock");
            (s.presented, s.bytes)
        };
        let mut title = String::from("Tessera");
        if let Some((w, h)) = self.frame_size {
            let scale = match self.options.scale {
                Scale::Fit => "fit",
                Scale::Actual => "1:1",
            };
            title.push_str(&format!(" — {w}x{h} {scale}"));
        }
        if let Some(line) = &self.composing {
            title.push_str(&format!(" — say: {line}▏ (Enter sends, Esc drops)"));
        } else if self.title.ended {
            title.push_str(" — stream ended");
        } else if self.options.show_stats {
            if let Some(at) = self.title.at {
                let dt = now.duration_since(at).as_secs_f64().max(1e-3);
                let fps = (presented - self.title.presented) as f64 / dt;
                let mbit = (bytes - self.title.bytes) as f64 * 8.0 / dt / 1e6;
                title.push_str(&format!(" — {fps:.1} fps · {mbit:.2} Mbit/s"));
                let l = &mut self.title.latencies_ms;
                if !l.is_empty() {
                    l.sort_by(f64::total_cmp);
                    title.push_str(&format!(" · latency {:.1} ms", l[l.len() / 2]));
                }
            }
        }
        if self.composing.is_none() {
            let last = self
                .options
                .chat
                .as_ref()
                .and_then(|c| c.last_shown.lock().expect("chat lock").clone());
            if let Some(line) = last {
                let short: String = line.chars().take(TITLE_CHAT_CHARS).collect();
                title.push_str(&format!(" — chat: {short}"));
            }
        }
        self.title.at = Some(now);
        self.title.presented = presented;
        self.title.bytes = bytes;
        self.title.latencies_ms.clear();
        window.set_title(&title);
    }

    fn key(&mut self, event: &KeyEvent) {
        if event.state != ElementState::Pressed {
            return;
        }
        if self.compose(event) {
            return self.refresh_title();
        }
        if event.repeat {
            return;
        }
        let Some(window) = &self.window else { return };
        match &event.logical_key {
            Key::Named(NamedKey::F11) => {
                let full = window.fullscreen().is_some();
                window.set_fullscreen((!full).then_some(Fullscreen::Borderless(None)));
            }
            Key::Named(NamedKey::Escape) => window.set_fullscreen(None),
            Key::Character(c) if c.eq_ignore_ascii_case("z") => {
                self.options.scale = self.options.scale.toggled();
                window.request_redraw();
                self.refresh_title();
            }
            Key::Character(c) if c.eq_ignore_ascii_case("i") => {
                self.options.show_stats = !self.options.show_stats;
                self.refresh_title();
            }
            _ => {}
        }
    }
}

impl App {
    /// Chat typing in the window; true when the key was taken for it.
    fn compose(&mut self, event: &KeyEvent) -> bool {
        let Some(chat) = &self.options.chat else {
            return false;
        };
        let Some(line) = &mut self.composing else {
            if event.logical_key == Key::Named(NamedKey::Enter) && !event.repeat {
                self.composing = Some(String::new());
                return true;
            }
            return false;
        };
        match &event.logical_key {
            Key::Named(NamedKey::Enter) => {
                let text = std::mem::take(line);
                self.composing = None;
                if !text.trim().is_empty() {
                    let _ = chat.typed.send(text);
                }
            }
            Key::Named(NamedKey::Escape) => self.composing = None,
            Key::Named(NamedKey::Backspace) => {
                line.pop();
            }
            _ => {
                if let Some(text) = &event.text {
                    line.extend(text.chars().filter(|c| !c.is_control()));
                }
            }
        }
        true
    }
}

/// Asks for a window the frame's size (in physical pixels, so 1:1 is exact), no larger than
/// the monitor; fullscreen windows keep their size.
fn fit_window_to_frame(window: &Window, (width, height): (u32, u32)) {
    if window.fullscreen().is_some() {
        return;
    }
    let (mut w, mut h) = (width, height);
    if let Some(m) = window.current_monitor() {
        let size = m.size();
        if size.width > 0 && size.height > 0 {
            w = w.min(size.width);
            h = h.min(size.height);
        }
    }
    let _ = window.request_inner_size(PhysicalSize::new(w, h));
}

impl ApplicationHandler<Wake> for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_none() && self.outcome.is_none() {
            if let Err(e) = self.open(event_loop) {
                self.fail(event_loop, e);
            }
        }
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: Wake) {
        match event {
            Wake::Frame => {
                if let Err(e) = self.draw(true) {
                    self.fail(event_loop, e);
                }
            }
            Wake::Ended => {
                let Ok(result) = self.done_rx.try_recv() else {
                    return;
                };
                match result {
                    Err(e) => self.fail(event_loop, e.into()),
                    Ok(report) if self.options.close_at_end => {
                        self.outcome = Some(Ok(report));
                        event_loop.exit();
                    }
                    Ok(report) => {
                        // Show the last frame (it may have landed with this wake-up), then
                        // keep it on screen until the window is closed.
                        if let Err(e) = self.draw(true) {
                            return self.fail(event_loop, e);
                        }
                        self.outcome = Some(Ok(report));
                        self.title.ended = true;
                        self.refresh_title();
                        eprintln!(
                            "\ntessera-receiver: the stream ended; the window keeps the last \
                             frame until it is closed"
                        );
                    }
                }
            }
            Wake::Quit => event_loop.exit(),
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::Resized(size) => {
                if let Some(p) = &mut self.presenter {
                    p.resize(size.width, size.height);
                }
                if let Some(w) = &self.window {
                    w.request_redraw();
                }
            }
            WindowEvent::RedrawRequested => {
                if let Err(e) = self.draw(false) {
                    self.fail(event_loop, e);
                }
            }
            WindowEvent::KeyboardInput { event, .. } => self.key(&event),
            _ => {}
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        if self.title.ended {
            event_loop.set_control_flow(ControlFlow::Wait);
            return;
        }
        let due = self.title.at.map_or(Instant::now(), |at| at + TITLE_EVERY);
        if Instant::now() >= due {
            self.refresh_title();
        }
        let next = self.title.at.map_or(Instant::now(), |at| at + TITLE_EVERY);
        event_loop.set_control_flow(ControlFlow::WaitUntil(next));
    }
}
