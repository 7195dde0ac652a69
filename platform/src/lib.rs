//! tessera-platform: screen capture backends behind one trait, [`Capture`].
//!
//! A backend hands the engine the current screen as a [`CpuFrame`] (in place, without copying
//! where the OS allows) plus the rectangles the OS says changed since the last grab — hints that
//! narrow the diff, never replace it. It is not the diff, the codec or the network.
//!
//! Backends: X11 (MIT-SHM + XDamage, the pointer from XFixes drawn in) and PipeWire (a node's
//! video stream, its damage metadata as hints) on Linux; Windows Graphics Capture (monitor or
//! window, dirty regions) on Windows; ScreenCaptureKit (display or window, dirty rectangles) on
//! macOS 12.3 and later, Core Graphics display images before. On Wayland the desktop portal
//! hands out the PipeWire node ([`portal`]; not run here: no compositor). The Windows and macOS
//! backends are type-checked in CI, not run.

#[cfg(target_os = "macos")]
pub mod core_graphics;
#[cfg(any(windows, target_os = "macos", test))]
mod frame_slot;
#[cfg(target_os = "linux")]
pub mod pipewire;
#[cfg(all(target_os = "linux", feature = "test-support"))]
pub mod pipewire_test_source;
#[cfg(target_os = "linux")]
pub mod portal;
#[cfg(target_os = "macos")]
pub mod screencapturekit;
#[cfg(windows)]
pub mod windows;
#[cfg(target_os = "linux")]
pub mod x11;
#[cfg(all(target_os = "linux", feature = "test-support"))]
pub mod xvfb;

use tessera_engine::{CpuFrame, Rect};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CaptureError {
    /// The backend cannot run here (no display, missing extension, unsupported depth).
    #[error("capture unavailable: {0}")]
    Unavailable(String),
    /// The OS or display server failed a request.
    #[error("capture failed: {0}")]
    Failed(String),
}

/// Which window `--window` names: an id (`0x1a00003` or decimal) or a title (substring).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowSelector {
    Id(u32),
    Title(String),
}

impl std::str::FromStr for WindowSelector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("an empty window title".into());
        }
        let id = match s.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        };
        Ok(id.map_or_else(|| Self::Title(s.to_string()), Self::Id))
    }
}

/// A window that can be followed, as the screen's frames show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowInfo {
    /// The window's id for `--window` (X11: its XID; Windows: its HWND; macOS: its CGWindowID).
    pub id: u32,
    pub title: String,
    /// Where it is in the screen's frames, in pixels (clipped to them).
    pub rect: Rect,
}

/// What a backend calls, from a thread of its own, when the OS reports that the screen may have
/// changed since the last grab: damage, a new frame, the pointer moving or changing shape.
pub type ChangeSignal = std::sync::Arc<dyn Fn() + Send + Sync>;

/// Where a backend whose frames arrive on another thread keeps the signal `watch_changes`
/// gave it (none until then).
#[cfg(any(target_os = "linux", windows, target_os = "macos", test))]
#[derive(Default)]
pub(crate) struct ChangeWatcher(std::sync::Mutex<Option<ChangeSignal>>);

#[cfg(any(target_os = "linux", windows, target_os = "macos", test))]
impl ChangeWatcher {
    /// Signals to `signal` from now on.
    pub fn set(&self, signal: ChangeSignal) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(signal);
    }

    /// The signal set, if any.
    pub fn get(&self) -> Option<ChangeSignal> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Calls the signal, if one is set.
    pub fn signal(&self) {
        if let Some(signal) = self.get() {
            signal();
        }
    }
}

/// How a watched capture tells its caller that the screen may have changed
/// ([`Capture::watch_changes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watching {
    /// It cannot say: the caller grabs at its own pace.
    No,
    /// It calls the signal it was given, from a thread of its own.
    Signal,
    /// Linux: this descriptor turns readable. The caller waits on it (level-triggered, beside
    /// its other waits) and calls [`Capture::take_changes`] when it is; no thread stands
    /// between the OS and the caller. The descriptor lives as long as the capture.
    #[cfg(target_os = "linux")]
    Readable(std::os::fd::RawFd),
}

/// A screen (or part of one) that can be grabbed again and again.
pub trait Capture: Send {
    /// Takes the screen as it is now, and the damage reported since the previous grab.
    fn grab(&mut self) -> Result<(), CaptureError>;
    /// Like [`grab`](Self::grab), for a caller that looks only where [`damage`](Self::damage)
    /// says: the backend may take only what the OS reported changed, the rest of the frame
    /// keeping what earlier grabs took. By default it takes everything.
    fn grab_damaged(&mut self) -> Result<(), CaptureError> {
        self.grab()
    }
    /// The frame of the last grab.
    fn frame(&self) -> CpuFrame<'_>;
    /// What the OS reported changed before the last grab; `None` when it does not say (compare
    /// everything). A superset of the real change.
    fn damage(&self) -> Option<&[Rect]>;
    /// What is captured, for the user.
    fn describe(&self) -> String;
    /// Draws the mouse pointer into the frames (`true`) or leaves it out. Returns whether the
    /// backend can; by default it cannot, and frames come as the OS gives them.
    fn set_cursor(&mut self, on: bool) -> bool {
        let _ = on;
        false
    }
    /// Says whenever the OS reports a change after a grab (at least once before the next grab,
    /// perhaps more often), so that the caller need not grab a still screen: by calling
    /// `signal`, or through a descriptor the caller waits on (see [`Watching`]). By default it
    /// cannot, and the caller grabs at its own pace. Grabs between reports stay correct: they
    /// show the screen as it is.
    fn watch_changes(&mut self, signal: ChangeSignal) -> Watching {
        let _ = signal;
        Watching::No
    }
    /// After [`Watching::Readable`]'s descriptor turned readable: reads what it holds, and
    /// whether that reports a change (a lost connection does: the next grab says what is
    /// wrong). It never blocks.
    fn take_changes(&mut self) -> bool {
        false
    }
    /// Captures only one window from now on (its id `0x...` or part of its title), following
    /// it as it moves and resizes. By default the backend cannot.
    fn follow_window(&mut self, window: &str) -> Result<(), CaptureError> {
        Err(CaptureError::Unavailable(format!(
            "{} cannot follow a window ({window:?})",
            self.describe()
        )))
    }
}
