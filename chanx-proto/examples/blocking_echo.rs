//! A blocking echo server: the "custom runtime" proof of `chanx-proto`.
//!
//! The protocol core does no I/O, so any runtime can drive it. This example
//! drives it with nothing but `std::net`, OS threads, `std::sync::mpsc` and
//! the synchronous `tungstenite` crate: no async runtime, no `chanx`
//! driver. It still follows the whole call order of the crate docs and
//! speaks the whole wire protocol: the `authentication` frame,
//! validated messages, pydantic-shaped error frames, the built-in
//! `ping`/`pong`, the frame size limit (close 1009), heartbeats (a WebSocket
//! ping every 30 s, close 4408 after two silent intervals) and the outbound
//! bound (close 4008).
//!
//! # Messages
//!
//! - `{"action": "echo", "payload": {"content": "hi"}}` is answered with
//!   `{"action": "echo", "payload": {"content": "Echo: hi"}}`.
//! - `{"action": "slow_echo", "payload": {"content": "hi", "millis": 500}}`
//!   answers the same after sleeping `millis` milliseconds on the handler
//!   thread, the way a real handler waits for a slow service. `millis` is
//!   capped at [`MAX_SLOW_ECHO_MILLIS`] (10 s): a larger value sleeps 10 s.
//!
//! # Two threads per connection
//!
//! - The **connection thread** owns the socket and the [`Connection`]: it
//!   reads frames, runs the core's timers (`handle_timeout`) and writes.
//! - The **handler thread** runs the application's handlers, one message at
//!   a time and in order; the two talk over `mpsc` channels.
//!
//! While a handler runs the connection thread does not read the socket (the
//! next message waits in TCP, which pushes back on a client that sends
//! faster than its messages are handled), but it keeps pinging and
//! writing. It tells the core with `handle_reads_paused` and
//! `handle_reads_resumed`, so the heartbeat never closes a peer whose pongs
//! wait unread behind a slow handler.
//!
//! # Writes and slow consumers (close 4008)
//!
//! Frames from the core wait in the session's own queue. They are handed to
//! tungstenite only once tungstenite's buffer is flushed, and every write
//! runs under a short socket write timeout: a full socket means "try again
//! on a later turn" (tungstenite keeps the unsent bytes and resumes), never
//! a blocked reader. A frame counts as written (`handle_frames_written`)
//! when the flush that carried it completed. When the core's backlog is
//! high the writer gets a longer turn before the next read, so that a
//! client that reads slowly keeps up; a client that sends but never reads
//! still reaches the core's outbound bound, and the core closes with 4008
//! and `discard_queued`: the frames still in the queue are dropped and the
//! close frame follows what tungstenite already holds (any other close
//! sends the queued frames first). Every close handshake ends within
//! [`CLOSE_TIMEOUT`].
//!
//! # Transport errors
//!
//! A message over the frame limit, a WebSocket protocol violation or a text
//! frame that is not UTF-8 fails tungstenite's read; the session reports it
//! with `handle_transport_error` and performs the close the core emits
//! (1009, 1002, 1007). tungstenite cannot read past such a frame, so once
//! the close frame is out the session shuts the socket's write side and
//! discards what the peer still sends until it hangs up.
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

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chanx_proto::{
    AuthOutcome, Connection, Failure, Handled, InFrame, NoEvent, Options, Output, ProtoError,
    Protocol, SendError, TransportError,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Bytes, HandshakeError, Message, WebSocket};

/// The payload of an `echo` message, in both directions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct MessagePayload {
    /// The text to echo.
    pub content: String,
}

/// The payload of a `slow_echo` message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct SlowEchoPayload {
    /// The text to echo.
    pub content: String,
    /// How long the handler sleeps before answering, in milliseconds
    /// (at most [`MAX_SLOW_ECHO_MILLIS`]).
    pub millis: u64,
}

/// What a client may send to the echo endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum Incoming {
    /// `{"action": "echo", "payload": {"content": "..."}}`.
    Echo(MessagePayload),
    /// `{"action": "slow_echo", "payload": {"content": "...", "millis": 500}}`.
    SlowEcho(SlowEchoPayload),
}

/// What the echo endpoint sends back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum Outgoing {
    /// `{"action": "echo", "payload": {"content": "Echo: ..."}}`.
    Echo(MessagePayload),
}

