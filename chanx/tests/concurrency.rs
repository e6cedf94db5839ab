//! Opt-in concurrent handling of one connection's messages.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chanx::auth::AllowAny;
use chanx::layer::InMemoryLayer;
use chanx::routing::{RouteTable, path};
use chanx::testing::{TestClient, TestServer};
use chanx::{Consumer, Context, Endpoint, HandlerResult, Server};
use futures_executor::block_on;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum In {
    Slow { content: String, millis: u64 },
    Echo { content: String },
    Shout { content: String },
    Fail,
    Panic,
    Close,
    Burst { count: usize },
    Hold,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "handler", content = "payload", rename_all = "snake_case")]
enum Ev {
    Notify { content: String },
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Group {
    Shout { content: String },
}

/// Shared by every clone of a connection's consumer.
#[derive(Clone, Default)]
struct Gauge {
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    /// Taken by `Hold` (forever) and by `on_disconnect`.
    lock: Arc<futures_util::lock::Mutex<()>>,
    disconnected: Arc<AtomicUsize>,
}

#[derive(Clone, Default)]
struct Parallel {
    gauge: Gauge,
}

impl Consumer for Parallel {
    type Incoming = In;
    type Outgoing = chanx::NoOutgoing;
    type Event = Ev;
    type GroupMessage = Group;

    async fn build_groups(&mut self, _: &Context<'_, Self>) -> Vec<String> {
        vec!["hall".to_owned()]
    }

