//! The sender: one capture thread (capture, diff, checksum, encode, decide what each viewer
//! gets) and, per viewer, two async tasks (write updates as QUIC streams, read the control
//! stream). Viewers are served latest-wins through the engine's [`Broadcaster`].

use crate::acks::AckBox;
use crate::chat::{self, ChatConsole, ChatHub, ChatSetup};
use crate::full_compare::FullCompare;
use crate::inbox::{self, Inbox, InboxSender};
use crate::net::{self, Handshaken, NetError, CLOSE_DONE, CLOSE_REFUSED};
use crate::source::{FrameSource, SourceError, SourceSpec, WindowSelector};
use crate::stats::{Labels, StatsReport, StreamStats};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_engine::chat::{Operation, Side};
use tessera_engine::stream::{
    is_compact, Broadcaster, Capabilities, ControlMessage, FrameChecksum, FrameHeader, FramePacker,
    Identity, JoinLink, Role, Send, ViewerId, SECRET_LEN,
};
use tessera_engine::{
    move_pixels, BackendRequest, CacheModel, CopyDetector, CopyRect, CpuFrame, DecodeLimits,
    DiffError, DirtyMask, EncodeError, Frame, FrameBuffer, FrameDiffer, FramesIn, GridError,
    PatchBase, Rect, SolidTiles, TileEncoder, TileGrid, COPIES_CAPABILITY,
};
use tessera_platform::Watching;
use thiserror::Error;

/// What the sender shares and how.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    pub source: SourceSpec,
    /// Size of the synthetic screen.
    pub width: u32,
    pub height: u32,
    pub region: Option<Rect>,
    /// Follow this window (X11 screens).
    pub window: Option<WindowSelector>,
    /// Frames a second at most; 0 = as fast as viewers take them.
    pub fps: u32,
    pub tile: u32,
    pub diff: BackendRequest,
    /// Stop after this many frames (once every viewer has them), taken at every frame time
    /// even where the source could say when it changed.
    pub frames: Option<u64>,
    /// Pass the source's damage rectangles to the diff as hints.
    pub use_damage: bool,
    /// Updates a viewer may have unacknowledged.
    pub max_in_flight: usize,
    /// A viewer that acknowledges nothing for this long is disconnected.
    pub stall_timeout: Duration,
    /// The chat and command channel: presets and audit log.
    pub chat: ChatSetup,
    /// Draw the mouse pointer into captured frames (where the backend can).
    pub cursor: bool,
    /// The tile codecs the sender may use ([`tessera_engine::TileCodec::bit`]), where the
    /// viewer takes them too; raw and lz4 always.
    pub codecs: u8,
    /// Send tiles a viewer holds in its tile cache as references to it (where it has one).
    pub tile_cache: bool,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            source: SourceSpec::Synthetic(tessera_engine::Scene::Typing),
            width: 1920,
            height: 1080,
            region: None,
            window: None,
            fps: 60,
            tile: tessera_engine::DEFAULT_TILE_SIZE,
            diff: BackendRequest::Auto,
            frames: None,
            use_damage: true,
            max_in_flight: 2,
            stall_timeout: Duration::from_secs(10),
            chat: ChatSetup::default(),
            cursor: true,
            codecs: TileEncoder::default().codecs(),
            tile_cache: true,
        }
    }
}

#[derive(Debug, Error)]
pub enum SenderError {
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error("tile grid: {0}")]
    Grid(#[from] GridError),
    #[error("diff: {0}")]
    Diff(#[from] DiffError),
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("the viewer cannot take this stream: {0}")]
    Unsupported(String),
    #[error("capture thread failed: {0}")]
    Thread(String),
}

/// Messages from the network tasks to the capture thread.
enum Event {
    Joined {
        id: ViewerId,
        conn: quinn::Connection,
        updates: tokio::sync::mpsc::Sender<Arc<Vec<u8>>>,
        /// The tile codecs the viewer decodes.
        codecs: u8,
        /// The viewer's tile cache budget (0: none).
        tile_cache_bytes: u32,
        /// Where its acknowledgements wait for the capture thread.
        acks: Arc<AckBox>,
    },
    /// A viewer that had no room acknowledged an update (the acknowledgement is in its box).
    Acked,
    Keyframe {
        id: ViewerId,
    },
    Left {
        id: ViewerId,
    },
    /// Approved stream control from the chat, and where to say how it went.
    Control(Operation, mpsc::Sender<Result<String, String>>),
    /// The source says the screen may have changed (watched sources only).
    SourceChanged,
}

enum Peer {
    Listening {
        endpoint: quinn::Endpoint,
        secret: [u8; SECRET_LEN],
    },
    Dialing(JoinLink),
}

/// A sender ready to run: listening (its join link printed by the caller) or about to dial.
pub struct Sender {
    config: SenderConfig,
    peer: Peer,
    link: Option<JoinLink>,
    source: FrameSource,
    differ: FrameDiffer,
    stats: Arc<Mutex<StreamStats>>,
    events: InboxSender<Event>,
    inbox: Inbox<Event>,
    chat: ChatHub,
    console: Option<ChatConsole>,
}

impl Sender {
    fn prepare(
        config: SenderConfig,
        peer: Peer,
        link: Option<JoinLink>,
    ) -> Result<Self, SenderError> {
        let mut source = FrameSource::open(
            &config.source,
            config.width,
            config.height,
            config.region,
            config.window.as_ref(),
        )?;
        source.set_cursor(config.cursor);
        // Every capture backend hands its frames over in CPU memory (shared memory, mapped
        // buffers), so `auto` diffs them on the CPU.
        let (differ, choice, _) = FrameDiffer::open(config.diff, FramesIn::Cpu)?;
        let labels = Labels {
            role: "sender".into(),
            diff_backend: Some(format!("{:?}", choice.backend).to_lowercase()),
            diff_reason: Some(choice.reason.clone()),
            adapter: choice.adapter.as_ref().map(|a| a.to_string()),
            compositor: None,
            source: Some(source.label().to_string()),
        };
        let stats = Arc::new(Mutex::new(StreamStats::new(labels, config.frames)));
        let (events, inbox) = inbox::inbox().map_err(|e| SenderError::Thread(e.to_string()))?;
        let control_events = Mutex::new(events.clone());
        let control: chat::StreamControl = Box::new(move |op: &Operation| {
            let (reply, answer) = mpsc::channel();
            control_events
                .lock()
                .expect("control lock")
                .send(Event::Control(op.clone(), reply))
                .map_err(|_| "the stream has ended".to_string())?;
            // The capture thread answers within one turn of its loop.
            answer
                .recv_timeout(Duration::from_secs(2))
                .map_err(|_| "the stream did not answer".to_string())?
        });
        let (chat, console) = chat::spawn_hub(Side::Sharing, config.chat.clone(), Some(control));
        Ok(Self {
            config,
            peer,
            link,
            source,
            differ,
            stats,
            events,
            inbox,
            chat,
            console: Some(console),
        })
    }

