//! X11 capture: the root window through MIT-SHM (the server writes each grab into a shared
//! segment it created; nothing is copied on our side), with XDamage's reports as hints. A grab
//! for a caller that looks only where damage was reported ([`Capture::grab_damaged`]) fetches
//! just those rows ([`bands`]); [`Capture::grab`] fetches everything. Our connections write
//! without polling first ([`stream`]). A followed window is the part of the segment where the
//! window is now (looked up each grab), so the capture moves and resizes with it. Watched
//! ([`Capture::watch_changes`]), it says when the screen may have changed through a descriptor
//! the caller waits on ([`watch`]), so a still screen is not grabbed at all.

mod bands;
mod stream;
mod watch;

use crate::{Capture, CaptureError, ChangeSignal, Watching};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use stream::XConnection;
use tessera_engine::{CpuFrame, PixelFormat, Rect};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::Cookie;
use x11rb::protocol::damage::{ConnectionExt as _, ReportLevel};
use x11rb::protocol::shm::{ConnectionExt as _, GetImageReply as ShmGetImageReply};
use x11rb::protocol::xfixes::{ConnectionExt as _, GetCursorImageReply};
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, ImageFormat, ImageOrder, MapState};
use x11rb::protocol::Event;

/// The part at non-negative coordinates of a `width` x `height` rectangle at `x`, `y` (X
/// rectangles may start left of or above the screen).
fn clamped_rect(x: i32, y: i32, width: u16, height: u16) -> Rect {
    let (x0, y0) = (x.max(0) as u32, y.max(0) as u32);
    let x1 = (x + i32::from(width)).max(0) as u32;
    let y1 = (y + i32::from(height)).max(0) as u32;
    Rect::new(x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0))
}

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Failed(e.to_string())
}

/// A read-only shared mapping of the server's SHM segment.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr and len come from a successful mmap and are unmapped once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

pub use crate::{WindowInfo, WindowSelector};

/// Captures an X11 screen, or one window on it.
pub struct X11Capture {
    conn: Arc<XConnection>,
    display: String,
    root: u32,
    width: u16,
    height: u16,
    seg: u32,
    map: Mapping,
    damage: u32,
    /// Where each grab takes the damage region as it is when subtracted (XFixes region).
    region: u32,
    /// The damage the last grab took, on the screen.
    damaged: Vec<Rect>,
    /// Whether the last grab's damage held the same bands of rows as the one before it.
    same_bands: bool,
    /// The last grab's damage hints, in the view's coordinates.
    rects: Vec<Rect>,
    /// The followed window and where it was at the last grab.
    follow: Option<(WindowInfo, Rect)>,
    /// Draw the pointer into frames.
    cursor: bool,
    /// Where the pointer was drawn at the last grab (screen coordinates) and its image serial.
    last_cursor: Option<(Rect, u32)>,
    /// The pointer's image and place as last looked up: drawn again while the watch reports
    /// no motion and no new shape.
    pointer: Option<GetCursorImageReply>,
    /// The watch reported the pointer moving or changing shape since it was last looked up.
    pointer_news: bool,
    /// Watched grabs since the pointer was last looked up.
    grabs_since_pointer: u32,
    /// Watched grabs since this connection's events were last drained.
    grabs_since_drain: u32,
    /// The pixels the drawn pointer covers (rows of `drawn`), put back before each fetch: rows
    /// a grab does not fetch keep the screen as last fetched, without a pointer in it.
    under_pointer: Vec<u8>,
    /// Where the pointer is drawn into the segment now.
    drawn: Option<Rect>,
    /// Rows the last grab asked the server for.
    fetched_rows: u32,
    /// The mapped image must be fetched anew at the next grab (first grab, pointer setting or
    /// followed window changed).
    stale: bool,
    /// Grabs since the image was last fetched.
    grabs_since_fetch: u32,
    /// The next fetch reports the whole view as damage: what the damage object it replaced
    /// held is lost.
    all_damaged: bool,
    /// The connection that says when something changed, once the caller asked for it.
    watch: Option<watch::Watch>,
}

/// A still screen (no damage, the pointer where it was) is not fetched again, but at least every
/// this many grabs it is, so that the sender's periodic full compare sees the server's pixels.
/// Watched, the pointer is looked up at least this often too (a warp makes no motion to report),
/// and errors of requests without replies are drained.
const FETCH_AT_LEAST_EVERY: u32 = 30;

