//! Performs a connection's channel-layer commands off the write path.
//!
//! The session hands every [`LayerCommand`] to a queue (bounded by a count
//! of outstanding commands) and goes on;
//! the worker, a part of the connection's task, starts each command as it
//! arrives — in order, since a layer does its ordering work when a call is
//! first polled — and keeps up to [`MAX_IN_FLIGHT`] of them pending at once
//! (pipelining: a Redis round trip no longer holds up the next send, nor
//! any frame for the socket). Failures are logged here; the results of the
//! join and leave batches also go back to the session, which must not run
//! `post_authentication` before the groups are joined nor `on_disconnect`
//! before they are left.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use chanx_proto::LayerCommand;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::layer::{ChannelLayer, LayerError};
use crate::queue::TaskQueue;

/// Commands started and not yet finished, at most.
const MAX_IN_FLIGHT: usize = 64;

/// Commands queued and not yet started, at most; a session that queues
/// more waits (backpressure on its handlers, never on the socket).
const QUEUE_CAPACITY: usize = 1024;

/// Commands queued or started and not yet finished, at most. The queue
/// itself is unbounded, because a bounded channel allocates its whole
/// capacity up front: 1024 slots were 56 KB for every connection, most of
/// it never used (measured with `LOAD_PARTS=idle cargo bench -p
/// chanx-e2e --bench load`). This count bounds it instead.
const MAX_OUTSTANDING: usize = QUEUE_CAPACITY + MAX_IN_FLIGHT;

/// Where the outcome of a join or leave batch goes.
pub(crate) type BatchOutcome = async_channel::Receiver<Result<(), LayerError>>;

struct Job {
    command: LayerCommand,
    reply: Option<async_channel::Sender<Result<(), LayerError>>>,
}

/// What the session's queue, the worker and its started commands share:
/// one allocation per connection.
struct Shared {
    jobs: TaskQueue<Job>,
    /// Commands queued or started and not yet finished.
    outstanding: AtomicUsize,
    /// Notified whenever a command finishes (room in the queue).
    finished: event_listener::Event,
    /// The connection's channel name (the core's, shared).
    channel: Arc<str>,
}

/// The session's end: queues commands for the worker.
pub(crate) struct LayerQueue {
    shared: Arc<Shared>,
}

impl Drop for LayerQueue {
    /// The session is gone: the worker finishes what is queued and ends.
    fn drop(&mut self) {
        self.shared.jobs.close();
    }
}

impl LayerQueue {
    /// Queues `command` unless the queue is full, when it is handed back;
    /// for a join or a leave, returns where its outcome arrives.
    ///
    /// Not async, so that the session's common path (there is room) adds
    /// nothing to its future; [`submit`](Self::submit) waits.
    pub(crate) fn try_submit(
        &self,
        command: LayerCommand,
    ) -> Result<Option<BatchOutcome>, LayerCommand> {
        // Only the session submits, and the worker only ever lowers the
        // count: room seen here is room at the push.
        if self.shared.outstanding.load(Ordering::Acquire) >= MAX_OUTSTANDING {
            return Err(command);
        }
        let (reply, result) = match command {
            LayerCommand::Join(_) | LayerCommand::Leave(_) => {
                let (reply, result) = async_channel::bounded(1);
                (Some(reply), Some(result))
            }
            _ => (None, None),
        };
        self.shared.outstanding.fetch_add(1, Ordering::AcqRel);
        // Only this queue's own drop closes it: the push cannot fail here.
        let queued = self.shared.jobs.push(Job { command, reply });
        debug_assert!(queued, "the layer queue closed while its session submits");
        Ok(result)
    }

    /// Queues `command`, waiting for room as a full bounded queue would
    /// (backpressure); for a join or a leave, returns where its outcome
    /// arrives.
    pub(crate) async fn submit(&self, mut command: LayerCommand) -> Option<BatchOutcome> {
        loop {
            match self.try_submit(command) {
                Ok(settled) => return settled,
                Err(full) => command = full,
            }
            let room = self.shared.finished.listen();
            if self.shared.outstanding.load(Ordering::Acquire) >= MAX_OUTSTANDING {
                room.await;
            }
        }
    }
}

