//! The Sans-IO protocol core of chanx: typed, authenticated, group-aware
//! WebSocket endpoints without any I/O.
//!
//! A [`Connection`] turns raw frames, the authentication outcome,
//! channel-layer messages and time into validated messages for the
//! application and outbound actions. It never reads a clock, spawns or
//! waits: the caller (the `chanx` driver, your own runtime, a fuzzer) feeds
//! inputs and drains outputs, in the style of `quinn-proto`.
//!
//! # Call order
//!
//! 1. Build a [`Protocol`] once per endpoint, share it in an `Arc`.
//! 2. Per connection: [`Connection::new`], then [`Connection::handle_auth`]
//!    with the outcome of your authentication.
//! 3. For every input — [`handle_frame`](Connection::handle_frame),
//!    [`handle_layer_message`](Connection::handle_layer_message),
//!    [`handle_timeout`](Connection::handle_timeout),
//!    [`send_message`](Connection::send_message), ... — drain
//!    [`poll_output`](Connection::poll_output) until it returns `None`, and
//!    re-arm your timer with [`poll_timeout`](Connection::poll_timeout).
//! 4. After running the handler for an [`Output::Message`] call
//!    [`message_handled`](Connection::message_handled) (and
//!    [`event_handled`](Connection::event_handled) for an [`Output::Event`]).
//! 5. Report frames that reached the socket with
//!    [`handle_frames_written`](Connection::handle_frames_written), so the
//!    outbound bound (close 4008) measures what really waits.
//! 6. When the socket ends, call
//!    [`handle_transport_closed`](Connection::handle_transport_closed); every
//!    joined group is left exactly once, whatever the path to the close.
//!
//! # Example: driving a connection by hand
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use chanx_proto::{AuthOutcome, Connection, Handled, InFrame, NoEvent, Options, Output, Protocol};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Deserialize, Serialize, JsonSchema)]
//! struct MessagePayload { content: String }
//!
//! #[derive(Debug, Deserialize, Serialize, JsonSchema)]
//! #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
//! enum Incoming { Echo(MessagePayload) }
//!
//! let protocol = Arc::new(Protocol::<Incoming, NoEvent>::new(Options::default()).unwrap());
//! let now = Instant::now();
//! let mut conn = Connection::new(protocol, "chan.1", now);
//!
//! conn.handle_auth(AuthOutcome::Accepted { user_pk: Some(1.into()), groups: vec!["lobby".into()] }, now).unwrap();
//! let mut frames = Vec::new();
//! while let Some(out) = conn.poll_output() {
//!     match out {
//!         Output::Frame(text) => frames.push(text),
//!         Output::JoinGroup(group) => assert_eq!(group, "lobby"),
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! assert_eq!(frames, [r#"{"action":"authentication","payload":{"status_code":200,"status_text":"OK","data":{"detail":"OK"}}}"#]);
//!
//! conn.handle_frame(InFrame::Text(r#"{"action":"echo","payload":{"content":"hi"}}"#), now).unwrap();
//! let Some(Output::Message(Incoming::Echo(p))) = conn.poll_output() else { panic!() };
//! conn.send_message(&Incoming::Echo(MessagePayload { content: format!("Echo: {}", p.content) })).unwrap();
//! conn.message_handled(Handled::Completed).unwrap();
//! let Some(Output::Frame(reply)) = conn.poll_output() else { panic!() };
//! assert_eq!(reply, r#"{"action":"echo","payload":{"content":"Echo: hi"}}"#);
//!
//! // A bad frame gets an error frame and the connection stays open.
//! conn.handle_frame(InFrame::Text(r#"{"action":"echo","payload":{}}"#), now).unwrap();
//! let Some(Output::Frame(error)) = conn.poll_output() else { panic!() };
//! assert_eq!(error, r#"{"action":"error","payload":[{"type":"missing","loc":["echo","payload","content"],"msg":"Field required"}]}"#);
//!
//! // A built-in ping (the set declares none) is answered by the core.
//! conn.handle_frame(InFrame::Text(r#"{"action":"ping"}"#), now).unwrap();
//! let Some(Output::Frame(pong)) = conn.poll_output() else { panic!() };
//! assert_eq!(pong, r#"{"action":"pong","payload":null}"#);
//!
//! conn.close(1000, "bye");
//! assert!(matches!(conn.poll_output(), Some(Output::Close { code: 1000, .. })));
//! assert!(matches!(conn.poll_output(), Some(Output::LeaveGroup(g)) if g == "lobby"));
//! ```

pub mod case;
pub mod codec;
mod connection;
mod envelope;
mod error;
mod limits;
mod message;
mod options;
pub mod python;
pub mod schema;

pub use connection::{AuthOutcome, Connection, Handled, InFrame, Output, State, close_code};
pub use envelope::{ContentKind, EnvelopeError, EventEnvelope, GroupEnvelope, LayerMessage};
pub use error::{ConfigError, LocItem, ProtoError, ValidationError};
pub use message::{MessageSet, NoEvent, status_text};
pub use options::{Heartbeat, Options, Protocol, RateLimit};
pub use schema::MessageSchema;
