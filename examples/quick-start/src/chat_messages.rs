//! The chat room's group message and channel event.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::messages::MessagePayload;

/// What one member of a room sends the others.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum ChatGroupMessage {
    /// A chat line, `"<username>: <text>"`.
    ChatMessage(MessagePayload),
}

/// A notification for a room, sent by server-side code.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct NotifyPayload {
    /// The text.
    pub content: String,
    /// `info`, `warning`, `error` or `success`.
    #[serde(default = "default_level")]
    pub level: String,
}

fn default_level() -> String {
    "info".to_owned()
}

/// The channel events a chat room handles.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "handler", content = "payload", rename_all = "snake_case")]
pub enum ChatEvent {
    /// Shown to every member of the room.
    Notify(NotifyPayload),
}
