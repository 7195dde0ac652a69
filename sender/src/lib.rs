//! tessera-sender: shares a screen with Tessera viewers over QUIC.
//!
//! It is the thin I/O shell around `tessera-engine`: it takes frames from a source, runs the
//! engine's diff and tile codec on a capture thread, and delivers updates to each viewer
//! latest-wins over QUIC (quinn + rustls, the listener's certificate pinned by the join link).
//! It is not the protocol (that is `tessera_engine::stream`) and not a viewer.
//!
//! [`net`], [`stats`], [`chat`] (the chat and command channel's I/O) and [`actions`] (running
//! approved operations) are shared with `tessera-receiver`.

mod acks;
pub mod actions;
pub mod chat;
pub mod cli;
mod full_compare;
mod inbox;
pub mod net;
mod pipeline;
mod quic_runtime;
pub mod select;
pub mod source;
pub mod stats;

pub use pipeline::{runtime, Sender, SenderConfig, SenderError};
