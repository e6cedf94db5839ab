#![allow(clippy::unwrap_used, missing_docs)]
//! The playground's `websocket-info` list and the AsyncAPI document,
//! generated from a small route table.

use std::collections::{BTreeMap, BTreeSet};

use chanx::docs::{asyncapi, websocket_info};
use chanx::routing::{RouteTable, include, path, re_path};
use chanx::{Consumer, Context, Endpoint, HandlerResult, NoEvent, NoGroupMessage};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

// ---------------------------------------------------------------- fixtures

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum EchoIn {
    /// Echo the content back.
    Echo {
        content: String,
    },
    Ping,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Mood {
    Happy,
    Sad,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
struct Meta {
    client_version: u32,
    nick_name: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
struct ChatPayload {
    content: String,
    reply_to: Option<u64>,
    mood: Mood,
    tags: Vec<String>,
    meta: Meta,
    is_draft: bool,
    score: f64,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum ChatIn {
    /// Post a message to the room.
    SendMessage(ChatPayload),
    /// Tell the room you are typing.
    UserTyping {
        is_typing: bool,
    },
    Ping,
}

#[derive(Default)]
struct EchoConsumer;

impl Consumer for EchoConsumer {
    type Incoming = EchoIn;
    type Outgoing = chanx::NoOutgoing;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn receive_message(&mut self, _: &mut Context<'_, Self>, _: EchoIn) -> HandlerResult {
        Ok(())
    }
}

#[derive(Default)]
struct ChatConsumer;

impl Consumer for ChatConsumer {
    type Incoming = ChatIn;
    type Outgoing = chanx::NoOutgoing;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn receive_message(&mut self, _: &mut Context<'_, Self>, _: ChatIn) -> HandlerResult {
        Ok(())
    }
}

fn echo() -> Endpoint {
    Endpoint::builder(EchoConsumer::default)
        .description("Echoes what you send.")
        .build()
        .unwrap()
}

fn chat() -> Endpoint {
    Endpoint::builder(ChatConsumer::default)
        .description("A chat room.")
        .build()
        .unwrap()
}

fn camel_chat() -> Endpoint {
    Endpoint::builder(ChatConsumer::default)
        .name("CamelChat")
        .camelize(true)
        .build()
        .unwrap()
}

fn obj() -> Endpoint {
    Endpoint::builder(EchoConsumer::default)
        .name("ObjConsumer")
        .build()
        .unwrap()
}

fn routes() -> RouteTable<Endpoint> {
    RouteTable::new([include(
        "ws/",
        [
            path("echo/", echo()),
            path("chat/<str:room_name>/", chat()),
            re_path(r"obj/(?P<pk>\d+)/", obj()),
            path("camel/<int:user_id>/", camel_chat()),
        ],
    )])
    .unwrap()
}

fn decamelized(value: Value) -> Value {
    chanx::proto::case::convert_keys(value, chanx::proto::case::decamelize)
}

/// Every object key, recursively.
fn keys(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

/// Every `$ref` string, recursively.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

// ------------------------------------------------------------ websocket_info

#[test]
fn info_lists_every_endpoint_in_order() {
    let info = websocket_info(&routes(), "ws://localhost:8000/");
    let names: Vec<&str> = info.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["EchoConsumer", "ChatConsumer", "ObjConsumer", "CamelChat"]
    );
    assert_eq!(info[0].description, "Echoes what you send.");
    assert_eq!(info[1].description, "A chat room.");
    assert_eq!(info[2].description, "");
}

#[test]
fn info_urls_and_path_params() {
    let info = websocket_info(&routes(), "ws://localhost:8000");
    assert_eq!(info[0].url, "ws://localhost:8000/ws/echo/");
    assert_eq!(info[0].friendly_url, "ws://localhost:8000/ws/echo/");
    assert!(info[0].path_params.is_empty());

    assert_eq!(info[1].url, "ws://localhost:8000/ws/chat/<str:room_name>/");
    assert_eq!(
        info[1].friendly_url,
        "ws://localhost:8000/ws/chat/:room_name/"
    );
    assert_eq!(info[1].path_params.len(), 1);
    assert_eq!(info[1].path_params[0].name, "room_name");
    assert_eq!(info[1].path_params[0].pattern, "[^/]+");

    assert_eq!(info[2].friendly_url, "ws://localhost:8000/ws/obj/:pk/");
    assert_eq!(info[2].path_params[0].name, "pk");
    assert_eq!(info[2].path_params[0].pattern, r"\d+");

    assert_eq!(
        info[3].friendly_url,
        "ws://localhost:8000/ws/camel/:user_id/"
    );
    assert_eq!(info[3].path_params[0].name, "user_id");
    assert_eq!(info[3].path_params[0].pattern, "[0-9]+");

    // The trailing slash of the base is not doubled either way.
    let with_slash = websocket_info(&routes(), "ws://localhost:8000/");
    assert_eq!(with_slash, info);
}

#[test]
fn info_serializes_with_protocol_field_names() {
    let info = websocket_info(&routes(), "ws://h");
    let value = serde_json::to_value(&info).unwrap();
    let first = value[1].as_object().unwrap();
    let fields: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        [
            "name",
            "url",
            "friendly_url",
            "description",
            "message_examples",
            // Beyond chanx: what the endpoint sends.
            "outgoing_examples",
            "path_params",
            // Beyond chanx: the topic types.
            "topics"
        ]
    );
    let example = value[1]["message_examples"][0].as_object().unwrap();
    let fields: Vec<&str> = example.keys().map(String::as_str).collect();
    assert_eq!(fields, ["name", "description", "example"]);
    let param = value[1]["path_params"][0].as_object().unwrap();
    let fields: Vec<&str> = param.keys().map(String::as_str).collect();
    assert_eq!(fields, ["name", "pattern", "description"]);
}

#[test]
fn examples_are_valid_messages_of_the_consumer() {
    let info = websocket_info(&routes(), "ws://h");

    let echo = &info[0].message_examples;
    let names: Vec<&str> = echo.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["Echo", "Ping"]);
    assert_eq!(echo[0].description, "Echo the content back.");
    for e in echo {
        let decoded: Result<EchoIn, _> = serde_json::from_value(e.example.clone());
        assert!(decoded.is_ok(), "{}: {:?}", e.example, decoded.err());
    }
    assert_eq!(
        echo[1].example,
        json!({"action": "ping", "payload": null}),
        "unit variants carry payload null"
    );

    let chat = &info[1].message_examples;
    let names: Vec<&str> = chat.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["SendMessage", "UserTyping", "Ping"]);
    assert_eq!(chat[0].description, "Post a message to the room.");
    assert_eq!(chat[1].description, "Tell the room you are typing.");
    assert_eq!(chat[2].description, "");
    let decoded: Vec<ChatIn> = chat
        .iter()
        .map(|e| {
            serde_json::from_value(e.example.clone())
                .unwrap_or_else(|err| panic!("{} does not decode: {err}", e.example))
        })
        .collect();
    assert!(matches!(decoded[0], ChatIn::SendMessage(_)));
    assert!(matches!(decoded[1], ChatIn::UserTyping { .. }));
    assert!(matches!(decoded[2], ChatIn::Ping));
    // Every field of the nested payload is present (not just the required ones).
    let payload = &chat[0].example["payload"];
    for field in [
        "content", "reply_to", "mood", "tags", "meta", "is_draft", "score",
    ] {
        assert!(payload.get(field).is_some(), "missing {field} in {payload}");
    }
    assert!(payload["meta"].get("client_version").is_some());
    assert_eq!(chat[0].example["action"], "send_message");
}

#[test]
fn examples_are_camelized_when_the_endpoint_camelizes() {
    let info = websocket_info(&routes(), "ws://h");
    let camel = &info[3].message_examples;
    let plain = &info[1].message_examples;
    assert_eq!(camel.len(), plain.len());
    let mut all = BTreeSet::new();
    for e in camel {
        keys(&e.example, &mut all);
    }
    for k in [
        "replyTo",
        "isDraft",
        "clientVersion",
        "nickName",
        "isTyping",
    ] {
        assert!(all.contains(k), "{k} missing from {all:?}");
    }
    assert!(
        !all.iter().any(|k| k.contains('_')),
        "snake_case keys left: {all:?}"
    );
    // Values (the action tags) are untouched.
    assert_eq!(camel[0].example["action"], "send_message");
    assert_eq!(camel[1].example["action"], "user_typing");
    // Decamelized (what the server does to incoming frames) they decode.
    for (c, p) in camel.iter().zip(plain) {
        assert_eq!(c.name, p.name);
        assert_eq!(decamelized(c.example.clone()), p.example);
        let decoded: Result<ChatIn, _> = serde_json::from_value(decamelized(c.example.clone()));
        assert!(decoded.is_ok(), "{}", c.example);
    }
    // The non-camelized endpoint keeps snake_case.
    assert!(plain[0].example["payload"].get("reply_to").is_some());
}

// ------------------------------------------------------------------ AsyncAPI

#[test]
fn asyncapi_basics() {
    let doc = asyncapi(&routes(), "Chat service", "localhost:8000");
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["info"]["title"], "Chat service");
    assert!(doc["info"]["version"].is_string());
    assert_eq!(doc["servers"]["default"]["host"], "localhost:8000");
    assert_eq!(doc["servers"]["default"]["protocol"], "ws");
    let channels = doc["channels"].as_object().unwrap();
    assert_eq!(channels.len(), 4);
    let addresses: BTreeMap<&str, &str> = channels
        .iter()
        .map(|(k, v)| (k.as_str(), v["address"].as_str().unwrap()))
        .collect();
    assert_eq!(addresses["EchoConsumer"], "/ws/echo/");
    assert_eq!(addresses["ChatConsumer"], "/ws/chat/{room_name}/");
    assert_eq!(addresses["ObjConsumer"], "/ws/obj/{pk}/");
    assert_eq!(addresses["CamelChat"], "/ws/camel/{user_id}/");
}

