//! Screen casts through the xdg-desktop-portal ScreenCast interface (`--source portal`, and
//! `screen` on Wayland), against a real D-Bus daemon and a real PipeWire daemon started here.
//!
//! The portal itself is a stand-in served on that bus: the desktop's portal needs a compositor
//! that can hand out frames, and xdg-desktop-portal-wlr 0.7 (Debian 12) starts no cast on a
//! compositor without a GPU (its screencopy needs a DMA-BUF format; pixman gives none). The
//! stand-in answers the way the portal documents: a request object per call and its `Response`
//! signal, a session object, a granted stream naming the test source's PipeWire node, and a
//! connected PipeWire socket passed as a file descriptor. What runs for real is ours: the
//! D-Bus exchange through ashpd, the restore token kept between sessions, the capture through
//! the passed remote, and the session closed when the capture ends.
#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_engine::FrameBuffer;
use tessera_platform::pipewire::PipeWireCapture;
use tessera_platform::pipewire_test_source::{PipeWireDaemon, TestDaemon, TestSource};
use tessera_platform::portal::{read_token, token_path, CastKind};
use tessera_platform::{Capture, CaptureError};
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// A private session bus; stopped on drop.
struct SessionBus(TestDaemon);

impl SessionBus {
    fn start(name: &str) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("tessera-dbus-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the bus");
        let mut command = Command::new("dbus-daemon");
        command
            .args(["--session", "--nofork", "--nosyslog"])
            .arg(format!("--address=unix:path={}", dir.join("bus").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        TestDaemon::start(&mut command, dir, "bus", "dbus").map(Self)
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.0.dir().join("bus").display())
    }
}

/// What the stand-in portal was asked, and how it answers the next `Start`.
#[derive(Default)]
struct Seen {
    /// The options of each `SelectSources`, by name.
    selections: Vec<HashMap<String, OwnedValue>>,
    /// Sessions closed by their client.
    closed: Vec<String>,
    /// The response code the next `Start` gives (0 granted, 1 declined, 2 failed).
    start_response: u32,
    /// The restore token the next granted `Start` hands out.
    next_token: String,
    /// The PipeWire node a granted `Start` names; none: a grant without a stream.
    granted_node: Option<u32>,
}

struct StandInPortal {
    seen: Arc<Mutex<Seen>>,
    size: (i32, i32),
    pipewire_socket: PathBuf,
}

/// The caller's part of a request or session path: its unique name without ':' and with '_'
/// for '.'.
fn caller_id(header: &zbus::message::Header<'_>) -> String {
    header
        .sender()
        .map(|s| s.trim_start_matches(':').replace('.', "_"))
        .unwrap_or_default()
}

/// The handle token named `key` in a call's `options` ("t" when the caller gave none).
fn token_of(options: &HashMap<String, OwnedValue>, key: &str) -> String {
    string_option(options, key).unwrap_or_else(|| "t".into())
}

/// Sends `Response(code, results)` on the request object of `header`'s caller and `options`'
/// handle token, after the method's reply.
fn respond(
    conn: &zbus::Connection,
    header: &zbus::message::Header<'_>,
    options: &HashMap<String, OwnedValue>,
    code: u32,
    results: HashMap<String, OwnedValue>,
) -> OwnedObjectPath {
    let path = format!(
        "/org/freedesktop/portal/desktop/request/{}/{}",
        caller_id(header),
        token_of(options, "handle_token")
    );
    let path = OwnedObjectPath::try_from(path).expect("a valid request path");
    let (conn, at) = (conn.clone(), path.clone());
    tokio::spawn(async move {
        conn.emit_signal(
            None::<()>,
            &at,
            "org.freedesktop.portal.Request",
            "Response",
            &(code, results),
        )
        .await
        .expect("the response is sent");
    });
    path
}

fn owned(v: Value<'_>) -> OwnedValue {
    v.try_to_owned().expect("a plain value")
}

