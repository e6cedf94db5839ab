//! Chat rooms: group messages, `is_mine` / `is_current`, the `notify`
//! channel event, and completion frames (docs/quick-start.md, "The
//! quickstart program's interface"; docs/protocol.md, "Groups", "Channel
//! events", "Server frames").

use chanx_e2e::{Adapter, http, shared, start, start_with};
use serde_json::{Value, json};

use super::{
    ECHO, LOBBY, assert_pongs, assert_quiet, chat, chat_frame, echo_msg, echo_reply, pong,
};

fn complete() -> Value {
    json!({"action": "complete", "payload": null})
}

fn group_complete() -> Value {
    json!({"action": "group_complete", "payload": null})
}

fn notify_echo(content: &str) -> Value {
    json!({"action": "echo", "payload": {"content": content}})
}

pub(crate) async fn chat_message_reaches_room_members_only(adapter: Adapter) {
    // Its own server: the room is the Quick Start's `lobby`.
    let server = start(adapter).await;
    let mut alice = server.connect_as(LOBBY, "alice").await;
    let mut alice2 = server.connect_as(LOBBY, "alice").await;
    let mut bob = server.connect_as(LOBBY, "bob").await;
    let mut carol = server.connect_as(&chat("other"), "carol").await;
    let mut echo_user = server.connect_as(ECHO, "bob").await;

    alice.send_json(&echo_msg("hi")).await;
    assert_eq!(
        bob.recv_json().await,
        json!({"action":"chat_message","payload":{"content":"alice: hi"},"is_mine":false,"is_current":false})
    );
    assert_eq!(alice2.recv_json().await, chat_frame("alice: hi", true));
    tokio::join!(
        assert_quiet(&mut alice, "the sending connection"),
        assert_quiet(&mut carol, "a client in another room"),
        assert_quiet(&mut echo_user, "a client of the echo endpoint"),
    );

    // The other direction, and every connection is still healthy.
    bob.send_json(&echo_msg("hello alice")).await;
    assert_eq!(
        alice.recv_json().await,
        chat_frame("bob: hello alice", false)
    );
    assert_eq!(
        alice2.recv_json().await,
        chat_frame("bob: hello alice", false)
    );
    for client in [
        &mut alice,
        &mut alice2,
        &mut bob,
        &mut carol,
        &mut echo_user,
    ] {
        assert_pongs(client).await;
    }
}

/// Also the typed client's test: chanx-client speaks the quickstart's own
/// message types.
pub(crate) async fn chat_messages_keep_order(adapter: Adapter) {
    use quickstart::messages::{
        ChatGroupMessage, MessagePayload, MyIncomingMessage, MyOutgoingMessage,
    };
    type ChatClient = chanx_client::Client<MyIncomingMessage, MyOutgoingMessage, ChatGroupMessage>;

    let server = shared(adapter).await;
    let join = |user: &str| {
        chanx_client::Connector::new(server.ws_url(&chat("order")))
            .cookie("sessionid", chanx_e2e::session_for(user))
            .connect_with_groups()
    };
    let (alice, bob) = tokio::join!(join("alice"), join("bob"));
    let (mut alice, mut bob): (ChatClient, ChatClient) = (alice.unwrap(), bob.unwrap());
    for i in 0..50 {
        let content = format!("m{i}");
        alice
            .send(&MyIncomingMessage::Echo(MessagePayload { content }))
            .await
            .unwrap();
    }
    for i in 0..50 {
        let content = format!("alice: m{i}");
        let expected = chanx_client::Frame::Group {
            message: ChatGroupMessage::ChatMessage(MessagePayload { content }),
            is_mine: false,
            is_current: false,
        };
        assert_eq!(bob.recv().await.unwrap(), expected);
    }
    alice.send(&MyIncomingMessage::Ping).await.unwrap();
    assert_eq!(
        alice.recv_message().await.unwrap(),
        MyOutgoingMessage::Pong(())
    );
}

pub(crate) async fn closed_member_leaves_the_group(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut alice = server.connect_as(&chat("leave"), "alice").await;
    let bob = server.connect_as(&chat("leave"), "bob").await;
    let mut carol = server.connect_as(&chat("leave"), "carol").await;
    bob.close().await;
    alice.send_json(&echo_msg("anyone?")).await;
    assert_eq!(carol.recv_json().await, chat_frame("alice: anyone?", false));
    assert_pongs(&mut alice).await;
}

