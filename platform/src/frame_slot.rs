//! The newest frame a capture callback handed over, waiting for the next grab.
//!
//! Windows Graphics Capture and ScreenCaptureKit deliver frames on threads of their own, and only
//! when something changed. The callback [`FrameSlot::put`]s each frame; a grab
//! [`FrameSlot::take`]s the newest one into its [`TakenFrame`]. Frames that nobody grabbed are
//! dropped, but their damage is not: it is united with the next frame's, so the hints stay a
//! superset of what changed since the previous grab. A size change, or a frame whose damage is
//! unknown, makes the damage unknown (compare everything).

use crate::{CaptureError, ChangeSignal, ChangeWatcher};
use std::sync::{Condvar, Mutex};
use std::time::Duration;
use tessera_engine::Rect;

#[derive(Default)]
struct Pending {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
    /// What changed since the last take; `None`: unknown.
    damage: Option<Vec<Rect>>,
    /// A frame arrived since the last take.
    fresh: bool,
    /// The capture ended, and why.
    failed: Option<String>,
}

/// A one-frame mailbox between a capture callback and the grabbing thread.
#[derive(Default)]
pub(crate) struct FrameSlot {
    pending: Mutex<Pending>,
    arrived: Condvar,
    /// Told of every frame and failure, once the capture is watched.
    watcher: ChangeWatcher,
}

/// The frame a grab took: tightly packed 4-byte pixels, `width * 4` bytes a row.
#[derive(Default)]
pub(crate) struct TakenFrame {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
    /// What changed since the previous take; `None`: unknown (compare everything).
    pub damage: Option<Vec<Rect>>,
}

impl TakenFrame {
    /// The frame as the engine takes it (BGRA with the alpha byte unused).
    pub fn cpu_frame(&self) -> tessera_engine::CpuFrame<'_> {
        tessera_engine::CpuFrame::new(
            self.width,
            self.height,
            self.width as usize * 4,
            tessera_engine::PixelFormat::Bgrx8,
            &self.pixels,
        )
        .expect("the slot holds whole 4-byte-pixel frames")
    }
}

impl FrameSlot {
    /// Calls `signal` after every frame put and every failure from now on.
    pub fn watch(&self, signal: ChangeSignal) {
        self.watcher.set(signal);
    }

    /// The signal [`Self::watch`] set, for a slot that replaces this one.
    pub fn watcher(&self) -> Option<ChangeSignal> {
        self.watcher.get()
    }

    /// Wakes a take waiting for a frame, and the watcher.
    fn announce(&self) {
        self.arrived.notify_all();
        self.watcher.signal();
    }

    /// A grab: the newest frame if one came, else the frame stays and nothing is damaged (the
    /// OS sends frames only on change, so nothing new is a still screen).
    pub fn grab_into(&self, frame: &mut TakenFrame) -> Result<(), CaptureError> {
        if !self.take(Duration::ZERO, frame)? {
            frame.damage = Some(Vec::new());
        }
        Ok(())
    }

    /// Hands over a `width` x `height` frame that `fill` writes into an emptied buffer (tightly
    /// packed rows), with what changed since the callback's previous frame (`None`: unknown).
    pub fn put(
        &self,
        width: u32,
        height: u32,
        damage: Option<Vec<Rect>>,
        fill: impl FnOnce(&mut Vec<u8>),
    ) {
        // A poisoned lock only means another callback panicked: the data is plain bytes.
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let resized = (pending.width, pending.height) != (width, height);
        pending.damage = match (pending.fresh, pending.damage.take(), damage) {
            _ if resized => None,
            // Not taken since the last frame: what changed then changed too.
            (true, Some(mut before), Some(now)) => {
                before.extend(now);
                Some(before)
            }
            (true, _, _) => None,
            (false, _, now) => now,
        };
        pending.width = width;
        pending.height = height;
        pending.pixels.clear();
        fill(&mut pending.pixels);
        pending.fresh = true;
        drop(pending);
        self.announce();
    }

