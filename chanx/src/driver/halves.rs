//! The two halves of a connection — session and writer — in one task.
//!
//! Like `select(session, writer)`, but the session can hand the writer a
//! turn *without* going back to the runtime: when input keeps arriving the
//! session never returns `Pending` on its own, and a trip through the
//! runtime's scheduler per turn would cost more than the writes it lets
//! through.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// Turns handed over within one poll before yielding to the runtime.
const ROUNDS: usize = 64;

/// The session's handle for giving the writer a turn.
#[derive(Clone, Default)]
pub(super) struct Turn(Arc<AtomicBool>);

impl Turn {
    /// Lets the writer run once before the session continues.
    pub(super) async fn give(&self) {
        let mut given = false;
        std::future::poll_fn(|cx| {
            if given {
                Poll::Ready(())
            } else {
                given = true;
                self.0.store(true, Ordering::Release);
                // `Halves` polls the session again at once; the wake-up
                // only matters if something else polls this future.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
    }

    fn taken(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// Polls the writer, then the session, until the session ends; resolves
/// to whether the writer had ended too.
pub(super) struct Halves<'a, S, W> {
    pub(super) session: Pin<&'a mut S>,
    pub(super) writer: Pin<&'a mut W>,
    pub(super) writer_done: bool,
    pub(super) turn: Turn,
}

impl<S: Future<Output = ()>, W: Future<Output = ()>> Future for Halves<'_, S, W> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        for _ in 0..ROUNDS {
            if !this.writer_done && this.writer.as_mut().poll(cx).is_ready() {
                this.writer_done = true;
            }
            if this.session.as_mut().poll(cx).is_ready() {
                return Poll::Ready(this.writer_done);
            }
            if !this.turn.taken() {
                // The session waits for real events: let the writer take
                // what the session just queued, then both wait, wakers set.
                if !this.writer_done && this.writer.as_mut().poll(cx).is_ready() {
                    this.writer_done = true;
                }
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
