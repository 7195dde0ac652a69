//! quinn on tokio, with a timer that leaves tokio's timer wheel when its deadline moves later.
//!
//! A connection keeps one timer for its next deadline. Sending an update arms loss detection
//! about 26 ms ahead; the viewer's acknowledgement, a millisecond later, moves the deadline to
//! the keep-alive seconds away. tokio's `Sleep::reset` to a later instant leaves the entry
//! where it was in the wheel, so the runtime still woke at the old deadline, found nothing due
//! and slept again: one idle wake of the network thread an update. This timer puts a new
//! `Sleep` in the old one's place instead (dropping the old one takes it out of the wheel).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::time::{sleep_until, Sleep};

/// quinn's tokio runtime with [`MovingTimer`]s.
#[derive(Debug)]
pub struct QuicRuntime(quinn::TokioRuntime);

impl QuicRuntime {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(quinn::TokioRuntime))
    }
}

impl quinn::Runtime for QuicRuntime {
    fn new_timer(&self, at: Instant) -> Pin<Box<dyn quinn::AsyncTimer>> {
        Box::pin(MovingTimer::new(at))
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.0.spawn(future)
    }

    fn wrap_udp_socket(
        &self,
        socket: std::net::UdpSocket,
    ) -> std::io::Result<Arc<dyn quinn::AsyncUdpSocket>> {
        self.0.wrap_udp_socket(socket)
    }

    fn now(&self) -> Instant {
        self.0.now()
    }
}

/// A timer whose later deadlines replace its tokio `Sleep` rather than extend it.
pub struct MovingTimer {
    sleep: Pin<Box<Sleep>>,
    at: Instant,
}

impl MovingTimer {
    fn new(at: Instant) -> Self {
        Self {
            sleep: Box::pin(sleep_until(at.into())),
            at,
        }
    }
}

impl fmt::Debug for MovingTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MovingTimer").field("at", &self.at).finish()
    }
}

impl quinn::AsyncTimer for MovingTimer {
    fn reset(self: Pin<&mut Self>, at: Instant) {
        let this = self.get_mut();
        if at > this.at {
            // In place: no allocation.
            this.sleep.set(sleep_until(at.into()));
        } else {
            Sleep::reset(this.sleep.as_mut(), at.into());
        }
        this.at = at;
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context) -> Poll<()> {
        Future::poll(self.get_mut().sleep.as_mut(), cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quinn::AsyncTimer;
    use std::time::Duration;

    #[tokio::test]
    async fn a_timer_fires_at_its_last_deadline_earlier_or_later() {
        let start = Instant::now();
        let mut timer = Box::pin(MovingTimer::new(start + Duration::from_millis(30)));
        // Later: the timer waits for the new deadline.
        timer.as_mut().reset(start + Duration::from_millis(100));
        std::future::poll_fn(|cx| timer.as_mut().poll(cx)).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        // Earlier than the one before: fires then, not at the one before.
        let now = Instant::now();
        timer.as_mut().reset(now + Duration::from_secs(60));
        timer.as_mut().reset(now + Duration::from_millis(20));
        std::future::poll_fn(|cx| timer.as_mut().poll(cx)).await;
        let waited = now.elapsed();
        assert!(
            waited >= Duration::from_millis(20) && waited < Duration::from_secs(60),
            "{waited:?}"
        );
    }
}
