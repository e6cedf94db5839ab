//! Deterministic cost of the echo path: runs `N` echo round trips either
//! through plain `serde_json` or through an open `Connection`, so that an
//! instruction counter can compare the two without timing noise:
//!
//! ```text
//! cargo build --release -p chanx-proto --example echo_cost
//! for message in echo list camel; do
//!   for mode in baseline connection; do
//!     for n in 0 100000; do
//!       valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!         target/release/examples/echo_cost $mode $n $message 2>&1 | grep 'refs'
//!     done
//!   done
//! done
//! ```
//!
//! The cost per round trip is `(refs(n) - refs(0)) / n` for each mode.
//! Messages: `echo` (the quickstart's), `list` (an order with list
//! fields), `camel` (that order on a camelizing endpoint, against serde's
//! `rename_all = "camelCase"` written by hand).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use chanx_proto::{
    AuthOutcome, Connection, Handled, InFrame, MessageSet, NoEvent, Options, Output, Protocol,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[path = "../benches/common/mod.rs"]
mod common;
use common::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "connection".into());
    let n: usize = args.next().unwrap_or_else(|| "100000".into()).parse()?;
    let message = args.next().unwrap_or_else(|| "echo".into());
    let through_core = match mode.as_str() {
        "baseline" => false,
        "connection" => true,
        other => return Err(format!("unknown mode `{other}` (baseline | connection)").into()),
    };
    match message.as_str() {
        "echo" => run(through_core, n, ECHO_FRAME, false, echo_reply, echo_reply),
        "list" => run(
            through_core,
            n,
            ORDER_FRAME,
            false,
            order_reply,
            order_reply,
        ),
        "camel" => run(
            through_core,
            n,
            CAMEL_ORDER_FRAME,
            true,
            order_reply,
            by_hand::order_reply,
        ),
        other => Err(format!("unknown message `{other}` (echo | list | camel)").into()),
    }
}

/// `n` round trips of `frame`, by hand with `serde_json` or through an
/// open connection.
fn run<M, B>(
    through_core: bool,
    n: usize,
    frame: &str,
    camelize: bool,
    reply: fn(M) -> M,
    by_hand: fn(B) -> B,
) -> Result<(), Box<dyn std::error::Error>>
where
    M: MessageSet + Serialize,
    B: DeserializeOwned + Serialize,
{
    if !through_core {
        for _ in 0..n {
            let message: B = serde_json::from_str(black_box(frame))?;
            black_box(serde_json::to_string(&by_hand(message))?);
        }
        return Ok(());
    }
    let options = Options {
        heartbeat: None,
        camelize,
        ..Options::default()
    };
    let protocol = Arc::new(Protocol::<M, NoEvent>::new(options)?);
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
    for _ in 0..n {
        conn.handle_frame(InFrame::Text(black_box(frame)), now)?;
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
    Ok(())
}
