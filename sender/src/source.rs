//! Where the sender's frames come from: the synthetic desktop (`--source synthetic[:SCENE]`) or
//! a real screen through `tessera-platform` (`--source x11[:DISPLAY]`, `--source pipewire:NODE`,
//! `--source screen`).

use std::str::FromStr;
use tessera_engine::{CpuFrame, FrameError, PixelFormat, Rect, Scene, SyntheticSource};
pub use tessera_platform::WindowSelector;
use tessera_platform::{Capture, CaptureError};
use thiserror::Error;

/// What the desktop portal's dialog offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalPick {
    Monitor,
    Window,
}

/// What `--source` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    Synthetic(Scene),
    /// An X11 display (`None`: `$DISPLAY`).
    X11(Option<String>),
    /// A PipeWire video node (a screen cast), by id.
    PipeWire(u32),
    /// What the user picks in the desktop portal's dialog (Wayland): a monitor, or a window.
    Portal(PortalPick),
    /// This session's screen, with the backend that fits it.
    Screen,
}

impl FromStr for SourceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "synthetic" => Ok(Self::Synthetic(Scene::Typing)),
            None if s == "x11" => Ok(Self::X11(None)),
            None if s == "screen" => Ok(Self::Screen),
            None if s == "portal" => Ok(Self::Portal(PortalPick::Monitor)),
            Some(("portal", "monitor")) => Ok(Self::Portal(PortalPick::Monitor)),
            Some(("portal", "window")) => Ok(Self::Portal(PortalPick::Window)),
            Some(("synthetic", scene)) => scene.parse().map(Self::Synthetic),
            Some(("x11", display)) => Ok(Self::X11(Some(format!(":{}", display.trim_start_matches(':'))))),
            Some(("pipewire", node)) => node
                .parse()
                .map(Self::PipeWire)
                .map_err(|_| format!("pipewire source {node:?}: expected a node id (a number)")),
            _ => Err(format!(
                "unknown source {s:?}: expected synthetic[:typing|scrolling|dragging|video|idle], x11[:DISPLAY], pipewire:NODE, portal[:monitor|window] or screen"
            )),
        }
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Synthetic(scene) => write!(f, "synthetic:{}", scene.name()),
            Self::X11(Some(d)) => write!(f, "x11{d}"),
            Self::X11(None) => write!(f, "x11"),
            Self::PipeWire(node) => write!(f, "pipewire:{node}"),
            Self::Portal(PortalPick::Monitor) => write!(f, "portal:monitor"),
            Self::Portal(PortalPick::Window) => write!(f, "portal:window"),
            Self::Screen => write!(f, "screen"),
        }
    }
}

#[derive(Debug, Error)]
pub enum SourceError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
}

enum Inner {
    Synthetic {
        source: SyntheticSource,
        hints: Vec<Rect>,
        started: bool,
    },
    Capture {
        capture: Box<dyn Capture>,
        hints: Option<Vec<Rect>>,
    },
}

/// A running source, cropped to a region if one was asked for (the crop shares the source's
/// pixels: nothing is copied).
pub struct FrameSource {
    inner: Inner,
    region: Option<Rect>,
    label: String,
    /// The frame shows another part of the screen (a region or window) since the last advance:
    /// the next damage is all of it.
    reframed: bool,
}

/// Whether this is a Wayland session, where screens are shared through the desktop portal
/// (an X11 display there, XWayland, shows X clients only).
#[cfg(target_os = "linux")]
fn wayland_session() -> bool {
    std::env::var_os("WAYLAND_DISPLAY").is_some()
        || std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t == "wayland")
}

