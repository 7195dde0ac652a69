//! macOS capture through ScreenCaptureKit (macOS 12.3 and later): a display, or one window that
//! the stream follows as it moves and resizes, as BGRA frames copied into CPU memory, the pointer
//! drawn or not, and the dirty rectangles ScreenCaptureKit attaches to each frame
//! (`SCStreamFrameInfoDirtyRects`) as hints.
//!
//! ScreenCaptureKit sends a frame only when something changed, on a dispatch queue of ours; the
//! newest one waits in a [`FrameSlot`] for the next grab. A window's stream is reconfigured to the
//! window's new size when it is resized; the size change makes the sender send a keyframe.
//! The sender links the framework weakly (sender/build.rs), so that it starts on older macOS and
//! uses Core Graphics there ([`available`]). Not run here (no macOS): CI type-checks it.

use crate::frame_slot::{FrameSlot, TakenFrame};
use crate::{Capture, CaptureError, ChangeSignal, Watching, WindowInfo, WindowSelector};
use block2::RcBlock;
use core_graphics::display::CGDisplay;
use dispatch2::{DispatchQueue, DispatchRetained};
use objc2::rc::Retained;
use objc2::runtime::{AnyClass, AnyObject, ProtocolObject};
use objc2::{define_class, msg_send, AllocAnyThread, DefinedClass};
use objc2_core_foundation::{CFArray, CFDictionary, CGRect};
use objc2_core_graphics::CGRectMakeWithDictionaryRepresentation;
use objc2_core_media::{CMSampleBuffer, CMTime};
use objc2_core_video::{
    kCVPixelFormatType_32BGRA, kCVReturnSuccess, CVPixelBufferGetBaseAddress,
    CVPixelBufferGetBytesPerRow, CVPixelBufferGetDataSize, CVPixelBufferGetHeight,
    CVPixelBufferGetPixelFormatType, CVPixelBufferGetWidth, CVPixelBufferLockBaseAddress,
    CVPixelBufferLockFlags, CVPixelBufferUnlockBaseAddress,
};
use objc2_foundation::{
    NSArray, NSDictionary, NSError, NSNumber, NSObject, NSObjectProtocol, NSValue,
};
use objc2_screen_capture_kit::{
    SCContentFilter, SCFrameStatus, SCShareableContent, SCStream, SCStreamConfiguration,
    SCStreamDelegate, SCStreamFrameInfoContentRect, SCStreamFrameInfoContentScale,
    SCStreamFrameInfoDirtyRects, SCStreamFrameInfoScaleFactor, SCStreamFrameInfoStatus,
    SCStreamOutput, SCStreamOutputType, SCWindow,
};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tessera_engine::{CpuFrame, Rect};

/// How long ScreenCaptureKit may take to answer a request (the first one may wait for the user
/// to allow screen recording).
const ANSWER: Duration = Duration::from_secs(10);
/// How long the first frame may take to arrive.
const FIRST_FRAME: Duration = Duration::from_secs(3);
/// The shortest time between two frames ScreenCaptureKit is asked for: 1/120 s.
const FRAME_INTERVAL: (i64, i32) = (1, 120);

/// Whether this macOS has ScreenCaptureKit (12.3 and later); older systems use Core Graphics.
pub fn available() -> bool {
    AnyClass::get(c"SCStream").is_some()
}

/// A display that can be shared.
#[derive(Clone, Debug)]
pub struct ShareableDisplay {
    pub id: u32,
    /// In pixels.
    pub width: u32,
    pub height: u32,
}

/// A window that can be shared.
#[derive(Clone, Debug)]
pub struct ShareableWindow {
    pub id: u32,
    pub title: String,
    pub application: String,
    /// Where it is on the desktop, in points.
    pub frame: Rect,
    /// Where it is in the main display's frames, in pixels; `None` when it is elsewhere.
    pub on_main_display: Option<Rect>,
}

