//! The end-to-end suite against `chanx-async-std` on a smol executor.
#![allow(clippy::unwrap_used, missing_docs)]

mod suite;

use chanx_e2e::Adapter;

// Like `quickstart serve --adapter async-std`, it serves the WebSockets
// only: the tests of the HTTP API (login, playground, AsyncAPI, notify)
// have nothing to talk to. Every other suite test runs.
suite::websockets_only_tests!(Adapter::Smol; also_skip: [
    // Known and open: on the async-tungstenite adapters a member that never
    // reads is not cut with 4008 (its frames are absorbed without
    // backpressure somewhere between the writer and the socket).
    a_member_that_never_reads_is_closed_and_others_unaffected = "open: no 4008 for a non-reading member on async-tungstenite",
]);