// SAFETY: the mapping is owned by this value alone: read through &self, written (the pointer)
// only through &mut self.
unsafe impl Send for X11Capture {}

impl X11Capture {
    /// Opens `display` (or `$DISPLAY`) and prepares to grab its first screen.
    pub fn open(display: Option<&str>) -> Result<Self, CaptureError> {
        let name = display
            .map(str::to_string)
            .or_else(|| std::env::var("DISPLAY").ok())
            .unwrap_or_default();
        let (conn, screen_num) = stream::connect(display).map_err(|e| {
            CaptureError::Unavailable(format!("cannot open X display {name:?}: {e}"))
        })?;
        let setup = conn.setup();
        let screen = &setup.roots[screen_num];
        let (root, width, height) = (screen.root, screen.width_in_pixels, screen.height_in_pixels);
        if screen.root_depth != 24 && screen.root_depth != 32 {
            return Err(CaptureError::Unavailable(format!(
                "root depth {} (need 24 or 32)",
                screen.root_depth
            )));
        }
        if setup.image_byte_order != ImageOrder::LSB_FIRST {
            return Err(CaptureError::Unavailable(
                "big-endian X server images".into(),
            ));
        }
        for (ext, what) in [
            ("MIT-SHM", "shared memory"),
            ("DAMAGE", "damage"),
            ("XFIXES", "regions"),
        ] {
            if conn.extension_information(ext).map_err(failed)?.is_none() {
                return Err(CaptureError::Unavailable(format!(
                    "X server lacks {ext} ({what})"
                )));
            }
        }
        conn.shm_query_version()
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        conn.xfixes_query_version(5, 0)
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        conn.damage_query_version(1, 1)
            .map_err(failed)?
            .reply()
            .map_err(failed)?;

        let len = usize::from(width) * usize::from(height) * 4;
        let seg = conn.generate_id().map_err(failed)?;
        let reply = conn
            .shm_create_segment(seg, len as u32, false)
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        // SAFETY: mapping a file descriptor the server just handed us, read-only and shared.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                // Writable: the pointer is drawn into the grabbed image.
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                reply.shm_fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(failed(std::io::Error::last_os_error()));
        }
        let map = Mapping { ptr, len };
        let damage = conn.generate_id().map_err(failed)?;
        conn.damage_create(damage, root, ReportLevel::NON_EMPTY)
            .map_err(failed)?;
        let region = conn.generate_id().map_err(failed)?;
        conn.xfixes_create_region(region, &[]).map_err(failed)?;
        conn.flush().map_err(failed)?;
        Ok(Self {
            conn: Arc::new(conn),
            display: name,
            root,
            width,
            height,
            seg,
            map,
            damage,
            region,
            damaged: Vec::new(),
            same_bands: false,
            rects: Vec::new(),
            follow: None,
            cursor: true,
            last_cursor: None,
            pointer: None,
            pointer_news: false,
            grabs_since_pointer: 0,
            grabs_since_drain: 0,
            under_pointer: Vec::new(),
            drawn: None,
            fetched_rows: 0,
            stale: true,
            grabs_since_fetch: 0,
            all_damaged: false,
            watch: None,
        })
    }

    fn screen(&self) -> Rect {
        Rect::new(0, 0, u32::from(self.width), u32::from(self.height))
    }

    fn title(&self, window: u32) -> Result<Option<String>, CaptureError> {
        let reply = self
            .conn
            .get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 256)
            .map_err(failed)?
            .reply();
        Ok(reply
            .ok()
            .filter(|r| !r.value.is_empty())
            .map(|r| String::from_utf8_lossy(&r.value).into_owned()))
    }

    /// Where `window` is on the screen now, clipped to it; `None` if it is gone or off screen.
    fn window_rect(&self, window: u32) -> Result<Option<Rect>, CaptureError> {
        let Ok(geometry) = self.conn.get_geometry(window).map_err(failed)?.reply() else {
            return Ok(None);
        };
        let Ok(at) = self
            .conn
            .translate_coordinates(window, self.root, 0, 0)
            .map_err(failed)?
            .reply()
        else {
            return Ok(None);
        };
        let (x, y) = (i32::from(at.dst_x), i32::from(at.dst_y));
        Ok(clamped_rect(x, y, geometry.width, geometry.height).intersection(&self.screen()))
    }

    /// The viewable windows with a title: top-level ones, or their titled child when a window
    /// manager framed them.
    pub fn windows(&self) -> Result<Vec<WindowInfo>, CaptureError> {
        let top = self
            .conn
            .query_tree(self.root)
            .map_err(failed)?
            .reply()
            .map_err(failed)?
            .children;
        let mut found = Vec::new();
        for window in top {
            let Ok(attrs) = self
                .conn
                .get_window_attributes(window)
                .map_err(failed)?
                .reply()
            else {
                continue;
            };
            if attrs.map_state != MapState::VIEWABLE {
                continue;
            }
            let mut titled = self.title(window)?.map(|t| (window, t));
            if titled.is_none() {
                let Ok(tree) = self.conn.query_tree(window).map_err(failed)?.reply() else {
                    continue;
                };
                for child in tree.children {
                    if let Some(t) = self.title(child)? {
                        titled = Some((child, t));
                        break;
                    }
                }
            }
            if let Some((id, title)) = titled {
                if let Some(rect) = self.window_rect(id)? {
                    found.push(WindowInfo { id, title, rect });
                }
            }
        }
        Ok(found)
    }

    /// How many rows of the screen the last grab asked the server for (all of the view's for
    /// a whole grab; the damaged ones for [`Capture::grab_damaged`]).
    pub fn fetched_rows(&self) -> u32 {
        self.fetched_rows
    }

    /// Whether the last grab looked the pointer's image and place up (watched, a grab draws the
    /// last image again while the pointer neither moved nor changed shape).
    pub fn looked_up_pointer(&self) -> bool {
        self.grabs_since_pointer == 0 && self.cursor
    }

    /// Captures only the window `selector` names from now on, following it as it moves and
    /// resizes.
    pub fn follow(&mut self, selector: &WindowSelector) -> Result<(), CaptureError> {
        let window = self
            .windows()?
            .into_iter()
            .find(|w| match selector {
                WindowSelector::Id(id) => w.id == *id,
                WindowSelector::Title(t) => w.title.contains(t.as_str()),
            })
            .ok_or_else(|| {
                CaptureError::Unavailable(format!(
                    "no visible window matches {selector:?} on {}",
                    self.display
                ))
            })?;
        let rect = window.rect;
        self.follow = Some((window, rect));
        Ok(())
    }
}