/// The titled windows on the main display, where its frames show them (for freeze-and-select).
pub fn windows_on_main_display() -> Result<Vec<WindowInfo>, CaptureError> {
    let (_, windows) = shareable()?;
    Ok(windows
        .into_iter()
        .filter(|w| !w.title.is_empty())
        .filter_map(|w| {
            w.on_main_display.map(|rect| WindowInfo {
                id: w.id,
                title: w.title,
                rect,
            })
        })
        .collect())
}

/// The displays and on-screen windows this program may capture.
pub fn shareable() -> Result<(Vec<ShareableDisplay>, Vec<ShareableWindow>), CaptureError> {
    let content = shareable_content()?;
    let displays = unsafe { content.displays() }
        .iter()
        .map(|d| {
            let id = unsafe { d.displayID() };
            let (width, height) = display_pixels(id, unsafe { (d.width(), d.height()) });
            ShareableDisplay { id, width, height }
        })
        .collect();
    let main = CGDisplay::main();
    let main_size = display_pixels(main.id, (0, 0));
    let scale = main_display_scale();
    let windows = unsafe { content.windows() }
        .iter()
        .filter(|w| unsafe { w.windowLayer() } == 0)
        .map(|w| ShareableWindow {
            on_main_display: pixels_of(
                unsafe { w.frame() },
                scale,
                (0, 0),
                main_size.0,
                main_size.1,
            ),
            id: unsafe { w.windowID() },
            title: unsafe { w.title() }
                .map(|t| t.to_string())
                .unwrap_or_default(),
            application: unsafe { w.owningApplication() }
                .map(|a| unsafe { a.applicationName() }.to_string())
                .unwrap_or_default(),
            frame: points_rect(unsafe { w.frame() }),
        })
        .collect();
    Ok((displays, windows))
}

/// What a stream captures.
#[derive(Clone, Debug)]
enum Target {
    MainDisplay,
    Window(WindowSelector),
}

/// What the stream's callbacks share with the capture.
#[derive(Default)]
struct Shared {
    slot: FrameSlot,
    /// A window's size in pixels as its latest frame says, when that differs from the stream's.
    window_size: Mutex<Option<(u32, u32)>>,
}

define_class!(
    // SAFETY: NSObject has no subclassing requirements, and `StreamOutput` does not implement
    // Drop. Its ivars are thread-safe (a mutex and a frame slot).
    #[unsafe(super(NSObject))]
    #[name = "TesseraStreamOutput"]
    #[ivars = Arc<Shared>]
    struct StreamOutput;

    unsafe impl NSObjectProtocol for StreamOutput {}

    unsafe impl SCStreamOutput for StreamOutput {
        #[unsafe(method(stream:didOutputSampleBuffer:ofType:))]
        fn stream_did_output(
            &self,
            _stream: &SCStream,
            sample: &CMSampleBuffer,
            kind: SCStreamOutputType,
        ) {
            if kind == SCStreamOutputType::Screen {
                on_frame(self.ivars(), sample);
            }
        }
    }

    unsafe impl SCStreamDelegate for StreamOutput {
        #[unsafe(method(stream:didStopWithError:))]
        fn stream_did_stop(&self, _stream: &SCStream, error: &NSError) {
            self.ivars().slot.fail(format!(
                "ScreenCaptureKit stopped the stream: {}",
                error.localizedDescription()
            ));
        }
    }
);

impl StreamOutput {
    fn new(shared: Arc<Shared>) -> Retained<Self> {
        let this = Self::alloc().set_ivars(shared);
        // SAFETY: NSObject's init on a freshly allocated object.
        unsafe { msg_send![super(this), init] }
    }
}

/// What ScreenCaptureKit attached to a frame.
struct FrameInfo {
    status: Option<isize>,
    /// Where the picture lies in the buffer, in points.
    content: Option<CGRect>,
    /// Points to pixels.
    scale_factor: f64,
    /// How much the content was shrunk to fit the buffer (1: not at all).
    content_scale: f64,
    dirty: Option<Vec<CGRect>>,
}