/// Which X11 display `spec` means, if it means one here.
#[cfg(target_os = "linux")]
fn x11_display(spec: &SourceSpec) -> Result<Option<Option<String>>, SourceError> {
    Ok(match spec {
        SourceSpec::X11(display) => Some(display.clone()),
        SourceSpec::Screen if wayland_session() => {
            return Err(CaptureError::Unavailable(
                "on Wayland the desktop portal's dialog picks what to share (--source portal or portal:window); it cannot list windows, follow one by title or freeze the screen"
                    .into(),
            )
            .into())
        }
        SourceSpec::Screen if std::env::var_os("DISPLAY").is_some() => Some(None),
        _ => None,
    })
}

/// The screen as it is now, without the pointer.
#[cfg(any(target_os = "linux", windows, target_os = "macos"))]
fn still_frame(capture: &mut dyn Capture) -> Result<tessera_engine::FrameBuffer, SourceError> {
    capture.set_cursor(false);
    capture.grab()?;
    Ok(tessera_engine::FrameBuffer::from_frame(&capture.frame()))
}

#[cfg(any(target_os = "linux", windows, target_os = "macos"))]
fn window_choices(windows: Vec<tessera_platform::WindowInfo>) -> Vec<crate::select::WindowChoice> {
    windows
        .into_iter()
        .map(|w| crate::select::WindowChoice {
            id: w.id,
            title: w.title,
            rect: w.rect,
        })
        .collect()
}

/// The screen `spec` names as it is now (without the pointer) and its titled windows, for
/// freeze-and-select. Real screens only.
pub fn freeze(
    spec: &SourceSpec,
) -> Result<
    (
        tessera_engine::FrameBuffer,
        Vec<crate::select::WindowChoice>,
    ),
    SourceError,
> {
    #[cfg(target_os = "linux")]
    if let Some(display) = x11_display(spec)? {
        let mut capture = tessera_platform::x11::X11Capture::open(display.as_deref())?;
        let frozen = still_frame(&mut capture)?;
        return Ok((frozen, window_choices(capture.windows()?)));
    }
    #[cfg(any(windows, target_os = "macos"))]
    if let SourceSpec::Screen = spec {
        let frozen = still_frame(open_screen()?.as_mut())?;
        #[cfg(windows)]
        let windows = tessera_platform::windows::windows()?;
        #[cfg(target_os = "macos")]
        let windows = tessera_platform::screencapturekit::windows_on_main_display()?;
        return Ok((frozen, window_choices(windows)));
    }
    Err(CaptureError::Unavailable(format!(
        "--select needs a real screen to freeze (--source screen, or x11), not {spec}"
    ))
    .into())
}

/// What `--list-sources` prints for `spec`: screens and windows, or the synthetic scenes.
pub fn list_sources(spec: &SourceSpec) -> Result<Vec<String>, SourceError> {
    #[cfg(target_os = "linux")]
    if let Some(display) = x11_display(spec)? {
        let capture = tessera_platform::x11::X11Capture::open(display.as_deref())?;
        let mut lines = vec![format!("screen  {}", capture.describe())];
        for w in capture.windows()? {
            let r = w.rect;
            lines.push(format!(
                "window  {:#x}  {:?}  {}x{}+{}+{}",
                w.id, w.title, r.width, r.height, r.x, r.y
            ));
        }
        return Ok(lines);
    }
    #[cfg(windows)]
    if let SourceSpec::Screen = spec {
        let screen = tessera_platform::windows::WindowsCapture::primary_monitor()?;
        let mut lines = vec![format!("screen  {}", screen.describe())];
        for w in tessera_platform::windows::windows()? {
            let r = w.rect;
            lines.push(format!(
                "window  {:#x}  {:?}  {}x{}+{}+{}",
                w.id, w.title, r.width, r.height, r.x, r.y
            ));
        }
        return Ok(lines);
    }
    #[cfg(target_os = "macos")]
    if let SourceSpec::Screen = spec {
        let (displays, windows) = tessera_platform::screencapturekit::shareable()?;
        let mut lines: Vec<String> = displays
            .iter()
            .map(|d| format!("screen  {}  {}x{}", d.id, d.width, d.height))
            .collect();
        for w in windows {
            let place = match w.on_main_display {
                Some(r) => format!("{}x{}+{}+{}", r.width, r.height, r.x, r.y),
                None => "on another display".to_string(),
            };
            lines.push(format!(
                "window  {:#x}  {:?} ({})  {place}",
                w.id, w.title, w.application
            ));
        }
        return Ok(lines);
    }
    if let SourceSpec::Synthetic(_) = spec {
        return Ok(Scene::ALL
            .iter()
            .map(|s| format!("synthetic:{}", s.name()))
            .collect());
    }
    Err(CaptureError::Unavailable(
        "no screen capture backend for this session (X11 needs $DISPLAY)".into(),
    )
    .into())
}

