//! Replays every file of `fuzz/corpus/<target>/` through the check of that
//! fuzz target, on stable: the inputs the fuzzer found keep their
//! invariants on every test run, without nightly or libFuzzer.
#![allow(missing_docs)]

#[path = "../../fuzz/checks/mod.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on each file of `fuzz/corpus/<target>/`; the count.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let data = std::fs::read(&path).expect("a corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails {target}", path.display());
        count += 1;
    }
    count
}

#[test]
fn frame_corpus() {
    assert!(
        replay("frame", checks::frame::run) > 0,
        "the corpus is committed"
    );
}

#[test]
fn state_machine_corpus() {
    assert!(
        replay("state_machine", checks::state_machine::run) > 0,
        "the corpus is committed"
    );
}

#[test]
fn layer_envelope_corpus() {
    assert!(
        replay("layer_envelope", checks::layer_envelope::run) > 0,
        "the corpus is committed"
    );
}

#[test]
fn handshake_corpus() {
    assert!(
        replay("handshake", checks::handshake::run) > 0,
        "the corpus is committed"
    );
}
