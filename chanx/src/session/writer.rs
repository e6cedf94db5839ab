//! The writer half of a connection: drains the outbound queue into the
//! socket, batching flushes, and reports progress back to the session.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use futures_util::SinkExt;
use futures_util::stream::SplitSink;

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

impl Shared {
    /// The close frame's slot. A panic while it was held cannot leave it
    /// half-written (it holds an `Option`), so a poisoned lock is used as is.
    fn close_slot(&self) -> MutexGuard<'_, Option<(u16, String)>> {
        self.close.lock().unwrap_or_else(|e| e.into_inner())
    }
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
pub(crate) fn link(sink: SplitSink<BoxSocket, WsMessage>) -> (Link, Writer) {
    let shared = Arc::new(Shared::default());
    let link = Link {
        shared: Arc::clone(&shared),
        reported: 0,
    };
    let writer = Writer {
        sink,
        shared,
        state: WriterState::Idle,
    };
    (link, writer)
}

impl Link {
    pub(super) fn send(&self, message: WsMessage) -> bool {
        self.shared.queue.push(message)
    }

    /// Queues the close frame behind the frames already queued, or ahead
    /// of them with `discard_pending` (the core's word, e.g. for a peer
    /// that does not read).
    pub(super) fn close(&self, code: u16, reason: &str, discard_pending: bool) {
        let mut slot = self.shared.close_slot();
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

/// The writer's future: feeds every frame queued since its last flush,
/// then flushes once; once the queue is closed and drained, writes the
/// close frame (if any) and closes the socket.
///
/// Written by hand rather than as an async block, which kept the frame
/// being fed and the sink's `Feed` future beside the sink at every await
/// point: 192 bytes in every connection's task, 64 here
/// (`-Zprint-type-sizes`), and no `Feed` made per frame.
pub(crate) struct Writer {
    sink: SplitSink<BoxSocket, WsMessage>,
    shared: Arc<Shared>,
    state: WriterState,
}

/// Where the writer is.
#[derive(Clone, Copy)]
enum WriterState {
    /// Waiting for a frame; everything fed is flushed.
    Idle,
    /// Frames were fed since the last flush: more are fed while queued.
    Feeding,
    /// Nothing queued: flushing what was fed.
    Flushing,
    /// The queue is closed and drained, or the socket failed: the close
    /// frame, if the session queued one.
    SendingClose,
    /// Flushing the close frame.
    FlushingClose,
    /// Closing the socket: always, after a failed write too (RFC 6455 wants
    /// the peer's Close answered, and the transport may hold that answer
    /// unflushed).
    Closing,
    /// Closed: the writer's future is ready.
    Done,
}

impl Future for Writer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            let next = match this.state {
                WriterState::Idle => this.poll_feed(cx, false),
                WriterState::Feeding => this.poll_feed(cx, true),
                WriterState::Flushing => this.poll_flush(cx),
                WriterState::SendingClose => this.poll_send_close(cx),
                WriterState::FlushingClose => {
                    // An error here changes nothing: the socket closes next.
                    this.sink.poll_flush_unpin(cx).map(|_| WriterState::Closing)
                }
                WriterState::Closing => this.sink.poll_close_unpin(cx).map(|_| WriterState::Done),
                WriterState::Done => return Poll::Ready(()),
            };
            this.state = ready!(next);
        }
    }
}

impl Writer {
    /// Feeds the next queued frame; `fed`: frames were fed since the last
    /// flush, which comes as soon as nothing is queued (else the writer
    /// waits for a frame).
    fn poll_feed(&mut self, cx: &mut Context<'_>, fed: bool) -> Poll<WriterState> {
        // Ready before a frame is taken: a frame taken is never held. A
        // refusal shows here (the split sink sends the frame it holds when
        // next polled), e.g. the peer's Close arrived: the transport
        // refuses data but still owes the peer its Close reply, which
        // closing flushes.
        if let Err(error) = ready!(self.sink.poll_ready_unpin(cx)) {
            tracing::debug!(%error, "socket write failed");
            return Poll::Ready(self.failed());
        }
        // One lock per frame: the next frame is taken with the same lock
        // that tells whether the queue is empty.
        let next = if fed {
            self.shared.queue.try_pop()
        } else {
            ready!(self.shared.queue.poll_pop(cx))
        };
        let Some(message) = next else {
            return Poll::Ready(if fed {
                WriterState::Flushing
            } else {
                WriterState::SendingClose
            });
        };
        let is_data = matches!(message, WsMessage::Text(_) | WsMessage::Binary(_));
        if is_data && self.shared.discard_pending.load(Ordering::Acquire) {
            return Poll::Ready(self.state);
        }
        if let Err(error) = self.sink.start_send_unpin(message) {
            // The split sink only stores the frame; kept for a sink that
            // refuses it at once.
            tracing::debug!(%error, "socket write failed");
            return Poll::Ready(self.failed());
        }
        if is_data {
            // Counted once handed to the socket, as a frame the flush only
            // pushes further.
            self.shared.written.fetch_add(1, Ordering::Release);
        }
        Poll::Ready(WriterState::Feeding)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<WriterState> {
        Poll::Ready(match ready!(self.sink.poll_flush_unpin(cx)) {
            Ok(()) => WriterState::Idle,
            Err(error) => {
                tracing::debug!(%error, "socket flush failed");
                self.failed()
            }
        })
    }

    /// The socket failed: nothing more is queued, and what is queued is
    /// dropped with the writer.
    fn failed(&self) -> WriterState {
        self.shared.queue.close();
        WriterState::SendingClose
    }

    /// Writes the session's close frame, if it queued one.
    fn poll_send_close(&mut self, cx: &mut Context<'_>) -> Poll<WriterState> {
        // Held across the sink's readiness (no await: the session, its
        // only other user, shares this task).
        let mut slot = self.shared.close_slot();
        if slot.is_none() || ready!(self.sink.poll_ready_unpin(cx)).is_err() {
            return Poll::Ready(WriterState::Closing);
        }
        let sent = slot.take().is_some_and(|frame| {
            self.sink
                .start_send_unpin(WsMessage::Close(Some(frame)))
                .is_ok()
        });
        Poll::Ready(if sent {
            WriterState::FlushingClose
        } else {
            WriterState::Closing
        })
    }
}
