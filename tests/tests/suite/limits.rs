//! Limits: frame size (1009), slow consumers (4008), rate limit, heartbeat
//! (docs/protocol.md, "Client frames", "Ordering and delivery", "Options
//! and limits").

use std::time::Duration;

use chanx::proto::{Heartbeat, InputBudget, RateLimit};
use chanx_e2e::{Adapter, shared, start_with};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{ECHO, LOBBY, assert_echoes, assert_pongs, assert_quiet, echo_msg, echo_reply, pong};

const SMALL_FRAME_LIMIT: usize = 1024;

pub(crate) async fn frame_at_size_limit_is_accepted(adapter: Adapter) {
    let server = start_with(adapter, |c| c.options.max_frame_size = SMALL_FRAME_LIMIT).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    let base = echo_msg("").to_string().len();
    let content = "a".repeat(SMALL_FRAME_LIMIT - base);
    let text = echo_msg(&content).to_string();
    assert_eq!(text.len(), SMALL_FRAME_LIMIT);
    client.send_text(&text).await;
    assert_eq!(client.recv_json().await, echo_reply(&content));
}

pub(crate) async fn oversized_text_frame_closes_with_1009(adapter: Adapter) {
    let server = start_with(adapter, |c| c.options.max_frame_size = SMALL_FRAME_LIMIT).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    let content = "a".repeat(SMALL_FRAME_LIMIT);
    client.send_json(&echo_msg(&content)).await;
    assert_eq!(client.expect_close().await, Some(1009));
    // The server itself is fine.
    let mut other = server.connect_as(ECHO, "bob").await;
    assert_echoes(&mut other, "after 1009").await;
}

pub(crate) async fn oversized_binary_frame_closes_with_1009(adapter: Adapter) {
    let server = start_with(adapter, |c| c.options.max_frame_size = SMALL_FRAME_LIMIT).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    client
        .send(Message::Binary(vec![7u8; SMALL_FRAME_LIMIT + 1].into()))
        .await;
    assert_eq!(client.expect_close().await, Some(1009));
}

pub(crate) async fn default_limit_closes_frames_over_1_mib(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut client = server.connect_as(ECHO, "alice").await;
    // Exactly 1 MiB is accepted.
    let base = echo_msg("").to_string().len();
    let content = "a".repeat((1 << 20) - base);
    client.send_json(&echo_msg(&content)).await;
    assert_eq!(client.recv_json().await, echo_reply(&content));
    // One byte more closes with 1009.
    let content = "a".repeat((1 << 20) - base + 1);
    client.send_json(&echo_msg(&content)).await;
    assert_eq!(client.expect_close().await, Some(1009));
}

pub(crate) async fn slow_consumer_is_closed_with_4008(adapter: Adapter) {
    let server = start_with(adapter, |c| {
        c.options.max_outbound_frames = 64;
        // The flood below is the point: no input budget slowing it.
        c.options.input_budget = None;
    })
    .await;
    let mut reader = server.connect_as(LOBBY, "bob").await;
    let mut sender = server.connect_as(LOBBY, "alice").await;
    // `reader` does not read while `sender` floods the room; once the
    // server has dropped it from the room (its 4008), it reads again:
    // whatever was buffered, then the close frame, which the server
    // delivers for a few seconds only.
    let layer = server.layer.clone();
    let slow = tokio::spawn(async move {
        while layer.group_size("chat_lobby") == 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        reader.expect_close().await
    });
    let content = "x".repeat(8 * 1024);
    let message = echo_msg(&content).to_string();
    for _ in 0..30 {
        sender
            .send_batch(std::iter::repeat_n(message.clone(), 100))
            .await;
    }
    // Every message has been handled (handling is in order), and the
    // sender's connection is healthy.
    assert_pongs(&mut sender).await;
    assert_eq!(slow.await.expect("the slow client's task"), Some(4008));
    assert_pongs(&mut sender).await;
    assert_quiet(&mut sender, "the sender (exclude_current)").await;
}

