//! The connection state machine.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::codec::{self, Decoded};
use crate::envelope::{ContentKind, GroupEnvelope, LayerMessage, user_key};
use crate::error::{ProtoError, ValidationError};
use crate::limits::{HeartbeatState, TokenBucket};
use crate::message::{AuthPayload, CoreFrame, Detail, MessageSet, status_text};
use crate::options::Protocol;

/// Close codes the core uses.
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame exceeded the size limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
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

/// Something the driver must do, drained with [`Connection::poll_output`].
#[derive(Debug)]
pub enum Output<M, E> {
    /// Send this text frame to the client.
    Frame(String),
    /// Send a WebSocket ping (heartbeat).
    Ping,
    /// Send a close frame with this code and reason, then stop reading.
    Close {
        /// The close code.
        code: u16,
        /// A short reason.
        reason: &'static str,
    },
    /// Add this connection's channel to the group.
    JoinGroup(String),
    /// Remove this connection's channel from the group.
    LeaveGroup(String),
    /// Publish `message` to `group` through the channel layer.
    GroupSend {
        /// The target group.
        group: String,
        /// The envelope, shared by every target group and receiver.
        message: Arc<LayerMessage>,
    },
    /// Give this message to the application's handler, then call
    /// [`Connection::message_handled`].
    Message(M),
    /// Give this channel event to the application's handler, then call
    /// [`Connection::event_handled`].
    Event(E),
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
    channel: String,
    state: State,
    user_pk: Option<Value>,
    user_key: Option<String>,
    groups: Vec<String>,
    outputs: VecDeque<Output<M, E>>,
    /// Sequence number of the next message sent to several groups.
    next_seq: u64,
    /// Recent multi-group messages received, `(sender channel, seq)`, to
    /// deliver each once.
    seen_multi: VecDeque<(String, u64)>,
    /// Sizes of the frames emitted and not yet reported written, oldest first.
    in_flight: VecDeque<usize>,
    /// Their total size in bytes.
    outbound_bytes: usize,
    pending_messages: usize,
    pending_events: usize,
    rate: Option<TokenBucket>,
    heartbeat: Option<HeartbeatState>,
}

impl<M: MessageSet, E: MessageSet> Connection<M, E> {
    /// A new connection named `channel` (unique across every process that
    /// shares the channel layer), waiting for its authentication outcome.
    pub fn new(protocol: Arc<Protocol<M, E>>, channel: impl Into<String>, now: Instant) -> Self {
        let rate = protocol
            .options
            .rate_limit
            .map(|r| TokenBucket::new(r, now));
        Connection {
            protocol,
            channel: channel.into(),
            state: State::Handshake,
            user_pk: None,
            user_key: None,
            groups: Vec::new(),
            outputs: VecDeque::new(),
            next_seq: 0,
            seen_multi: VecDeque::new(),
            in_flight: VecDeque::new(),
            outbound_bytes: 0,
            pending_messages: 0,
            pending_events: 0,
            rate,
            heartbeat: None,
        }
    }

