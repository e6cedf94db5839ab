//! The `quickstart` program as a user runs it: a real process, real
//! sockets, real signals.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{SECRET_KEY, Served};

/// How long the program may take to exit after SIGTERM: its grace period
/// for WebSockets (10 s) and for HTTP requests (1 s), plus slack for a
/// loaded machine.
const EXIT_BOUND: Duration = Duration::from_secs(20);

fn serve(args: &[&str]) -> Served {
    Served::start_with(args, "warn")
}

fn terminate(served: &mut Served) -> Duration {
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    loop {
        if served.child.try_wait().expect("wait").is_some() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < EXIT_BOUND,
            "still running {EXIT_BOUND:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client that has sent half a request head and then waits.
fn half_request(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /ws/myapp/echo/ HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    stream
}

#[test]
fn sigterm_ends_the_process_even_with_half_requests_open() {
    for adapter in ["axum", "warp", "async-std"] {
        let mut served = serve(&["--adapter", adapter]);
        let _waiting: Vec<_> = (0..3).map(|_| half_request(served.addr)).collect();
        // Let the server accept them.
        std::thread::sleep(Duration::from_millis(200));
        terminate(&mut served);
    }
}

#[test]
fn sigterm_closes_open_websockets_with_1001() {
    for adapter in ["axum", "warp", "async-std"] {
        let mut served = serve(&["--adapter", adapter]);
        let mut ws = connect_as(&served, "/ws/myapp/echo/", "alice");
        terminate(&mut served);
        let code = loop {
            match ws.read() {
                Ok(tungstenite::Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(error) => panic!("{adapter}: no close frame: {error}"),
            }
        };
        assert_eq!(code, Some(1001), "{adapter}");
    }
}

#[test]
fn a_half_sent_request_head_is_dropped_after_the_header_timeout() {
    for adapter in ["axum", "warp", "async-std"] {
        let served = serve(&["--adapter", adapter]);
        // Half a head, a silent client, and one that stops inside what
        // could be an HTTP/2 preface.
        let silent = TcpStream::connect(served.addr).unwrap();
        let mut preface = TcpStream::connect(served.addr).unwrap();
        preface.write_all(b"P").unwrap();
        for (what, mut slow) in [
            ("half a head", half_request(served.addr)),
            ("silence", silent),
            ("a preface", preface),
        ] {
            slow.set_read_timeout(Some(EXIT_BOUND)).unwrap();
            let mut buffer = [0u8; 256];
            // The server hangs up (EOF, a reset, or a 408) instead of waiting forever.
            match std::io::Read::read(&mut slow, &mut buffer) {
                Ok(n) => assert!(
                    n == 0
                        || buffer.starts_with(b"HTTP/1.1 408")
                        || buffer.starts_with(b"HTTP/1.1 400"),
                    "{adapter}, {what}: unexpected answer {:?}",
                    String::from_utf8_lossy(&buffer[..n])
                ),
                Err(error) => assert!(
                    !matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "{adapter}, {what}: still open after {EXIT_BOUND:?}"
                ),
            }
        }
        // A fresh client is served meanwhile.
        let mut fresh = TcpStream::connect(served.addr).unwrap();
        fresh
            .write_all(b"GET /nowhere/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        let _ = std::io::Read::read_to_string(&mut fresh, &mut reply);
        if adapter == "axum" {
            assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
        }
    }
}

/// The Redis server the tests use (CI starts one).
fn redis_url() -> String {
    std::env::var("CHANX_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

/// `username` on `path` of `served`, authenticated.
fn connect_as(served: &Served, path: &str, username: &str) -> Ws {
    let cookie = quickstart::session::SessionSigner::new(SECRET_KEY)
        .sign(username, quickstart::store::now_unix());
    let url = format!("ws://{}{path}", served.addr);
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request
        .headers_mut()
        .insert("cookie", format!("sessionid={cookie}").parse().unwrap());
    let (mut ws, _) = tungstenite::connect(request).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = ws.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
    }
    let auth = next_json(&mut ws);
    assert_eq!(auth["payload"]["status_code"], 200, "{auth}");
    ws
}

fn next_json(ws: &mut Ws) -> serde_json::Value {
    loop {
        match ws.read().expect("a frame within the read timeout") {
            tungstenite::Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn post(addr: SocketAddr, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply).unwrap();
    reply
}

#[test]
fn two_processes_share_rooms_through_redis() {
    let url = redis_url();
    let first = serve(&["--redis", &url]);
    let second = serve(&["--adapter", "warp", "--redis", &url]);
    // A room of this run only: other tests may share the Redis server.
    let room = format!("proc{}", std::process::id());
    let path = format!("/ws/myapp/chat/{room}/");
    let mut alice = connect_as(&first, &path, "alice");
    let mut bob = connect_as(&second, &path, "bob");

    alice
        .send(tungstenite::Message::text(
            r#"{"action":"echo","payload":{"content":"hello from the first process"}}"#,
        ))
        .unwrap();
    assert_eq!(
        next_json(&mut bob),
        serde_json::json!({
            "action": "chat_message",
            "payload": {"content": "alice: hello from the first process"},
            "is_mine": false,
            "is_current": false,
        })
    );
    bob.send(tungstenite::Message::text(
        r#"{"action":"echo","payload":{"content":"and back"}}"#,
    ))
    .unwrap();
    assert_eq!(next_json(&mut alice)["payload"]["content"], "bob: and back");

    // A notification posted to one process reaches the room on both.
    let reply = post(
        first.addr,
        &format!("/api/notify/{room}/"),
        r#"{"message": "across processes", "level": "warning"}"#,
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let expected =
        serde_json::json!({"action": "echo", "payload": {"content": "WARNING: across processes"}});
    assert_eq!(next_json(&mut alice), expected);
    assert_eq!(next_json(&mut bob), expected);
}

/// A `redis-server` of this test's own on `port`, persisting nothing.
fn start_redis(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("this test runs `redis-server` from PATH");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn rooms_work_again_after_a_redis_restart_and_members_hear_of_the_gap() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let mut redis = start_redis(port);
    let url = format!("redis://127.0.0.1:{port}");
    let first = serve(&["--redis", &url]);
    let second = serve(&["--adapter", "warp", "--redis", &url]);
    let path = "/ws/myapp/chat/restart/";
    let mut alice = connect_as(&first, path, "alice");
    let mut bob = connect_as(&second, path, "bob");
    let say = |ws: &mut Ws, text: &str| {
        let frame = serde_json::json!({"action": "echo", "payload": {"content": text}});
        ws.send(tungstenite::Message::text(frame.to_string()))
            .unwrap();
    };
    say(&mut alice, "before");
    assert_eq!(next_json(&mut bob)["payload"]["content"], "alice: before");

    let _ = redis.kill();
    let _ = redis.wait();
    std::thread::sleep(Duration::from_millis(500));
    let mut redis = start_redis(port);

    // Neither server restarts: once both resubscribed, the room works
    // again (messages sent before that are lost, as Redis pub/sub loses
    // them). Bob's read timeout paces the retries.
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = bob.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
    }
    let started = Instant::now();
    'resumed: for n in 0.. {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the room did not work again after the restart"
        );
        say(&mut alice, &format!("after {n}"));
        while let Ok(tungstenite::Message::Text(text)) = bob.read() {
            let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
            if frame["payload"]["content"]
                .as_str()
                .is_some_and(|content| content.starts_with("alice: after"))
            {
                break 'resumed;
            }
        }
    }
    // Both servers told the room's member connections (the consumer's
    // `on_gap` hook runs after this warning).
    for served in [&first, &second] {
        let started = Instant::now();
        while served
            .line_with("messages for the group may have been lost")
            .is_none()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no gap warning in the log"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = redis.kill();
    let _ = redis.wait();
}

/// Whether the server has closed `stream` (EOF or a reset), without
/// waiting.
fn is_closed(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buffer = [0u8; 512];
    let closed = loop {
        match std::io::Read::read(stream, &mut buffer) {
            Ok(0) => break true,
            // A 408 or similar answer: read on until the close.
            Ok(_) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// An echo by a fresh client; panics if it is not served.
fn fresh_echo(served: &Served, n: usize) {
    let mut ws = connect_as(served, "/ws/myapp/echo/", "alice");
    let frame = serde_json::json!({"action": "echo", "payload": {"content": format!("fresh {n}")}});
    ws.send(tungstenite::Message::text(frame.to_string()))
        .unwrap();
    assert_eq!(
        next_json(&mut ws)["payload"]["content"],
        format!("Echo: fresh {n}")
    );
}

/// A thousand clients sending their request head one byte a second are
/// all dropped by the head deadline while fresh clients are served
/// throughout; SIGTERM with a thousand such clients open still exits
/// within the grace period.
#[test]
fn a_thousand_slow_request_heads_are_dropped_while_fresh_clients_are_served() {
    const SLOW: usize = 1000;
    // Ours and the server's descriptors: more than the usual soft limit.
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let head = b"GET /ws/myapp/echo/ HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n";
    for adapter in ["axum", "warp", "async-std"] {
        let mut served = serve(&["--adapter", adapter]);
        let mut slow: Vec<TcpStream> = (0..SLOW)
            .map(|_| TcpStream::connect(served.addr).unwrap())
            .collect();
        let started = Instant::now();
        for second in 0.. {
            // One more byte of the head from each client still open.
            let mut open = 0;
            for stream in &mut slow {
                if !is_closed(stream) {
                    open += 1;
                    let _ = stream.write_all(&head[second % head.len()..][..1]);
                }
            }
            fresh_echo(&served, second);
            if open == 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{adapter}: {open} of {SLOW} slow heads still open after {:?}",
                started.elapsed()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        let _waiting: Vec<_> = (0..SLOW).map(|_| half_request(served.addr)).collect();
        std::thread::sleep(Duration::from_millis(300));
        let took = terminate(&mut served);
        assert!(took < EXIT_BOUND, "{adapter}: exit took {took:?}");
    }
}

/// Runs the program to its end with `args`; its exit code, stdout and stderr.
fn run_to_end(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .args(args)
        .env_remove("CHANX_REDIS_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the quickstart binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_command_line_answers_help_and_version_and_reports_errors_once() {
    for args in [&["--help"][..], &["serve", "--help"], &["help", "session"]] {
        let (code, stdout, _) = run_to_end(args);
        assert_eq!(code, Some(0), "{args:?}");
        assert!(stdout.contains("CHANX_SECRET_KEY"), "{args:?}: {stdout}");
    }
    let (code, stdout, _) = run_to_end(&["--version"]);
    assert_eq!(
        (code, stdout.trim()),
        (Some(0), concat!("quickstart ", env!("CARGO_PKG_VERSION")))
    );

    // A mistake in the command line: exit 2 with a pointer to the help.
    let (code, _, stderr) = run_to_end(&["serve", "--adapter", "rocket"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--adapter") && stderr.contains("--help"),
        "{stderr}"
    );

    // A failure while serving: exit 1, said once, without the usage.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) = run_to_end(&["serve", "--bind", &bind]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot listen on") && !stderr.contains("Usage"),
        "{stderr}"
    );
    let (code, _, stderr) = run_to_end(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--redis",
        "redis://127.0.0.1:1",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr.matches("cannot connect to Redis").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn json_logs_carry_http_requests_with_their_request_id() {
    let served = Served::start_with(&["--log-format", "json"], "info");
    let mut stream = TcpStream::connect(served.addr).unwrap();
    stream
        .write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nX-Request-ID: trace-me-42\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("x-request-id: trace-me-42"),
        "{reply}"
    );
    let started = Instant::now();
    let line = loop {
        let found = served.line_with("trace-me-42");
        if let Some(line) = found {
            break line;
        }
        assert!(
            started.elapsed() < EXIT_BOUND,
            "no log line for the request"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let entry: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(entry["level"], "INFO");
    assert_eq!(entry["fields"]["status"], 404);
    assert_eq!(entry["span"]["path"], "/nowhere");
    assert_eq!(entry["span"]["request_id"], "trace-me-42");
}

#[test]
fn the_printed_asyncapi_document_is_valid_and_describes_what_the_endpoints_send() {
    let (code, json, stderr) = run_to_end(&["asyncapi"]);
    assert_eq!(code, Some(0), "{stderr}");
    let document: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let schema: serde_json::Value = serde_json::from_str(include_str!(
        "../../chanx/tests/data/asyncapi-3.0.0.schema.json"
    ))
    .unwrap();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    // The frames docs/quick-start.md lists, and no others of the consumers'.
    let sent = |channel: &str| -> Vec<String> {
        document["operations"][format!("{channel}_send")]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["$ref"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        sent("EchoConsumer"),
        [
            "send_pong",
            "send_echo",
            "framework_authentication",
            "framework_error"
        ]
    );
    assert_eq!(
        sent("ChatConsumer"),
        [
            "send_pong",
            "send_echo",
            "group_chat_message",
            "framework_authentication",
            "framework_error"
        ]
    );
    assert_eq!(
        document["channels"]["ChatConsumer"]["address"],
        "/ws/myapp/chat/{room_id}/"
    );

    let (code, yaml, _) = run_to_end(&["asyncapi", "--format", "yaml"]);
    assert_eq!(code, Some(0));
    let from_yaml: serde_json::Value = serde_norway::from_str(&yaml).expect("YAML");
    assert_eq!(from_yaml, document);
}