/// The longest sleep of a `slow_echo` handler; larger `millis` are capped.
pub const MAX_SLOW_ECHO_MILLIS: u64 = 10_000;
/// How long a client may take to finish the WebSocket upgrade.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write may wait for room in the socket on a normal turn
/// (the socket's write timeout: it bounds each wait without progress, so a
/// turn that keeps making progress goes on).
const WRITE_TIMEOUT: Duration = Duration::from_millis(20);
/// How long one write may wait when the core's backlog is high: the
/// writer's longer turn before the next read.
const BACKLOG_WRITE_TIMEOUT: Duration = Duration::from_millis(250);
/// After a write found the socket full, the next attempt waits this long.
const WRITE_RETRY: Duration = Duration::from_millis(20);
/// From the start of a close (ours or the peer's) to the end of the session.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest single wait when nothing is scheduled (heartbeat off).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The OS refuses a zero read timeout: the shortest read wait.
const MIN_READ_WAIT: Duration = Duration::from_millis(1);

/// The application's handler: runs on the handler thread and may block.
pub fn handle_message(message: Incoming) -> Outgoing {
    let content = match message {
        Incoming::Echo(payload) => payload.content,
        Incoming::SlowEcho(payload) => {
            let millis = payload.millis.min(MAX_SLOW_ECHO_MILLIS);
            thread::sleep(Duration::from_millis(millis));
            payload.content
        }
    };
    Outgoing::Echo(MessagePayload {
        content: format!("Echo: {content}"),
    })
}

