//! The capture thread's inbox: what the network tasks and the chat send it, waited on together
//! with the source's change descriptor where the source has one (X11 on Linux), so that one
//! wait of the capture thread hears both and no thread stands between the OS and the grab.
//!
//! On Linux each send also bumps an eventfd, and the wait is one `ppoll` of that eventfd and
//! the source's descriptor. Elsewhere the wait is the channel's own.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tessera_platform::Watching;

#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// What ended a wait.
#[derive(Debug)]
pub(crate) struct Woken<T> {
    /// The first event waiting, if one was.
    pub event: Option<T>,
    /// The source's descriptor is readable: it reported a change.
    pub source_readable: bool,
    /// Every sender is gone.
    pub disconnected: bool,
}

/// Where an event's sender says it sent one.
#[derive(Debug)]
struct Doorbell {
    #[cfg(target_os = "linux")]
    fd: OwnedFd,
}

impl Doorbell {
    fn new() -> std::io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: eventfd with constant flags; the result is checked before use.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            Ok(Self { fd })
        }
        #[cfg(not(target_os = "linux"))]
        Ok(Self {})
    }

    fn ring(&self) {
        #[cfg(target_os = "linux")]
        {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to our own eventfd. It fails only when
            // the counter is near overflow, and then the bell is ringing anyway.
            unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }
    }

    /// Silences the bell before the channel is read: a send after this rings again.
    #[cfg(target_os = "linux")]
    fn answer(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer from our own non-blocking eventfd;
        // EAGAIN (not rung) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
    }
}

/// The sending side; clone it for every task that sends.
#[derive(Debug)]
pub(crate) struct InboxSender<T> {
    tx: mpsc::Sender<T>,
    bell: Arc<Doorbell>,
}

impl<T> Clone for InboxSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            bell: self.bell.clone(),
        }
    }
}

impl<T> InboxSender<T> {
    /// Sends `event`; an error when the inbox is gone.
    pub fn send(&self, event: T) -> Result<(), mpsc::SendError<T>> {
        self.tx.send(event)?;
        self.bell.ring();
        Ok(())
    }
}

/// The receiving side, on the capture thread.
pub(crate) struct Inbox<T> {
    rx: mpsc::Receiver<T>,
    // Elsewhere the channel's own wait hears the sends.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    bell: Arc<Doorbell>,
}

/// A new inbox and its first sender.
pub(crate) fn inbox<T>() -> std::io::Result<(InboxSender<T>, Inbox<T>)> {
    let (tx, rx) = mpsc::channel();
    let bell = Arc::new(Doorbell::new()?);
    Ok((
        InboxSender {
            tx,
            bell: bell.clone(),
        },
        Inbox { rx, bell },
    ))
}

impl<T> Inbox<T> {
    /// The next event already waiting, if any.
    pub fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }

    /// Waits up to `timeout` for an event, or (Linux) for the descriptor of a source watched as
    /// [`Watching::Readable`] to turn readable.
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    pub fn wait(&self, timeout: Duration, source: Watching) -> Woken<T> {
        let woken = |event, source_readable, disconnected| Woken {
            event,
            source_readable,
            disconnected,
        };
        #[cfg(target_os = "linux")]
        {
            match self.rx.try_recv() {
                Ok(event) => return woken(Some(event), false, false),
                Err(mpsc::TryRecvError::Disconnected) => return woken(None, false, true),
                Err(mpsc::TryRecvError::Empty) => {}
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.bell.fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: match source {
                        Watching::Readable(fd) => fd,
                        _ => -1,
                    },
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let limit = libc::timespec {
                tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
                tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
            };
            // SAFETY: two live pollfds (a negative fd is ignored by poll), a live timespec, no
            // signal mask.
            let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &limit, std::ptr::null()) };
            // An interrupted wait (n < 0, EINTR) is a short one: the caller loops.
            let source_readable = n > 0 && fds[1].revents != 0;
            if n > 0 && fds[0].revents != 0 {
                self.bell.answer();
            }
            match self.rx.try_recv() {
                Ok(event) => woken(Some(event), source_readable, false),
                Err(mpsc::TryRecvError::Disconnected) => woken(None, source_readable, true),
                Err(mpsc::TryRecvError::Empty) => woken(None, source_readable, false),
            }
        }
        #[cfg(not(target_os = "linux"))]
        match self.rx.recv_timeout(timeout) {
            Ok(event) => woken(Some(event), false, false),
            Err(mpsc::RecvTimeoutError::Timeout) => woken(None, false, false),
            Err(mpsc::RecvTimeoutError::Disconnected) => woken(None, false, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_send_wakes_a_wait_and_events_keep_their_order() {
        let (tx, rx) = inbox::<u32>().unwrap();
        let waiter = std::thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < 3 {
                let w = rx.wait(Duration::from_secs(10), Watching::No);
                assert!(!w.disconnected);
                got.extend(w.event);
                got.extend(std::iter::from_fn(|| rx.try_recv()));
            }
            (got, rx)
        });
        for i in 0..3 {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(i).unwrap();
        }
        let (got, rx) = waiter.join().unwrap();
        assert_eq!(got, [0, 1, 2]);
        // Nothing waiting: the wait lasts its timeout.
        let start = Instant::now();
        let w = rx.wait(Duration::from_millis(50), Watching::No);
        assert!(w.event.is_none() && !w.source_readable && !w.disconnected);
        assert!(start.elapsed() >= Duration::from_millis(50));
        drop(tx);
        assert!(rx.wait(Duration::from_secs(10), Watching::No).disconnected);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_readable_source_ends_a_wait() {
        let (_tx, rx) = inbox::<u32>().unwrap();
        let mut fds = [0; 2];
        // SAFETY: a pipe into a live two-int array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the pipe's fresh descriptors, owned here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let source = Watching::Readable(read.as_raw_fd());
        let w = rx.wait(Duration::from_millis(20), source);
        assert!(!w.source_readable, "nothing written yet");
        // SAFETY: one byte from a live buffer to our own pipe.
        assert_eq!(
            unsafe { libc::write(write.as_raw_fd(), [1u8].as_ptr().cast(), 1) },
            1
        );
        let w = rx.wait(Duration::from_secs(10), source);
        assert!(w.source_readable && w.event.is_none());
    }
}
