//! A blocking echo server: the "custom runtime" proof of `chanx-proto`.
//!
//! The protocol core does no I/O, so any runtime can drive it. This example
//! drives it with nothing but `std::net::TcpListener`, one OS thread per
//! connection and the synchronous `tungstenite` crate: no async runtime, no
//! `chanx` driver. It still speaks the whole wire protocol of
//! `PROTOCOL.md`: the `authentication` frame, validated `echo` messages,
//! pydantic-shaped error frames, the built-in `ping`/`pong`, the frame size
//! limit (close 1009) and heartbeats (a WebSocket ping every 30 s, close 4408
//! after two silent intervals), timed with the socket's read timeout.
//!
//! Try it:
//!
//! ```text
//! cargo run -p chanx-proto --example blocking_echo            # 127.0.0.1:9001
//! cargo run -p chanx-proto --example blocking_echo -- 0.0.0.0:9100
//! ```
//!
//! then connect any WebSocket client, e.g. `websocat ws://127.0.0.1:9001/`,
//! and send `{"action":"echo","payload":{"content":"hi"}}`.

use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chanx_proto::{
    AuthOutcome, Connection, Handled, InFrame, NoEvent, Options, Output, ProtoError, Protocol,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Bytes, HandshakeError, Message, WebSocket};

/// The payload of an `echo` message, in both directions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct MessagePayload {
    /// The text to echo.
    pub content: String,
}

/// What a client may send to the echo endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum Incoming {
    /// `{"action": "echo", "payload": {"content": "..."}}`.
    Echo(MessagePayload),
}

/// What the echo endpoint sends back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum Outgoing {
    /// `{"action": "echo", "payload": {"content": "Echo: ..."}}`.
    Echo(MessagePayload),
}

/// How long a client may take to finish the WebSocket upgrade.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write may block before the client counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the client's answer to our close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Read timeout when the core has no timer armed (heartbeat off or closing).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a connection's session ended abnormally.
#[derive(Debug)]
pub enum SessionError {
    /// The socket could not be configured.
    Socket(std::io::Error),
    /// The WebSocket upgrade failed or timed out.
    Handshake(String),
    /// The WebSocket connection failed after the upgrade.
    WebSocket(tungstenite::Error),
    /// The protocol core refused an input (a bug in this driver).
    Protocol(ProtoError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Socket(e) => write!(f, "could not configure the socket: {e}"),
            SessionError::Handshake(e) => write!(f, "WebSocket upgrade failed: {e}"),
            SessionError::WebSocket(e) => write!(f, "WebSocket connection failed: {e}"),
            SessionError::Protocol(e) => write!(f, "protocol core refused an input: {e}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<tungstenite::Error> for SessionError {
    fn from(e: tungstenite::Error) -> Self {
        SessionError::WebSocket(e)
    }
}

impl From<ProtoError> for SessionError {
    fn from(e: ProtoError) -> Self {
        SessionError::Protocol(e)
    }
}

/// Whether the session goes on after draining the core's outputs.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    /// Keep reading.
    Continue,
    /// A close frame was sent: finish the closing handshake.
    Closing,
}

/// Accepts connections on `listener` and serves each in its own thread.
///
/// With `max_connections = Some(n)` it stops accepting after `n`
/// connections and returns once all of them have ended (handy for tests);
/// with `None` it serves forever. Errors of one connection are reported on
/// stderr and never stop the server; only failing to start a thread does.
pub fn serve(listener: TcpListener, max_connections: Option<usize>) -> std::io::Result<()> {
    let protocol = Protocol::<Incoming, NoEvent>::new(Options::default())
        .map_err(|e| std::io::Error::other(format!("invalid endpoint configuration: {e}")))?;
    let protocol = Arc::new(protocol);
    let mut workers = Vec::new();
    let mut accepted = 0usize;
    while max_connections.is_none_or(|max| accepted < max) {
        let (stream, peer) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("blocking_echo: accept failed: {e}");
                continue;
            }
        };
        accepted += 1;
        let protocol = Arc::clone(&protocol);
        let channel = format!("blocking_echo.{accepted}");
        let worker = thread::Builder::new()
            .name(channel.clone())
            .spawn(move || {
                if let Err(e) = handle_connection(stream, protocol, channel) {
                    eprintln!("blocking_echo: connection from {peer}: {e}");
                }
            })?;
        if max_connections.is_some() {
            workers.push(worker);
        }
    }
    for worker in workers {
        if worker.join().is_err() {
            eprintln!("blocking_echo: a connection thread panicked");
        }
    }
    Ok(())
}

