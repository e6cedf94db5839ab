//! The end-to-end suite against `chanx-async-std` on a smol executor.
#![allow(clippy::unwrap_used, missing_docs)]

mod suite;

use chanx_e2e::Adapter;

// Like `quickstart serve --adapter async-std`, it serves the WebSockets
// only: the tests of the HTTP API (login, playground, AsyncAPI, notify)
// have nothing to talk to. Every other suite test runs.
suite::websockets_only_tests!(Adapter::Smol);
