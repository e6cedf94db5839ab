//! The heartbeat timer of a connection.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// The core's next deadline as a reusable timer: re-armed only when the
/// deadline changes, pending forever when there is none.
#[derive(Default)]
pub(super) struct Timer {
    deadline: Option<Instant>,
    delay: Option<futures_timer::Delay>,
}

impl Timer {
    pub(super) fn arm(&mut self, deadline: Option<Instant>) {
        if deadline == self.deadline && (deadline.is_none() || self.delay.is_some()) {
            return;
        }
        self.deadline = deadline;
        self.delay = deadline.map(|at| {
            let wait = at.saturating_duration_since(Instant::now());
            match self.delay.take() {
                Some(mut delay) => {
                    delay.reset(wait);
                    delay
                }
                None => futures_timer::Delay::new(wait),
            }
        });
    }
}

impl std::future::Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.delay.as_mut() {
            Some(delay) => match Pin::new(delay).poll(cx) {
                Poll::Ready(()) => {
                    self.delay = None;
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            },
            None => Poll::Pending,
        }
    }
}

impl futures_util::future::FusedFuture for Timer {
    fn is_terminated(&self) -> bool {
        false
    }
}
