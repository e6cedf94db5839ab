//! Incoming messages of the echo endpoint: echo, ping, and every
//! validation error of docs/protocol.md, "Validation errors", with
//! pydantic's exact type, loc and msg.

use chanx_e2e::{Adapter, Client, shared};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{ECHO, assert_echoes, chat, echo_msg, echo_reply, error_frame, pong};

/// Sends `text`, expects exactly `expected`, then checks the connection
/// still answers an echo.
async fn assert_rejected(client: &mut Client, text: &str, expected: Value) {
    client.send_text(text).await;
    assert_eq!(client.recv_json().await, expected, "sent {text:?}");
    assert_echoes(client, "after a bad frame").await;
}

pub(crate) async fn echo_round_trip(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    client.send_json(&echo_msg("Hello, Chanx!")).await;
    assert_eq!(
        client.recv_json().await,
        json!({"action": "echo", "payload": {"content": "Echo: Hello, Chanx!"}})
    );
    for content in ["", "ünïcödé ☃ 🦀", "with \"quotes\" and \\ and \n"] {
        assert_echoes(&mut client, content).await;
    }
}

pub(crate) async fn ping_answers_pong(adapter: Adapter) {
    let server = shared(adapter).await;
    for path in [ECHO.to_owned(), chat("ping_tests")] {
        let mut client = server.connect_as(&path, "alice").await;
        for ping in [
            json!({"action": "ping"}),
            json!({"action": "ping", "payload": null}),
        ] {
            client.send_json(&ping).await;
            assert_eq!(client.recv_json().await, pong(), "{path}: {ping}");
        }
    }
}

pub(crate) async fn unknown_extra_keys_are_ignored(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    client
        .send_json(&json!({
            "action": "echo",
            "payload": {"content": "x", "extra": [1, 2], "more": null},
            "other": true,
            "id": 7,
        }))
        .await;
    assert_eq!(client.recv_json().await, echo_reply("x"));
    client
        .send_json(&json!({"action": "ping", "payload": null, "extra": {}}))
        .await;
    assert_eq!(client.recv_json().await, pong());
}