/// AsyncAPI 3: the address's `{expressions}` and the channel's
/// `parameters` keys are the same set.
fn assert_parameters_match_address(doc: &Value) {
    for (id, channel) in doc["channels"].as_object().unwrap() {
        let address = channel["address"].as_str().unwrap();
        let mut in_address = BTreeSet::new();
        let mut rest = address;
        while let Some(start) = rest.find('{') {
            let end = rest[start..].find('}').unwrap() + start;
            in_address.insert(rest[start + 1..end].to_owned());
            rest = &rest[end + 1..];
        }
        let declared: BTreeSet<String> = channel["parameters"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(in_address, declared, "channel {id}: {address}");
    }
}

#[test]
fn asyncapi_parameters_match_addresses() {
    let doc = asyncapi(&routes(), "t", "h");
    assert_parameters_match_address(&doc);
    let params = &doc["channels"]["ChatConsumer"]["parameters"];
    assert!(params["room_name"].is_object());
}

#[test]
fn asyncapi_messages_and_operations() {
    let doc = asyncapi(&routes(), "t", "h");
    let chat = &doc["channels"]["ChatConsumer"]["messages"];
    for tag in [
        "send_message",
        "user_typing",
        "ping",
        "framework_authentication",
        "framework_error",
    ] {
        assert!(chat[tag].is_object(), "message {tag} missing");
    }
    let ops = doc["operations"].as_object().unwrap();
    let receive = &ops["ChatConsumer_receive"];
    assert_eq!(receive["action"], "receive");
    assert_eq!(receive["channel"]["$ref"], "#/channels/ChatConsumer");
    let receive_refs: Vec<&str> = receive["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["$ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        receive_refs,
        [
            "#/channels/ChatConsumer/messages/send_message",
            "#/channels/ChatConsumer/messages/user_typing",
            "#/channels/ChatConsumer/messages/ping",
        ]
    );
    assert_eq!(ops["ChatConsumer_send"]["action"], "send");
}

#[test]
fn asyncapi_refs_all_resolve() {
    let doc = asyncapi(&routes(), "t", "h");
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    let component_refs: Vec<&String> = all
        .iter()
        .filter(|r| r.starts_with("#/components/schemas/"))
        .collect();
    assert!(
        !component_refs.is_empty(),
        "payload schemas refer to components"
    );
    for r in &all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("non-local $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        assert!(!r.contains("$defs"), "unrewritten $ref {r}");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in ["ChatPayload", "Meta", "Mood"] {
        assert!(
            schemas.keys().any(|k| k.ends_with(&format!("_{name}"))),
            "{name} not in components (namespaced by endpoint)"
        );
    }
}

// ------------------------------------------------ AsyncAPI corner cases

#[test]
fn asyncapi_address_when_a_literal_segment_equals_a_parameter_name() {
    let routes = RouteTable::new([path("ws/user/<str:user>/", chat())]).unwrap();
    let doc = asyncapi(&routes, "t", "h");
    assert_eq!(
        doc["channels"]["ChatConsumer"]["address"],
        "/ws/user/{user}/"
    );
    assert_parameters_match_address(&doc);
}

#[test]
fn asyncapi_address_when_the_parameter_ends_the_path() {
    let routes = RouteTable::new([path("ws/files/<path:rest>", chat())]).unwrap();
    let doc = asyncapi(&routes, "t", "h");
    assert_eq!(
        doc["channels"]["ChatConsumer"]["address"],
        "/ws/files/{rest}"
    );
    assert_parameters_match_address(&doc);
}

#[test]
fn asyncapi_has_one_channel_per_route() {
    // The same consumer mounted twice: two routes, two channels.
    let routes = RouteTable::new([
        path("ws/chat/<str:room_name>/", chat()),
        path("ws/support/", chat()),
    ])
    .unwrap();
    let doc = asyncapi(&routes, "t", "h");
    let addresses: BTreeSet<&str> = doc["channels"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        addresses,
        BTreeSet::from(["/ws/chat/{room_name}/", "/ws/support/"])
    );
}

mod room_a {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, JsonSchema)]
    pub(crate) struct MessagePayload {
        pub(crate) content: String,
    }

    #[derive(Debug, Deserialize, Serialize, JsonSchema)]
    #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    pub(crate) enum In {
        Say(MessagePayload),
    }

    #[derive(Default)]
    pub(crate) struct RoomA;

    impl Consumer for RoomA {
        type Incoming = In;
        type Outgoing = chanx::NoOutgoing;
        type Event = NoEvent;
        type GroupMessage = NoGroupMessage;

        async fn receive_message(&mut self, _: &mut Context<'_, Self>, _: In) -> HandlerResult {
            Ok(())
        }
    }
}

