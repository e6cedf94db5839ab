//! Fairness: what four heavy senders do to a bystander's latency. Four
//! clients send 1 MiB echo frames back to back (each waits for its echo)
//! while a fifth pings; the bystander's ping round trips are measured alone
//! and under that load, on the quickstart (axum) with the default input
//! budget and with the budget off, in the same run. Read the ratios.
//!
//! `cargo bench -p chanx-e2e --bench fairness`; knobs: `FAIRNESS_ROUNDS`
//! (default 3), `FAIRNESS_SECONDS` (per measurement, default 3).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chanx_e2e::{Adapter, knob, median, start_with, ws_as};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const HEAVY_CLIENTS: usize = 4;

/// The endpoint every client uses.
const ECHO: &str = "/ws/myapp/echo/";

/// Sends 1 MiB echo frames back to back until `stop`; counts the bytes
/// echoed.
async fn heavy(addr: SocketAddr, stop: Arc<AtomicBool>, echoed: Arc<AtomicU64>) {
    let mut ws = ws_as(addr, ECHO, "alice").await;
    let content = "x".repeat((1 << 20) - 64);
    let frame = format!(r#"{{"action":"echo","payload":{{"content":"{content}"}}}}"#);
    while !stop.load(Ordering::Relaxed) {
        ws.send(Message::Text(frame.as_str().into())).await.unwrap();
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    echoed.fetch_add(text.len() as u64, Ordering::Relaxed);
                    break;
                }
                Some(Ok(_)) => {}
                other => panic!("heavy client stopped: {other:?}"),
            }
        }
    }
    let _ = ws.close(None).await;
}

/// Ping round trips for `duration`, one every 5 ms.
async fn bystander(addr: SocketAddr, duration: Duration) -> Vec<Duration> {
    let mut ws = ws_as(addr, ECHO, "bob").await;
    let mut rtts = Vec::new();
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let started = Instant::now();
        ws.send(Message::Text(r#"{"action":"ping"}"#.into()))
            .await
            .unwrap();
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.contains("pong") => break,
                Some(Ok(_)) => {}
                other => panic!("bystander stopped: {other:?}"),
            }
        }
        rtts.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = ws.close(None).await;
    rtts
}

fn percentile(rtts: &mut [Duration], p: f64) -> Duration {
    rtts.sort();
    let index = ((rtts.len() as f64 - 1.0) * p).round() as usize;
    rtts[index]
}

struct Figures {
    quiet_p99: Duration,
    loaded_p50: Duration,
    loaded_p99: Duration,
    heavy_mib_per_s: f64,
}

async fn measure(budget: bool, seconds: u64) -> Figures {
    let server = start_with(Adapter::Axum, |config| {
        config.options.heartbeat = None;
        if !budget {
            config.options.input_budget = None;
        }
    })
    .await;
    let addr = server.addr;
    let duration = Duration::from_secs(seconds);
    let mut quiet = bystander(addr, duration).await;
    let stop = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicU64::new(0));
    let heavies: Vec<_> = (0..HEAVY_CLIENTS)
        .map(|_| tokio::spawn(heavy(addr, Arc::clone(&stop), Arc::clone(&echoed))))
        .collect();
    // Let the heavy clients get going (and spend any burst).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = echoed.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut loaded = bystander(addr, duration).await;
    let heavy_bytes = echoed.load(Ordering::Relaxed) - before;
    let heavy_mib_per_s = heavy_bytes as f64 / started.elapsed().as_secs_f64() / (1 << 20) as f64;
    stop.store(true, Ordering::Relaxed);
    for heavy in heavies {
        heavy.await.unwrap();
    }
    Figures {
        quiet_p99: percentile(&mut quiet, 0.99),
        loaded_p50: percentile(&mut loaded, 0.5),
        loaded_p99: percentile(&mut loaded, 0.99),
        heavy_mib_per_s,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = knob("FAIRNESS_ROUNDS", 3) as u64;
    let seconds = knob("FAIRNESS_SECONDS", 3) as u64;
    println!(
        "fairness: {HEAVY_CLIENTS} clients echoing 1 MiB frames back to back, one bystander pinging; {rounds} rounds of {seconds} s"
    );
    let mut ratio = [Vec::new(), Vec::new()];
    for round in 1..=rounds {
        for (i, budget) in [true, false].into_iter().enumerate() {
            let f = measure(budget, seconds).await;
            let name = if budget {
                "default budget"
            } else {
                "budget off"
            };
            println!(
                "round {round}: {name:<14} bystander p99 alone {:>8.2?}  under load p50 {:>8.2?} p99 {:>8.2?}  heavy clients {:>7.1} MiB/s",
                f.quiet_p99, f.loaded_p50, f.loaded_p99, f.heavy_mib_per_s
            );
            ratio[i].push(f.loaded_p99.as_secs_f64() / f.quiet_p99.as_secs_f64());
        }
    }
    let [with_budget, without] = ratio.map(median);
    println!(
        "median bystander p99 under load / alone: default budget {with_budget:.1}x, budget off {without:.1}x"
    );
}
