//! Running handlers: one at a time, in order (the default), or up to a
//! limit at once on clones of the consumer (opt-in).

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use chanx_proto::{ContentKind, Handled, ProtoError};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use serde_json::value::RawValue;
use tracing::Instrument;

use super::core::{Core, Delivery, SessionInfo};
use crate::consumer::{Consumer, Context, SendError};

/// An action a concurrent handler asks the connection to perform.
pub(crate) enum Command {
    /// Send this (serialized) message to the client.
    Send(Box<RawValue>),
    /// Send a group message (typed or raw JSON, as `kind` says).
    Group {
        content: Box<RawValue>,
        kind: ContentKind,
        groups: Option<Vec<String>>,
        exclude_current: bool,
    },
    /// Close the connection.
    Close(u16),
}

/// Where the result of a [`Command`] goes.
pub(super) type Reply = async_channel::Sender<Result<(), SendError>>;

/// A concurrent handler's view of its connection.
pub(crate) struct Remote {
    pub(crate) info: Arc<SessionInfo>,
    pub(crate) channel: String,
    pub(crate) groups: Vec<String>,
    commands: async_channel::Sender<(Command, Reply)>,
}

impl Remote {
    /// Asks the connection to perform `command` and waits for the result.
    pub(crate) async fn call(&self, command: Command) -> Result<(), SendError> {
        let (reply, result) = async_channel::bounded(1);
        let closed = || SendError::Protocol(ProtoError::Closed);
        self.commands
            .send((command, reply))
            .await
            .map_err(|_| closed())?;
        result.recv().await.unwrap_or_else(|_| Err(closed()))
    }
}

impl<C: Consumer> Core<C> {
    /// Performs a concurrent handler's command.
    pub(super) async fn execute(&mut self, command: Command) -> Result<(), SendError> {
        match command {
            Command::Send(message) => self.conn.send_message(&*message)?,
            Command::Group {
                content,
                kind,
                groups,
                exclude_current,
            } => self
                .conn
                .send_group_raw(content, kind, groups.as_deref(), exclude_current)?,
            Command::Close(code) => self.conn.close(code, "closed by server"),
        }
        self.flush().await
    }

    /// Runs the handlers of everything delivered, one at a time, in order.
    pub(super) async fn dispatch(&mut self, consumer: &mut C) {
        while let Some(delivery) = self.pending.pop_front() {
            let finished = handle(consumer, &mut Context::direct(self), delivery).await;
            self.finish(finished);
            let _ = self.flush().await;
        }
    }

    /// Tells the core a handler finished (completion and error frames).
    pub(super) fn finish(&mut self, finished: Finished) {
        let result = match finished {
            Finished::Message(handled) => self.conn.message_handled(handled),
            Finished::Event => self.conn.event_handled(),
        };
        if let Err(error) = result {
            tracing::debug!(%error, "completion after close");
        }
    }
}

/// Runs the handler of one delivery, catching its errors and panics.
async fn handle<C: Consumer>(
    consumer: &mut C,
    ctx: &mut Context<'_, C>,
    delivery: Delivery<C>,
) -> Finished {
    match delivery {
        Delivery::Message(message) => {
            let span = tracing::info_span!("message", message_id = %MessageId::new());
            let outcome = AssertUnwindSafe(consumer.receive_message(ctx, message))
                .catch_unwind()
                .instrument(span.clone())
                .await;
            Finished::Message(span.in_scope(|| report("Failed to process message", outcome)))
        }
        Delivery::Event(event) => {
            let outcome = AssertUnwindSafe(consumer.receive_event(ctx, event))
                .catch_unwind()
                .await;
            report("Failed to process channel event", outcome);
            Finished::Event
        }
    }
}

/// What a finished concurrent handler reports.
pub(super) enum Finished {
    Message(Handled),
    Event,
}

/// Handlers in flight for an endpoint with
/// [`concurrent_messages`](crate::EndpointBuilder::concurrent_messages).
pub(super) struct Concurrent<C> {
    limit: usize,
    clone: fn(&C) -> C,
    pub(super) in_flight: FuturesUnordered<BoxFuture<'static, Finished>>,
    pub(super) commands: Pin<Box<async_channel::Receiver<(Command, Reply)>>>,
    sender: async_channel::Sender<(Command, Reply)>,
}

impl<C: Consumer> Concurrent<C> {
    pub(super) fn new(limit: usize, clone: fn(&C) -> C) -> Self {
        let (sender, commands) = async_channel::unbounded();
        Concurrent {
            limit: limit.max(1),
            clone,
            in_flight: FuturesUnordered::new(),
            commands: Box::pin(commands),
            sender,
        }
    }

    /// Starts handlers for waiting deliveries, up to the limit.
    pub(super) fn start(&mut self, core: &mut Core<C>, consumer: &C) {
        while self.in_flight.len() < self.limit {
            let Some(delivery) = core.pending.pop_front() else {
                return;
            };
            let remote = Remote {
                info: Arc::clone(&core.info),
                channel: core.conn.channel_name().to_owned(),
                groups: core.conn.groups().to_vec(),
                commands: self.sender.clone(),
            };
            let consumer = (self.clone)(consumer);
            self.in_flight
                .push(Box::pin(run_remote(consumer, remote, delivery)));
        }
    }
}

async fn run_remote<C: Consumer>(
    mut consumer: C,
    remote: Remote,
    delivery: Delivery<C>,
) -> Finished {
    handle(&mut consumer, &mut Context::remote(&remote), delivery).await
}

/// A short random id per incoming message, formatted only when logged.
pub(super) struct MessageId(u32);

impl MessageId {
    pub(super) fn new() -> Self {
        MessageId(fastrand::u32(..))
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// Logs a handler's failure or panic.
pub(super) fn report(
    what: &str,
    outcome: Result<crate::HandlerResult, Box<dyn std::any::Any + Send>>,
) -> Handled {
    match outcome {
        Ok(Ok(())) => Handled::Completed,
        Ok(Err(error)) => {
            tracing::error!(%error, "{what}");
            Handled::Failed
        }
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_owned());
            tracing::error!(panic = %text, "{what}: the handler panicked");
            Handled::Failed
        }
    }
}
