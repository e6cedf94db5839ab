//! Deterministic cost of the echo path: runs `N` echo round trips either
//! through plain `serde_json` or through an open `Connection`, so that an
//! instruction counter can compare the two without timing noise:
//!
//! ```text
//! cargo build --release -p chanx-proto --example echo_cost
//! for mode in baseline connection; do
//!   for n in 0 100000; do
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!       target/release/examples/echo_cost $mode $n 2>&1 | grep 'refs'
//!   done
//! done
//! ```
//!
//! The cost per round trip is `(refs(n) - refs(0)) / n` for each mode.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use chanx_proto::{AuthOutcome, Connection, Handled, InFrame, NoEvent, Options, Output, Protocol};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The echo payload.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
struct MessagePayload {
    content: String,
}

/// The incoming messages (also the replies).
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Incoming {
    Echo(MessagePayload),
}

const FRAME: &str = r#"{"action":"echo","payload":{"content":"Hello, Chanx!"}}"#;

fn reply(message: Incoming) -> Incoming {
    let Incoming::Echo(payload) = message;
    Incoming::Echo(MessagePayload {
        content: format!("Echo: {}", payload.content),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "connection".into());
    let n: usize = args.next().unwrap_or_else(|| "100000".into()).parse()?;
    let options = Options {
        heartbeat: None,
        ..Options::default()
    };
    let protocol = Arc::new(Protocol::<Incoming, NoEvent>::new(options)?);
    let now = Instant::now();
    let mut conn = Connection::new(protocol, "cost", now);
    conn.handle_auth(
        AuthOutcome::Accepted {
            user_pk: None,
            groups: Vec::new(),
        },
        now,
    )?;
    while conn.poll_output().is_some() {}
    conn.handle_frames_written(1);
    match mode.as_str() {
        "baseline" => {
            for _ in 0..n {
                let message: Incoming = serde_json::from_str(black_box(FRAME))?;
                black_box(serde_json::to_string(&reply(message))?);
            }
        }
        "connection" => {
            for _ in 0..n {
                conn.handle_frame(InFrame::Text(black_box(FRAME)), now)?;
                while let Some(output) = conn.poll_output() {
                    match output {
                        Output::Message(message) => {
                            conn.send_message(&reply(message))?;
                            conn.message_handled(Handled::Completed)?;
                        }
                        other => {
                            black_box(other);
                        }
                    }
                }
                conn.handle_frames_written(1);
            }
        }
        other => return Err(format!("unknown mode `{other}` (baseline | connection)").into()),
    }
    Ok(())
}