/// Why a connection's session ended abnormally.
#[derive(Debug)]
pub enum SessionError {
    /// The socket could not be configured.
    Socket(io::Error),
    /// The handler thread could not be started.
    Spawn(io::Error),
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
            SessionError::Spawn(e) => write!(f, "could not start the handler thread: {e}"),
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

/// Serves `listener` with the default [`Options`] (see [`serve_with`]).
pub fn serve(listener: TcpListener, max_connections: Option<usize>) -> io::Result<()> {
    serve_with(listener, Options::default(), max_connections)
}

/// Accepts connections on `listener` and serves each with `options` on its
/// own threads.
///
/// With `max_connections = Some(n)` it stops accepting after `n`
/// connections and returns once all of them have ended (handy for tests);
/// with `None` it serves forever. Errors of one connection are reported on
/// stderr and never stop the server; only invalid options or failing to
/// start a thread do.
pub fn serve_with(
    listener: TcpListener,
    options: Options,
    max_connections: Option<usize>,
) -> io::Result<()> {
    let protocol = Protocol::<Incoming, NoEvent>::new(options)
        .map_err(|e| io::Error::other(format!("invalid endpoint configuration: {e}")))?;
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

/// Runs one connection from the WebSocket upgrade to the end of the socket
/// and of its handler thread.
fn handle_connection(
    stream: TcpStream,
    protocol: Arc<Protocol<Incoming, NoEvent>>,
    channel: String,
) -> Result<(), SessionError> {
    let ws = upgrade(stream, protocol.options())?;
    let handler = Handler::spawn(&channel).map_err(SessionError::Spawn)?;
    let now = Instant::now();
    let mut session = Session::new(ws, Connection::new(protocol, channel, now), handler);
    // No credentials to check: everyone is an anonymous user in no group.
    let accepted = AuthOutcome::Accepted {
        user_pk: None,
        groups: vec![],
    };
    let result = match session.conn.handle_auth(accepted, now) {
        Ok(()) => session.run(),
        Err(e) => Err(e.into()),
    };
    session.finish();
    result
}

/// Performs the WebSocket upgrade (bounded by [`HANDSHAKE_TIMEOUT`]) with
/// tungstenite's size limits set to the endpoint's frame limit.
fn upgrade(stream: TcpStream, options: &Options) -> Result<WebSocket<TcpStream>, SessionError> {
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(SessionError::Socket)?;
    // Larger messages fail the read with `Error::Capacity`, reported to the
    // core as `MessageTooBig` (close 1009) before tungstenite buffers them.
    let limit = Some(options.max_frame_size);
    let config = WebSocketConfig::default()
        .max_message_size(limit)
        .max_frame_size(limit);
    let ws = tungstenite::accept_with_config(stream, Some(config)).map_err(|e| match e {
        HandshakeError::Interrupted(_) => {
            SessionError::Handshake("the client did not finish the upgrade in time".into())
        }
        HandshakeError::Failure(e) => SessionError::Handshake(e.to_string()),
    })?;
    ws.get_ref()
        .set_write_timeout(Some(WRITE_TIMEOUT))
        .map_err(SessionError::Socket)?;
    Ok(ws)
}

/// The handler thread's answer to one message.
#[derive(Debug)]
struct Reply {
    /// The frame to send, if the handler produced one.
    outgoing: Option<Outgoing>,
    /// How the handler ended.
    handled: Handled,
}

/// The connection thread's end of its handler thread.
#[derive(Debug)]
struct Handler {
    /// Messages to handle, in order.
    jobs: Sender<Incoming>,
    /// One reply per message, in the same order.
    replies: Receiver<Reply>,
    thread: JoinHandle<()>,
    /// Messages handed over and not answered yet.
    running: usize,
}

impl Handler {
    /// Starts the handler thread of connection `channel`.
    fn spawn(channel: &str) -> io::Result<Handler> {
        let (jobs, job_rx) = mpsc::channel();
        let (reply_tx, replies) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(format!("{channel}.handler"))
            .spawn(move || handler_loop(job_rx, reply_tx))?;
        Ok(Handler {
            jobs,
            replies,
            thread,
            running: 0,
        })
    }

    /// Closes the job channel and waits for the thread, which ends after
    /// the message it is handling (at most [`MAX_SLOW_ECHO_MILLIS`]).
    fn stop(self) {
        drop(self.jobs);
        if self.thread.join().is_err() {
            eprintln!("blocking_echo: a handler thread panicked");
        }
    }
}

/// The handler thread: handles messages one at a time until the connection
/// thread hangs up. A panicking handler becomes [`Handled::Failed`].
fn handler_loop(jobs: Receiver<Incoming>, replies: Sender<Reply>) {
    for message in jobs {
        let reply = match panic::catch_unwind(move || handle_message(message)) {
            Ok(outgoing) => Reply {
                outgoing: Some(outgoing),
                handled: Handled::Completed,
            },
            Err(_) => Reply {
                outgoing: None,
                handled: Handled::Failed,
            },
        };
        if replies.send(reply).is_err() {
            return;
        }
    }
}

/// One connection's state on its connection thread.
#[derive(Debug)]
struct Session {
    ws: WebSocket<TcpStream>,
    conn: Connection<Incoming, NoEvent>,
    handler: Handler,
    /// Frames from the core not yet handed to tungstenite, oldest first.
    queue: VecDeque<String>,
    /// Frames handed to tungstenite since its last completed flush.
    handed: usize,
    /// tungstenite may hold bytes not yet on the socket.
    dirty: bool,
    /// A write found the socket full: the next normal turn waits until then.
    retry_at: Option<Instant>,
    /// A frame was read since the writer's last long turn.
    read_since_long_turn: bool,
    /// Our close frame, sent once the queue is empty.
    close: Option<CloseFrame>,
    /// A close began (ours or the peer's): the session ends by then.
    close_deadline: Option<Instant>,
    /// tungstenite failed a read (frame too big, protocol violation,
    /// invalid UTF-8) and cannot read any further: its frame state is lost.
    reader_lost: bool,
    /// The socket is done.
    ended: bool,
}

impl Session {
    fn new(
        ws: WebSocket<TcpStream>,
        conn: Connection<Incoming, NoEvent>,
        handler: Handler,
    ) -> Self {
        Session {
            ws,
            conn,
            handler,
            queue: VecDeque::new(),
            handed: 0,
            dirty: false,
            retry_at: None,
            read_since_long_turn: false,
            close: None,
            close_deadline: None,
            reader_lost: false,
            ended: false,
        }
    }

    /// The connection thread's loop: perform the core's outputs, give the
    /// writer its turn, then wait for the handler, the socket or a timer.
    fn run(&mut self) -> Result<(), SessionError> {
        loop {
            self.drain_core()?;
            self.writer_turn()?;
            if self.ended || self.close_deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            if self.reader_lost && !self.has_writes() {
                self.linger();
                return Ok(());
            }
            self.wait()?;
            // Early or repeated calls are harmless: the core acts only on
            // deadlines that have passed.
            self.conn.handle_timeout(Instant::now());
        }
    }

    /// Ends the session: the core leaves its groups exactly once, both
    /// queues are drained, the handler thread is stopped.
    fn finish(mut self) {
        self.conn.handle_transport_closed();
        while self.conn.poll_output().is_some() {}
        while self.conn.poll_layer().is_some() {}
        self.handler.stop();
    }

    /// Performs every pending output of the core.
    fn drain_core(&mut self) -> Result<(), SessionError> {
        while let Some(output) = self.conn.poll_output() {
            match output {
                Output::Frame(text) => self.queue.push_back(text),
                Output::Ping => self.write_ping()?,
                Output::Close {
                    code,
                    reason,
                    discard_queued,
                } => self.begin_close(code, reason, discard_queued),
                Output::Message(message) => self.dispatch(message)?,
                Output::Event(event) => match event {},
                // Only a channel layer delivers what the core can reject,
                // and this example has none; report it anyway.
                Output::LayerRejected(rejection) => eprintln!(
                    "blocking_echo: {}: channel layer message rejected: {rejection:?}",
                    self.conn.channel_name()
                ),
                // No channel layer here, so no group can miss messages.
                Output::Gap(group) => eprintln!(
                    "blocking_echo: {}: messages for {group} may have been lost",
                    self.conn.channel_name()
                ),
                // This endpoint mounts no topic types: the core answers
                // every topic frame itself (`unknown_topic`).
                Output::Topic(request) => eprintln!(
                    "blocking_echo: {}: a request on topic {} with no topic mounted",
                    self.conn.channel_name(),
                    request.envelope.topic
                ),
            }
        }
        // This example has no channel layer: every connection is in no
        // group and never sends to one, so the core has nothing to ask of a
        // layer. A runtime with one performs these joins, leaves and sends
        // without holding up the socket.
        while self.conn.poll_layer().is_some() {}
        Ok(())
    }

    /// Hands a message to the handler thread and stops reading until its
    /// reply comes back.
    fn dispatch(&mut self, message: Incoming) -> Result<(), SessionError> {
        if self.handler.jobs.send(message).is_err() {
            // The handler thread is gone (it catches panics, so this is
            // not expected): the message fails and so does the connection.
            self.conn.message_handled(Handled::Failed)?;
            self.conn.handle_failure(Failure::Application);
            return Ok(());
        }
        self.handler.running += 1;
        if self.handler.running == 1 {
            self.conn.handle_reads_paused();
        }
        Ok(())
    }

    /// Applies the handler's reply: its frame, the completion, and reads
    /// resume once no handler runs.
    fn on_reply(&mut self, reply: Reply) -> Result<(), SessionError> {
        self.handler.running -= 1;
        let mut handled = reply.handled;
        if let Some(outgoing) = &reply.outgoing {
            match self.conn.send_message(outgoing) {
                // Closed meanwhile: nothing reaches the client any more.
                Ok(()) | Err(SendError::Closed) => {}
                Err(SendError::Encode(e)) => {
                    eprintln!("blocking_echo: could not encode a reply: {e}");
                    handled = Handled::Failed;
                }
                Err(SendError::Misuse(e)) => return Err(e.into()),
            }
        }
        self.conn.message_handled(handled)?;
        if self.handler.running == 0 {
            self.conn.handle_reads_resumed();
        }
        Ok(())
    }

    /// The handler thread hung up with messages unanswered (not expected:
    /// it catches panics): they fail, and so does the connection.
    fn on_handler_lost(&mut self) -> Result<(), SessionError> {
        while self.handler.running > 0 {
            self.on_reply(Reply {
                outgoing: None,
                handled: Handled::Failed,
            })?;
        }
        self.conn.handle_failure(Failure::Application);
        Ok(())
    }

    /// Takes the replies that are ready without waiting.
    fn collect_replies(&mut self) -> Result<(), SessionError> {
        while self.handler.running > 0 {
            match self.handler.replies.try_recv() {
                Ok(reply) => self.on_reply(reply)?,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.on_handler_lost()?,
            }
        }
        Ok(())
    }

    /// The core closes: drop the queued frames if it says so, then send
    /// the close frame after the rest.
    fn begin_close(&mut self, code: u16, reason: &'static str, discard_queued: bool) {
        if discard_queued {
            self.queue.clear();
        }
        self.close = Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        });
        self.close_deadline
            .get_or_insert_with(|| Instant::now() + CLOSE_TIMEOUT);
    }

