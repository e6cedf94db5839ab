//! One connection's runtime state — the Sans-IO core plus what performs its
//! outputs — and the commands handlers act on it with.
//!
//! Everything a handler does goes through one path: its
//! [`Context`](crate::Context) turns the call into a [`Command`] and either
//! performs it on the [`Core`] itself (handlers one at a time) or sends it
//! to the connection's session loop ([`Remote`], concurrent handlers), which
//! performs it the same way.

mod error;
mod layer_worker;
mod log;
mod task;
mod writer;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use chanx_proto::topic::{Envelope, TopicAction, TopicRefusal, TopicRequest};
use chanx_proto::{
    Connection, ContentKind, InFrame, LayerMessage, LayerRejection, MessageSet, Output, Serialized,
    State, TransportError,
};
use serde_json::value::RawValue;

pub use self::error::SendError;
use self::layer_worker::LayerQueue;
pub(crate) use self::layer_worker::{BatchOutcome, LayerWorker, layer_worker};
pub use self::log::LogSettings;
pub(crate) use self::task::{CLOSE_TIMEOUT, ConnectionTask, Turn};
use self::writer::Link;
pub(crate) use self::writer::link;
use crate::auth::LoadedObject;
use crate::handshake::{KeptHandshake, REQUEST_ID_HEADER, User};
use crate::layer::ChannelLayer;
use crate::topic::MountedTopic;
use crate::ws::{Bytes, SocketError, WsMessage};

/// What a connection knows about itself after authentication; shared with
/// concurrent handlers.
#[derive(Clone)]
pub(crate) struct SessionInfo {
    pub(crate) handshake: KeptHandshake,
    pub(crate) user: Option<User>,
    pub(crate) object: Option<LoadedObject>,
    /// Made when first read (most connections never are: no allocation).
    pub(crate) request_id: OnceLock<Box<str>>,
    /// The endpoint's topic types, in the core's order.
    pub(crate) topics: Arc<[Arc<dyn MountedTopic>]>,
}

impl SessionInfo {
    /// The connection's request id: the client's `X-Request-ID` when it is
    /// short and printable, or a generated one.
    pub(crate) fn request_id(&self) -> &str {
        self.request_id.get_or_init(|| {
            match self
                .handshake
                .header(REQUEST_ID_HEADER)
                .filter(|id| id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()))
            {
                Some(id) => id.into(),
                None => uuid::Uuid::new_v4().simple().to_string().into(),
            }
        })
    }
}

/// A delivered message or event waiting for its handler.
pub(crate) enum Delivery<M, E> {
    Message(M),
    Event(E),
    /// The layer may have lost messages for this group.
    Gap(String),
    /// A client's request on a topic.
    Topic(TopicRequest),
}

/// An action a handler asks its connection to perform.
pub(crate) enum Command {
    /// Send this (serialized) message to the client.
    Send(Serialized),
    /// Send a group message (typed or raw JSON, as `kind` says).
    Group {
        content: Box<RawValue>,
        kind: ContentKind,
        groups: Option<Vec<String>>,
        exclude_current: bool,
    },
    /// Close the connection with this code.
    Close(u16),
    /// Subscribe to a topic the topic type authorised: join its group,
    /// then confirm.
    TopicAccept {
        kind: usize,
        envelope: Envelope,
        params: Vec<(String, String)>,
    },
    /// Subscribe to the one topic of an endpoint serving it on its own
    /// route, then run nothing else: no confirmation frame.
    TopicRoute {
        kind: usize,
        topic: String,
        params: Vec<(String, String)>,
    },
    /// Refuse a topic request with an error frame.
    TopicRefuse {
        envelope: Envelope,
        refusal: TopicRefusal,
    },
    /// Send a message on a topic to this client.
    TopicSend {
        message: Serialized,
        envelope: Envelope,
    },
    /// Broadcast to every subscriber of a topic.
    TopicBroadcast {
        kind: usize,
        topic: String,
        content: Box<RawValue>,
    },
}

/// Where the result of a [`Command`] goes.
pub(crate) type Reply = async_channel::Sender<Result<(), SendError>>;

