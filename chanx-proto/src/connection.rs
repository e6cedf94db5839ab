//! The connection state machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::codec::{self, Decoded, Serialized};
use crate::envelope::{ContentKind, GroupEnvelope, LayerMessage, SenderPk};
use crate::error::{EncodeError, ProtoError, SendError, ValidationError};
use crate::limits::{ByteBudget, HeartbeatState, TokenBucket};
use crate::message::{AuthPayload, CoreFrame, Detail, GapPayload, MessageSet, status_text};
use crate::options::Protocol;
use crate::topic::{Envelope, TopicRequest};

mod topics;

use self::topics::Subscription;

/// Close codes the core uses. A runtime never picks one itself: every
/// close comes out of [`Connection::poll_output`] as [`Output::Close`].
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the WebSocket protocol (reserved bits, unknown opcode, ...).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame was not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A frame exceeded the size limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The server failed (channel layer unavailable, application error
    /// outside a handler).
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The client does not read its frames fast enough (outbound queue full).
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The peer stopped answering heartbeats.
    pub const HEARTBEAT_TIMEOUT: u16 = 4408;
    /// Authentication failed: the code is `AUTH_BASE + status` (4401, 4403, ...).
    pub const AUTH_BASE: u16 = 4000;
}

/// How many recent multi-group messages a receiver remembers to drop repeats.
const SEEN_MULTI_LIMIT: usize = 64;

/// A frame received from the client, as the transport saw it.
#[derive(Clone, Copy, Debug)]
pub enum InFrame<'a> {
    /// A text frame.
    Text(&'a str),
    /// A binary frame (always answered with a `frame_type` error).
    Binary(&'a [u8]),
    /// A WebSocket ping from the client (the transport answers it).
    Ping,
    /// A WebSocket pong (answer to a heartbeat ping).
    Pong,
    /// The client's close frame.
    Close(Option<u16>),
}

/// How the application's handler of a message ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// It finished normally.
    Completed,
    /// It failed (returned an error or panicked); the client gets
    /// `{"action": "error", "payload": {"detail": "Failed to process message"}}`.
    Failed,
}

/// A failure the transport reports instead of a frame
/// ([`Connection::handle_transport_error`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// The peer sent a frame or message larger than the transport accepts
    /// (close 1009).
    MessageTooBig,
    /// The peer broke the WebSocket protocol (close 1002).
    ProtocolViolation,
    /// A text frame was not valid UTF-8 (close 1007).
    InvalidUtf8,
}

/// A failure on the server's side that ends the connection with 1011
/// ([`Connection::handle_failure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The channel layer could not register the connection's channel or
    /// join its groups.
    LayerUnavailable,
    /// The channel layer dropped the connection's channel.
    LayerClosed,
    /// The application failed outside a message handler (e.g. its
    /// post-authentication hook).
    Application,
}

impl Failure {
    fn reason(self) -> &'static str {
        match self {
            Failure::LayerUnavailable => "channel layer unavailable",
            Failure::LayerClosed => "channel layer closed",
            Failure::Application => "internal error",
        }
    }
}

/// The result of authenticating the upgrade request.
#[derive(Clone, Debug)]
pub enum AuthOutcome {
    /// The connection may open and join `groups`.
    Accepted {
        /// The user's primary key (`None` for an anonymous user); compared
        /// with group senders' to compute `is_mine`.
        user_pk: Option<Value>,
        /// Groups to join, in order (duplicates are joined once).
        groups: Vec<String>,
    },
    /// The connection is refused with an HTTP-like status (401, 403, 404, 500).
    Rejected {
        /// The status code; the close code is 4000 + status.
        status: u16,
        /// The `detail` text; for 500 it is always `Internal server error`.
        detail: String,
    },
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for [`Connection::handle_auth`].
    Handshake,
    /// Authenticated; messages flow.
    Open,
    /// A close frame was emitted; waiting for the transport to end.
    Closing,
    /// The transport ended.
    Closed,
}