pub(crate) async fn ping_in_chat_answers_pong(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut alice = server.connect_as(&chat("chat_ping"), "alice").await;
    let mut bob = server.connect_as(&chat("chat_ping"), "bob").await;
    alice.send_json(&json!({"action": "ping"})).await;
    assert_eq!(alice.recv_json().await, pong());
    assert_quiet(&mut bob, "another member when alice pings").await;
}

async fn notify(addr: std::net::SocketAddr, room: &str, body: &str) -> (u16, Value) {
    let reply = http(addr, "POST", &format!("/api/notify/{room}/"), body).await;
    (reply.status, reply.json())
}

pub(crate) async fn notify_reaches_every_chat_client_in_room(adapter: Adapter) {
    // Its own server: the room is the Quick Start's `lobby`.
    let server = start(adapter).await;
    let mut alice = server.connect_as(LOBBY, "alice").await;
    let mut alice2 = server.connect_as(LOBBY, "alice").await;
    let mut bob = server.connect_as(LOBBY, "bob").await;
    let mut carol = server.connect_as(&chat("other"), "carol").await;
    let mut echo_user = server.connect_as(ECHO, "carol").await;
    let (status, body) = notify(
        server.addr,
        "lobby",
        r#"{"message": "Welcome to the chat room!", "level": "info"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status":"sent","room_id":"lobby","message":"Welcome to the chat room!","level":"info"})
    );
    let expected = json!({"action":"echo","payload":{"content":"INFO: Welcome to the chat room!"}});
    for client in [&mut alice, &mut alice2, &mut bob] {
        assert_eq!(client.recv_json().await, expected);
    }
    tokio::join!(
        assert_quiet(&mut carol, "a client in another room"),
        assert_quiet(&mut echo_user, "a client of the echo endpoint"),
    );
    assert_pongs(&mut carol).await;
}