mod room_b {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, JsonSchema)]
    pub(crate) struct MessagePayload {
        pub(crate) amount: u32,
    }

    #[derive(Debug, Deserialize, Serialize, JsonSchema)]
    #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    pub(crate) enum In {
        Pay(MessagePayload),
    }

    #[derive(Default)]
    pub(crate) struct RoomB;

    impl Consumer for RoomB {
        type Incoming = In;
        type Outgoing = chanx::NoOutgoing;
        type Event = NoEvent;
        type GroupMessage = NoGroupMessage;

        async fn receive_message(&mut self, _: &mut Context<'_, Self>, _: In) -> HandlerResult {
            Ok(())
        }
    }
}

#[test]
fn asyncapi_same_named_payload_types_of_two_endpoints_stay_distinct() {
    let routes = RouteTable::new([
        path(
            "ws/a/",
            Endpoint::builder(room_a::RoomA::default).build().unwrap(),
        ),
        path(
            "ws/b/",
            Endpoint::builder(room_b::RoomB::default).build().unwrap(),
        ),
    ])
    .unwrap();
    let doc = asyncapi(&routes, "t", "h");
    let resolve = |channel: &str, tag: &str| -> Value {
        let payload =
            &doc["channels"][channel]["messages"][tag]["payload"]["properties"]["payload"];
        let r = payload["$ref"].as_str().unwrap();
        doc.pointer(r.strip_prefix('#').unwrap()).unwrap().clone()
    };
    let a = resolve("RoomA", "say");
    let b = resolve("RoomB", "pay");
    assert!(
        a["properties"].get("content").is_some(),
        "RoomA's payload: {a}"
    );
    assert!(
        b["properties"].get("amount").is_some(),
        "RoomB's payload: {b}"
    );
}