impl FrameInfo {
    fn of(sample: &CMSampleBuffer) -> Self {
        let mut info = Self {
            status: None,
            content: None,
            scale_factor: 1.0,
            content_scale: 1.0,
            dirty: None,
        };
        let Some(array) = (unsafe { sample.sample_attachments_array(false) }) else {
            return info;
        };
        // SAFETY: CFArray and NSArray are toll-free bridged.
        let array: &NSArray = unsafe { &*(&*array as *const CFArray as *const NSArray) };
        let Some(attachments) = array
            .firstObject()
            .and_then(|first| first.downcast::<NSDictionary>().ok())
        else {
            return info;
        };
        // SAFETY: the keys are constant NSStrings of the framework.
        let (status, content, scale, content_scale, dirty) = unsafe {
            (
                SCStreamFrameInfoStatus,
                SCStreamFrameInfoContentRect,
                SCStreamFrameInfoScaleFactor,
                SCStreamFrameInfoContentScale,
                SCStreamFrameInfoDirtyRects,
            )
        };
        let number = |key| {
            attachments
                .objectForKey(key)
                .and_then(|value| value.downcast::<NSNumber>().ok())
        };
        info.status = number(status).map(|n| n.integerValue());
        info.scale_factor = number(scale).map_or(1.0, |n| n.doubleValue());
        info.content_scale = number(content_scale).map_or(1.0, |n| n.doubleValue());
        info.content = attachments
            .objectForKey(content)
            .and_then(|value| cg_rect(&value));
        info.dirty = attachments
            .objectForKey(dirty)
            .and_then(|value| value.downcast::<NSArray>().ok())
            .map(|rects| rects.iter().filter_map(|r| cg_rect(&r)).collect());
        info
    }
}

/// A rectangle attached to a frame: a CGRect dictionary, or an NSValue.
fn cg_rect(value: &AnyObject) -> Option<CGRect> {
    if let Some(dictionary) = value.downcast_ref::<NSDictionary>() {
        let mut rect = CGRect::ZERO;
        // SAFETY: NSDictionary and CFDictionary are toll-free bridged; the function reads the
        // dictionary and writes `rect`.
        let ok = unsafe {
            let dictionary = &*(dictionary as *const NSDictionary as *const CFDictionary);
            CGRectMakeWithDictionaryRepresentation(Some(dictionary), &mut rect)
        };
        return ok.then_some(rect);
    }
    value
        .downcast_ref::<NSValue>()
        .map(|v| unsafe { v.rectValue() })
}

/// The whole pixels `rect` (in points, times `scale`) touches, shifted by `-origin` and clamped
/// to a `width` x `height` frame; `None` when nothing of it is inside.
fn pixels_of(
    rect: CGRect,
    scale: f64,
    origin: (u32, u32),
    width: u32,
    height: u32,
) -> Option<Rect> {
    let values = [
        rect.origin.x * scale,
        rect.origin.y * scale,
        (rect.origin.x + rect.size.width) * scale,
        (rect.origin.y + rect.size.height) * scale,
    ];
    if values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let clamp =
        |v: f64, shift: u32, limit: u32| (v - f64::from(shift)).clamp(0.0, f64::from(limit));
    let x0 = clamp(values[0].floor(), origin.0, width) as u32;
    let y0 = clamp(values[1].floor(), origin.1, height) as u32;
    let x1 = clamp(values[2].ceil(), origin.0, width) as u32;
    let y1 = clamp(values[3].ceil(), origin.1, height) as u32;
    (x1 > x0 && y1 > y0).then(|| Rect::new(x0, y0, x1 - x0, y1 - y0))
}

