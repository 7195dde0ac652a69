//! Control messages, sent on the connection's one bidirectional stream, each framed as a
//! `u32` little-endian length then a type byte and the body.
//!
//! | type | message | body |
//! |---|---|---|
//! | 1 | Hello (dialer to listener) | version u16, role u8, secret [32], capabilities (26 bytes) |
//! | 2 | Welcome (listener's answer) | as Hello, secret all zero |
//! | 3 | Refuse | reason u8, detail length u16, detail UTF-8 (<= 1024 bytes) |
//! | 4 | Ack (viewer: update applied) | sequence u64 |
//! | 5 | RequestKeyframe (viewer) | empty |
//!
//! Capabilities: min tile size u16, max tile size u16, pixel formats u8 (bit = wire code),
//! codecs u8 (bit = wire code), max width u32, max height u32, max pixels u64, tile cache bytes
//! u32 (0: no tile cache; a viewer's cache of this budget, which the sender mirrors).

use super::join::{secrets_match, SECRET_LEN};
use crate::{DecodeLimits, PixelFormat, MAX_TILE_SIZE, MIN_TILE_SIZE};
use thiserror::Error;

pub const PROTOCOL_VERSION: u16 = 6;
/// Largest control message body accepted.
pub const MAX_CONTROL_MESSAGE: usize = 4096;
const MAX_DETAIL: usize = 1024;

/// Which end of the picture a peer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Sender,
    Viewer,
}

/// What a peer can take or produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub min_tile_size: u16,
    pub max_tile_size: u16,
    pub formats: u8,
    pub codecs: u8,
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
    /// The viewer's tile cache budget in bytes (`crate::TileCache`), 0 for none; a sender
    /// announces 0.
    pub tile_cache_bytes: u32,
}

impl Capabilities {
    /// Everything this build supports, within `limits`.
    pub fn with_limits(limits: &DecodeLimits) -> Self {
        Self {
            min_tile_size: MIN_TILE_SIZE as u16,
            max_tile_size: MAX_TILE_SIZE as u16,
            formats: PixelFormat::ALL
                .iter()
                .fold(0, |m, f| m | 1 << f.wire_code()),
            codecs: crate::TileCodec::ALL
                .iter()
                .fold(crate::COPIES_CAPABILITY, |m, c| m | c.bit()),
            max_width: limits.max_width,
            max_height: limits.max_height,
            max_pixels: limits.max_pixels,
            tile_cache_bytes: 0,
        }
    }

    /// The same capabilities with a tile cache of `bytes` (capped at
    /// [`crate::MAX_TILE_CACHE_BYTES`]).
    pub fn with_tile_cache(self, bytes: u32) -> Self {
        Self {
            tile_cache_bytes: bytes.min(crate::MAX_TILE_CACHE_BYTES),
            ..self
        }
    }

    pub fn limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_width: self.max_width,
            max_height: self.max_height,
            max_pixels: self.max_pixels,
        }
    }

    /// Why a stream of these frames cannot go to a peer with these capabilities, if it cannot.
    pub fn refuses(
        &self,
        width: u32,
        height: u32,
        tile_size: u32,
        format: PixelFormat,
    ) -> Option<String> {
        if !(u32::from(self.min_tile_size)..=u32::from(self.max_tile_size)).contains(&tile_size) {
            return Some(format!(
                "tile size {tile_size} outside the viewer's {}..={}",
                self.min_tile_size, self.max_tile_size
            ));
        }
        if self.formats & (1 << format.wire_code()) == 0 {
            return Some(format!("viewer does not take {format:?}"));
        }
        if self.codecs & 0b11 != 0b11 {
            return Some("viewer lacks the raw or lz4 codec".into());
        }
        if width > self.max_width
            || height > self.max_height
            || u64::from(width) * u64::from(height) > self.max_pixels
        {
            return Some(format!("frame {width}x{height} beyond the viewer's limits"));
        }
        None
    }
}

/// The first message each way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub version: u16,
    pub role: Role,
    /// The join link's secret (dialer); zero from the listener.
    pub secret: [u8; SECRET_LEN],
    pub capabilities: Capabilities,
}

impl std::fmt::Debug for Hello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hello")
            .field("version", &self.version)
            .field("role", &self.role)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// Why a listener refused a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    Version,
    Secret,
    Role,
    Capabilities,
    Protocol,
}