/// A screen cast the user picks in the desktop portal's dialog.
fn open_portal(pick: PortalPick) -> Result<Box<dyn Capture>, SourceError> {
    #[cfg(target_os = "linux")]
    {
        use tessera_platform::portal::CastKind;
        let kind = match pick {
            PortalPick::Monitor => CastKind::Monitor,
            PortalPick::Window => CastKind::Window,
        };
        Ok(Box::new(
            tessera_platform::pipewire::PipeWireCapture::from_portal(kind)?,
        ))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pick;
        Err(
            CaptureError::Unavailable("the desktop portal is for Linux (Wayland) desktops".into())
                .into(),
        )
    }
}

fn open_screen() -> Result<Box<dyn Capture>, SourceError> {
    #[cfg(windows)]
    {
        return Ok(Box::new(
            tessera_platform::windows::WindowsCapture::primary_monitor()?,
        ));
    }
    #[cfg(target_os = "macos")]
    {
        if tessera_platform::screencapturekit::available() {
            return Ok(Box::new(
                tessera_platform::screencapturekit::ScreenCaptureKitCapture::main_display()?,
            ));
        }
        return Ok(Box::new(
            tessera_platform::core_graphics::CgDisplayCapture::main_display()?,
        ));
    }
    #[cfg(target_os = "linux")]
    {
        if wayland_session() {
            return open_portal(PortalPick::Monitor);
        }
        if std::env::var_os("DISPLAY").is_some() {
            return Ok(Box::new(tessera_platform::x11::X11Capture::open(None)?));
        }
    }
    #[allow(unreachable_code)]
    Err(CaptureError::Unavailable(
        "no screen capture backend for this session (X11 needs $DISPLAY)".into(),
    )
    .into())
}

impl FrameSource {
    /// Opens `spec`; `width` x `height` sizes the synthetic screen (real screens have their own).
    /// `region` must lie inside the screen.
    pub fn open(
        spec: &SourceSpec,
        width: u32,
        height: u32,
        region: Option<Rect>,
        window: Option<&WindowSelector>,
    ) -> Result<Self, SourceError> {
        let inner = match window {
            None => Self::open_inner(spec, width, height)?,
            #[cfg(target_os = "linux")]
            Some(selector) => {
                let display = x11_display(spec)?.ok_or_else(|| {
                    CaptureError::Unavailable(
                        "--window follows windows of an X11 screen (--source x11 or screen)".into(),
                    )
                })?;
                let mut capture = tessera_platform::x11::X11Capture::open(display.as_deref())?;
                capture.follow(selector)?;
                Inner::Capture {
                    capture: Box::new(capture),
                    hints: None,
                }
            }
            #[cfg(windows)]
            Some(selector) => Inner::Capture {
                capture: Box::new(tessera_platform::windows::WindowsCapture::window(selector)?),
                hints: None,
            },
            #[cfg(target_os = "macos")]
            Some(selector) => Inner::Capture {
                capture: Box::new(
                    tessera_platform::screencapturekit::ScreenCaptureKitCapture::window(selector)?,
                ),
                hints: None,
            },
        };
        Self::start(inner, spec, region)
    }

