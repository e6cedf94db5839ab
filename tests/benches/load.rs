//! Load benchmark over loopback: echo throughput of the quickstart echo
//! endpoint (chanx on axum: authentication, validation, typed dispatch)
//! side by side with a hand-rolled tokio-tungstenite echo server that
//! decodes and encodes the same JSON with serde (what users write without
//! chanx). Same process, same client, alternating rounds; the figure that
//! matters is the ratio, not the absolute rate (the machine is shared).
//!
//! Run with `cargo bench -p chanx-e2e --bench load`. Environment knobs:
//! `LOAD_CONNECTIONS` (default 50), `LOAD_MESSAGES` (per connection,
//! default 2000), `LOAD_ROUNDS` (default 3).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chanx_e2e::{Adapter, session_for, start_with};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Deserialize, Serialize)]
struct Payload {
    content: String,
}

#[derive(Deserialize, Serialize)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Echo {
    Echo(Payload),
}

/// The baseline: a raw tokio-tungstenite server decoding and encoding the echo with serde.
async fn baseline_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let reply = match serde_json::from_str::<Echo>(&text) {
                        Ok(Echo::Echo(p)) => serde_json::to_string(&Echo::Echo(Payload {
                            content: format!("Echo: {}", p.content),
                        }))
                        .unwrap(),
                        Err(_) => r#"{"action":"error"}"#.to_owned(),
                    };
                    if ws.send(Message::Text(reply.into())).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// One client: connects, skips the authentication frame if any, then
/// sends `messages` echoes in windows of 100 and reads every reply.
async fn client(url: String, cookie: Option<String>, messages: usize) -> usize {
    let mut request = url.into_client_request().unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let frame = r#"{"action":"echo","payload":{"content":"Hello, Chanx!"}}"#;
    let mut received = 0;
    let mut sent = 0;
    while sent < messages {
        let window = (messages - sent).min(100);
        for _ in 0..window {
            ws.feed(Message::Text(frame.into())).await.unwrap();
        }
        ws.flush().await.unwrap();
        sent += window;
        while received < sent {
            match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) if text.contains("Echo: ") => received += 1,
                Ok(Some(Ok(_))) => {}
                other => panic!("load client stopped: {other:?}"),
            }
        }
    }
    let _ = ws.close(None).await;
    received
}

async fn run(url: &str, cookie: Option<String>, connections: usize, messages: usize) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(client(url.to_owned(), cookie.clone(), messages)))
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let connections = knob("LOAD_CONNECTIONS", 50);
    let messages = knob("LOAD_MESSAGES", 2000);
    let rounds = knob("LOAD_ROUNDS", 3);
    let baseline = baseline_server().await;
    let chanx = start_with(Adapter::Axum, |config| {
        config.options.heartbeat = None;
    })
    .await;
    let baseline_url = format!("ws://{baseline}/");
    let chanx_url = chanx.ws_url("/ws/myapp/echo/");
    let cookie = Some(format!("sessionid={}", session_for("alice")));
    println!("load: {connections} connections x {messages} echo messages, {rounds} rounds");
    let (mut base_rates, mut chanx_rates) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let b = run(&baseline_url, None, connections, messages).await;
        let c = run(&chanx_url, cookie.clone(), connections, messages).await;
        println!(
            "round {round}: baseline {b:>10.0} msg/s   chanx-axum {c:>10.0} msg/s   ratio {:.2}",
            c / b
        );
        base_rates.push(b);
        chanx_rates.push(c);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (b, c) = (median(&mut base_rates), median(&mut chanx_rates));
    println!(
        "median: baseline {b:.0} msg/s, chanx-axum {c:.0} msg/s, chanx/baseline throughput ratio {:.2}",
        c / b
    );
}
