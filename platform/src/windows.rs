//! Windows Graphics Capture through `windows-capture`: the primary monitor or one window, BGRA8,
//! the pointer drawn or not, and the dirty regions Windows reports (`ReportOnly`) as hints where
//! the system supports them (else every tile is compared).
//!
//! Windows delivers a frame only when something changed, on its own thread; the newest one waits
//! in a slot, with the dirty regions of every frame since the last grab united. A grab with
//! nothing new keeps the frame and reports no damage.

use crate::frame_slot::{FrameSlot, TakenFrame};
use crate::{Capture, CaptureError, ChangeSignal, Watching, WindowInfo, WindowSelector};
use std::sync::Arc;
use std::time::Duration;
use tessera_engine::{CpuFrame, Rect};
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

struct Handler {
    slot: Arc<FrameSlot>,
    scratch: Vec<u8>,
}

impl GraphicsCaptureApiHandler for Handler {
    type Flags = Arc<FrameSlot>;
    type Error = String;

    fn new(ctx: Context<Self::Flags>) -> Result<Self, Self::Error> {
        Ok(Self {
            slot: ctx.flags,
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
        self.slot
            .put(width, height, dirty, |into| into.extend_from_slice(pixels));
        Ok(())
    }

    fn on_closed(&mut self) -> Result<(), Self::Error> {
        self.slot.fail("the captured item closed".into());
        Ok(())
    }
}

/// What is captured.
#[derive(Clone, Debug)]
enum Item {
    PrimaryMonitor,
    Window(WindowSelector),
}

/// The window `selector` names: its HWND, or the first whose title contains the text.
fn find_window(selector: &WindowSelector) -> Result<Window, CaptureError> {
    match selector {
        WindowSelector::Id(id) => {
            let window = Window::from_raw_hwnd(*id as usize as *mut std::ffi::c_void);
            window
                .is_valid()
                .then_some(window)
                .ok_or_else(|| CaptureError::Unavailable(format!("no window {id:#x}")))
        }
        WindowSelector::Title(title) => Window::from_contains_name(title).map_err(|e| {
            CaptureError::Unavailable(format!("no window titled like {title:?}: {e}"))
        }),
    }
}

/// The titled windows that can be captured, where the primary monitor's frames show them.
pub fn windows() -> Result<Vec<WindowInfo>, CaptureError> {
    let monitor = Monitor::primary()
        .map_err(|e| CaptureError::Unavailable(format!("no primary monitor: {e}")))?;
    let screen = Rect::new(
        0,
        0,
        monitor.width().unwrap_or(0),
        monitor.height().unwrap_or(0),
    );
    let windows =
        Window::enumerate().map_err(|e| CaptureError::Failed(format!("listing windows: {e}")))?;
    Ok(windows
        .into_iter()
        .filter_map(|window| {
            let title = window.title().ok().filter(|t| !t.is_empty())?;
            let r = window.rect().ok()?;
            // Screen coordinates: the primary monitor's top left is the origin.
            let (x0, y0) = (r.left.max(0) as u32, r.top.max(0) as u32);
            let (x1, y1) = (r.right.max(0) as u32, r.bottom.max(0) as u32);
            let rect = Rect::new(x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0))
                .intersection(&screen)?;
            Some(WindowInfo {
                id: window.as_raw_hwnd() as usize as u32,
                title,
                rect,
            })
        })
        .collect())
}

fn label(item: &Item) -> String {
    match item {
        Item::PrimaryMonitor => "windows primary monitor".to_string(),
        Item::Window(WindowSelector::Id(id)) => format!("windows window {id:#x}"),
        Item::Window(WindowSelector::Title(t)) => format!("windows window {t:?}"),
    }
}

/// A monitor or a window, captured by Windows Graphics Capture.
pub struct WindowsCapture {
    item: Item,
    cursor: bool,
    slot: Arc<FrameSlot>,
    control: Option<CaptureControl<Handler, String>>,
    frame: TakenFrame,
    label: String,
}

impl WindowsCapture {
    /// The primary monitor.
    pub fn primary_monitor() -> Result<Self, CaptureError> {
        Self::open(Item::PrimaryMonitor)
    }

    /// The window with this HWND, or the first whose title contains this text, followed as it
    /// moves and resizes.
    pub fn window(selector: &WindowSelector) -> Result<Self, CaptureError> {
        Self::open(Item::Window(selector.clone()))
    }

    fn open(item: Item) -> Result<Self, CaptureError> {
        let mut capture = Self {
            label: label(&item),
            item,
            cursor: true,
            slot: Arc::default(),
            control: None,
            frame: TakenFrame::default(),
        };
        capture.start()?;
        Ok(capture)
    }

    /// (Re)starts the session with the current settings, and waits for its first frame. On
    /// failure the running session, if any, goes on.
    fn start(&mut self) -> Result<(), CaptureError> {
        let slot = Arc::<FrameSlot>::default();
        if let Some(signal) = self.slot.watcher() {
            slot.watch(signal);
        }
        let cursor = if self.cursor {
            CursorCaptureSettings::WithCursor
        } else {
            CursorCaptureSettings::WithoutCursor
        };
        let control = match &self.item {
            Item::PrimaryMonitor => {
                let monitor = Monitor::primary()
                    .map_err(|e| CaptureError::Unavailable(format!("no primary monitor: {e}")))?;
                start_session(monitor, cursor, slot.clone())?
            }
            Item::Window(selector) => start_session(find_window(selector)?, cursor, slot.clone())?,
        };
        let mut frame = TakenFrame::default();
        if !slot.take(FIRST_FRAME, &mut frame)? {
            let _ = control.stop();
            return Err(CaptureError::Failed("no first frame from Windows".into()));
        }
        if let Some(previous) = self.control.replace(control) {
            let _ = previous.stop();
        }
        self.slot = slot;
        self.frame = frame;
        Ok(())
    }
}

/// Starts a capture session of `item` on its own thread, handing frames to `slot`.
fn start_session<T>(
    item: T,
    cursor: CursorCaptureSettings,
    slot: Arc<FrameSlot>,
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
        slot,
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
        self.slot.grab_into(&mut self.frame)
    }

    fn watch_changes(&mut self, signal: ChangeSignal) -> Watching {
        // Windows sends frames only when something changed.
        self.slot.watch(signal);
        Watching::Signal
    }

    fn frame(&self) -> CpuFrame<'_> {
        self.frame.cpu_frame()
    }

    fn damage(&self) -> Option<&[Rect]> {
        self.frame.damage.as_deref()
    }

    fn describe(&self) -> String {
        format!(
            "{} ({}x{})",
            self.label, self.frame.width, self.frame.height
        )
    }

    fn set_cursor(&mut self, on: bool) -> bool {
        if on == self.cursor {
            return true;
        }
        self.cursor = on;
        // The pointer setting belongs to the session: start a new one.
        if self.start().is_err() {
            self.cursor = !on;
            return false;
        }
        true
    }

    fn follow_window(&mut self, window: &str) -> Result<(), CaptureError> {
        let selector: WindowSelector = window.parse().map_err(CaptureError::Unavailable)?;
        let previous = std::mem::replace(&mut self.item, Item::Window(selector));
        if let Err(e) = self.start() {
            self.item = previous;
            return Err(e);
        }
        self.label = label(&self.item);
        Ok(())
    }
}
