//! The end-to-end suite against `chanx-async-std` on the async-std runtime.
#![allow(clippy::unwrap_used, missing_docs)]

mod suite;

use chanx_e2e::Adapter;

// `quickstart serve --adapter async-std` serves the WebSockets only: the
// tests of the HTTP API (login, playground, AsyncAPI, notify) have nothing
// to talk to. Every other suite test runs.
suite::adapter_tests!(Adapter::AsyncStd;
    skip: [
        login_sets_a_working_session_cookie = "serves WebSockets only: no HTTP API (POST /auth/login/)",
        login_wrong_credentials_are_401 = "serves WebSockets only: no HTTP API (POST /auth/login/)",
        login_malformed_body_is_400 = "serves WebSockets only: no HTTP API (POST /auth/login/)",
        playground_page_is_served = "serves WebSockets only: no playground (GET /playground/websocket/)",
        playground_info_lists_both_endpoints = "serves WebSockets only: no playground (GET /playground/websocket-info/)",
        playground_examples_are_valid_messages = "serves WebSockets only: no playground (GET /playground/websocket-info/)",
        asyncapi_document_has_a_channel_per_endpoint = "serves WebSockets only: no AsyncAPI document (GET /asyncapi.json)",
        notify_reaches_every_chat_client_in_room = "serves WebSockets only: no HTTP API (POST /api/notify/<room>/)",
        notify_levels_trimming_and_numbers = "serves WebSockets only: no HTTP API (POST /api/notify/<room>/)",
        notify_bad_bodies_are_400 = "serves WebSockets only: no HTTP API (POST /api/notify/<room>/)",
        notify_other_methods_are_405 = "serves WebSockets only: no HTTP API (/api/notify/<room>/)",
        completion_after_notify = "serves WebSockets only: no HTTP API (POST /api/notify/<room>/)",
    ];
    attrs: [];
);