/// Something for the socket or the application, drained with
/// [`Connection::poll_output`], in order.
#[derive(Debug)]
pub enum Output<M, E> {
    /// Send this text frame to the client.
    Frame(String),
    /// Send a WebSocket ping (heartbeat).
    Ping,
    /// Send a close frame with this code and reason, then stop reading.
    Close {
        /// The close code (see [`close_code`]).
        code: u16,
        /// A short reason.
        reason: &'static str,
        /// Drop the frames still queued for the socket instead of sending
        /// them first: the peer is not reading them (close 4008).
        discard_queued: bool,
    },
    /// Give this message to the application's handler, then call
    /// [`Connection::message_handled`].
    Message(M),
    /// Give this channel event to the application's handler, then call
    /// [`Connection::event_handled`].
    Event(E),
    /// The channel layer delivered something this endpoint cannot take;
    /// nothing reaches the client (chanx logs it). Report it to the
    /// operator.
    LayerRejected(LayerRejection),
    /// The channel layer may have lost messages for this group of the
    /// connection: give it to the application's gap hook (the client got
    /// a `group_gap` frame before it when the endpoint sends those).
    Gap(String),
    /// A client's request on a topic: a subscription to authorise
    /// ([`Connection::accept_subscription`] or
    /// [`Connection::refuse_topic`]), an unsubscription that happened (run
    /// the topic's hook), or a message for the topic's handler (then
    /// [`Connection::topic_message_handled`] with the request's envelope).
    Topic(TopicRequest),
}

/// Why a message from the channel layer was not delivered.
#[derive(Debug)]
pub enum LayerRejection {
    /// A channel event did not match the endpoint's event set: every
    /// problem, in the same shape as a client's validation errors.
    InvalidEvent(Vec<ValidationError>),
    /// A group message's content was not a JSON object (a foreign or
    /// corrupt publisher).
    InvalidGroupContent(serde_json::Error),
}

/// Work for the channel layer, drained with [`Connection::poll_layer`],
/// in order. Kept apart from [`Output`] so that a slow layer never holds up
/// the socket: perform these without blocking the writer.
#[derive(Debug, Clone)]
pub enum LayerCommand {
    /// Add this connection's channel to every group, as one batch; the
    /// groups are distinct.
    Join(Vec<String>),
    /// Remove this connection's channel from every group, as one batch.
    Leave(Vec<String>),
    /// Publish `message` to `group`.
    GroupSend {
        /// The target group.
        group: String,
        /// The envelope, shared by every target group and receiver.
        message: Arc<LayerMessage>,
    },
}

/// One WebSocket connection's protocol state, with no I/O.
///
/// Feed it inputs (`handle_*`, `send_*`, `close`), then drain
/// [`poll_output`](Self::poll_output) until it returns `None` and arm a timer
/// for [`poll_timeout`](Self::poll_timeout). See the crate docs for the
/// complete call order.
#[derive(Debug)]
pub struct Connection<M, E> {
    protocol: Arc<Protocol<M, E>>,
    /// Shared with the runtime (its layer calls name the channel too).
    channel: Arc<str>,
    state: State,
    /// The user's primary key as group messages carry it (`None` before
    /// authentication): serialized once, and 40 bytes instead of a
    /// `Value`'s 72 and a key string's 24 in every connection.
    user_pk: Option<SenderPk>,
    groups: Vec<String>,
    outputs: VecDeque<Output<M, E>>,
    layer: VecDeque<LayerCommand>,
    /// Sequence number of the next message sent to several groups.
    next_seq: u64,
    /// Recent multi-group messages received, `(sender channel, seq)`, to
    /// deliver each once.
    seen_multi: VecDeque<(String, u64)>,
    /// Sizes of the frames emitted and not yet reported written, oldest first.
    in_flight: VecDeque<usize>,
    /// Their total size in bytes.
    outbound_bytes: usize,
    /// The endpoint's own messages given to a handler and not yet
    /// reported handled: a count, since their reports carry nothing and
    /// may come in any order (a queue of them cost an allocation per burst
    /// and a search per message).
    pending_messages: usize,
    /// The envelopes of topic messages given to a handler and not yet
    /// reported handled (in any order); their error and completion frames
    /// carry them.
    pending_topic_messages: Vec<Envelope>,
    /// Topic subscriptions by topic name. Ordered maps: 24 bytes each in
    /// every connection rather than a hash map's 48, and a connection's
    /// few subscriptions are found by comparing names faster than by
    /// hashing one.
    subscriptions: BTreeMap<String, Subscription>,
    /// Topics whose subscription waits for the runtime's authorisation; an
    /// unsubscribe meanwhile withdraws the request.
    requested: BTreeSet<String>,
    pending_events: usize,
    /// The authentication frame waits for the join batch to be performed.
    auth_frame_after_join: bool,
    rate: Option<TokenBucket>,
    input_budget: Option<ByteBudget>,
    heartbeat: Option<HeartbeatState>,
}

