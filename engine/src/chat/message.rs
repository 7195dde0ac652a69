//! The chat stream's messages and their framing: a 2-byte big-endian length, then that many
//! bytes of JSON (at most [`MAX_CHAT_FRAME`]). Unknown types and fields are errors.

use super::Operation;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest message body on the chat stream, in bytes.
pub const MAX_CHAT_FRAME: usize = 4096;
/// Longest chat text, in bytes of UTF-8.
pub const MAX_CHAT_TEXT: usize = 1000;

/// One message on the chat stream, either way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ChatMessage {
    /// Chat text for the other person.
    Say { text: String },
    /// Please run `operation` (your consent first); `phrase` is what the person typed.
    Request {
        id: u32,
        operation: Operation,
        phrase: String,
    },
    /// What became of request `id`.
    Outcome { id: u32, outcome: Outcome },
}

/// How a request ended, as the side that was asked reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Outcome {
    /// Approved and run.
    Done { detail: String },
    /// The person there said no.
    Denied { reason: String },
    /// Refused before anyone was asked (not allowed there, malformed, rate limit).
    Refused { reason: String },
    /// Approved, but running it failed.
    Failed { reason: String },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (word, text) = match self {
            Self::Done { detail } => ("done", detail),
            Self::Denied { reason } => ("denied", reason),
            Self::Refused { reason } => ("refused", reason),
            Self::Failed { reason } => ("failed", reason),
        };
        write!(f, "{word}: {}", super::printable(text))
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChatError {
    #[error("chat message of {0} bytes exceeds {MAX_CHAT_FRAME}")]
    TooLong(usize),
    #[error("malformed chat message: {0}")]
    Malformed(String),
    #[error("chat text of {0} bytes exceeds {MAX_CHAT_TEXT}")]
    TextTooLong(usize),
}

impl ChatMessage {
    /// The framed message: length, then JSON.
    pub fn encode(&self) -> Result<Vec<u8>, ChatError> {
        let json = serde_json::to_vec(self).map_err(|e| ChatError::Malformed(e.to_string()))?;
        if json.len() > MAX_CHAT_FRAME {
            return Err(ChatError::TooLong(json.len()));
        }
        let mut out = Vec::with_capacity(2 + json.len());
        out.extend_from_slice(&(json.len() as u16).to_be_bytes());
        out.extend_from_slice(&json);
        Ok(out)
    }

    /// Checks a frame's declared length (the first two bytes) before its body is read.
    pub fn body_len(prefix: [u8; 2]) -> Result<usize, ChatError> {
        let len = usize::from(u16::from_be_bytes(prefix));
        if len > MAX_CHAT_FRAME {
            return Err(ChatError::TooLong(len));
        }
        if len == 0 {
            return Err(ChatError::Malformed("empty message".into()));
        }
        Ok(len)
    }

    /// Parses one message body (without its length prefix).
    pub fn decode(body: &[u8]) -> Result<Self, ChatError> {
        if body.len() > MAX_CHAT_FRAME {
            return Err(ChatError::TooLong(body.len()));
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ChatError::Malformed(e.to_string()))?;
        let msg: Self = super::strict_from_value(value).map_err(ChatError::Malformed)?;
        if let Self::Say { text } | Self::Request { phrase: text, .. } = &msg {
            if text.len() > MAX_CHAT_TEXT {
                return Err(ChatError::TextTooLong(text.len()));
            }
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: ChatMessage) {
        let bytes = msg.encode().unwrap();
        let len = ChatMessage::body_len([bytes[0], bytes[1]]).unwrap();
        assert_eq!(len, bytes.len() - 2);
        assert_eq!(ChatMessage::decode(&bytes[2..]).unwrap(), msg);
    }

    #[test]
    fn messages_round_trip() {
        round_trip(ChatMessage::Say {
            text: "héllo 👋".into(),
        });
        round_trip(ChatMessage::Request {
            id: 7,
            operation: Operation::OpenFile {
                path: "a/b.txt".into(),
            },
            phrase: "open the notes".into(),
        });
        round_trip(ChatMessage::Outcome {
            id: 7,
            outcome: Outcome::Denied {
                reason: "no".into(),
            },
        });
    }

    #[test]
    fn the_wire_form_is_documented_json() {
        let bytes = ChatMessage::Request {
            id: 1,
            operation: Operation::SetFps { fps: 30 },
            phrase: "slow down".into(),
        }
        .encode()
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes[2..]).unwrap(),
            r#"{"type":"request","id":1,"operation":{"action":"set-fps","fps":30},"phrase":"slow down"}"#
        );
    }

    #[test]
    fn hostile_messages_are_errors() {
        for body in [
            &b""[..],
            b"{",
            b"null",
            br#"{"type":"say"}"#,
            br#"{"type":"shell","cmd":"rm -rf /"}"#,
            br#"{"type":"say","text":"hi","extra":1}"#,
            br#"{"type":"request","id":1,"operation":{"action":"pause","path":"/"},"phrase":"x"}"#,
            br#"{"type":"request","id":1,"operation":{"action":"exec","argv":["sh"]},"phrase":"x"}"#,
            br#"{"type":"request","id":-1,"operation":{"action":"pause"},"phrase":"x"}"#,
            br#"{"type":"request","id":1,"operation":{"action":"launch","program":"a","argv":["-x"]},"phrase":"x"}"#,
            b"\xff\xfe",
        ] {
            assert!(ChatMessage::decode(body).is_err(), "{body:?}");
        }
        let long = format!(
            r#"{{"type":"say","text":"{}"}}"#,
            "a".repeat(MAX_CHAT_TEXT + 1)
        );
        assert_eq!(
            ChatMessage::decode(long.as_bytes()),
            Err(ChatError::TextTooLong(MAX_CHAT_TEXT + 1))
        );
        assert_eq!(
            ChatMessage::body_len([0xff, 0xff]),
            Err(ChatError::TooLong(65535))
        );
        assert!(ChatMessage::body_len([0, 0]).is_err());
        assert!(ChatMessage::Say {
            text: "a".repeat(MAX_CHAT_FRAME)
        }
        .encode()
        .is_err());
    }
}
