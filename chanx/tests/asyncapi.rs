//! The AsyncAPI document against the official AsyncAPI 3.0.0 JSON Schema
//! (vendored in `tests/data/`, see its README), and what it says each
//! endpoint sends.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::OnceLock;

use chanx::docs::asyncapi;
use chanx::routing::{RouteTable, path, re_path};
use chanx::{Consumer, Context, Endpoint, HandlerResult, NoEvent, NoGroupMessage, NoOutgoing};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Deserialize, Serialize, JsonSchema)]
struct Payload {
    content: String,
}

/// What clients send the chat room.
#[derive(Deserialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum ChatIn {
    /// Say something to the room.
    Say(Payload),
    Ping,
}

/// What the chat room sends its own client: a `Payload` of another shape
/// than the incoming one, so the two must not share a component name.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum ChatOut {
    /// The answer to `ping`.
    Pong(()),
    /// A notice from the server.
    Notice(other::Payload),
}

mod other {
    /// Not the incoming `Payload`.
    #[derive(serde::Serialize, schemars::JsonSchema)]
    pub(crate) struct Payload {
        pub(crate) level: u8,
        pub(crate) text: String,
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum ChatGroup {
    /// A member said something.
    ChatMessage(Payload),
}

#[derive(Default)]
struct Chat;

impl Consumer for Chat {
    type Incoming = ChatIn;
    type Outgoing = ChatOut;
    type Event = NoEvent;
    type GroupMessage = ChatGroup;

