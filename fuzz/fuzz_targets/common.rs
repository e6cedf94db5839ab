//! The message sets and helpers the fuzz targets share.

use std::sync::Arc;
use std::time::Instant;

use chanx_proto::{AuthOutcome, Connection, Options, Protocol};
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
    Arc::new(Protocol::new(options).expect("valid options"))
}

pub fn open(protocol: Arc<Protocol<Incoming, Event>>, groups: Vec<String>, now: Instant) -> Conn {
    let mut conn = Connection::new(protocol, "fuzz.self", now);
    conn.handle_auth(AuthOutcome::Accepted { user_pk: Some(1.into()), groups }, now)
        .expect("first authentication");
    conn
}
