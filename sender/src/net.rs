//! QUIC plumbing shared by the sender and the receiver: endpoints with the engine's TLS settings,
//! join links for a listening endpoint, dialing a join link, and the framed control stream with
//! the handshake of either end.

use crate::quic_runtime::QuicRuntime;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tessera_engine::stream::{
    check_hello, client_config, server_config, Capabilities, ControlDecoder, ControlError,
    ControlMessage, Hello, Identity, JoinLink, JoinToken, RefuseReason, Role, TlsError,
    PROTOCOL_VERSION, SECRET_LEN, SERVER_NAME,
};
use thiserror::Error;

/// How long a peer has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection silent this long is dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// QUIC close code: the stream ended normally.
pub const CLOSE_DONE: u32 = 0;
/// QUIC close code: the peer was refused or broke the protocol.
pub const CLOSE_REFUSED: u32 = 1;

#[derive(Debug, Error)]
pub enum NetError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("TLS setup: {0}")]
    Crypto(String),
    #[error("could not reach any address of the join link: {0}")]
    Connect(String),
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream: {0}")]
    Stream(String),
    #[error("malformed control message: {0}")]
    Control(#[from] ControlError),
    #[error("peer refused us ({reason:?}): {detail}")]
    Refused {
        reason: RefuseReason,
        detail: String,
    },
    #[error("we refused the peer ({reason:?}): {detail}")]
    RefusedPeer {
        reason: RefuseReason,
        detail: String,
    },
    #[error("peer broke the protocol: {0}")]
    Protocol(String),
    #[error("peer did not finish the handshake in {HANDSHAKE_TIMEOUT:?}")]
    Timeout,
    #[error("control stream closed")]
    Closed,
}

/// A fresh random secret for a join link.
pub fn random_secret() -> [u8; SECRET_LEN] {
    let mut s = [0; SECRET_LEN];
    getrandom::fill(&mut s).expect("the OS random source is available");
    s
}

/// The transport settings of either end; `role`: the part this end plays.
fn transport(role: Role) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    if role == Role::Viewer {
        // The viewer acknowledges every update on the control stream, and QUIC's own
        // acknowledgement of the update rides in the same packet. Asking the sender to
        // acknowledge that packet at once, instead of after its 25 ms delay, lets the sender do
        // it in the wake that reads the packet: one wake of the sender's network thread an
        // update fewer (ACK frequency extension; a peer without it ignores the request).
        let mut acks = quinn::AckFrequencyConfig::default();
        acks.ack_eliciting_threshold(quinn::VarInt::from_u32(0));
        t.ack_frequency_config(Some(acks));
    }
    // Keyframes of large screens are tens of megabytes: let them flow without stalls on a LAN.
    t.stream_receive_window(quinn::VarInt::from_u32(32 << 20));
    t.receive_window(quinn::VarInt::from_u32(64 << 20));
    t.send_window(64 << 20);
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(64));
    // A dead peer (or a lost close) is noticed within IDLE_TIMEOUT.
    t.keep_alive_interval(Some(IDLE_TIMEOUT / 3));
    t.max_idle_timeout(Some(
        IDLE_TIMEOUT
            .try_into()
            .expect("10 s is a valid idle timeout"),
    ));
    Arc::new(t)
}

/// A listening endpoint and the join link that reaches it.
pub struct Listener {
    pub endpoint: quinn::Endpoint,
    pub link: JoinLink,
}

/// The QUIC settings a listener accepts with: `identity`'s certificate and the transport
/// settings of `role`.
pub fn quic_server_config(
    identity: &Identity,
    role: Role,
) -> Result<quinn::ServerConfig, NetError> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(server_config(identity)?)
        .map_err(|e| NetError::Crypto(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport(role));
    Ok(config)
}

/// Listens on `addr` with `identity`; the link lists every local address when `addr` is
/// unspecified (0.0.0.0 or [::]).
pub fn listen(
    addr: SocketAddr,
    identity: &Identity,
    secret: [u8; SECRET_LEN],
    role: Role,
) -> Result<Listener, NetError> {
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(quic_server_config(identity, role)?),
        std::net::UdpSocket::bind(addr)?,
        QuicRuntime::new(),
    )?;
    let bound = endpoint.local_addr()?;
    let link = JoinLink {
        addrs: local_addrs(bound),
        token: JoinToken {
            secret,
            fingerprint: identity.fingerprint(),
        },
    };
    Ok(Listener { endpoint, link })
}

/// The addresses a peer can dial to reach `bound`: itself, or for an unspecified address every
/// interface address of its family (loopback first).
pub fn local_addrs(bound: SocketAddr) -> Vec<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifs| {
            ifs.into_iter()
                .map(|i| i.ip())
                .filter(|ip| ip.is_ipv4() == bound.is_ipv4())
                .collect()
        })
        .unwrap_or_default();
    ips.sort_by_key(|ip| !ip.is_loopback());
    ips.dedup();
    if ips.is_empty() {
        ips.push(if bound.is_ipv4() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        });
    }
    ips.into_iter()
        .map(|ip| SocketAddr::new(ip, bound.port()))
        .collect()
}

