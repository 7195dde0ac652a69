//! The chat and command channel's I/O, for both binaries: its own bidirectional QUIC stream
//! a peer (opened by the viewer, beside the control stream, so pixels never block it), and a
//! hub task that drives one [`ChatSession`] a peer. The hub reads the lines the person types,
//! shows what they should see, appends every request and outcome to the audit log, and runs
//! approved operations: stream control through the caller's hook, the rest through
//! [`crate::actions`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tessera_engine::chat::{ChatMessage, ChatSession, Effect, Operation, Presets, Side, Ticket};
use tokio::sync::mpsc;

/// Opens every chat stream, so the acceptor knows what the stream is.
pub const CHAT_STREAM_MAGIC: [u8; 4] = *b"TSC1";
/// Messages queued for one peer before its chat is considered stuck (and messages dropped).
const OUTBOX: usize = 256;

/// A peer's chat, by a number the caller picks (the sender's viewer id; 1 in the receiver).
pub type PeerId = u64;

/// How a side runs its chat.
#[derive(Clone, Debug, Default)]
pub struct ChatSetup {
    pub presets: Arc<Presets>,
    /// Where requests and outcomes are appended; none: not recorded.
    pub audit_log: Option<PathBuf>,
}

/// The person's end of the chat: lines they type go in, lines for them come out.
pub struct ChatConsole {
    pub typed: mpsc::UnboundedSender<String>,
    pub shown: mpsc::UnboundedReceiver<String>,
}

/// Runs stream control on the sharing side (the receiver has none).
pub type StreamControl = Box<dyn Fn(&Operation) -> Result<String, String> + Send>;

pub(crate) enum HubEvent {
    Joined(PeerId, mpsc::Sender<ChatMessage>),
    Message(PeerId, ChatMessage),
    Closed(PeerId, Option<String>),
    Finished(PeerId, Ticket, Result<String, String>),
}

/// The hub's inbox, handed to each chat stream.
#[derive(Clone)]
pub struct ChatHub(mpsc::UnboundedSender<HubEvent>);

/// Starts the hub for `side`; returns its handle and the person's console.
pub fn spawn_hub(
    side: Side,
    setup: ChatSetup,
    stream_control: Option<StreamControl>,
) -> (ChatHub, ChatConsole) {
    let (events, mut inbox) = mpsc::unbounded_channel::<HubEvent>();
    let (typed, mut lines) = mpsc::unbounded_channel::<String>();
    let (show, shown) = mpsc::unbounded_channel::<String>();
    let hub = ChatHub(events.clone());
    tokio::spawn(async move {
        let mut state = Hub {
            side,
            presets: setup.presets.clone(),
            audit: setup.audit_log.as_ref().and_then(|p| open_audit(p, &show)),
            peers: BTreeMap::new(),
            show,
            events,
            stream_control,
            started: Instant::now(),
        };
        loop {
            tokio::select! {
                Some(line) = lines.recv() => state.typed(&line),
                Some(event) = inbox.recv() => state.event(event),
                else => break,
            }
        }
    });
    (hub, ChatConsole { typed, shown })
}

fn open_audit(
    path: &std::path::Path,
    show: &mpsc::UnboundedSender<String>,
) -> Option<std::fs::File> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        Ok(f) => Some(f),
        Err(e) => {
            let _ = show.send(format!(
                "(the audit log {} cannot be opened: {e}; requests are refused)",
                path.display()
            ));
            None
        }
    }
}

struct Peer {
    session: ChatSession,
    outbox: mpsc::Sender<ChatMessage>,
}

struct Hub {
    side: Side,
    presets: Arc<Presets>,
    audit: Option<std::fs::File>,
    peers: BTreeMap<PeerId, Peer>,
    show: mpsc::UnboundedSender<String>,
    events: mpsc::UnboundedSender<HubEvent>,
    stream_control: Option<StreamControl>,
    started: Instant,
}

impl Hub {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A typed line: the answer to the oldest waiting request if there is one; else chat or a
    /// request to every peer (shown and recorded once).
    fn typed(&mut self, line: &str) {
        if let Some((&id, _)) = self.peers.iter().find(|(_, p)| p.session.waiting() > 0) {
            let effects = self.peers.get_mut(&id).expect("found").session.typed(line);
            return self.apply(id, effects, true);
        }
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        if ids.is_empty() {
            let _ = self.show.send("(nobody to talk to yet)".into());
        }
        for (i, id) in ids.into_iter().enumerate() {
            let effects = self.peers.get_mut(&id).expect("listed").session.typed(line);
            self.apply(id, effects, i == 0);
        }
    }

    fn event(&mut self, event: HubEvent) {
        match event {
            HubEvent::Joined(id, outbox) => {
                let session = ChatSession::new(self.side, self.presets.clone());
                self.peers.insert(id, Peer { session, outbox });
                let _ = self.show.send(format!("(chat open with peer {id})"));
            }
            HubEvent::Message(id, msg) => {
                let now = self.now_ms();
                if let Some(p) = self.peers.get_mut(&id) {
                    let effects = p.session.received(msg, now);
                    self.apply(id, effects, true);
                }
            }
            HubEvent::Closed(id, why) => {
                self.peers.remove(&id);
                if let Some(why) = why {
                    let _ = self
                        .show
                        .send(format!("(chat with peer {id} closed: {why})"));
                }
            }
            HubEvent::Finished(id, ticket, result) => {
                if let Some(p) = self.peers.get_mut(&id) {
                    let effects = p.session.finished(ticket, result);
                    self.apply(id, effects, true);
                }
            }
        }
    }

