//! Memory per idle WebSocket connection, side by side in one run: the
//! server runs as a child process of this bench (so its RSS is its own),
//! first a bare tokio-tungstenite echo server with chanx's 4 KiB read and
//! 8 KiB write buffers, then the quickstart on axum, warp and async-std.
//! For each count of `IDLE_COUNTS` (default `1000,10000`) the bench opens
//! that many authenticated, idle connections, waits for the server to
//! settle and reads the server's `VmRSS` from `/proc`; the figure is the
//! growth over the server's RSS with one connection open, divided by the
//! count. Linux only.
//!
//! `cargo bench -p chanx-e2e --bench idle_memory`

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chanx_e2e::{Adapter, session_for, start_with};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The servers measured, as the child process is told to be.
const KINDS: [&str; 4] = ["bare", "chanx-axum", "chanx-warp", "chanx-async-std"];

fn counts() -> Vec<usize> {
    std::env::var("IDLE_COUNTS")
        .unwrap_or_else(|_| "1000,10000".to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

/// The child: serves `kind` on a free port, prints it, runs until killed.
async fn serve(kind: &str) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let addr = match kind {
        "bare" => bare_server().await,
        "chanx-axum" => keep(start_with(Adapter::Axum, |_| {}).await),
        "chanx-warp" => keep(start_with(Adapter::Warp, |_| {}).await),
        "chanx-async-std" => keep(start_with(Adapter::AsyncStd, |_| {}).await),
        other => panic!("unknown server kind {other}"),
    };
    println!("listening {addr}");
    std::future::pending::<()>().await;
}

/// Keeps a server running for the life of the process.
fn keep(running: chanx_e2e::Running) -> SocketAddr {
    let addr = running.addr;
    std::mem::forget(running);
    addr
}

/// A bare tokio-tungstenite server answering each text frame with itself.
async fn bare_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let config = chanx::ws::websocket_config(1 << 20);
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
                else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() && ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The server's resident set in kB.
fn rss_kb(child: &Child) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .expect("VmRSS")
}

async fn connect(addr: SocketAddr, kind: &str) -> Ws {
    let path = if kind == "bare" {
        "/"
    } else {
        "/ws/myapp/echo/"
    };
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    let cookie = format!("sessionid={}", session_for("alice"));
    request
        .headers_mut()
        .insert("cookie", cookie.parse().expect("cookie"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    if kind != "bare" {
        // The authentication frame: the connection is open and idle.
        let first = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
        assert!(matches!(first, Ok(Some(Ok(Message::Text(_))))), "{first:?}");
    } else {
        ws.send(Message::text("hi")).await.expect("send");
        let _ = ws.next().await;
    }
    ws
}

/// Bytes per idle connection for `kind` at `count` connections.
async fn measure(kind: &str, count: usize) -> f64 {
    let mut child = Command::new(std::env::current_exe().expect("this bench"))
        .args(["--serve", kind])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr: SocketAddr = loop {
        let line = lines
            .next()
            .expect("the child prints its address")
            .expect("text");
        if let Some(addr) = line.strip_prefix("listening ") {
            break addr.parse().expect("an address");
        }
    };
    let mut open = vec![connect(addr, kind).await];
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kb(&child);
    for chunk in 0..count.div_ceil(100) {
        let batch = (count - chunk * 100).min(100);
        let connecting: Vec<_> = (0..batch).map(|_| connect(addr, kind)).collect();
        open.extend(futures_util::future::join_all(connecting).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kb(&child);
    drop(open);
    let _ = child.kill();
    let _ = child.wait();
    (after.saturating_sub(before) * 1024) as f64 / count as f64
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--serve") {
        let kind = args.get(at + 1).expect("a server kind").clone();
        return serve(&kind).await;
    }
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    for count in counts() {
        println!("memory per idle connection at {count} connections (bytes; ratio to bare):");
        let mut bare = 0.0;
        for kind in KINDS {
            let bytes = measure(kind, count).await;
            if kind == "bare" {
                bare = bytes;
            }
            println!("  {kind:<16} {bytes:>8.0}  {:.2}x", bytes / bare.max(1.0));
        }
    }
}
