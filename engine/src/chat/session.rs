//! [`ChatSession`]: one side of the chat and command channel as a state machine. It is handed
//! typed lines, messages from the other side, the results of operations and the time (in ms);
//! it answers with [`Effect`]s for the I/O around it to carry out. Nothing runs here without
//! this side's consent: a request from the other side is refused when this side does not allow
//! it, runs unattended only when it is stream control listed as such, and otherwise waits for
//! the person here to type yes or no.

use super::{normalise, printable, ChatMessage, Operation, Outcome, Presets, MAX_CHAT_TEXT};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Which end of the stream this side is. Stream control runs on the sharing side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Sharing,
    Viewing,
}

/// Who asked for an operation: the person here (typed it) or the other side (by request `id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ticket {
    Local(u32),
    Peer(u32),
}

/// What the I/O around a session must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send this to the other side.
    Send(ChatMessage),
    /// Show this line to the person here.
    Show(String),
    /// Ask the person here (show it; their next yes/no answers it).
    Ask(String),
    /// Run this operation here, then report with [`ChatSession::finished`].
    Run {
        ticket: Ticket,
        operation: Operation,
    },
    /// Append this line to the audit log.
    Audit(String),
}

/// Requests from the other side that may wait for an answer at once.
pub const MAX_WAITING: usize = 8;
/// This side's requests that may wait for the other side's outcome at once.
pub const MAX_ASKED: usize = 32;
/// Chat messages from the other side shown a second; the rest are counted and dropped.
pub const CHAT_PER_SECOND: usize = 20;

pub struct ChatSession {
    side: Side,
    presets: Arc<Presets>,
    next_id: u32,
    /// The other side's requests waiting for consent here, oldest first.
    waiting: VecDeque<(u32, Operation, String)>,
    /// This side's requests waiting for the other side's outcome.
    asked: HashMap<u32, Operation>,
    running: HashMap<Ticket, Operation>,
    request_times: VecDeque<u64>,
    chat_times: VecDeque<u64>,
    chat_dropped: u64,
}

impl ChatSession {
    pub fn new(side: Side, presets: Arc<Presets>) -> Self {
        Self {
            side,
            presets,
            next_id: 0,
            waiting: VecDeque::new(),
            asked: HashMap::new(),
            running: HashMap::new(),
            request_times: VecDeque::new(),
            chat_times: VecDeque::new(),
            chat_dropped: 0,
        }
    }

    /// Requests from the other side waiting for a yes or no here.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// A line the person here typed: an answer to a waiting request, a preset phrase (a
    /// request), or chat.
    pub fn typed(&mut self, line: &str) -> Vec<Effect> {
        let said = normalise(line);
        if said.is_empty() {
            return Vec::new();
        }
        if !self.waiting.is_empty() {
            if said == "y" || said == "yes" || said == normalise(&self.presets.consent.confirm) {
                return self.approve();
            }
            if said == "n" || said == "no" {
                return self.deny();
            }
        }
        if let Some(op) = self.presets.request_for(line).cloned() {
            return self.request(op, line);
        }
        if line.len() > MAX_CHAT_TEXT {
            return vec![Effect::Show(format!(
                "(not sent: chat lines are at most {MAX_CHAT_TEXT} bytes)"
            ))];
        }
        vec![
            Effect::Send(ChatMessage::Say { text: line.into() }),
            Effect::Show(format!("you: {}", printable(line))),
        ]
    }

