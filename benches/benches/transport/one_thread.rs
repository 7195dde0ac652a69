//! The sender's side of the QUIC round trips driven by `quinn-proto` on one thread with no async
//! runtime: a loop that sleeps in one `poll(2)` on the UDP socket until a datagram comes, QUIC's
//! timer is due or the next update is, and makes the updates itself. It has the sender's QUIC
//! settings (`tessera_sender::net::quic_server_config`) but not its tokio runtime, quinn's
//! tasks or a hand-over from another thread: what a QUIC driver of the sender's own, on the
//! thread that captures, would cost a round trip.

use bytes::BytesMut;
use quinn_proto::{
    Connection, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig, Event, StreamEvent,
    StreamId,
};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_engine::stream::{Identity, JoinLink, JoinToken, Role};
use tessera_sender::net;

use super::{thread_cpu, ACK, UPDATE};

/// The one connection and what the loop knows of it.
struct Peer {
    handle: ConnectionHandle,
    conn: Connection,
    /// The viewer's control stream, once it opened it.
    control: Option<StreamId>,
    /// Bytes read from the control stream: its announcement, then one acknowledgement an
    /// update.
    control_bytes: usize,
}

impl Peer {
    fn acknowledged(&self) -> usize {
        (self.control_bytes / ACK.len()).saturating_sub(1)
    }

    /// Reads what the control stream holds.
    fn read_control(&mut self) {
        let Some(id) = self.control else {
            return;
        };
        let mut stream = self.conn.recv_stream(id);
        let mut chunks = stream.read(true).expect("the control stream is readable");
        while let Ok(Some(chunk)) = chunks.next(usize::MAX) {
            self.control_bytes += chunk.bytes.len();
        }
        let _ = chunks.finalize();
    }

    /// Handles the connection's events: the control stream's opening and its bytes.
    fn take_events(&mut self) {
        while let Some(event) = self.conn.poll() {
            match event {
                // A new stream's first bytes come with its opening, not as a readable event.
                Event::Stream(StreamEvent::Opened { dir: Dir::Bi }) => {
                    self.control = self.control.or(self.conn.streams().accept(Dir::Bi));
                    self.read_control();
                }
                Event::Stream(StreamEvent::Readable { id }) if Some(id) == self.control => {
                    self.read_control();
                }
                Event::ConnectionLost { reason } => panic!("the viewer left: {reason}"),
                _ => {}
            }
        }
    }
}

/// Sends every datagram the endpoint or connection has ready.
fn transmit(socket: &UdpSocket, peer: &mut Peer, endpoint: &mut Endpoint, buf: &mut Vec<u8>) {
    while let Some(event) = peer.conn.poll_endpoint_events() {
        if let Some(event) = endpoint.handle_event(peer.handle, event) {
            peer.conn.handle_event(event);
        }
    }
    loop {
        buf.clear();
        let Some(t) = peer.conn.poll_transmit(Instant::now(), 1, buf) else {
            break;
        };
        socket
            .send_to(&buf[..t.size], t.destination)
            .expect("a loopback send");
    }
}

/// Sleeps until `socket` is readable or `deadline` passes.
fn wait(socket: &UdpSocket, deadline: Instant) {
    let timeout = deadline.saturating_duration_since(Instant::now());
    // Rounded up, so that a wake never comes before the deadline and spins.
    let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd, and its count.
    unsafe { libc::poll(&mut fd, 1, ms) };
}

/// Sends `updates` updates `interval` apart to a viewer (`viewer` gets the link to dial), each
/// acknowledged; this thread's CPU an update, over all but the first.
pub fn round_trips(updates: u32, interval: Duration, viewer: mpsc::Sender<JoinLink>) -> Duration {
    let identity = Identity::generate().expect("a certificate");
    let config = net::quic_server_config(&identity, Role::Sender).expect("QUIC settings");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a socket");
    socket.set_nonblocking(true).expect("non-blocking");
    let local: SocketAddr = socket.local_addr().expect("bound");
    let mut endpoint = Endpoint::new(
        Arc::new(EndpointConfig::default()),
        Some(Arc::new(config)),
        true,
        None,
    );
    viewer
        .send(JoinLink {
            addrs: vec![local],
            token: JoinToken {
                secret: net::random_secret(),
                fingerprint: identity.fingerprint(),
            },
        })
        .expect("the viewer waits");
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut datagram = vec![0u8; 64 * 1024];
    let mut peer: Option<Peer> = None;
    let mut sent = 0u32;
    let mut next_update: Option<Instant> = None;
    let mut start = None;
    let deadline = Instant::now() + interval * updates + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the round trips stalled");
        loop {
            let (n, from) = match socket.recv_from(&mut datagram) {
                Ok(got) => got,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("a loopback receive: {e}"),
            };
            let now = Instant::now();
            let data = BytesMut::from(&datagram[..n]);
            buf.clear();
            match endpoint.handle(now, from, None, None, data, &mut buf) {
                Some(DatagramEvent::NewConnection(incoming)) => {
                    buf.clear();
                    let (handle, conn) = endpoint
                        .accept(incoming, now, &mut buf, None)
                        .expect("the viewer is accepted");
                    peer = Some(Peer {
                        handle,
                        conn,
                        control: None,
                        control_bytes: 0,
                    });
                }
                Some(DatagramEvent::ConnectionEvent(_, event)) => {
                    if let Some(p) = peer.as_mut() {
                        p.conn.handle_event(event);
                    }
                }
                Some(DatagramEvent::Response(t)) => {
                    socket
                        .send_to(&buf[..t.size], t.destination)
                        .expect("a loopback send");
                }
                None => {}
            }
        }
        let Some(p) = peer.as_mut() else {
            wait(&socket, deadline);
            continue;
        };
        let now = Instant::now();
        if p.conn.poll_timeout().is_some_and(|t| t <= now) {
            p.conn.handle_timeout(now);
        }
        p.take_events();
        if p.acknowledged() >= 1 && start.is_none() {
            start = Some(thread_cpu());
        }
        if p.acknowledged() >= updates as usize {
            break;
        }
        // The first update goes once the control stream is announced.
        if next_update.is_none() && p.control_bytes >= ACK.len() {
            next_update = Some(now);
        }
        if let Some(at) = next_update.filter(|&at| at <= now && sent < updates) {
            let id = p.conn.streams().open(Dir::Uni).expect("stream credit");
            let mut stream = p.conn.send_stream(id);
            assert_eq!(stream.write(&UPDATE), Ok(UPDATE.len()), "written whole");
            stream.finish().expect("finished");
            sent += 1;
            next_update = Some(at + interval);
        }
        transmit(&socket, p, &mut endpoint, &mut buf);
        let wake = [
            p.conn.poll_timeout(),
            next_update.filter(|_| sent < updates),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(deadline);
        wait(&socket, wake);
    }
    let cpu = thread_cpu() - start.expect("one update at least");
    let p = peer.as_mut().expect("connected");
    p.conn.close(
        Instant::now(),
        0u32.into(),
        bytes::Bytes::from_static(b"done"),
    );
    transmit(&socket, p, &mut endpoint, &mut buf);
    cpu / (updates - 1)
}
