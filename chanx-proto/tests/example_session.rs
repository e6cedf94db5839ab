//! Runs the `blocking_echo` example server and drives sessions against it
//! with a real WebSocket client over real sockets.
//!
//! Every wait is bounded (socket timeouts, a bounded wait for the server's
//! exit), so a broken server fails a test instead of hanging it; no
//! assertion depends on how long something took.
#![allow(clippy::unwrap_used)]

#[path = "../examples/blocking_echo.rs"]
#[allow(dead_code, unreachable_pub)]
mod example;

use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use chanx_proto::{Heartbeat, Options};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Bytes, Message};

/// The longest any single read or write of the client may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The longest the server may take to end after the client is done: its
/// close handshake is bounded by `CLOSE_TIMEOUT`.
const SERVER_EXIT_TIMEOUT: Duration = Duration::from_secs(15);

type Client = tungstenite::WebSocket<MaybeTlsStream<std::net::TcpStream>>;

/// The example server, serving exactly one connection on its own thread.
struct Server {
    port: u16,
    done: mpsc::Receiver<Result<(), String>>,
    thread: thread::JoinHandle<()>,
}

impl Server {
    /// Starts `serve` (default options) or `serve_with(options)` on 127.0.0.1:0.
    fn start(options: Option<Options>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (done_tx, done) = mpsc::channel();
        let thread = thread::spawn(move || {
            let result = match options {
                None => example::serve(listener, Some(1)),
                Some(options) => example::serve_with(listener, options, Some(1)),
            };
            let _ = done_tx.send(result.map_err(|e| e.to_string()));
        });
        Server { port, done, thread }
    }

    /// Connects a client whose reads and writes time out after [`TIMEOUT`].
    fn connect(&self) -> Client {
        let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{}/", self.port)).unwrap();
        match ws.get_ref() {
            MaybeTlsStream::Plain(stream) => {
                stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                stream.set_write_timeout(Some(TIMEOUT)).unwrap();
            }
            _ => unreachable!("a ws:// URL gives a plain TCP stream"),
        }
        ws
    }

    /// Waits (bounded) for the server to return after its only connection.
    fn join(self) {
        let result = self
            .done
            .recv_timeout(SERVER_EXIT_TIMEOUT)
            .expect("the server thread ended after the only connection closed");
        assert_eq!(result, Ok(()));
        self.thread.join().unwrap();
    }
}

/// Options with a fast heartbeat: a ping every 100 ms, close after one
/// silent interval.
fn fast_heartbeat() -> Options {
    Options {
        heartbeat: Some(Heartbeat {
            interval: Duration::from_millis(100),
            max_missed: 1,
        }),
        ..Options::default()
    }
}