#[zbus::interface(name = "org.freedesktop.portal.ScreenCast")]
impl StandInPortal {
    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        5
    }

    #[zbus(property)]
    fn available_source_types(&self) -> u32 {
        3
    }

    #[zbus(property)]
    fn available_cursor_modes(&self) -> u32 {
        7
    }

    async fn create_session(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        let session = format!(
            "/org/freedesktop/portal/desktop/session/{}/{}",
            caller_id(&header),
            token_of(&options, "session_handle_token")
        );
        server
            .at(
                session.as_str(),
                StandInSession {
                    seen: self.seen.clone(),
                    path: session.clone(),
                },
            )
            .await?;
        let results = HashMap::from([("session_handle".to_string(), owned(Value::from(session)))]);
        Ok(respond(conn, &header, &options, 0, results))
    }

    async fn select_sources(
        &self,
        _session: OwnedObjectPath,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> OwnedObjectPath {
        self.seen.lock().unwrap().selections.push(options.clone());
        respond(conn, &header, &options, 0, HashMap::new())
    }

    async fn start(
        &self,
        _session: OwnedObjectPath,
        _parent_window: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> OwnedObjectPath {
        let (code, token, node) = {
            let seen = self.seen.lock().unwrap();
            (
                seen.start_response,
                seen.next_token.clone(),
                seen.granted_node,
            )
        };
        let mut results = HashMap::new();
        if code == 0 {
            let properties = HashMap::from([
                ("size".to_string(), owned(Value::from(self.size))),
                ("source_type".to_string(), owned(Value::from(1u32))),
            ]);
            let streams: Vec<_> = node.map(|n| (n, properties)).into_iter().collect();
            results.insert("streams".to_string(), owned(Value::from(streams)));
            results.insert("restore_token".to_string(), owned(Value::from(token)));
            results.insert("persist_mode".to_string(), owned(Value::from(2u32)));
        }
        respond(conn, &header, &options, code, results)
    }

    async fn open_pipe_wire_remote(
        &self,
        _session: OwnedObjectPath,
        _options: HashMap<String, OwnedValue>,
    ) -> zbus::fdo::Result<zbus::zvariant::OwnedFd> {
        let socket = std::os::unix::net::UnixStream::connect(&self.pipewire_socket)
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        Ok(std::os::fd::OwnedFd::from(socket).into())
    }
}

struct StandInSession {
    seen: Arc<Mutex<Seen>>,
    path: String,
}

#[zbus::interface(name = "org.freedesktop.portal.Session")]
impl StandInSession {
    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        1
    }

    async fn close(&self, #[zbus(object_server)] server: &zbus::ObjectServer) {
        self.seen.lock().unwrap().closed.push(self.path.clone());
        let _ = server.remove::<StandInSession, _>(self.path.as_str()).await;
    }
}

/// Serves the stand-in portal on `bus` from a thread of its own until the test ends.
fn serve_portal(bus: &str, portal: StandInPortal) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let bus = bus.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let conn = zbus::connection::Builder::address(bus.as_str())
                .expect("the bus address")
                .name("org.freedesktop.portal.Desktop")
                .expect("the portal's name")
                .serve_at("/org/freedesktop/portal/desktop", portal)
                .expect("the portal object")
                .build()
                .await
                .expect("the portal is on the bus");
            ready_tx.send(()).expect("the test waits");
            std::future::pending::<()>().await;
            drop(conn);
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the stand-in portal came up");
}