/// Dials every address of `link` at once and keeps the first connection that completes, with
/// the listener's certificate pinned to the link's fingerprint. Returns the connection and its
/// endpoint (close through the endpoint and wait for it to go idle, so the peer hears the close).
pub async fn dial(
    link: &JoinLink,
    role: Role,
) -> Result<(quinn::Endpoint, quinn::Connection), NetError> {
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(client_config(link.token.fingerprint)?)
            .map_err(|e| NetError::Crypto(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(role));
    let mut attempts = tokio::task::JoinSet::new();
    for &addr in &link.addrs {
        let bind: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .expect("literal");
        let mut endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            std::net::UdpSocket::bind(bind)?,
            QuicRuntime::new(),
        )?;
        endpoint.set_default_client_config(config.clone());
        attempts.spawn(async move {
            let connecting = endpoint
                .connect(addr, SERVER_NAME)
                .map_err(|e| format!("{addr}: {e}"))?;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
                Ok(Ok(conn)) => Ok((endpoint, conn)),
                Ok(Err(e)) => Err(format!("{addr}: {e}")),
                Err(_) => Err(format!("{addr}: timed out")),
            }
        });
    }
    let mut errors = Vec::new();
    while let Some(result) = attempts.join_next().await {
        match result {
            Ok(Ok(dialed)) => return Ok(dialed),
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(NetError::Connect(errors.join("; ")))
}

/// Writes control messages.
pub struct ControlWriter {
    send: quinn::SendStream,
    buf: Vec<u8>,
}

impl ControlWriter {
    pub async fn send(&mut self, msg: &ControlMessage) -> Result<(), NetError> {
        self.buf.clear();
        msg.encode(&mut self.buf);
        self.send
            .write_all(&self.buf)
            .await
            .map_err(|e| NetError::Stream(e.to_string()))
    }
}

/// Reads control messages.
pub struct ControlReader {
    recv: quinn::RecvStream,
    decoder: ControlDecoder,
}

impl ControlReader {
    /// The next message; [`NetError::Closed`] when the peer ends the stream.
    pub async fn recv(&mut self) -> Result<ControlMessage, NetError> {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(msg) = self.decoder.next_message()? {
                return Ok(msg);
            }
            match self
                .recv
                .read(&mut buf)
                .await
                .map_err(|e| NetError::Stream(e.to_string()))?
            {
                Some(n) => self.decoder.push(&buf[..n]),
                None => return Err(NetError::Closed),
            }
        }
    }
}

fn control_channel(
    (send, recv): (quinn::SendStream, quinn::RecvStream),
) -> (ControlWriter, ControlReader) {
    (
        ControlWriter {
            send,
            buf: Vec::new(),
        },
        ControlReader {
            recv,
            decoder: ControlDecoder::new(),
        },
    )
}

/// A control stream after a successful handshake, and what the peer can do.
pub struct Handshaken {
    pub writer: ControlWriter,
    pub reader: ControlReader,
    pub peer: Capabilities,
}

fn hello(role: Role, secret: [u8; SECRET_LEN], capabilities: Capabilities) -> Hello {
    Hello {
        version: PROTOCOL_VERSION,
        role,
        secret,
        capabilities,
    }
}

/// The dialer's side: opens the control stream, proves the secret, reads Welcome or Refuse.
pub async fn greet(
    conn: &quinn::Connection,
    role: Role,
    secret: [u8; SECRET_LEN],
    capabilities: Capabilities,
) -> Result<Handshaken, NetError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let (mut writer, mut reader) = control_channel(conn.open_bi().await?);
        writer
            .send(&ControlMessage::Hello(hello(role, secret, capabilities)))
            .await?;
        match reader.recv().await? {
            ControlMessage::Welcome(w) if w.version == PROTOCOL_VERSION && w.role != role => {
                Ok(Handshaken {
                    writer,
                    reader,
                    peer: w.capabilities,
                })
            }
            ControlMessage::Welcome(w) => Err(NetError::Protocol(format!(
                "welcome from a {:?}, version {}",
                w.role, w.version
            ))),
            ControlMessage::Refuse { reason, detail } => Err(NetError::Refused { reason, detail }),
            other => Err(NetError::Protocol(format!(
                "expected Welcome, got {other:?}"
            ))),
        }
    })
    .await
    .map_err(|_| NetError::Timeout)?
}

/// The listener's side: accepts the control stream, checks the dialer's Hello (version, secret,
/// role) and `admit`'s verdict on its capabilities, and answers Welcome or Refuse. A refused
/// peer's connection is closed; nothing else has been sent on it.
pub async fn welcome(
    conn: &quinn::Connection,
    role: Role,
    secret: &[u8; SECRET_LEN],
    capabilities: Capabilities,
    admit: impl FnOnce(&Capabilities) -> Result<(), String>,
) -> Result<Handshaken, NetError> {
    let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let (mut writer, mut reader) = control_channel(conn.accept_bi().await?);
        let peer = match reader.recv().await? {
            ControlMessage::Hello(h) => h,
            other => return Err(NetError::Protocol(format!("expected Hello, got {other:?}"))),
        };
        let verdict = check_hello(&peer, secret, role)
            .and_then(|()| admit(&peer.capabilities).map_err(|d| (RefuseReason::Capabilities, d)));
        if let Err((reason, detail)) = verdict {
            writer
                .send(&ControlMessage::Refuse {
                    reason,
                    detail: detail.clone(),
                })
                .await?;
            let _ = writer.send.finish();
            // Give the refusal a moment to reach the peer before the connection closes.
            let _ = tokio::time::timeout(Duration::from_millis(500), writer.send.stopped()).await;
            return Err(NetError::RefusedPeer { reason, detail });
        }
        writer
            .send(&ControlMessage::Welcome(hello(
                role,
                [0; SECRET_LEN],
                capabilities,
            )))
            .await?;
        Ok(Handshaken {
            writer,
            reader,
            peer: peer.capabilities,
        })
    })
    .await
    .unwrap_or(Err(NetError::Timeout));
    if let Err(e) = &result {
        conn.close(
            quinn::VarInt::from_u32(CLOSE_REFUSED),
            e.to_string().as_bytes(),
        );
    }
    result
}
