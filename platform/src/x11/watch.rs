//! Waits on the X connection for what says the screen may have changed — damage, the pointer
//! moving or changing shape — and tells the capture loop, so that a still screen costs no grabs.
//!
//! A thread of its own blocks on a connection of its own (so that replies to the capture's
//! requests never wake it), which holds the damage object the capture subtracts at each grab.
//! It takes:
//! - `DamageNotify`: the damage object (report level non-empty) fires once when its region
//!   turns non-empty, which it is again after each grab subtracts it;
//! - XInput 2 raw motion on the root window: every pointer motion a device (or XTEST) makes,
//!   wherever the pointer is;
//! - XFixes cursor notify: the pointer's image changed.
//!
//! Warps (`XWarpPointer`) make no raw motion; the capture loop's grab at least once a second
//! finds them.

use crate::ChangeSignal;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::damage::{ConnectionExt as _, ReportLevel};
use x11rb::protocol::xfixes::{ConnectionExt as _, CursorNotifyMask};
use x11rb::protocol::xinput::{ConnectionExt as _, Device, EventMask, XIEventMask};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

/// The watching thread and its connection, and whether it reported something since the last
/// grab.
pub(super) struct Watch {
    conn: Arc<RustConnection>,
    /// The damage object on the root window, for the capture to subtract (X resources are
    /// usable from any connection; its events come to this one).
    pub(super) damage: u32,
    reported: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    /// Opens `display` once more and watches its screen's `root` there. `None` when the server
    /// lacks XInput 2, without which pointer motion goes unseen.
    pub(super) fn start(
        display: Option<&str>,
        root: u32,
        signal: ChangeSignal,
    ) -> Result<Option<Self>, String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let (conn, _) = x11rb::connect(display).map_err(|x| e(&x))?;
        if conn
            .extension_information(x11rb::protocol::xinput::X11_EXTENSION_NAME)
            .map_err(|x| e(&x))?
            .is_none()
        {
            return Ok(None);
        }
        let version = conn
            .xinput_xi_query_version(2, 2)
            .map_err(|x| e(&x))?
            .reply()
            .map_err(|x| e(&x))?;
        if version.major_version < 2 {
            return Ok(None);
        }
        conn.xfixes_query_version(5, 0)
            .map_err(|x| e(&x))?
            .reply()
            .map_err(|x| e(&x))?;
        conn.damage_query_version(1, 1)
            .map_err(|x| e(&x))?
            .reply()
            .map_err(|x| e(&x))?;
        let motion = EventMask {
            // Every device: raw events come from the devices themselves (XTEST's among them).
            deviceid: Device::ALL.into(),
            mask: vec![XIEventMask::RAW_MOTION],
        };
        conn.xinput_xi_select_events(root, &[motion])
            .map_err(|x| e(&x))?
            .check()
            .map_err(|x| e(&x))?;
        conn.xfixes_select_cursor_input(root, CursorNotifyMask::DISPLAY_CURSOR)
            .map_err(|x| e(&x))?
            .check()
            .map_err(|x| e(&x))?;
        let damage = conn.generate_id().map_err(|x| e(&x))?;
        conn.damage_create(damage, root, ReportLevel::NON_EMPTY)
            .map_err(|x| e(&x))?
            .check()
            .map_err(|x| e(&x))?;
        let conn = Arc::new(conn);
        let reported = Arc::new(AtomicBool::new(false));
        let (thread_conn, thread_reported) = (conn.clone(), reported.clone());
        let thread = std::thread::Builder::new()
            .name("tessera-x11-watch".into())
            .spawn(move || loop {
                let event = thread_conn.wait_for_event();
                let news = match &event {
                    Ok(Event::DamageNotify(_))
                    | Ok(Event::XinputRawMotion(_))
                    | Ok(Event::XfixesCursorNotify(_)) => true,
                    Ok(_) => false,
                    // The connection is gone (or shut down on drop): the next grab says why.
                    Err(_) => true,
                };
                // One signal until the next grab: the loop grabs once for all of them.
                if news && !thread_reported.swap(true, Ordering::AcqRel) {
                    signal();
                }
                if event.is_err() {
                    return;
                }
            })
            .map_err(|x| e(&x))?;
        Ok(Some(Self {
            conn,
            damage,
            reported,
            thread: Some(thread),
        }))
    }

    /// A grab begins: what is reported from now on signals again.
    pub(super) fn clear(&self) {
        self.reported.store(false, Ordering::Release);
    }

    /// Ends the thread: shutting its socket down wakes its wait with an error.
    fn stop(&mut self) {
        // SAFETY: shutdown on the connection's own socket, which stays open until it drops.
        unsafe { libc::shutdown(self.conn.stream().as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}
