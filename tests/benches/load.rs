//! Load benchmark over loopback: echo throughput of the quickstart echo
//! endpoint (chanx on axum: authentication, validation, typed dispatch)
//! side by side with a hand-rolled tokio-tungstenite echo server that
//! decodes and encodes the same JSON with serde (what users write without
//! chanx). Same process, same client, alternating rounds; the figure that
//! matters is the ratio, not the absolute rate (the machine is shared).
//!
//! Run with `cargo bench -p chanx-e2e --bench load`. Environment knobs:
//! `LOAD_CONNECTIONS` (default 50), `LOAD_MESSAGES` (per connection,
//! default 2000), `LOAD_ROUNDS` (default 3), `LOAD_ONLY_CHANX` (skip the
//! baselines, for profiling).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chanx_e2e::{Adapter, knob, session_for, start_with};
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

fn reply_to(text: &str) -> String {
    match serde_json::from_str::<Echo>(text) {
        Ok(Echo::Echo(p)) => serde_json::to_string(&Echo::Echo(Payload {
            content: format!("Echo: {}", p.content),
        }))
        .unwrap(),
        Err(_) => r#"{"action":"error"}"#.to_owned(),
    }
}

/// A raw tokio-tungstenite server decoding and encoding the echo with
/// serde. `tuned`: replies are fed and flushed only when no further frame
/// is ready (what chanx's writer does); otherwise each reply is `send`
/// (feed + flush), the way most hand-written servers do it.
async fn baseline_server(tuned: bool) -> SocketAddr {
    use futures_util::FutureExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let mut next = ws.next().await;
                while let Some(Ok(message)) = next {
                    if let Message::Text(text) = message {
                        let reply = Message::Text(reply_to(&text).into());
                        let sent = if tuned {
                            ws.feed(reply).await
                        } else {
                            ws.send(reply).await
                        };
                        if sent.is_err() {
                            return;
                        }
                    }
                    next = match ws.next().now_or_never() {
                        Some(ready) => ready,
                        None => {
                            if tuned && ws.flush().await.is_err() {
                                return;
                            }
                            ws.next().await
                        }
                    };
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
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .unwrap();
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

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let connections = knob("LOAD_CONNECTIONS", 50);
    let messages = knob("LOAD_MESSAGES", 2000);
    let rounds = knob("LOAD_ROUNDS", 3);
    let naive = format!("ws://{}/", baseline_server(false).await);
    let tuned = format!("ws://{}/", baseline_server(true).await);
    let chanx = start_with(Adapter::Axum, |config| {
        config.options.heartbeat = None;
    })
    .await;
    let chanx_url = chanx.ws_url("/ws/myapp/echo/");
    let warp = start_with(Adapter::Warp, |config| {
        config.options.heartbeat = None;
    })
    .await;
    let warp_url = warp.ws_url("/ws/myapp/echo/");
    let cookie = Some(format!("sessionid={}", session_for("alice")));
    println!("load: {connections} connections x {messages} echo messages, {rounds} rounds (msg/s)");
    if std::env::var("LOAD_ONLY_CHANX").is_ok() {
        // For profiling the chanx side alone.
        for round in 1..=rounds {
            let c = run(&chanx_url, cookie.clone(), connections, messages).await;
            println!("round {round}: chanx-axum {c:>9.0}");
        }
        return;
    }
    let mut rates: [Vec<f64>; 4] = Default::default();
    for round in 1..=rounds {
        let n = run(&naive, None, connections, messages).await;
        let t = run(&tuned, None, connections, messages).await;
        let c = run(&chanx_url, cookie.clone(), connections, messages).await;
        let w = run(&warp_url, cookie.clone(), connections, messages).await;
        println!(
            "round {round}: raw tungstenite send-per-reply {n:>9.0}  raw tungstenite batched {t:>9.0}  chanx-axum {c:>9.0}  chanx-warp {w:>9.0}"
        );
        for (list, rate) in rates.iter_mut().zip([n, t, c, w]) {
            list.push(rate);
        }
    }
    let [n, t, c, w] = rates.map(|mut v| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    });
    println!(
        "median: chanx-axum / raw batched = {:.2}, chanx-axum / raw send-per-reply = {:.2}, chanx-warp / raw batched = {:.2}",
        c / t,
        c / n,
        w / t
    );
}
