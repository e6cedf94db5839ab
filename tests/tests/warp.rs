//! The end-to-end suite against the warp adapter.
#![allow(clippy::unwrap_used, missing_docs)]

mod suite;

use chanx_e2e::Adapter;

// Every suite test runs: warp serves the whole Quick Start (WebSockets and
// the HTTP API), like axum.
suite::adapter_tests!(Adapter::Warp;
    skip: [];
    attrs: [];
);
