//! Ordering, concurrency, graceful shutdown and isolation between
//! connections (docs/protocol.md, "Ordering and delivery", "Client
//! frames").

use std::sync::Arc;

use chanx_e2e::{Adapter, shared, start, start_with};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{ECHO, LOBBY, assert_echoes, assert_pongs, chat, echo_msg, echo_reply};

pub(crate) async fn pipelined_echoes_stay_in_order(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    client
        .send_batch((0..200).map(|i| echo_msg(&format!("message {i}")).to_string()))
        .await;
    for i in 0..200 {
        assert_eq!(
            client.recv_json().await,
            echo_reply(&format!("message {i}"))
        );
    }
}

/// More pipelined messages than the outbound bound (1024 frames) from a
/// client that reads as fast as it can: backpressure, never a 4008 close.
pub(crate) async fn a_reading_client_is_never_a_slow_consumer(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "bob").await;
    let total = 3000;
    client
        .send_batch((0..total).map(|i| echo_msg(&format!("p{i}")).to_string()))
        .await;
    for i in 0..total {
        assert_eq!(client.recv_json().await, echo_reply(&format!("p{i}")));
    }
}

/// A burst in a room four times the outbound bound reaches a member that
/// keeps reading, whole and in order (the burst stays within the layer's
/// inbox capacity of 1024, so only the outbound bound is exercised).
pub(crate) async fn a_room_burst_reaches_a_reading_member(adapter: Adapter) {
    let server = start_with(adapter, |c| c.options.max_outbound_frames = 256).await;
    let room = chat("burst_room");
    let mut sender = server.connect_as(&room, "alice").await;
    let mut member = server.connect_as(&room, "bob").await;
    let total = 1000;
    let reader = tokio::spawn(async move {
        for i in 0..total {
            let frame = member.recv_json().await;
            assert_eq!(frame["payload"]["content"], format!("alice: b{i}"));
        }
    });
    sender
        .send_batch((0..total).map(|i| echo_msg(&format!("b{i}")).to_string()))
        .await;
    reader.await.expect("the member read every message");
}

pub(crate) async fn concurrent_connections_all_succeed(adapter: Adapter) {
    let server = Arc::new(start(adapter).await);
    let users = ["alice", "bob", "carol"];
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let mut client = server.connect_as(ECHO, users[i % 3]).await;
                assert_echoes(&mut client, &format!("client {i}")).await;
                client.close().await;
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client task");
    }
}

pub(crate) async fn shutdown_closes_with_1001_and_refuses_new_upgrades(adapter: Adapter) {
    let server = start(adapter).await;
    let mut echo = server.connect_as(ECHO, "alice").await;
    let mut chat = server.connect_as(LOBBY, "bob").await;
    assert_echoes(&mut echo, "before shutdown").await;
    server.server.shutdown().trigger();
    assert_eq!(echo.expect_close().await, Some(1001));
    assert_eq!(chat.expect_close().await, Some(1001));
    let cookie = format!("sessionid={}", chanx_e2e::session_for("alice"));
    let refused = server.connect_with(ECHO, &[("cookie", &cookie)]).await;
    // Refused with an HTTP error status (503) or at the TCP level.
    let status = refused.refused_status("upgrade after shutdown");
    assert!(status.is_none_or(|s| s >= 400), "{status:?}");
}

pub(crate) async fn misbehaving_client_does_not_affect_others(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut good = server.connect_as(ECHO, "alice").await;
    let mut peer = server.connect_as(&chat("isolation"), "bob").await;
    let mut bad = server.connect_as(&chat("isolation"), "carol").await;
    let garbage = [
        Message::Text("not json".into()),
        Message::Text("".into()),
        Message::Text("[1,2]".into()),
        Message::Text(r#"{"action": "nope"}"#.into()),
        Message::Binary(vec![0u8, 159, 146, 150].into()),
        Message::Text(r#"{"action": "echo", "payload": {"content": 5}}"#.into()),
    ];
    for (i, message) in garbage.into_iter().enumerate() {
        bad.send(message).await;
        assert_eq!(bad.recv_json().await["action"], "error");
        assert_echoes(&mut good, &format!("undisturbed {i}")).await;
    }
    // A huge frame closes only the offender.
    let huge = echo_msg(&"z".repeat((1 << 20) + 1)).to_string();
    bad.send_text(&huge).await;
    assert_eq!(bad.expect_close().await, Some(1009));
    assert_echoes(&mut good, "after the offender was closed").await;
    assert_pongs(&mut peer).await;
    // The room still works for the remaining member (carol was closed).
    let mut alice_chat = server.connect_as(&chat("isolation"), "alice").await;
    alice_chat
        .send_json(&json!({"action": "echo", "payload": {"content": "ok"}}))
        .await;
    assert_eq!(peer.recv_json().await["payload"]["content"], "alice: ok");
}
