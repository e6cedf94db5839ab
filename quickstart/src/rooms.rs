//! Rooms over one socket: the topic type `room:<room_id>` that the
//! RoomsConsumer at `/ws/myapp/rooms/` serves, so one socket follows
//! several chat rooms.

use std::sync::OnceLock;

use chanx::HandlerResult;
use chanx::topic::{Topic, TopicContext, TopicRequestInfo};
use regex::Regex;

use crate::messages::{MessagePayload, RoomIncoming, RoomOutgoing};

/// `room:<room_id>`: a chat room as a topic.
#[derive(Debug, Default)]
pub struct RoomTopic;

impl RoomTopic {
    /// The topic of a room.
    pub fn topic(room_id: &str) -> String {
        format!("room:{room_id}")
    }
}

/// A room id is 1 to 100 Unicode word characters, as on the chat path
/// (the same `\w` as its route).
fn is_room_id(room_id: &str) -> bool {
    static ROOM_ID: OnceLock<Option<Regex>> = OnceLock::new();
    ROOM_ID
        .get_or_init(|| Regex::new(r"^\w{1,100}$").ok())
        .as_ref()
        .is_some_and(|pattern| pattern.is_match(room_id))
}

impl Topic for RoomTopic {
    const PATTERN: &'static str = "room:{room_id}";
    type Incoming = RoomIncoming;
    type Outgoing = RoomOutgoing;

    fn exists(&self, request: &TopicRequestInfo<'_>) -> bool {
        request.param("room_id").is_some_and(is_room_id)
    }

    async fn receive(
        &self,
        ctx: &mut TopicContext<'_, Self>,
        message: RoomIncoming,
    ) -> HandlerResult {
        let RoomIncoming::Echo(payload) = message;
        let username = ctx.user().map_or("Anonymous", |u| u.username.as_str());
        let content = format!("{username}: {}", payload.content);
        ctx.broadcast(&RoomOutgoing::ChatMessage(MessagePayload { content }))
            .await?;
        ctx.reply(&RoomOutgoing::Sent(())).await?;
        Ok(())
    }
}
