//! What a hostile client tries, over raw sockets: protocol violations,
//! connection churn, a member that never reads. Each ends with the
//! offender closed with the right code and everyone else unaffected.
//! (Slow request heads and SIGTERM with half-sent heads are tested on the
//! real program, `quickstart/tests/process.rs`.)

use std::time::Duration;

use chanx_e2e::{Adapter, session_for, shared, start, start_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ECHO, assert_echoes, chat, echo_msg};

/// How long a raw client waits for a frame.
const PATIENCE: Duration = Duration::from_secs(10);

/// A WebSocket opened by hand, to send what no WebSocket library would.
struct RawWs {
    stream: TcpStream,
    /// Bytes read past what has been parsed.
    buffer: Vec<u8>,
}

impl RawWs {
    /// Upgrades `path` as `user` and waits for the authentication frame.
    async fn open(addr: std::net::SocketAddr, path: &str, user: &str) -> RawWs {
        let stream = TcpStream::connect(addr).await.expect("connect");
        RawWs::upgrade(stream, addr, path, user).await
    }

    /// [`open`](Self::open) with a receive buffer of `bytes` (what the
    /// kernel holds for a client that does not read).
    async fn open_with_receive_buffer(
        addr: std::net::SocketAddr,
        path: &str,
        user: &str,
        bytes: u32,
    ) -> RawWs {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("connect");
        RawWs::upgrade(stream, addr, path, user).await
    }

    async fn upgrade(
        stream: TcpStream,
        addr: std::net::SocketAddr,
        path: &str,
        user: &str,
    ) -> RawWs {
        RawWs::upgrade_sending(stream, addr, path, user, &[]).await
    }

    /// [`upgrade`](Self::upgrade), with `early` bytes sent in the same
    /// write as the request (frames a client sends before the 101).
    async fn upgrade_sending(
        mut stream: TcpStream,
        addr: std::net::SocketAddr,
        path: &str,
        user: &str,
        early: &[u8],
    ) -> RawWs {
        let mut request = upgrade_request(addr, path, user);
        request.extend_from_slice(early);
        stream.write_all(&request).await.expect("write");
        let mut ws = RawWs {
            stream,
            buffer: Vec::new(),
        };
        let head_end = loop {
            if let Some(end) = ws.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            assert!(ws.fill().await, "the server hung up during the upgrade");
        };
        let head = String::from_utf8_lossy(&ws.buffer[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        ws.buffer.drain(..head_end);
        let (opcode, auth) = ws.frame().await.expect("the authentication frame");
        assert_eq!(opcode, 1);
        assert!(String::from_utf8_lossy(&auth).contains("\"status_code\":200"));
        ws
    }

    /// Reads more bytes; false at EOF, an error or after [`PATIENCE`].
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// The next server frame (server frames are not masked): opcode and
    /// payload; `None` once the connection ended.
    async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buffer) {
                self.buffer.drain(..used);
                return Some((opcode, payload));
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The status code of the server's Close frame, skipping data frames;
    /// `None` if the connection ended without one.
    async fn close_code(&mut self) -> Option<u16> {
        while let Some((opcode, payload)) = self.frame().await {
            if opcode == 8 {
                return status_code(&payload);
            }
        }
        None
    }

    /// [`close_code`](Self::close_code) with blocking reads on a thread of
    /// its own, once `start` holds: the test's runtime may be too busy to
    /// drain the socket as fast as the server expects a reader to.
    fn close_code_on_a_thread(
        self,
        start: impl Fn() -> bool + Send + 'static,
    ) -> std::thread::JoinHandle<Option<u16>> {
        use std::io::Read;
        let mut stream = self.stream.into_std().expect("a std socket");
        let mut buffer = self.buffer;
        std::thread::spawn(move || {
            while !start() {
                std::thread::sleep(Duration::from_millis(5));
            }
            stream.set_nonblocking(false).expect("blocking mode");
            stream
                .set_read_timeout(Some(PATIENCE))
                .expect("a read timeout");
            let mut chunk = [0u8; 64 * 1024];
            loop {
                while let Some((opcode, payload, used)) = parse_frame(&buffer) {
                    buffer.drain(..used);
                    if opcode == 8 {
                        return status_code(&payload);
                    }
                }
                match stream.read(&mut chunk) {
                    Ok(n) if n > 0 => buffer.extend_from_slice(&chunk[..n]),
                    _ => return None,
                }
            }
        })
    }
}

/// The upgrade request of `user` to `path`.
fn upgrade_request(addr: std::net::SocketAddr, path: &str, user: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Cookie: sessionid={}\r\n\r\n",
        session_for(user)
    )
    .into_bytes()
}

/// The status code a Close frame's payload starts with, if any.
fn status_code(close_payload: &[u8]) -> Option<u16> {
    let code = close_payload.get(..2)?;
    Some(u16::from_be_bytes([code[0], code[1]]))
}

/// One complete frame at the start of `bytes`: (opcode, payload, length).
fn parse_frame(bytes: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&first, &second) = (bytes.first()?, bytes.get(1)?);
    let (len, mut at) = match second & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
            4,
        ),
        127 => {
            let raw: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(raw)).ok()?, 10)
        }
        short => (usize::from(short), 2),
    };
    if second & 0x80 != 0 {
        at += 4; // a masked server frame would be a bug the parse below reports
    }
    let payload = bytes.get(at..at + len)?.to_vec();
    Some((first & 0x0f, payload, at + len))
}