    fn request(&mut self, op: Operation, phrase: &str) -> Vec<Effect> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        if op.is_stream_control() && self.side == Side::Sharing {
            if let Err(reason) = op.check(&self.presets.allow) {
                return vec![Effect::Show(format!("not run: {op}: {reason}"))];
            }
            // Typed here, runs here: the person here has consented by typing it.
            self.running.insert(Ticket::Local(id), op.clone());
            return vec![
                Effect::Audit(format!("you asked {op} here: runs")),
                Effect::Run {
                    ticket: Ticket::Local(id),
                    operation: op,
                },
            ];
        }
        if self.asked.len() >= MAX_ASKED {
            return vec![Effect::Show(format!(
                "(not sent: {MAX_ASKED} requests already wait for an answer)"
            ))];
        }
        self.asked.insert(id, op.clone());
        vec![
            Effect::Send(ChatMessage::Request {
                id,
                operation: op.clone(),
                phrase: phrase.into(),
            }),
            Effect::Show(format!("you asked the other side to {op}")),
            Effect::Audit(format!("request #{id} to the other side: {op}")),
        ]
    }

    fn approve(&mut self) -> Vec<Effect> {
        let Some((id, op, _)) = self.waiting.pop_front() else {
            return Vec::new();
        };
        self.running.insert(Ticket::Peer(id), op.clone());
        vec![
            Effect::Audit(format!(
                "request #{id} from the other side: {op}: approved by you"
            )),
            Effect::Run {
                ticket: Ticket::Peer(id),
                operation: op,
            },
        ]
    }

    fn deny(&mut self) -> Vec<Effect> {
        let Some((id, op, _)) = self.waiting.pop_front() else {
            return Vec::new();
        };
        let outcome = Outcome::Denied {
            reason: "the person there said no".into(),
        };
        vec![
            Effect::Send(ChatMessage::Outcome { id, outcome }),
            Effect::Show(format!("you refused {op}")),
            Effect::Audit(format!(
                "request #{id} from the other side: {op}: denied by you"
            )),
        ]
    }

    /// A message from the other side; `now_ms` is this side's clock, for the rate limits.
    pub fn received(&mut self, msg: ChatMessage, now_ms: u64) -> Vec<Effect> {
        match msg {
            ChatMessage::Say { text } => self.chat(&text, now_ms),
            ChatMessage::Request {
                id,
                operation,
                phrase,
            } => self.requested(id, operation, &phrase, now_ms),
            ChatMessage::Outcome { id, outcome } => match self.asked.remove(&id) {
                Some(op) => vec![
                    Effect::Show(format!("other side: {op}: {outcome}")),
                    Effect::Audit(format!("request #{id} to the other side: {op}: {outcome}")),
                ],
                None => vec![Effect::Audit(format!(
                    "outcome for unknown request #{id} ignored: {outcome}"
                ))],
            },
        }
    }

    fn chat(&mut self, text: &str, now_ms: u64) -> Vec<Effect> {
        if !within_rate(&mut self.chat_times, now_ms, 1000, CHAT_PER_SECOND) {
            self.chat_dropped += 1;
            return Vec::new();
        }
        let mut effects = Vec::new();
        if self.chat_dropped > 0 {
            effects.push(Effect::Show(format!(
                "({} chat messages from the other side dropped: more than {CHAT_PER_SECOND} a second)",
                std::mem::take(&mut self.chat_dropped)
            )));
        }
        effects.push(Effect::Show(format!("other side: {}", printable(text))));
        effects
    }

    fn requested(&mut self, id: u32, op: Operation, phrase: &str, now_ms: u64) -> Vec<Effect> {
        let refuse = |reason: String| {
            vec![
                Effect::Show(format!("refused a request to {op}: {reason}")),
                Effect::Audit(format!(
                    "request #{id} from the other side: {op}: refused: {reason}"
                )),
                Effect::Send(ChatMessage::Outcome {
                    id,
                    outcome: Outcome::Refused { reason },
                }),
            ]
        };
        let per_minute = self.presets.consent.requests_per_minute as usize;
        if !within_rate(&mut self.request_times, now_ms, 60_000, per_minute) {
            return refuse(format!("rate limit: {per_minute} requests a minute"));
        }
        if op.is_stream_control() && self.side == Side::Viewing {
            return refuse("stream control runs on the sharing side".into());
        }
        if let Err(reason) = op.check(&self.presets.allow) {
            return refuse(reason);
        }
        if self.waiting.iter().any(|(w, _, _)| *w == id)
            || self.running.contains_key(&Ticket::Peer(id))
        {
            return refuse(format!("request #{id} is already pending"));
        }
        if self.waiting.len() >= MAX_WAITING {
            return refuse(format!("{MAX_WAITING} requests already wait for an answer"));
        }
        if self
            .presets
            .consent
            .unattended
            .iter()
            .any(|n| n == op.name())
        {
            self.running.insert(Ticket::Peer(id), op.clone());
            return vec![
                Effect::Show(format!("the other side asked to {op}: approved unattended")),
                Effect::Audit(format!(
                    "request #{id} from the other side: {op}: approved unattended"
                )),
                Effect::Run {
                    ticket: Ticket::Peer(id),
                    operation: op,
                },
            ];
        }
        let question = format!(
            "the other side asks to {op} (they typed {:?}): type {} to allow, no to refuse",
            printable(phrase),
            self.presets.consent.confirm
        );
        self.waiting.push_back((id, op.clone(), phrase.into()));
        vec![
            Effect::Ask(question),
            Effect::Audit(format!(
                "request #{id} from the other side: {op}: asked you"
            )),
        ]
    }

    /// An operation from [`Effect::Run`] finished: `Ok(detail)` or `Err(reason)`.
    pub fn finished(&mut self, ticket: Ticket, result: Result<String, String>) -> Vec<Effect> {
        let Some(op) = self.running.remove(&ticket) else {
            return Vec::new();
        };
        let outcome = match result {
            Ok(detail) => Outcome::Done { detail },
            Err(reason) => Outcome::Failed { reason },
        };
        let mut effects = vec![
            Effect::Show(format!("{op}: {outcome}")),
            Effect::Audit(match ticket {
                Ticket::Peer(id) => format!("request #{id} from the other side: {op}: {outcome}"),
                Ticket::Local(_) => format!("you asked {op} here: {outcome}"),
            }),
        ];
        if let Ticket::Peer(id) = ticket {
            effects.push(Effect::Send(ChatMessage::Outcome { id, outcome }));
        }
        effects
    }
}

