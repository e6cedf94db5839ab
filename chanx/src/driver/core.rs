//! One connection's runtime state: the Sans-IO core plus everything needed
//! to perform its outputs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use chanx_proto::{Connection, InFrame, LayerMessage, Output, State};

use super::writer::Link;
use crate::auth::LoadedObject;
use crate::consumer::{Consumer, SendError};
use crate::handshake::{Handshake, User};
use crate::layer::ChannelLayer;
use crate::ws::WsMessage;

/// Which messages are logged, per endpoint.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// Log "Received websocket json" per incoming message.
    pub received: bool,
    /// Log "Sent websocket json" per outgoing frame.
    pub sent: bool,
    /// Actions never logged.
    pub ignored_actions: Vec<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            received: true,
            sent: true,
            ignored_actions: Vec::new(),
        }
    }
}

impl LogSettings {
    pub(super) fn action_of(&self, enabled: bool, text: &str, key: &str) -> Option<String> {
        if !enabled || !tracing::enabled!(tracing::Level::INFO) {
            return None;
        }
        // Frames the core itself builds (authentication, error, pong,
        // complete) always use `action`, as chanx's do.
        let action = chanx_proto::codec::peek_action(text, key)
            .or_else(|| {
                (key != "action")
                    .then(|| chanx_proto::codec::peek_action(text, "action"))
                    .flatten()
            })
            .unwrap_or_default();
        (!self.ignored_actions.contains(&action)).then_some(action)
    }
}

/// What a connection knows about itself after authentication; shared with
/// concurrent handlers.
pub(crate) struct SessionInfo {
    pub(crate) handshake: Handshake,
    pub(crate) user: Option<User>,
    pub(crate) object: Option<LoadedObject>,
    pub(crate) request_id: String,
}

/// A delivered message or event waiting for its handler.
pub(super) enum Delivery<C: Consumer> {
    Message(C::Incoming),
    Event(C::Event),
}

/// One connection's state, shared by the driver and the [`Context`](crate::Context).
pub(crate) struct Core<C: Consumer> {
    pub(crate) conn: Connection<C::Incoming, C::Event>,
    pub(crate) info: Arc<SessionInfo>,
    pub(super) layer: Arc<dyn ChannelLayer>,
    pub(super) link: Link,
    pub(super) turn: super::halves::Turn,
    pub(super) log: Arc<LogSettings>,
    pub(super) pending: VecDeque<Delivery<C>>,
}

impl<C: Consumer> Core<C> {
    /// Performs every output of the core.
    pub(crate) async fn flush(&mut self) -> Result<(), SendError> {
        let written = self.link.take_written();
        if written > 0 {
            self.conn.handle_frames_written(written);
        }
        let mut result = Ok(());
        while let Some(output) = self.conn.poll_output() {
            match output {
                Output::Frame(text) => {
                    let key = &self.conn.protocol().options().action_key;
                    if let Some(action) = self.log.action_of(self.log.sent, &text, key) {
                        tracing::info!(sent_action = %action, "Sent websocket json");
                    }
                    if !self.link.send(WsMessage::Text(text)) {
                        self.conn.handle_transport_closed();
                    }
                }
                Output::Ping => {
                    self.link.send(WsMessage::Ping(Vec::new()));
                }
                Output::Close { code, reason } => {
                    tracing::info!(code, reason, "Closing websocket");
                    self.link.close(code, reason);
                }
                Output::JoinGroup(group) => {
                    if let Err(error) = self.layer.group_add(&group, self.conn.channel_name()).await
                    {
                        tracing::error!(%error, group, "could not join group");
                        result = Err(error.into());
                    }
                }
                Output::LeaveGroup(group) => {
                    if let Err(error) = self
                        .layer
                        .group_discard(&group, self.conn.channel_name())
                        .await
                    {
                        tracing::error!(%error, group, "could not leave group");
                    }
                }
                Output::GroupSend { group, message } => {
                    if let Err(error) = self.layer.group_send(&group, message).await {
                        tracing::error!(%error, group, "group send failed");
                        result = Err(error.into());
                    }
                }
                Output::Message(message) => self.pending.push_back(Delivery::Message(message)),
                Output::Event(event) => self.pending.push_back(Delivery::Event(event)),
            }
        }
        if self.conn.outbound_backlog() * 2 >= self.conn.protocol().options().max_outbound_frames {
            // A handler sending frame after frame never lets the writer run
            // on its own: hand it a turn before the backlog counts as slow.
            self.turn.give().await;
            let written = self.link.take_written();
            self.conn.handle_frames_written(written);
        }
        result
    }

    pub(super) fn is_done(&self) -> bool {
        matches!(self.conn.state(), State::Closing | State::Closed)
    }

    pub(super) fn on_socket_message(&mut self, message: WsMessage) {
        let now = Instant::now();
        let result = match &message {
            WsMessage::Text(text) => {
                let key = &self.conn.protocol().options().action_key;
                if let Some(action) = self.log.action_of(self.log.received, text, key) {
                    tracing::info!(received_action = %action, "Received websocket json");
                }
                self.conn.handle_frame(InFrame::Text(text), now)
            }
            WsMessage::Binary(bytes) => self.conn.handle_frame(InFrame::Binary(bytes), now),
            WsMessage::Ping(_) => self.conn.handle_frame(InFrame::Ping, now),
            WsMessage::Pong(_) => self.conn.handle_frame(InFrame::Pong, now),
            WsMessage::Close(frame) => self
                .conn
                .handle_frame(InFrame::Close(frame.as_ref().map(|f| f.0)), now),
        };
        if let Err(error) = result {
            tracing::debug!(%error, "frame ignored");
        }
    }

    pub(super) fn on_layer_message(&mut self, message: &LayerMessage) {
        if let Err(error) = self.conn.handle_layer_message(message) {
            match error {
                chanx_proto::ProtoError::InvalidEvent(errors) => {
                    tracing::error!(?errors, "Failed to process channel event");
                }
                other => tracing::debug!(error = %other, "layer message ignored"),
            }
        }
    }
}