impl<M: MessageSet, E: MessageSet> Connection<M, E> {
    /// A new connection named `channel` (unique across every process that
    /// shares the channel layer), waiting for its authentication outcome.
    pub fn new(protocol: Arc<Protocol<M, E>>, channel: impl Into<Arc<str>>, now: Instant) -> Self {
        let rate = protocol
            .options
            .rate_limit
            .map(|r| TokenBucket::new(r, now));
        let input_budget = protocol
            .options
            .input_budget
            .map(|budget| ByteBudget::new(budget, now));
        Connection {
            protocol,
            channel: channel.into(),
            state: State::Handshake,
            user_pk: None,
            groups: Vec::new(),
            outputs: VecDeque::new(),
            layer: VecDeque::new(),
            next_seq: 0,
            seen_multi: VecDeque::new(),
            in_flight: VecDeque::new(),
            outbound_bytes: 0,
            pending_messages: 0,
            pending_topic_messages: Vec::new(),
            subscriptions: BTreeMap::new(),
            requested: BTreeSet::new(),
            pending_events: 0,
            auth_frame_after_join: false,
            rate,
            input_budget,
            heartbeat: None,
        }
    }

    /// This connection's channel name.
    pub fn channel_name(&self) -> &str {
        &self.channel
    }

    /// Gives back the memory of the queues that are drained: call it when
    /// the connection goes idle (nothing to read, nothing to do), so that a
    /// burst's queues do not stay allocated with every waiting connection.
    /// Cheap when there is nothing to give back; a queue used again grows
    /// again.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::Instant;
    /// # use chanx_proto::{AuthOutcome, Connection, NoEvent, Options, Protocol};
    /// # #[derive(Debug, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
    /// # #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    /// # enum Incoming { Echo(String) }
    /// let protocol = Arc::new(Protocol::<Incoming, NoEvent>::new(Options::default())?);
    /// let mut conn = Connection::new(protocol, "specific.abc", Instant::now());
    /// conn.handle_auth(AuthOutcome::Accepted { user_pk: None, groups: vec![] }, Instant::now())?;
    /// while conn.poll_output().is_some() {}
    /// conn.release_idle_memory();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release_idle_memory(&mut self) {
        fn release<T>(queue: &mut VecDeque<T>) {
            if queue.is_empty() && queue.capacity() > 0 {
                *queue = VecDeque::new();
            }
        }
        release(&mut self.outputs);
        release(&mut self.layer);
        release(&mut self.in_flight);
        if self.pending_topic_messages.is_empty() && self.pending_topic_messages.capacity() > 0 {
            self.pending_topic_messages = Vec::new();
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The groups joined and not yet left.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The authenticated user's primary key as compact JSON, if any.
    pub fn user_pk(&self) -> Option<&RawValue> {
        self.user_pk.as_ref().map(SenderPk::json)
    }

    /// The endpoint's protocol.
    pub fn protocol(&self) -> &Arc<Protocol<M, E>> {
        &self.protocol
    }

    /// Applies the authentication outcome: joins the groups (one
    /// [`LayerCommand::Join`]) and sends the `authentication` frame (when
    /// enabled) once [`handle_groups_joined`](Self::handle_groups_joined)
    /// says the join is done — at once when there are no groups — or
    /// closes with 4000 + status. Ignored once the connection is closing
    /// (e.g. a shutdown arrived while authenticating).
    pub fn handle_auth(&mut self, outcome: AuthOutcome, now: Instant) -> Result<(), ProtoError> {
        match self.state {
            State::Handshake => {}
            State::Open => return Err(ProtoError::AlreadyAuthenticated),
            State::Closing | State::Closed => return Ok(()),
        }
        let send_frame = self.protocol.options.send_authentication_message;
        match outcome {
            AuthOutcome::Accepted { user_pk, groups } => {
                self.user_pk = user_pk.as_ref().map(SenderPk::new);
                self.state = State::Open;
                for group in groups {
                    if !self.groups.contains(&group) {
                        self.groups.push(group);
                    }
                }
                if self.groups.is_empty() {
                    if send_frame {
                        self.emit_auth_frame(200, "OK");
                    }
                } else {
                    // A client that sees the authentication frame may rely
                    // on its groups: the frame waits for the join.
                    self.auth_frame_after_join = send_frame;
                    self.layer
                        .push_back(LayerCommand::Join(self.groups.clone()));
                }
                self.heartbeat = self
                    .protocol
                    .options
                    .heartbeat
                    .map(|h| HeartbeatState::new(h, now));
            }
            AuthOutcome::Rejected { status, detail } => {
                // Close codes stop at 4999: a status outside 100..=999 is a 500.
                let status = if (100..1000).contains(&status) {
                    status
                } else {
                    500
                };
                let detail = if status == 500 {
                    "Internal server error"
                } else {
                    detail.as_str()
                };
                if send_frame {
                    self.emit_auth_frame(status, detail);
                }
                let code = close_code::AUTH_BASE + status;
                self.begin_close(code, status_text(status));
            }
        }
        Ok(())
    }

    fn emit_auth_frame(&mut self, status: u16, detail: &str) {
        self.emit_core(&CoreFrame {
            action: "authentication",
            payload: AuthPayload {
                status_code: status,
                status_text: status_text(status),
                data: Detail { detail },
            },
        });
    }

    /// The runtime performed the [`LayerCommand::Join`] batch: the groups
    /// are effective, the `authentication` frame goes out. (A join that
    /// failed is [`handle_failure`](Self::handle_failure) with
    /// [`Failure::LayerUnavailable`].)
    pub fn handle_groups_joined(&mut self) {
        if std::mem::take(&mut self.auth_frame_after_join) && self.state == State::Open {
            self.emit_auth_frame(200, "OK");
        }
    }

    /// Handles one frame from the client. Frames that arrive after the
    /// close frame went out are ignored, as RFC 6455 asks.
    pub fn handle_frame(&mut self, frame: InFrame<'_>, now: Instant) -> Result<(), ProtoError> {
        match self.state {
            State::Open => {}
            State::Handshake => return Err(ProtoError::NotOpen),
            State::Closing | State::Closed => return Ok(()),
        }
        if let Some(h) = &mut self.heartbeat {
            h.on_activity();
        }
        let max = self.protocol.options.max_frame_size;
        let size = match &frame {
            InFrame::Text(text) => text.len(),
            InFrame::Binary(bytes) => bytes.len(),
            InFrame::Ping | InFrame::Pong | InFrame::Close(_) => 0,
        };
        let text = match frame {
            InFrame::Ping | InFrame::Pong => return Ok(()),
            InFrame::Close(_) => {
                self.handle_transport_closed();
                return Ok(());
            }
            InFrame::Binary(bytes) if bytes.len() > max => {
                self.handle_transport_error(TransportError::MessageTooBig);
                return Ok(());
            }
            InFrame::Text(text) if text.len() > max => {
                self.handle_transport_error(TransportError::MessageTooBig);
                return Ok(());
            }
            InFrame::Binary(_) => None,
            InFrame::Text(text) => Some(text),
        };

        if let Some(budget) = &mut self.input_budget
            && !budget.try_spend(now, size)
        {
            let limit = budget.bytes_per_second();
            self.reject(
                vec![ValidationError::frame(
                    "rate_limited",
                    format!("Input budget exceeded: at most {limit} bytes per second"),
                )],
                None,
            );
            return Ok(());
        }
        if let Some(bucket) = &mut self.rate
            && !bucket.try_take(now)
        {
            let limit = bucket.per_second();
            self.reject(
                vec![ValidationError::frame(
                    "rate_limited",
                    format!("Rate limit exceeded: at most {limit} messages per second"),
                )],
                None,
            );
            return Ok(());
        }
        let Some(text) = text else {
            self.reject(
                vec![ValidationError::frame(
                    "frame_type",
                    "Binary frames are not accepted",
                )],
                None,
            );
            return Ok(());
        };
        // A cheap test first: a topic frame names `topic`, possibly with an
        // escape in the key.
        let may_name_a_topic = || text.contains("\"topic\"") || text.contains('\\');
        if !self.protocol.topics.is_empty() && may_name_a_topic() && self.handle_topic_frame(text) {
            return Ok(());
        }
        let protocol = &self.protocol;
        match codec::decode::<M>(
            text,
            &protocol.incoming,
            protocol.options.camelize,
            protocol.builtin_ping,
        ) {
            Decoded::Message(message) => {
                self.pending_messages += 1;
                self.outputs.push_back(Output::Message(message));
            }
            Decoded::BuiltinPing => {
                self.emit_core(&CoreFrame {
                    action: "pong",
                    payload: (),
                });
                self.complete("complete", None);
            }
            Decoded::Invalid(errors) => self.reject(errors, None),
        }
        Ok(())
    }

    /// The transport failed to deliver a frame because of the peer: closes
    /// with the matching code (1009, 1002 or 1007). A plain end of the
    /// socket is [`handle_transport_closed`](Self::handle_transport_closed).
    pub fn handle_transport_error(&mut self, error: TransportError) {
        let (code, reason) = match error {
            TransportError::MessageTooBig => (close_code::MESSAGE_TOO_BIG, "message too big"),
            TransportError::ProtocolViolation => (close_code::PROTOCOL_ERROR, "protocol error"),
            TransportError::InvalidUtf8 => (close_code::INVALID_PAYLOAD, "invalid utf-8"),
        };
        self.begin_close(code, reason);
    }

    /// The server failed in a way that ends the connection: closes with
    /// 1011 and leaves the joined groups.
    pub fn handle_failure(&mut self, failure: Failure) {
        self.begin_close(close_code::INTERNAL_ERROR, failure.reason());
    }

    /// The runtime stopped reading from the socket (its handlers are busy,
    /// say). Until [`handle_reads_resumed`](Self::handle_reads_resumed) the
    /// heartbeat keeps pinging but never counts the peer's silence: its
    /// answers may be waiting unread.
    pub fn handle_reads_paused(&mut self) {
        if let Some(h) = &mut self.heartbeat {
            h.pause_reads();
        }
    }

    /// The runtime reads again; the peer gets a fresh heartbeat interval.
    pub fn handle_reads_resumed(&mut self) {
        if let Some(h) = &mut self.heartbeat {
            h.resume_reads();
        }
    }

    /// Sends the error frame for an invalid incoming frame, then `complete`,
    /// with the topic envelope when the frame named a topic.
    fn reject(&mut self, errors: Vec<ValidationError>, envelope: Option<&Envelope>) {
        let frame = CoreFrame {
            action: "error",
            payload: errors,
        };
        self.emit_core_on(&frame, envelope);
        self.complete("complete", envelope);
    }

    /// `complete` or `group_complete`, when completion frames are on.
    fn complete(&mut self, action: &'static str, envelope: Option<&Envelope>) {
        if self.protocol.options.send_completion {
            let frame = CoreFrame {
                action,
                payload: (),
            };
            self.emit_core_on(&frame, envelope);
        }
    }

    /// Reports that the handler of a delivered [`Output::Message`] finished
    /// (in any order: the completion frames carry nothing of the message).
    /// [`Handled::Failed`] sends `{"detail": "Failed to process message"}`.
    /// Either way `complete` follows when completion frames are on (nothing
    /// is sent once the connection is closing).
    pub fn message_handled(&mut self, handled: Handled) -> Result<(), ProtoError> {
        // One of the endpoint's own messages (topic messages are reported
        // with `topic_message_handled`).
        if self.pending_messages == 0 {
            return Err(ProtoError::NothingPending("message"));
        }
        self.pending_messages -= 1;
        self.finish_message(handled, None);
        Ok(())
    }

    /// Sends what follows a handled message: the failure's error frame, then
    /// `complete`, with the topic envelope when it was a topic's.
    pub(super) fn finish_message(&mut self, handled: Handled, envelope: Option<&Envelope>) {
        if handled == Handled::Failed {
            let frame = CoreFrame {
                action: "error",
                payload: Detail {
                    detail: "Failed to process message",
                },
            };
            self.emit_core_on(&frame, envelope);
        }
        self.complete("complete", envelope);
    }

    /// Reports that the handler of the oldest delivered [`Output::Event`]
    /// finished (failures are only logged by the driver, never sent).
    pub fn event_handled(&mut self) -> Result<(), ProtoError> {
        if self.pending_events == 0 {
            return Err(ProtoError::NothingPending("event"));
        }
        self.pending_events -= 1;
        self.complete("complete", None);
        Ok(())
    }

    /// Handles a message the channel layer delivered to this connection.
    ///
    /// A group message becomes a frame with `is_mine`/`is_current` (unless
    /// it is this connection's own and excluded), followed by
    /// `group_complete`. A channel event becomes [`Output::Event`]; an event
    /// this endpoint cannot decode queues `complete` (as chanx does) and
    /// [`Output::LayerRejected`]. Ignored once the connection is closing.
    pub fn handle_layer_message(&mut self, message: &LayerMessage) -> Result<(), ProtoError> {
        match self.state {
            State::Open => {}
            State::Handshake => return Err(ProtoError::NotOpen),
            State::Closing | State::Closed => return Ok(()),
        }
        match message {
            LayerMessage::Group(group) => {
                let is_current = group.from_channel() == &*self.channel;
                if is_current && group.exclude_current() {
                    return Ok(());
                }
                if let Some(seq) = group.seq() {
                    let key = (group.from_channel().to_owned(), seq);
                    if self.seen_multi.contains(&key) {
                        return Ok(());
                    }
                    if self.seen_multi.len() == SEEN_MULTI_LIMIT {
                        self.seen_multi.pop_front();
                    }
                    self.seen_multi.push_back(key);
                }
                let is_mine = group.is_mine(self.user_pk.as_ref().and_then(SenderPk::key));
                match group.stamp(is_mine, is_current, self.protocol.options.camelize) {
                    Ok(frame) => {
                        self.push_frame(frame);
                        self.complete("group_complete", None);
                    }
                    Err(error) => self.outputs.push_back(Output::LayerRejected(
                        LayerRejection::InvalidGroupContent(error),
                    )),
                }
            }
            LayerMessage::Topic(broadcast) => {
                let subscribed = self.subscriptions.get(broadcast.topic());
                if let Some(subscription) = subscribed.filter(|s| s.joined)
                    && let Ok(text) =
                        broadcast.text_for(subscription.bare, self.protocol.options.camelize)
                {
                    self.push_frame(text.to_owned());
                }
            }
            LayerMessage::Gap(notice) => {
                let group = notice.group();
                if !self.groups.iter().any(|g| g == group) {
                    return Ok(());
                }
                if self.protocol.options.send_gap_frames {
                    self.emit_core(&CoreFrame {
                        action: "group_gap",
                        payload: GapPayload { group },
                    });
                }
                self.outputs.push_back(Output::Gap(group.to_owned()));
            }
            LayerMessage::Event(event) => match serde_json::from_str::<E>(event.event_data()) {
                Ok(e) => {
                    self.pending_events += 1;
                    self.outputs.push_back(Output::Event(e));
                }
                Err(_) => {
                    self.complete("complete", None);
                    let errors = match codec::decode::<E>(
                        event.event_data(),
                        &self.protocol.events,
                        false,
                        false,
                    ) {
                        Decoded::Invalid(errors) => errors,
                        _ => Vec::new(),
                    };
                    self.outputs
                        .push_back(Output::LayerRejected(LayerRejection::InvalidEvent(errors)));
                }
            },
        }
        Ok(())
    }

    /// Sends a message to this connection's client.
    pub fn send_message<T: Serialize + ?Sized>(&mut self, message: &T) -> Result<(), SendError> {
        self.check_can_send()?;
        let frame = codec::encode(message, self.protocol.options.camelize)?;
        self.push_frame(frame);
        Ok(())
    }

    /// Sends a message serialized ahead of time, without copying it.
    pub fn send_serialized(&mut self, message: Serialized) -> Result<(), SendError> {
        self.check_can_send()?;
        let frame = message.into_frame(self.protocol.options.camelize)?;
        self.push_frame(frame);
        Ok(())
    }

    /// Sends a typed group message to `groups` (this connection's own groups
    /// when `None`). With `exclude_current` the sending connection does not
    /// receive its own copy.
    pub fn send_group_message<T: Serialize + ?Sized>(
        &mut self,
        message: &T,
        groups: Option<&[String]>,
        exclude_current: bool,
    ) -> Result<(), SendError> {
        let content = serde_json::value::to_raw_value(message)?;
        self.send_group_raw(content, ContentKind::Message, groups, exclude_current)
    }

    /// Sends a raw JSON object to groups, like [`send_group_message`](Self::send_group_message).
    pub fn send_group_json(
        &mut self,
        content: &Map<String, Value>,
        groups: Option<&[String]>,
        exclude_current: bool,
    ) -> Result<(), SendError> {
        let content = serde_json::value::to_raw_value(content)?;
        self.send_group_raw(content, ContentKind::Json, groups, exclude_current)
    }

    /// Sends already-serialized content (a JSON object) to groups, as
    /// [`send_group_message`](Self::send_group_message) (kind `message`) or
    /// [`send_group_json`](Self::send_group_json) (kind `json`) would.
    pub fn send_group_raw(
        &mut self,
        content: Box<RawValue>,
        kind: ContentKind,
        groups: Option<&[String]>,
        exclude_current: bool,
    ) -> Result<(), SendError> {
        self.check_can_send()?;
        let targets = groups.unwrap_or(&self.groups);
        let mut envelope = GroupEnvelope::from_sender(
            content,
            kind,
            exclude_current,
            &*self.channel,
            self.user_pk.as_ref(),
        )
        .map_err(|_| EncodeError::NotAnObject)?;
        if targets.len() > 1 {
            envelope = envelope.with_seq(self.next_seq);
            self.next_seq += 1;
        }
        let message = Arc::new(LayerMessage::Group(envelope));
        for group in targets {
            self.layer.push_back(LayerCommand::GroupSend {
                group: group.clone(),
                message: Arc::clone(&message),
            });
        }
        Ok(())
    }

    fn check_can_send(&self) -> Result<(), SendError> {
        match self.state {
            State::Open => Ok(()),
            State::Handshake => Err(ProtoError::NotOpen.into()),
            State::Closing | State::Closed => Err(SendError::Closed),
        }
    }

    /// Closes the connection with `code`: a close frame, then every joined
    /// group is left. Does nothing if already closing.
    pub fn close(&mut self, code: u16, reason: &'static str) {
        self.begin_close(code, reason);
    }

    /// Closes with 1001 for a server shutdown.
    pub fn shutdown(&mut self) {
        self.begin_close(close_code::GOING_AWAY, "server shutdown");
    }

    /// The transport ended (the peer closed or the socket failed): leaves
    /// every joined group and moves to [`State::Closed`].
    pub fn handle_transport_closed(&mut self) {
        self.leave_all();
        self.state = State::Closed;
    }

    /// `count` frames the runtime had taken from [`Output::Frame`] reached
    /// the socket.
    pub fn handle_frames_written(&mut self, count: usize) {
        for _ in 0..count {
            match self.in_flight.pop_front() {
                Some(size) => self.outbound_bytes -= size,
                None => break,
            }
        }
    }

    /// Frames emitted and not yet reported written.
    pub fn outbound_backlog(&self) -> usize {
        self.in_flight.len()
    }

    /// Bytes of the frames emitted and not yet reported written.
    pub fn outbound_backlog_bytes(&self) -> usize {
        self.outbound_bytes
    }

    /// Half the outbound bound (frames or bytes) is in use: a runtime whose
    /// writer shares a task or thread with its reader should let the
    /// writer drain before it feeds more input, so that only a peer that
    /// really does not read reaches the bound (close 4008).
    pub fn is_backlog_high(&self) -> bool {
        let options = &self.protocol.options;
        self.in_flight.len().saturating_mul(2) >= options.max_outbound_frames
            || self.outbound_bytes.saturating_mul(2) >= options.max_outbound_bytes
    }

    /// Advances time: sends heartbeat pings and closes a silent peer.
    /// Calling it early, or more than once for the same instant, is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Open {
            return;
        }
        let Some(h) = &mut self.heartbeat else { return };
        match h.on_timeout(now) {
            crate::limits::Beat::Idle => {}
            crate::limits::Beat::Ping => self.outputs.push_back(Output::Ping),
            crate::limits::Beat::Dead => {
                self.begin_close(close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout")
            }
        }
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != State::Open {
            return None;
        }
        let heartbeat = self.heartbeat.as_ref().map(HeartbeatState::deadline);
        match (heartbeat, self.input_paused_until()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// While `Some(t)`, the connection is over its
    /// [input budget](crate::Options::input_budget): do not read from the
    /// socket before `t` (report it with
    /// [`handle_reads_paused`](Self::handle_reads_paused), so the heartbeat
    /// does not blame the peer), and [`poll_timeout`](Self::poll_timeout)
    /// includes `t`. A frame read anyway is refused with `rate_limited`.
    pub fn input_paused_until(&self) -> Option<Instant> {
        self.input_budget
            .as_ref()
            .and_then(ByteBudget::paid_back_at)
    }

    /// The next thing for the socket or the application; call until `None`
    /// after every input.
    pub fn poll_output(&mut self) -> Option<Output<M, E>> {
        self.outputs.pop_front()
    }

    /// The next command for the channel layer; call until `None` after
    /// every input.
    pub fn poll_layer(&mut self) -> Option<LayerCommand> {
        self.layer.pop_front()
    }

    fn is_live(&self) -> bool {
        matches!(self.state, State::Open | State::Handshake)
    }

    /// Queues a frame the core builds itself. Those types always serialize;
    /// should one ever fail, the connection closes rather than send a
    /// broken frame.
    fn emit_core<T: Serialize>(&mut self, frame: &T) {
        self.emit_core_on(frame, None);
    }

    fn push_frame(&mut self, frame: String) {
        if !self.is_live() {
            return;
        }
        let options = &self.protocol.options;
        let bytes = self.outbound_bytes.saturating_add(frame.len());
        if self.in_flight.len() >= options.max_outbound_frames
            || (bytes > options.max_outbound_bytes && !self.in_flight.is_empty())
        {
            self.close_with(close_code::SLOW_CONSUMER, "slow consumer", true);
            return;
        }
        self.in_flight.push_back(frame.len());
        self.outbound_bytes = bytes;
        self.outputs.push_back(Output::Frame(frame));
    }

    fn begin_close(&mut self, code: u16, reason: &'static str) {
        self.close_with(code, reason, false);
    }

    fn close_with(&mut self, code: u16, reason: &'static str, discard_queued: bool) {
        if !self.is_live() {
            return;
        }
        self.state = State::Closing;
        self.outputs.push_back(Output::Close {
            code,
            reason,
            discard_queued,
        });
        self.leave_all();
    }

    fn leave_all(&mut self) {
        let mut groups = std::mem::take(&mut self.groups);
        for subscription in self.subscriptions.values_mut() {
            // A subscription still joining is left too: its join may be
            // performed before this leave. Each is left once, though the
            // map stays for the runtime's unsubscribe hooks; two topics may
            // share a group.
            subscription.joined = false;
            if !std::mem::replace(&mut subscription.left, true)
                && !groups.contains(&subscription.group)
            {
                groups.push(subscription.group.clone());
            }
        }
        if !groups.is_empty() {
            self.layer.push_back(LayerCommand::Leave(groups));
        }
    }

    /// `emit_core`, with a topic envelope when given.
    fn emit_core_on<T: Serialize>(&mut self, frame: &T, envelope: Option<&Envelope>) {
        match (
            codec::encode(frame, self.protocol.options.camelize),
            envelope,
        ) {
            (Ok(text), None) => self.push_frame(text),
            (Ok(text), Some(envelope)) => self.push_frame(envelope.stamp(&text, None)),
            (Err(_), _) => self.handle_failure(Failure::Application),
        }
    }
}