    /// The capture ended (the window closed, the stream stopped): the next take fails with `why`.
    pub fn fail(&self, why: String) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.failed = Some(why);
        drop(pending);
        self.announce();
    }

    /// Moves the newest frame into `frame` if one arrives within `wait`, and returns whether one
    /// did. A frame whose size differs from `frame`'s has unknown damage. Without a new frame,
    /// `frame` is left as it was.
    pub fn take(&self, wait: Duration, frame: &mut TakenFrame) -> Result<bool, CaptureError> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (mut pending, _) = self
            .arrived
            .wait_timeout_while(pending, wait, |p| !p.fresh && p.failed.is_none())
            .unwrap_or_else(|e| e.into_inner());
        if let Some(why) = pending.failed.take() {
            return Err(CaptureError::Failed(why));
        }
        if !pending.fresh {
            return Ok(false);
        }
        pending.fresh = false;
        let resized = (frame.width, frame.height) != (pending.width, pending.height);
        frame.width = pending.width;
        frame.height = pending.height;
        std::mem::swap(&mut frame.pixels, &mut pending.pixels);
        frame.damage = match pending.damage.take() {
            Some(damage) if !resized => Some(damage),
            _ => None,
        };
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn put(slot: &FrameSlot, width: u32, height: u32, value: u8, damage: Option<Vec<Rect>>) {
        slot.put(width, height, damage, |pixels| {
            pixels.resize(width as usize * height as usize * 4, value)
        });
    }

    #[test]
    fn a_take_gets_the_newest_frame_and_its_damage() {
        let slot = FrameSlot::default();
        let mut frame = TakenFrame::default();
        put(&slot, 4, 2, 1, None);
        assert!(slot.take(Duration::ZERO, &mut frame).unwrap());
        assert_eq!((frame.width, frame.height), (4, 2));
        assert_eq!(frame.pixels, vec![1; 32]);
        assert_eq!(frame.damage, None, "the first frame is all new");

        put(&slot, 4, 2, 2, Some(vec![Rect::new(1, 0, 1, 1)]));
        assert!(slot.take(Duration::ZERO, &mut frame).unwrap());
        assert_eq!(frame.pixels, vec![2; 32]);
        assert_eq!(frame.damage, Some(vec![Rect::new(1, 0, 1, 1)]));
    }

    #[test]
    fn a_grab_without_a_new_frame_is_a_still_screen() {
        let slot = FrameSlot::default();
        let mut frame = TakenFrame::default();
        put(&slot, 2, 1, 5, None);
        slot.grab_into(&mut frame).unwrap();
        assert_eq!(frame.damage, None);
        slot.grab_into(&mut frame).unwrap();
        assert_eq!(frame.damage, Some(Vec::new()));
        let f = frame.cpu_frame();
        assert_eq!((f.width(), f.height(), f.pixels()), (2, 1, &[5u8; 8][..]));
    }

    #[test]
    fn nothing_new_leaves_the_frame_as_it_was() {
        let slot = FrameSlot::default();
        let mut frame = TakenFrame::default();
        put(&slot, 2, 2, 7, None);
        assert!(slot.take(Duration::ZERO, &mut frame).unwrap());
        assert!(!slot.take(Duration::from_millis(20), &mut frame).unwrap());
        assert_eq!(frame.pixels, vec![7; 16]);
    }

    #[test]
    fn damage_of_frames_nobody_took_is_kept() {
        let slot = FrameSlot::default();
        let mut frame = TakenFrame::default();
        put(&slot, 8, 8, 0, None);
        slot.take(Duration::ZERO, &mut frame).unwrap();
        put(&slot, 8, 8, 1, Some(vec![Rect::new(0, 0, 1, 1)]));
        put(&slot, 8, 8, 2, Some(vec![Rect::new(5, 5, 2, 2)]));
        assert!(slot.take(Duration::ZERO, &mut frame).unwrap());
        assert_eq!(frame.pixels, vec![2; 256]);
        assert_eq!(
            frame.damage,
            Some(vec![Rect::new(0, 0, 1, 1), Rect::new(5, 5, 2, 2)])
        );
    }

    #[test]
    fn unknown_damage_in_between_makes_it_unknown() {
        let slot = FrameSlot::default();
        let mut frame = TakenFrame::default();
        put(&slot, 8, 8, 0, None);
        slot.take(Duration::ZERO, &mut frame).unwrap();
        put(&slot, 8, 8, 1, None);
        put(&slot, 8, 8, 2, Some(vec![Rect::new(5, 5, 2, 2)]));
        slot.take(Duration::ZERO, &mut frame).unwrap();
        assert_eq!(frame.damage, None);
    }

    #[test]
    fn a_size_change_makes_the_damage_unknown() {
        let slot = FrameSlot::default();
        let mut frame = TakenFrame::default();
        put(&slot, 8, 8, 0, None);
        slot.take(Duration::ZERO, &mut frame).unwrap();
        put(&slot, 6, 8, 1, Some(vec![Rect::new(0, 0, 1, 1)]));
        slot.take(Duration::ZERO, &mut frame).unwrap();
        assert_eq!((frame.width, frame.height, &frame.damage), (6, 8, &None));
        // Resized and back before a take: the taker's size matches, the damage still cannot.
        put(&slot, 8, 8, 2, Some(vec![Rect::new(0, 0, 1, 1)]));
        put(&slot, 6, 8, 3, Some(vec![Rect::new(0, 0, 1, 1)]));
        slot.take(Duration::ZERO, &mut frame).unwrap();
        assert_eq!(frame.damage, None);
    }

    #[test]
    fn a_failure_ends_the_wait_with_its_reason() {
        let slot = Arc::new(FrameSlot::default());
        let failing = slot.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            failing.fail("the window closed".into());
        });
        let mut frame = TakenFrame::default();
        let err = slot.take(Duration::from_secs(30), &mut frame).unwrap_err();
        assert!(err.to_string().contains("the window closed"), "{err}");
        thread.join().unwrap();
    }

    #[test]
    fn a_watched_slot_signals_each_frame_and_failure_and_a_replacement_keeps_the_signal() {
        let slot = FrameSlot::default();
        let signals = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = signals.clone();
        slot.watch(Arc::new(move || {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
        let seen = || signals.load(std::sync::atomic::Ordering::SeqCst);
        put(&slot, 2, 2, 1, None);
        put(&slot, 2, 2, 2, None);
        assert_eq!(seen(), 2);
        let mut frame = TakenFrame::default();
        slot.grab_into(&mut frame).unwrap();
        // A grab signals nothing.
        assert_eq!(seen(), 2);
        let replacement = FrameSlot::default();
        replacement.watch(slot.watcher().expect("watched"));
        replacement.fail("stopped".into());
        assert_eq!(seen(), 3);
    }

    #[test]
    fn a_take_waits_for_a_frame_from_another_thread() {
        let slot = Arc::new(FrameSlot::default());
        let putting = slot.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            put(&putting, 3, 1, 9, None);
        });
        let mut frame = TakenFrame::default();
        assert!(slot.take(Duration::from_secs(30), &mut frame).unwrap());
        assert_eq!(frame.pixels, vec![9; 12]);
        thread.join().unwrap();
    }
}
