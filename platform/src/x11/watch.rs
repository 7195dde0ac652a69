//! Watches the X connection for what says the screen may have changed — damage, the pointer
//! moving or changing shape — so that a still screen costs no grabs.
//!
//! A connection of its own (so that replies to the capture's requests never make it readable)
//! holds the damage object the capture subtracts at each grab. The capture's caller waits for
//! its socket to turn readable and then takes what came ([`Watch::take`]), on its own thread:
//! no thread of ours stands between the X server and the grab. It takes:
//! - `DamageNotify`: the damage object (report level non-empty) fires once when its region
//!   turns non-empty, which it is again after each grab subtracts it;
//! - XInput 2 raw motion on the root window: every pointer motion a device (or XTEST) makes,
//!   wherever the pointer is;
//! - XFixes cursor notify: the pointer's image changed.
//!
//! Warps (`XWarpPointer`) make no raw motion; the capture looks the pointer up at every whole
//! grab and at least every 30 grabs, which finds them.

use super::stream::XConnection;
use std::os::fd::{AsRawFd, RawFd};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::damage::{ConnectionExt as _, ReportLevel};
use x11rb::protocol::xfixes::{ConnectionExt as _, CursorNotifyMask};
use x11rb::protocol::xinput::{ConnectionExt as _, Device, EventMask, XIEventMask};
use x11rb::protocol::Event;

/// The watching connection.
pub(super) struct Watch {
    conn: XConnection,
    /// The damage object on the root window, for the capture to subtract (X resources are
    /// usable from any connection; its events come to this one).
    pub(super) damage: u32,
}

impl Watch {
    /// Opens `display` once more and watches its screen's `root` there. `None` when the server
    /// lacks XInput 2, without which pointer motion goes unseen.
    pub(super) fn start(display: Option<&str>, root: u32) -> Result<Option<Self>, String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let (conn, _) = super::stream::connect(display).map_err(|x| e(&x))?;
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
        conn.flush().map_err(|x| e(&x))?;
        Ok(Some(Self { conn, damage }))
    }

    /// The connection's socket: readable when the server sent something.
    pub(super) fn fd(&self) -> RawFd {
        self.conn.stream().as_raw_fd()
    }

    /// Reads every event the server sent, without blocking: what they say may have changed.
    /// A broken connection says everything did (the next grab reports what is wrong).
    pub(super) fn take(&self) -> News {
        let mut news = News::default();
        loop {
            match self.conn.poll_for_event() {
                Ok(Some(Event::DamageNotify(_))) => news.screen = true,
                Ok(Some(Event::XinputRawMotion(_) | Event::XfixesCursorNotify(_))) => {
                    news.pointer = true
                }
                Ok(Some(_)) => {}
                Ok(None) => return news,
                Err(_) => {
                    return News {
                        screen: true,
                        pointer: true,
                    }
                }
            }
        }
    }
}

/// What the events taken since the last look said may have changed.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct News {
    /// The screen's pixels (damage).
    pub(super) screen: bool,
    /// The pointer: it moved or changed shape.
    pub(super) pointer: bool,
}

impl News {
    pub(super) fn any(self) -> bool {
        self.screen || self.pointer
    }
}
