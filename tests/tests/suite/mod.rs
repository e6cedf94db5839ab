//! The end-to-end suite, written once and run per adapter.
//!
//! Every test is a `pub(crate) async fn name(adapter: Adapter)` in one of
//! the files of this directory. Nothing lists the tests by hand: the build
//! script (`tests/build.rs`) finds them all, and [`adapter_tests!`] turns
//! each one into a `#[tokio::test]` of the adapter's test file, so a new
//! test runs on every adapter without being registered anywhere. (A
//! function that takes only an `Adapter` and returns nothing but is not
//! written so fails the build rather than being skipped.) A new file here
//! also needs its `mod` and `pub(crate) use` below; without them its tests
//! are found but do not compile.
//!
//! An adapter's test file states its adapter and, by name, the tests it
//! opts out of and the attributes some tests get:
//!
//! ```ignore
//! mod suite;
//! suite::adapter_tests!(Adapter::Warp;
//!     skip: [
//!         login_sets_a_working_session_cookie = "serves WebSockets only: no login API",
//!     ];
//!     attrs: [
//!         #[ignore = "bug: ..."] some_failing_test,
//!     ];
//! );
//! ```
//!
//! A skipped test is not generated at all (it does not show in `--list`);
//! every skip needs its reason. A name in `skip` or `attrs` that is not a
//! suite test, or a test named twice, is a compile error, so these lists
//! cannot outlive the tests they name.
//!
//! Tests that need the HTTP API (login, playground, AsyncAPI in
//! `http_api`; `notify_*` and `completion_after_notify` in `chat`) are the
//! ones an adapter that serves WebSockets only skips.
//!
//! Most tests use the adapter's shared default server
//! ([`chanx_e2e::shared`]) with room names of their own; tests that need
//! other options, a shutdown, or the Quick Start's `lobby` start their own.
#![allow(dead_code)]

mod abuse;
mod auth;
mod chat;
mod http_api;
mod limits;
mod load;
mod messages;
mod routing;
mod topics;

pub(crate) use abuse::*;
pub(crate) use auth::*;
pub(crate) use chat::*;
// Adapters without an HTTP API skip every test of this module.
#[allow(unused_imports)]
pub(crate) use http_api::*;
pub(crate) use limits::*;
pub(crate) use load::*;
pub(crate) use messages::*;
pub(crate) use routing::*;
pub(crate) use topics::*;

use std::time::Duration;

use chanx_e2e::Client;
use serde_json::{Value, json};

// `for_each_suite_test!` and the module `names`, written by `tests/build.rs`.
include!(concat!(env!("OUT_DIR"), "/suite_tests.rs"));

/// Generates one `#[tokio::test]` per suite test for `$adapter`, except the
/// tests in `skip` (each `name = "reason"`); a test in `attrs` gets the
/// attributes written before its name (e.g. `#[ignore = "bug: ..."]`).
///
/// How: the names of `skip` and `attrs` are imported from [`names`] into a
/// module of their own (an unknown name is an unresolved import, a repeated
/// one a duplicate definition), then a local macro with one arm per named
/// test and a default arm is applied to every test by
/// `for_each_suite_test!`. The local macro needs a literal `$`, passed in
/// as `$d` by the internal `@expand` rule.
macro_rules! adapter_tests {
    (
        @expand ($d:tt) $adapter:expr;
        skip: [$($skip:ident = $why:literal),*];
        attrs: [$($(#[$attr:meta])+ $name:ident),*]
    ) => {
        /// The tests this adapter names, each once and each a suite test.
        #[allow(unused_imports, dead_code)]
        mod named_suite_tests {
            $(use $crate::suite::names::$skip;)*
            $(use $crate::suite::names::$name;)*
            // Every skip says why.
            $(const _: &str = $why;)*
        }

        macro_rules! suite_test {
            $(($skip) => {};)*
            $(
                ($name) => {
                    $(#[$attr])+
                    #[tokio::test]
                    async fn $name() {
                        $crate::suite::$name($adapter).await
                    }
                };
            )*
            ($d test:ident) => {
                #[tokio::test]
                async fn $d test() {
                    $crate::suite::$d test($adapter).await
                }
            };
        }

        $crate::suite::for_each_suite_test!(suite_test);
    };
    (
        $adapter:expr;
        skip: [$($skip:ident = $why:literal),* $(,)?];
        attrs: [$($(#[$attr:meta])+ $name:ident),* $(,)?] $(;)?
    ) => {
        $crate::suite::adapter_tests!(@expand ($) $adapter;
            skip: [$($skip = $why),*]; attrs: [$($(#[$attr])+ $name),*]);
    };
}
pub(crate) use adapter_tests;

/// [`adapter_tests!`] for an adapter that serves the WebSockets only (no
/// HTTP API, playground or AsyncAPI document): the tests of those are
/// skipped, every other suite test runs. (Adapters with an HTTP API do
/// not use it.)
#[allow(unused_macros)]
macro_rules! websockets_only_tests {
    ($adapter:expr) => {
        $crate::suite::adapter_tests!($adapter;
            skip: [
                login_sets_a_working_session_cookie = "serves WebSockets only: no HTTP API (POST /auth/login/)",
                login_wrong_credentials_are_401 = "serves WebSockets only: no HTTP API (POST /auth/login/)",
                login_malformed_body_is_400 = "serves WebSockets only: no HTTP API (POST /auth/login/)",
                playground_page_is_served = "serves WebSockets only: no playground (GET /playground/websocket/)",
                playground_info_lists_every_endpoint = "serves WebSockets only: no playground (GET /playground/websocket-info/)",
                playground_examples_are_valid_messages = "serves WebSockets only: no playground (GET /playground/websocket-info/)",
                asyncapi_document_has_a_channel_per_endpoint = "serves WebSockets only: no AsyncAPI document (GET /asyncapi.json)",
                notify_reaches_every_chat_client_in_room = "serves WebSockets only: no HTTP API (POST /api/notify/<room>/)",
                notify_levels_trimming_and_numbers = "serves WebSockets only: no HTTP API (POST /api/notify/<room>/)",
                notify_bad_bodies_are_400 = "serves WebSockets only: no HTTP API (POST /api/notify/<room>/)",
                notify_other_methods_are_405 = "serves WebSockets only: no HTTP API (/api/notify/<room>/)",
                completion_after_notify = "serves WebSockets only: no HTTP API (POST /api/notify/<room>/)",
                notify_reaches_a_percent_encoded_unicode_room = "serves WebSockets only: no HTTP API (POST /api/notify/<room>/)",
                api_refuses_bodies_that_are_not_json = "serves WebSockets only: no HTTP API",
                api_refuses_posts_from_foreign_origins = "serves WebSockets only: no HTTP API",
                login_is_throttled_per_address = "serves WebSockets only: no HTTP API (POST /auth/login/)",
                notify_reaches_room_topic_subscribers = "serves WebSockets only: no HTTP API (POST /api/notify/<room>/)",
            ];
            attrs: [];
        );
    };
}
#[allow(unused_imports)]
pub(crate) use websockets_only_tests;

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
