//! The parts of a connection — session, writer and layer worker — in one
//! task.
//!
//! Like `select(session, writer, layer)`, but the session can hand the
//! writer a turn *without* going back to the runtime: when input keeps
//! arriving the session never returns `Pending` on its own, and a trip
//! through the runtime's scheduler per turn would cost more than the
//! writes it lets through.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// Turns handed over within one poll before yielding to the runtime.
const ROUNDS: usize = 64;

/// The session's handle for giving the writer a turn.
#[derive(Clone, Default)]
pub(crate) struct Turn(Arc<AtomicBool>);

impl Turn {
    /// Lets the writer run once before the session continues.
    pub(crate) async fn give(&self) {
        let mut given = false;
        std::future::poll_fn(|cx| {
            if given {
                Poll::Ready(())
            } else {
                given = true;
                self.0.store(true, Ordering::Release);
                // `ConnectionTask` polls the session again at once; the
                // wake-up only matters if something else polls this future.
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

/// A part that may end before the session does.
struct Part<'a, F> {
    future: Pin<&'a mut F>,
    done: bool,
}

impl<F: Future<Output = ()>> Part<'_, F> {
    fn poll(&mut self, cx: &mut Context<'_>) {
        if !self.done && self.future.as_mut().poll(cx).is_ready() {
            self.done = true;
        }
    }
}

/// Polls the writer and the layer worker, then the session, until the
/// session ends; resolves to whether both other parts had ended too.
pub(crate) struct ConnectionTask<'a, S, W, L> {
    session: Pin<&'a mut S>,
    writer: Part<'a, W>,
    layer: Part<'a, L>,
    turn: Turn,
}

impl<'a, S, W, L> ConnectionTask<'a, S, W, L> {
    pub(crate) fn new(
        session: Pin<&'a mut S>,
        writer: Pin<&'a mut W>,
        layer: Pin<&'a mut L>,
        turn: Turn,
    ) -> Self {
        ConnectionTask {
            session,
            writer: Part {
                future: writer,
                done: false,
            },
            layer: Part {
                future: layer,
                done: false,
            },
            turn,
        }
    }
}

impl<S, W, L> Future for ConnectionTask<'_, S, W, L>
where
    S: Future<Output = ()>,
    W: Future<Output = ()>,
    L: Future<Output = ()>,
{
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        for _ in 0..ROUNDS {
            this.writer.poll(cx);
            this.layer.poll(cx);
            if this.session.as_mut().poll(cx).is_ready() {
                return Poll::Ready(this.writer.done && this.layer.done);
            }
            if !this.turn.taken() {
                // The session waits for real events: let the writer and the
                // layer worker take what the session just queued, then all
                // wait, wakers set.
                this.writer.poll(cx);
                this.layer.poll(cx);
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