    async fn receive_message(
        &mut self,
        ctx: &mut Context<'_, Self>,
        message: ChatIn,
    ) -> HandlerResult {
        match message {
            ChatIn::Ping => ctx.send_message(&ChatOut::Pong(())).await?,
            ChatIn::Say(payload) if payload.content.is_empty() => {
                let notice = other::Payload {
                    level: 1,
                    text: "say something".into(),
                };
                ctx.send_message(&ChatOut::Notice(notice)).await?
            }
            ChatIn::Say(payload) => {
                ctx.send_group_message(&ChatGroup::ChatMessage(payload))
                    .await?
            }
        }
        Ok(())
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum QuietIn {
    Hello,
}

/// Sends nothing of its own; `ping` is the framework's.
#[derive(Default)]
struct Quiet;

impl Consumer for Quiet {
    type Incoming = QuietIn;
    type Outgoing = NoOutgoing;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn receive_message(&mut self, _: &mut Context<'_, Self>, _: QuietIn) -> HandlerResult {
        Ok(())
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum BoardIn {
    /// Pin a note.
    Pin(Payload),
}

#[derive(Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum BoardOut {
    /// A note was pinned.
    Pinned(Payload),
}

struct BoardTopic;

impl chanx::topic::Topic for BoardTopic {
    const PATTERN: &'static str = "board:{board_id}";
    type Incoming = BoardIn;
    type Outgoing = BoardOut;

    async fn receive(
        &self,
        ctx: &mut chanx::topic::TopicContext<'_, Self>,
        message: BoardIn,
    ) -> HandlerResult {
        let BoardIn::Pin(payload) = message;
        ctx.broadcast(&BoardOut::Pinned(payload)).await?;
        Ok(())
    }
}

fn routes() -> RouteTable<Endpoint> {
    let chat = Endpoint::builder(Chat::default)
        .description("A chat room.")
        .send_completion(true)
        .send_gap_frames(true)
        .build()
        .unwrap();
    let quiet = Endpoint::builder(Quiet::default)
        .topic(BoardTopic)
        .build()
        .unwrap();
    RouteTable::new([
        re_path(r"^ws/rooms/(?P<room>\w+)/(?P<page>\d+)/$", chat),
        path("ws/quiet/", quiet),
    ])
    .unwrap()
}

fn official_schema() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(include_str!("data/asyncapi-3.0.0.schema.json")).unwrap();
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&schema)
            .expect("the AsyncAPI 3.0.0 schema compiles")
    })
}

/// Every error the official schema finds in `document`.
fn schema_errors(document: &Value) -> Vec<String> {
    official_schema()
        .iter_errors(document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_document_is_valid_asyncapi_3() {
    let document = asyncapi(&routes(), "chanx endpoints", "localhost:8000");
    let errors = schema_errors(&document);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn the_validation_catches_an_invalid_document() {
    let mut document = asyncapi(&routes(), "chanx endpoints", "localhost:8000");
    document["operations"]["Chat_send"]["action"] = json!("publish");
    assert!(!schema_errors(&document).is_empty());
    let mut document = asyncapi(&routes(), "chanx endpoints", "localhost:8000");
    document["info"].as_object_mut().unwrap().remove("version");
    assert!(!schema_errors(&document).is_empty());
}

fn message_keys(document: &Value, operation: &str) -> Vec<String> {
    document["operations"][operation]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let reference = m["$ref"].as_str().unwrap();
            assert!(
                document.pointer(&reference[1..]).is_some(),
                "dangling {reference}"
            );
            reference.rsplit('/').next().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn the_send_operation_lists_outgoing_group_and_framework_frames() {
    let document = asyncapi(&routes(), "t", "h");
    assert_eq!(
        message_keys(&document, "Chat_send"),
        [
            "send_pong",
            "send_notice",
            "group_chat_message",
            "framework_authentication",
            "framework_error",
            "framework_complete",
            "framework_group_complete",
            "framework_group_gap",
        ]
    );
    assert_eq!(message_keys(&document, "Chat_receive"), ["say", "ping"]);
    // Chat declares its own ping: no built-in ping operation.
    assert!(document["operations"].get("Chat_ping").is_none());

    let group = &document["channels"]["Chat"]["messages"]["group_chat_message"]["payload"];
    assert_eq!(group["properties"]["is_mine"], json!({"type": "boolean"}));
    assert!(
        group["required"]
            .as_array()
            .unwrap()
            .contains(&json!("is_current"))
    );

    // The two `Payload`s are two components.
    let schemas = document["components"]["schemas"].as_object().unwrap();
    assert!(schemas["Chat_Payload"]["properties"]["content"].is_object());
    assert!(schemas["Chat_Outgoing_Payload"]["properties"]["level"].is_object());
}

#[test]
fn a_built_in_ping_is_documented_with_its_pong_reply() {
    let document = asyncapi(&routes(), "t", "h");
    assert_eq!(
        message_keys(&document, "Quiet_send"),
        ["framework_authentication", "framework_error"]
    );
    let ping = &document["operations"]["Quiet_ping"];
    assert_eq!(ping["action"], "receive");
    assert_eq!(
        ping["reply"]["messages"][0]["$ref"],
        "#/channels/Quiet/messages/framework_pong"
    );
    let pong = &document["channels"]["Quiet"]["messages"]["framework_pong"]["payload"];
    assert_eq!(pong["properties"]["action"]["const"], "pong");
}

#[test]
fn topic_types_are_channels_with_an_x_topic_extension() {
    let document = asyncapi(&routes(), "t", "h");
    let channel = &document["channels"]["Quiet_BoardTopic"];
    assert_eq!(
        channel["x-topic"],
        json!({"name": "BoardTopic", "pattern": "board:{board_id}", "parameters": ["board_id"]})
    );
    assert_eq!(
        message_keys(&document, "Quiet_BoardTopic_receive"),
        ["framework_subscribe", "framework_unsubscribe", "pin"]
    );
    assert_eq!(
        message_keys(&document, "Quiet_BoardTopic_send"),
        [
            "send_pinned",
            "framework_subscribed",
            "framework_unsubscribed",
            "framework_error"
        ]
    );
    let pinned = &channel["messages"]["send_pinned"]["payload"];
    assert_eq!(pinned["properties"]["topic"], json!({"type": "string"}));
    assert!(
        pinned["required"]
            .as_array()
            .unwrap()
            .contains(&json!("version"))
    );
}

#[test]
fn yaml_is_the_same_document() {
    let document = asyncapi(&routes(), "t", "h");
    let yaml = chanx::docs::to_yaml(&document);
    let back: Value = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(back, document);
}