    /// Listens on `addr` for viewers.
    pub fn listen(
        config: SenderConfig,
        addr: SocketAddr,
        identity: &Identity,
    ) -> Result<Self, SenderError> {
        let secret = net::random_secret();
        let listener = net::listen(addr, identity, secret, Role::Sender)?;
        let peer = Peer::Listening {
            endpoint: listener.endpoint,
            secret,
        };
        Self::prepare(config, peer, Some(listener.link))
    }

    /// Dials a listening viewer's join link.
    pub fn connect(config: SenderConfig, link: JoinLink) -> Result<Self, SenderError> {
        Self::prepare(config, Peer::Dialing(link), None)
    }

    /// The join link viewers use (listening senders only).
    pub fn link(&self) -> Option<&JoinLink> {
        self.link.as_ref()
    }

    /// Live counters, for a status line.
    pub fn stats(&self) -> Arc<Mutex<StreamStats>> {
        self.stats.clone()
    }

    /// The person's end of the chat (once): lines to type in, lines to show.
    pub fn take_chat_console(&mut self) -> Option<ChatConsole> {
        self.console.take()
    }

    /// Streams until `--frames` are delivered (or forever), then closes every connection.
    pub async fn run(self) -> Result<StatsReport, SenderError> {
        let Sender {
            config,
            peer,
            source,
            differ,
            stats,
            events,
            inbox,
            chat,
            ..
        } = self;
        let frame = source.frame();
        let shape = (frame.width(), frame.height(), config.tile, frame.format());
        TileGrid::new(shape.0, shape.1, shape.2)?;
        let admit =
            move |caps: &Capabilities| match caps.refuses(shape.0, shape.1, shape.2, shape.3) {
                Some(why) => Err(why),
                None => Ok(()),
            };
        let my_caps = Capabilities::with_limits(&DecodeLimits::default());

        let mut source = source;
        // A watched source is grabbed when it reports a change (and for the periodic full
        // compare), not at every frame time; a run of so many frames takes them all.
        let signal_events = events.clone();
        let watching = match config.frames {
            Some(_) => Watching::No,
            None => source.watch_changes(Arc::new(move || {
                let _ = signal_events.send(Event::SourceChanged);
            })),
        };
        let capture_stats = stats.clone();
        let capture_config = config.clone();
        let capture = std::thread::Builder::new()
            .name("tessera-capture".into())
            .spawn(move || {
                capture_loop(
                    capture_config,
                    source,
                    differ,
                    inbox,
                    watching,
                    capture_stats,
                )
            })
            .map_err(|e| SenderError::Thread(e.to_string()))?;

        let endpoint = match peer {
            Peer::Listening { endpoint, secret } => {
                let accept_endpoint = endpoint.clone();
                tokio::spawn(async move {
                    let mut next_id = 0;
                    while let Some(incoming) = accept_endpoint.accept().await {
                        next_id += 1;
                        let (id, events, chat) = (next_id, events.clone(), chat.clone());
                        tokio::spawn(async move {
                            let Ok(conn) = incoming.await else { return };
                            match net::welcome(&conn, Role::Sender, &secret, my_caps, admit).await {
                                Ok(hs) => serve_viewer(id, conn, hs, events, chat).await,
                                Err(e) => eprintln!(
                                    "tessera-sender: viewer {} refused: {e}",
                                    conn.remote_address()
                                ),
                            }
                        });
                    }
                });
                endpoint
            }
            Peer::Dialing(link) => {
                let (endpoint, conn) = net::dial(&link, Role::Sender).await?;
                let hs = net::greet(&conn, Role::Sender, link.token.secret, my_caps).await?;
                if let Err(why) = admit(&hs.peer) {
                    conn.close(quinn::VarInt::from_u32(CLOSE_REFUSED), why.as_bytes());
                    return Err(SenderError::Unsupported(why));
                }
                tokio::spawn(serve_viewer(1, conn, hs, events, chat));
                endpoint
            }
        };

        let joined = tokio::task::spawn_blocking(move || capture.join()).await;
        // However the capture ended (done, an error, a panic), the viewers hear the close: their
        // connections live in tasks of their own and would otherwise go on with nothing to show.
        endpoint.close(quinn::VarInt::from_u32(CLOSE_DONE), b"done");
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        joined
            .map_err(|e| SenderError::Thread(e.to_string()))?
            .map_err(|_| SenderError::Thread("capture thread panicked".into()))??;
        let report = stats.lock().expect("stats lock").report();
        Ok(report)
    }
}

/// The async runtime a sender runs on: one thread for every viewer's network side, beside the
/// capture thread. The network side only moves bytes; one thread spares the hand-offs between
/// workers that several would add to every update (a quarter of the sender's CPU while typing,
/// measured with `perf stat`).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs one viewer's network side until it leaves.
async fn serve_viewer(
    id: ViewerId,
    conn: quinn::Connection,
    hs: Handshaken,
    events: InboxSender<Event>,
    chat: ChatHub,
) {
    let Handshaken {
        mut reader, peer, ..
    } = hs;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Arc<Vec<u8>>>(8);
    let acks = Arc::new(AckBox::default());
    if events
        .send(Event::Joined {
            id,
            conn: conn.clone(),
            updates: tx,
            codecs: peer.codecs,
            tile_cache_bytes: peer.tile_cache_bytes,
            acks: acks.clone(),
        })
        .is_err()
    {
        return;
    }
    // The viewer opens the chat stream beside the control stream.
    let chat_conn = conn.clone();
    let chatting = tokio::spawn(async move {
        if let Ok(streams) = chat_conn.accept_bi().await {
            chat.serve(id, streams, false).await;
        }
    });
    let writer_conn = conn.clone();
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let Ok(mut stream) = writer_conn.open_uni().await else {
                break;
            };
            if stream.write_all(&msg).await.is_err() {
                break;
            }
            let _ = stream.finish();
        }
    });
    loop {
        let event = match reader.recv().await {
            Ok(ControlMessage::Ack { sequence }) if acks.push(sequence) => Event::Acked,
            Ok(ControlMessage::Ack { .. }) => continue,
            Ok(ControlMessage::RequestKeyframe) => Event::Keyframe { id },
            Ok(other) => {
                let why = format!("unexpected control message {other:?}");
                conn.close(quinn::VarInt::from_u32(CLOSE_REFUSED), why.as_bytes());
                break;
            }
            Err(_) => break,
        };
        if events.send(event).is_err() {
            break;
        }
    }
    let _ = events.send(Event::Left { id });
    writer.abort();
    // The chat ends by itself when the connection does.
    drop(chatting);
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