    /// The peer's close frame arrived: nothing of ours reaches it any more;
    /// flushing sends tungstenite's close reply and ends the socket.
    fn on_peer_close(&mut self) {
        self.queue.clear();
        self.close = None;
        self.dirty = true;
        self.close_deadline
            .get_or_insert_with(|| Instant::now() + CLOSE_TIMEOUT);
    }

    /// Writes a heartbeat ping. It skips our queue (the heartbeat measures
    /// the peer, not our backlog) but follows what tungstenite holds.
    fn write_ping(&mut self) -> Result<(), SessionError> {
        self.dirty = true;
        match self.ws.write(Message::Ping(Bytes::new())) {
            Ok(()) => Ok(()),
            Err(e) => self.on_write_error(e),
        }
    }

    /// Whether the writer gets a longer turn before the next read: the
    /// backlog is high and the last turn since a frame was read was not
    /// one yet. After the close no input is fed, so there is no need.
    fn long_turn(&self) -> bool {
        self.read_since_long_turn && self.close_deadline.is_none() && self.conn.is_backlog_high()
    }

    /// Whether anything waits for the socket.
    fn has_writes(&self) -> bool {
        self.dirty || !self.queue.is_empty() || self.close.is_some()
    }

    /// The writer's turn: finish what tungstenite holds, hand it the queued
    /// frames, then the close frame, and flush. A full socket ends the turn
    /// early; the bytes stay buffered for the next one.
    fn writer_turn(&mut self) -> Result<(), SessionError> {
        let now = Instant::now();
        let due = self.long_turn() || self.retry_at.is_none_or(|t| now >= t);
        if self.ended || !due || !self.has_writes() {
            return Ok(());
        }
        let timeout = if self.long_turn() {
            self.read_since_long_turn = false;
            BACKLOG_WRITE_TIMEOUT
        } else {
            WRITE_TIMEOUT
        };
        self.ws
            .get_ref()
            .set_write_timeout(Some(timeout))
            .map_err(SessionError::Socket)?;
        match self.write_all() {
            Ok(()) => Ok(()),
            Err(e) => self.on_write_error(e),
        }
    }