impl RefuseReason {
    fn code(self) -> u8 {
        match self {
            Self::Version => 1,
            Self::Secret => 2,
            Self::Role => 3,
            Self::Capabilities => 4,
            Self::Protocol => 5,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        [
            Self::Version,
            Self::Secret,
            Self::Role,
            Self::Capabilities,
            Self::Protocol,
        ]
        .into_iter()
        .find(|r| r.code() == c)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlMessage {
    Hello(Hello),
    Welcome(Hello),
    Refuse {
        reason: RefuseReason,
        detail: String,
    },
    Ack {
        sequence: u64,
    },
    RequestKeyframe,
}

/// A malformed control stream.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ControlError {
    #[error("control message of {0} bytes exceeds {MAX_CONTROL_MESSAGE}")]
    TooLong(usize),
    #[error("empty control message")]
    Empty,
    #[error("unknown control message type {0}")]
    UnknownType(u8),
    #[error("control message type {kind} has {len} bytes, want {want}")]
    Length { kind: u8, len: usize, want: usize },
    #[error("bad field in control message: {0}")]
    Field(&'static str),
}

const HELLO_LEN: usize = 2 + 1 + SECRET_LEN + 26;

impl ControlMessage {
    /// Appends this message, framed, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(64);
        match self {
            Self::Hello(h) | Self::Welcome(h) => {
                body.push(if matches!(self, Self::Hello(_)) { 1 } else { 2 });
                body.extend_from_slice(&h.version.to_le_bytes());
                body.push(match h.role {
                    Role::Sender => 0,
                    Role::Viewer => 1,
                });
                body.extend_from_slice(&h.secret);
                let c = &h.capabilities;
                body.extend_from_slice(&c.min_tile_size.to_le_bytes());
                body.extend_from_slice(&c.max_tile_size.to_le_bytes());
                body.push(c.formats);
                body.push(c.codecs);
                body.extend_from_slice(&c.max_width.to_le_bytes());
                body.extend_from_slice(&c.max_height.to_le_bytes());
                body.extend_from_slice(&c.max_pixels.to_le_bytes());
                body.extend_from_slice(&c.tile_cache_bytes.to_le_bytes());
            }
            Self::Refuse { reason, detail } => {
                body.push(3);
                body.push(reason.code());
                let mut end = detail.len().min(MAX_DETAIL);
                while !detail.is_char_boundary(end) {
                    end -= 1;
                }
                body.extend_from_slice(&(end as u16).to_le_bytes());
                body.extend_from_slice(&detail.as_bytes()[..end]);
            }
            Self::Ack { sequence } => {
                body.push(4);
                body.extend_from_slice(&sequence.to_le_bytes());
            }
            Self::RequestKeyframe => body.push(5),
        }
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
    }

    fn decode(body: &[u8]) -> Result<Self, ControlError> {
        let (&kind, rest) = body.split_first().ok_or(ControlError::Empty)?;
        let want = |want: usize| {
            if rest.len() == want {
                Ok(())
            } else {
                Err(ControlError::Length {
                    kind,
                    len: rest.len(),
                    want,
                })
            }
        };
        let u16_at = |i: usize| u16::from_le_bytes([rest[i], rest[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
        match kind {
            1 | 2 => {
                want(HELLO_LEN)?;
                let role = match rest[2] {
                    0 => Role::Sender,
                    1 => Role::Viewer,
                    _ => return Err(ControlError::Field("role")),
                };
                let mut secret = [0; SECRET_LEN];
                secret.copy_from_slice(&rest[3..3 + SECRET_LEN]);
                let c = 3 + SECRET_LEN;
                let hello = Hello {
                    version: u16_at(0),
                    role,
                    secret,
                    capabilities: Capabilities {
                        min_tile_size: u16_at(c),
                        max_tile_size: u16_at(c + 2),
                        formats: rest[c + 4],
                        codecs: rest[c + 5],
                        max_width: u32_at(c + 6),
                        max_height: u32_at(c + 10),
                        max_pixels: u64::from_le_bytes(
                            rest[c + 14..c + 22].try_into().expect("8 bytes"),
                        ),
                        tile_cache_bytes: u32_at(c + 22),
                    },
                };
                Ok(if kind == 1 {
                    Self::Hello(hello)
                } else {
                    Self::Welcome(hello)
                })
            }
            3 => {
                if rest.len() < 3 {
                    return Err(ControlError::Length {
                        kind,
                        len: rest.len(),
                        want: 3,
                    });
                }
                let reason =
                    RefuseReason::from_code(rest[0]).ok_or(ControlError::Field("refuse reason"))?;
                let len = usize::from(u16_at(1));
                want(3 + len)?;
                if len > MAX_DETAIL {
                    return Err(ControlError::Field("refuse detail length"));
                }
                let detail = std::str::from_utf8(&rest[3..])
                    .map_err(|_| ControlError::Field("refuse detail UTF-8"))?;
                Ok(Self::Refuse {
                    reason,
                    detail: detail.to_string(),
                })
            }
            4 => {
                want(8)?;
                Ok(Self::Ack {
                    sequence: u64::from_le_bytes(rest.try_into().expect("8 bytes")),
                })
            }
            5 => {
                want(0)?;
                Ok(Self::RequestKeyframe)
            }
            other => Err(ControlError::UnknownType(other)),
        }
    }
}

/// Splits a control stream's bytes into messages. Holds at most one message's bytes.
#[derive(Debug, Default)]
pub struct ControlDecoder {
    buf: Vec<u8>,
}

impl ControlDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, if one is buffered. An error poisons the stream: close it.
    pub fn next_message(&mut self) -> Result<Option<ControlMessage>, ControlError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
        if len > MAX_CONTROL_MESSAGE {
            return Err(ControlError::TooLong(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let msg = ControlMessage::decode(&self.buf[4..4 + len]);
        self.buf.drain(..4 + len);
        msg.map(Some)
    }
}

/// Checks a dialer's Hello at the listener: version, secret, and that the roles complement.
pub fn check_hello(
    hello: &Hello,
    secret: &[u8; SECRET_LEN],
    listener: Role,
) -> Result<(), (RefuseReason, String)> {
    if hello.version != PROTOCOL_VERSION {
        return Err((
            RefuseReason::Version,
            format!(
                "protocol version {} is not this peer's {PROTOCOL_VERSION}",
                hello.version
            ),
        ));
    }
    if !secrets_match(&hello.secret, secret) {
        return Err((
            RefuseReason::Secret,
            "wrong secret: use the join link this peer printed".into(),
        ));
    }
    if hello.role == listener {
        return Err((RefuseReason::Role, format!("both peers are {listener:?}s")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            role: Role::Viewer,
            secret: [3; 32],
            capabilities: Capabilities::with_limits(&DecodeLimits::default()),
        }
    }

    #[test]
    fn messages_round_trip_through_a_byte_at_a_time() {
        let msgs = vec![
            ControlMessage::Hello(hello()),
            ControlMessage::Welcome(hello()),
            ControlMessage::Refuse {
                reason: RefuseReason::Secret,
                detail: "nope é".into(),
            },
            ControlMessage::Ack { sequence: u64::MAX },
            ControlMessage::RequestKeyframe,
        ];
        let mut bytes = Vec::new();
        for m in &msgs {
            m.encode(&mut bytes);
        }
        let mut dec = ControlDecoder::new();
        let mut got = Vec::new();
        for b in bytes {
            dec.push(&[b]);
            while let Some(m) = dec.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, msgs);
    }

    #[test]
    fn malformed_messages_are_errors() {
        let framed = |body: &[u8]| {
            let mut v = (body.len() as u32).to_le_bytes().to_vec();
            v.extend_from_slice(body);
            v
        };
        let cases: Vec<(Vec<u8>, ControlError)> = vec![
            (
                u32::MAX.to_le_bytes().to_vec(),
                ControlError::TooLong(u32::MAX as usize),
            ),
            (framed(&[]), ControlError::Empty),
            (framed(&[99]), ControlError::UnknownType(99)),
            (
                framed(&[4, 1, 2]),
                ControlError::Length {
                    kind: 4,
                    len: 2,
                    want: 8,
                },
            ),
            (
                framed(&[5, 0]),
                ControlError::Length {
                    kind: 5,
                    len: 1,
                    want: 0,
                },
            ),
            (framed(&[3, 9, 0, 0]), ControlError::Field("refuse reason")),
            (
                framed(&[3, 1, 2, 0, 0xFF, 0xFE]),
                ControlError::Field("refuse detail UTF-8"),
            ),
            (
                framed(&[3, 1, 5, 0, b'a']),
                ControlError::Length {
                    kind: 3,
                    len: 4,
                    want: 8,
                },
            ),
        ];
        for (bytes, want) in cases {
            let mut dec = ControlDecoder::new();
            dec.push(&bytes);
            assert_eq!(dec.next_message().unwrap_err(), want);
        }
        let mut bad_role = Vec::new();
        ControlMessage::Hello(hello()).encode(&mut bad_role);
        bad_role[4 + 3] = 7;
        let mut dec = ControlDecoder::new();
        dec.push(&bad_role);
        assert_eq!(dec.next_message().unwrap_err(), ControlError::Field("role"));
    }

    #[test]
    fn hello_checks() {
        let h = hello();
        assert!(check_hello(&h, &[3; 32], Role::Sender).is_ok());
        assert_eq!(
            check_hello(&h, &[4; 32], Role::Sender).unwrap_err().0,
            RefuseReason::Secret
        );
        assert_eq!(
            check_hello(&h, &[3; 32], Role::Viewer).unwrap_err().0,
            RefuseReason::Role
        );
        let old = Hello { version: 0, ..h };
        assert_eq!(
            check_hello(&old, &[3; 32], Role::Sender).unwrap_err().0,
            RefuseReason::Version
        );
        let caps = h.capabilities;
        assert!(caps.refuses(1920, 1080, 64, PixelFormat::Bgra8).is_none());
        assert!(caps.refuses(1920, 1080, 8, PixelFormat::Bgra8).is_some());
        assert!(caps
            .refuses(100_000, 100_000, 64, PixelFormat::Bgra8)
            .is_some());
        let no_bgra = Capabilities {
            formats: 0b10,
            ..caps
        };
        assert!(no_bgra.refuses(64, 64, 64, PixelFormat::Bgra8).is_some());
    }
}