/// Copies a complete frame out of its pixel buffer into the slot.
fn on_frame(shared: &Shared, sample: &CMSampleBuffer) {
    let info = FrameInfo::of(sample);
    // Idle: nothing changed; Blank, Suspended, Started, Stopped: no picture.
    if info.status != Some(SCFrameStatus::Complete.0) {
        return;
    }
    let Some(image) = (unsafe { sample.image_buffer() }) else {
        return;
    };
    if CVPixelBufferGetPixelFormatType(&image) != kCVPixelFormatType_32BGRA {
        shared
            .slot
            .fail("ScreenCaptureKit sent frames that are not BGRA".into());
        return;
    }
    // SAFETY: the buffer is valid for the callback; it is unlocked below.
    if unsafe { CVPixelBufferLockBaseAddress(&image, CVPixelBufferLockFlags::ReadOnly) }
        != kCVReturnSuccess
    {
        return;
    }
    let (width, height) = (
        CVPixelBufferGetWidth(&image),
        CVPixelBufferGetHeight(&image),
    );
    let stride = CVPixelBufferGetBytesPerRow(&image);
    let base = CVPixelBufferGetBaseAddress(&image) as *const u8;
    let size = stride.checked_mul(height);
    let sane = !base.is_null()
        && width > 0
        && height > 0
        && width <= u32::MAX as usize / 4
        && height <= u32::MAX as usize
        && stride >= width * 4
        && size.is_some_and(|size| size <= CVPixelBufferGetDataSize(&image));
    if sane {
        // SAFETY: locked, and `stride * height` bytes lie within the buffer (checked above).
        let bytes = unsafe { std::slice::from_raw_parts(base, stride * height) };
        copy_frame(shared, &info, bytes, width as u32, height as u32, stride);
    }
    // SAFETY: locked above with the same flags.
    unsafe { CVPixelBufferUnlockBaseAddress(&image, CVPixelBufferLockFlags::ReadOnly) };
}

/// Puts the content part of a `width` x `height` BGRA buffer into the slot, with the frame's
/// dirty rectangles as damage, and notes the size a window would need.
fn copy_frame(
    shared: &Shared,
    info: &FrameInfo,
    bytes: &[u8],
    width: u32,
    height: u32,
    stride: usize,
) {
    let full = Rect::new(0, 0, width, height);
    // A window smaller than the buffer fills only its top-left part.
    let content = info
        .content
        .and_then(|r| pixels_of(r, info.scale_factor, (0, 0), width, height))
        .unwrap_or(full);
    if let Some(r) = info.content {
        let natural = (
            (r.size.width * info.scale_factor / info.content_scale).round(),
            (r.size.height * info.scale_factor / info.content_scale).round(),
        );
        if natural.0 >= 1.0 && natural.1 >= 1.0 && natural.0 < 65536.0 && natural.1 < 65536.0 {
            let natural = (natural.0 as u32, natural.1 as u32);
            let mut size = shared.window_size.lock().unwrap_or_else(|e| e.into_inner());
            *size = (natural != (width, height)).then_some(natural);
        }
    }
    // The unit of the dirty rectangles is not documented: both points and pixels, relative to
    // the buffer and to the content, are hinted, a superset either way. A shrunk picture
    // (content scale below 1) is compared whole.
    let damage = info
        .dirty
        .as_ref()
        .filter(|_| info.content_scale == 1.0)
        .map(|rects| {
            let origins = [(0, 0), (content.x, content.y)];
            let mut damage = Vec::with_capacity(rects.len() * 4);
            for &r in rects {
                for scale in [1.0, info.scale_factor] {
                    for origin in origins {
                        damage.extend(pixels_of(r, scale, origin, content.width, content.height));
                    }
                }
            }
            damage
        });
    shared
        .slot
        .put(content.width, content.height, damage, |into| {
            let row_bytes = content.width as usize * 4;
            into.reserve(row_bytes * content.height as usize);
            for row in content.y as usize..(content.y + content.height) as usize {
                let start = row * stride + content.x as usize * 4;
                into.extend_from_slice(&bytes[start..start + row_bytes]);
            }
        });
}

