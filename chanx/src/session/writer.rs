//! The writer half of a connection: drains the outbound queue into the
//! socket, batching flushes, and reports progress back to the session.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::SinkExt;

use crate::queue::TaskQueue;

use crate::ws::{BoxSocket, WsMessage};

/// What the session and the writer share: one allocation per connection.
#[derive(Default)]
struct Shared {
    queue: TaskQueue<WsMessage>,
    /// Data frames written so far.
    written: AtomicUsize,
    /// The close frame to send once the queue is drained.
    close: Mutex<Option<(u16, String)>>,
    /// Data frames still queued are dropped, not written (read by the
    /// writer for every frame: an atomic, not the lock).
    discard_pending: AtomicBool,
}

/// The session's handle on the writer.
pub(crate) struct Link {
    shared: Arc<Shared>,
    reported: usize,
}

impl Drop for Link {
    /// A session that ends without a close of its own (the peer closed, the
    /// transport failed) lets the writer drain, close and end.
    fn drop(&mut self) {
        self.shared.queue.close();
    }
}

/// A linked pair: the session's [`Link`] and the writer's future.
pub(crate) fn link(
    sink: futures_util::stream::SplitSink<BoxSocket, WsMessage>,
) -> (Link, impl std::future::Future<Output = ()>) {
    let shared = Arc::new(Shared::default());
    let link = Link {
        shared: Arc::clone(&shared),
        reported: 0,
    };
    (link, write_loop(sink, shared))
}

impl Link {
    pub(super) fn send(&self, message: WsMessage) -> bool {
        self.shared.queue.push(message)
    }

    /// Queues the close frame behind the frames already queued, or ahead
    /// of them with `discard_pending` (the core's word, e.g. for a peer
    /// that does not read).
    pub(super) fn close(&self, code: u16, reason: &str, discard_pending: bool) {
        let mut slot = self.shared.close.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some((code, reason.to_owned()));
            self.shared
                .discard_pending
                .store(discard_pending, Ordering::Release);
        }
        drop(slot);
        self.shared.queue.close();
    }

    /// Frames written since the last call.
    pub(super) fn take_written(&mut self) -> usize {
        let total = self.shared.written.load(Ordering::Acquire);
        let delta = total.wrapping_sub(self.reported);
        self.reported = total;
        delta
    }
}

/// Not an `async fn`, which would keep its arguments twice in the future
/// every idle connection holds; `loop` with `let else` rather than `while
/// let`, whose scrutinee takes a slot of its own.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice in its future"
)]
fn write_loop(
    mut sink: futures_util::stream::SplitSink<BoxSocket, WsMessage>,
    shared: Arc<Shared>,
) -> impl std::future::Future<Output = ()> {
    async move {
        // Frames queued since the last flush: fed one after the other,
        // then flushed once (one lock per frame: the next is taken with
        // the same lock that tells whether the queue is empty).
        'batches: loop {
            let Some(mut message) = shared.queue.pop().await else {
                break;
            };
            loop {
                let is_data = matches!(message, WsMessage::Text(_) | WsMessage::Binary(_));
                if !(is_data && shared.discard_pending.load(Ordering::Acquire)) {
                    if let Err(error) = sink.feed(message).await {
                        // E.g. the peer's Close arrived: the transport refuses
                        // data but still owes the peer its Close reply, which
                        // closing flushes.
                        tracing::debug!(%error, "socket write failed");
                        shared.queue.close();
                        break 'batches;
                    }
                    if is_data {
                        // Counted once handed to the socket, as a frame
                        // the flush below only pushes further.
                        shared.written.fetch_add(1, Ordering::Release);
                    }
                }
                match shared.queue.try_pop() {
                    Some(next) => message = next,
                    None => break,
                }
            }
            if let Err(error) = sink.flush().await {
                tracing::debug!(%error, "socket flush failed");
                shared.queue.close();
                break;
            }
        }
        let frame = shared.close.lock().ok().and_then(|mut slot| slot.take());
        if let Some((code, reason)) = frame {
            let _ = sink.send(WsMessage::Close(Some((code, reason)))).await;
        }
        // Always close, after a failed write too: RFC 6455 wants the peer's
        // Close answered, and the transport may hold that answer unflushed.
        let _ = sink.close().await;
    }
}
