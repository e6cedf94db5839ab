//! The messages of the guide's endpoints.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A text message.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct MessagePayload {
    /// The text.
    pub content: String,
}

/// What clients send to both endpoints.
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
