//! The end-to-end suite, written once and run per adapter.
//!
//! Every test is an `async fn(Adapter)`; an adapter's test file turns the
//! list of names into `#[tokio::test]` wrappers with [`adapter_tests!`]:
//!
//! ```ignore
//! mod suite;
//! suite::adapter_tests!(Adapter::Axum;
//!     echo_round_trip,
//!     #[ignore = "bug: ..."] some_failing_test,
//! );
//! ```
//!
//! Tests that need the HTTP API (login, playground, AsyncAPI in
//! `http_api`; `notify_*` and `completion_after_notify` in `chat`) are left
//! out of the list of an adapter that serves WebSockets only.
//!
//! Most tests use the adapter's shared default server
//! ([`chanx_e2e::shared`]) with room names of their own; tests that need
//! other options, a shutdown, or the Quick Start's `lobby` start their own.
#![allow(dead_code)]

mod auth;
mod chat;
mod http_api;
mod limits;
mod load;
mod messages;
mod routing;

pub(crate) use auth::*;
pub(crate) use chat::*;
pub(crate) use http_api::*;
pub(crate) use limits::*;
pub(crate) use load::*;
pub(crate) use messages::*;
pub(crate) use routing::*;

use std::time::Duration;

use chanx_e2e::Client;
use serde_json::{Value, json};

/// Generates one `#[tokio::test]` per suite function for `$adapter`.
/// Attributes written before a name (e.g. `#[ignore = "bug: ..."]`) are
/// kept on that test.
macro_rules! adapter_tests {
    ($adapter:expr; $($(#[$attr:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$attr])*
            #[tokio::test]
            async fn $name() {
                suite::$name($adapter).await
            }
        )*
    };
}
pub(crate) use adapter_tests;

/// The echo endpoint.
pub(crate) const ECHO: &str = "/ws/myapp/echo/";
/// The chat endpoint of room `lobby`.
pub(crate) const LOBBY: &str = "/ws/myapp/chat/lobby/";

/// How long a client must stay silent to count as "received nothing".
/// Only ever used to wait, never as an assertion threshold.
pub(crate) const QUIET: Duration = Duration::from_millis(200);

/// The chat endpoint of `room`.
pub(crate) fn chat(room: &str) -> String {
    format!("/ws/myapp/chat/{room}/")
}

/// `{"action": "echo", "payload": {"content": content}}`.
pub(crate) fn echo_msg(content: &str) -> Value {
    json!({"action": "echo", "payload": {"content": content}})
}

/// The echo endpoint's reply to `content`.
pub(crate) fn echo_reply(content: &str) -> Value {
    echo_msg(&format!("Echo: {content}"))
}

/// `{"action": "pong", "payload": null}`.
pub(crate) fn pong() -> Value {
    json!({"action": "pong", "payload": null})
}

/// The frame a chat member receives for a group message.
pub(crate) fn chat_frame(content: &str, is_mine: bool) -> Value {
    json!({
        "action": "chat_message",
        "payload": {"content": content},
        "is_mine": is_mine,
        "is_current": false,
    })
}

/// An error frame with one entry.
pub(crate) fn error_frame(kind: &str, loc: Value, msg: &str) -> Value {
    json!({"action": "error", "payload": [{"type": kind, "loc": loc, "msg": msg}]})
}

/// The successful authentication frame.
pub(crate) fn auth_ok() -> Value {
    json!({
        "action": "authentication",
        "payload": {"status_code": 200, "status_text": "OK", "data": {"detail": "OK"}},
    })
}

/// The failed (no or bad session) authentication frame.
pub(crate) fn auth_forbidden() -> Value {
    json!({
        "action": "authentication",
        "payload": {
            "status_code": 403,
            "status_text": "Forbidden",
            "data": {"detail": "Authentication credentials were not provided."},
        },
    })
}

/// Sends an echo on the echo endpoint and checks the reply.
pub(crate) async fn assert_echoes(client: &mut Client, content: &str) {
    client.send_json(&echo_msg(content)).await;
    assert_eq!(client.recv_json().await, echo_reply(content));
}

/// Sends a ping and checks that the next frame is the pong.
pub(crate) async fn assert_pongs(client: &mut Client) {
    client.send_json(&json!({"action": "ping"})).await;
    assert_eq!(client.recv_json().await, pong());
}

/// Checks that `client` receives no data frame for [`QUIET`].
pub(crate) async fn assert_quiet(client: &mut Client, who: &str) {
    if let Some(frame) = client.next(QUIET).await {
        panic!("{who} should receive nothing, got {frame:?}");
    }
}
