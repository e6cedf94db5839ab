//! What each fuzz target checks, as plain functions over the fuzzer's
//! bytes: the targets (`fuzz_targets/*.rs`, nightly) call them, and a
//! stable test (`chanx/tests/fuzz_corpus.rs`) replays every file of
//! `fuzz/corpus/<target>/` through them, so the corpus keeps its
//! invariants on every CI run.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod common;
pub mod frame;
pub mod handshake;
pub mod layer_envelope;
pub mod state_machine;