/// A rectangle in points, in whole points (negative coordinates clamped to 0).
fn points_rect(r: CGRect) -> Rect {
    let v = |v: f64| {
        if v.is_finite() {
            v.max(0.0).min(u32::MAX as f64) as u32
        } else {
            0
        }
    };
    Rect::new(
        v(r.origin.x),
        v(r.origin.y),
        v(r.size.width),
        v(r.size.height),
    )
}

/// A display's size in pixels (its mode's), or `points` where the mode is unknown.
fn display_pixels(id: u32, points: (isize, isize)) -> (u32, u32) {
    CGDisplay::new(id)
        .display_mode()
        .map(|mode| (mode.pixel_width() as u32, mode.pixel_height() as u32))
        .filter(|&(w, h)| w > 0 && h > 0)
        .unwrap_or((points.0.max(1) as u32, points.1.max(1) as u32))
}

/// Pixels per point of the main display.
fn main_display_scale() -> f64 {
    let display = CGDisplay::main();
    let points = display.bounds().size.width;
    match display.display_mode() {
        Some(mode) if points > 0.0 => mode.pixel_width() as f64 / points,
        _ => 1.0,
    }
}

/// An object ScreenCaptureKit handed to one of its completion handlers, moved to the thread
/// that asked.
struct Handed<T>(T);
// SAFETY: the shareable content is an immutable snapshot; it is only read, by one thread at a
// time.
unsafe impl<T> Send for Handed<T> {}

fn error_text(error: *mut NSError) -> String {
    // SAFETY: ScreenCaptureKit passes a valid NSError or null.
    unsafe { error.as_ref() }
        .map(|e| e.localizedDescription().to_string())
        .unwrap_or_else(|| "no reason given".into())
}

const NO_ANSWER: &str =
    "ScreenCaptureKit did not answer (is screen recording allowed for this program in System Settings, Privacy & Security?)";

/// The displays and windows, as ScreenCaptureKit lists them now.
fn shareable_content() -> Result<Retained<SCShareableContent>, CaptureError> {
    let (sender, answer) = mpsc::sync_channel(1);
    let handler = RcBlock::new(
        move |content: *mut SCShareableContent, error: *mut NSError| {
            // SAFETY: a valid object or null, retained for the asking thread.
            let result = match unsafe { Retained::retain(content) } {
                Some(content) => Ok(Handed(content)),
                None => Err(error_text(error)),
            };
            let _ = sender.try_send(result);
        },
    );
    unsafe {
        SCShareableContent::getShareableContentExcludingDesktopWindows_onScreenWindowsOnly_completionHandler(
            true, true, &handler,
        )
    };
    match answer.recv_timeout(ANSWER) {
        Ok(Ok(content)) => Ok(content.0),
        Ok(Err(why)) => Err(CaptureError::Unavailable(format!(
            "ScreenCaptureKit lists no content: {why}"
        ))),
        Err(_) => Err(CaptureError::Unavailable(NO_ANSWER.into())),
    }
}

/// Waits for a completion handler that reports only an error.
fn wait_done(
    what: &str,
    start: impl FnOnce(&block2::DynBlock<dyn Fn(*mut NSError)>),
) -> Result<(), CaptureError> {
    let (sender, answer) = mpsc::sync_channel(1);
    let handler = RcBlock::new(move |error: *mut NSError| {
        let _ = sender.try_send((!error.is_null()).then(|| error_text(error)));
    });
    start(&handler);
    match answer.recv_timeout(ANSWER) {
        Ok(None) => Ok(()),
        Ok(Some(why)) => Err(CaptureError::Failed(format!("{what}: {why}"))),
        Err(_) => Err(CaptureError::Unavailable(NO_ANSWER.into())),
    }
}

/// A running stream and what it needs kept alive.
struct Stream {
    stream: Retained<SCStream>,
    config: Retained<SCStreamConfiguration>,
    _output: Retained<StreamOutput>,
    _queue: DispatchRetained<DispatchQueue>,
    /// The configured frame size, in pixels.
    size: (u32, u32),
}

