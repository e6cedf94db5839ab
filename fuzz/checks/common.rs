//! The message sets the fuzz targets share; the helpers come from the
//! core's test support module, shared with `chanx-proto/tests`.

use std::sync::Arc;
use std::time::Instant;

use chanx_proto::{AuthOutcome, Connection, Options, Protocol};

#[path = "../../chanx-proto/tests/support/mod.rs"]
pub mod support;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Payload {
    pub content: String,
    pub count: Option<u8>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum Incoming {
    Echo(Payload),
    Flag { on: bool, level: Level },
    Empty,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "handler", content = "payload", rename_all = "snake_case")]
pub enum Event {
    Notify { content: String },
}

pub type Conn = Connection<Incoming, Event>;

pub fn protocol(camelize: bool, small: bool) -> Arc<Protocol<Incoming, Event>> {
    let options = Options {
        camelize,
        send_completion: true,
        max_frame_size: if small { 64 } else { 1 << 20 },
        max_outbound_frames: 8,
        ..Options::default()
    };
    let topics = vec![
        chanx_proto::topic::TopicType::new::<Incoming>("T", "t:{id}", "action")
            .expect("a valid topic type"),
    ];
    let protocol = Protocol::new(options)
        .and_then(|p| p.with_topics(topics))
        .expect("valid options");
    Arc::new(protocol)
}

/// A topic name the fuzz targets' topic type serves (or not, for `n >= 4`).
pub fn topic(n: u8) -> String {
    match n % 6 {
        4 => "u:1".to_owned(),
        5 => format!("t:{}", "x".repeat(300)),
        n => format!("t:{n}"),
    }
}

/// An open connection in `groups`, its handshake outputs drained (the
/// state machine target opens its own, to watch the join batch).
#[allow(dead_code)]
pub fn open(protocol: Arc<Protocol<Incoming, Event>>, groups: Vec<String>, now: Instant) -> Conn {
    let outcome = AuthOutcome::Accepted {
        user_pk: Some(1.into()),
        groups,
    };
    support::open_connection(protocol, "fuzz.self", outcome, now)
}
