//! A viewer's acknowledgements on their way from its network task to the capture thread.
//!
//! Every update is acknowledged, but the capture thread needs to hear of it at once only when
//! the viewer had no room for another update: otherwise it reads them at its next wake (the next
//! change of the screen, or its next frame time), and typing does not wake it twice an update.

use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
struct State {
    /// Acknowledged sequence numbers, in order, that the capture thread has not taken.
    sequences: Vec<u64>,
    /// The capture thread waits to hear of the next acknowledgement.
    armed: bool,
}

/// One viewer's acknowledgements that the capture thread has not taken yet.
#[derive(Default)]
pub struct AckBox {
    state: Mutex<State>,
}

impl AckBox {
    fn state(&self) -> MutexGuard<'_, State> {
        // The lock guards plain data that a panic cannot leave half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The network side: the viewer acknowledged `sequence`. Whether the capture thread must
    /// be woken for it (it armed the box).
    pub fn push(&self, sequence: u64) -> bool {
        let mut s = self.state();
        s.sequences.push(sequence);
        std::mem::take(&mut s.armed)
    }

    /// The capture side: moves the acknowledgements not taken yet to `into`, in order.
    pub fn take(&self, into: &mut Vec<u64>) {
        into.append(&mut self.state().sequences);
    }

    /// The capture side, before it sleeps while the viewer has no room: asks to be woken by the
    /// next acknowledgement. False, without arming, when one is already here to take.
    pub fn arm(&self) -> bool {
        let mut s = self.state();
        if !s.sequences.is_empty() {
            return false;
        }
        s.armed = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_armed_box_asks_for_a_wake_and_acknowledgements_keep_their_order() {
        let b = AckBox::default();
        assert!(!b.push(1), "not armed: no wake");
        assert!(!b.arm(), "one is waiting: take it instead of sleeping");
        let mut got = Vec::new();
        b.take(&mut got);
        assert_eq!(got, [1]);
        assert!(b.arm());
        assert!(b.push(2), "armed: wake");
        assert!(!b.push(3), "one wake an arming");
        b.take(&mut got);
        assert_eq!(got, [1, 2, 3]);
        b.take(&mut got);
        assert_eq!(got, [1, 2, 3]);
    }
}