// SAFETY: ScreenCaptureKit's stream, configuration and content objects are not tied to a thread
// (their work runs on ScreenCaptureKit's queues and completion handlers); the capture owns them
// and uses them from one thread at a time.
unsafe impl Send for Stream {}

impl Drop for Stream {
    fn drop(&mut self) {
        unsafe { self.stream.stopCaptureWithCompletionHandler(None) };
    }
}

/// What a target resolved to.
struct Chosen {
    filter: Retained<SCContentFilter>,
    /// The frame size to start with, in pixels.
    size: (u32, u32),
    label: String,
}

/// The filter for `target`, as the displays and windows are now.
fn filter_for(target: &Target) -> Result<Chosen, CaptureError> {
    let content = shareable_content()?;
    match target {
        Target::MainDisplay => {
            let main = CGDisplay::main().id;
            let displays = unsafe { content.displays() };
            let display = displays
                .iter()
                .find(|d| unsafe { d.displayID() } == main)
                .or_else(|| displays.firstObject())
                .ok_or_else(|| {
                    CaptureError::Unavailable("ScreenCaptureKit lists no display".into())
                })?;
            let id = unsafe { display.displayID() };
            let size = display_pixels(id, unsafe { (display.width(), display.height()) });
            let filter = unsafe {
                SCContentFilter::initWithDisplay_excludingWindows(
                    SCContentFilter::alloc(),
                    &display,
                    &NSArray::new(),
                )
            };
            Ok(Chosen {
                filter,
                size,
                label: format!("macos display {id}"),
            })
        }
        Target::Window(selector) => {
            let windows = unsafe { content.windows() };
            let window: Retained<SCWindow> = windows
                .iter()
                .filter(|w| unsafe { w.windowLayer() } == 0)
                .find(|w| match selector {
                    WindowSelector::Id(id) => (unsafe { w.windowID() }) == *id,
                    WindowSelector::Title(title) => {
                        unsafe { w.title() }.is_some_and(|t| t.to_string().contains(title.as_str()))
                    }
                })
                .ok_or_else(|| {
                    CaptureError::Unavailable(format!("no on-screen window like {selector:?}"))
                })?;
            let frame = unsafe { window.frame() };
            let scale = main_display_scale();
            let size = (
                ((frame.size.width * scale).round() as u32).max(1),
                ((frame.size.height * scale).round() as u32).max(1),
            );
            let title = unsafe { window.title() }
                .map(|t| t.to_string())
                .unwrap_or_default();
            let label = format!("macos window {:#x} {title:?}", unsafe { window.windowID() });
            let filter = unsafe {
                SCContentFilter::initWithDesktopIndependentWindow(SCContentFilter::alloc(), &window)
            };
            Ok(Chosen {
                filter,
                size,
                label,
            })
        }
    }
}

/// Starts a stream of `filter` at `size` pixels, handing frames to `shared`.
fn start_stream(
    filter: &SCContentFilter,
    size: (u32, u32),
    cursor: bool,
    shared: Arc<Shared>,
) -> Result<Stream, CaptureError> {
    let config = unsafe { SCStreamConfiguration::new() };
    unsafe {
        config.setWidth(size.0 as usize);
        config.setHeight(size.1 as usize);
        config.setPixelFormat(kCVPixelFormatType_32BGRA);
        config.setShowsCursor(cursor);
        config.setMinimumFrameInterval(CMTime::new(FRAME_INTERVAL.0, FRAME_INTERVAL.1));
    }
    let output = StreamOutput::new(shared);
    let queue = DispatchQueue::new("dev.tessera.capture", None);
    let stream = unsafe {
        SCStream::initWithFilter_configuration_delegate(
            SCStream::alloc(),
            filter,
            &config,
            Some(ProtocolObject::from_ref(&*output)),
        )
    };
    unsafe {
        stream.addStreamOutput_type_sampleHandlerQueue_error(
            ProtocolObject::from_ref(&*output),
            SCStreamOutputType::Screen,
            Some(&queue),
        )
    }
    .map_err(|e| {
        CaptureError::Failed(format!(
            "ScreenCaptureKit output: {}",
            e.localizedDescription()
        ))
    })?;
    wait_done(
        "ScreenCaptureKit refused to start the stream",
        |done| unsafe { stream.startCaptureWithCompletionHandler(Some(done)) },
    )?;
    Ok(Stream {
        stream,
        config,
        _output: output,
        _queue: queue,
        size,
    })
}

