//! A private X server with real clients, for tests (feature `test-support`): Xvfb on a free
//! display, clients on it, and `xwd`'s picture of its screen.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An Xvfb and the clients started on it, all killed on drop.
pub struct Xvfb {
    pub display: String,
    children: Vec<Child>,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Xvfb {
    /// Starts Xvfb at `width` x `height` x 24 on a free display. `None` when Xvfb is not
    /// installed and tests may skip (see `tessera_engine::system_tests_required`).
    pub fn start(width: u32, height: u32) -> Option<Self> {
        if Command::new("Xvfb")
            .arg("-help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                !tessera_engine::system_tests_required(),
                "Xvfb is required here: install xvfb"
            );
            eprintln!("NOT RUN: Xvfb is not installed");
            return None;
        }
        // Xvfb picks a free display itself and prints its number (-displayfd): no race with
        // other servers starting at the same moment.
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{width}x{height}x24"),
                "-nolisten",
                "tcp",
                // Keep the server as it is when its last client leaves.
                "-noreset",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        let n: u32 = match line.trim().parse() {
            Ok(n) => n,
            Err(_) => {
                let _ = child.kill();
                panic!("Xvfb did not report a display: {line:?}");
            }
        };
        let server = Self {
            display: format!(":{n}"),
            children: vec![child],
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            assert!(Instant::now() < deadline, "Xvfb did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    /// The server's process id.
    pub fn server_pid(&self) -> u32 {
        self.children[0].id()
    }

    /// Starts an X client on this display; it is killed with the server.
    pub fn client(&mut self, program: &str, args: &[&str]) {
        let child = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        self.children.push(child);
    }

    /// Runs a command (xdotool, say) against this display and waits for it.
    pub fn run(&self, program: &str, args: &[&str]) -> bool {
        run_on(&self.display, program, args)
    }

    /// Runs a command against this display and returns its stdout when it succeeds.
    pub fn output(&self, program: &str, args: &[&str]) -> Option<String> {
        let out = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Moves the pointer to (`x`, `y`) on the screen (XWarpPointer; xdotool's mousemove does
    /// not move Xvfb's pointer here).
    pub fn warp_pointer(&self, x: i16, y: i16) {
        use x11rb::protocol::xproto::ConnectionExt;
        self.pointer_to(x, y, |conn, root| {
            conn.warp_pointer(x11rb::NONE, root, 0, 0, 0, 0, x, y)
                .expect("warp request");
        });
    }

    /// Moves the pointer to (`x`, `y`) through XTEST, as a mouse would (a warp makes no device
    /// motion; this does).
    pub fn move_pointer(&self, x: i16, y: i16) {
        use x11rb::protocol::xproto::MOTION_NOTIFY_EVENT;
        use x11rb::protocol::xtest::ConnectionExt;
        self.pointer_to(x, y, |conn, root| {
            conn.xtest_fake_input(MOTION_NOTIFY_EVENT, 0, 0, root, x, y, 0)
                .expect("xtest request");
        });
    }

    /// Sends `request` (given the root window) on a connection of its own, and checks that the
    /// pointer is at (`x`, `y`) after it.
    fn pointer_to(
        &self,
        x: i16,
        y: i16,
        request: impl FnOnce(&x11rb::rust_connection::RustConnection, u32),
    ) {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::ConnectionExt;
        let (conn, screen) = x11rb::connect(Some(&self.display)).expect("connect to Xvfb");
        let root = conn.setup().roots[screen].root;
        request(&conn, root);
        let at = conn
            .query_pointer(root)
            .expect("pointer query")
            .reply()
            .expect("pointer reply");
        assert_eq!((at.root_x, at.root_y), (x, y), "the pointer moved");
    }

    /// Drags with the left button from `from` to `to` through XTEST, as a hand on a mouse would:
    /// press, a few moves, release.
    pub fn drag(&self, from: (i16, i16), to: (i16, i16)) {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{
            ConnectionExt as _, BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, MOTION_NOTIFY_EVENT,
        };
        use x11rb::protocol::xtest::ConnectionExt as _;
        let (conn, screen) = x11rb::connect(Some(&self.display)).expect("connect to Xvfb");
        let root = conn.setup().roots[screen].root;
        let pause = || std::thread::sleep(Duration::from_millis(60));
        let fake = |kind: u8, detail: u8, (x, y): (i16, i16)| {
            conn.xtest_fake_input(kind, detail, 0, root, x, y, 0)
                .expect("xtest request");
            conn.flush().expect("flush");
        };
        fake(MOTION_NOTIFY_EVENT, 0, from);
        pause();
        fake(BUTTON_PRESS_EVENT, 1, from);
        pause();
        for step in 1..=4i16 {
            let at = (
                from.0 + (to.0 - from.0) * step / 4,
                from.1 + (to.1 - from.1) * step / 4,
            );
            fake(MOTION_NOTIFY_EVENT, 0, at);
            pause();
        }
        fake(BUTTON_RELEASE_EVENT, 1, to);
        pause();
        conn.get_input_focus()
            .expect("round trip")
            .reply()
            .expect("round trip");
    }

    /// The screen as `xwd -root` reads it from the server: BGRx pixels, rows packed.
    pub fn xwd(&self) -> tessera_engine::FrameBuffer {
        self.xwd_of("-root")
    }

    /// One window's contents as `xwd -id` reads them from the server.
    pub fn xwd_window(&self, id: u32) -> tessera_engine::FrameBuffer {
        self.xwd_of(&format!("-id {id}"))
    }

    /// Runs xwd with `target` (`-root` or `-id N`) and parses its picture.
    fn xwd_of(&self, target: &str) -> tessera_engine::FrameBuffer {
        let out = Command::new("xwd")
            .args(target.split(' '))
            .args(["-silent", "-display", &self.display])
            .output()
            .expect("xwd runs");
        assert!(out.status.success(), "xwd failed");
        let d = out.stdout;
        let field = |i: usize| u32::from_be_bytes(d[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        let (header, width, height) = (field(0) as usize, field(4), field(5));
        let (byte_order, bpp, bytes_per_line, ncolors) =
            (field(7), field(11), field(12) as usize, field(19) as usize);
        assert_eq!((bpp, byte_order), (32, 0), "expect 32-bit LSB-first pixels");
        let start = header + ncolors * 12;
        let mut pixels = Vec::with_capacity(width as usize * height as usize * 4);
        for y in 0..height as usize {
            pixels.extend_from_slice(&d[start + y * bytes_per_line..][..width as usize * 4]);
        }
        tessera_engine::FrameBuffer::from_pixels(
            width,
            height,
            tessera_engine::PixelFormat::Bgrx8,
            pixels,
        )
        .expect("xwd's size")
    }
}

/// Runs `xdotool search --sync --class CLASS` then `commands` on the window found (waiting for
/// it), against `display`; whether it succeeded.
pub fn xdotool_on_class(display: &str, class: &str, commands: &[&str]) -> bool {
    let mut args = vec!["search", "--sync", "--class", class];
    args.extend_from_slice(commands);
    run_on(display, "xdotool", &args)
}

/// Runs a command against `display` and waits for it (for threads that hold only the name).
pub fn run_on(display: &str, program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .env("DISPLAY", display)
        .status()
        .is_ok_and(|s| s.success())
}

/// A program started for a test, its stderr read line by line (and echoed with a tag); killed
/// on drop.
pub struct Spawned {
    pub child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Spawned {
    /// Starts `command` with stdout discarded and stderr captured.
    pub fn start(mut command: Command, tag: &'static str) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the program starts");
        let (tx, lines) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("{tag}: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits (up to a minute) for a stderr line containing `needle`, and returns it.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("the program never said {needle:?}");
    }
}
