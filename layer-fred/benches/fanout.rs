//! Cross-process fan-out: one publisher, 100 members of a group split over
//! two layers (two servers), the Redis at `CHANX_REDIS_URL`; side by side
//! with the same room on the in-memory layer, in the same run. Read the
//! ratio, not the absolute rates (the machine is shared).
//!
//! `cargo bench -p chanx-fred --bench fanout`; knobs: `FANOUT_MESSAGES`
//! (default 5000), `FANOUT_ROUNDS` (default 3).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chanx::layer::{ChannelLayer, InMemoryLayer, Inbox};
use chanx_fred::{FredConfig, FredLayer};
use chanx_proto::LayerMessage;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;

const MEMBERS: usize = 100;
const WINDOW: usize = 64;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Joins `MEMBERS` channels of `layers` (round robin) to `group`.
async fn members(layers: &[Arc<dyn ChannelLayer>], group: &str) -> Vec<Inbox> {
    let mut inboxes = Vec::new();
    for i in 0..MEMBERS {
        let layer = &layers[i % layers.len()];
        let (channel, inbox) = layer.new_channel().await.expect("channel");
        layer.group_add(group, &channel).await.expect("join");
        inboxes.push(inbox);
    }
    inboxes
}

/// Deliveries per second: `messages` sends from `publisher`, until every
/// member has received every message.
async fn run(
    publisher: Arc<dyn ChannelLayer>,
    inboxes: Vec<Inbox>,
    group: &str,
    messages: usize,
) -> f64 {
    let started = Instant::now();
    let drains: Vec<_> = inboxes
        .into_iter()
        .map(|inbox| {
            tokio::spawn(async move {
                let mut received = 0;
                while received < messages {
                    match tokio::time::timeout(Duration::from_secs(10), inbox.recv()).await {
                        Ok(Some(_)) => received += 1,
                        _ => break,
                    }
                }
                received
            })
        })
        .collect();
    let message = Arc::new(
        LayerMessage::event(&serde_json::json!({"handler": "notify", "payload": {"content": "Hello, everyone in the room!"}}))
            .expect("an event"),
    );
    let mut in_flight: FuturesOrdered<
        futures_util::future::BoxFuture<'static, Result<(), chanx::layer::LayerError>>,
    > = FuturesOrdered::new();
    for _ in 0..messages {
        if in_flight.len() == WINDOW {
            in_flight.next().await.expect("a send").expect("sent");
        }
        let publisher = Arc::clone(&publisher);
        let message = Arc::clone(&message);
        let group = group.to_owned();
        in_flight.push_back(Box::pin(async move {
            publisher.group_send(&group, message).await
        }));
    }
    while let Some(sent) = in_flight.next().await {
        sent.expect("sent");
    }
    let mut delivered = 0;
    for drain in drains {
        delivered += drain.await.expect("drain");
    }
    assert_eq!(
        delivered,
        messages * MEMBERS,
        "every member got every message"
    );
    delivered as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let messages = knob("FANOUT_MESSAGES", 5000);
    let rounds = knob("FANOUT_ROUNDS", 3);
    let url = std::env::var("CHANX_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let capacity = messages + 16;
    println!("fanout: {messages} messages to {MEMBERS} members, {rounds} rounds (deliveries/s)");
    let (mut memory, mut redis, mut sharded) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let layer: Arc<dyn ChannelLayer> = Arc::new(InMemoryLayer::with_capacity(capacity));
        let inboxes = members(std::slice::from_ref(&layer), "room").await;
        let m = run(layer, inboxes, "room", messages).await;
        let plain = FredConfig::new(url.clone()).capacity(capacity);
        let r = two_servers(plain.clone(), round, messages).await;
        let s = two_servers(plain.sharded(16), round, messages).await;
        println!(
            "round {round}: in-memory {m:>11.0}  redis, two servers {r:>11.0}  sharded {s:>11.0}"
        );
        memory.push(m);
        redis.push(r);
        sharded.push(s);
    }
    let (m, r, s) = (median(memory), median(redis), median(sharded));
    println!(
        "median: redis / in-memory = {:.2} ({r:.0} vs {m:.0} deliveries/s); sharded / in-memory = {:.2} ({s:.0})",
        r / m,
        s / m
    );
}

/// One round on Redis: members on two layers, a third one publishes.
async fn two_servers(config: FredConfig, round: usize, messages: usize) -> f64 {
    let mode = if config.partitions().is_some() {
        "s"
    } else {
        "p"
    };
    let config = config.prefix(format!("bench{}r{round}{mode}", std::process::id()));
    let connect = || async { FredLayer::connect(config.clone()).await.expect("Redis") };
    let servers: Vec<Arc<dyn ChannelLayer>> =
        vec![Arc::new(connect().await), Arc::new(connect().await)];
    let publisher: Arc<dyn ChannelLayer> = Arc::new(connect().await);
    let inboxes = members(&servers, "room").await;
    run(publisher, inboxes, "room", messages).await
}