/// A display or a window, captured by ScreenCaptureKit.
pub struct ScreenCaptureKitCapture {
    target: Target,
    cursor: bool,
    shared: Arc<Shared>,
    stream: Option<Stream>,
    frame: TakenFrame,
    label: String,
}

impl ScreenCaptureKitCapture {
    /// The main display.
    pub fn main_display() -> Result<Self, CaptureError> {
        Self::open(Target::MainDisplay)
    }

    /// The first on-screen window with this id or whose title contains this text, followed as
    /// it moves and resizes.
    pub fn window(selector: &WindowSelector) -> Result<Self, CaptureError> {
        Self::open(Target::Window(selector.clone()))
    }

    fn open(target: Target) -> Result<Self, CaptureError> {
        if !available() {
            return Err(CaptureError::Unavailable(
                "ScreenCaptureKit needs macOS 12.3 or later".into(),
            ));
        }
        let mut capture = Self {
            target,
            cursor: true,
            shared: Arc::default(),
            stream: None,
            frame: TakenFrame::default(),
            label: String::new(),
        };
        capture.start()?;
        Ok(capture)
    }

    /// (Re)starts the stream of the current target, and waits for its first frame. On failure
    /// the running stream, if any, goes on.
    fn start(&mut self) -> Result<(), CaptureError> {
        let chosen = filter_for(&self.target)?;
        let shared = Arc::new(Shared::default());
        if let Some(signal) = self.shared.slot.watcher() {
            shared.slot.watch(signal);
        }
        let stream = start_stream(&chosen.filter, chosen.size, self.cursor, shared.clone())?;
        let mut frame = TakenFrame::default();
        if !shared.slot.take(FIRST_FRAME, &mut frame)? {
            return Err(CaptureError::Failed(
                "no first frame from ScreenCaptureKit".into(),
            ));
        }
        self.stream = Some(stream);
        self.shared = shared;
        self.label = chosen.label;
        self.frame = frame;
        Ok(())
    }

    /// A followed window changed size: asks for frames of its new size.
    fn follow_resize(&mut self) {
        let wanted = self
            .shared
            .window_size
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let (Target::Window(_), Some(stream), Some(size)) =
            (&self.target, &mut self.stream, wanted)
        {
            if stream.size != size {
                stream.size = size;
                unsafe {
                    stream.config.setWidth(size.0 as usize);
                    stream.config.setHeight(size.1 as usize);
                    stream
                        .stream
                        .updateConfiguration_completionHandler(&stream.config, None);
                }
            }
        }
    }
}

impl Capture for ScreenCaptureKitCapture {
    fn grab(&mut self) -> Result<(), CaptureError> {
        self.follow_resize();
        self.shared.slot.grab_into(&mut self.frame)
    }

    fn watch_changes(&mut self, signal: ChangeSignal) -> Watching {
        // ScreenCaptureKit sends complete frames only when something changed.
        self.shared.slot.watch(signal);
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
        self.cursor = on;
        if let Some(stream) = &self.stream {
            unsafe {
                stream.config.setShowsCursor(on);
                stream
                    .stream
                    .updateConfiguration_completionHandler(&stream.config, None);
            }
        }
        true
    }

    fn follow_window(&mut self, window: &str) -> Result<(), CaptureError> {
        let selector: WindowSelector = window.parse().map_err(CaptureError::Unavailable)?;
        let previous = std::mem::replace(&mut self.target, Target::Window(selector));
        if let Err(e) = self.start() {
            self.target = previous;
            return Err(e);
        }
        Ok(())
    }
}