    /// The writes of one turn; see [`writer_turn`](Self::writer_turn).
    fn write_all(&mut self) -> tungstenite::Result<()> {
        if self.dirty {
            self.flush()?;
        }
        while let Some(frame) = self.queue.pop_front() {
            self.handed += 1;
            self.dirty = true;
            // On a full socket tungstenite keeps the frame and says WouldBlock.
            self.ws.write(Message::text(frame))?;
        }
        if let Some(close) = self.close.take() {
            self.dirty = true;
            self.ws.close(Some(close))?;
        }
        if self.dirty {
            self.flush()?;
        }
        Ok(())
    }

    /// Flushes tungstenite; once it completed, the frames handed to it are
    /// on the socket.
    fn flush(&mut self) -> tungstenite::Result<()> {
        self.ws.flush()?;
        self.conn
            .handle_frames_written(std::mem::take(&mut self.handed));
        self.dirty = false;
        self.retry_at = None;
        Ok(())
    }

    /// A write failed: a full socket is retried later; the end of the
    /// socket, or any failure once closing (tungstenite may refuse to write
    /// after a protocol error), ends the session; anything else is fatal.
    fn on_write_error(&mut self, e: tungstenite::Error) -> Result<(), SessionError> {
        match e {
            tungstenite::Error::Io(e) if is_timeout(&e) => {
                self.retry_at = Some(Instant::now() + WRITE_RETRY);
                Ok(())
            }
            e if is_normal_end(&e) || self.close_deadline.is_some() => {
                self.ended = true;
                Ok(())
            }
            e => Err(e.into()),
        }
    }

    /// When the connection thread must act next: the core's timer, the
    /// writer's next turn, the end of the close handshake.
    fn next_wake(&self, now: Instant) -> Instant {
        let writer = if !self.has_writes() {
            None
        } else if self.long_turn() {
            Some(now)
        } else {
            Some(self.retry_at.unwrap_or(now))
        };
        [self.conn.poll_timeout(), self.close_deadline, writer]
            .into_iter()
            .flatten()
            .fold(now + IDLE_TIMEOUT, Instant::min)
    }

