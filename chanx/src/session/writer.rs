//! The writer half of a connection: drains the outbound queue into the
//! socket, batching flushes, and reports progress back to the session.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use futures_util::SinkExt;
use futures_util::task::AtomicWaker;

use crate::ws::{BoxSocket, WsMessage};

/// The pending close of a connection, read by the writer.
#[derive(Default)]
pub(super) struct CloseSlot {
    frame: Option<(u16, String)>,
    discard_pending: bool,
}

/// The frames on their way from the session to the writer.
///
/// Ours rather than a channel crate's: the session and the writer run in
/// the same task (`ConnectionTask`), so the queue is never contended and
/// needs no event machinery, only the writer's waker. `async-channel`'s
/// unbounded queue kept a 31-slot block (1.5 KB) and a cache-padded channel
/// (0.8 KB) per idle connection, and cost a few hundred instructions per
/// frame in its event listeners (heaptrack, callgrind).
#[derive(Default)]
struct Outbound {
    state: Mutex<OutboundState>,
    writer: AtomicWaker,
}

#[derive(Default)]
struct OutboundState {
    frames: VecDeque<WsMessage>,
    closed: bool,
}

/// A queue that grew past this during a burst gives the memory back once
/// drained.
const KEPT_CAPACITY: usize = 64;

impl Outbound {
    fn state(&self) -> MutexGuard<'_, OutboundState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame`; `false` once the queue is closed.
    fn push(&self, frame: WsMessage) -> bool {
        let mut state = self.state();
        if state.closed {
            return false;
        }
        state.frames.push_back(frame);
        drop(state);
        self.writer.wake();
        true
    }

    /// No frame is accepted any more; the writer drains what is queued.
    fn close(&self) {
        self.state().closed = true;
        self.writer.wake();
    }

    fn is_empty(&self) -> bool {
        self.state().frames.is_empty()
    }

    /// The next frame; `None` once closed and drained.
    async fn pop(&self) -> Option<WsMessage> {
        std::future::poll_fn(|cx| {
            let mut state = self.state();
            if let Some(frame) = state.frames.pop_front() {
                if state.frames.is_empty() && state.frames.capacity() > KEPT_CAPACITY {
                    state.frames.shrink_to(KEPT_CAPACITY);
                }
                return Poll::Ready(Some(frame));
            }
            if state.closed {
                return Poll::Ready(None);
            }
            // Registered under the lock: a push after this sees it.
            self.writer.register(cx.waker());
            Poll::Pending
        })
        .await
    }
}

/// The session's handle on the writer.
pub(crate) struct Link {
    queue: Arc<Outbound>,
    written: Arc<AtomicUsize>,
    reported: usize,
    close: Arc<Mutex<CloseSlot>>,
}

impl Drop for Link {
    /// A session that ends without a close of its own (the peer closed, the
    /// transport failed) lets the writer drain, close and end.
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// A linked pair: the session's [`Link`] and the writer's future.
pub(crate) fn link(
    sink: futures_util::stream::SplitSink<BoxSocket, WsMessage>,
) -> (Link, impl std::future::Future<Output = ()>) {
    let queue = Arc::new(Outbound::default());
    let written = Arc::new(AtomicUsize::new(0));
    let close = Arc::new(Mutex::new(CloseSlot::default()));
    let link = Link {
        queue: Arc::clone(&queue),
        written: Arc::clone(&written),
        reported: 0,
        close: Arc::clone(&close),
    };
    (link, write_loop(sink, queue, written, close))
}

impl Link {
    pub(super) fn send(&self, message: WsMessage) -> bool {
        self.queue.push(message)
    }

    /// Queues the close frame behind the frames already queued, or ahead
    /// of them with `discard_pending` (the core's word, e.g. for a peer
    /// that does not read).
    pub(super) fn close(&self, code: u16, reason: &str, discard_pending: bool) {
        let mut slot = self.close.lock().unwrap_or_else(|e| e.into_inner());
        if slot.frame.is_none() {
            slot.frame = Some((code, reason.to_owned()));
            slot.discard_pending = discard_pending;
        }
        drop(slot);
        self.queue.close();
    }

    /// Frames written since the last call.
    pub(super) fn take_written(&mut self) -> usize {
        let total = self.written.load(Ordering::Acquire);
        let delta = total.wrapping_sub(self.reported);
        self.reported = total;
        delta
    }
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<BoxSocket, WsMessage>,
    queue: Arc<Outbound>,
    written: Arc<AtomicUsize>,
    close: Arc<Mutex<CloseSlot>>,
) {
    while let Some(message) = queue.pop().await {
        let is_data = matches!(message, WsMessage::Text(_) | WsMessage::Binary(_));
        let discard = close.lock().map(|s| s.discard_pending).unwrap_or(false);
        if discard && is_data {
            continue;
        }
        if let Err(error) = sink.feed(message).await {
            // E.g. the peer's Close arrived: the transport refuses data but
            // still owes the peer its Close reply, which closing flushes.
            tracing::debug!(%error, "socket write failed");
            queue.close();
            break;
        }
        if queue.is_empty()
            && let Err(error) = sink.flush().await
        {
            tracing::debug!(%error, "socket flush failed");
            queue.close();
            break;
        }
        if is_data {
            written.fetch_add(1, Ordering::Release);
        }
    }
    let frame = close.lock().ok().and_then(|mut s| s.frame.take());
    if let Some((code, reason)) = frame {
        let _ = sink.send(WsMessage::Close(Some((code, reason)))).await;
    }
    // Always close, after a failed write too: RFC 6455 wants the peer's
    // Close answered, and the transport may hold that answer unflushed.
    let _ = sink.close().await;
}
