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
//!    with the outcome of your authentication. Perform the join batch it
//!    emits, then call [`handle_groups_joined`](Connection::handle_groups_joined):
//!    the `authentication` frame waits for it, so a client that sees it can
//!    rely on its groups.
//! 3. For every input — [`handle_frame`](Connection::handle_frame),
//!    [`handle_layer_message`](Connection::handle_layer_message),
//!    [`handle_timeout`](Connection::handle_timeout),
//!    [`send_message`](Connection::send_message), ... — drain both queues
//!    until they return `None`, and re-arm your timer with
//!    [`poll_timeout`](Connection::poll_timeout):
//!    - [`poll_output`](Connection::poll_output): frames, pings and the close
//!      for the socket, messages and events for your handlers;
//!    - [`poll_layer`](Connection::poll_layer): group joins (one batch),
//!      leaves (one batch) and sends for the channel layer. Perform them
//!      without holding up the socket: a slow layer must not delay frames.
//! 4. After running the handler for an [`Output::Message`] call
//!    [`message_handled`](Connection::message_handled) (and
//!    [`event_handled`](Connection::event_handled) for an [`Output::Event`]).
//! 5. Report frames that reached the socket with
//!    [`handle_frames_written`](Connection::handle_frames_written), so the
//!    outbound bound (close 4008) measures what really waits. When
//!    [`is_backlog_high`](Connection::is_backlog_high) says so, let your
//!    writer drain before you feed more input. A close with
//!    `discard_queued` asks you to drop the frames still queued and send
//!    the close frame at once.
//! 6. Tell the core what only the transport knows: a frame too big or a
//!    protocol violation ([`handle_transport_error`](Connection::handle_transport_error)),
//!    reads paused and resumed ([`handle_reads_paused`](Connection::handle_reads_paused),
//!    so the heartbeat does not blame the peer for answers you did not
//!    read), and failures of your own ([`handle_failure`](Connection::handle_failure)).
//! 7. When the socket ends, call
//!    [`handle_transport_closed`](Connection::handle_transport_closed); every
//!    joined group is left exactly once, whatever the path to the close.
//! 8. When the connection goes idle (nothing to read, no handler running),
//!    call [`release_idle_memory`](Connection::release_idle_memory): the
//!    queues a burst grew give their memory back.
//!
//! The rules, as in quinn-proto and str0m:
//! - **Time is yours and monotonic.** Pass `Instant`s that never go back;
//!   the core never reads a clock. Calling `handle_timeout` early, late or
//!   twice is harmless: it acts only on deadlines that have passed.
//! - **Mutating while draining is allowed.** You may call any input (a
//!   handler's `send_message`, say) between two `poll_output` calls; new
//!   outputs queue behind the ones not yet drained.
//! - **Outcomes are outputs, misuse is an error.** What the client or the
//!   layer caused — a bad frame, a rejected event, a connection that closed
//!   meanwhile — comes out of `poll_output`; input after the close is
//!   ignored. An `Err(ProtoError)` means the runtime called something it
//!   never should (a frame before `handle_auth`, a completion with nothing
//!   pending). The `send_*` calls return [`SendError`]: `Closed` once the
//!   connection is closing, `Encode` for a value that is not JSON.
//! - **Every close code comes from the core** ([`close_code`]); a runtime
//!   reports what happened and performs [`Output::Close`].
//!
//! # Example: driving a connection by hand
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use chanx_proto::{AuthOutcome, Connection, Handled, InFrame, LayerCommand, NoEvent, Options, Output, Protocol};
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
//! assert!(matches!(conn.poll_layer(), Some(LayerCommand::Join(groups)) if groups == ["lobby"]));
//! conn.handle_groups_joined(); // the layer joined them
//! let Some(Output::Frame(frame)) = conn.poll_output() else { panic!() };
//! assert_eq!(frame, r#"{"action":"authentication","payload":{"status_code":200,"status_text":"OK","data":{"detail":"OK"}}}"#);
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
//! assert!(matches!(conn.poll_layer(), Some(LayerCommand::Leave(groups)) if groups == ["lobby"]));
//! ```

pub mod case;
pub mod codec;
mod connection;
mod envelope;
mod error;
mod interned;
mod limits;
mod message;
mod options;
pub mod python;
pub mod schema;
pub mod topic;

pub use codec::Serialized;
pub use connection::{
    AuthOutcome, Connection, Failure, Handled, InFrame, LayerCommand, LayerRejection, Output,
    State, TransportError, close_code,
};
pub use envelope::{
    ContentKind, EnvelopeError, EventEnvelope, GapNotice, GroupEnvelope, LayerMessage,
    TopicEnvelope,
};
pub use error::{ConfigError, EncodeError, LocItem, ProtoError, SendError, ValidationError};
pub use message::{MessageSet, NoEvent, status_text};
pub use options::{Heartbeat, InputBudget, Options, Protocol, RateLimit};
pub use schema::MessageSchema;