    fn open_inner(spec: &SourceSpec, width: u32, height: u32) -> Result<Inner, SourceError> {
        Ok(match spec {
            SourceSpec::Synthetic(scene) => Inner::Synthetic {
                source: SyntheticSource::new(*scene, width, height, PixelFormat::Bgra8)?,
                hints: Vec::new(),
                started: false,
            },
            #[cfg(target_os = "linux")]
            SourceSpec::X11(display) => Inner::Capture {
                capture: Box::new(tessera_platform::x11::X11Capture::open(display.as_deref())?),
                hints: None,
            },
            #[cfg(not(target_os = "linux"))]
            SourceSpec::X11(_) => {
                return Err(CaptureError::Unavailable("X11 capture is Linux-only".into()).into())
            }
            #[cfg(target_os = "linux")]
            SourceSpec::PipeWire(node) => Inner::Capture {
                capture: Box::new(tessera_platform::pipewire::PipeWireCapture::open(*node)?),
                hints: None,
            },
            #[cfg(not(target_os = "linux"))]
            SourceSpec::PipeWire(_) => {
                return Err(
                    CaptureError::Unavailable("PipeWire capture is Linux-only".into()).into(),
                )
            }
            SourceSpec::Screen => Inner::Capture {
                capture: open_screen()?,
                hints: None,
            },
            SourceSpec::Portal(pick) => Inner::Capture {
                capture: open_portal(*pick)?,
                hints: None,
            },
        })
    }

    fn start(inner: Inner, spec: &SourceSpec, region: Option<Rect>) -> Result<Self, SourceError> {
        let label = match &inner {
            Inner::Synthetic { .. } => spec.to_string(),
            Inner::Capture { capture, .. } => capture.describe(),
        };
        let mut source = Self {
            inner,
            region,
            label,
            reframed: false,
        };
        if let Inner::Capture { capture, .. } = &mut source.inner {
            capture.grab()?;
        }
        if let Some(r) = region {
            source.full_frame().crop(&r)?;
        }
        Ok(source)
    }

    /// What is shared, for the user.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Moves to the next frame (the first call keeps a synthetic source's first frame). With
    /// `within_damage`, the caller looks only where [`damage`](Self::damage) says, and a capture
    /// may take only that ([`Capture::grab_damaged`](tessera_platform::Capture::grab_damaged)).
    pub fn advance(&mut self, within_damage: bool) -> Result<(), SourceError> {
        let region = self.region;
        let to_region = |rects: &[Rect]| -> Vec<Rect> {
            match region {
                None => rects.to_vec(),
                Some(r) => rects
                    .iter()
                    .filter_map(|d| d.intersection(&r))
                    .map(|i| Rect::new(i.x - r.x, i.y - r.y, i.width, i.height))
                    .collect(),
            }
        };
        match &mut self.inner {
            Inner::Synthetic {
                source,
                hints,
                started,
            } => {
                if *started {
                    source.advance();
                }
                *started = true;
                *hints = to_region(source.damage());
            }
            Inner::Capture { capture, hints } => {
                if within_damage {
                    capture.grab_damaged()?;
                } else {
                    capture.grab()?;
                }
                *hints = capture.damage().map(to_region);
            }
        }
        if std::mem::take(&mut self.reframed) {
            // What the OS reports changed is not what changed since the last frame, which
            // showed another part of the screen: all of it did.
            let whole = {
                let f = self.frame();
                Rect::new(0, 0, f.width(), f.height())
            };
            match &mut self.inner {
                Inner::Synthetic { hints, .. } => *hints = vec![whole],
                Inner::Capture { hints, .. } => *hints = None,
            }
        }
        // A screen (a window, a stream) that shrank past the shared region.
        if let Some(r) = region {
            let full = self.full_frame();
            if let Err(e) = full.crop(&r) {
                return Err(CaptureError::Failed(format!(
                    "the shared region {}x{}+{}+{} no longer fits the {}x{} source: {e}",
                    r.width,
                    r.height,
                    r.x,
                    r.y,
                    full.width(),
                    full.height()
                ))
                .into());
            }
        }
        Ok(())
    }

