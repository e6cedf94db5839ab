//! The Quick Start's messages (`myapp/messages.py` in chanx's Quick Start
//! (Python)).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `{"content": str}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct MessagePayload {
    /// The text.
    pub content: String,
}

/// What clients send: `EchoMessage | PingMessage`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum MyIncomingMessage {
    /// Message type for echoing text.
    Echo(MessagePayload),
    /// Liveness check; answered with `pong`.
    Ping,
}

/// What the consumers send their own client.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum MyOutgoingMessage {
    /// The answer to `ping`: `{"action": "pong", "payload": null}`.
    Pong(()),
    /// Echoed text, or a room's notification.
    Echo(MessagePayload),
}

/// Message type for group chat messages.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum ChatGroupMessage {
    /// A line of chat: `{"content": "<username>: <text>"}`.
    ChatMessage(MessagePayload),
}

/// Payload of the `notify` event.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct NotifyPayload {
    /// The notification text.
    pub content: String,
    /// Its level (`info`, `warning`, `error`, `success`).
    #[serde(default = "default_level")]
    pub level: String,
}

fn default_level() -> String {
    "info".to_owned()
}

/// Channel events of the chat (`ChatEvent = NotifyEvent`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "handler", content = "payload", rename_all = "snake_case")]
pub enum ChatEvent {
    /// Event for sending notifications to connected clients.
    Notify(NotifyPayload),
}

/// What subscribers send on a `room:<room_id>` topic.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum RoomIncoming {
    /// Say something to the room.
    Echo(MessagePayload),
}

/// What a `room:<room_id>` topic sends.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum RoomOutgoing {
    /// The sender's confirmation, with its `ref`.
    Sent(()),
    /// A line of chat, to every subscriber: `"<username>: <text>"`.
    ChatMessage(MessagePayload),
    /// A notification for the room: `"<LEVEL>: <message>"`.
    Notify(MessagePayload),
}
