//! What the protocol core costs on top of plain `serde_json`.
//!
//! - `echo`: one echo round trip (decode, reply, encode), first with bare
//!   `serde_json`, then through an open [`Connection`] with every call a
//!   driver makes.
//! - `list_field`: the same for a message with list fields.
//! - `camelized`: that message on a camelizing endpoint, against serde's
//!   `rename_all = "camelCase"` written by hand.
//! - `group_fanout`: delivering one group message to 1000 receivers, by
//!   stamping the shared, already-serialized envelope per receiver, against
//!   serializing the message once per receiver.
//!
//! Run with `cargo bench -p chanx-proto --bench codec`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use chanx_proto::{
    AuthOutcome, Connection, Handled, InFrame, LayerCommand, MessageSet, NoEvent, Options, Output,
    Protocol,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod common;
use common::*;

/// A chat message broadcast to a group.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum GroupMessage {
    ChatMessage(ChatPayload),
}

/// The payload of a chat message.
#[derive(Debug, Clone, Serialize)]
struct ChatPayload {
    content: String,
    user_name: String,
}

/// Receivers of one group message.
const RECEIVERS: usize = 1000;

type Conn = Connection<Incoming, NoEvent>;

/// Defaults, minus heartbeats and completion frames, camelizing if asked.
fn protocol<M: MessageSet>(camelize: bool) -> Arc<Protocol<M, NoEvent>> {
    let options = Options {
        heartbeat: None,
        send_completion: false,
        camelize,
        // Millions of frames at one fixed instant would overdraw any
        // budget and pause the reading (`examples/echo_cost.rs` keeps it).
        input_budget: None,
        ..Options::default()
    };
    Arc::new(Protocol::new(options).unwrap())
}

/// An open connection for user `pk` in group `room`, handshake and join
/// drained.
fn open<M: MessageSet>(
    protocol: &Arc<Protocol<M, NoEvent>>,
    channel: String,
    pk: u64,
) -> Connection<M, NoEvent> {
    let now = Instant::now();
    let mut conn = Connection::new(Arc::clone(protocol), channel, now);
    conn.handle_auth(
        AuthOutcome::Accepted {
            user_pk: Some(pk.into()),
            groups: vec!["room".into()],
        },
        now,
    )
    .unwrap();
    while conn.poll_output().is_some() {}
    // The join of its groups.
    while conn.poll_layer().is_some() {}
    conn.handle_frames_written(usize::MAX);
    conn
}

/// One round trip (decode, reply, encode) of `frame`, through plain
/// `serde_json` (`by_hand`) and through an open [`Connection`] of an
/// endpoint receiving `M` with every call a driver makes.
fn round_trip<M, B>(
    c: &mut Criterion,
    name: &str,
    frame: &'static str,
    camelize: bool,
    reply: fn(M) -> M,
    by_hand: fn(B) -> B,
) where
    M: MessageSet + Serialize,
    B: DeserializeOwned + Serialize,
{
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline/serde_json", |b| {
        b.iter(|| {
            let message: B = serde_json::from_str(black_box(frame)).unwrap();
            black_box(serde_json::to_string(&by_hand(message)).unwrap())
        })
    });
    let protocol = protocol::<M>(camelize);
    let mut conn = open(&protocol, format!("bench.{name}"), 1);
    let now = Instant::now();
    group.bench_function("chanx_proto/connection", |b| {
        b.iter(|| {
            conn.handle_frame(InFrame::Text(black_box(frame)), now)
                .unwrap();
            let Some(Output::Message(message)) = conn.poll_output() else {
                unreachable!("a valid frame")
            };
            conn.send_message(&reply(message)).unwrap();
            conn.message_handled(Handled::Completed).unwrap();
            while let Some(output) = conn.poll_output() {
                black_box(output);
            }
            conn.handle_frames_written(1);
        })
    });
    group.finish();
}

fn echo(c: &mut Criterion) {
    round_trip(c, "echo", ECHO_FRAME, false, echo_reply, echo_reply);
}

/// A message with list fields (`Vec` of structs, `Vec` of strings).
fn list_field(c: &mut Criterion) {
    round_trip(
        c,
        "list_field",
        ORDER_FRAME,
        false,
        order_reply,
        order_reply,
    );
}

/// The same order on a camelizing endpoint, against serde's own
/// `rename_all = "camelCase"` written by hand.
fn camelized(c: &mut Criterion) {
    round_trip(
        c,
        "camelized",
        CAMEL_ORDER_FRAME,
        true,
        order_reply,
        by_hand::order_reply,
    );
}

fn group_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_fanout");
    group.throughput(Throughput::Elements(RECEIVERS as u64));

    let protocol = protocol::<Incoming>(false);
    let content = GroupMessage::ChatMessage(ChatPayload {
        content: "Hello, everyone in the room!".into(),
        user_name: "alice".into(),
    });
    let mut sender = open(&protocol, "bench.sender".into(), 0);
    sender.send_group_message(&content, None, true).unwrap();
    let Some(LayerCommand::GroupSend { message, .. }) = sender.poll_layer() else {
        unreachable!("the sender is in one group")
    };
    let mut receivers: Vec<Conn> = (1..=RECEIVERS as u64)
        .map(|pk| open(&protocol, format!("bench.receiver.{pk}"), pk))
        .collect();

    group.bench_function("baseline/serde_json", |b| {
        b.iter(|| {
            for _ in 0..RECEIVERS {
                black_box(serde_json::to_string(black_box(&content)).unwrap());
            }
        })
    });

    group.bench_function("chanx_proto/connection", |b| {
        b.iter(|| {
            for conn in &mut receivers {
                conn.handle_layer_message(black_box(&message)).unwrap();
                while let Some(output) = conn.poll_output() {
                    black_box(output);
                }
                conn.handle_frames_written(1);
            }
        })
    });

    group.finish();
}

criterion_group!(benches, echo, list_field, camelized, group_fanout);
criterion_main!(benches);
