//! Connection-level tests of the protocol core against docs/protocol.md: every
//! behaviour the core decides, driven by hand, without sockets or clocks.
#![allow(clippy::unwrap_used)]

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chanx_proto::{
    AuthOutcome, ConfigError, Connection, EncodeError, Failure, Handled, Heartbeat, InFrame,
    InputBudget, LayerMessage, LayerRejection, MessageSet, NoEvent, Options, Output, ProtoError,
    Protocol, RateLimit, SendError, Serialized, State, TransportError,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------
// Message sets
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
struct MessagePayload {
    content: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
struct SnakePayload {
    my_field: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
struct MultiPayload {
    name: String,
    count: i64,
    flag: bool,
}

/// The main incoming set: no `ping`, so the core answers pings itself.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Incoming {
    Echo(MessagePayload),
    Snake(SnakePayload),
    Multi(MultiPayload),
}

/// A set that declares its own `ping`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum WithPing {
    Echo(MessagePayload),
    Ping,
}

/// A set that declares `ping` first.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum PingFirst {
    Ping,
    Echo(MessagePayload),
}

/// Messages the server sends (to its client or to groups).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Outgoing {
    ChatMessage(MessagePayload),
    SnakeReply(SnakePayload),
}

/// Channel events, tagged by `handler`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "handler", content = "payload", rename_all = "snake_case")]
enum ChatEvent {
    Notify(MessagePayload),
    Reset,
}

type Conn = Connection<Incoming, ChatEvent>;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

mod support;
use support::*;

const AUTH_OK: &str = r#"{"action":"authentication","payload":{"status_code":200,"status_text":"OK","data":{"detail":"OK"}}}"#;
const PONG: &str = r#"{"action":"pong","payload":null}"#;
const COMPLETE: &str = r#"{"action":"complete","payload":null}"#;
const GROUP_COMPLETE: &str = r#"{"action":"group_complete","payload":null}"#;
const FAILED: &str = r#"{"action":"error","payload":{"detail":"Failed to process message"}}"#;

/// Options with completion frames on (as in chanx's own tests).
fn completing() -> Options {
    Options {
        send_completion: true,
        ..Options::default()
    }
}

/// An authenticated connection with the outputs of its authentication drained.
fn open_with<M, E>(
    options: Options,
    channel: &str,
    user_pk: Option<Value>,
    groups: &[&str],
    now: Instant,
) -> Connection<M, E>
where
    M: MessageSet + Debug,
    E: MessageSet + Debug,
{
    open_connection(protocol(options), channel, accepted(user_pk, groups), now)
}

/// User 7 on `chan.1`, member of `room`.
fn open(options: Options, now: Instant) -> Conn {
    open_with(options, "chan.1", Some(json!(7)), &["room"], now)
}

/// Feeds `frame` to a fresh open connection of set `M` (completion on),
/// asserts the answer is exactly one error frame followed by `complete`
/// with the connection still open, and returns the error frame's text.
fn error_frame_in<M: MessageSet + Debug>(options: Options, frame: InFrame<'_>) -> String {
    let now = Instant::now();
    let mut conn: Connection<M, NoEvent> =
        open_with(options, "chan.1", Some(json!(7)), &["room"], now);
    conn.handle_frame(frame, now).unwrap();
    let out = drain(&mut conn);
    let lines = describe(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1], COMPLETE);
    assert_eq!(conn.state(), State::Open);
    let Output::Frame(text) = &out[0] else {
        panic!("{lines:?}")
    };
    let value: Value = serde_json::from_str(text).unwrap();
    assert_eq!(value["action"], "error", "{text}");
    assert_eq!(value.as_object().unwrap().len(), 2, "{text}");
    text.clone()
}

/// The `payload` (error list) of the error frame `Incoming` answers `text` with.
fn errors_for(text: &str) -> Value {
    errors_in::<Incoming>(InFrame::Text(text))
}

fn errors_in<M: MessageSet + Debug>(frame: InFrame<'_>) -> Value {
    let text = error_frame_in::<M>(completing(), frame);
    let value: Value = serde_json::from_str(&text).unwrap();
    value["payload"].clone()
}

fn one_error(kind: &str, loc: Value, msg: &str) -> Value {
    json!([{"type": kind, "loc": loc, "msg": msg}])
}

fn chat(content: &str) -> Outgoing {
    Outgoing::ChatMessage(MessagePayload {
        content: content.to_owned(),
    })
}

fn text(conn: &mut Conn, frame: &str, now: Instant) -> Vec<String> {
    conn.handle_frame(InFrame::Text(frame), now).unwrap();
    describe(&drain(conn))
}

// ---------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------

#[test]
fn auth_success_sends_exact_frame_then_joins_each_group_once() {
    let now = Instant::now();
    let mut conn: Conn = Connection::new(protocol(completing()), "chan.1", now);
    assert_eq!(conn.state(), State::Handshake);
    conn.handle_auth(accepted(Some(json!(7)), &["a", "b", "a", "b"]), now)
        .unwrap();
    // The authentication frame waits until the groups are joined.
    assert_eq!(describe_all(&mut conn), ["<join a,b>"]);
    conn.handle_groups_joined();
    assert_eq!(describe_all(&mut conn), [AUTH_OK]);
    conn.handle_groups_joined();
    assert!(describe_all(&mut conn).is_empty(), "sent once");
    assert_eq!(conn.groups(), ["a", "b"]);
    assert_eq!(conn.state(), State::Open);
    assert_eq!(conn.user_pk().map(|pk| pk.get()), Some("7"));
}

fn assert_rejection(status: u16, detail: &str, shown: &str, status_text: &str) {
    let now = Instant::now();
    let mut conn: Conn = Connection::new(protocol(completing()), "chan.1", now);
    conn.handle_auth(rejected(status, detail), now).unwrap();
    let expected = format!(
        r#"{{"action":"authentication","payload":{{"status_code":{status},"status_text":"{status_text}","data":{{"detail":"{shown}"}}}}}}"#
    );
    assert_eq!(
        describe(&drain(&mut conn)),
        [expected, format!("<close {}>", 4000 + status)]
    );
    assert!(conn.groups().is_empty());
    assert_eq!(conn.state(), State::Closing);
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn auth_rejected_401_sends_frame_and_closes_4401() {
    assert_rejection(401, "Invalid token.", "Invalid token.", "Unauthorized");
}

#[test]
fn auth_rejected_403_sends_frame_and_closes_4403() {
    assert_rejection(
        403,
        "You do not have permission to perform this action.",
        "You do not have permission to perform this action.",
        "Forbidden",
    );
}

#[test]
fn auth_rejected_404_sends_frame_and_closes_4404() {
    assert_rejection(
        404,
        "No User matches the given query.",
        "No User matches the given query.",
        "Not Found",
    );
}

#[test]
fn auth_rejected_500_hides_the_detail_and_closes_4500() {
    assert_rejection(
        500,
        "DatabaseError: password=hunter2",
        "Internal server error",
        "Internal Server Error",
    );
    assert_rejection(500, "", "Internal server error", "Internal Server Error");
}

#[test]
fn auth_message_off_success_is_silent() {
    let now = Instant::now();
    let options = Options {
        send_authentication_message: false,
        ..completing()
    };
    let mut conn: Conn = Connection::new(protocol(options), "chan.1", now);
    conn.handle_auth(accepted(Some(json!(1)), &["g"]), now)
        .unwrap();
    assert_eq!(describe_all(&mut conn), ["<join g>"]);
    assert_eq!(conn.state(), State::Open);
}

#[test]
fn auth_message_off_failure_closes_without_frame() {
    let now = Instant::now();
    let options = Options {
        send_authentication_message: false,
        ..completing()
    };
    let mut conn: Conn = Connection::new(protocol(options), "chan.1", now);
    conn.handle_auth(rejected(403, "Forbidden."), now).unwrap();
    assert_eq!(describe(&drain(&mut conn)), ["<close 4403>"]);
}

#[test]
fn inputs_before_auth_are_not_open() {
    let now = Instant::now();
    let mut conn: Conn = Connection::new(protocol(completing()), "chan.1", now);
    let ping = r#"{"action":"ping"}"#;
    assert!(matches!(
        conn.handle_frame(InFrame::Text(ping), now),
        Err(ProtoError::NotOpen)
    ));
    assert!(matches!(
        conn.handle_frame(InFrame::Binary(b"x"), now),
        Err(ProtoError::NotOpen)
    ));
    let event = LayerMessage::event(&ChatEvent::Reset).unwrap();
    assert!(matches!(
        conn.handle_layer_message(&event),
        Err(ProtoError::NotOpen)
    ));
    assert!(matches!(
        conn.send_group_message(&chat("x"), None, true),
        Err(SendError::Misuse(ProtoError::NotOpen))
    ));
    assert!(matches!(
        conn.send_group_json(&Map::new(), None, true),
        Err(SendError::Misuse(ProtoError::NotOpen))
    ));
    conn.handle_timeout(now + Duration::from_secs(3600));
    assert_eq!(conn.poll_timeout(), None);
    assert!(drain(&mut conn).is_empty());
    // The frame that follows is still the authentication frame.
    conn.handle_auth(accepted(None, &[]), now).unwrap();
    assert_eq!(describe(&drain(&mut conn)), [AUTH_OK]);
}

#[test]
fn send_message_before_auth_is_not_open() {
    // The authentication frame is the first frame on the socket.
    let now = Instant::now();
    let mut conn: Conn = Connection::new(protocol(completing()), "chan.1", now);
    assert!(matches!(
        conn.send_message(&chat("early")),
        Err(SendError::Misuse(ProtoError::NotOpen))
    ));
    assert!(drain(&mut conn).is_empty());
}

#[test]
fn auth_twice_is_an_error() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    assert!(matches!(
        conn.handle_auth(accepted(Some(json!(7)), &["other"]), now),
        Err(ProtoError::AlreadyAuthenticated)
    ));
    assert!(matches!(
        conn.handle_auth(rejected(403, "no"), now),
        Err(ProtoError::AlreadyAuthenticated)
    ));
    assert!(drain(&mut conn).is_empty());
    assert_eq!(conn.groups(), ["room"]);
    assert_eq!(conn.state(), State::Open);

    let mut refused: Conn = Connection::new(protocol(completing()), "chan.2", now);
    refused
        .handle_auth(rejected(401, "Invalid token."), now)
        .unwrap();
    drain(&mut refused);
    // Closed by the refusal: a late outcome is ignored, not misuse.
    assert!(
        refused
            .handle_auth(accepted(Some(json!(7)), &["g"]), now)
            .is_ok()
    );
    assert!(drain(&mut refused).is_empty());
}

