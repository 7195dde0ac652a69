//! The streaming protocol, without I/O: join links, the control messages and their framing, the
//! header of each frame message, the whole-frame checksum, per-viewer latest-wins bookkeeping,
//! and the TLS settings that pin a peer's certificate. `tessera-sender` and `tessera-receiver`
//! move these bytes over QUIC; docs/protocol.md describes them.

mod broadcast;
mod checksum;
mod compact_frame;
mod control;
mod frame_message;
mod join;
#[cfg(feature = "tls")]
mod tls;

pub use broadcast::{BroadcastError, Broadcaster, Send, ViewerId};
pub use checksum::FrameChecksum;
pub use compact_frame::{
    is_compact, CompactError, FramePacker, FrameUnpacker, Unpacked, COMPACT_TAG,
};
pub use control::{
    check_hello, Capabilities, ControlDecoder, ControlError, ControlMessage, Hello, RefuseReason,
    Role, MAX_CONTROL_MESSAGE, PROTOCOL_VERSION,
};
pub use frame_message::{
    frame_message_bound, split_frame_message, FrameHeader, FrameMessageError, FRAME_HEADER_LEN,
    FRAME_MAGIC,
};
pub use join::{fingerprint, secrets_match, JoinError, JoinLink, JoinToken, SECRET_LEN};
#[cfg(feature = "tls")]
pub use tls::{client_config, server_config, Identity, TlsError, ALPN, SERVER_NAME};