/// A client frame: `first` is FIN, RSV and opcode; masked unless `masked`
/// is false (which RFC 6455 forbids).
fn client_frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![first];
    if masked {
        frame.push(0x80 | payload.len() as u8);
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        frame.push(payload.len() as u8);
        frame.extend_from_slice(payload);
    }
    frame
}

/// Frames a client sends right behind its upgrade request, before the
/// 101 (in the same TCP segment here), are never lost: RFC 6455 (4.1) has
/// the client wait for the 101, and tungstenite's handshake (the
/// async-std adapter's) refuses the connection; the hyper adapters have
/// already read the frames with the request and hand them over, to be
/// answered once the connection is open.
pub(crate) async fn frames_sent_with_the_upgrade_request_are_answered_or_refused(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut early = Vec::new();
    for content in ["early one", "early two"] {
        let text = echo_msg(content).to_string();
        early.extend(client_frame(0x81, text.as_bytes(), true));
    }
    let stream = TcpStream::connect(server.addr).await.expect("connect");
    if matches!(adapter, Adapter::AsyncStd | Adapter::Smol) {
        let mut stream = stream;
        let mut bytes = upgrade_request(server.addr, ECHO, "alice");
        bytes.extend_from_slice(&early);
        stream.write_all(&bytes).await.expect("write");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the connection neither refused nor opened");
        let answer = String::from_utf8_lossy(&answer);
        assert!(!answer.starts_with("HTTP/1.1 101"), "{answer}");
    } else {
        let mut ws = RawWs::upgrade_sending(stream, server.addr, ECHO, "alice", &early).await;
        for content in ["early one", "early two"] {
            let (opcode, reply) = ws.frame().await.expect("the echo");
            assert_eq!(opcode, 1);
            let reply: serde_json::Value = serde_json::from_slice(&reply).expect("JSON");
            assert_eq!(reply, super::echo_reply(content), "{adapter:?}");
        }
    }
    // The server keeps serving.
    let mut client = server.connect_as(ECHO, "bob").await;
    assert_echoes(&mut client, "after").await;
}

