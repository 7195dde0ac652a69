//! TigerVNC's scraping server on the same screen and workload as Tessera's rows, so that the
//! issue's comparison is measured in one run: `X0tigervnc` (Debian's tigervnc-scraping-server)
//! shares the Xvfb screen with `vncviewer` (ZRLE, continuous updates) on a second Xvfb, through a
//! relay here that counts the bytes the server sends. Its updates are the server's own count,
//! which it logs when the viewer leaves. It runs unencrypted, or with TLS as its default
//! security does (see [`Security`]).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_platform::xvfb::{Spawned, Xvfb};

/// How the VNC connection is secured.
#[derive(Clone, Copy, Debug)]
pub enum Security {
    /// `None`: neither encrypted nor authenticated.
    Plain = 0,
    /// `TLSNone`: anonymous TLS. The server's default, `TLSVnc`, is the same TLS with a VNC
    /// password inside it; Tessera's connections are always encrypted (QUIC's TLS 1.3).
    Tls = 1,
}

impl Security {
    /// Both, in the order the bench runs them (each at its own index).
    pub const ALL: [Security; 2] = [Security::Plain, Security::Tls];

    /// The row's name in the bench's table.
    pub fn row(self) -> &'static str {
        match self {
            Security::Plain => "TigerVNC, ZRLE",
            Security::Tls => "TigerVNC, ZRLE, TLS",
        }
    }

    /// The server as the comparisons name it.
    pub fn server(self) -> &'static str {
        match self {
            Security::Plain => "TigerVNC's server",
            Security::Tls => "TigerVNC's server with TLS",
        }
    }

    /// The `SecurityTypes` value of both programs.
    fn types(self) -> &'static str {
        match self {
            Security::Plain => "None",
            Security::Tls => "TLSNone",
        }
    }
}

/// What one TigerVNC row measured.
pub struct Measured {
    /// Framebuffer updates a second over the whole connection, warm-up included.
    pub updates_per_s: f64,
    /// Bytes an update: the measured seconds' bytes over `updates_per_s`.
    pub bytes_per_update: f64,
    /// CPU seconds a second of `X0tigervnc`.
    pub server_cpu: f64,
    /// CPU seconds a second of the X server it shares.
    pub x_cpu: f64,
    /// Bytes a second from the VNC server to the viewer, in kB.
    pub kb_per_s: f64,
}

/// Whether both programs are installed.
pub fn available() -> bool {
    ["X0tigervnc", "vncviewer"].iter().all(|p| {
        Command::new(p)
            .arg("-help")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok()
    })
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port()
}

/// Copies `from` to `to` until either closes, adding what it copied to `count`.
fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicU64>>) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(c) = &count {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Relays one viewer connection to `server`; the returned counter holds the bytes the server
/// sent through it.
fn relay(listener: TcpListener, server: u16) -> Arc<AtomicU64> {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        let Ok((viewer, _)) = listener.accept() else {
            return;
        };
        let Ok(upstream) = TcpStream::connect(("127.0.0.1", server)) else {
            return;
        };
        let (Ok(v2), Ok(u2)) = (viewer.try_clone(), upstream.try_clone()) else {
            return;
        };
        std::thread::spawn(move || pump(v2, u2, None));
        pump(upstream, viewer, Some(counter));
    });
    sent
}

/// Runs the VNC server on `display` (whose X server is `x_server`) with a viewer for `warmup +
/// seconds`, `security` on their connection, measuring over the last `seconds`. `None` when the
/// viewer got nothing.
pub fn measure(
    display: &str,
    x_server: u32,
    security: Security,
    cpu_seconds: fn(u32) -> f64,
    warmup: f64,
    seconds: f64,
) -> Option<Measured> {
    let port = free_port();
    let mut command = Command::new("X0tigervnc");
    command.args([
        "-display",
        display,
        "-SecurityTypes",
        security.types(),
        "-localhost=1",
        // Level 30 (info) logs the update count when the viewer leaves.
        "-Log",
        "*:stderr:30",
        "-rfbport",
        &port.to_string(),
    ]);
    let server = Spawned::start(command, "x0tigervnc");
    // Not a probe connection: the server would count it, and log its updates first.
    server.wait_for("Listening for VNC connections");
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let relay_port = listener.local_addr().expect("bound").port();
    let sent = relay(listener, port);
    let screen = Xvfb::start(1920, 1080)?;
    let mut viewer = Command::new("vncviewer");
    viewer.env("DISPLAY", &screen.display).args([
        "-SecurityTypes",
        security.types(),
        "-PreferredEncoding=ZRLE",
        "-AutoSelect=0",
        "-FullColor=1",
        "-RemoteResize=0",
        "-Log",
        "*:stderr:0",
        &format!("127.0.0.1::{relay_port}"),
    ]);
    let viewer = Spawned::start(viewer, "vncviewer");
    let connected = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(warmup));
    let pid = server.child.id();
    let (c0, x0, b0) = (
        cpu_seconds(pid),
        cpu_seconds(x_server),
        sent.load(Ordering::Relaxed),
    );
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let (c1, x1, b1) = (
        cpu_seconds(pid),
        cpu_seconds(x_server),
        sent.load(Ordering::Relaxed),
    );
    drop(viewer);
    let elapsed = connected.elapsed().as_secs_f64();
    let line = server.wait_for("Framebuffer updates:");
    drop(server);
    let updates: f64 = line
        .rsplit_once(':')
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or(0.0);
    if b1 == b0 && b0 == 0 {
        eprintln!("workload: the VNC viewer got nothing");
        return None;
    }
    let updates_per_s = updates / elapsed;
    let window_bytes = (b1 - b0) as f64;
    Some(Measured {
        updates_per_s,
        bytes_per_update: if updates_per_s > 0.0 {
            window_bytes / (updates_per_s * seconds)
        } else {
            0.0
        },
        server_cpu: (c1 - c0) / seconds,
        x_cpu: (x1 - x0) / seconds,
        kb_per_s: window_bytes / seconds / 1000.0,
    })
}