    fn full_frame(&self) -> CpuFrame<'_> {
        match &self.inner {
            Inner::Synthetic { source, .. } => source.frame(),
            Inner::Capture { capture, .. } => capture.frame(),
        }
    }

    /// The current frame (the region's pixels, not copied).
    pub fn frame(&self) -> CpuFrame<'_> {
        let full = self.full_frame();
        match &self.region {
            None => full,
            Some(r) => full.crop(r).expect("region was checked at open"),
        }
    }

    /// Shares only `region` of the screen (or window) from the next frame on; `None`: all of it.
    pub fn set_region(&mut self, region: Option<Rect>) -> Result<(), SourceError> {
        if let Some(r) = region {
            self.full_frame().crop(&r)?;
        }
        self.region = region;
        self.reframed = true;
        Ok(())
    }

    /// Captures only one window from now on (id or part of its title), following it; the
    /// region is reset to the whole window.
    pub fn follow_window(&mut self, window: &str) -> Result<(), SourceError> {
        match &mut self.inner {
            Inner::Synthetic { .. } => Err(CaptureError::Unavailable(
                "a synthetic screen has no windows to follow".into(),
            )
            .into()),
            Inner::Capture { capture, .. } => {
                capture.follow_window(window)?;
                // From here the capture shows the new window, even if this grab fails.
                self.reframed = true;
                capture.grab()?;
                self.label = capture.describe();
                self.region = None;
                Ok(())
            }
        }
    }

    /// Draws the mouse pointer into captured frames, or leaves it out, from the next frame on.
    /// Returns whether the source can (synthetic scenes have no pointer).
    pub fn set_cursor(&mut self, on: bool) -> bool {
        match &mut self.inner {
            Inner::Synthetic { .. } => false,
            Inner::Capture { capture, .. } => capture.set_cursor(on),
        }
    }

    /// Says whenever the screen may have changed, if the source can (real screens): by
    /// calling `signal`, or through a descriptor to wait on; then a frame need only be taken
    /// after a report. A synthetic screen cannot.
    pub fn watch_changes(
        &mut self,
        signal: tessera_platform::ChangeSignal,
    ) -> tessera_platform::Watching {
        match &mut self.inner {
            Inner::Synthetic { .. } => tessera_platform::Watching::No,
            Inner::Capture { capture, .. } => capture.watch_changes(signal),
        }
    }

    /// After the descriptor of [`tessera_platform::Watching::Readable`] turned readable:
    /// whether what it held reports a change.
    pub fn take_changes(&mut self) -> bool {
        match &mut self.inner {
            Inner::Synthetic { .. } => false,
            Inner::Capture { capture, .. } => capture.take_changes(),
        }
    }

    /// Whether the frame shows another region or window than the last [`advance`](Self::advance)
    /// left it showing: what the last frame's changes say about it no longer holds.
    pub fn reframed(&self) -> bool {
        self.reframed
    }

    /// What changed since the previous frame, in the frame's coordinates, if the source says:
    /// all of the frame when it shows another region or window than the previous one.
    pub fn damage(&self) -> Option<&[Rect]> {
        match &self.inner {
            Inner::Synthetic { hints, .. } => Some(hints),
            Inner::Capture { hints, .. } => hints.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_region_reports_all_of_itself_changed_once() {
        let mut s =
            FrameSource::open(&SourceSpec::Synthetic(Scene::Typing), 320, 200, None, None).unwrap();
        s.advance(true).unwrap();
        s.set_region(Some(Rect::new(0, 0, 160, 100))).unwrap();
        s.advance(true).unwrap();
        let whole = [Rect::new(0, 0, 160, 100)];
        assert_eq!(s.damage(), Some(&whole[..]));
        // Same size, another place: the damage of the scene would miss what the move changed.
        s.set_region(Some(Rect::new(160, 0, 160, 100))).unwrap();
        assert!(s.reframed());
        s.advance(true).unwrap();
        assert!(!s.reframed());
        assert_eq!(s.damage(), Some(&whole[..]));
        // Then the scene's own damage again: one typed character, not the whole region.
        s.set_region(Some(Rect::new(0, 0, 160, 100))).unwrap();
        s.advance(true).unwrap();
        s.advance(true).unwrap();
        let d = s.damage().unwrap();
        assert!(!d.is_empty() && d.iter().all(|r| r.width * r.height < 160 * 100 / 4));
        // A region that does not fit is refused and changes nothing.
        assert!(s.set_region(Some(Rect::new(300, 0, 160, 100))).is_err());
        s.advance(true).unwrap();
        assert_ne!(s.damage(), Some(&whole[..]));
    }

    #[test]
    fn windows_need_an_x11_screen() {
        let xclock = "xclock".parse::<WindowSelector>().unwrap();
        assert!(FrameSource::open(
            &SourceSpec::Synthetic(Scene::Idle),
            64,
            64,
            None,
            Some(&xclock)
        )
        .is_err());
        assert_eq!("0x1a".parse(), Ok(WindowSelector::Id(26)));
        assert_eq!("77".parse(), Ok(WindowSelector::Id(77)));
        assert!("".parse::<WindowSelector>().is_err());
        assert_eq!(
            list_sources(&SourceSpec::Synthetic(Scene::Idle))
                .unwrap()
                .len(),
            5
        );
    }

    #[test]
    fn specs_parse_and_regions_crop() {
        assert_eq!(
            "synthetic".parse(),
            Ok(SourceSpec::Synthetic(Scene::Typing))
        );
        assert_eq!(
            "synthetic:video".parse(),
            Ok(SourceSpec::Synthetic(Scene::Video))
        );
        assert_eq!("x11:99".parse(), Ok(SourceSpec::X11(Some(":99".into()))));
        assert_eq!("x11".parse(), Ok(SourceSpec::X11(None)));
        assert_eq!("screen".parse(), Ok(SourceSpec::Screen));
        assert_eq!("pipewire:42".parse(), Ok(SourceSpec::PipeWire(42)));
        assert_eq!(SourceSpec::PipeWire(42).to_string(), "pipewire:42");
        for (text, pick) in [
            ("portal", PortalPick::Monitor),
            ("portal:monitor", PortalPick::Monitor),
            ("portal:window", PortalPick::Window),
        ] {
            assert_eq!(text.parse(), Ok(SourceSpec::Portal(pick)));
        }
        assert_eq!(
            SourceSpec::Portal(PortalPick::Window).to_string(),
            "portal:window"
        );
        assert!("portal:tab".parse::<SourceSpec>().is_err());
        for bad in ["pipewire", "pipewire:", "pipewire:x", "pipewire:-1"] {
            assert!(bad.parse::<SourceSpec>().is_err(), "{bad}");
        }
        assert!("synthetic:movie".parse::<SourceSpec>().is_err());
        assert!("vnc".parse::<SourceSpec>().is_err());
        let spec = SourceSpec::Synthetic(Scene::Video);
        let mut s =
            FrameSource::open(&spec, 640, 480, Some(Rect::new(400, 40, 200, 100)), None).unwrap();
        s.advance(true).unwrap();
        s.advance(true).unwrap();
        assert_eq!((s.frame().width(), s.frame().height()), (200, 100));
        let damage = s.damage().unwrap();
        assert!(damage.iter().all(|d| d.right() <= 200 && d.bottom() <= 100));
        assert!(!damage.is_empty());
        assert!(FrameSource::open(
            &SourceSpec::Synthetic(Scene::Idle),
            640,
            480,
            Some(Rect::new(600, 0, 100, 10)),
            None
        )
        .is_err());
        assert!(
            FrameSource::open(&SourceSpec::X11(Some(":4998".into())), 0, 0, None, None).is_err()
        );
    }
}