struct Viewer {
    conn: quinn::Connection,
    updates: tokio::sync::mpsc::Sender<Arc<Vec<u8>>>,
    /// Its acknowledgements not taken yet.
    acks: Arc<AckBox>,
    /// Since when the viewer has owed an acknowledgement, if it does.
    owing_since: Option<Instant>,
    /// The encoder for this viewer: the sender's codecs that it decodes too.
    encoder: TileEncoder,
    /// The tile hashes of the frame the viewer holds once it has applied what it was sent.
    holds: Vec<u64>,
    /// What the viewer's tile cache holds once it has applied what it was sent.
    cache: CacheModel,
    /// Puts this viewer's frame messages in their wire form (deltas compact).
    framer: FramePacker,
}

/// The frame before the current one, as every viewer that kept up holds it, and its tile
/// hashes: what patches are made against, and what the diff compares the next frame with.
struct PreviousFrame {
    frame: FrameBuffer,
    hashes: Vec<u64>,
    /// Which of its tiles are one colour, kept up with `frame` for the diff (which then reads
    /// only the new frame there); none where the frame is not compared with.
    solids: Option<SolidTiles>,
}

impl PreviousFrame {
    /// `frame` as the previous frame, with its tile hashes `hashes`.
    fn new(frame: &CpuFrame<'_>, grid: &TileGrid, hashes: &[u64]) -> Self {
        PreviousFrame {
            frame: FrameBuffer::from_frame(frame),
            hashes: hashes.to_vec(),
            solids: SolidTiles::of(frame, grid).ok(),
        }
    }

    /// Whether it has the size and format of `frame`, and as many tiles as `hashes`.
    fn fits(&self, frame: &CpuFrame<'_>, hashes: &[u64]) -> bool {
        (self.frame.width(), self.frame.height(), self.frame.format())
            == (frame.width(), frame.height(), frame.format())
            && self.hashes.len() == hashes.len()
    }

    /// Takes `frame`'s tiles in `tiles` and its tile hashes `hashes`, then equals `frame`; its
    /// one-colour tiles are looked at again in `changed`, the tiles where `frame` differs from
    /// the frame they describe.
    fn take_tiles(
        &mut self,
        frame: &CpuFrame<'_>,
        grid: &TileGrid,
        tiles: &DirtyMask,
        changed: &DirtyMask,
        hashes: &[u64],
    ) {
        self.frame.copy_tiles_from(frame, grid, tiles);
        self.hashes.clear();
        self.hashes.extend_from_slice(hashes);
        if let Some(s) = self.solids.as_mut() {
            if s.update(frame, grid, changed).is_err() {
                self.solids = None;
            }
        }
    }
}

/// A frame kept to make the next copy's frame from, instead of a whole-frame copy of the
/// previous one: it equals the previous frame but in the `stale` tiles.
struct Spare {
    frame: FrameBuffer,
    stale: DirtyMask,
}

/// The copy found in the current frame, if any, and the spare frame the next one is made from.
#[derive(Default)]
struct Copies {
    found: Option<Copied>,
    spare: Option<Spare>,
}

impl Copies {
    /// Brings `previous` to `frame` (the current frame, about to be replaced), whose tiles in
    /// `mask` changed since the frame `previous` holds, and whose tile hashes are `hashes`.
    /// Whether `previous` advanced by those tiles (false: it was made anew). When a copy was
    /// found for `frame`, the copy's frame (the previous one with the copy applied) becomes the
    /// previous frame: it differs from `frame` only in the dirty and written tiles whose hashes
    /// differ (after a scroll, the few tiles of new lines, not every dirty tile), and only those
    /// are taken from `frame`. The frame it replaces becomes the spare, stale in the dirty tiles.
    fn advance_previous(
        &mut self,
        previous: &mut Option<PreviousFrame>,
        frame: &CpuFrame<'_>,
        grid: &TileGrid,
        mask: &DirtyMask,
        hashes: &[u64],
    ) -> bool {
        let Some(p) = previous.as_mut().filter(|p| p.fits(frame, hashes)) else {
            *previous = Some(PreviousFrame::new(frame, grid, hashes));
            return false;
        };
        let copied = self.found.take_if(|c| {
            c.after.fits(frame, hashes)
                && c.written.len() == mask.len()
                && mask.len() == hashes.len()
        });
        let Some(c) = copied else {
            p.take_tiles(frame, grid, mask, mask, hashes);
            return true;
        };
        let mut touched = mask.clone();
        touched.union_with(&c.written);
        let mut differ = DirtyMask::new(mask.len());
        for t in touched.iter().filter(|&t| c.after.hashes[t] != hashes[t]) {
            differ.set(t);
        }
        let mut next = c.after;
        // The one-colour tiles of the frame it replaces, which differs from `frame` only in
        // `mask`.
        next.solids = p.solids.take();
        next.take_tiles(frame, grid, &differ, mask, hashes);
        let old = std::mem::replace(p, next);
        self.spare = Some(Spare {
            frame: old.frame,
            stale: mask.clone(),
        });
        true
    }

    /// The previous frame advanced by `advanced` (`None`: it was made anew): the last copy's
    /// frame is the spare now, and the spare's stale tiles grow by what advanced.
    fn advance(&mut self, advanced: Option<&DirtyMask>) {
        if let Some(c) = self.found.take() {
            // The copy's frame differs from the previous one where the copy wrote (and where
            // the previous frame advanced since, added below).
            self.spare = Some(Spare {
                frame: c.after.frame,
                stale: c.written,
            });
        }
        match (self.spare.as_mut(), advanced) {
            (Some(s), Some(a)) if s.stale.len() == a.len() => s.stale.union_with(a),
            _ => self.spare = None,
        }
    }
}

/// A scroll or move found between the previous frame and the current one: the copy, the previous
/// frame as the copy leaves it (and its tile hashes), and the tiles the copy reads or writes.
struct Copied {
    copy: CopyRect,
    after: PreviousFrame,
    touched: DirtyMask,
    written: DirtyMask,
}

