//! Windows Graphics Capture through `windows-capture`: the primary monitor or one window, BGRA8,
//! the pointer drawn or not, and the dirty regions Windows reports (`ReportOnly`) as hints where
//! the system supports them (else every tile is compared).
//!
//! Windows delivers a frame only when something changed, on its own thread; the newest one waits
//! in a slot, with the dirty regions of every frame since the last grab united. A grab with
//! nothing new keeps the frame and reports no damage.

use crate::{Capture, CaptureError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tessera_engine::{CpuFrame, PixelFormat, Rect};
use windows_capture::capture::{CaptureControl, Context, GraphicsCaptureApiHandler};
use windows_capture::frame::Frame;
use windows_capture::graphics_capture_api::InternalCaptureControl;
use windows_capture::monitor::Monitor;
use windows_capture::settings::{
    ColorFormat, CursorCaptureSettings, DirtyRegionSettings, DrawBorderSettings,
    GraphicsCaptureItemType, MinimumUpdateIntervalSettings, SecondaryWindowSettings, Settings,
};
use windows_capture::window::Window;

/// How long the first frame may take to arrive.
const FIRST_FRAME: Duration = Duration::from_secs(3);

/// A frame waiting to be grabbed.
#[derive(Default)]
struct Slot {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
    /// United dirty regions since the last grab; `None`: unknown (compare everything).
    dirty: Option<Vec<Rect>>,
    fresh: bool,
    failed: Option<String>,
}

#[derive(Default)]
struct Shared {
    slot: Mutex<Slot>,
    arrived: Condvar,
}

struct Handler {
    shared: Arc<Shared>,
    scratch: Vec<u8>,
}

impl GraphicsCaptureApiHandler for Handler {
    type Flags = Arc<Shared>;
    type Error = String;

    fn new(ctx: Context<Self::Flags>) -> Result<Self, Self::Error> {
        Ok(Self {
            shared: ctx.flags,
            scratch: Vec::new(),
        })
    }

    fn on_frame_arrived(
        &mut self,
        frame: &mut Frame,
        _control: InternalCaptureControl,
    ) -> Result<(), Self::Error> {
        let dirty: Option<Vec<Rect>> = frame.dirty_regions().ok().map(|regions| {
            regions
                .into_iter()
                .filter(|r| r.width > 0 && r.height > 0)
                .map(|r| {
                    Rect::new(
                        r.x.max(0) as u32,
                        r.y.max(0) as u32,
                        r.width as u32,
                        r.height as u32,
                    )
                })
                .collect()
        });
        let (width, height) = (frame.width(), frame.height());
        let buffer = frame.buffer().map_err(|e| e.to_string())?;
        let pixels = buffer.as_nopadding_buffer(&mut self.scratch);
        let mut slot = self.shared.slot.lock().map_err(|e| e.to_string())?;
        let resized = (slot.width, slot.height) != (width, height);
        slot.dirty = match (slot.fresh && !resized, slot.dirty.take(), dirty) {
            // Not grabbed since the last frame: what changed then changed too.
            (true, Some(mut before), Some(now)) => {
                before.extend(now);
                Some(before)
            }
            (true, _, _) => None,
            (false, _, now) if !resized => now,
            _ => None,
        };
        slot.width = width;
        slot.height = height;
        slot.pixels.clear();
        slot.pixels.extend_from_slice(pixels);
        slot.fresh = true;
        self.shared.arrived.notify_all();
        Ok(())
    }

    fn on_closed(&mut self) -> Result<(), Self::Error> {
        if let Ok(mut slot) = self.shared.slot.lock() {
            slot.failed = Some("the captured item closed".into());
        }
        self.shared.arrived.notify_all();
        Ok(())
    }
}

/// What is captured.
#[derive(Clone, Debug)]
enum Item {
    PrimaryMonitor,
    Window(String),
}

/// A monitor or a window, captured by Windows Graphics Capture.
pub struct WindowsCapture {
    item: Item,
    cursor: bool,
    shared: Arc<Shared>,
    control: Option<CaptureControl<Handler, String>>,
    width: u32,
    height: u32,
    pixels: Vec<u8>,
    damage: Option<Vec<Rect>>,
    label: String,
}

impl WindowsCapture {
    /// The primary monitor.
    pub fn primary_monitor() -> Result<Self, CaptureError> {
        Self::open(Item::PrimaryMonitor)
    }

    /// The first window whose title contains `title`, followed as it moves and resizes.
    pub fn window(title: &str) -> Result<Self, CaptureError> {
        Self::open(Item::Window(title.to_string()))
    }

    fn open(item: Item) -> Result<Self, CaptureError> {
        let mut capture = Self {
            label: match &item {
                Item::PrimaryMonitor => "windows primary monitor".to_string(),
                Item::Window(t) => format!("windows window {t:?}"),
            },
            item,
            cursor: true,
            shared: Arc::default(),
            control: None,
            width: 0,
            height: 0,
            pixels: Vec::new(),
            damage: None,
        };
        capture.start()?;
        Ok(capture)
    }

    /// (Re)starts the session with the current settings, and waits for its first frame.
    fn start(&mut self) -> Result<(), CaptureError> {
        if let Some(control) = self.control.take() {
            let _ = control.stop();
        }
        self.shared = Arc::default();
        let cursor = if self.cursor {
            CursorCaptureSettings::WithCursor
        } else {
            CursorCaptureSettings::WithoutCursor
        };
        let control = match &self.item {
            Item::PrimaryMonitor => {
                let monitor = Monitor::primary()
                    .map_err(|e| CaptureError::Unavailable(format!("no primary monitor: {e}")))?;
                start_session(monitor, cursor, self.shared.clone())?
            }
            Item::Window(title) => {
                let window = Window::from_contains_name(title).map_err(|e| {
                    CaptureError::Unavailable(format!("no window titled like {title:?}: {e}"))
                })?;
                start_session(window, cursor, self.shared.clone())?
            }
        };
        self.control = Some(control);
        self.take_frame(FIRST_FRAME)?
            .then_some(())
            .ok_or_else(|| CaptureError::Failed("no first frame from Windows".into()))
    }

    /// Takes the slot's frame if a fresh one arrives within `wait`; false if none did.
    fn take_frame(&mut self, wait: Duration) -> Result<bool, CaptureError> {
        let shared = self.shared.clone();
        let slot = shared
            .slot
            .lock()
            .map_err(|e| CaptureError::Failed(e.to_string()))?;
        let (mut slot, _) = shared
            .arrived
            .wait_timeout_while(slot, wait, |s| !s.fresh && s.failed.is_none())
            .map_err(|e| CaptureError::Failed(e.to_string()))?;
        if let Some(why) = slot.failed.take() {
            return Err(CaptureError::Failed(why));
        }
        if !slot.fresh {
            return Ok(false);
        }
        slot.fresh = false;
        let resized = (self.width, self.height) != (slot.width, slot.height);
        self.width = slot.width;
        self.height = slot.height;
        std::mem::swap(&mut self.pixels, &mut slot.pixels);
        self.damage = if resized { None } else { slot.dirty.take() };
        Ok(true)
    }
}

/// Starts a capture session of `item` on its own thread, handing frames to `shared`.
fn start_session<T>(
    item: T,
    cursor: CursorCaptureSettings,
    shared: Arc<Shared>,
) -> Result<CaptureControl<Handler, String>, CaptureError>
where
    T: TryInto<GraphicsCaptureItemType> + Send + 'static,
{
    let settings = Settings::new(
        item,
        cursor,
        DrawBorderSettings::WithoutBorder,
        SecondaryWindowSettings::Default,
        MinimumUpdateIntervalSettings::Default,
        DirtyRegionSettings::ReportOnly,
        ColorFormat::Bgra8,
        shared,
    );
    Handler::start_free_threaded(settings)
        .map_err(|e| CaptureError::Failed(format!("Windows Graphics Capture: {e}")))
}

impl Drop for WindowsCapture {
    fn drop(&mut self) {
        if let Some(control) = self.control.take() {
            let _ = control.stop();
        }
    }
}

impl Capture for WindowsCapture {
    fn grab(&mut self) -> Result<(), CaptureError> {
        // Windows sends frames only on change: nothing new is a still screen.
        if !self.take_frame(Duration::ZERO)? {
            self.damage = Some(Vec::new());
        }
        Ok(())
    }

    fn frame(&self) -> CpuFrame<'_> {
        CpuFrame::new(
            self.width,
            self.height,
            self.width as usize * 4,
            PixelFormat::Bgrx8,
            &self.pixels,
        )
        .expect("Windows hands whole BGRA frames")
    }

    fn damage(&self) -> Option<&[Rect]> {
        self.damage.as_deref()
    }

    fn describe(&self) -> String {
        format!("{} ({}x{})", self.label, self.width, self.height)
    }

    fn set_cursor(&mut self, on: bool) -> bool {
        if on == self.cursor {
            return true;
        }
        self.cursor = on;
        // The pointer setting belongs to the session: start a new one.
        self.start().is_ok()
    }

    fn follow_window(&mut self, window: &str) -> Result<(), CaptureError> {
        let previous = std::mem::replace(&mut self.item, Item::Window(window.to_string()));
        self.label = format!("windows window {window:?}");
        if let Err(e) = self.start() {
            self.item = previous;
            return Err(e);
        }
        Ok(())
    }
}
