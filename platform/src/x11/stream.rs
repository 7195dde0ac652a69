//! The socket of our X connections, without a `poll` before every write.
//!
//! x11rb's own socket polls for "readable or writable" before each write it makes: four system
//! calls a grab that learn nothing, since a Unix socket to the X server has room for a grab's
//! few small requests. [`EagerStream`] writes at once instead and waits for room only after a
//! write found none (x11rb then reads what the server sent and waits on the socket again, as
//! it always did), so a full socket still never spins. Waits for reading are real waits.

use std::io::{ErrorKind, IoSlice, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use x11rb::errors::{ConnectError, DisplayParsingError};
use x11rb::reexports::x11rb_protocol::{parse_display::parse_display, xauth::get_auth};
use x11rb::rust_connection::{DefaultStream, PollMode, RustConnection, Stream};
use x11rb::utils::RawFdContainer;

/// A connection to the X server over an [`EagerStream`].
pub(super) type XConnection = RustConnection<EagerStream>;

/// A socket to the X server that waits for room to write only after a write found none.
pub(super) struct EagerStream {
    socket: DefaultStream,
    /// The last write would have blocked: the next wait to write is a real one.
    full: AtomicBool,
}

impl EagerStream {
    /// The outcome of a write, noting a full socket.
    fn wrote(&self, result: Result<usize>) -> Result<usize> {
        if result
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::WouldBlock)
        {
            self.full.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl Stream for EagerStream {
    fn poll(&self, mode: PollMode) -> Result<()> {
        // Returning at once is allowed ("spuriously"), and never twice in a row while the
        // socket is full: a write that finds it full sets `full`.
        if mode.writable() && !self.full.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        self.socket.poll(mode)
    }

    fn read(&self, buf: &mut [u8], fd_storage: &mut Vec<RawFdContainer>) -> Result<usize> {
        self.socket.read(buf, fd_storage)
    }

    fn write(&self, buf: &[u8], fds: &mut Vec<RawFdContainer>) -> Result<usize> {
        self.wrote(self.socket.write(buf, fds))
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>], fds: &mut Vec<RawFdContainer>) -> Result<usize> {
        self.wrote(self.socket.write_vectored(bufs, fds))
    }
}

impl std::os::fd::AsRawFd for EagerStream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }
}

/// Opens `display` (or `$DISPLAY`) as `x11rb::connect` does — each address the name stands
/// for in turn, with the authorization `XAUTHORITY` holds for it — over an [`EagerStream`].
/// The connection and its default screen's number.
pub(super) fn connect(
    display: Option<&str>,
) -> std::result::Result<(XConnection, usize), ConnectError> {
    let parsed = parse_display(display)?;
    let screen = usize::from(parsed.screen);
    let mut error = None;
    for address in parsed.connect_instruction() {
        match DefaultStream::connect(&address) {
            Ok((socket, (family, peer))) => {
                // As x11rb: without readable authorization, try without any.
                let (name, data) = get_auth(family, &peer, parsed.display)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let stream = EagerStream {
                    socket,
                    full: AtomicBool::new(false),
                };
                let conn =
                    RustConnection::connect_to_stream_with_auth_info(stream, screen, name, data)?;
                return Ok((conn, screen));
            }
            Err(e) => error = Some(e),
        }
    }
    Err(match error {
        Some(e) => ConnectError::IoError(e),
        None => DisplayParsingError::Unknown.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    fn eager(socket: UnixStream) -> EagerStream {
        let (socket, _) = DefaultStream::from_unix_stream(socket).unwrap();
        EagerStream {
            socket,
            full: AtomicBool::new(false),
        }
    }

    #[test]
    fn a_malformed_or_missing_display_is_an_error() {
        assert!(matches!(
            connect(Some("no display here")),
            Err(ConnectError::DisplayParsingError(_))
        ));
        assert!(matches!(
            connect(Some(":4998")),
            Err(ConnectError::IoError(_))
        ));
    }

    #[test]
    fn waits_for_room_only_after_a_write_found_none_and_always_waits_to_read() {
        let (ours, mut server) = UnixStream::pair().unwrap();
        let stream = eager(ours);
        let mut fds = Vec::new();
        // Room to write: no wait (this would block forever if it polled for reading alone,
        // and returns at once either way when it does not poll).
        stream.poll(PollMode::ReadAndWritable).unwrap();
        let chunk = [7u8; 4096];
        let mut written = 0;
        loop {
            match stream.write(&chunk, &mut fds) {
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        // Full: the next wait is a real one, over when the server has read.
        let reading = Arc::new(AtomicUsize::new(0));
        let server = {
            let reading = reading.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                reading.store(1, Ordering::SeqCst);
                let mut buf = vec![0u8; written];
                server.read_exact(&mut buf).unwrap();
                assert!(buf.iter().all(|&b| b == 7));
                server
            })
        };
        stream.poll(PollMode::ReadAndWritable).unwrap();
        assert_eq!(reading.load(Ordering::SeqCst), 1, "waited for the server");
        assert!(stream.write(&chunk[..1], &mut fds).is_ok());
        let mut server = server.join().unwrap();
        // Reading: a real wait, over when the server has written.
        let writing = Arc::new(AtomicUsize::new(0));
        let writer = {
            let writing = writing.clone();
            std::thread::spawn(move || {
                use std::io::Write;
                let mut one = [0u8; 1];
                server.read_exact(&mut one).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(50));
                writing.store(1, Ordering::SeqCst);
                server.write_all(b"reply").unwrap();
                server
            })
        };
        stream.poll(PollMode::Readable).unwrap();
        assert_eq!(writing.load(Ordering::SeqCst), 1, "waited for the reply");
        let mut buf = [0u8; 5];
        assert_eq!(stream.read(&mut buf, &mut fds).unwrap(), 5);
        assert_eq!(&buf, b"reply");
        drop(writer.join().unwrap());
    }
}