/// A concurrent handler's view of its connection.
pub(crate) struct Remote {
    pub(crate) info: Arc<SessionInfo>,
    pub(crate) channel: String,
    pub(crate) groups: Vec<String>,
    pub(crate) commands: async_channel::Sender<(Command, Reply)>,
}

impl Remote {
    /// Asks the connection to perform `command` and waits for the result.
    ///
    /// Not an `async fn`, for the reason given at [`Core::perform`].
    pub(crate) fn call(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<(), SendError>> + '_ {
        let (reply, result) = async_channel::bounded(1);
        let sent = self.commands.send((command, reply));
        async move {
            sent.await.map_err(|_| SendError::Closed)?;
            result.recv().await.unwrap_or(Err(SendError::Closed))
        }
    }
}

/// The runtime side of one connection: the socket's writer, the layer
/// worker's queue, and the logging of frames.
pub(crate) struct Outlet {
    link: Link,
    layer: LayerQueue,
    turn: Turn,
    log: Arc<LogSettings>,
    /// Where the outcome of the last join or leave batch arrives.
    settled: Option<BatchOutcome>,
}

impl Outlet {
    /// An outlet writing through `link` and queueing layer work for the
    /// connection on `channel`; returns the layer worker to run beside it.
    pub(crate) fn new(
        link: Link,
        turn: Turn,
        log: Arc<LogSettings>,
        layer: Arc<dyn ChannelLayer>,
        channel: Arc<str>,
    ) -> (Self, LayerWorker) {
        let (queue, worker) = layer_worker(layer, channel);
        let outlet = Outlet {
            link,
            layer: queue,
            turn,
            log,
            settled: None,
        };
        (outlet, worker)
    }
}

/// One connection's state, shared by the driver and the [`Context`](crate::Context).
pub(crate) struct Core<M, E> {
    pub(crate) conn: Connection<M, E>,
    pub(crate) info: Arc<SessionInfo>,
    pub(crate) outlet: Outlet,
    pub(crate) pending: VecDeque<Delivery<M, E>>,
}

