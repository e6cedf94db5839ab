//! What the protocol core costs on top of plain `serde_json`.
//!
//! - `echo`: one echo round trip (decode, reply, encode), first with bare
//!   `serde_json`, then through an open [`Connection`] with every call a
//!   driver makes.
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
    AuthOutcome, Connection, Handled, InFrame, LayerCommand, NoEvent, Options, Output, Protocol,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The echo payload.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
struct MessagePayload {
    content: String,
}

/// The endpoint's incoming messages (also used for replies).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Incoming {
    Echo(MessagePayload),
}

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

/// The frame every echo iteration decodes.
const FRAME: &str = r#"{"action":"echo","payload":{"content":"Hello, Chanx!"}}"#;
/// Receivers of one group message.
const RECEIVERS: usize = 1000;

type Conn = Connection<Incoming, NoEvent>;

/// Defaults, minus heartbeats and completion frames.
fn protocol() -> Arc<Protocol<Incoming, NoEvent>> {
    let options = Options {
        heartbeat: None,
        send_completion: false,
        ..Options::default()
    };
    Arc::new(Protocol::new(options).unwrap())
}

/// An open connection for user `pk` in group `room`, handshake drained.
fn open(protocol: &Arc<Protocol<Incoming, NoEvent>>, channel: String, pk: u64) -> Conn {
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
    conn.handle_frames_written(usize::MAX);
    conn
}

/// The reply to an echo message.
fn reply(message: Incoming) -> Incoming {
    let Incoming::Echo(payload) = message;
    Incoming::Echo(MessagePayload {
        content: format!("Echo: {}", payload.content),
    })
}

fn echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("echo");
    group.throughput(Throughput::Elements(1));

    group.bench_function("baseline/serde_json", |b| {
        b.iter(|| {
            let message: Incoming = serde_json::from_str(black_box(FRAME)).unwrap();
            black_box(serde_json::to_string(&reply(message)).unwrap())
        })
    });

    let protocol = protocol();
    let mut conn = open(&protocol, "bench.echo".into(), 1);
    let now = Instant::now();
    group.bench_function("chanx_proto/connection", |b| {
        b.iter(|| {
            conn.handle_frame(InFrame::Text(black_box(FRAME)), now)
                .unwrap();
            let Some(Output::Message(message)) = conn.poll_output() else {
                unreachable!("a valid echo frame")
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

fn group_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_fanout");
    group.throughput(Throughput::Elements(RECEIVERS as u64));

    let protocol = protocol();
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

criterion_group!(benches, echo, group_fanout);
criterion_main!(benches);