#[test]
fn rejected_connection_gets_no_messages_events_or_broadcasts() {
    let now = Instant::now();
    let mut conn: Conn = Connection::new(protocol(completing()), "chan.1", now);
    conn.handle_auth(rejected(401, "Invalid token."), now)
        .unwrap();
    drain(&mut conn);
    // Input after the close is the peer's doing, not misuse: ignored.
    conn.handle_frame(InFrame::Text(r#"{"action":"ping"}"#), now)
        .unwrap();
    let event = LayerMessage::event(&ChatEvent::Reset).unwrap();
    conn.handle_layer_message(&event).unwrap();
    assert!(drain(&mut conn).is_empty());
}

// ---------------------------------------------------------------------------
// Validation errors (docs/protocol.md, "Validation errors")
// ---------------------------------------------------------------------------

#[test]
fn missing_field_error() {
    let text = error_frame_in::<Incoming>(
        completing(),
        InFrame::Text(r#"{"action":"echo","payload":{}}"#),
    );
    assert_eq!(
        text,
        r#"{"action":"error","payload":[{"type":"missing","loc":["echo","payload","content"],"msg":"Field required"}]}"#
    );
}

#[test]
fn missing_payload_error() {
    assert_eq!(
        errors_for(r#"{"action":"echo"}"#),
        one_error("missing", json!(["echo", "payload"]), "Field required")
    );
}

#[test]
fn string_type_error() {
    assert_eq!(
        errors_for(r#"{"action":"echo","payload":{"content":123}}"#),
        one_error(
            "string_type",
            json!(["echo", "payload", "content"]),
            "Input should be a valid string"
        )
    );
}

#[test]
fn model_type_error_names_the_payload_type() {
    for payload in [r#""x""#, "5", "[1]", "null"] {
        assert_eq!(
            errors_for(&format!(r#"{{"action":"echo","payload":{payload}}}"#)),
            one_error(
                "model_type",
                json!(["echo", "payload"]),
                "Input should be a valid dictionary or instance of MessagePayload"
            ),
            "payload {payload}"
        );
    }
}

#[test]
fn builtin_ping_with_payload_is_none_required() {
    for payload in [r#"{"x":1}"#, "{}", "[]", "0", "false", r#""""#] {
        assert_eq!(
            errors_for(&format!(r#"{{"action":"ping","payload":{payload}}}"#)),
            one_error(
                "none_required",
                json!(["ping", "payload"]),
                "Input should be None"
            ),
            "payload {payload}"
        );
    }
}

#[test]
fn declared_ping_with_payload_is_none_required() {
    for payload in [r#"{"x":1}"#, "{}", "[]", "0", "false", r#""""#] {
        assert_eq!(
            errors_in::<WithPing>(InFrame::Text(&format!(
                r#"{{"action":"ping","payload":{payload}}}"#
            ))),
            one_error(
                "none_required",
                json!(["ping", "payload"]),
                "Input should be None"
            ),
            "payload {payload}"
        );
    }
}

#[test]
fn unknown_tag_lists_tags_in_order_with_builtin_ping_last() {
    assert_eq!(
        errors_for(r#"{"action":"nope","payload":null}"#),
        one_error(
            "union_tag_invalid",
            json!([]),
            "Input tag 'nope' found using 'action' does not match any of the expected tags: 'echo', 'snake', 'multi', 'ping'"
        )
    );
}

#[test]
fn unknown_tag_with_declared_ping_lists_it_once_in_place() {
    assert_eq!(
        errors_in::<WithPing>(InFrame::Text(r#"{"action":"nope"}"#)),
        one_error(
            "union_tag_invalid",
            json!([]),
            "Input tag 'nope' found using 'action' does not match any of the expected tags: 'echo', 'ping'"
        )
    );
    assert_eq!(
        errors_in::<PingFirst>(InFrame::Text(r#"{"action":"nope"}"#)),
        one_error(
            "union_tag_invalid",
            json!([]),
            "Input tag 'nope' found using 'action' does not match any of the expected tags: 'ping', 'echo'"
        )
    );
}

#[test]
fn non_string_tags_are_shown_as_python_prints_them() {
    for (tag, shown) in [("5", "'5'"), ("null", "'None'"), (r#"["a"]"#, "'['a']'")] {
        assert_eq!(
            errors_for(&format!(r#"{{"action":{tag},"payload":null}}"#)),
            one_error(
                "union_tag_invalid",
                json!([]),
                &format!(
                    "Input tag {shown} found using 'action' does not match any of the expected tags: 'echo', 'snake', 'multi', 'ping'"
                )
            ),
            "tag {tag}"
        );
    }
}

#[test]
fn missing_tag_is_union_tag_not_found() {
    assert_eq!(
        errors_for(r#"{"payload":null}"#),
        one_error(
            "union_tag_not_found",
            json!([]),
            "Unable to extract tag using discriminator 'action'"
        )
    );
}

#[test]
fn json_that_is_not_an_object_is_model_attributes_type() {
    for frame in ["[1,2]", r#""str""#, "5", "null"] {
        assert_eq!(
            errors_for(frame),
            one_error(
                "model_attributes_type",
                json!([]),
                "Input should be a valid dictionary or object to extract fields from"
            ),
            "frame {frame}"
        );
    }
}

fn assert_json_invalid(frame: &str) {
    let errors = errors_for(frame);
    let list = errors.as_array().unwrap();
    assert_eq!(list.len(), 1, "{errors}");
    assert_eq!(list[0]["type"], "json_invalid");
    assert_eq!(list[0]["loc"], json!([]));
    let msg = list[0]["msg"].as_str().unwrap();
    assert!(msg.starts_with("Invalid JSON: "), "{msg}");
    assert!(msg.len() > "Invalid JSON: ".len(), "no reason: {msg}");
}

#[test]
fn text_that_is_not_json_is_json_invalid() {
    assert_json_invalid("{not json");
}

#[test]
fn empty_frame_is_json_invalid() {
    assert_json_invalid("");
}

#[test]
fn binary_frame_is_frame_type() {
    let text = error_frame_in::<Incoming>(completing(), InFrame::Binary(br#"{"action":"ping"}"#));
    assert_eq!(
        text,
        r#"{"action":"error","payload":[{"type":"frame_type","loc":[],"msg":"Binary frames are not accepted"}]}"#
    );
}

#[test]
fn all_problems_reported_together_in_field_order() {
    assert_eq!(
        errors_for(r#"{"action":"multi","payload":{"flag":"maybe","extra":1,"name":5}}"#),
        json!([
            {"type": "string_type", "loc": ["multi", "payload", "name"], "msg": "Input should be a valid string"},
            {"type": "missing", "loc": ["multi", "payload", "count"], "msg": "Field required"},
            {"type": "bool_parsing", "loc": ["multi", "payload", "flag"], "msg": "Input should be a valid boolean, unable to interpret input"},
        ])
    );
}

#[test]
fn unknown_extra_keys_are_ignored() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    let frames = [
        r#"{"extra":{"deep":[1,2]},"action":"echo","payload":{"content":"a"}}"#,
        r#"{"action":"echo","payload":{"content":"b","extra":true}}"#,
        r#"{"action":"echo","payload":{"junk":null,"content":"c"},"more":"x"}"#,
        r#"{"payload":{"content":"d"},"more":[],"action":"echo"}"#,
    ];
    for (frame, content) in frames.into_iter().zip(["a", "b", "c", "d"]) {
        assert_eq!(
            text(&mut conn, frame, now),
            [format!(
                "<message {:?}>",
                Incoming::Echo(MessagePayload {
                    content: content.to_owned()
                })
            )]
        );
        conn.message_handled(Handled::Completed).unwrap();
        assert_eq!(describe(&drain(&mut conn)), [COMPLETE]);
    }
    // Also for the built-in ping.
    assert_eq!(
        text(&mut conn, r#"{"action":"ping","extra":1}"#, now),
        [PONG, COMPLETE]
    );
}

#[test]
fn error_frames_never_echo_the_input() {
    const SECRET: &str = "S3CR3T-xyzzy";
    let frames = [
        format!(r#"{{"action":"echo","payload":{{"content":{{"{SECRET}":"{SECRET}"}}}}}}"#),
        format!(r#"{{"action":"echo","payload":"{SECRET}"}}"#),
        format!(r#"{{"action":"echo","payload":{{"{SECRET}":1}}}}"#),
        format!(r#"{{"action":"ping","payload":"{SECRET}"}}"#),
        format!(r#"{{"{SECRET}":"{SECRET}"}}"#),
        format!(r#"["{SECRET}"]"#),
        format!(r#""{SECRET}""#),
        format!(r#"{{"action":"echo","payload":{{"content":"{SECRET}"}}"#),
        format!(r#"{{"{SECRET}" {SECRET}}}"#),
        format!(r#"{{"action":"echo","payload":"\q{SECRET}"}}"#),
        format!(
            r#"{{"action":"multi","payload":{{"name":["{SECRET}"],"count":"{SECRET}","flag":"{SECRET}"}}}}"#
        ),
    ];
    for frame in &frames {
        let text = error_frame_in::<Incoming>(completing(), InFrame::Text(frame));
        assert!(!text.contains(SECRET), "{frame} -> {text}");
    }
    let text = error_frame_in::<Incoming>(completing(), InFrame::Binary(SECRET.as_bytes()));
    assert!(!text.contains(SECRET), "{text}");
}

#[test]
fn invalid_frames_keep_the_connection_open() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    for frame in ["{not json", "", "[1,2]", "null", r#"{"action":"nope"}"#] {
        let out = text(&mut conn, frame, now);
        assert_eq!(out.len(), 2, "{frame}: {out:?}");
    }
    conn.handle_frame(InFrame::Binary(b"\x00\x01"), now)
        .unwrap();
    assert_eq!(drain(&mut conn).len(), 2);
    assert_eq!(conn.state(), State::Open);
    assert_eq!(conn.groups(), ["room"]);
    assert_eq!(
        text(&mut conn, r#"{"action":"ping"}"#, now),
        [PONG, COMPLETE]
    );
}

// ---------------------------------------------------------------------------
// Ping, messages and completion
// ---------------------------------------------------------------------------

#[test]
fn builtin_ping_gets_pong_then_complete() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    assert!(conn.protocol().answers_ping());
    assert_eq!(
        text(&mut conn, r#"{"action":"ping"}"#, now),
        [PONG, COMPLETE]
    );
    assert_eq!(
        text(&mut conn, r#"{"action":"ping","payload":null}"#, now),
        [PONG, COMPLETE]
    );
}

#[test]
fn declared_ping_is_delivered_as_a_message() {
    let now = Instant::now();
    let mut conn: Connection<WithPing, NoEvent> =
        open_with(completing(), "chan.1", Some(json!(7)), &[], now);
    assert!(!conn.protocol().answers_ping());
    for frame in [
        r#"{"action":"ping"}"#,
        r#"{"action":"ping","payload":null}"#,
    ] {
        conn.handle_frame(InFrame::Text(frame), now).unwrap();
        let out = drain(&mut conn);
        assert!(
            matches!(&out[..], [Output::Message(WithPing::Ping)]),
            "{frame}: {:?}",
            describe(&out)
        );
        conn.message_handled(Handled::Completed).unwrap();
        assert_eq!(describe(&drain(&mut conn)), [COMPLETE]);
    }
}

#[test]
fn complete_follows_a_message_only_after_message_handled() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    conn.handle_frame(
        InFrame::Text(r#"{"action":"echo","payload":{"content":"hi"}}"#),
        now,
    )
    .unwrap();
    let out = drain(&mut conn);
    let [Output::Message(Incoming::Echo(p))] = &out[..] else {
        panic!("{:?}", describe(&out))
    };
    assert_eq!(p.content, "hi");
    conn.send_message(&chat("Echo: hi")).unwrap();
    assert_eq!(
        describe(&drain(&mut conn)),
        [r#"{"action":"chat_message","payload":{"content":"Echo: hi"}}"#]
    );
    conn.message_handled(Handled::Completed).unwrap();
    assert_eq!(describe(&drain(&mut conn)), [COMPLETE]);
}

#[test]
fn pipelined_messages_each_get_their_complete() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    for n in 0..3 {
        let frame = format!(r#"{{"action":"echo","payload":{{"content":"{n}"}}}}"#);
        conn.handle_frame(InFrame::Text(&frame), now).unwrap();
    }
    let out = drain(&mut conn);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|o| matches!(o, Output::Message(_))));
    for _ in 0..3 {
        conn.message_handled(Handled::Completed).unwrap();
    }
    assert_eq!(describe(&drain(&mut conn)), [COMPLETE, COMPLETE, COMPLETE]);
    assert!(matches!(
        conn.message_handled(Handled::Completed),
        Err(ProtoError::NothingPending(_))
    ));
    assert!(drain(&mut conn).is_empty());
}

#[test]
fn handler_failure_sends_detail_then_complete_and_stays_open() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    text(
        &mut conn,
        r#"{"action":"echo","payload":{"content":"boom"}}"#,
        now,
    );
    conn.message_handled(Handled::Failed).unwrap();
    assert_eq!(describe(&drain(&mut conn)), [FAILED, COMPLETE]);
    assert_eq!(conn.state(), State::Open);
    assert_eq!(
        text(&mut conn, r#"{"action":"ping"}"#, now),
        [PONG, COMPLETE]
    );
}

#[test]
fn completion_off_sends_no_complete_frames() {
    let now = Instant::now();
    let mut conn = open(Options::default(), now);
    assert_eq!(text(&mut conn, r#"{"action":"ping"}"#, now), [PONG]);
    assert_eq!(text(&mut conn, r#"{"action":"echo"}"#, now).len(), 1);
    text(
        &mut conn,
        r#"{"action":"echo","payload":{"content":"x"}}"#,
        now,
    );
    conn.send_message(&chat("x")).unwrap();
    conn.message_handled(Handled::Completed).unwrap();
    assert_eq!(
        describe(&drain(&mut conn)),
        [r#"{"action":"chat_message","payload":{"content":"x"}}"#]
    );
    text(
        &mut conn,
        r#"{"action":"echo","payload":{"content":"x"}}"#,
        now,
    );
    conn.message_handled(Handled::Failed).unwrap();
    assert_eq!(describe(&drain(&mut conn)), [FAILED]);

    let mut other: Conn = open_with(Options::default(), "chan.2", Some(json!(8)), &["room"], now);
    other.send_group_message(&chat("g"), None, true).unwrap();
    let (_, message) = group_sends(&mut other).remove(0);
    conn.handle_layer_message(&message).unwrap();
    assert_eq!(
        describe(&drain(&mut conn)),
        [
            r#"{"action":"chat_message","payload":{"content":"g"},"is_mine":false,"is_current":false}"#
        ]
    );

    let event = LayerMessage::event(&ChatEvent::Reset).unwrap();
    conn.handle_layer_message(&event).unwrap();
    assert_eq!(describe(&drain(&mut conn)), ["<event Reset>"]);
    conn.event_handled().unwrap();
    assert!(drain(&mut conn).is_empty());
    let unknown = LayerMessage::from_json(
        br#"{"type":"handle_channel_event","event_data":{"handler":"nope","payload":null}}"#,
    )
    .unwrap();
    conn.handle_layer_message(&unknown).unwrap();
    assert!(matches!(
        &drain(&mut conn)[..],
        [Output::LayerRejected(LayerRejection::InvalidEvent(_))]
    ));
}

// ---------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------

#[test]
fn group_message_goes_to_each_own_group_sharing_one_envelope() {
    let now = Instant::now();
    let mut conn: Conn = open_with(
        completing(),
        "chan.a",
        Some(json!(7)),
        &["room", "lobby"],
        now,
    );
    conn.send_group_message(&chat("hi"), None, true).unwrap();
    assert!(drain(&mut conn).is_empty());
    let sends = group_sends(&mut conn);
    assert_eq!(sends[0].0, "room");
    assert_eq!(sends[1].0, "lobby");
    assert!(Arc::ptr_eq(&sends[0].1, &sends[1].1));
    assert_eq!(
        sends[0].1.to_json(),
        r#"{"type":"send_group_member","content":{"action":"chat_message","payload":{"content":"hi"}},"kind":"message","exclude_current":true,"from_channel":"chan.a","from_user_pk":7,"seq":0}"#
    );
}

#[test]
fn a_member_of_several_target_groups_receives_a_message_once() {
    let now = Instant::now();
    let mut sender: Conn = open_with(completing(), "chan.s", Some(json!(1)), &["a", "b"], now);
    let mut member: Conn = open_with(completing(), "chan.m", Some(json!(2)), &["a", "b"], now);
    drain(&mut member);
    sender
        .send_group_message(&chat("once"), None, true)
        .unwrap();
    let sends = group_sends(&mut sender);
    assert_eq!(sends.len(), 2);
    for (_, message) in &sends {
        member.handle_layer_message(message).unwrap();
    }
    // Also across processes: the envelope survives the wire with its sequence number.
    let wire = LayerMessage::from_json(sends[0].1.to_json().as_bytes()).unwrap();
    member.handle_layer_message(&wire).unwrap();
    let frames: Vec<String> = drain(&mut member)
        .into_iter()
        .filter_map(|o| match o {
            Output::Frame(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(
        frames.len(),
        2,
        "one message and one group_complete: {frames:?}"
    );
    // A single-group message carries no sequence number and is never deduplicated.
    sender
        .send_group_message(&chat("one group"), Some(&["a".to_owned()]), true)
        .unwrap();
    let sends = group_sends(&mut sender);
    assert!(!sends[0].1.to_json().contains("seq"));
}

#[test]
fn outbound_bytes_are_bounded_too() {
    let now = Instant::now();
    let options = Options {
        max_outbound_bytes: 100,
        heartbeat: None,
        ..Options::default()
    };
    let mut conn: Conn = open_with(options, "chan.b", None, &[], now);
    conn.handle_frames_written(usize::MAX);
    drain(&mut conn);
    let big = "x".repeat(60);
    conn.send_message(&json!({"action": "a", "payload": big}))
        .unwrap();
    assert!(conn.outbound_backlog_bytes() > 60);
    conn.send_message(&json!({"action": "a", "payload": big}))
        .unwrap();
    let out = drain(&mut conn);
    assert!(
        matches!(out.last(), Some(Output::Close { code: 4008, .. })),
        "{:?}",
        describe(&out)
    );
}

#[test]
fn one_large_frame_is_sent_when_nothing_else_waits() {
    let now = Instant::now();
    let options = Options {
        max_outbound_bytes: 10,
        heartbeat: None,
        ..Options::default()
    };
    let mut conn: Conn = open_with(options, "chan.c", None, &[], now);
    conn.handle_frames_written(usize::MAX);
    drain(&mut conn);
    conn.send_message(&json!({"action": "a", "payload": "more than ten bytes"}))
        .unwrap();
    assert!(matches!(drain(&mut conn).as_slice(), [Output::Frame(_)]));
    conn.handle_frames_written(1);
    assert_eq!(conn.outbound_backlog_bytes(), 0);
}

#[test]
fn an_out_of_range_rejection_status_becomes_500() {
    let now = Instant::now();
    let mut conn: Conn = Connection::new(
        Arc::new(Protocol::new(Options::default()).unwrap()),
        "chan.r",
        now,
    );
    conn.handle_auth(
        AuthOutcome::Rejected {
            status: 1234,
            detail: "x".into(),
        },
        now,
    )
    .unwrap();
    let out = drain(&mut conn);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Close { code: 4500, .. }))
    );
}

#[test]
fn a_huge_unknown_tag_is_shortened_in_the_error() {
    let tag = "t".repeat(10_000);
    let frame = format!(r#"{{"action":"{tag}","payload":null}}"#);
    let errors = errors_for(&frame);
    let msg = errors[0]["msg"].as_str().unwrap();
    assert!(msg.len() < 300, "{}", msg.len());
    assert!(msg.contains("..."));
}

#[test]
fn group_message_to_explicit_groups() {
    let now = Instant::now();
    let mut conn: Conn = open_with(completing(), "chan.a", Some(json!(7)), &["room"], now);
    let targets = ["x".to_owned(), "y".to_owned()];
    conn.send_group_message(&chat("hi"), Some(&targets), false)
        .unwrap();
    assert!(drain(&mut conn).is_empty());
    let sends = group_sends(&mut conn);
    assert_eq!(sends[0].0, "x");
    assert_eq!(sends[1].0, "y");
    assert!(Arc::ptr_eq(&sends[0].1, &sends[1].1));
    assert!(sends[0].1.to_json().contains(r#""exclude_current":false"#));
}

#[test]
fn group_message_content_must_be_an_object() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    assert!(matches!(
        conn.send_group_message(&"plain string", None, true),
        Err(SendError::Encode(EncodeError::NotAnObject))
    ));
    assert!(drain(&mut conn).is_empty());
    assert!(drain_layer(&mut conn).is_empty());
}

/// Sender user 7 on `chan.a`; receivers: the same user on `chan.b`, user 8
/// on `chan.c`, an anonymous user on `chan.d`, all in `room`.
fn room(pk: Option<Value>, options: &Options, now: Instant) -> [Conn; 4] {
    [
        open_with(options.clone(), "chan.a", pk, &["room"], now),
        open_with(options.clone(), "chan.b", Some(json!(7)), &["room"], now),
        open_with(options.clone(), "chan.c", Some(json!(8)), &["room"], now),
        open_with(options.clone(), "chan.d", None, &["room"], now),
    ]
}

fn relay(conn: &mut Conn, message: &LayerMessage) -> Vec<String> {
    conn.handle_layer_message(message).unwrap();
    describe(&drain(conn))
}

fn stamped(content: &str, mine: bool, current: bool) -> String {
    let inner = content.strip_suffix('}').unwrap();
    format!(r#"{inner},"is_mine":{mine},"is_current":{current}}}"#)
}

#[test]
fn group_flags_is_mine_and_is_current_per_receiver() {
    let now = Instant::now();
    let [mut sender, mut same_user, mut other_user, mut anon] =
        room(Some(json!(7)), &completing(), now);
    sender.send_group_message(&chat("hi"), None, false).unwrap();
    let (_, message) = group_sends(&mut sender).remove(0);
    let content = r#"{"action":"chat_message","payload":{"content":"hi"}}"#;
    // The same envelope, in this process and after crossing to another one.
    let remote = LayerMessage::from_json(message.to_json().as_bytes()).unwrap();
    for message in [&*message, &remote] {
        assert_eq!(
            relay(&mut sender, message),
            [stamped(content, true, true), GROUP_COMPLETE.to_owned()]
        );
        assert_eq!(
            relay(&mut same_user, message),
            [stamped(content, true, false), GROUP_COMPLETE.to_owned()]
        );
        assert_eq!(
            relay(&mut other_user, message),
            [stamped(content, false, false), GROUP_COMPLETE.to_owned()]
        );
        assert_eq!(
            relay(&mut anon, message),
            [stamped(content, false, false), GROUP_COMPLETE.to_owned()]
        );
    }
}

#[test]
fn exclude_current_skips_the_sender_without_group_complete() {
    let now = Instant::now();
    let [mut sender, mut same_user, mut other_user, _] = room(Some(json!(7)), &completing(), now);
    text(
        &mut sender,
        r#"{"action":"echo","payload":{"content":"hi"}}"#,
        now,
    );
    sender.send_group_message(&chat("hi"), None, true).unwrap();
    sender.message_handled(Handled::Completed).unwrap();
    assert_eq!(describe(&drain(&mut sender)), [COMPLETE]);
    let (_, message) = group_sends(&mut sender).remove(0);
    assert!(relay(&mut sender, &message).is_empty());
    let content = r#"{"action":"chat_message","payload":{"content":"hi"}}"#;
    assert_eq!(
        relay(&mut same_user, &message),
        [stamped(content, true, false), GROUP_COMPLETE.to_owned()]
    );
    assert_eq!(
        relay(&mut other_user, &message),
        [stamped(content, false, false), GROUP_COMPLETE.to_owned()]
    );
}

#[test]
fn anonymous_sender_is_never_mine() {
    let now = Instant::now();
    let [mut sender, mut user7, mut user8, mut anon] = room(None, &completing(), now);
    sender
        .send_group_message(&chat("anon"), None, false)
        .unwrap();
    let (_, message) = group_sends(&mut sender).remove(0);
    assert!(message.to_json().ends_with(r#""from_user_pk":null}"#));
    let content = r#"{"action":"chat_message","payload":{"content":"anon"}}"#;
    assert_eq!(
        relay(&mut sender, &message)[0],
        stamped(content, false, true)
    );
    assert_eq!(
        relay(&mut user7, &message)[0],
        stamped(content, false, false)
    );
    assert_eq!(
        relay(&mut user8, &message)[0],
        stamped(content, false, false)
    );
    assert_eq!(
        relay(&mut anon, &message)[0],
        stamped(content, false, false)
    );
}

#[test]
fn raw_json_group_messages_are_stamped_the_same_way() {
    let now = Instant::now();
    let [mut sender, mut same_user, mut other_user, _] = room(Some(json!(7)), &completing(), now);
    let mut content = Map::new();
    content.insert("raw".into(), json!("raw"));
    content.insert("n".into(), json!([1, {"k": null}]));
    sender.send_group_json(&content, None, false).unwrap();
    let sends = group_sends(&mut sender);
    assert_eq!(sends.len(), 1);
    let message = &sends[0].1;
    assert_eq!(
        message.to_json(),
        r#"{"type":"send_group_member","content":{"raw":"raw","n":[1,{"k":null}]},"kind":"json","exclude_current":false,"from_channel":"chan.a","from_user_pk":7}"#
    );
    let content = r#"{"raw":"raw","n":[1,{"k":null}]}"#;
    assert_eq!(
        relay(&mut sender, message),
        [stamped(content, true, true), GROUP_COMPLETE.to_owned()]
    );
    assert_eq!(
        relay(&mut same_user, message),
        [stamped(content, true, false), GROUP_COMPLETE.to_owned()]
    );
    assert_eq!(
        relay(&mut other_user, message),
        [stamped(content, false, false), GROUP_COMPLETE.to_owned()]
    );
    // An empty object gets just the two flags.
    sender.send_group_json(&Map::new(), None, false).unwrap();
    let (_, empty) = group_sends(&mut sender).remove(0);
    let out = relay(&mut other_user, &empty);
    let value: Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(value, json!({"is_mine": false, "is_current": false}));
}

#[test]
fn group_flags_replace_flags_already_in_the_content() {
    // A relayed frame that already carries the flags (e.g. forwarded from
    // another group) gets one `is_mine` and one `is_current`: the receiver's.
    let now = Instant::now();
    let [mut sender, _, mut other_user, _] = room(Some(json!(7)), &completing(), now);
    let mut content = Map::new();
    content.insert("is_mine".into(), json!(true));
    content.insert("is_current".into(), json!(true));
    content.insert("x".into(), json!(1));
    sender.send_group_json(&content, None, true).unwrap();
    let (_, message) = group_sends(&mut sender).remove(0);
    let out = relay(&mut other_user, &message);
    assert_eq!(out[0].matches("\"is_mine\"").count(), 1, "{}", out[0]);
    assert_eq!(out[0].matches("\"is_current\"").count(), 1, "{}", out[0]);
    let value: Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(value["is_mine"], false);
    assert_eq!(value["is_current"], false);
}

// ---------------------------------------------------------------------------
// Channel events
// ---------------------------------------------------------------------------

#[test]
fn channel_event_is_decoded_and_delivered_as_event() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    let event = LayerMessage::event(&ChatEvent::Notify(MessagePayload {
        content: "hi".into(),
    }))
    .unwrap();
    assert_eq!(
        event.to_json(),
        r#"{"type":"handle_channel_event","event_data":{"handler":"notify","payload":{"content":"hi"}}}"#
    );
    conn.handle_layer_message(&event).unwrap();
    let out = drain(&mut conn);
    let [Output::Event(ChatEvent::Notify(p))] = &out[..] else {
        panic!("{:?}", describe(&out))
    };
    assert_eq!(p.content, "hi");
    // Nothing reaches the client by itself; the handler decides, then complete.
    conn.send_message(&chat("notified")).unwrap();
    conn.event_handled().unwrap();
    assert_eq!(
        describe(&drain(&mut conn)),
        [
            r#"{"action":"chat_message","payload":{"content":"notified"}}"#,
            COMPLETE
        ]
    );
}

#[test]
fn channel_event_from_another_process_is_decoded() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    for wire in [
        r#"{"type":"handle_channel_event","event_data":{"handler":"reset","payload":null}}"#,
        r#"{"type":"handle_channel_event","event_data":{"handler":"reset"}}"#,
    ] {
        let message = LayerMessage::from_json(wire.as_bytes()).unwrap();
        conn.handle_layer_message(&message).unwrap();
        assert_eq!(describe(&drain(&mut conn)), ["<event Reset>"], "{wire}");
        conn.event_handled().unwrap();
        assert_eq!(describe(&drain(&mut conn)), [COMPLETE]);
    }
    assert!(matches!(
        conn.event_handled(),
        Err(ProtoError::NothingPending(_))
    ));
}

#[test]
fn rejected_events_still_send_complete() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    let unknown = LayerMessage::from_json(
        br#"{"type":"handle_channel_event","event_data":{"handler":"nope","payload":null}}"#,
    )
    .unwrap();
    conn.handle_layer_message(&unknown).unwrap();
    match &drain(&mut conn)[..] {
        [
            Output::Frame(complete),
            Output::LayerRejected(LayerRejection::InvalidEvent(errors)),
        ] => {
            assert_eq!(complete, COMPLETE);
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].kind, "union_tag_invalid");
        }
        other => panic!("{:?}", describe(other)),
    }

    let invalid = LayerMessage::from_json(
        br#"{"type":"handle_channel_event","event_data":{"handler":"notify","payload":{}}}"#,
    )
    .unwrap();
    conn.handle_layer_message(&invalid).unwrap();
    assert!(matches!(
        &drain(&mut conn)[..],
        [Output::Frame(c), Output::LayerRejected(LayerRejection::InvalidEvent(_))] if c == COMPLETE
    ));
    assert_eq!(conn.state(), State::Open);

    // An endpoint without events rejects every event the same way.
    let mut plain: Connection<Incoming, NoEvent> =
        open_with(completing(), "chan.2", Some(json!(7)), &[], now);
    let event = LayerMessage::event(&ChatEvent::Reset).unwrap();
    plain.handle_layer_message(&event).unwrap();
    assert!(matches!(
        &drain(&mut plain)[..],
        [Output::Frame(c), Output::LayerRejected(LayerRejection::InvalidEvent(_))] if c == COMPLETE
    ));
    assert_eq!(plain.state(), State::Open);
}

// ---------------------------------------------------------------------------
// Camelize
// ---------------------------------------------------------------------------

fn camel() -> Options {
    Options {
        camelize: true,
        ..completing()
    }
}

#[test]
fn camelize_authentication_frame() {
    let now = Instant::now();
    let mut conn: Conn = Connection::new(protocol(camel()), "chan.1", now);
    conn.handle_auth(accepted(Some(json!(7)), &[]), now)
        .unwrap();
    assert_eq!(
        describe(&drain(&mut conn)),
        [
            r#"{"action":"authentication","payload":{"statusCode":200,"statusText":"OK","data":{"detail":"OK"}}}"#
        ]
    );
}

#[test]
fn camelize_outgoing_keys_not_values() {
    let now = Instant::now();
    let mut conn = open(camel(), now);
    conn.send_message(&Outgoing::SnakeReply(SnakePayload {
        my_field: "snake_value".into(),
    }))
    .unwrap();
    assert_eq!(
        describe(&drain(&mut conn)),
        [r#"{"action":"snake_reply","payload":{"myField":"snake_value"}}"#]
    );
}

#[test]
fn camelize_group_flags() {
    let now = Instant::now();
    let [mut sender, mut same_user, ..] = room(Some(json!(7)), &camel(), now);
    sender
        .send_group_message(
            &Outgoing::SnakeReply(SnakePayload {
                my_field: "v_x".into(),
            }),
            None,
            false,
        )
        .unwrap();
    let (_, message) = group_sends(&mut sender).remove(0);
    assert_eq!(
        relay(&mut sender, &message),
        [
            r#"{"action":"snake_reply","payload":{"myField":"v_x"},"isMine":true,"isCurrent":true}"#,
            GROUP_COMPLETE
        ]
    );
    assert_eq!(
        relay(&mut same_user, &message)[0],
        r#"{"action":"snake_reply","payload":{"myField":"v_x"},"isMine":true,"isCurrent":false}"#
    );
}

#[test]
fn camelize_incoming_keys_are_decamelized() {
    let now = Instant::now();
    let mut conn = open(camel(), now);
    for frame in [
        r#"{"action":"snake","payload":{"myField":"someValue"}}"#,
        r#"{"action":"snake","payload":{"my_field":"someValue"}}"#,
    ] {
        assert_eq!(
            text(&mut conn, frame, now),
            [format!(
                "<message {:?}>",
                Incoming::Snake(SnakePayload {
                    my_field: "someValue".into()
                })
            )],
            "{frame}"
        );
        conn.message_handled(Handled::Completed).unwrap();
        assert_eq!(describe(&drain(&mut conn)), [COMPLETE]);
    }
    assert_eq!(
        text(&mut conn, r#"{"action":"ping"}"#, now),
        [PONG, COMPLETE]
    );
}

#[test]
fn camelize_error_loc_stays_snake_case() {
    let text = error_frame_in::<Incoming>(
        camel(),
        InFrame::Text(r#"{"action":"snake","payload":{"otherField":1}}"#),
    );
    assert_eq!(
        text,
        r#"{"action":"error","payload":[{"type":"missing","loc":["snake","payload","my_field"],"msg":"Field required"}]}"#
    );
}

// ---------------------------------------------------------------------------
// Limits: frame size, outbound queue, rate limit, heartbeat
// ---------------------------------------------------------------------------

#[test]
fn oversized_frame_closes_1009_and_leaves_groups() {
    let now = Instant::now();
    let frame = r#"{"action":"echo","payload":{"content":"hi"}}"#;
    let options = Options {
        max_frame_size: frame.len(),
        ..completing()
    };
    let mut conn: Conn = open_with(options.clone(), "chan.1", Some(json!(7)), &["a", "b"], now);
    // Exactly at the limit is fine.
    assert_eq!(text(&mut conn, frame, now).len(), 1);
    conn.message_handled(Handled::Completed).unwrap();
    drain(&mut conn);
    let big = format!("{frame} ");
    assert_eq!(text(&mut conn, &big, now), ["<close 1009>"]);
    assert_eq!(layer_log(&mut conn), ["<leave a,b>"]);
    assert!(conn.groups().is_empty());

    let mut conn: Conn = open_with(options, "chan.2", Some(json!(7)), &["a"], now);
    conn.handle_frame(InFrame::Binary(big.as_bytes()), now)
        .unwrap();
    assert_eq!(describe_all(&mut conn), ["<close 1009>", "<leave a>"]);
}

fn bounded() -> Options {
    Options {
        max_outbound_frames: 3,
        ..completing()
    }
}

#[test]
fn outbound_overflow_closes_4008() {
    let now = Instant::now();
    let mut conn: Conn = Connection::new(protocol(bounded()), "chan.1", now);
    conn.handle_auth(accepted(Some(json!(7)), &["room"]), now)
        .unwrap();
    drain_layer(&mut conn);
    conn.handle_groups_joined();
    drain(&mut conn); // frame 1: authentication
    conn.send_message(&chat("2")).unwrap();
    conn.send_message(&chat("3")).unwrap();
    assert_eq!(drain(&mut conn).len(), 2);
    assert_eq!(conn.outbound_backlog(), 3);
    let _ = conn.send_message(&chat("4"));
    assert_eq!(
        describe_all(&mut conn),
        ["<close 4008 discarding>", "<leave room>"]
    );
    assert!(matches!(
        conn.send_message(&chat("5")),
        Err(SendError::Closed)
    ));
    assert!(drain(&mut conn).is_empty());
}

#[test]
fn overflow_from_an_error_and_its_complete_closes_4008() {
    let now = Instant::now();
    let mut conn: Conn = Connection::new(protocol(bounded()), "chan.1", now);
    conn.handle_auth(accepted(Some(json!(7)), &[]), now)
        .unwrap();
    drain(&mut conn);
    // Error frame + complete fill the queue; the next pong overflows it.
    assert_eq!(text(&mut conn, "{not json", now).len(), 2);
    assert_eq!(
        text(&mut conn, r#"{"action":"ping"}"#, now),
        ["<close 4008 discarding>"]
    );
}

#[test]
fn frames_written_make_room_again() {
    let now = Instant::now();
    let mut conn: Conn = Connection::new(protocol(bounded()), "chan.1", now);
    conn.handle_auth(accepted(Some(json!(7)), &["room"]), now)
        .unwrap();
    drain(&mut conn);
    conn.send_message(&chat("2")).unwrap();
    conn.send_message(&chat("3")).unwrap();
    drain(&mut conn);
    conn.handle_frames_written(3);
    assert_eq!(conn.outbound_backlog(), 0);
    for n in 0..3 {
        conn.send_message(&chat(&n.to_string())).unwrap();
    }
    assert_eq!(drain(&mut conn).len(), 3);
    conn.handle_frames_written(1);
    conn.send_message(&chat("again")).unwrap();
    assert_eq!(drain(&mut conn).len(), 1);
    assert_eq!(conn.state(), State::Open);
    assert_eq!(conn.outbound_backlog(), 3);
}

#[test]
fn rate_limit_answers_excess_frames_with_rate_limited() {
    let now = Instant::now();
    let options = Options {
        rate_limit: Some(RateLimit {
            per_second: 2,
            burst: 2,
        }),
        ..completing()
    };
    let mut conn = open(options, now);
    let ping = r#"{"action":"ping"}"#;
    assert_eq!(text(&mut conn, ping, now), [PONG, COMPLETE]);
    assert_eq!(text(&mut conn, ping, now), [PONG, COMPLETE]);
    conn.handle_frame(InFrame::Text(ping), now).unwrap();
    let out = drain(&mut conn);
    let f = frames(&out);
    assert_eq!(f.len(), 2, "{:?}", describe(&out));
    assert_eq!(f[0]["action"], "error");
    let errors = f[0]["payload"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["type"], "rate_limited");
    assert_eq!(errors[0]["loc"], json!([]));
    assert!(!errors[0]["msg"].as_str().unwrap().is_empty());
    assert_eq!(f[1], json!({"action": "complete", "payload": null}));
    assert_eq!(conn.state(), State::Open);
    let later = now + Duration::from_secs(1);
    assert_eq!(text(&mut conn, ping, later), [PONG, COMPLETE]);
}

#[test]
fn the_input_budget_pauses_reading_and_refuses_what_is_read_anyway() {
    let now = Instant::now();
    let options = Options {
        input_budget: Some(InputBudget {
            bytes_per_second: 100,
            burst_bytes: 40,
        }),
        heartbeat: None,
        ..completing()
    };
    let mut conn = open(options, now);
    let ping = r#"{"action":"ping"}"#; // 17 bytes
    assert_eq!(conn.input_paused_until(), None);
    assert_eq!(text(&mut conn, ping, now), [PONG, COMPLETE]);
    assert_eq!(text(&mut conn, ping, now), [PONG, COMPLETE]);
    assert_eq!(conn.input_paused_until(), None, "34 of 40 bytes spent");
    // The third overdraws the budget: accepted, then reading waits.
    assert_eq!(text(&mut conn, ping, now), [PONG, COMPLETE]);
    let resume = conn.input_paused_until().expect("overdrawn by 11 bytes");
    assert!(resume > now && resume <= now + Duration::from_millis(120));
    assert_eq!(
        conn.poll_timeout(),
        Some(resume),
        "the runtime wakes to read again"
    );
    // A runtime that reads anyway gets the frame refused.
    conn.handle_frame(InFrame::Text(ping), now).unwrap();
    let out = drain(&mut conn);
    let f = frames(&out);
    assert_eq!(f[0]["action"], "error", "{:?}", describe(&out));
    assert_eq!(f[0]["payload"][0]["type"], "rate_limited");
    assert!(
        f[0]["payload"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("100 bytes per second")
    );
    assert_eq!(conn.state(), State::Open);
    // Paid back: read and accepted again.
    assert_eq!(text(&mut conn, ping, resume), [PONG, COMPLETE]);
}

#[test]
fn the_input_budget_is_on_by_default_and_can_be_turned_off() {
    assert_eq!(
        Options::default().input_budget,
        Some(InputBudget::default())
    );
    let now = Instant::now();
    let off = Options {
        input_budget: None,
        ..completing()
    };
    let mut conn = open(off, now);
    let big = format!(r#"{{"action":"ping","pad":"{}"}}"#, "x".repeat(900_000));
    for _ in 0..20 {
        conn.handle_frame(InFrame::Text(&big), now).unwrap();
        drain(&mut conn);
        assert_eq!(conn.input_paused_until(), None);
    }
    let zero = Options {
        input_budget: Some(InputBudget {
            bytes_per_second: 0,
            burst_bytes: 1,
        }),
        ..Options::default()
    };
    assert!(zero.validate().is_err());
}

fn beating() -> Options {
    Options {
        heartbeat: Some(Heartbeat {
            interval: Duration::from_secs(10),
            max_missed: 2,
        }),
        ..completing()
    }
}

const SEC: Duration = Duration::from_secs(1);

#[test]
fn poll_timeout_is_none_before_auth_and_the_next_beat_after() {
    let t0 = Instant::now();
    let mut conn: Conn = Connection::new(protocol(beating()), "chan.1", t0);
    assert_eq!(conn.poll_timeout(), None);
    let auth_at = t0 + 3 * SEC;
    conn.handle_auth(accepted(Some(json!(7)), &[]), auth_at)
        .unwrap();
    assert_eq!(conn.poll_timeout(), Some(auth_at + 10 * SEC));

    let off = Options {
        heartbeat: None,
        ..completing()
    };
    let quiet = open(off, t0);
    assert_eq!(quiet.poll_timeout(), None);
}

#[test]
fn heartbeat_pings_at_each_deadline() {
    let t0 = Instant::now();
    let mut conn = open(beating(), t0);
    conn.handle_timeout(t0 + 5 * SEC);
    assert!(drain(&mut conn).is_empty());
    conn.handle_timeout(t0 + 10 * SEC);
    assert_eq!(describe(&drain(&mut conn)), ["<ping>"]);
    assert_eq!(conn.poll_timeout(), Some(t0 + 20 * SEC));
    conn.handle_frame(InFrame::Pong, t0 + 11 * SEC).unwrap();
    assert!(drain(&mut conn).is_empty());
    conn.handle_timeout(t0 + 20 * SEC);
    assert_eq!(describe(&drain(&mut conn)), ["<ping>"]);
    assert_eq!(conn.poll_timeout(), Some(t0 + 30 * SEC));
}

#[test]
fn heartbeat_silence_closes_4408_and_leaves_groups() {
    let t0 = Instant::now();
    let mut conn = open(beating(), t0);
    conn.handle_timeout(t0 + 10 * SEC);
    assert_eq!(describe(&drain(&mut conn)), ["<ping>"]);
    conn.handle_timeout(t0 + 20 * SEC);
    assert_eq!(describe(&drain(&mut conn)), ["<ping>"]);
    // Two pings went unanswered.
    conn.handle_timeout(t0 + 30 * SEC);
    assert_eq!(describe_all(&mut conn), ["<close 4408>", "<leave room>"]);
    assert_eq!(conn.poll_timeout(), None);
    conn.handle_timeout(t0 + 40 * SEC);
    assert!(drain(&mut conn).is_empty());
}

#[test]
fn heartbeat_any_frame_resets_the_count() {
    let t0 = Instant::now();
    for frame in [
        InFrame::Pong,
        InFrame::Ping,
        InFrame::Text(r#"{"action":"ping"}"#),
        InFrame::Text("{not json"),
        InFrame::Binary(b"x"),
    ] {
        let mut conn = open(beating(), t0);
        conn.handle_timeout(t0 + 10 * SEC);
        conn.handle_timeout(t0 + 20 * SEC);
        assert_eq!(describe(&drain(&mut conn)), ["<ping>", "<ping>"]);
        conn.handle_frame(frame, t0 + 25 * SEC).unwrap();
        drain(&mut conn);
        conn.handle_timeout(t0 + 30 * SEC);
        assert_eq!(describe(&drain(&mut conn)), ["<ping>"], "{frame:?}");
        conn.handle_timeout(t0 + 40 * SEC);
        assert_eq!(describe(&drain(&mut conn)), ["<ping>"], "{frame:?}");
        conn.handle_timeout(t0 + 50 * SEC);
        assert_eq!(
            describe_all(&mut conn),
            ["<close 4408>", "<leave room>"],
            "{frame:?}"
        );
    }
}

#[test]
fn heartbeat_never_blames_the_peer_while_reads_are_paused() {
    let t0 = Instant::now();
    let mut conn = open(beating(), t0);
    conn.handle_reads_paused();
    // Pings go on, silence does not count: the answers may wait unread.
    for i in 1..=5 {
        conn.handle_timeout(t0 + i * 10 * SEC);
        assert_eq!(describe(&drain(&mut conn)), ["<ping>"], "beat {i}");
    }
    assert_eq!(conn.state(), State::Open);
    // Reading again gives the peer a fresh interval, then the usual count.
    conn.handle_reads_resumed();
    conn.handle_timeout(t0 + 60 * SEC);
    conn.handle_timeout(t0 + 70 * SEC);
    assert_eq!(describe(&drain(&mut conn)), ["<ping>", "<ping>"]);
    conn.handle_timeout(t0 + 80 * SEC);
    assert_eq!(describe_all(&mut conn), ["<close 4408>", "<leave room>"]);
}

#[test]
fn early_and_repeated_timeouts_are_harmless() {
    let t0 = Instant::now();
    let mut conn = open(beating(), t0);
    let deadline = conn.poll_timeout().unwrap();
    conn.handle_timeout(t0);
    conn.handle_timeout(deadline - Duration::from_millis(1));
    assert!(drain(&mut conn).is_empty());
    conn.handle_timeout(deadline);
    conn.handle_timeout(deadline);
    assert_eq!(describe(&drain(&mut conn)), ["<ping>"]);
}

#[test]
fn transport_errors_close_with_their_codes_and_leave_groups() {
    for (error, code) in [
        (TransportError::MessageTooBig, 1009),
        (TransportError::ProtocolViolation, 1002),
        (TransportError::InvalidUtf8, 1007),
    ] {
        let mut conn = open(completing(), Instant::now());
        conn.handle_transport_error(error);
        assert_eq!(
            describe_all(&mut conn),
            [format!("<close {code}>"), "<leave room>".to_owned()]
        );
        assert_eq!(conn.state(), State::Closing);
    }
}

#[test]
fn failures_close_with_1011_before_and_after_authentication() {
    let now = Instant::now();
    for failure in [
        Failure::LayerUnavailable,
        Failure::LayerClosed,
        Failure::Application,
    ] {
        let mut conn = open(completing(), now);
        conn.handle_failure(failure);
        assert_eq!(describe_all(&mut conn), ["<close 1011>", "<leave room>"]);
    }
    // A channel the layer could not register: closed before any frame.
    let mut conn: Conn = Connection::new(protocol(completing()), "", now);
    conn.handle_failure(Failure::LayerUnavailable);
    assert!(matches!(
        &drain(&mut conn)[..],
        [Output::Close {
            code: 1011,
            reason: "channel layer unavailable",
            discard_queued: false
        }]
    ));
    conn.handle_auth(accepted(None, &["g"]), now).unwrap();
    assert!(describe_all(&mut conn).is_empty());
}

#[test]
fn backlog_is_high_at_half_the_bound() {
    let now = Instant::now();
    // Four frames may wait: high from two on.
    let options = Options {
        max_outbound_frames: 4,
        ..completing()
    };
    let mut conn: Conn = open_with(options, "chan.1", None, &[], now);
    conn.handle_frames_written(usize::MAX);
    assert!(!conn.is_backlog_high());
    conn.send_message(&chat("1")).unwrap();
    assert!(!conn.is_backlog_high());
    conn.send_message(&chat("2")).unwrap();
    assert!(conn.is_backlog_high());
    conn.handle_frames_written(1);
    assert!(!conn.is_backlog_high());
    // The byte bound counts too.
    let options = Options {
        max_outbound_bytes: 100,
        ..completing()
    };
    let mut conn: Conn = open_with(options, "chan.1", None, &[], now);
    conn.handle_frames_written(usize::MAX);
    conn.send_message(&chat(&"x".repeat(60))).unwrap();
    assert!(conn.is_backlog_high());
}

#[test]
fn serialized_messages_are_sent_as_is_or_camelized() {
    let now = Instant::now();
    let reply = SnakePayload {
        my_field: "x".into(),
    };
    let mut conn = open(completing(), now);
    conn.send_serialized(Serialized::new(&reply).unwrap())
        .unwrap();
    assert_eq!(describe(&drain(&mut conn)), [r#"{"my_field":"x"}"#]);
    let camel = Options {
        camelize: true,
        ..completing()
    };
    let mut conn = open(camel, now);
    conn.send_serialized(Serialized::new(&reply).unwrap())
        .unwrap();
    assert_eq!(describe(&drain(&mut conn)), [r#"{"myField":"x"}"#]);
    conn.close(1000, "bye");
    assert!(matches!(
        conn.send_serialized(Serialized::new(&reply).unwrap()),
        Err(SendError::Closed)
    ));
}

#[test]
fn gap_notices_reach_the_application_and_optionally_the_client() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    conn.handle_layer_message(&LayerMessage::gap("room"))
        .unwrap();
    assert_eq!(describe(&drain(&mut conn)), ["<gap room>"]);
    // A group this connection is not in: nothing.
    conn.handle_layer_message(&LayerMessage::gap("other"))
        .unwrap();
    assert!(drain(&mut conn).is_empty());
    let telling = Options {
        send_gap_frames: true,
        ..completing()
    };
    let mut conn = open(telling, now);
    conn.handle_layer_message(&LayerMessage::gap("room"))
        .unwrap();
    assert_eq!(
        describe(&drain(&mut conn)),
        [
            r#"{"action":"group_gap","payload":{"group":"room"}}"#,
            "<gap room>"
        ]
    );
}

#[test]
fn layer_commands_wait_on_their_own_queue() {
    let now = Instant::now();
    let mut conn: Conn = Connection::new(protocol(completing()), "chan.1", now);
    conn.handle_auth(accepted(Some(json!(7)), &["a", "b"]), now)
        .unwrap();
    assert_eq!(layer_log(&mut conn), ["<join a,b>"]);
    conn.handle_groups_joined();
    conn.send_group_message(&chat("hi"), None, true).unwrap();
    conn.send_message(&chat("direct")).unwrap();
    // Frames come out without waiting for any layer command.
    assert_eq!(drain(&mut conn).len(), 2);
    assert_eq!(layer_log(&mut conn), ["<group_send a>", "<group_send b>"]);
    conn.close(1000, "bye");
    assert_eq!(describe(&drain(&mut conn)), ["<close 1000>"]);
    assert_eq!(layer_log(&mut conn), ["<leave a,b>"]);
}

// ---------------------------------------------------------------------------
// Closing
// ---------------------------------------------------------------------------

#[test]
fn shutdown_closes_1001() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    conn.shutdown();
    assert_eq!(describe_all(&mut conn), ["<close 1001>", "<leave room>"]);
    assert_eq!(conn.state(), State::Closing);
}

#[test]
fn close_leaves_every_group_exactly_once() {
    let now = Instant::now();
    let mut conn: Conn = open_with(completing(), "chan.1", None, &["a", "b", "c"], now);
    conn.close(1000, "bye");
    assert_eq!(describe_all(&mut conn), ["<close 1000>", "<leave a,b,c>"]);
    conn.close(1000, "again");
    conn.shutdown();
    conn.handle_transport_closed();
    conn.handle_transport_closed();
    assert!(drain(&mut conn).is_empty());
    assert_eq!(conn.state(), State::Closed);
}

#[test]
fn transport_closed_leaves_every_group_exactly_once() {
    let now = Instant::now();
    let mut conn: Conn = open_with(completing(), "chan.1", None, &["a", "b"], now);
    conn.handle_transport_closed();
    assert_eq!(describe_all(&mut conn), ["<leave a,b>"]);
    assert_eq!(conn.state(), State::Closed);
    conn.handle_transport_closed();
    conn.close(1000, "late");
    assert!(describe_all(&mut conn).is_empty());
}

#[test]
fn client_close_frame_leaves_groups() {
    let now = Instant::now();
    let mut conn: Conn = open_with(completing(), "chan.1", None, &["a"], now);
    conn.handle_frame(InFrame::Close(Some(1000)), now).unwrap();
    let out = describe_all(&mut conn);
    assert_eq!(
        out.iter().filter(|l| *l == "<leave a>").count(),
        1,
        "{out:?}"
    );
    assert!(conn.groups().is_empty());
    conn.handle_transport_closed();
    assert!(drain(&mut conn).is_empty());
}

#[test]
fn after_close_every_input_is_closed() {
    let now = Instant::now();
    for transport_closed in [false, true] {
        let mut conn = open(completing(), now);
        // One message and one event in flight when the connection closes.
        text(
            &mut conn,
            r#"{"action":"echo","payload":{"content":"x"}}"#,
            now,
        );
        let event = LayerMessage::event(&ChatEvent::Reset).unwrap();
        conn.handle_layer_message(&event).unwrap();
        drain(&mut conn);
        conn.close(1000, "bye");
        if transport_closed {
            conn.handle_transport_closed();
        }
        drain(&mut conn);

        // Input after the close is ignored; sends say the connection is closed.
        let closed = |r: Result<(), SendError>| matches!(r, Err(SendError::Closed));
        conn.handle_frame(InFrame::Text(r#"{"action":"ping"}"#), now)
            .unwrap();
        conn.handle_frame(InFrame::Binary(b"x"), now).unwrap();
        conn.handle_frame(InFrame::Text(&"x".repeat(2 << 20)), now)
            .unwrap();
        conn.handle_transport_error(TransportError::ProtocolViolation);
        conn.handle_failure(Failure::Application);
        conn.handle_layer_message(&event).unwrap();
        assert!(closed(conn.send_message(&chat("late"))));
        assert!(closed(conn.send_group_message(&chat("late"), None, false)));
        assert!(closed(conn.send_group_json(&Map::new(), None, false)));
        conn.handle_auth(accepted(Some(json!(7)), &["x"]), now)
            .unwrap();
        conn.message_handled(Handled::Failed).unwrap();
        conn.event_handled().unwrap();
        conn.handle_timeout(now + Duration::from_secs(3600));
        conn.handle_frames_written(10);
        assert_eq!(conn.poll_timeout(), None);
        assert!(
            drain(&mut conn).is_empty(),
            "transport_closed={transport_closed}"
        );
    }
}

#[test]
fn no_frame_follows_a_close() {
    let now = Instant::now();
    let mut conn = open(completing(), now);
    text(
        &mut conn,
        r#"{"action":"echo","payload":{"content":"x"}}"#,
        now,
    );
    conn.close(1000, "bye");
    let _ = conn.send_message(&chat("after"));
    let _ = conn.message_handled(Handled::Completed);
    assert_eq!(describe_all(&mut conn), ["<close 1000>", "<leave room>"]);
}

// ---------------------------------------------------------------------------
// Options and configuration
// ---------------------------------------------------------------------------

#[test]
fn defaults_match_the_protocol() {
    let o = Options::default();
    assert_eq!(o.action_key, "action");
    assert!(o.send_authentication_message);
    assert!(!o.send_completion);
    assert!(!o.camelize);
    assert_eq!(o.max_frame_size, 1 << 20);
    assert_eq!(o.max_outbound_frames, 1024);
    assert_eq!(o.rate_limit, None);
    assert_eq!(
        o.heartbeat,
        Some(Heartbeat {
            interval: Duration::from_secs(30),
            max_missed: 2
        })
    );
    assert!(o.validate().is_ok());
}

#[test]
fn zero_max_frame_size_is_an_invalid_option() {
    let options = Options {
        max_frame_size: 0,
        ..Options::default()
    };
    match Protocol::<Incoming, ChatEvent>::new(options).err() {
        Some(ConfigError::InvalidOption { field, .. }) => assert_eq!(field, "max_frame_size"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_invalid_option_names_its_field() {
    let d = Options::default;
    let cases = [
        (
            Options {
                action_key: String::new(),
                ..d()
            },
            "action_key",
        ),
        (
            Options {
                max_outbound_frames: 0,
                ..d()
            },
            "max_outbound_frames",
        ),
        (
            Options {
                rate_limit: Some(RateLimit {
                    per_second: 0,
                    burst: 1,
                }),
                ..d()
            },
            "rate_limit",
        ),
        (
            Options {
                rate_limit: Some(RateLimit {
                    per_second: 1,
                    burst: 0,
                }),
                ..d()
            },
            "rate_limit",
        ),
        (
            Options {
                heartbeat: Some(Heartbeat {
                    interval: Duration::ZERO,
                    max_missed: 2,
                }),
                ..d()
            },
            "heartbeat",
        ),
        (
            Options {
                heartbeat: Some(Heartbeat {
                    interval: SEC,
                    max_missed: 0,
                }),
                ..d()
            },
            "heartbeat",
        ),
    ];
    for (options, expected) in cases {
        match Protocol::<Incoming, ChatEvent>::new(options).err() {
            Some(ConfigError::InvalidOption { field, .. }) => {
                assert!(field.starts_with(expected), "{field} for {expected}");
            }
            other => panic!("{expected}: {other:?}"),
        }
    }
}

#[test]
fn message_type_without_action_tag_is_not_tagged() {
    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    enum External {
        Echo(MessagePayload),
    }
    #[derive(Deserialize, JsonSchema)]
    #[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
    #[allow(dead_code)]
    enum OtherKey {
        Echo(MessagePayload),
    }
    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Plain {
        content: String,
    }
    assert!(matches!(
        Protocol::<External, NoEvent>::new(Options::default()).err(),
        Some(ConfigError::NotTagged { .. })
    ));
    assert!(matches!(
        Protocol::<OtherKey, NoEvent>::new(Options::default()).err(),
        Some(ConfigError::NotTagged { .. })
    ));
    assert!(matches!(
        Protocol::<Plain, NoEvent>::new(Options::default()).err(),
        Some(ConfigError::NotTagged { .. })
    ));
    // The same type is fine once the action key names its tag.
    let options = Options {
        action_key: "kind".into(),
        ..Options::default()
    };
    assert!(Protocol::<OtherKey, NoEvent>::new(options).is_ok());
}

#[test]
fn custom_action_key_is_used_for_decoding_and_errors() {
    #[derive(Debug, Deserialize, Serialize, JsonSchema)]
    #[serde(tag = "type", content = "payload", rename_all = "snake_case")]
    enum Typed {
        Echo(MessagePayload),
    }
    let options = Options {
        action_key: "type".into(),
        ..completing()
    };
    let now = Instant::now();
    let mut conn: Connection<Typed, NoEvent> = open_with(options.clone(), "chan.1", None, &[], now);
    conn.handle_frame(
        InFrame::Text(r#"{"type":"echo","payload":{"content":"x"}}"#),
        now,
    )
    .unwrap();
    assert!(matches!(
        &drain(&mut conn)[..],
        [Output::Message(Typed::Echo(_))]
    ));
    let text = error_frame_in::<Typed>(options.clone(), InFrame::Text(r#"{"payload":null}"#));
    assert!(
        text.contains("Unable to extract tag using discriminator 'type'"),
        "{text}"
    );
    let text = error_frame_in::<Typed>(options, InFrame::Text(r#"{"type":"nope"}"#));
    assert!(
        text.contains("Input tag 'nope' found using 'type' does not match any of the expected tags: 'echo', 'ping'"),
        "{text}"
    );
}