    /// Carries out a session's effects. `primary`: show, record and run them (a line typed to
    /// several peers is shown, recorded and run once).
    fn apply(&mut self, id: PeerId, effects: Vec<Effect>, primary: bool) {
        for effect in effects {
            match effect {
                Effect::Send(msg) => {
                    if let Some(p) = self.peers.get(&id) {
                        if p.outbox.try_send(msg).is_err() {
                            let _ = self
                                .show
                                .send(format!("(chat to peer {id} is backed up: message dropped)"));
                        }
                    }
                }
                Effect::Show(line) | Effect::Ask(line) if primary => {
                    let _ = self.show.send(line);
                }
                Effect::Audit(line) if primary => self.audit(id, &line),
                Effect::Run { ticket, operation } if primary => self.run(id, ticket, operation),
                _ => {}
            }
        }
    }

    fn audit(&mut self, id: PeerId, line: &str) {
        let Some(file) = &mut self.audit else { return };
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if let Err(e) = writeln!(file, "{at:.3} peer {id}: {line}") {
            let _ = self.show.send(format!("(audit log write failed: {e})"));
        }
    }

    fn run(&mut self, id: PeerId, ticket: Ticket, op: Operation) {
        if self.audit.is_none() {
            // Nothing runs unrecorded.
            let _ = self.events.send(HubEvent::Finished(
                id,
                ticket,
                Err("this side has no audit log, so it runs nothing".into()),
            ));
            return;
        }
        if op.is_stream_control() {
            let result = match &self.stream_control {
                Some(control) => control(&op),
                None => Err("no stream to control here".into()),
            };
            let _ = self.events.send(HubEvent::Finished(id, ticket, result));
            return;
        }
        let allow = self.presets.allow.clone();
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            let result = crate::actions::run_here(&op, &allow);
            let _ = events.send(HubEvent::Finished(id, ticket, result));
        });
    }
}

impl ChatHub {
    /// Serves one peer's chat stream until it ends: reads framed messages into the hub and
    /// writes the session's messages out. `opened_here`: this side opened the stream (and
    /// writes its magic); otherwise the magic is expected first.
    pub async fn serve(
        &self,
        id: PeerId,
        (mut send, mut recv): (quinn::SendStream, quinn::RecvStream),
        opened_here: bool,
    ) {
        let (outbox, mut to_send) = mpsc::channel::<ChatMessage>(OUTBOX);
        let writer = tokio::spawn(async move {
            if opened_here && send.write_all(&CHAT_STREAM_MAGIC).await.is_err() {
                return;
            }
            while let Some(msg) = to_send.recv().await {
                let Ok(bytes) = msg.encode() else { continue };
                if send.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = send.finish();
        });
        if self.0.send(HubEvent::Joined(id, outbox)).is_err() {
            writer.abort();
            return;
        }
        let why = read_messages(id, &mut recv, opened_here, &self.0).await;
        let _ = self.0.send(HubEvent::Closed(id, why));
        writer.abort();
    }
}

/// Reads messages until the stream ends (`None`) or breaks the protocol (`Some(why)`).
async fn read_messages(
    id: PeerId,
    recv: &mut quinn::RecvStream,
    opened_here: bool,
    hub: &mpsc::UnboundedSender<HubEvent>,
) -> Option<String> {
    if !opened_here {
        let mut magic = [0u8; 4];
        if recv.read_exact(&mut magic).await.is_err() {
            return None;
        }
        if magic != CHAT_STREAM_MAGIC {
            return Some("the stream is not a chat stream".into());
        }
    }
    let mut body = Vec::new();
    loop {
        let mut prefix = [0u8; 2];
        if recv.read_exact(&mut prefix).await.is_err() {
            return None;
        }
        let len = match ChatMessage::body_len(prefix) {
            Ok(len) => len,
            Err(e) => return Some(e.to_string()),
        };
        body.resize(len, 0);
        if recv.read_exact(&mut body).await.is_err() {
            return Some("truncated chat message".into());
        }
        match ChatMessage::decode(&body) {
            Ok(msg) => {
                if hub.send(HubEvent::Message(id, msg)).is_err() {
                    return None;
                }
            }
            Err(e) => {
                let _ = recv.stop(quinn::VarInt::from_u32(1));
                return Some(e.to_string());
            }
        }
    }
}

/// Reads lines from standard input into `typed` on a thread of its own, until end of input.
pub fn type_from_stdin(typed: mpsc::UnboundedSender<String>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if typed.send(line).is_err() {
                break;
            }
        }
    });
}

/// Prints what the chat shows on stderr (clearing a live status line first on a terminal), and
/// keeps the latest line in `last` (a window's title shows it).
pub fn print_shown(
    mut shown: mpsc::UnboundedReceiver<String>,
    who: &'static str,
    last: Option<Arc<std::sync::Mutex<Option<String>>>>,
) {
    tokio::spawn(async move {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        while let Some(line) = shown.recv().await {
            if let Some(last) = &last {
                *last.lock().expect("chat lock") = Some(line.clone());
            }
            if tty {
                eprintln!("\r\x1b[2K[{who} chat] {line}");
            } else {
                eprintln!("[{who} chat] {line}");
            }
        }
    });
}

/// The default audit log: `$XDG_STATE_HOME/tessera/audit.log`, else
/// `~/.local/state/tessera/audit.log`.
pub fn default_audit_log() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("tessera/audit.log"))
}

/// Reads a presets file, or the defaults without one.
pub fn load_presets(path: Option<&std::path::Path>) -> Result<Presets, String> {
    match path {
        None => Ok(Presets::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Presets::parse(&text).map_err(|e| format!("{}: {e}", p.display()))
        }
    }
}
