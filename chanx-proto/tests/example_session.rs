//! Runs the `blocking_echo` example server and drives one whole session
//! against it with a real WebSocket client.
#![allow(clippy::unwrap_used)]

#[path = "../examples/blocking_echo.rs"]
#[allow(dead_code, unreachable_pub)]
mod example;

use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Bytes, Message};

/// The longest any single read (or the server's exit) may take.
const TIMEOUT: Duration = Duration::from_secs(5);

type Client = tungstenite::WebSocket<MaybeTlsStream<std::net::TcpStream>>;

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

#[test]
fn whole_session_against_the_blocking_example() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done_tx, done_rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let result = example::serve(listener, Some(1));
        let _ = done_tx.send(result.map_err(|e| e.to_string()));
    });

    let (mut ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/")).unwrap();
    match ws.get_ref() {
        MaybeTlsStream::Plain(stream) => stream.set_read_timeout(Some(TIMEOUT)).unwrap(),
        _ => unreachable!("a ws:// URL gives a plain TCP stream"),
    }

    assert_eq!(
        read_text(&mut ws),
        r#"{"action":"authentication","payload":{"status_code":200,"status_text":"OK","data":{"detail":"OK"}}}"#
    );
    assert_eq!(
        round_trip(
            &mut ws,
            r#"{"action":"echo","payload":{"content":"Hello, Chanx!"}}"#
        ),
        r#"{"action":"echo","payload":{"content":"Echo: Hello, Chanx!"}}"#
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
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
            Ok(other) => panic!("unexpected frame after close: {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("the close handshake failed: {e}"),
        }
    }

    let result = done_rx
        .recv_timeout(TIMEOUT)
        .expect("the server thread ended after the only connection closed");
    assert_eq!(result, Ok(()));
    server.join().unwrap();
}