impl Copied {
    /// Looks for a scroll or move from `previous` to `frame` inside `mask`; keeps it when the copy
    /// makes at least one dirty tile right (`current`: the frame's tile hashes). The copied
    /// frame is made from `spare` when there is one, bringing over from `previous` only its
    /// stale tiles, not the whole frame; a copy not kept leaves its frame there. `detector`
    /// remembers where move searches found nothing.
    fn detect(
        previous: &PreviousFrame,
        frame: &CpuFrame<'_>,
        grid: &TileGrid,
        mask: &DirtyMask,
        current: &[u64],
        spare: &mut Option<Spare>,
        detector: &mut CopyDetector,
    ) -> Option<Self> {
        let p = &previous.frame;
        if !previous.fits(frame, current) || current.len() != grid.tile_count() {
            return None;
        }
        let copy = detector
            .detect(&p.as_frame(), frame, grid, mask)
            .filter(|c| c.fits(p.width(), p.height()))?;
        let mut after = match spare.take() {
            Some(s)
                if (s.frame.width(), s.frame.height(), s.frame.format())
                    == (p.width(), p.height(), p.format())
                    && s.stale.len() == grid.tile_count() =>
            {
                let mut f = s.frame;
                f.copy_tiles_from(&p.as_frame(), grid, &s.stale);
                debug_assert!(f == *p, "the spare frame brought up to the previous one");
                f
            }
            Some(s) => {
                let mut f = s.frame;
                f.clone_from(p);
                f
            }
            None => p.clone(),
        };
        let written = grid.tiles_touching(&[copy.dst()]);
        // The copy's source hash was taken from this frame's pixels: no need to check it.
        move_pixels(&mut after, &copy);
        let mut sum = FrameChecksum::from_hashes(*grid, previous.hashes.clone());
        sum.update_from_frame(&after.as_frame(), &written);
        let hashes = sum.into_hashes();
        if !written
            .iter()
            .any(|t| mask.get(t) && hashes[t] == current[t])
        {
            *spare = Some(Spare {
                frame: after,
                stale: written,
            });
            return None;
        }
        Some(Self {
            copy,
            after: PreviousFrame {
                frame: after,
                hashes,
                // Only patched against, never compared with.
                solids: None,
            },
            touched: grid.tiles_touching(&[copy.src, copy.dst()]),
            written,
        })
    }
}

/// How one delta goes to one viewer.
struct DeltaPlan<'a> {
    /// The tiles to send.
    tiles: DirtyMask,
    /// What the viewer holds once the copy (if any) is applied, and which of `tiles` it holds
    /// as that frame has them (they may go as patches).
    base: Option<(&'a PreviousFrame, DirtyMask)>,
    /// The copy, when the viewer holds every pixel it touches.
    copy: Option<&'a Copied>,
}

impl<'a> DeltaPlan<'a> {
    /// Plans the update of the tiles `pending` for `viewer`; `current`: the frame's tile hashes.
    fn new(
        pending: &DirtyMask,
        viewer: &Viewer,
        previous: Option<&'a PreviousFrame>,
        copied: Option<&'a Copied>,
        current: &[u64],
    ) -> Self {
        let tiles = pending.len();
        let Some(prev) = previous.filter(|p| {
            p.hashes.len() == tiles && viewer.holds.len() == tiles && current.len() == tiles
        }) else {
            return Self {
                tiles: pending.clone(),
                base: None,
                copy: None,
            };
        };
        let holds_previous = |t: usize| viewer.holds[t] == prev.hashes[t];
        let copy = copied.filter(|sc| {
            viewer.encoder.codecs() & COPIES_CAPABILITY != 0
                && sc.touched.iter().all(holds_previous)
        });
        let Some(sc) = copy else {
            let mut held = DirtyMask::new(tiles);
            for t in pending.iter().filter(|&t| holds_previous(t)) {
                held.set(t);
            }
            return Self {
                tiles: pending.clone(),
                base: Some((prev, held)),
                copy: None,
            };
        };
        // After the copy the viewer holds `sc.after`; the tiles it writes go only where the
        // copy did not already make them right.
        let (mut send, mut held) = (DirtyMask::new(tiles), DirtyMask::new(tiles));
        for t in pending.iter().chain(sc.written.iter()) {
            let written = sc.written.get(t);
            if written && sc.after.hashes[t] == current[t] {
                continue;
            }
            send.set(t);
            if written || viewer.holds[t] == sc.after.hashes[t] {
                held.set(t);
            }
        }
        Self {
            tiles: send,
            base: Some((&sc.after, held)),
            copy: Some(sc),
        }
    }
}

/// What an encoded update depends on, so viewers that need the same one share it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EncodeKey {
    send: Send,
    codecs: u8,
    /// The tiles sent as patches of the previous frame, if any may be.
    patchable: Option<DirtyMask>,
    /// Whether the update starts with the frame's copy.
    copied: bool,
    /// The tiles sent as references to the viewer's tile cache, if any.
    cached: Option<DirtyMask>,
}