impl<M: MessageSet, E: MessageSet> Core<M, E> {
    /// Performs a handler's command: the one path for direct and
    /// concurrent handlers.
    ///
    /// Not an `async fn`, which would keep the command twice for its
    /// whole life (this future is part of every handler's that sends,
    /// which is boxed per message). The command takes effect at the first
    /// poll, as a send always has: a send whose future is dropped unpolled
    /// does nothing, on a direct endpoint as on a concurrent one.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn keeps its arguments twice in its future"
    )]
    pub(crate) fn perform(
        &mut self,
        command: Command,
    ) -> impl Future<Output = Result<(), SendError>> + '_ {
        async move {
            let result = match command {
                Command::Send(message) => self.conn.send_serialized(message),
                Command::Group {
                    content,
                    kind,
                    groups,
                    exclude_current,
                } => self
                    .conn
                    .send_group_raw(content, kind, groups.as_deref(), exclude_current),
                Command::Close(code) => {
                    self.conn.close(code, "closed by server");
                    Ok(())
                }
                Command::TopicAccept {
                    kind,
                    envelope,
                    params,
                } => {
                    // Subscriptions wait for the layer's join: boxed, so that
                    // this rare wait does not size the future of every send.
                    let request = TopicRequest {
                        kind,
                        envelope,
                        params,
                        action: TopicAction::Subscribe,
                    };
                    return Box::pin(self.accept_subscription(request)).await;
                }
                Command::TopicRoute {
                    kind,
                    topic,
                    params,
                } => {
                    let joining = self.conn.subscribe_route(kind, &topic, params);
                    let envelope = Envelope {
                        topic,
                        reference: None,
                    };
                    return Box::pin(self.confirm_join(joining, envelope)).await;
                }
                Command::TopicRefuse { envelope, refusal } => {
                    self.conn.refuse_topic(&envelope, refusal);
                    Ok(())
                }
                Command::TopicSend { message, envelope } => {
                    self.conn.send_topic(message, &envelope)
                }
                Command::TopicBroadcast {
                    kind,
                    topic,
                    content,
                } => self.conn.broadcast_topic(kind, &topic, content),
            };
            self.flush().await;
            Ok(result?)
        }
    }

    /// Joins an authorised subscription's group and, once the layer has
    /// performed the join, confirms it to the client (broadcasts sent after
    /// `subscribed` reach it).
    async fn accept_subscription(&mut self, request: TopicRequest) -> Result<(), SendError> {
        let joining = self.conn.accept_subscription(&request);
        self.confirm_join(joining, request.envelope).await
    }

    /// Performs the join a subscription queued (`joining`) and, once the
    /// layer confirms it, tells the core; an error when nothing was joined.
    async fn confirm_join(&mut self, joining: bool, envelope: Envelope) -> Result<(), SendError> {
        self.flush().await;
        if !joining {
            return Err(SendError::NotSubscribed(envelope.topic));
        }
        match self.settled().await {
            Ok(()) => self.conn.subscription_joined(&envelope),
            Err(error) => {
                let topic = &envelope.topic;
                tracing::error!(%error, topic, "could not join the topic's group");
                self.conn
                    .handle_failure(chanx_proto::Failure::LayerUnavailable);
            }
        }
        Ok(())
    }

    /// Performs every output of the core: frames to the writer, layer
    /// commands to the layer worker, deliveries to the handler queue.
    ///
    /// Not an `async fn`, and its rare waits boxed or one byte: this future
    /// is part of the session's and the dispatcher's, which every idle
    /// connection keeps. An async fn kept the layer command being
    /// submitted twice across its wait (64 bytes, `-Zprint-type-sizes`).
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn keeps its arguments twice in its future"
    )]
    pub(crate) fn flush(&mut self) -> impl Future<Output = ()> + '_ {
        async move {
            self.perform_outputs();
            // `let else`, not `while let`: its scrutinee would borrow the
            // core until the end of the body.
            loop {
                let Some(waiting) = self.submit_layer_commands() else {
                    break;
                };
                // The worker is far behind: room made, the rest follow.
                if let Some(settled) = waiting.await {
                    self.outlet.settled = Some(settled);
                }
            }
            if self.conn.is_backlog_high() {
                // A handler sending frame after frame never lets the writer
                // run on its own: hand it a turn before the backlog counts
                // as slow.
                self.outlet.turn.give().await;
                self.take_written();
            }
        }
    }

    /// Performs the core's outputs: frames to the writer, deliveries to
    /// the handler queue.
    fn perform_outputs(&mut self) {
        self.take_written();
        while let Some(output) = self.conn.poll_output() {
            match output {
                Output::Frame(text) => {
                    let key = &self.conn.protocol().options().action_key;
                    let log = &self.outlet.log;
                    // Looked up only when the line will be written.
                    if tracing::enabled!(tracing::Level::DEBUG)
                        && let Some(action) = log.action_of(log.sent, &text, key)
                    {
                        tracing::debug!(sent_action = %action, "Sent websocket json");
                    }
                    if !self.outlet.link.send(WsMessage::Text(text.into())) {
                        self.conn.handle_transport_closed();
                    }
                }
                Output::Ping => {
                    self.outlet.link.send(WsMessage::Ping(Bytes::new()));
                }
                Output::Close {
                    code,
                    reason,
                    discard_queued,
                } => {
                    tracing::info!(code, reason, "Closing websocket");
                    self.outlet.link.close(code, reason, discard_queued);
                }
                Output::Message(message) => self.pending.push_back(Delivery::Message(message)),
                Output::Topic(request) => self.pending.push_back(Delivery::Topic(request)),
                Output::Event(event) => self.pending.push_back(Delivery::Event(event)),
                Output::Gap(group) => {
                    tracing::warn!(group, "messages for the group may have been lost");
                    self.pending.push_back(Delivery::Gap(group));
                }
                Output::LayerRejected(LayerRejection::InvalidEvent(errors)) => {
                    tracing::error!(?errors, "Failed to process channel event");
                }
                Output::LayerRejected(LayerRejection::InvalidGroupContent(error)) => {
                    tracing::error!(%error, "group message with invalid content dropped");
                }
            }
        }
    }

    /// Hands the core's layer commands to the layer worker while it has
    /// room; when it has none, the wait for room with the command that did
    /// not fit, boxed (rare: it must not size the future of every flush).
    #[inline]
    fn submit_layer_commands(
        &mut self,
    ) -> Option<Pin<Box<impl Future<Output = Option<BatchOutcome>> + '_>>> {
        while let Some(command) = self.conn.poll_layer() {
            match self.outlet.layer.try_submit(command) {
                Ok(Some(settled)) => self.outlet.settled = Some(settled),
                Ok(None) => {}
                Err(command) => return Some(Box::pin(self.outlet.layer.submit(command))),
            }
        }
        None
    }

    /// Waits for the outcome of the join or leave batch queued by the last
    /// flush, if any.
    pub(crate) async fn settled(&mut self) -> Result<(), crate::layer::LayerError> {
        match self.outlet.settled.take() {
            Some(result) => result
                .recv()
                .await
                .unwrap_or(Err(crate::layer::LayerError::Closed)),
            None => Ok(()),
        }
    }

    fn take_written(&mut self) {
        let written = self.outlet.link.take_written();
        if written > 0 {
            self.conn.handle_frames_written(written);
        }
    }

    /// Gives back the memory of drained queues, here and in the core; for
    /// a connection about to wait.
    pub(crate) fn release_idle_memory(&mut self) {
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = VecDeque::new();
        }
        self.conn.release_idle_memory();
        // Not while a concurrent handler holds the info (it may be
        // reading the handshake): a later wait releases it.
        if let Some(info) = Arc::get_mut(&mut self.info) {
            info.handshake.release();
        }
    }

    /// Whether the connection is closing or closed.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.conn.state(), State::Closing | State::Closed)
    }

    /// Feeds a frame (or a read failure) from the socket to the core.
    pub(crate) fn on_socket_message(&mut self, message: Result<WsMessage, SocketError>) {
        let now = Instant::now();
        let result = match &message {
            Ok(WsMessage::Text(text)) => {
                let key = &self.conn.protocol().options().action_key;
                let log = &self.outlet.log;
                if tracing::enabled!(tracing::Level::DEBUG)
                    && let Some(action) = log.action_of(log.received, text, key)
                {
                    tracing::debug!(received_action = %action, "Received websocket json");
                }
                self.conn.handle_frame(InFrame::Text(text), now)
            }
            Ok(WsMessage::Binary(bytes)) => self.conn.handle_frame(InFrame::Binary(bytes), now),
            Ok(WsMessage::Ping(_)) => self.conn.handle_frame(InFrame::Ping, now),
            Ok(WsMessage::Pong(_)) => self.conn.handle_frame(InFrame::Pong, now),
            Ok(WsMessage::Close(frame)) => self
                .conn
                .handle_frame(InFrame::Close(frame.as_ref().map(|f| f.0)), now),
            Err(SocketError::TooBig(_)) => {
                self.conn
                    .handle_transport_error(TransportError::MessageTooBig);
                Ok(())
            }
            Err(SocketError::ProtocolViolation(_)) => {
                self.conn
                    .handle_transport_error(TransportError::ProtocolViolation);
                Ok(())
            }
            Err(SocketError::InvalidUtf8(_)) => {
                self.conn
                    .handle_transport_error(TransportError::InvalidUtf8);
                Ok(())
            }
            Err(error) => {
                tracing::debug!(%error, "socket read failed");
                self.conn.handle_transport_closed();
                Ok(())
            }
        };
        if let Err(error) = result {
            // Frames are read only once the connection is open.
            tracing::error!(%error, "bug: the core refused a frame");
        }
    }

    /// Feeds a message from the channel layer to the core.
    pub(crate) fn on_layer_message(&mut self, message: &LayerMessage) {
        if let Err(error) = self.conn.handle_layer_message(message) {
            tracing::error!(%error, "bug: the core refused a layer message");
        }
    }
}
