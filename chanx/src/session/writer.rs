//! The writer half of a connection: drains the outbound queue into the
//! socket, batching flushes, and reports progress back to the session.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::SinkExt;

use crate::queue::TaskQueue;

use crate::ws::{BoxSocket, WsMessage};

/// The pending close of a connection, read by the writer.
#[derive(Default)]
pub(super) struct CloseSlot {
    frame: Option<(u16, String)>,
    discard_pending: bool,
}

/// The session's handle on the writer.
pub(crate) struct Link {
    queue: Arc<TaskQueue<WsMessage>>,
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
    let queue = Arc::new(TaskQueue::default());
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
    queue: Arc<TaskQueue<WsMessage>>,
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