/// Records an event at `now_ms` if fewer than `limit` happened in the last `window_ms`.
fn within_rate(times: &mut VecDeque<u64>, now_ms: u64, window_ms: u64, limit: usize) -> bool {
    while times
        .front()
        .is_some_and(|&t| now_ms.saturating_sub(t) >= window_ms)
    {
        times.pop_front();
    }
    if times.len() >= limit {
        return false;
    }
    times.push_back(now_ms);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presets(text: &str) -> Arc<Presets> {
        Arc::new(Presets::parse(text).unwrap())
    }

    const SHARER: &str = r#"
[[preset]]
phrase = "pause"
action = "pause"
[[preset]]
phrase = "show notes"
action = "open-file"
path = "notes.txt"
[consent]
unattended = ["resume"]
"#;

    const VIEWER: &str = r#"
[[preset]]
phrase = "pause please"
action = "pause"
[[preset]]
phrase = "resume please"
action = "resume"
[allow]
folders = ["/srv/shared"]
"#;

    fn sent(effects: &[Effect]) -> Vec<ChatMessage> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    fn runs(effects: &[Effect]) -> Vec<(Ticket, Operation)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Run { ticket, operation } => Some((*ticket, operation.clone())),
                _ => None,
            })
            .collect()
    }

    /// Delivers every message `from` sent to `to`.
    fn deliver(effects: &[Effect], to: &mut ChatSession, now: u64) -> Vec<Effect> {
        sent(effects)
            .into_iter()
            .flat_map(|m| to.received(m, now))
            .collect()
    }

    #[test]
    fn chat_goes_both_ways_and_is_made_printable() {
        let mut a = ChatSession::new(Side::Sharing, Arc::new(Presets::default()));
        let mut b = ChatSession::new(Side::Viewing, Arc::new(Presets::default()));
        let out = a.typed("hello \x1b[31mthere");
        let shown = deliver(&out, &mut b, 0);
        assert_eq!(
            shown,
            vec![Effect::Show("other side: hello \u{fffd}[31mthere".into())]
        );
        let back = deliver(&b.typed("hi"), &mut a, 0);
        assert_eq!(back, vec![Effect::Show("other side: hi".into())]);
    }

    #[test]
    fn a_viewers_pause_runs_on_the_sharer_only_after_yes() {
        let mut sharer = ChatSession::new(Side::Sharing, presets(SHARER));
        let mut viewer = ChatSession::new(Side::Viewing, presets(VIEWER));
        let asked = deliver(&viewer.typed("Pause  please"), &mut sharer, 0);
        assert!(matches!(&asked[0], Effect::Ask(q) if q.contains("pause")));
        assert!(runs(&asked).is_empty(), "nothing runs before consent");
        assert_eq!(sharer.waiting(), 1);
        let approved = sharer.typed("yes");
        assert_eq!(runs(&approved), vec![(Ticket::Peer(1), Operation::Pause)]);
        let done = sharer.finished(Ticket::Peer(1), Ok("paused".into()));
        let echoed = deliver(&done, &mut viewer, 0);
        assert!(matches!(&echoed[0], Effect::Show(s) if s.contains("pause: done: paused")));
        // Resume is unattended on the sharer: it runs without a question.
        let resumed = deliver(&viewer.typed("resume please"), &mut sharer, 0);
        assert_eq!(runs(&resumed), vec![(Ticket::Peer(2), Operation::Resume)]);
    }

    #[test]
    fn stream_control_typed_by_the_sharer_runs_there_without_asking() {
        let mut sharer = ChatSession::new(Side::Sharing, presets(SHARER));
        let out = sharer.typed("pause");
        assert_eq!(runs(&out), vec![(Ticket::Local(1), Operation::Pause)]);
        assert!(sent(&out).is_empty());
        // Checked like anyone's request, even typed here.
        let mut odd = ChatSession::new(
            Side::Sharing,
            presets("[[preset]]\nphrase = \"x\"\naction = \"set-setting\"\nname = \"shell\"\nvalue = \"on\""),
        );
        let out = odd.typed("x");
        assert!(runs(&out).is_empty());
        assert!(matches!(&out[..], [Effect::Show(s)] if s.contains("unknown setting")));
    }

    #[test]
    fn a_denied_open_file_runs_nothing_and_tells_the_requester() {
        let mut sharer = ChatSession::new(Side::Sharing, presets(SHARER));
        let mut viewer = ChatSession::new(Side::Viewing, presets(VIEWER));
        let asked = deliver(&sharer.typed("show notes"), &mut viewer, 0);
        assert!(matches!(&asked[0], Effect::Ask(_)));
        let denied = viewer.typed("no");
        assert!(runs(&denied).is_empty());
        let echoed = deliver(&denied, &mut sharer, 0);
        assert!(matches!(&echoed[0], Effect::Show(s) if s.contains("denied")));
        assert_eq!(viewer.waiting(), 0);
    }

    #[test]
    fn requests_this_side_does_not_allow_are_refused_without_asking() {
        let mut viewer = ChatSession::new(Side::Viewing, presets(VIEWER));
        let mut sharer = ChatSession::new(Side::Sharing, presets(SHARER));
        for (id, op) in [
            (
                1,
                Operation::OpenFile {
                    path: "../../etc/passwd".into(),
                },
            ),
            (
                2,
                Operation::Launch {
                    program: "sh".into(),
                },
            ),
            (3, Operation::Pause), // stream control asked of a viewer
        ] {
            let out = viewer.received(
                ChatMessage::Request {
                    id,
                    operation: op,
                    phrase: "x".into(),
                },
                0,
            );
            assert!(runs(&out).is_empty());
            assert!(!out.iter().any(|e| matches!(e, Effect::Ask(_))));
            assert!(matches!(
                &sent(&out)[0],
                ChatMessage::Outcome {
                    outcome: Outcome::Refused { .. },
                    ..
                }
            ));
        }
        // The sharer allows no files at all.
        let out = sharer.received(
            ChatMessage::Request {
                id: 9,
                operation: Operation::OpenFile {
                    path: "notes.txt".into(),
                },
                phrase: "x".into(),
            },
            0,
        );
        assert!(runs(&out).is_empty());
    }

    #[test]
    fn requests_are_rate_limited_and_bounded() {
        let mut sharer = ChatSession::new(Side::Sharing, Arc::new(Presets::default()));
        let ask = |id| ChatMessage::Request {
            id,
            operation: Operation::FullRefresh,
            phrase: "refresh".into(),
        };
        for id in 0..MAX_WAITING as u32 {
            assert!(matches!(&sharer.received(ask(id), 0)[0], Effect::Ask(_)));
        }
        let out = sharer.received(ask(100), 0);
        assert!(
            matches!(&sent(&out)[0], ChatMessage::Outcome { outcome: Outcome::Refused { reason }, .. } if reason.contains("wait"))
        );
        let out = sharer.received(ask(0), 0);
        assert!(
            matches!(&sent(&out)[0], ChatMessage::Outcome { outcome: Outcome::Refused { reason }, .. } if reason.contains("pending") || reason.contains("wait"))
        );
        // 20 a minute by default: the 21st within the minute is refused, later ones pass.
        let mut other = ChatSession::new(Side::Sharing, Arc::new(Presets::default()));
        let mut refused = 0;
        for id in 0..25u32 {
            let out = other.received(ask(1000 + id), 100);
            refused += usize::from(sent(&out).iter().any(|m| matches!(m, ChatMessage::Outcome { outcome: Outcome::Refused { reason }, .. } if reason.contains("rate"))));
            other.typed("no");
        }
        assert_eq!(refused, 5);
        assert!(sent(&other.received(ask(5000), 61_000)).is_empty());
    }

    #[test]
    fn a_chat_flood_is_shown_at_a_bounded_rate() {
        let mut b = ChatSession::new(Side::Viewing, Arc::new(Presets::default()));
        let mut shown = 0;
        for i in 0..1000u64 {
            shown += b
                .received(
                    ChatMessage::Say {
                        text: "spam".into(),
                    },
                    i / 100,
                )
                .len();
        }
        assert_eq!(shown, CHAT_PER_SECOND);
        let after = b.received(ChatMessage::Say { text: "hi".into() }, 5000);
        assert!(matches!(&after[0], Effect::Show(s) if s.contains("980 chat messages")));
    }

    #[test]
    fn an_outcome_for_nothing_asked_changes_nothing() {
        let mut a = ChatSession::new(Side::Viewing, Arc::new(Presets::default()));
        let out = a.received(
            ChatMessage::Outcome {
                id: 42,
                outcome: Outcome::Done {
                    detail: "ok".into(),
                },
            },
            0,
        );
        assert!(matches!(&out[..], [Effect::Audit(_)]));
    }
}