impl X11Capture {
    /// The pointer's image and where it is now.
    fn cursor_image(&self) -> Result<GetCursorImageReply, CaptureError> {
        self.conn
            .xfixes_get_cursor_image()
            .map_err(failed)?
            .reply()
            .map_err(failed)
    }

    /// Where `image` is drawn on the screen, with its serial (`None`: off screen).
    fn cursor_place(&self, image: &GetCursorImageReply) -> Option<(Rect, u32)> {
        let x = i32::from(image.x) - i32::from(image.xhot);
        let y = i32::from(image.y) - i32::from(image.yhot);
        clamped_rect(x, y, image.width, image.height)
            .intersection(&self.screen())
            .map(|r| (r, image.cursor_serial))
    }

    /// Draws the pointer (XFixes' image, premultiplied ARGB) over the grabbed screen, and
    /// reports where it was and is as damage when it moved or changed shape: pointer motion
    /// alone damages nothing on the server.
    fn draw_cursor(&mut self, view: Rect, image: &GetCursorImageReply) -> Result<(), CaptureError> {
        let (w, h) = (u32::from(image.width), u32::from(image.height));
        if image.cursor_image.len() != w as usize * h as usize {
            return Err(CaptureError::Failed(format!(
                "cursor image of {} pixels for {w}x{h}",
                image.cursor_image.len()
            )));
        }
        let x = i32::from(image.x) - i32::from(image.xhot);
        let y = i32::from(image.y) - i32::from(image.yhot);
        let now = self.cursor_place(image);
        let drawn = now.map(|(r, _)| r);
        if now != self.last_cursor {
            for (r, _) in [self.last_cursor, now].into_iter().flatten() {
                if let Some(c) = r.intersection(&view) {
                    self.rects
                        .push(Rect::new(c.x - view.x, c.y - view.y, c.width, c.height));
                }
            }
        }
        self.last_cursor = now;
        let Some(r) = drawn else { return Ok(()) };
        let stride = usize::from(self.width) * 4;
        let mut under = std::mem::take(&mut self.under_pointer);
        under.clear();
        let pixels = self.pixels_mut();
        for row in r.y..r.y + r.height {
            let at = row as usize * stride + r.x as usize * 4;
            under.extend_from_slice(&pixels[at..at + r.width as usize * 4]);
        }
        for row in r.y..r.y + r.height {
            let src_row = (row as i32 - y) as usize * w as usize;
            for col in r.x..r.x + r.width {
                let argb = image.cursor_image[src_row + (col as i32 - x) as usize];
                let a = argb >> 24;
                if a == 0 {
                    continue;
                }
                let at = row as usize * stride + col as usize * 4;
                let px = &mut pixels[at..at + 4];
                // Premultiplied over: out = src + dst * (255 - a) / 255, per BGR channel.
                for (i, shift) in [(0, 0), (1, 8), (2, 16)] {
                    let src = (argb >> shift) & 0xff;
                    let dst = u32::from(px[i]);
                    px[i] = (src + (dst * (255 - a) + 127) / 255).min(255) as u8;
                }
            }
        }
        self.under_pointer = under;
        self.drawn = Some(r);
        Ok(())
    }