    async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, message: In) -> HandlerResult {
        let now = self.gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.gauge.peak.fetch_max(now, Ordering::SeqCst);
        let result = async {
            match message {
                In::Slow { content, millis } => {
                    futures_timer::Delay::new(Duration::from_millis(millis)).await;
                    ctx.send_raw_json(&json!({"action": "slow", "payload": {"content": content}}))
                        .await?;
                }
                In::Echo { content } => {
                    let channel = ctx.channel_name().to_owned();
                    let groups = ctx.groups().to_vec();
                    ctx.send_raw_json(&json!({"action": "echo", "payload": {"content": content, "groups": groups, "has_channel": !channel.is_empty()}}))
                        .await?;
                }
                In::Shout { content } => ctx.send_group_message(&Group::Shout { content }).await?,
                In::Fail => return Err("refused".into()),
                In::Panic => panic!("concurrent handler panicked on purpose"),
                In::Close => ctx.close(4000).await?,
                In::Burst { count } => {
                    for i in 0..count {
                        ctx.send_raw_json(&json!({"action": "item", "payload": i})).await?;
                    }
                }
                In::Hold => {
                    let _guard = self.gauge.lock.lock().await;
                    futures_util::future::pending::<()>().await;
                }
            }
            Ok(())
        }
        .await;
        self.gauge.running.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn on_disconnect(&mut self, _: &Context<'_, Self>) {
        let _guard = self.gauge.lock.lock().await;
        self.gauge.disconnected.fetch_add(1, Ordering::SeqCst);
    }

    async fn receive_event(&mut self, ctx: &mut Context<'_, Self>, event: Ev) -> HandlerResult {
        let Ev::Notify { content } = event;
        ctx.send_raw_json(&json!({"action": "notified", "payload": {"content": content}}))
            .await?;
        Ok(())
    }
}

fn server(limit: usize, gauge: &Gauge) -> (TestServer, InMemoryLayer) {
    let layer = InMemoryLayer::new();
    let gauge = gauge.clone();
    let endpoint = Endpoint::builder(move || Parallel {
        gauge: gauge.clone(),
    })
    .permission(AllowAny)
    .send_completion(true)
    .concurrent_messages(limit)
    .build()
    .unwrap();
    let routes = RouteTable::new([path("par/", endpoint)]).unwrap();
    (TestServer::new(Server::new(routes, layer.clone())), layer)
}

async fn connect(server: &TestServer) -> TestClient {
    let mut client = TestClient::connect(server, "/par/").await.unwrap();
    client.assert_authenticated().await.unwrap();
    client
}

fn slow(content: &str, millis: u64) -> Value {
    json!({"action": "slow", "payload": {"content": content, "millis": millis}})
}

/// The next `n` frames, completion frames counted separately.
async fn collect(client: &mut TestClient, n: usize) -> (Vec<Value>, usize) {
    let (mut frames, mut completes) = (Vec::new(), 0);
    while frames.len() + completes < n {
        let f = client.receive_json().await.unwrap();
        if f["action"] == "complete" {
            completes += 1;
        } else {
            frames.push(f);
        }
    }
    (frames, completes)
}

#[test]
fn a_fast_message_overtakes_a_slow_one() {
    let (server, _) = server(4, &Gauge::default());
    block_on(async {
        let mut client = connect(&server).await;
        client.send_json(&slow("A", 300)).await.unwrap();
        client.send_json(&slow("B", 0)).await.unwrap();
        let (frames, completes) = collect(&mut client, 4).await;
        let order: Vec<&str> = frames
            .iter()
            .map(|f| f["payload"]["content"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["B", "A"]);
        assert_eq!(completes, 2);
    });
}

#[test]
fn the_limit_bounds_handlers_in_flight() {
    let gauge = Gauge::default();
    let (server, _) = server(2, &gauge);
    block_on(async {
        let mut client = connect(&server).await;
        for i in 0..6 {
            client.send_json(&slow(&i.to_string(), 50)).await.unwrap();
        }
        let (frames, completes) = collect(&mut client, 12).await;
        assert_eq!(frames.len(), 6);
        assert_eq!(completes, 6);
        assert_eq!(
            gauge.peak.load(Ordering::SeqCst),
            2,
            "two handlers ran at once, never more"
        );
    });
}

#[test]
fn context_reads_the_connection_in_concurrent_handlers() {
    let (server, _) = server(3, &Gauge::default());
    block_on(async {
        let mut client = connect(&server).await;
        client
            .send_json(&json!({"action": "echo", "payload": {"content": "x"}}))
            .await
            .unwrap();
        let (frames, _) = collect(&mut client, 2).await;
        assert_eq!(
            frames[0],
            json!({"action": "echo", "payload": {"content": "x", "groups": ["hall"], "has_channel": true}})
        );
    });
}

#[test]
fn failures_and_panics_report_and_the_connection_continues() {
    let (server, _) = server(3, &Gauge::default());
    block_on(async {
        let mut client = connect(&server).await;
        client.send_json(&json!({"action": "fail"})).await.unwrap();
        client.send_json(&json!({"action": "panic"})).await.unwrap();
        let (frames, completes) = collect(&mut client, 4).await;
        let failed = json!({"action": "error", "payload": {"detail": "Failed to process message"}});
        assert_eq!(frames, [failed.clone(), failed]);
        assert_eq!(completes, 2);
        client.send_json(&slow("still here", 0)).await.unwrap();
        let (frames, _) = collect(&mut client, 2).await;
        assert_eq!(frames[0]["payload"]["content"], "still here");
    });
}

#[test]
fn group_messages_and_events_from_concurrent_handlers() {
    let (server, layer) = server(3, &Gauge::default());
    block_on(async {
        let mut alice = connect(&server).await;
        let mut bob = connect(&server).await;
        alice
            .send_json(&json!({"action": "shout", "payload": {"content": "hi"}}))
            .await
            .unwrap();
        let got = bob.receive_json().await.unwrap();
        assert_eq!(got["action"], "shout");
        assert_eq!(got["is_current"], false);
        assert_eq!(
            bob.receive_json().await.unwrap()["action"],
            "group_complete"
        );
        Parallel::send_event(
            &layer,
            "hall",
            &Ev::Notify {
                content: "n".into(),
            },
        )
        .await
        .unwrap();
        let (frames, completes) = collect(&mut bob, 2).await;
        assert_eq!(
            frames,
            [json!({"action": "notified", "payload": {"content": "n"}})]
        );
        assert_eq!(completes, 1);
    });
}

#[test]
fn a_concurrent_handler_can_close_the_connection() {
    let (server, layer) = server(3, &Gauge::default());
    block_on(async {
        let mut client = connect(&server).await;
        assert_eq!(layer.group_size("hall"), 1);
        client.send_json(&json!({"action": "close"})).await.unwrap();
        assert_eq!(client.expect_close().await.unwrap(), Some(4000));
        assert_eq!(layer.group_size("hall"), 0);
    });
}

/// A handler sending far more frames than the outbound bound (1024) to a
/// client that reads: the writer gets its turns, the client is never
/// treated as a slow consumer, in either mode.
#[test]
fn a_handler_can_send_more_frames_than_the_outbound_bound() {
    for limit in [1, 3] {
        let (server, _) = server(limit, &Gauge::default());
        block_on(async {
            let mut client = connect(&server).await;
            client
                .send_json(&json!({"action": "burst", "payload": {"count": 3000}}))
                .await
                .unwrap();
            for i in 0..3000 {
                let frame = client.receive_json().await.unwrap();
                assert_eq!(
                    frame,
                    json!({"action": "item", "payload": i}),
                    "limit {limit}"
                );
            }
            assert_eq!(client.receive_json().await.unwrap()["action"], "complete");
        });
    }
}

/// A handler stuck while holding a lock `on_disconnect` needs: the
/// connection still ends, because handlers in flight are cancelled first.
#[test]
fn handlers_in_flight_are_cancelled_before_on_disconnect() {
    let gauge = Gauge::default();
    let (server, _) = server(3, &gauge);
    block_on(async {
        let mut client = connect(&server).await;
        client.send_json(&json!({"action": "hold"})).await.unwrap();
        assert!(client.receive_nothing(Duration::from_millis(100)).await);
        client.disconnect().await;
    });
    assert_eq!(gauge.disconnected.load(Ordering::SeqCst), 1);
    assert_eq!(server.shutdown().active_connections(), 0);
}