pub(crate) async fn rate_limit_rejects_the_message_after_the_burst(adapter: Adapter) {
    let server = start_with(adapter, |c| {
        c.options.rate_limit = Some(RateLimit {
            per_second: 5,
            burst: 5,
        });
    })
    .await;
    let mut client = server.connect_as(ECHO, "alice").await;
    client
        .send_batch(std::iter::repeat_n(
            json!({"action": "ping"}).to_string(),
            6,
        ))
        .await;
    for i in 0..5 {
        assert_eq!(client.recv_json().await, pong(), "message {i}");
    }
    let frame = client.recv_json().await;
    assert_eq!(frame["action"], "error", "{frame}");
    let errors = frame["payload"].as_array().expect("error list");
    assert_eq!(errors.len(), 1, "{frame}");
    assert_eq!(errors[0]["type"], "rate_limited", "{frame}");
    assert_eq!(errors[0]["loc"], json!([]), "{frame}");
    assert!(
        errors[0]["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{frame}"
    );
    // The connection stays open; once the bucket refills (5 per second,
    // so one token per 200 ms) messages are handled again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_pongs(&mut client).await;
}

/// A client sending faster than its input budget is slowed down, not cut
/// off: the server stops reading its socket until the budget is paid back,
/// and every frame is still answered.
pub(crate) async fn input_budget_slows_a_heavy_sender_without_losing_frames(adapter: Adapter) {
    const RATE: u64 = 256 * 1024;
    const BURST: u64 = 64 * 1024;
    let server = start_with(adapter, |c| {
        c.options.input_budget = Some(InputBudget {
            bytes_per_second: RATE,
            burst_bytes: BURST,
        });
    })
    .await;
    let mut client = server.connect_as(ECHO, "alice").await;
    let content = "x".repeat(32 * 1024);
    let frame = echo_msg(&content).to_string();
    let frames = 12;
    let started = tokio::time::Instant::now();
    client
        .send_batch(std::iter::repeat_n(frame.clone(), frames))
        .await;
    for i in 0..frames {
        assert_eq!(client.recv_json().await, echo_reply(&content), "frame {i}");
    }
    // What the budget allows: the burst at once, the rest at its rate
    // (the last frame may overdraw it, hence one frame less). A lower
    // bound, which no machine can beat.
    let sent = (frames * frame.len()) as u64;
    let least = Duration::from_secs_f64((sent - BURST - frame.len() as u64) as f64 / RATE as f64);
    assert!(
        started.elapsed() >= least,
        "{sent} bytes read in {:?}, under the {least:?} the budget allows",
        started.elapsed()
    );
    assert_pongs(&mut client).await;
}

pub(crate) async fn heartbeat_keeps_a_reading_client_open(adapter: Adapter) {
    let server = start_with(adapter, |c| {
        c.options.heartbeat = Some(Heartbeat {
            interval: Duration::from_millis(200),
            max_missed: 2,
        });
    })
    .await;
    let mut client = server.connect_as(ECHO, "alice").await;
    // Keep reading (tungstenite answers the server's pings) for several
    // intervals; no data frame and no close may arrive.
    for _ in 0..3 {
        assert_eq!(client.next(Duration::from_millis(250)).await, None);
    }
    assert_echoes(&mut client, "still alive").await;
}

pub(crate) async fn heartbeat_closes_a_silent_peer(adapter: Adapter) {
    let server = start_with(adapter, |c| {
        c.options.heartbeat = Some(Heartbeat {
            interval: Duration::from_millis(100),
            max_missed: 2,
        });
    })
    .await;
    let mut silent = server.connect_as(ECHO, "alice").await;
    // Not polling the socket: tungstenite answers no ping meanwhile.
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The server gave up on it: a close frame (4408, docs/protocol.md,
    // "Close codes")
    // or, as the client answers the queued pings late, a dropped transport.
    assert!(silent.ends().await, "a silent peer must be disconnected");
    let mut other = server.connect_as(ECHO, "bob").await;
    assert_echoes(&mut other, "after a heartbeat timeout").await;
}

pub(crate) async fn camelize_converts_outgoing_keys(adapter: Adapter) {
    let server = start_with(adapter, |c| c.options.camelize = true).await;
    let session = chanx_e2e::session_for("alice");
    let mut alice = server
        .connect_with_session(LOBBY, &session)
        .await
        .open("camelized alice");
    assert_eq!(
        alice.recv_json().await,
        json!({
            "action": "authentication",
            "payload": {"statusCode": 200, "statusText": "OK", "data": {"detail": "OK"}},
        })
    );
    let mut bob = server
        .connect_with_session(LOBBY, &chanx_e2e::session_for("bob"))
        .await
        .open("camelized bob");
    assert_eq!(bob.recv_json().await["payload"]["statusCode"], 200);
    alice.send_json(&echo_msg("hi")).await;
    assert_eq!(
        bob.recv_json().await,
        json!({"action": "chat_message", "payload": {"content": "alice: hi"}, "isMine": false, "isCurrent": false})
    );
    assert_pongs(&mut alice).await;
}

pub(crate) async fn authentication_frame_can_be_disabled(adapter: Adapter) {
    let server = start_with(adapter, |c| c.options.send_authentication_message = false).await;
    let mut client = server
        .connect_with_session(ECHO, &chanx_e2e::session_for("alice"))
        .await
        .open("no authentication frame");
    // The first frame is the answer to the first message.
    assert_echoes(&mut client, "first").await;
}