/// Grabs until the frame is one the test source drew (at most 5 s) and returns it.
fn a_drawn_frame(c: &mut PipeWireCapture, source: &TestSource) -> FrameBuffer {
    let started = Instant::now();
    loop {
        c.grab().unwrap();
        let f = FrameBuffer::from_frame(&c.frame());
        if TestSource::which_frame(&f, source.published()).is_some() {
            return f;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no frame as the source drew it"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(5), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn string_option(options: &HashMap<String, OwnedValue>, key: &str) -> Option<String> {
    options
        .get(key)
        .and_then(|v| String::try_from(v.clone()).ok())
}

fn u32_option(options: &HashMap<String, OwnedValue>, key: &str) -> Option<u32> {
    options.get(key).and_then(|v| u32::try_from(v).ok())
}

/// Ends the test binary with a failure if the test is still running after `limit`: a cast that
/// hangs (a portal session bound to a runtime that ended did) must fail, not stall the suite.
fn watchdog(limit: Duration) -> Arc<std::sync::atomic::AtomicBool> {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = done.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < limit {
            if finished.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("the portal test hung for {limit:?}");
        std::process::exit(101);
    });
    done
}

#[test]
fn casts_through_the_portal_keep_the_restore_token_and_close_their_session() {
    let done = watchdog(Duration::from_secs(60));
    let Some(bus) = SessionBus::start("portal") else {
        return;
    };
    let Some(daemon) = PipeWireDaemon::start() else {
        return;
    };
    let state = std::env::temp_dir().join(format!("tessera-portal-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    // The only test in this binary: ashpd and the capture find the bus, the test source finds
    // the PipeWire daemon, and the token is kept under `state`.
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", bus.address());
    std::env::set_var("PIPEWIRE_RUNTIME_DIR", daemon.runtime_dir());
    std::env::set_var("XDG_STATE_HOME", &state);

    let source = TestSource::start(320, 200).unwrap();
    let seen = Arc::new(Mutex::new(Seen {
        next_token: "first-grant".into(),
        granted_node: Some(source.node()),
        ..Seen::default()
    }));
    serve_portal(
        &bus.address(),
        StandInPortal {
            seen: seen.clone(),
            size: (320, 200),
            pipewire_socket: daemon.runtime_dir().join("pipewire-0"),
        },
    );
    let token_file = token_path().expect("XDG_STATE_HOME names it");
    assert!(token_file.starts_with(&state));

    // The first cast: no token to offer; the monitor asked for with the pointer drawn in and a
    // choice that persists; frames as the source draws them, through the passed remote.
    let mut capture = PipeWireCapture::from_portal(CastKind::Monitor).unwrap();
    let f = a_drawn_frame(&mut capture, &source);
    assert_eq!((f.width(), f.height()), (320, 200));
    {
        let seen = seen.lock().unwrap();
        let asked = &seen.selections[0];
        assert_eq!(u32_option(asked, "types"), Some(1), "a monitor");
        assert_eq!(
            u32_option(asked, "cursor_mode"),
            Some(2),
            "the pointer embedded"
        );
        assert_eq!(u32_option(asked, "persist_mode"), Some(2), "until revoked");
        assert_eq!(string_option(asked, "restore_token"), None);
        assert!(seen.closed.is_empty(), "the session lives with the capture");
    }
    assert_eq!(read_token(&token_file).as_deref(), Some("first-grant"));
    // The capture ends: the portal's session is closed.
    drop(capture);
    wait_for("the session was not closed", || {
        seen.lock().unwrap().closed.len() == 1
    });

    // The next cast offers the saved token (the portal then skips its dialog), for a window
    // this time, and keeps the new token the portal hands out.
    seen.lock().unwrap().next_token = "second-grant".into();
    let mut capture = PipeWireCapture::from_portal(CastKind::Window).unwrap();
    a_drawn_frame(&mut capture, &source);
    {
        let seen = seen.lock().unwrap();
        let asked = &seen.selections[1];
        assert_eq!(u32_option(asked, "types"), Some(2), "a window");
        assert_eq!(
            string_option(asked, "restore_token").as_deref(),
            Some("first-grant")
        );
    }
    assert_eq!(read_token(&token_file).as_deref(), Some("second-grant"));
    drop(capture);

    // The user declines, or the portal fails: a clear error, and the token stays.
    for code in [1, 2] {
        seen.lock().unwrap().start_response = code;
        match PipeWireCapture::from_portal(CastKind::Monitor) {
            Err(CaptureError::Unavailable(why)) => {
                assert!(why.contains("declined"), "{why}")
            }
            Err(e) => panic!("response {code}: {e}"),
            Ok(_) => panic!("response {code}: a capture"),
        }
    }
    assert_eq!(read_token(&token_file).as_deref(), Some("second-grant"));

    // A grant without a stream, and one naming a node PipeWire does not have: clear errors.
    seen.lock().unwrap().start_response = 0;
    for (node, expect) in [(None, "granted no stream"), (Some(987_654), "node 987654")] {
        seen.lock().unwrap().granted_node = node;
        match PipeWireCapture::from_portal(CastKind::Monitor) {
            Err(CaptureError::Unavailable(why) | CaptureError::Failed(why)) => {
                assert!(why.contains(expect), "{node:?}: {why}")
            }
            Ok(_) => panic!("{node:?}: a capture"),
        }
    }

    // A session bus without a portal, and no session bus at all: clear errors, not hangs.
    let empty = SessionBus::start("empty").expect("dbus-daemon ran above");
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", empty.address());
    match PipeWireCapture::from_portal(CastKind::Monitor) {
        Err(CaptureError::Unavailable(why)) => assert!(why.contains("portal"), "{why}"),
        Err(e) => panic!("no portal: {e}"),
        Ok(_) => panic!("no portal: a capture"),
    }
    std::env::set_var(
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}", state.join("no-bus").display()),
    );
    match PipeWireCapture::from_portal(CastKind::Monitor) {
        Err(CaptureError::Unavailable(why)) => assert!(why.contains("session bus"), "{why}"),
        Err(e) => panic!("no bus: {e}"),
        Ok(_) => panic!("no bus: a capture"),
    }
    assert_eq!(read_token(&token_file).as_deref(), Some("second-grant"));
    let _ = std::fs::remove_dir_all(&state);
    drop(source);
    drop(daemon);
    drop(empty);
    drop(bus);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
}