/// A queue and its worker for the connection on `channel`.
pub(crate) fn layer_worker(
    layer: Arc<dyn ChannelLayer>,
    channel: Arc<str>,
) -> (LayerQueue, LayerWorker) {
    let shared = Arc::new(Shared {
        jobs: TaskQueue::default(),
        outstanding: AtomicUsize::new(0),
        finished: event_listener::Event::new(),
        channel,
    });
    let worker = LayerWorker {
        layer,
        shared: Arc::clone(&shared),
        in_flight: None,
        closed: false,
    };
    (LayerQueue { shared }, worker)
}

/// Runs until the queue is dropped and every started command finished.
///
/// Only the session of the same task submits commands, and the
/// connection's task polls the worker right after the session: an idle
/// worker (nothing outstanding) returns at once, without touching its
/// queue — most messages need no layer work, and this poll runs for each.
pub(crate) struct LayerWorker {
    layer: Arc<dyn ChannelLayer>,
    shared: Arc<Shared>,
    /// Commands started and still pending; made when one first pends and
    /// dropped once all have finished, so that an idle connection keeps
    /// none of its memory.
    in_flight: Option<FuturesUnordered<BoxFuture<'static, ()>>>,
    closed: bool,
}

impl Future for LayerWorker {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.shared.outstanding.load(Ordering::Acquire) == 0 {
            return if this.shared.jobs.is_closed() {
                Poll::Ready(())
            } else {
                Poll::Pending
            };
        }
        loop {
            while !this.closed && this.in_flight.as_ref().map_or(0, |f| f.len()) < MAX_IN_FLIGHT {
                match this.shared.jobs.poll_pop(cx) {
                    Poll::Ready(Some(job)) => {
                        // Started here, in queue order, not whenever the
                        // set of futures gets to it.
                        let mut started =
                            perform(Arc::clone(&this.layer), Arc::clone(&this.shared), job);
                        if started.as_mut().poll(cx).is_pending() {
                            this.in_flight.get_or_insert_default().push(started);
                        }
                    }
                    Poll::Ready(None) => this.closed = true,
                    Poll::Pending => break,
                }
            }
            let mut finished = false;
            if let Some(in_flight) = &mut this.in_flight {
                while let Poll::Ready(Some(())) = in_flight.poll_next_unpin(cx) {
                    finished = true;
                }
                if in_flight.is_empty() {
                    this.in_flight = None;
                }
            }
            if this.closed && this.in_flight.is_none() {
                return Poll::Ready(());
            }
            // Finished commands free slots: take more jobs, else wait.
            if !finished || this.closed {
                return Poll::Pending;
            }
        }
    }
}

fn perform(layer: Arc<dyn ChannelLayer>, shared: Arc<Shared>, job: Job) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let channel = &*shared.channel;
        let result = match &job.command {
            LayerCommand::Join(groups) => layer.join_groups(channel, groups).await,
            LayerCommand::Leave(groups) => layer.leave_groups(channel, groups).await,
            LayerCommand::GroupSend { group, message } => {
                layer.group_send(group, Arc::clone(message)).await
            }
        };
        if let Err(error) = &result {
            match &job.command {
                LayerCommand::Join(groups) => {
                    tracing::error!(%error, ?groups, "could not join groups")
                }
                LayerCommand::Leave(groups) => {
                    tracing::error!(%error, ?groups, "could not leave groups")
                }
                LayerCommand::GroupSend { group, .. } => {
                    tracing::error!(%error, group, "group send failed")
                }
            }
        }
        if let Some(reply) = job.reply {
            let _ = reply.try_send(result);
        }
        shared.outstanding.fetch_sub(1, Ordering::AcqRel);
        shared.finished.notify(1);
    })
}