    /// This connection's channel name.
    pub fn channel_name(&self) -> &str {
        &self.channel
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The groups joined and not yet left.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The authenticated user's primary key, if any.
    pub fn user_pk(&self) -> Option<&Value> {
        self.user_pk.as_ref()
    }

    /// The endpoint's protocol.
    pub fn protocol(&self) -> &Arc<Protocol<M, E>> {
        &self.protocol
    }

    /// Applies the authentication outcome: sends the `authentication` frame
    /// (when enabled), then joins the groups, or closes with 4000 + status.
    pub fn handle_auth(&mut self, outcome: AuthOutcome, now: Instant) -> Result<(), ProtoError> {
        match self.state {
            State::Handshake => {}
            State::Open => return Err(ProtoError::AlreadyAuthenticated),
            State::Closing | State::Closed => return Err(ProtoError::Closed),
        }
        let send_frame = self.protocol.options.send_authentication_message;
        match outcome {
            AuthOutcome::Accepted { user_pk, groups } => {
                if send_frame {
                    self.emit_auth_frame(200, "OK")?;
                }
                self.user_key = user_pk.as_ref().and_then(user_key);
                self.user_pk = user_pk;
                self.state = State::Open;
                for group in groups {
                    if !self.groups.contains(&group) {
                        self.groups.push(group.clone());
                        self.outputs.push_back(Output::JoinGroup(group));
                    }
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
                    self.emit_auth_frame(status, detail)?;
                }
                let code = close_code::AUTH_BASE + status;
                self.begin_close(code, status_text(status));
            }
        }
        Ok(())
    }

    fn emit_auth_frame(&mut self, status: u16, detail: &str) -> Result<(), ProtoError> {
        self.emit(&CoreFrame {
            action: "authentication",
            payload: AuthPayload {
                status_code: status,
                status_text: status_text(status),
                data: Detail { detail },
            },
        })
    }

    /// Handles one frame from the client.
    pub fn handle_frame(&mut self, frame: InFrame<'_>, now: Instant) -> Result<(), ProtoError> {
        match self.state {
            State::Open => {}
            State::Handshake => return Err(ProtoError::NotOpen),
            State::Closing | State::Closed => return Err(ProtoError::Closed),
        }
        if let Some(h) = &mut self.heartbeat {
            h.on_activity();
        }
        let text = match frame {
            InFrame::Ping | InFrame::Pong => return Ok(()),
            InFrame::Close(_) => {
                self.handle_transport_closed();
                return Ok(());
            }
            InFrame::Binary(bytes) if bytes.len() > self.protocol.options.max_frame_size => {
                self.begin_close(close_code::MESSAGE_TOO_BIG, "message too big");
                return Ok(());
            }
            InFrame::Text(text) if text.len() > self.protocol.options.max_frame_size => {
                self.begin_close(close_code::MESSAGE_TOO_BIG, "message too big");
                return Ok(());
            }
            InFrame::Binary(_) => None,
            InFrame::Text(text) => Some(text),
        };
        if let Some(bucket) = &mut self.rate
            && !bucket.try_take(now)
        {
            let limit = bucket.per_second();
            return self.reject(vec![ValidationError::frame(
                "rate_limited",
                format!("Rate limit exceeded: at most {limit} messages per second"),
            )]);
        }
        let Some(text) = text else {
            return self.reject(vec![ValidationError::frame(
                "frame_type",
                "Binary frames are not accepted",
            )]);
        };
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
                Ok(())
            }
            Decoded::BuiltinPing => {
                self.emit(&CoreFrame {
                    action: "pong",
                    payload: (),
                })?;
                self.complete("complete")
            }
            Decoded::Invalid(errors) => self.reject(errors),
        }
    }

    /// Sends the error frame for an invalid incoming frame, then `complete`.
    fn reject(&mut self, errors: Vec<ValidationError>) -> Result<(), ProtoError> {
        self.emit(&CoreFrame {
            action: "error",
            payload: errors,
        })?;
        self.complete("complete")
    }

    fn complete(&mut self, action: &'static str) -> Result<(), ProtoError> {
        if self.protocol.options.send_completion {
            self.emit(&CoreFrame {
                action,
                payload: (),
            })?;
        }
        Ok(())
    }

    /// Reports that the handler of the oldest delivered [`Output::Message`]
    /// finished. [`Handled::Failed`] sends `{"detail": "Failed to process
    /// message"}`. Either way `complete` follows when completion frames are on.
    pub fn message_handled(&mut self, handled: Handled) -> Result<(), ProtoError> {
        if self.pending_messages == 0 {
            return Err(ProtoError::NothingPending("message"));
        }
        self.pending_messages -= 1;
        if !self.is_live() {
            return Err(ProtoError::Closed);
        }
        if handled == Handled::Failed {
            self.emit(&CoreFrame {
                action: "error",
                payload: Detail {
                    detail: "Failed to process message",
                },
            })?;
        }
        self.complete("complete")
    }

    /// Reports that the handler of the oldest delivered [`Output::Event`]
    /// finished (failures are only logged by the driver, never sent).
    pub fn event_handled(&mut self) -> Result<(), ProtoError> {
        if self.pending_events == 0 {
            return Err(ProtoError::NothingPending("event"));
        }
        self.pending_events -= 1;
        if !self.is_live() {
            return Err(ProtoError::Closed);
        }
        self.complete("complete")
    }

    /// Handles a message the channel layer delivered to this connection.
    ///
    /// A group message becomes a frame with `is_mine`/`is_current` (unless
    /// it is this connection's own and excluded), followed by
    /// `group_complete`. A channel event becomes [`Output::Event`]; an event
    /// this endpoint cannot decode is refused with
    /// [`ProtoError::InvalidEvent`] after `complete` is queued, as chanx does.
    pub fn handle_layer_message(&mut self, message: &LayerMessage) -> Result<(), ProtoError> {
        match self.state {
            State::Open => {}
            State::Handshake => return Err(ProtoError::NotOpen),
            State::Closing | State::Closed => return Err(ProtoError::Closed),
        }
        match message {
            LayerMessage::Group(group) => {
                let is_current = group.from_channel() == self.channel;
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
                let is_mine = group.is_mine(self.user_key.as_deref());
                let frame = group.stamp(is_mine, is_current, self.protocol.options.camelize)?;
                self.push_frame(frame);
                self.complete("group_complete")
            }
            LayerMessage::Event(event) => match serde_json::from_str::<E>(event.event_data()) {
                Ok(e) => {
                    self.pending_events += 1;
                    self.outputs.push_back(Output::Event(e));
                    Ok(())
                }
                Err(_) => {
                    self.complete("complete")?;
                    let errors = match codec::decode::<E>(
                        event.event_data(),
                        &self.protocol.events,
                        false,
                        false,
                    ) {
                        Decoded::Invalid(errors) => errors,
                        _ => Vec::new(),
                    };
                    Err(ProtoError::InvalidEvent(errors))
                }
            },
        }
    }

    /// Sends a message to this connection's client.
    pub fn send_message<T: Serialize + ?Sized>(&mut self, message: &T) -> Result<(), ProtoError> {
        match self.state {
            State::Open => self.emit(message),
            State::Handshake => Err(ProtoError::NotOpen),
            State::Closing | State::Closed => Err(ProtoError::Closed),
        }
    }

    /// Sends a typed group message to `groups` (this connection's own groups
    /// when `None`). With `exclude_current` the sending connection does not
    /// receive its own copy.
    pub fn send_group_message<T: Serialize + ?Sized>(
        &mut self,
        message: &T,
        groups: Option<&[String]>,
        exclude_current: bool,
    ) -> Result<(), ProtoError> {
        let content = serde_json::value::to_raw_value(message)?;
        self.send_group_raw(content, ContentKind::Message, groups, exclude_current)
    }

    /// Sends a raw JSON object to groups, like [`send_group_message`](Self::send_group_message).
    pub fn send_group_json(
        &mut self,
        content: &Map<String, Value>,
        groups: Option<&[String]>,
        exclude_current: bool,
    ) -> Result<(), ProtoError> {
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
    ) -> Result<(), ProtoError> {
        if self.state != State::Open {
            return Err(if self.state == State::Handshake {
                ProtoError::NotOpen
            } else {
                ProtoError::Closed
            });
        }
        let targets = groups.unwrap_or(&self.groups);
        let mut envelope = GroupEnvelope::new(
            content,
            kind,
            exclude_current,
            self.channel.clone(),
            self.user_pk.as_ref(),
        )
        .map_err(|_| ProtoError::ContentNotObject)?;
        if targets.len() > 1 {
            envelope = envelope.with_seq(self.next_seq);
            self.next_seq += 1;
        }
        let message = Arc::new(LayerMessage::Group(envelope));
        for group in targets {
            self.outputs.push_back(Output::GroupSend {
                group: group.clone(),
                message: Arc::clone(&message),
            });
        }
        Ok(())
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

    /// `count` frames the driver had taken from [`Output::Frame`] reached the socket.
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

    /// Advances time: sends heartbeat pings and closes a silent peer.
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
        self.heartbeat.as_ref().map(HeartbeatState::deadline)
    }

    /// The next thing to do; call until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output<M, E>> {
        self.outputs.pop_front()
    }

    fn is_live(&self) -> bool {
        matches!(self.state, State::Open | State::Handshake)
    }

    fn emit<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ProtoError> {
        let frame = codec::encode(value, self.protocol.options.camelize)?;
        self.push_frame(frame);
        Ok(())
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
            self.begin_close(close_code::SLOW_CONSUMER, "slow consumer");
            return;
        }
        self.in_flight.push_back(frame.len());
        self.outbound_bytes = bytes;
        self.outputs.push_back(Output::Frame(frame));
    }

    fn begin_close(&mut self, code: u16, reason: &'static str) {
        if !self.is_live() {
            return;
        }
        self.state = State::Closing;
        self.outputs.push_back(Output::Close { code, reason });
        self.leave_all();
    }

    fn leave_all(&mut self) {
        for group in self.groups.drain(..) {
            self.outputs.push_back(Output::LeaveGroup(group));
        }
    }
}