pub(crate) async fn notify_levels_trimming_and_numbers(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut bob = server.connect_as(&chat("room2"), "bob").await;
    let cases = [
        (r#"{"message": "hi"}"#, "hi", "info", "INFO: hi"),
        (
            r#"{"message": "  spaced out \n", "level": "error"}"#,
            "spaced out",
            "error",
            "ERROR: spaced out",
        ),
        (
            r#"{"message": "careful", "level": "warning"}"#,
            "careful",
            "warning",
            "WARNING: careful",
        ),
        (
            r#"{"message": "done", "level": "success"}"#,
            "done",
            "success",
            "SUCCESS: done",
        ),
        (r#"{"message": 42}"#, "42", "info", "INFO: 42"),
        (
            r#"{"message": 1.5, "level": "info"}"#,
            "1.5",
            "info",
            "INFO: 1.5",
        ),
        (r#"{"message": "x", "extra": true}"#, "x", "info", "INFO: x"),
    ];
    for (body, message, level, content) in cases {
        let (status, reply) = notify(server.addr, "room2", body).await;
        assert_eq!(status, 200, "{body}: {reply}");
        assert_eq!(
            reply,
            json!({"status": "sent", "room_id": "room2", "message": message, "level": level}),
            "{body}"
        );
        assert_eq!(bob.recv_json().await, notify_echo(content), "{body}");
    }
    // Exactly 500 characters after trimming is accepted.
    let long = "é".repeat(500);
    let (status, reply) = notify(
        server.addr,
        "room2",
        &json!({"message": format!(" {long} ")}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["message"], json!(long));
    assert_eq!(bob.recv_json().await, notify_echo(&format!("INFO: {long}")));
}

pub(crate) async fn notify_bad_bodies_are_400(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut bob = server.connect_as(&chat("notify_bad"), "bob").await;
    let long = "a".repeat(501);
    let cases = [
        (json!({}), json!({"message": ["This field is required."]})),
        (
            json!({"level": "info"}),
            json!({"message": ["This field is required."]}),
        ),
        (
            json!({"message": ""}),
            json!({"message": ["This field may not be blank."]}),
        ),
        (
            json!({"message": "   "}),
            json!({"message": ["This field may not be blank."]}),
        ),
        (
            json!({"message": null}),
            json!({"message": ["This field may not be null."]}),
        ),
        (
            json!({"message": true}),
            json!({"message": ["Not a valid string."]}),
        ),
        (
            json!({"message": ["a"]}),
            json!({"message": ["Not a valid string."]}),
        ),
        (
            json!({"message": {"a": 1}}),
            json!({"message": ["Not a valid string."]}),
        ),
        (
            json!({"message": long}),
            json!({"message": ["Ensure this field has no more than 500 characters."]}),
        ),
        (
            json!({"message": "hi", "level": "loud"}),
            json!({"level": ["\"loud\" is not a valid choice."]}),
        ),
        (
            json!({"message": "hi", "level": null}),
            json!({"level": ["This field may not be null."]}),
        ),
        (
            json!({"message": "", "level": "loud"}),
            json!({"message": ["This field may not be blank."], "level": ["\"loud\" is not a valid choice."]}),
        ),
    ];
    for (body, expected) in cases {
        let (status, reply) = notify(server.addr, "notify_bad", &body.to_string()).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply, expected, "{body}");
    }
    for body in ["oops", "", "{", r#"{"message": "x"} trailing"#] {
        let (status, reply) = notify(server.addr, "notify_bad", body).await;
        assert_eq!(status, 400, "{body:?}: {reply}");
        let detail = reply["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with("JSON parse error - "),
            "{body:?}: {reply}"
        );
        assert_eq!(
            reply.as_object().map(|o| o.len()),
            Some(1),
            "{body:?}: {reply}"
        );
    }
    assert_quiet(&mut bob, "a room member after rejected notifications").await;
}

pub(crate) async fn notify_other_methods_are_405(adapter: Adapter) {
    let server = shared(adapter).await;
    for method in ["GET", "PUT", "PATCH", "DELETE"] {
        let reply = http(
            server.addr,
            method,
            "/api/notify/lobby/",
            r#"{"message": "x"}"#,
        )
        .await;
        assert_eq!(reply.status, 405, "{method}");
    }
}

pub(crate) async fn completion_after_echo(adapter: Adapter) {
    let server = start_with(adapter, |c| c.options.send_completion = true).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    client.send_json(&echo_msg("done?")).await;
    assert_eq!(client.recv_json().await, echo_reply("done?"));
    assert_eq!(client.recv_json().await, complete());
    client.send_json(&json!({"action": "ping"})).await;
    assert_eq!(client.recv_json().await, pong());
    assert_eq!(client.recv_json().await, complete());
    client.send_text(r#"{"action": "nope"}"#).await;
    assert_eq!(client.recv_json().await["action"], "error");
    assert_eq!(client.recv_json().await, complete());
}

pub(crate) async fn completion_after_group_message(adapter: Adapter) {
    let server = start_with(adapter, |c| c.options.send_completion = true).await;
    let mut alice = server.connect_as(LOBBY, "alice").await;
    let mut bob = server.connect_as(LOBBY, "bob").await;
    alice.send_json(&echo_msg("hi")).await;
    assert_eq!(alice.recv_json().await, complete());
    assert_eq!(bob.recv_json().await, chat_frame("alice: hi", false));
    assert_eq!(bob.recv_json().await, group_complete());
    tokio::join!(
        assert_quiet(&mut alice, "the sender after complete"),
        assert_quiet(&mut bob, "the receiver after group_complete"),
    );
}

pub(crate) async fn completion_after_notify(adapter: Adapter) {
    let server = start_with(adapter, |c| c.options.send_completion = true).await;
    let mut bob = server.connect_as(LOBBY, "bob").await;
    let (status, _) = notify(
        server.addr,
        "lobby",
        r#"{"message": "hey", "level": "warning"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bob.recv_json().await, notify_echo("WARNING: hey"));
    assert_eq!(bob.recv_json().await, complete());
    assert_quiet(&mut bob, "the receiver after complete").await;
}

pub(crate) async fn notify_reaches_a_percent_encoded_unicode_room(adapter: Adapter) {
    let server = shared(adapter).await;
    // `cafénotify`, percent-encoded in both URLs as a browser would.
    let mut alice = server.connect_as(&chat("caf%C3%A9notify"), "alice").await;
    let (status, body) = notify(server.addr, "caf%C3%A9notify", r#"{"message": "bonjour"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["room_id"], "caf\u{e9}notify");
    assert_eq!(
        alice.recv_json().await,
        json!({"action": "echo", "payload": {"content": "INFO: bonjour"}})
    );
}