/// The capture thread: paces frames, diffs them, and hands each ready viewer what it needs.
fn capture_loop(
    config: SenderConfig,
    mut source: FrameSource,
    mut differ: FrameDiffer,
    inbox: Inbox<Event>,
    watching: Watching,
    stats: Arc<Mutex<StreamStats>>,
) -> Result<(), SenderError> {
    let watched = watching != Watching::No;
    let encoder = TileEncoder::default().with_codecs(config.codecs);
    let mut broadcaster = Broadcaster::new(config.max_in_flight);
    let mut viewers: HashMap<ViewerId, Viewer> = HashMap::new();
    let mut grid: Option<TileGrid> = None;
    let mut checksum: Option<FrameChecksum> = None;
    let mut header = FrameHeader {
        sequence: 0,
        capture_time_us: 0,
        checksum: 0,
    };
    let mut cache: Vec<(EncodeKey, Arc<Vec<u8>>)> = Vec::new();
    // While sharing is stopped: the blank frame, its checksum, and the header of the real one it
    // replaced.
    let mut blank: Option<(FrameBuffer, FrameChecksum, FrameHeader)> = None;
    // The frame before the current one (what the next frame is compared with), and the tiles
    // that changed since it.
    let mut previous: Option<PreviousFrame> = None;
    let mut last_mask: Option<DirtyMask> = None;
    // The scroll or move from the previous frame to the current one, if one was found.
    let mut copies = Copies::default();
    let mut detector = CopyDetector::new();
    let mut pacing = Pacing {
        source_changes: Vec::new(),
        paused: false,
        stopped: false,
        use_damage: config.use_damage,
        interval: (config.fps > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(config.fps))),
        reported: true,
        ahead: false,
    };
    let mut next_due = Instant::now();
    // When the whole frame was last compared.
    let mut full_compares = FullCompare::new(Instant::now());
    let mut captured = 0u64;
    let done = |captured: u64| config.frames.is_some_and(|n| captured >= n);
    let mut taken = Vec::new();
    let mut acks_waiting = false;

    loop {
        // Wait for an event, or until the next frame is due.
        let now = Instant::now();
        let capturing = !viewers.is_empty() && !done(captured) && !pacing.paused && !pacing.stopped;
        let quiet_until = pacing.quiet_until(watched, &full_compares);
        let looks_at_frame_time = capturing && watched && pacing.looks_at_frame_time();
        let wait = match (capturing, pacing.interval) {
            // An acknowledgement came while arming a viewer's box: take it first.
            _ if acks_waiting => Duration::ZERO,
            (true, Some(_)) if looks_at_frame_time => next_due.saturating_duration_since(now),
            (true, Some(_)) => quiet_until
                .map_or(next_due, |q| q.max(next_due))
                .saturating_duration_since(now),
            (true, None) if broadcaster.has_capacity() => {
                quiet_until.map_or(Duration::ZERO, |q| q.saturating_duration_since(now))
            }
            _ => Duration::from_millis(20),
        };
        let woken = inbox.wait(
            wait,
            if looks_at_frame_time {
                Watching::No
            } else {
                watching
            },
        );
        if woken.disconnected {
            return Ok(());
        }
        pacing.hear_source(
            looks_at_frame_time,
            woken.source_readable,
            Instant::now() >= next_due,
            || source.take_changes(),
        );
        let first = woken.event;
        // Acknowledgements before events: each viewer's came before what it sent next.
        take_acks(&mut broadcaster, &mut viewers, &mut taken);
        if let Some(first) = first {
            // This event, and every one already waiting behind it.
            let waiting = std::iter::from_fn(|| inbox.try_recv());
            for event in std::iter::once(first).chain(waiting) {
                handle(
                    event,
                    &encoder,
                    config.tile_cache,
                    &mut broadcaster,
                    &mut viewers,
                    &mut pacing,
                );
            }
            for (op, reply) in pacing.source_changes.drain(..) {
                pacing.reported = true;
                let result = match &op {
                    Operation::SetRegion {
                        x,
                        y,
                        width,
                        height,
                    } => source.set_region(Some(Rect::new(*x, *y, *width, *height))),
                    Operation::FollowWindow { window } => source.follow_window(window),
                    Operation::SetSetting { name, value } if name == "pointer" => {
                        if source.set_cursor(value == "on") {
                            Ok(())
                        } else {
                            Err(SourceError::Capture(
                                tessera_platform::CaptureError::Unavailable(
                                    "this source has no pointer to draw".into(),
                                ),
                            ))
                        }
                    }
                    other => Err(SourceError::Capture(
                        tessera_platform::CaptureError::Unavailable(format!(
                            "{other} cannot be applied to the source"
                        )),
                    )),
                };
                let _ = reply.send(
                    result
                        .map(|()| format!("now sharing {}", source.label()))
                        .map_err(|e| e.to_string()),
                );
            }
        }

        // Stopping shows every viewer a blank frame of the same size, as a new frame of its own;
        // starting again sends them the screen as a keyframe.
        match (pacing.stopped, &blank, grid) {
            (true, None, Some(g)) => {
                let f = source.frame();
                let b = FrameBuffer::new(f.width(), f.height(), f.format())
                    .map_err(|e| SenderError::Thread(e.to_string()))?;
                let mut sum = FrameChecksum::new(g);
                sum.update_from_frame(&b.as_frame(), &DirtyMask::full(g.tile_count()));
                let real = header;
                header.sequence += 1;
                header.capture_time_us = now_us();
                header.checksum = sum.value();
                broadcaster.request_keyframes();
                cache.clear();
                blank = Some((b, sum, real));
            }
            (false, Some((_, _, real)), _) => {
                // The screen as it was, as a newer frame than the blank one.
                header = FrameHeader {
                    sequence: header.sequence + 1,
                    ..*real
                };
                blank = None;
                broadcaster.request_keyframes();
                cache.clear();
            }
            _ => {}
        }

        let now = Instant::now();
        let capturing = !viewers.is_empty() && !done(captured) && !pacing.paused && !pacing.stopped;
        let full_compare = full_compares.due(now);
        let due = match pacing.interval {
            Some(_) => now >= next_due,
            None => broadcaster.has_capacity(),
        } && pacing
            .quiet_until(watched, &full_compares)
            .is_none_or(|q| now >= q);
        if capturing && due {
            // The frame about to be replaced becomes the base of the next patches.
            let mut advanced = None;
            if let (Some(mask), Some(g), Some(sum)) = (last_mask.take(), grid, &checksum) {
                let frame = source.frame();
                // A source that now shows another part of the screen: the previous frame cannot
                // be brought up to it by the last changes, and patches against it would be wrong.
                // The next frame is compared with nothing (every tile goes), and patches wait for
                // the frame after it.
                if source.reframed() || g.check_frame(frame.width(), frame.height()).is_err() {
                    previous = None;
                } else if copies.advance_previous(&mut previous, &frame, &g, &mask, sum.hashes()) {
                    advanced = Some(mask);
                }
            }
            pacing.reported = false;
            let within_damage = pacing.use_damage && !full_compare;
            source.advance(within_damage)?;
            header.capture_time_us = now_us();
            let frame = source.frame();
            let g = match grid {
                Some(g) if (g.width(), g.height()) == (frame.width(), frame.height()) => g,
                _ => {
                    let g = TileGrid::new(frame.width(), frame.height(), config.tile)?;
                    checksum = Some(FrameChecksum::new(g));
                    // A new size is a new frame for every viewer, even with as many tiles.
                    if grid.is_some() {
                        broadcaster.request_keyframes();
                    }
                    grid = Some(g);
                    g
                }
            };
            // Damage narrows the compare; a full compare now and then catches what the OS missed.
            let hints = source.damage().filter(|_| within_damage);
            // Compared with the frame the patches are made against: the CPU diff keeps no copy
            // of its own.
            let held = previous.as_ref().map(|p| p.frame.as_frame());
            let solids = previous.as_ref().and_then(|p| p.solids.as_ref());
            let mask = differ.diff_from(held.as_ref(), solids, Frame::Cpu(frame), &g, hints)?;
            if full_compare {
                let reported = source.damage().map(|d| g.tiles_touching(d));
                full_compares.done(now, &mask, reported.as_ref());
            }
            let sum = checksum.as_mut().expect("made with the grid");
            sum.update_from_frame(&frame, &mask);
            header.checksum = sum.value();
            copies.advance(advanced.as_ref());
            copies.found = previous
                .as_ref()
                .filter(|_| encoder.codecs() & COPIES_CAPABILITY != 0)
                .and_then(|p| {
                    Copied::detect(
                        p,
                        &frame,
                        &g,
                        &mask,
                        sum.hashes(),
                        &mut copies.spare,
                        &mut detector,
                    )
                });
            captured += 1;
            header.sequence += 1;
            broadcaster.on_frame(&mask);
            last_mask = Some(mask);
            cache.clear();
            let mut s = stats.lock().expect("stats lock");
            if captured == 1 {
                s.restart_clock();
            }
            s.frames = captured;
            drop(s);
            if let Some(iv) = pacing.interval {
                next_due += iv;
                if next_due < now {
                    next_due = now + iv;
                }
            }
        }

        for id in broadcaster.ready() {
            let Some(send) = broadcaster.take(id) else {
                continue;
            };
            let (frame, hashes) = match &blank {
                Some((b, sum, _)) => (b.as_frame(), sum.hashes()),
                None => (
                    source.frame(),
                    checksum.as_ref().expect("made with the grid").hashes(),
                ),
            };
            let Some(g) = grid else {
                continue;
            };
            let Some(viewer) = viewers.get(&id) else {
                continue;
            };
            let plan = match &send {
                Send::Delta(pending) if blank.is_none() => Some(DeltaPlan::new(
                    pending,
                    viewer,
                    previous.as_ref(),
                    copies.found.as_ref(),
                    hashes,
                )),
                _ => None,
            };
            // Tiles whose new content the viewer's tile cache holds go as references.
            let cached = plan
                .as_ref()
                .filter(|_| viewer.cache.is_enabled())
                .and_then(|p| {
                    let mut m = DirtyMask::new(p.tiles.len());
                    for t in p.tiles.iter().filter(|&t| viewer.cache.holds(hashes[t])) {
                        m.set(t);
                    }
                    (!m.none()).then_some(m)
                });
            let key = EncodeKey {
                send: send.clone(),
                codecs: viewer.encoder.codecs(),
                patchable: plan
                    .as_ref()
                    .and_then(|p| p.base.as_ref().map(|(_, held)| held.clone())),
                copied: plan.as_ref().is_some_and(|p| p.copy.is_some()),
                cached,
            };
            let msg = match cache.iter().find(|(k, _)| *k == key) {
                Some((_, m)) => m.clone(),
                None => {
                    // The update is encoded right behind its frame header: no copy.
                    let mut msg = Vec::new();
                    header.write(&mut msg);
                    let encoder = viewer.encoder;
                    let encoded = match (&send, &plan) {
                        (Send::Delta(_), Some(plan)) => {
                            let copies: &[CopyRect] = match plan.copy {
                                Some(sc) => std::slice::from_ref(&sc.copy),
                                None => &[],
                            };
                            // A plan with a copy always has a base: the frame after it.
                            let patch_base = plan.base.as_ref().map(|(p, held)| PatchBase {
                                frame: p.frame.as_frame(),
                                hashes: &p.hashes,
                                held,
                                copies,
                            });
                            encoder.encode_delta_cached(
                                &frame,
                                &g,
                                &plan.tiles,
                                patch_base.as_ref(),
                                key.cached.as_ref(),
                                header.sequence,
                                &mut msg,
                            )?
                        }
                        (Send::Delta(mask), None) => encoder.encode_delta(
                            &frame,
                            &g,
                            mask,
                            None,
                            header.sequence,
                            &mut msg,
                        )?,
                        (Send::Keyframe, _) => {
                            encoder.encode_keyframe(&frame, &g, header.sequence, &mut msg)?
                        }
                    };
                    let mut s = stats.lock().expect("stats lock");
                    s.tiles.add(&encoded);
                    s.tiles.copies += u64::from(key.copied);
                    drop(s);
                    let msg = Arc::new(msg);
                    cache.push((key, msg.clone()));
                    msg
                }
            };
            // What the viewer holds once it applies this: its frame, and its tile cache, which
            // records the update's tiles in order as the viewer will.
            let written = plan
                .as_ref()
                .and_then(|p| p.copy)
                .map(|sc| sc.written.clone());
            if let Some(v) = viewers.get_mut(&id) {
                let tiles: &DirtyMask = match (&send, &plan) {
                    (Send::Delta(_), Some(p)) => &p.tiles,
                    (Send::Delta(mask), None) => mask,
                    (Send::Keyframe, _) => &DirtyMask::full(hashes.len()),
                };
                v.cache.record(
                    send == Send::Keyframe,
                    tiles.iter().map(|t| {
                        let r = g.tile_rect(t);
                        (hashes[t], r.width, r.height)
                    }),
                );
            }
            if let Some(v) = viewers.get_mut(&id) {
                match &send {
                    Send::Keyframe => {
                        v.holds.clear();
                        v.holds.extend_from_slice(hashes);
                    }
                    Send::Delta(mask) => {
                        v.holds.resize(hashes.len(), 0);
                        for i in mask.iter().chain(written.iter().flat_map(|w| w.iter())) {
                            v.holds[i] = hashes[i];
                        }
                    }
                }
            }
            let Some(v) = viewers.get_mut(&id) else {
                continue;
            };
            let msg = v.framer.pack(msg, hashes);
            let compact = msg.first().is_some_and(|&b| is_compact(b));
            let len = msg.len();
            match viewers.get(&id).map(|v| v.updates.try_send(msg)) {
                Some(Ok(())) => {
                    broadcaster.sent(id, header.sequence);
                    if let Some(v) = viewers.get_mut(&id) {
                        v.owing_since.get_or_insert_with(Instant::now);
                    }
                    let mut s = stats.lock().expect("stats lock");
                    s.updates += 1;
                    s.bytes += len as u64;
                    s.keyframes += u64::from(send == Send::Keyframe);
                    s.compact += u64::from(compact);
                }
                _ => drop_viewer(id, "update queue full", &mut broadcaster, &mut viewers),
            }
        }

        let stalled: Vec<ViewerId> = viewers
            .iter()
            .filter(|(_, v)| {
                v.owing_since
                    .is_some_and(|t| t.elapsed() > config.stall_timeout)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in stalled {
            drop_viewer(
                id,
                "stalled: no acknowledgement in time",
                &mut broadcaster,
                &mut viewers,
            );
        }

        if done(captured) && !viewers.is_empty() && broadcaster.all_caught_up() {
            return Ok(());
        }
        // A viewer without room is woken for: ask its network task to wake this thread on its
        // next acknowledgement.
        acks_waiting = false;
        for (&id, v) in &viewers {
            if !broadcaster.has_room(id) && !v.acks.arm() {
                acks_waiting = true;
            }
        }
    }
}

/// How the capture thread paces itself; chat stream control changes it.
struct Pacing {
    paused: bool,
    /// Sharing stopped: viewers see a blank frame until it starts again.
    stopped: bool,
    /// Let the source's damage narrow the diff (`damage-hints`).
    use_damage: bool,
    interval: Option<Duration>,
    /// The source reported a change (or was changed) since the last grab. Only watched sources
    /// report; the others are grabbed at every frame time.
    reported: bool,
    /// The last change came before its frame time, so its grab waited for that time. While
    /// changes outrun the frame rate (a terminal scrolling), the next is looked for at the next
    /// frame time. A frame time that finds no change ends it.
    ahead: bool,
    /// Region and window changes the loop applies to the source, with their replies.
    source_changes: Vec<(Operation, mpsc::Sender<Result<String, String>>)>,
}

impl Pacing {
    /// Until when a watched source that reported nothing is left alone: its next grab is the
    /// full compare. `None`: it is grabbed at the frame rate (unwatched, or it reported).
    fn quiet_until(&self, watched: bool, full_compares: &FullCompare) -> Option<Instant> {
        (watched && !self.reported).then(|| full_compares.next())
    }

    /// Whether a watched source is left unwatched until the next frame time and looked at then:
    /// when a change is already reported (its grab waits for that time anyway), or when changes
    /// have been coming faster than frames. Waking at every change only to wait again cost a
    /// wake of the capture thread a frame.
    fn looks_at_frame_time(&self) -> bool {
        self.interval.is_some() && (self.reported || self.ahead)
    }

    /// After a wait: what the source reported. `unwatched`: the wait left it alone
    /// ([`Self::looks_at_frame_time`]); `readable`: watched, its descriptor turned readable;
    /// `frame_time`: the next frame is due; `take_changes`: reads what it sent, whether a change.
    fn hear_source(
        &mut self,
        unwatched: bool,
        readable: bool,
        frame_time: bool,
        take_changes: impl FnOnce() -> bool,
    ) {
        if readable {
            if take_changes() {
                self.reported = true;
                self.ahead = !frame_time;
            }
        } else if unwatched && frame_time {
            // What it sent while it was not watched: a change, or news of the pointer.
            self.reported |= take_changes();
            self.ahead = self.reported;
        }
    }
}

fn handle(
    event: Event,
    encoder: &TileEncoder,
    tile_cache: bool,
    broadcaster: &mut Broadcaster,
    viewers: &mut HashMap<ViewerId, Viewer>,
    pacing: &mut Pacing,
) {
    match event {
        Event::Control(op, reply) => {
            let done = match &op {
                Operation::Pause => {
                    pacing.paused = true;
                    "paused"
                }
                Operation::Resume => {
                    pacing.paused = false;
                    "resumed"
                }
                Operation::FullRefresh => {
                    broadcaster.request_keyframes();
                    "a keyframe goes to every viewer"
                }
                Operation::SetFps { fps } => {
                    pacing.interval = Some(Duration::from_secs_f64(1.0 / f64::from((*fps).max(1))));
                    "frame rate set"
                }
                Operation::StopSharing => {
                    pacing.stopped = true;
                    "sharing stopped: viewers see a blank screen"
                }
                Operation::StartSharing => {
                    pacing.stopped = false;
                    "sharing again"
                }
                Operation::SetSetting { name, value } if name == "damage-hints" => {
                    pacing.use_damage = value == "on";
                    "damage hints set"
                }
                Operation::SetRegion { .. }
                | Operation::FollowWindow { .. }
                | Operation::SetSetting { .. } => {
                    pacing.source_changes.push((op, reply));
                    return;
                }
                other => {
                    let _ = reply.send(Err(format!("{other} is not stream control")));
                    return;
                }
            };
            let _ = reply.send(Ok(done.to_string()));
        }
        Event::Joined {
            id,
            conn,
            updates,
            codecs,
            tile_cache_bytes,
            acks,
        } => {
            broadcaster.add(id);
            viewers.insert(
                id,
                Viewer {
                    conn,
                    updates,
                    acks,
                    owing_since: None,
                    encoder: encoder.with_codecs(encoder.codecs() & codecs),
                    holds: Vec::new(),
                    cache: CacheModel::new(if tile_cache { tile_cache_bytes } else { 0 }),
                    framer: FramePacker::default(),
                },
            );
        }
        // Only a wake: the capture loop takes every box's acknowledgements before events.
        Event::Acked => {}
        Event::Keyframe { id } => {
            let _ = broadcaster.request_keyframe(id);
        }
        Event::SourceChanged => pacing.reported = true,
        Event::Left { id } => {
            broadcaster.remove(id);
            viewers.remove(&id);
        }
    }
}

/// Applies the acknowledgements that the viewers' network tasks left in their boxes; a viewer
/// that acknowledged out of order is dropped.
fn take_acks(
    broadcaster: &mut Broadcaster,
    viewers: &mut HashMap<ViewerId, Viewer>,
    taken: &mut Vec<u64>,
) {
    let mut broken = Vec::new();
    for (&id, v) in viewers.iter_mut() {
        taken.clear();
        v.acks.take(taken);
        if taken.is_empty() {
            continue;
        }
        match taken.iter().try_for_each(|&s| broadcaster.on_ack(id, s)) {
            Ok(()) => v.owing_since = broadcaster.owes(id).then(Instant::now),
            Err(e) => broken.push((id, e.to_string())),
        }
    }
    for (id, why) in broken {
        drop_viewer(id, &why, broadcaster, viewers);
    }
}

fn drop_viewer(
    id: ViewerId,
    why: &str,
    broadcaster: &mut Broadcaster,
    viewers: &mut HashMap<ViewerId, Viewer>,
) {
    broadcaster.remove(id);
    if let Some(v) = viewers.remove(&id) {
        v.conn
            .close(quinn::VarInt::from_u32(CLOSE_REFUSED), why.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_engine::{apply_copies, CpuDiff, PixelFormat};

    /// Pseudo-random bytes.
    fn noise(seed: &mut u64, out: &mut [u8]) {
        for b in out {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *b = *seed as u8;
        }
    }

    #[test]
    fn changes_faster_than_frames_are_looked_for_at_frame_times() {
        let mut pacing = Pacing {
            paused: false,
            stopped: false,
            use_damage: true,
            interval: Some(Duration::from_millis(16)),
            reported: false,
            ahead: false,
            source_changes: Vec::new(),
        };
        let (changed, still) = (|| true, || false);
        let unread =
            || -> bool { panic!("the source is read only when it reported or at a frame time") };
        // Still: the source is watched; a wake for something else does not read it.
        assert!(!pacing.looks_at_frame_time());
        pacing.hear_source(false, false, false, unread);
        // A change after its frame time is grabbed at once, and the source watched after it.
        pacing.hear_source(false, true, true, changed);
        assert!(pacing.reported && !pacing.ahead);
        // Grabbed.
        pacing.reported = false;
        assert!(!pacing.looks_at_frame_time());
        // A change before its frame time: the grab waits for it, unwatched meanwhile.
        pacing.hear_source(false, true, false, changed);
        assert!(pacing.reported && pacing.ahead && pacing.looks_at_frame_time());
        // Woken before the frame time (an acknowledgement): the source is not read.
        pacing.hear_source(true, false, false, unread);
        assert!(pacing.reported);
        // At the frame time, what it sent meanwhile is read (the pointer's news).
        pacing.hear_source(true, false, true, still);
        assert!(pacing.reported && pacing.ahead);
        // Grabbed. Changes outran the frames: the next is looked for at the next frame time.
        pacing.reported = false;
        assert!(pacing.looks_at_frame_time());
        pacing.hear_source(true, false, false, unread);
        assert!(!pacing.reported);
        pacing.hear_source(true, false, true, changed);
        assert!(pacing.reported && pacing.ahead);
        // Grabbed. A frame time with no change: the source is watched again.
        pacing.reported = false;
        pacing.hear_source(true, false, true, still);
        assert!(!pacing.reported && !pacing.ahead && !pacing.looks_at_frame_time());
        // Without a frame rate (as fast as viewers take frames) it is always watched.
        pacing.interval = None;
        pacing.ahead = true;
        assert!(!pacing.looks_at_frame_time());
    }

    #[test]
    fn copies_are_made_from_a_spare_frame_kept_over_frames_without_one() {
        // Scrolls, two in a row, with frames between them that only scribble: each copy's
        // frame is the previous frame with the copy applied, made from the spare (a debug
        // assertion checks that the spare brought up to date equals the previous frame); after a
        // scroll the copy's frame becomes the previous one, which must then equal the frame.
        let (w, h) = (512u32, 512u32);
        let grid = TileGrid::new(w, h, 64).unwrap();
        let stride = w as usize * 4;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut last = FrameBuffer::new(w, h, PixelFormat::Bgrx8).unwrap();
        noise(&mut seed, last.pixels_mut());
        // A blank left margin: tiles of one colour, which the diff compares with their colour.
        for row in last.pixels_mut().chunks_exact_mut(stride) {
            row[..64 * 4].fill(0);
        }
        let mut sum = FrameChecksum::new(grid);
        sum.update_from_frame(&last.as_frame(), &DirtyMask::full(grid.tile_count()));
        let (mut previous, mut last_mask) = (None, None::<DirtyMask>);
        let (mut copies, mut detector) = (Copies::default(), CopyDetector::new());
        let diff = CpuDiff::single_threaded();
        let mut found = 0;
        for step in 0..16 {
            let mut advanced = None;
            if let Some(mask) = last_mask.take() {
                if copies.advance_previous(
                    &mut previous,
                    &last.as_frame(),
                    &grid,
                    &mask,
                    sum.hashes(),
                ) {
                    advanced = Some(mask);
                }
            }
            // Advanced in place (or from the copy's frame), never made anew but the first time.
            assert_eq!(advanced.is_some(), step >= 2, "step {step}: advanced");
            if let Some(p) = &previous {
                assert!(p.frame == last, "step {step}: the previous frame");
                let mut whole = FrameChecksum::new(grid);
                whole.update_from_frame(&last.as_frame(), &DirtyMask::full(grid.tile_count()));
                assert_eq!(p.hashes, whole.hashes(), "step {step}: its tile hashes");
            }
            copies.advance(advanced.as_ref());
            let solids = previous.as_ref().and_then(|p| p.solids.as_ref());
            if let Some(p) = &previous {
                let whole = SolidTiles::of(&p.frame.as_frame(), &grid).unwrap();
                assert_eq!(solids, Some(&whole), "step {step}: the one-colour tiles");
                assert!(whole.count() >= 3, "step {step}: {}", whole.count());
            }
            let mut next = last.clone();
            let px = next.pixels_mut();
            if step % 3 != 0 {
                // Rows 128.. scroll up by 16; new rows come in at the bottom.
                px.copy_within(144 * stride.., 128 * stride);
                noise(&mut seed, &mut px[(h as usize - 16) * stride..]);
            } else {
                // A few pixels change in one tile, a different one each time.
                let at = (step * 70 % 448 + 10) * stride + step * 90 % 1800;
                noise(&mut seed, &mut px[at..at + 40]);
            }
            let mask = diff
                .diff(&grid, &last.as_frame(), &next.as_frame(), None)
                .unwrap();
            let knowing =
                diff.diff_with_solids(&grid, &last.as_frame(), solids, &next.as_frame(), None);
            assert_eq!(knowing.unwrap(), mask, "step {step}: the diff knowing them");
            sum.update_from_frame(&next.as_frame(), &mask);
            copies.found = previous.as_ref().and_then(|p| {
                Copied::detect(
                    p,
                    &next.as_frame(),
                    &grid,
                    &mask,
                    sum.hashes(),
                    &mut copies.spare,
                    &mut detector,
                )
            });
            if let (Some(c), Some(p)) = (&copies.found, &previous) {
                let mut want = p.frame.clone();
                apply_copies(&mut want, &[c.copy]).unwrap();
                assert!(c.after.frame == want, "step {step}: the copy's frame");
                found += 1;
            }
            last = next;
            last_mask = Some(mask);
        }
        assert!(found >= 8, "scrolls found: {found}");
    }
}
