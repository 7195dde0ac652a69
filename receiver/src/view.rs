//! The receiving loop: one QUIC stream an update, each read within the limits this viewer
//! declared, applied, verified against the sender's whole-frame checksum, and acknowledged.

use crate::compositor::Compositor;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_engine::chat::Side;
use tessera_engine::stream::{
    frame_message_bound, is_compact, split_frame_message, Capabilities, ControlMessage,
    FrameChecksum, FrameHeader, FrameUnpacker, Identity, JoinLink, Role, Unpacked,
    FRAME_HEADER_LEN,
};
use tessera_engine::{
    ApplyError, BackendRequest, DecodeLimits, FrameBuffer, TileGrid, UPDATE_HEADER_LEN,
    UPDATE_MAGIC,
};
use tessera_sender::chat::{self, ChatConsole, ChatHub, ChatSetup};
use tessera_sender::net::{self, ControlWriter, Handshaken, NetError, CLOSE_DONE, CLOSE_REFUSED};
use tessera_sender::stats::{Labels, StatsReport, StreamStats};
use thiserror::Error;
use tokio::sync::Notify;

#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    pub compositor: BackendRequest,
    pub limits: DecodeLimits,
    /// Leave after this many composited frames.
    pub frames: Option<u64>,
    /// Wait this long between updates (for tests of slow viewers).
    pub delay_per_update: Option<Duration>,
    /// The chat and command channel: presets and audit log.
    pub chat: ChatSetup,
    /// The tile cache's budget in bytes, announced to the sender (0: none).
    pub tile_cache_bytes: u32,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            compositor: BackendRequest::Auto,
            limits: DecodeLimits::default(),
            frames: None,
            delay_per_update: None,
            chat: ChatSetup::default(),
            tile_cache_bytes: tessera_engine::TILE_CACHE_BYTES,
        }
    }
}