/// Reads the next data frame as text, skipping control frames.
fn read_text(ws: &mut Client) -> String {
    loop {
        match ws.read().expect("the server answered in time") {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Sends a text frame and returns the server's answer.
fn round_trip(ws: &mut Client, frame: &str) -> String {
    ws.send(Message::text(frame)).unwrap();
    read_text(ws)
}

/// Reads up to the server's close frame: the text frames before it and
/// its close code.
fn read_until_close(ws: &mut Client) -> (Vec<String>, u16) {
    let mut texts = Vec::new();
    loop {
        match ws.read().expect("the server answered in time") {
            Message::Text(text) => texts.push(text.as_str().to_owned()),
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(frame) => {
                let code = frame.expect("the close frame has a code").code;
                return (texts, u16::from(code));
            }
            other => panic!("unexpected frame: {other:?}"),
        }
    }
}

/// After a close frame was sent or received: reads until the server ends
/// the socket (tungstenite sends the close reply on the way), then drops
/// the client's socket, as a client does on `ConnectionClosed`.
fn finish_close(mut ws: Client) {
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
            Ok(other) => panic!("unexpected frame after close: {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("the close handshake failed: {e}"),
        }
    }
}

/// The `authentication` frame every accepted connection gets first.
const AUTH_OK: &str = r#"{"action":"authentication","payload":{"status_code":200,"status_text":"OK","data":{"detail":"OK"}}}"#;

#[test]
fn whole_session_against_the_blocking_example() {
    let server = Server::start(None);
    let mut ws = server.connect();

    assert_eq!(read_text(&mut ws), AUTH_OK);
    assert_eq!(
        round_trip(
            &mut ws,
            r#"{"action":"echo","payload":{"content":"Hello, Chanx!"}}"#
        ),
        r#"{"action":"echo","payload":{"content":"Echo: Hello, Chanx!"}}"#
    );
    assert_eq!(
        round_trip(
            &mut ws,
            r#"{"action":"slow_echo","payload":{"content":"no wait","millis":0}}"#
        ),
        r#"{"action":"echo","payload":{"content":"Echo: no wait"}}"#
    );
    assert_eq!(
        round_trip(&mut ws, r#"{"action":"ping"}"#),
        r#"{"action":"pong","payload":null}"#
    );
    assert_eq!(
        round_trip(&mut ws, r#"{"action":"echo","payload":{}}"#),
        r#"{"action":"error","payload":[{"type":"missing","loc":["echo","payload","content"],"msg":"Field required"}]}"#
    );
    ws.send(Message::Binary(Bytes::from_static(b"\x00\x01")))
        .unwrap();
    assert_eq!(
        read_text(&mut ws),
        r#"{"action":"error","payload":[{"type":"frame_type","loc":[],"msg":"Binary frames are not accepted"}]}"#
    );
    // The connection survived every bad frame.
    assert_eq!(
        round_trip(
            &mut ws,
            r#"{"action":"echo","payload":{"content":"still here"}}"#
        ),
        r#"{"action":"echo","payload":{"content":"Echo: still here"}}"#
    );

    ws.close(None).unwrap();
    finish_close(ws);
    server.join();
}

#[test]
fn slow_consumer_is_closed_with_4008() {
    const SENT: usize = 100;
    let server = Server::start(Some(Options {
        max_outbound_frames: 8,
        ..Options::default()
    }));
    let mut ws = server.connect();
    assert_eq!(read_text(&mut ws), AUTH_OK);

    // 200 KiB per message (under the 1 MiB frame limit): the echoes soon
    // fill the socket buffers, then the server's queue.
    let content = "x".repeat(200 * 1024);
    let frame = format!(r#"{{"action":"echo","payload":{{"content":"{content}"}}}}"#);
    for _ in 0..SENT {
        ws.send(Message::text(frame.as_str())).unwrap();
    }

    let (texts, code) = read_until_close(&mut ws);
    let expected = format!(r#"{{"action":"echo","payload":{{"content":"Echo: {content}"}}}}"#);
    assert!(texts.iter().all(|text| *text == expected));
    assert!(!texts.is_empty(), "the first echoes reached the socket");
    assert!(texts.len() < SENT, "the queued echoes were dropped");
    assert_eq!(code, 4008);
    finish_close(ws);
    server.join();
}

#[test]
fn heartbeat_keeps_a_peer_alive_while_reads_are_paused() {
    let server = Server::start(Some(fast_heartbeat()));
    let mut ws = server.connect();
    assert_eq!(read_text(&mut ws), AUTH_OK);

    // The handler sleeps for several heartbeat intervals; the server reads
    // nothing meanwhile, so our pongs wait unread. `read_text` keeps our
    // tungstenite answering the pings and fails on a close (4408).
    assert_eq!(
        round_trip(
            &mut ws,
            r#"{"action":"slow_echo","payload":{"content":"slow","millis":700}}"#
        ),
        r#"{"action":"echo","payload":{"content":"Echo: slow"}}"#
    );
    assert_eq!(
        round_trip(
            &mut ws,
            r#"{"action":"echo","payload":{"content":"after"}}"#
        ),
        r#"{"action":"echo","payload":{"content":"Echo: after"}}"#
    );

    ws.close(None).unwrap();
    finish_close(ws);
    server.join();
}

#[test]
fn silent_peer_is_closed_with_4408() {
    let server = Server::start(Some(fast_heartbeat()));
    let mut ws = server.connect();

    // Read nothing, so no ping gets its pong, for many intervals.
    thread::sleep(Duration::from_secs(1));

    let (texts, code) = read_until_close(&mut ws);
    assert_eq!(texts, [AUTH_OK]);
    assert_eq!(code, 4408);
    finish_close(ws);
    server.join();
}

#[test]
fn oversized_message_is_closed_with_1009() {
    let server = Server::start(None);
    let mut ws = server.connect();
    assert_eq!(read_text(&mut ws), AUTH_OK);

    // Twice the default 1 MiB frame limit.
    let content = "x".repeat(2 << 20);
    let frame = format!(r#"{{"action":"echo","payload":{{"content":"{content}"}}}}"#);
    ws.send(Message::text(frame)).unwrap();

    let (texts, code) = read_until_close(&mut ws);
    assert!(
        texts.is_empty(),
        "no echo of an oversized message: {texts:?}"
    );
    assert_eq!(code, 1009);
    finish_close(ws);
    server.join();
}

/// Sends `bytes` as they are after the `authentication` frame and returns
/// the code of the server's close frame.
fn close_code_after_raw(bytes: &[u8]) -> u16 {
    use std::io::Write;
    let server = Server::start(None);
    let mut ws = server.connect();
    // Read the first frame with the client, so that nothing the server sent
    // stays in the client's buffer when the raw stream is taken out.
    assert_eq!(read_text(&mut ws), AUTH_OK);
    let MaybeTlsStream::Plain(mut stream) = ws.into_inner() else {
        unreachable!("a ws:// URL gives a plain TCP stream")
    };
    stream.write_all(bytes).unwrap();
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        MaybeTlsStream::Plain(stream),
        tungstenite::protocol::Role::Client,
        None,
    );
    let (texts, code) = read_until_close(&mut ws);
    assert!(texts.is_empty(), "no answer to a broken frame: {texts:?}");
    finish_close(ws);
    server.join();
    code
}

#[test]
fn transport_errors_close_with_1002_and_1007() {
    // An unmasked text frame from a client breaks the WebSocket protocol.
    assert_eq!(close_code_after_raw(&[0x81, 0x02, b'h', b'i']), 1002);
    // A masked (with a zero mask) text frame that is not UTF-8.
    assert_eq!(
        close_code_after_raw(&[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe]),
        1007
    );
}