/// Violations of RFC 6455 close with its codes: 1007 for text that is not
/// UTF-8, 1002 for the rest (reserved bits and opcodes, an unmasked client
/// frame, a fragmented control frame, a Close with a code no endpoint may
/// send or a one-byte body); the server keeps serving.
pub(crate) async fn protocol_violations_close_with_1002_or_1007(adapter: Adapter) {
    let server = shared(adapter).await;
    let cases: [(&str, Vec<u8>, u16); 8] = [
        (
            "text that is not UTF-8",
            client_frame(0x81, b"\xff\xfe", true),
            1007,
        ),
        (
            "a reserved bit",
            client_frame(0x81 | 0x40, b"{}", true),
            1002,
        ),
        ("a reserved opcode", client_frame(0x83, b"x", true), 1002),
        (
            "an unmasked frame",
            client_frame(0x81, br#"{"action":"ping"}"#, false),
            1002,
        ),
        ("a fragmented ping", client_frame(0x09, b"", true), 1002),
        (
            "close code 1005",
            client_frame(0x88, &1005u16.to_be_bytes(), true),
            1002,
        ),
        (
            "close code 999",
            client_frame(0x88, &999u16.to_be_bytes(), true),
            1002,
        ),
        (
            "a one-byte close body",
            client_frame(0x88, &[3], true),
            1002,
        ),
    ];
    for (what, bytes, expected) in cases {
        let mut ws = RawWs::open(server.addr, ECHO, "alice").await;
        ws.stream.write_all(&bytes).await.expect("write");
        assert_eq!(ws.close_code().await, Some(expected), "{what}");
    }
    let mut client = server.connect_as(ECHO, "bob").await;
    assert_echoes(&mut client, "after the violations").await;
}

/// 10,000 clients that join a room and vanish without a Close leave no
/// member and no channel behind, and the room still works.
pub(crate) async fn connect_drop_cycles_leave_no_group_membership(adapter: Adapter) {
    const WORKERS: usize = 50;
    const CYCLES: usize = 200;
    let server = start(adapter).await;
    let room = chat("churn");
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (addr, room) = (server.addr, room.clone());
            tokio::spawn(async move {
                for _ in 0..CYCLES {
                    // Joined once the authentication frame is here; then gone.
                    drop(RawWs::open(addr, &room, "alice").await);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker");
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while server.layer.group_size("chat_churn") > 0 || server.layer.channel_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} members and {} channels left after {} cycles",
            server.layer.group_size("chat_churn"),
            server.layer.channel_count(),
            WORKERS * CYCLES
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut alice = server.connect_as(&room, "alice").await;
    let mut bob = server.connect_as(&room, "bob").await;
    alice.send_json(&echo_msg("still here")).await;
    assert_eq!(
        bob.recv_json().await["payload"]["content"],
        "alice: still here"
    );
}

/// A member that never reads, in a room a sender floods, is closed with
/// 4008 and leaves the room; a member that keeps up gets every message in
/// order, and the sender carries on.
pub(crate) async fn a_member_that_never_reads_is_closed_and_others_unaffected(adapter: Adapter) {
    const TOTAL: usize = 3000;
    const BATCH: usize = 50;
    let server = start_with(adapter, |c| {
        c.options.max_outbound_frames = 256;
        c.options.input_budget = None;
    })
    .await;
    let room = chat("busy");
    let idle = RawWs::open_with_receive_buffer(server.addr, &room, "carol", 4096).await;
    let mut reader = server.connect_as(&room, "bob").await;
    let mut sender = server.connect_as(&room, "alice").await;
    // All three are members now. The idle member wakes up once the server
    // has dropped it from the room, and reads what reached its socket,
    // then the close frame.
    let layer = server.layer.clone();
    let idle = idle.close_code_on_a_thread(move || layer.group_size("chat_busy") < 3);
    // 24 MiB in all, far more than the idle member's socket buffers hold
    // (its receive buffer is small), so its backlog passes the bound.
    let content = "x".repeat(8 * 1024);
    let (progress, mut read_so_far) = tokio::sync::mpsc::unbounded_channel();
    let reading = {
        let content = content.clone();
        tokio::spawn(async move {
            for i in 0..TOTAL {
                let frame = reader.recv_json().await;
                assert_eq!(
                    frame["payload"]["content"],
                    format!("alice: {i} {content}"),
                    "message {i}"
                );
                if (i + 1) % BATCH == 0 {
                    let _ = progress.send(i + 1);
                }
            }
            // Still a member when the room is counted below.
            reader
        })
    };
    for batch in 0..TOTAL / BATCH {
        let first = batch * BATCH;
        let messages =
            (first..first + BATCH).map(|i| echo_msg(&format!("{i} {content}")).to_string());
        sender.send_batch(messages).await;
        // The reader keeps up (never more than a batch behind): it is no
        // slow consumer, whatever the machine's speed.
        let read = read_so_far.recv().await.expect("the reader reports");
        assert_eq!(read, first + BATCH);
    }
    let _reader = reading.await.expect("the reading member got everything");
    // The thread ends by itself: a close frame, an EOF or a silent PATIENCE.
    let code = idle.join().expect("the idle member's thread");
    assert_eq!(
        code,
        Some(4008),
        "the idle member: closed with 4008 (members left: {})",
        server.layer.group_size("chat_busy")
    );
    assert_eq!(server.layer.group_size("chat_busy"), 2);
}