    /// Puts back what the drawn pointer covers.
    fn restore_under_pointer(&mut self) {
        let Some(r) = self.drawn.take() else { return };
        let stride = usize::from(self.width) * 4;
        let row_bytes = r.width as usize * 4;
        let under = std::mem::take(&mut self.under_pointer);
        let pixels = self.pixels_mut();
        for (row, saved) in (r.y..r.y + r.height).zip(under.chunks_exact(row_bytes)) {
            let at = row as usize * stride + r.x as usize * 4;
            pixels[at..at + row_bytes].copy_from_slice(saved);
        }
        self.under_pointer = under;
    }

    /// The segment, to draw into.
    fn pixels_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` writable bytes owned by self. The server writes it only
        // while serving a shm_get_image; a grab awaits the replies to all it asked for before
        // it returns, and draws or puts back the pointer only before asking or after the
        // replies. Nothing else reads it while we hold &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.map.ptr as *mut u8, self.map.len) }
    }
}

impl X11Capture {
    /// Unwatched: whether the screen must be fetched (damage reported, the pointer moved, or a
    /// fetch is due), and the pointer if it was looked up.
    fn poll_for_change(&mut self) -> Result<(bool, Option<GetCursorImageReply>), CaptureError> {
        // The damage object reports (DamageNotify) when its region turns non-empty, which it is
        // not after the last fetch subtracted it.
        let mut damaged = false;
        while let Some(event) = self.conn.poll_for_event().map_err(failed)? {
            damaged |= matches!(event, Event::DamageNotify(_));
        }
        let pointer = if self.cursor {
            Some(self.cursor_image()?)
        } else {
            None
        };
        let pointer_moved = pointer
            .as_ref()
            .is_some_and(|p| self.cursor_place(p) != self.last_cursor);
        self.grabs_since_fetch += 1;
        let fetch = damaged
            || pointer_moved
            || self.stale
            || self.follow.is_some()
            || self.grabs_since_fetch >= FETCH_AT_LEAST_EVERY;
        Ok((fetch, pointer))
    }
}

impl X11Capture {
    /// Asks `conn` for `rows` of the screen, whole, into the same rows of the segment.
    fn fetch_rows<'c>(
        &self,
        conn: &'c XConnection,
        rows: &std::ops::Range<u32>,
    ) -> Result<Cookie<'c, XConnection, ShmGetImageReply>, CaptureError> {
        let out_of_range = || failed(format!("rows {rows:?} of the screen"));
        let y = i16::try_from(rows.start).map_err(|_| out_of_range())?;
        let height = u16::try_from(rows.end - rows.start).map_err(|_| out_of_range())?;
        let stride = u64::from(self.width) * 4;
        let offset = u32::try_from(u64::from(rows.start) * stride).map_err(|_| out_of_range())?;
        conn.shm_get_image(
            self.root,
            0,
            y,
            self.width,
            height,
            !0,
            ImageFormat::Z_PIXMAP.into(),
            self.seg,
            offset,
        )
        .map_err(failed)
    }

    /// Grabs: fetches the view's rows when `whole` (or the view moved, or what the segment
    /// holds is stale), else only the rows of the damage taken now.
    fn take_screen(&mut self, whole: bool) -> Result<(), CaptureError> {
        let (fetch, pointer) = match &self.watch {
            // Watched, the caller grabs when something was reported or to compare everything:
            // either way the image is fetched.
            Some(_) => {
                // Nothing is expected here (the watch takes the events) but errors of requests
                // that wanted no reply, which would pile up.
                self.grabs_since_drain += 1;
                if whole || self.grabs_since_drain >= FETCH_AT_LEAST_EVERY {
                    self.grabs_since_drain = 0;
                    while self.conn.poll_for_event().map_err(failed)?.is_some() {}
                }
                (true, None)
            }
            None => self.poll_for_change()?,
        };
        self.rects.clear();
        self.fetched_rows = 0;
        if !fetch {
            // A still screen: the mapped image (with the pointer drawn where it still is) is
            // what the server would hand over again.
            return Ok(());
        }
        let view = match &self.follow {
            Some((window, _)) => self.window_rect(window.id)?.ok_or_else(|| {
                CaptureError::Failed(format!(
                    "window {:#x} ({:?}) is gone or off screen",
                    window.id, window.title
                ))
            })?,
            None => self.screen(),
        };
        let moved = match &mut self.follow {
            Some((_, at)) => std::mem::replace(at, view) != view,
            None => false,
        };
        let whole = whole
            || moved
            || self.stale
            || self.all_damaged
            || self.grabs_since_fetch >= FETCH_AT_LEAST_EVERY;
        self.stale = false;
        self.grabs_since_fetch = 0;
        // Take the damage first: whatever changes during the grab is reported next time. Then
        // ask for the pointer (when it is looked up), the images and, last, the region taken.
        // The images are a whole grab's, or a damaged grab's for the rows the last grab's
        // damage held when they were few or the same as the grab's before (the next change is
        // most often where the last one was: the next character typed, a clock, a blinking
        // cursor, a terminal scrolling); the region's other rows are fetched in a second round
        // trip. The region's reply, asked for last, comes after the others: the grab wakes once
        // for all of them. Asked for before the images, it often came on its own, and the grab
        // woke twice.
        let conn = self.conn.clone();
        conn.damage_subtract(self.damage, x11rb::NONE, self.region)
            .map_err(failed)?;
        // Watched, the pointer is looked up when the watch saw it move or change shape, and
        // at whole grabs and every so often (warps); else the last image is drawn again.
        let look_up = pointer.is_none()
            && self.cursor
            && (whole
                || self.pointer_news
                || self.pointer.is_none()
                || self.grabs_since_pointer >= FETCH_AT_LEAST_EVERY);
        let pointer_cookie = if look_up {
            Some(conn.xfixes_get_cursor_image().map_err(failed)?)
        } else {
            None
        };
        let rows = view.y..view.y + view.height;
        // Rows not fetched keep the screen as last fetched, without the pointer (put back before
        // any image is asked for: the requests above do not write the segment).
        self.restore_under_pointer();
        let last_bands = bands::bands(&self.damaged, rows.clone());
        let early = if whole {
            vec![rows.clone()]
        } else {
            bands::likely(&last_bands, self.same_bands)
        };
        let mut images = Vec::new();
        for band in &early {
            images.push(self.fetch_rows(&conn, band)?);
        }
        let region = conn.xfixes_fetch_region(self.region).map_err(failed)?;
        self.damaged.clear();
        for r in region.reply().map_err(failed)?.rectangles {
            self.damaged.push(clamped_rect(
                i32::from(r.x),
                i32::from(r.y),
                r.width,
                r.height,
            ));
        }
        let now_bands = bands::bands(&self.damaged, rows);
        self.same_bands = !now_bands.is_empty() && now_bands == last_bands;
        let late = if whole {
            Vec::new()
        } else {
            bands::missing(&now_bands, &early)
        };
        for band in &late {
            images.push(self.fetch_rows(&conn, band)?);
        }
        self.fetched_rows = early.iter().chain(&late).map(|b| b.end - b.start).sum();
        for r in &self.damaged {
            if let Some(c) = r.intersection(&view) {
                self.rects
                    .push(Rect::new(c.x - view.x, c.y - view.y, c.width, c.height));
            }
        }
        if std::mem::take(&mut self.all_damaged) {
            self.rects.push(Rect::new(0, 0, view.width, view.height));
        }
        match pointer_cookie {
            Some(cookie) => {
                self.pointer = Some(cookie.reply().map_err(failed)?);
                self.pointer_news = false;
                self.grabs_since_pointer = 0;
            }
            None if pointer.is_some() => {
                self.pointer = pointer;
                self.grabs_since_pointer = 0;
            }
            None => self.grabs_since_pointer += 1,
        }
        for image in images {
            image.reply().map_err(failed)?;
        }
        match self.pointer.take().filter(|_| self.cursor) {
            Some(pointer) => {
                let drawn = self.draw_cursor(view, &pointer);
                self.pointer = Some(pointer);
                drawn?;
            }
            None => {
                // The pointer left the frames: where it was drawn changed back.
                if let Some((r, _)) = self.last_cursor.take() {
                    if let Some(c) = r.intersection(&view) {
                        self.rects
                            .push(Rect::new(c.x - view.x, c.y - view.y, c.width, c.height));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Capture for X11Capture {
    fn grab(&mut self) -> Result<(), CaptureError> {
        self.take_screen(true)
    }

    /// Fetches only the rows of the damage reported since the last grab (besides whole grabs
    /// when the followed window moved or the pointer setting changed).
    fn grab_damaged(&mut self) -> Result<(), CaptureError> {
        self.take_screen(false)
    }

    /// Watched through a descriptor ([`Watching::Readable`]): `signal` is not called.
    fn watch_changes(&mut self, signal: ChangeSignal) -> Watching {
        drop(signal);
        if let Some(w) = &self.watch {
            return Watching::Readable(w.fd());
        }
        let display = (!self.display.is_empty()).then_some(self.display.as_str());
        match watch::Watch::start(display, self.root) {
            Ok(Some(w)) => {
                // Its damage object replaces this connection's, whose events nobody reads now.
                let _ = self.conn.damage_destroy(self.damage);
                self.damage = w.damage;
                let fd = w.fd();
                self.watch = Some(w);
                self.all_damaged = true;
                Watching::Readable(fd)
            }
            Ok(None) => Watching::No,
            Err(e) => {
                eprintln!("tessera: X11 changes not watched ({e}); grabbing at the frame rate");
                Watching::No
            }
        }
    }

    fn take_changes(&mut self) -> bool {
        let Some(w) = &self.watch else { return false };
        let news = w.take();
        self.pointer_news |= news.pointer;
        news.any()
    }

    fn set_cursor(&mut self, on: bool) -> bool {
        self.cursor = on;
        self.stale = true;
        true
    }

    fn follow_window(&mut self, window: &str) -> Result<(), CaptureError> {
        let selector: WindowSelector = window.parse().map_err(CaptureError::Unavailable)?;
        self.follow(&selector)
    }

    fn frame(&self) -> CpuFrame<'_> {
        // SAFETY: the mapping is `len` readable bytes for as long as self lives; the server
        // writes it only during shm_get_image, which needs &mut self.
        let pixels = unsafe { std::slice::from_raw_parts(self.map.ptr as *const u8, self.map.len) };
        let (w, h) = (u32::from(self.width), u32::from(self.height));
        let screen = CpuFrame::new(w, h, w as usize * 4, PixelFormat::Bgrx8, pixels)
            .expect("the segment holds the whole screen");
        match &self.follow {
            Some((_, view)) => screen.crop(view).expect("the view lies on the screen"),
            None => screen,
        }
    }

    fn damage(&self) -> Option<&[Rect]> {
        Some(&self.rects)
    }

    fn describe(&self) -> String {
        match &self.follow {
            Some((w, r)) => format!(
                "x11 {} window {:#x} {:?} ({}x{})",
                self.display, w.id, w.title, r.width, r.height
            ),
            None => format!("x11 {} ({}x{})", self.display, self.width, self.height),
        }
    }
}
