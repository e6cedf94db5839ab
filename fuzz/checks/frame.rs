//! Arbitrary bytes as one client frame (text and binary) into an open
//! connection: never a panic, always an answer (or a 1009 close when too big).

use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use chanx_proto::{InFrame, Output};

use super::common;

/// Decodes `data` as the fuzzer does and checks it.
pub fn run(data: &[u8]) {
    if let Ok(input) = <(bool, bool, &[u8])>::arbitrary_take_rest(Unstructured::new(data)) {
        check(input);
    }
}

fn check((camelize, small, bytes): (bool, bool, &[u8])) {
    let now = Instant::now();
    let text = String::from_utf8_lossy(bytes);
    for frame in [InFrame::Text(&text), InFrame::Binary(bytes)] {
        let mut conn = common::open(common::protocol(camelize, small), vec!["g".into()], now);
        while conn.poll_output().is_some() {}
        conn.handle_frame(frame, now)
            .expect("an open connection takes frames");
        let mut answered = false;
        while let Some(output) = conn.poll_output() {
            match output {
                Output::Frame(f) => {
                    let v: serde_json::Value = serde_json::from_str(&f).expect("frames are JSON");
                    assert!(v.get("action").is_some());
                    answered = true;
                }
                // A topic request is answered by the runtime (subscribe) or a handler.
                Output::Message(_) | Output::Topic(_) | Output::Close { .. } => answered = true,
                _ => {}
            }
        }
        assert!(answered, "every frame gets an answer");
    }
}
