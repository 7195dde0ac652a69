//! tessera-platform: screen capture backends behind one trait, [`Capture`].
//!
//! A backend hands the engine the current screen as a [`CpuFrame`] (in place, without copying
//! where the OS allows) plus the rectangles the OS says changed since the last grab — hints that
//! narrow the diff, never replace it. It is not the diff, the codec or the network.
//!
//! Backends: X11 (MIT-SHM + XDamage, the pointer from XFixes drawn in) on Linux. PipeWire/portal, Windows Graphics Capture and
//! ScreenCaptureKit are not built yet.

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

/// A screen (or part of one) that can be grabbed again and again.
pub trait Capture: Send {
    /// Takes the screen as it is now, and the damage reported since the previous grab.
    fn grab(&mut self) -> Result<(), CaptureError>;
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
    /// Captures only one window from now on (its id `0x...` or part of its title), following
    /// it as it moves and resizes. By default the backend cannot.
    fn follow_window(&mut self, window: &str) -> Result<(), CaptureError> {
        Err(CaptureError::Unavailable(format!(
            "{} cannot follow a window ({window:?})",
            self.describe()
        )))
    }
}