/// Runs one connection from the WebSocket upgrade to the end of the socket.
fn handle_connection(
    stream: TcpStream,
    protocol: Arc<Protocol<Incoming, NoEvent>>,
    channel: String,
) -> Result<(), SessionError> {
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(SessionError::Socket)?;
    let mut ws = tungstenite::accept(stream).map_err(|e| match e {
        HandshakeError::Interrupted(_) => {
            SessionError::Handshake("the client did not finish the upgrade in time".into())
        }
        HandshakeError::Failure(e) => SessionError::Handshake(e.to_string()),
    })?;

    let now = Instant::now();
    let mut conn = Connection::new(protocol, channel, now);
    // No credentials to check: everyone is an anonymous user in no group.
    conn.handle_auth(
        AuthOutcome::Accepted {
            user_pk: None,
            groups: vec![],
        },
        now,
    )?;
    let result = run_session(&mut ws, &mut conn);
    // However the session ended, the core leaves its groups exactly once.
    conn.handle_transport_closed();
    while conn.poll_output().is_some() {}
    result
}

/// The read loop: feed frames and timeouts to the core, perform its outputs.
fn run_session(
    ws: &mut WebSocket<TcpStream>,
    conn: &mut Connection<Incoming, NoEvent>,
) -> Result<(), SessionError> {
    loop {
        if drain_outputs(ws, conn)? == Flow::Closing {
            return finish_close(ws);
        }
        let timeout = conn.poll_timeout().map_or(IDLE_TIMEOUT, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        });
        // A zero read timeout is refused by the OS API: wait at least 1 ms.
        ws.get_ref()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(SessionError::Socket)?;
        let message = match ws.read() {
            Ok(message) => message,
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                conn.handle_timeout(Instant::now());
                continue;
            }
            Err(e) if is_normal_end(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let now = Instant::now();
        match &message {
            Message::Text(text) => conn.handle_frame(InFrame::Text(text.as_str()), now)?,
            Message::Binary(bytes) => conn.handle_frame(InFrame::Binary(bytes), now)?,
            // tungstenite answers pings by itself; the core only notes activity.
            Message::Ping(_) => conn.handle_frame(InFrame::Ping, now)?,
            Message::Pong(_) => conn.handle_frame(InFrame::Pong, now)?,
            Message::Close(frame) => {
                let code = frame.as_ref().map(|f| u16::from(f.code));
                conn.handle_frame(InFrame::Close(code), now)?;
                // Flushing sends tungstenite's queued close reply.
                return match ws.flush() {
                    Ok(()) => Ok(()),
                    Err(e) if is_normal_end(&e) => Ok(()),
                    Err(e) => Err(e.into()),
                };
            }
            Message::Frame(_) => {}
        }
    }
}

/// Performs every pending output of the core, then flushes the socket.
fn drain_outputs(
    ws: &mut WebSocket<TcpStream>,
    conn: &mut Connection<Incoming, NoEvent>,
) -> Result<Flow, SessionError> {
    let mut flow = Flow::Continue;
    let mut written = 0;
    while let Some(output) = conn.poll_output() {
        match output {
            Output::Frame(text) => {
                ws.write(Message::text(text))?;
                written += 1;
            }
            Output::Ping => ws.write(Message::Ping(Bytes::new()))?,
            Output::Close { code, reason } => {
                ws.close(Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                }))?;
                flow = Flow::Closing;
            }
            Output::Message(Incoming::Echo(payload)) => {
                let reply = Outgoing::Echo(MessagePayload {
                    content: format!("Echo: {}", payload.content),
                });
                // Once the core is closing it refuses sends; that is not an error here.
                match conn.send_message(&reply) {
                    Ok(()) | Err(ProtoError::Closed) => {}
                    Err(e) => return Err(e.into()),
                }
                match conn.message_handled(Handled::Completed) {
                    Ok(()) | Err(ProtoError::Closed) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Output::Event(event) => match event {},
            // A single process without a channel layer: nobody joins groups here.
            Output::JoinGroup(_) | Output::LeaveGroup(_) | Output::GroupSend { .. } => {}
        }
    }
    match ws.flush() {
        Ok(()) => {}
        Err(e) if flow == Flow::Closing && is_normal_end(&e) => {}
        Err(e) => return Err(e.into()),
    }
    conn.handle_frames_written(written);
    Ok(flow)
}

/// After our close frame: wait (bounded) for the client's close reply.
fn finish_close(ws: &mut WebSocket<TcpStream>) -> Result<(), SessionError> {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        ws.get_ref()
            .set_read_timeout(Some(left))
            .map_err(SessionError::Socket)?;
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => return Ok(()),
            Err(e) if is_normal_end(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether a socket error is the read timeout expiring.
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Whether a WebSocket error just means the peer has gone.
fn is_normal_end(e: &tungstenite::Error) -> bool {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => true,
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => true,
        tungstenite::Error::Io(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

/// Binds `127.0.0.1:9001` (or the address given as first argument) and serves forever.
fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("blocking_echo: `{addr}` is not a socket address ({e}); try 127.0.0.1:9001");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("blocking_echo: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("blocking_echo: listening on ws://{addr}/");
    if let Err(e) = serve(listener, None) {
        eprintln!("blocking_echo: server stopped: {e}");
        std::process::exit(1);
    }
}
