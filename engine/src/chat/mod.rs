//! The chat and command channel beside the stream: chat text both ways, and requests for
//! operations from a fixed catalogue that run only with the consent of the side where they run.
//!
//! [`ChatMessage`] is the wire form; [`Operation`] the catalogue and its checks against what a
//! side allows ([`Allow`]); [`Presets`] a side's presets file; [`ChatSession`] one side of the
//! conversation as a state machine. Running an operation (opening a file, pausing the capture)
//! is the binaries' job.

mod message;
mod operation;
mod presets;
mod session;

pub use message::{ChatError, ChatMessage, Outcome, MAX_CHAT_FRAME, MAX_CHAT_TEXT};
pub use operation::{printable, Allow, Operation, FPS_RANGE, MAX_ARGUMENT_LEN, SETTINGS};
pub use presets::{normalise, ConsentRules, PresetError, Presets};
pub use session::{ChatSession, Effect, Side, Ticket, CHAT_PER_SECOND, MAX_ASKED, MAX_WAITING};

/// Deserialises `value` and refuses anything the type would silently ignore (serde skips extra
/// fields of field-less enum variants): the value must read back exactly as it was written.
fn strict_from_value<T>(value: serde_json::Value) -> Result<T, String>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let parsed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&parsed).map_err(|e| e.to_string())?;
    if back != value {
        return Err("unknown field".into());
    }
    Ok(parsed)
}