    /// Waits until the next wake-up for a handler reply (while a handler
    /// runs, reads are paused) or for a frame from the socket.
    fn wait(&mut self) -> Result<(), SessionError> {
        let now = Instant::now();
        let timeout = self.next_wake(now).saturating_duration_since(now);
        if self.reader_lost {
            // Nothing can be read: wait for the writer's next turn.
            thread::sleep(timeout);
            return Ok(());
        }
        // Once closing, the peer's close reply must be read whatever runs.
        if self.handler.running > 0 && self.close_deadline.is_none() {
            return match self.handler.replies.recv_timeout(timeout) {
                Ok(reply) => self.on_reply(reply),
                Err(RecvTimeoutError::Timeout) => Ok(()),
                Err(RecvTimeoutError::Disconnected) => self.on_handler_lost(),
            };
        }
        self.collect_replies()?;
        self.read_socket(timeout)
    }

    /// Reads one frame, waiting at most `timeout`.
    fn read_socket(&mut self, timeout: Duration) -> Result<(), SessionError> {
        self.ws
            .get_ref()
            .set_read_timeout(Some(timeout.max(MIN_READ_WAIT)))
            .map_err(SessionError::Socket)?;
        match self.ws.read() {
            Ok(message) => self.on_message(&message),
            Err(e) => self.on_read_error(e),
        }
    }

    /// Feeds one frame from the socket to the core.
    fn on_message(&mut self, message: &Message) -> Result<(), SessionError> {
        let now = Instant::now();
        self.read_since_long_turn = true;
        match message {
            Message::Text(text) => self.conn.handle_frame(InFrame::Text(text.as_str()), now)?,
            Message::Binary(bytes) => self.conn.handle_frame(InFrame::Binary(bytes), now)?,
            Message::Ping(_) => {
                // tungstenite queued the pong; the next flush sends it.
                self.dirty = true;
                self.conn.handle_frame(InFrame::Ping, now)?;
            }
            Message::Pong(_) => self.conn.handle_frame(InFrame::Pong, now)?,
            Message::Close(frame) => {
                let code = frame.as_ref().map(|f| u16::from(f.code));
                self.conn.handle_frame(InFrame::Close(code), now)?;
                self.on_peer_close();
            }
            // `read` never returns raw frames.
            Message::Frame(_) => {}
        }
        Ok(())
    }

    /// A read failed: a timeout is a timer tick; what the peer broke goes to
    /// the core, which closes; the end of the socket, or any failure once
    /// closing, ends the session.
    fn on_read_error(&mut self, e: tungstenite::Error) -> Result<(), SessionError> {
        let error = match e {
            tungstenite::Error::Io(e) if is_timeout(&e) => return Ok(()),
            e if is_normal_end(&e) || self.close_deadline.is_some() => {
                self.ended = true;
                return Ok(());
            }
            tungstenite::Error::Capacity(_) => TransportError::MessageTooBig,
            tungstenite::Error::Protocol(_) => TransportError::ProtocolViolation,
            tungstenite::Error::Utf8(_) => TransportError::InvalidUtf8,
            e => return Err(e.into()),
        };
        self.reader_lost = true;
        self.conn.handle_transport_error(error);
        Ok(())
    }

    /// The end of a session whose reader is lost, once our close frame is
    /// out: tungstenite cannot read the peer's close reply, so send FIN and
    /// discard whatever the peer still sends until it closes too (or the
    /// close times out). Closing at once with unread bytes would reset the
    /// connection, and the peer might never see our close frame.
    fn linger(&mut self) {
        let deadline = self
            .close_deadline
            .unwrap_or_else(|| Instant::now() + CLOSE_TIMEOUT);
        let stream = self.ws.get_mut();
        // Best effort: whatever fails here, the session ends anyway.
        let _ = stream.shutdown(Shutdown::Write);
        let mut scrap = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match stream.read(&mut scrap) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// Whether a socket error is a read or write timeout expiring.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Whether a WebSocket error just means the socket has ended.
fn is_normal_end(e: &tungstenite::Error) -> bool {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => true,
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => true,
        tungstenite::Error::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
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
