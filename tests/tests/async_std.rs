//! The end-to-end suite against `chanx-async-std` on the async-std runtime.
#![allow(clippy::unwrap_used, missing_docs)]

mod suite;

use chanx_e2e::Adapter;

// `quickstart serve --adapter async-std` serves the WebSockets only: the
// tests of the HTTP API (login, playground, AsyncAPI, notify) have nothing
// to talk to. Every other suite test runs.
suite::websockets_only_tests!(Adapter::AsyncStd);
