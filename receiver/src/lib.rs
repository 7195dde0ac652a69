//! tessera-receiver: views a screen shared by `tessera-sender`.
//!
//! It is the thin I/O shell around `tessera-engine` on the viewing side: it dials a join link
//! (or listens for a sender), reads each update from its own QUIC stream within the limits it
//! declared, composites it on the GPU or the CPU, verifies the whole-frame checksum, and
//! acknowledges it, then presents it in a window ([`window`]) or keeps it headless. It is not
//! the protocol (that is `tessera_engine::stream`).

mod compositor;
mod dump;
mod view;
pub mod window;

pub use compositor::Compositor;
pub use dump::write_png;
pub use view::{Receiver, ReceiverConfig, ReceiverError, ReceiverReport, StopHandle};
