//! The end-to-end suite against the axum adapter.
#![allow(clippy::unwrap_used, missing_docs)]

mod suite;

use chanx_e2e::Adapter;

// Every suite test runs: axum serves the whole Quick Start (WebSockets and
// the HTTP API), and no test is known to fail.
suite::adapter_tests!(Adapter::Axum;
    skip: [];
    attrs: [];
);