pub(crate) async fn payload_validation_errors(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    assert_rejected(
        &mut client,
        r#"{"action": "echo", "payload": {}}"#,
        error_frame(
            "missing",
            json!(["echo", "payload", "content"]),
            "Field required",
        ),
    )
    .await;
    assert_rejected(
        &mut client,
        r#"{"action": "echo", "payload": {"content": 5}}"#,
        error_frame(
            "string_type",
            json!(["echo", "payload", "content"]),
            "Input should be a valid string",
        ),
    )
    .await;
    assert_rejected(
        &mut client,
        r#"{"action": "echo", "payload": {"content": null}}"#,
        error_frame(
            "string_type",
            json!(["echo", "payload", "content"]),
            "Input should be a valid string",
        ),
    )
    .await;
    let model_type = error_frame(
        "model_type",
        json!(["echo", "payload"]),
        "Input should be a valid dictionary or instance of MessagePayload",
    );
    for payload in [r#""SECRET-INPUT""#, "[1]", "5", "null"] {
        let text = format!(r#"{{"action": "echo", "payload": {payload}}}"#);
        assert_rejected(&mut client, &text, model_type.clone()).await;
    }
    assert_rejected(
        &mut client,
        r#"{"action": "echo"}"#,
        error_frame("missing", json!(["echo", "payload"]), "Field required"),
    )
    .await;
    assert_rejected(
        &mut client,
        r#"{"action": "ping", "payload": {"a": 1}}"#,
        error_frame(
            "none_required",
            json!(["ping", "payload"]),
            "Input should be None",
        ),
    )
    .await;
    assert_rejected(
        &mut client,
        r#"{"action": "ping", "payload": {}}"#,
        error_frame(
            "none_required",
            json!(["ping", "payload"]),
            "Input should be None",
        ),
    )
    .await;
    assert_rejected(
        &mut client,
        r#"{"action": "ping", "payload": "x"}"#,
        error_frame(
            "none_required",
            json!(["ping", "payload"]),
            "Input should be None",
        ),
    )
    .await;
}

pub(crate) async fn error_frame_does_not_echo_input(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    for text in [
        r#"{"action": "echo", "payload": "SECRET-INPUT"}"#,
        r#"{"action": "echo", "payload": {"content": ["SECRET-INPUT"]}}"#,
        r#"{"action": "echo", "payload": {"content": "x"}, SECRET-INPUT"#,
    ] {
        client.send_text(text).await;
        let raw = client.recv_text().await;
        assert!(raw.contains(r#""error""#), "{text}: {raw}");
        assert!(!raw.contains("SECRET-INPUT"), "{text}: {raw}");
    }
}

pub(crate) async fn action_tag_errors(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    let tag_invalid = |tag: &str| {
        error_frame(
            "union_tag_invalid",
            json!([]),
            &format!(
                "Input tag '{tag}' found using 'action' does not match any of the expected tags: 'echo', 'ping'"
            ),
        )
    };
    assert_rejected(&mut client, r#"{"action": "nope"}"#, tag_invalid("nope")).await;
    assert_rejected(
        &mut client,
        r#"{"action": "chat_message", "payload": {"content": "x"}}"#,
        tag_invalid("chat_message"),
    )
    .await;
    assert_rejected(
        &mut client,
        r#"{"action": "Echo", "payload": {"content": "x"}}"#,
        tag_invalid("Echo"),
    )
    .await;
    assert_rejected(&mut client, r#"{"action": 5}"#, tag_invalid("5")).await;
    let not_found = error_frame(
        "union_tag_not_found",
        json!([]),
        "Unable to extract tag using discriminator 'action'",
    );
    assert_rejected(
        &mut client,
        r#"{"payload": {"content": "x"}}"#,
        not_found.clone(),
    )
    .await;
    assert_rejected(&mut client, "{}", not_found).await;
}

pub(crate) async fn invalid_json_is_json_invalid(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    for text in [
        r#"{"action": "echo""#,
        "not json",
        "{'action': 'ping'}",
        r#"{"action": "ping"} trailing"#,
        "{",
    ] {
        client.send_text(text).await;
        let frame = client.recv_json().await;
        assert_eq!(frame["action"], "error", "{text:?}: {frame}");
        let errors = frame["payload"].as_array().expect("error list");
        assert_eq!(errors.len(), 1, "{text:?}: {frame}");
        assert_eq!(errors[0]["type"], "json_invalid", "{text:?}: {frame}");
        assert_eq!(errors[0]["loc"], json!([]), "{text:?}: {frame}");
        let msg = errors[0]["msg"].as_str().expect("msg");
        assert!(msg.starts_with("Invalid JSON: "), "{text:?}: {frame}");
        assert!(msg.len() > "Invalid JSON: ".len(), "{text:?}: {frame}");
        assert_echoes(&mut client, "after invalid JSON").await;
    }
}

pub(crate) async fn binary_frame_is_frame_type(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    let expected = error_frame("frame_type", json!([]), "Binary frames are not accepted");
    let valid_json = br#"{"action": "ping"}"#.to_vec();
    for bytes in [vec![0u8, 1, 2, 255], valid_json, Vec::new()] {
        client.send(Message::Binary(bytes.clone().into())).await;
        assert_eq!(client.recv_json().await, expected, "binary {bytes:?}");
        assert_echoes(&mut client, "after a binary frame").await;
    }
}

pub(crate) async fn non_object_json_is_model_attributes_type(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    let expected = error_frame(
        "model_attributes_type",
        json!([]),
        "Input should be a valid dictionary or object to extract fields from",
    );
    for text in ["[1,2]", r#""str""#, "5", "null", "true", "[]"] {
        assert_rejected(&mut client, text, expected.clone()).await;
    }
}

pub(crate) async fn empty_text_frame_is_an_error(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    for _ in 0..2 {
        client.send_text("").await;
        let frame = client.recv_json().await;
        assert_eq!(frame["action"], "error", "{frame}");
        let errors = frame["payload"].as_array().expect("error list");
        assert_eq!(errors.len(), 1, "{frame}");
        assert_eq!(errors[0]["type"], "json_invalid", "{frame}");
        assert_eq!(errors[0]["loc"], json!([]), "{frame}");
        let msg = errors[0]["msg"].as_str().expect("msg");
        assert!(msg.starts_with("Invalid JSON: "), "{frame}");
        assert_echoes(&mut client, "after an empty frame").await;
    }
}

/// RFC 6455 5.5.1: a Close from the client is answered with a Close, even
/// when the server still owed it a reply (tungstenite refuses data after
/// the peer's Close, so the reply itself may be lost; the Close is not).
pub(crate) async fn close_after_send_gets_a_close_reply(adapter: Adapter) {
    let server = shared(adapter).await;
    for round in 0..5 {
        let mut client = server.connect_as(ECHO, "alice").await;
        let last = echo_msg(&format!("last words {round}")).to_string();
        let close = tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        };
        // Both in one write: the server reads the Close before it replies.
        client
            .send_all([Message::Text(last.into()), Message::Close(Some(close))])
            .await;
        assert_eq!(client.expect_close().await, Some(1000), "round {round}");
    }
}