#[derive(Debug, Error)]
pub enum ReceiverError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("GPU: {0}")]
    Gpu(#[from] tessera_engine::GpuError),
    #[error("sender sent a bad frame message: {0}")]
    BadMessage(String),
    #[error("sender sent a bad update: {0}")]
    BadUpdate(#[from] ApplyError),
    #[error("sender closed the connection: {0}")]
    Closed(String),
}

/// What a finished viewing session saw.
pub struct ReceiverReport {
    pub stats: StatsReport,
    /// The composited frame at the end.
    pub last_frame: Option<FrameBuffer>,
}

enum Peer {
    Dial(JoinLink),
    Listen {
        endpoint: quinn::Endpoint,
        secret: [u8; 32],
    },
}

/// A viewer ready to run.
pub struct Receiver {
    config: ReceiverConfig,
    peer: Peer,
    link: Option<JoinLink>,
    stats: Arc<Mutex<StreamStats>>,
    stop: Arc<Notify>,
    chat: ChatHub,
    console: Option<ChatConsole>,
}

/// Ends a running [`Receiver`] from elsewhere (a closed window): it closes the connection as
/// done and returns what it saw.
#[derive(Clone)]
pub struct StopHandle(Arc<Notify>);

impl StopHandle {
    pub fn stop(&self) {
        self.0.notify_one();
    }
}

impl Receiver {
    fn new(config: ReceiverConfig, peer: Peer, link: Option<JoinLink>) -> Self {
        let labels = Labels {
            role: "receiver".into(),
            ..Labels::default()
        };
        let stats = Arc::new(Mutex::new(StreamStats::new(labels, config.frames)));
        let (chat, console) = chat::spawn_hub(Side::Viewing, config.chat.clone(), None);
        Self {
            config,
            peer,
            link,
            stats,
            stop: Arc::new(Notify::new()),
            chat,
            console: Some(console),
        }
    }

    /// Dials a sender's join link.
    pub fn connect(config: ReceiverConfig, link: JoinLink) -> Self {
        Self::new(config, Peer::Dial(link), None)
    }

    /// Listens for one sender (for a viewer the sharer can reach but not the reverse).
    pub fn listen(
        config: ReceiverConfig,
        addr: SocketAddr,
        identity: &Identity,
    ) -> Result<Self, ReceiverError> {
        let secret = net::random_secret();
        let listener = net::listen(addr, identity, secret, Role::Viewer)?;
        let link = Some(listener.link);
        Ok(Self::new(
            config,
            Peer::Listen {
                endpoint: listener.endpoint,
                secret,
            },
            link,
        ))
    }

    pub fn link(&self) -> Option<&JoinLink> {
        self.link.as_ref()
    }

    pub fn stats(&self) -> Arc<Mutex<StreamStats>> {
        self.stats.clone()
    }

    pub fn config(&self) -> &ReceiverConfig {
        &self.config
    }

    /// The person's end of the chat (once): lines to type in, lines to show.
    pub fn take_chat_console(&mut self) -> Option<ChatConsole> {
        self.console.take()
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Views until the sender finishes, `frames` are composited, or an error, compositing
    /// where the config asks.
    pub async fn run(self) -> Result<ReceiverReport, ReceiverError> {
        let (compositor, label) = Compositor::open(
            self.config.compositor,
            self.config.limits,
            self.config.tile_cache_bytes,
        )?;
        self.run_with(compositor, label, |_, _| {}).await
    }

    /// Views onto `compositor` (labelled `label` in reports), calling `on_frame` after each
    /// update is composited and verified (a window presents it from there).
    pub async fn run_with(
        self,
        mut compositor: Compositor,
        label: String,
        mut on_frame: impl FnMut(&Compositor, &FrameHeader),
    ) -> Result<ReceiverReport, ReceiverError> {
        let Receiver {
            config,
            peer,
            stats,
            stop,
            chat,
            ..
        } = self;
        stats.lock().expect("stats lock").labels.compositor = Some(label);
        let caps =
            Capabilities::with_limits(&config.limits).with_tile_cache(config.tile_cache_bytes);
        let (endpoint, conn, hs) = match peer {
            Peer::Dial(link) => {
                let (endpoint, conn) = net::dial(&link, Role::Viewer).await?;
                let hs = net::greet(&conn, Role::Viewer, link.token.secret, caps).await?;
                (endpoint, conn, hs)
            }
            Peer::Listen { endpoint, secret } => loop {
                let incoming = endpoint
                    .accept()
                    .await
                    .ok_or_else(|| ReceiverError::Closed("endpoint closed".into()))?;
                let Ok(conn) = incoming.await else { continue };
                match net::welcome(&conn, Role::Viewer, &secret, caps, |_| Ok(())).await {
                    Ok(hs) => break (endpoint, conn, hs),
                    Err(e) => eprintln!(
                        "tessera-receiver: sender {} refused: {e}",
                        conn.remote_address()
                    ),
                }
            },
        };
        let Handshaken {
            mut writer, reader, ..
        } = hs;
        // The sender sends nothing on the control stream yet; keep it open.
        let _reader = reader;
        // The chat stream, beside the control stream: this side opens it.
        match conn.open_bi().await {
            Ok(streams) => {
                tokio::spawn(async move { chat.serve(1, streams, true).await });
            }
            Err(e) => return Err(ReceiverError::Closed(e.to_string())),
        }
        let result = tokio::select! {
            r = receive(&conn, &mut writer, &mut compositor, &config, &stats, &mut on_frame) => r,
            () = stop.notified() => Ok(()),
        };
        // Counters stop with the stream, not after the connection has wound down.
        let report = stats.lock().expect("stats lock").report();
        let code = if result.is_ok() {
            CLOSE_DONE
        } else {
            CLOSE_REFUSED
        };
        let reason = match &result {
            Ok(()) => "done".to_string(),
            Err(e) => e.to_string(),
        };
        conn.close(quinn::VarInt::from_u32(code), reason.as_bytes());
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        result?;
        let last_frame = tokio::task::block_in_place(|| compositor.frame())?;
        Ok(ReceiverReport {
            stats: report,
            last_frame,
        })
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

async fn receive(
    conn: &quinn::Connection,
    writer: &mut ControlWriter,
    compositor: &mut Compositor,
    config: &ReceiverConfig,
    stats: &Mutex<StreamStats>,
    on_frame: &mut impl FnMut(&Compositor, &FrameHeader),
) -> Result<(), ReceiverError> {
    let mut checksum: Option<FrameChecksum> = None;
    let mut unpacker = FrameUnpacker::default();
    let mut composited = 0u64;
    loop {
        if config.frames.is_some_and(|n| composited >= n) {
            return Ok(());
        }
        let mut stream = match conn.accept_uni().await {
            Ok(s) => s,
            Err(quinn::ConnectionError::ApplicationClosed(close))
                if close.error_code.into_inner() == u64::from(CLOSE_DONE) =>
            {
                return Ok(());
            }
            Err(e) => return Err(ReceiverError::Closed(e.to_string())),
        };
        let (unpacked, wire_len, compact) = read_frame_message(
            &mut stream,
            &config.limits,
            &mut unpacker,
            checksum.as_ref(),
        )
        .await?;
        let message = unpacked.message;
        let (header, update) =
            split_frame_message(&message).map_err(|e| ReceiverError::BadMessage(e.to_string()))?;
        let applied = tokio::task::block_in_place(|| -> Result<_, ReceiverError> {
            if unpacked.not_held {
                // Patches of a frame this viewer does not hold: nothing is applied.
                return Ok(None);
            }
            let h = match compositor.apply(update) {
                Ok(h) => h,
                // Well formed, but for tiles this frame does not hold: nothing was applied.
                Err(e) if e.needs_keyframe() => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let grid = TileGrid::new(h.width, h.height, h.tile_size).expect("validated by apply");
            let sum = match &mut checksum {
                Some(c) if *c.grid() == grid && !h.keyframe => c,
                _ => checksum.insert(FrameChecksum::new(grid)),
            };
            sum.update_from_tiles(compositor.decoded());
            if let (false, Some(frame)) = (compositor.copied().is_empty(), compositor.held()) {
                sum.update_from_frame(&frame.as_frame(), &grid.tiles_touching(compositor.copied()));
            }
            Ok(Some((h, sum.value() == header.checksum)))
        })?;
        let Some(applied) = applied else {
            // Acknowledged (the sender counts updates in order) and followed by a request for a
            // keyframe, which the stream goes on from.
            stats.lock().expect("stats lock").unapplied += 1;
            writer
                .send(&ControlMessage::Ack {
                    sequence: header.sequence,
                })
                .await?;
            writer.send(&ControlMessage::RequestKeyframe).await?;
            continue;
        };
        let (h, verified) = applied;
        composited += 1;
        {
            let mut s = stats.lock().expect("stats lock");
            if composited == 1 {
                s.restart_clock();
            }
            s.frames = composited;
            s.updates += 1;
            s.keyframes += u64::from(h.keyframe);
            s.bytes += wire_len as u64;
            s.compact += u64::from(compact);
            s.record_latency(Duration::from_micros(
                now_us().saturating_sub(header.capture_time_us),
            ));
            s.mismatches += u64::from(!verified);
        }
        on_frame(compositor, &header);
        writer
            .send(&ControlMessage::Ack {
                sequence: header.sequence,
            })
            .await?;
        if !verified {
            writer.send(&ControlMessage::RequestKeyframe).await?;
        }
        if let Some(d) = config.delay_per_update {
            tokio::time::sleep(d).await;
        }
    }
}

/// Reads one frame message and returns it in canonical form, with the bytes it took on the
/// wire and whether it came compact. `held` is the checksum of the frame this viewer holds. A
/// canonical message: the frame and update headers first, then no more than the declared frame
/// size (checked against our limits) allows. A compact one: no more than the previous
/// message's frame size allows.
async fn read_frame_message(
    stream: &mut quinn::RecvStream,
    limits: &DecodeLimits,
    unpacker: &mut FrameUnpacker,
    held: Option<&FrameChecksum>,
) -> Result<(Unpacked, usize, bool), ReceiverError> {
    let bad = |e: String| ReceiverError::BadMessage(e);
    let mut first = [0u8; 1];
    stream
        .read_exact(&mut first)
        .await
        .map_err(|e| bad(format!("headers: {e}")))?;
    if is_compact(first[0]) {
        let limit = unpacker
            .compact_bound()
            .ok_or_else(|| bad("a compact frame message before any canonical one".into()))?;
        let mut wire = first.to_vec();
        read_body(stream, &mut wire, limit).await?;
        let len = wire.len();
        let message = unpacker
            .unpack(wire, held)
            .map_err(|e| bad(e.to_string()))?;
        return Ok((message, len, true));
    }
    let mut message = vec![0u8; FRAME_HEADER_LEN + UPDATE_HEADER_LEN];
    message[0] = first[0];
    stream
        .read_exact(&mut message[1..])
        .await
        .map_err(|e| bad(format!("headers: {e}")))?;
    split_frame_message(&message).map_err(|e| bad(e.to_string()))?;
    if message[FRAME_HEADER_LEN..FRAME_HEADER_LEN + 4] != UPDATE_MAGIC {
        return Err(bad(
            "the frame message does not carry an update (bad update magic)".into(),
        ));
    }
    let u32_at = |i: usize| u32::from_le_bytes(message[i..i + 4].try_into().expect("4 bytes"));
    let (width, height) = (u32_at(FRAME_HEADER_LEN + 12), u32_at(FRAME_HEADER_LEN + 16));
    if width == 0
        || height == 0
        || width > limits.max_width
        || height > limits.max_height
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(bad(format!(
            "declared frame {width}x{height} is beyond this viewer's limits"
        )));
    }
    read_body(stream, &mut message, frame_message_bound(width, height)).await?;
    let len = message.len();
    let message = unpacker
        .unpack(message, held)
        .map_err(|e| bad(e.to_string()))?;
    Ok((message, len, false))
}

/// Reads the rest of a stream straight into `message`, never past `limit` bytes in all.
async fn read_body(
    stream: &mut quinn::RecvStream,
    message: &mut Vec<u8>,
    limit: usize,
) -> Result<(), ReceiverError> {
    let bad = |e: String| ReceiverError::BadMessage(e);
    while let Some(chunk) = stream
        .read_chunk(limit.saturating_sub(message.len()) + 1, true)
        .await
        .map_err(|e| bad(format!("body: {e}")))?
    {
        message.extend_from_slice(&chunk.bytes);
        if message.len() > limit {
            return Err(bad(format!(
                "frame message longer than its frame allows ({limit} bytes)"
            )));
        }
    }
    Ok(())
}
