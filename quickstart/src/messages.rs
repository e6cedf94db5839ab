//! The Quick Start's messages (`myapp/messages.py` in chanx's Quick Start
//! (Python)): the guide's own (`examples/quick-start`, shown file by file
//! in docs/quick-start.md), so that the program runs exactly the code the
//! guide teaches, plus the rooms' topic messages.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use quick_start::chat_messages::{ChatEvent, ChatGroupMessage, NotifyPayload};
pub use quick_start::messages::{MessagePayload, MyIncomingMessage, MyOutgoingMessage};

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
