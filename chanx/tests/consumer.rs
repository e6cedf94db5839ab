#![allow(clippy::unwrap_used, missing_docs)]
//! Consumer behaviour through the in-process client: handler failures,
//! ordering, channel events, groups, camelize, disconnect and shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chanx::auth::{AllowAny, AuthError, IsAuthenticated, TokenAuthentication, TokenVerifier};
use chanx::layer::{ChannelLayer, InMemoryLayer};
use chanx::proto::LayerMessage;
use chanx::routing::{RouteTable, path};
use chanx::testing::{TestClient, TestError, TestServer};
use chanx::{Consumer, Context, Endpoint, HandlerResult, Refusal, Server, User, WsMessage};
use futures_executor::block_on;
use futures_util::future::{BoxFuture, Either, FutureExt, select};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------- fixtures

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum In {
    Echo {
        content: String,
    },
    Fail,
    Panic,
    Slow {
        content: String,
    },
    Group {
        content: String,
        groups: Vec<String>,
        exclude_current: bool,
    },
    Mine {
        content: String,
    },
    Raw {
        content: String,
    },
    SetName {
        user_name: String,
    },
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "handler", content = "payload", rename_all = "snake_case")]
enum Ev {
    Notify { content: String },
    Explode,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum GroupOut {
    Chat { content: String },
}

#[derive(Clone, Default)]
struct Probe {
    disconnected: Arc<AtomicBool>,
    disconnects: Arc<AtomicUsize>,
    welcome: bool,
}

struct Worker {
    probe: Probe,
}

impl Consumer for Worker {
    type Incoming = In;
    type Outgoing = chanx::NoOutgoing;
    type Event = Ev;
    type GroupMessage = GroupOut;

    async fn build_groups(&mut self, ctx: &Context<'_, Self>) -> Vec<String> {
        match ctx.param("room") {
            Some(room) => vec![format!("room_{room}")],
            None => vec!["lobby".to_owned()],
        }
    }

    async fn post_authentication(&mut self, ctx: &mut Context<'_, Self>) -> HandlerResult {
        if self.probe.welcome {
            let user = ctx.user().map(|u| u.username.clone());
            let groups = ctx.groups().to_vec();
            ctx.send_raw_json(&json!({
                "action": "welcome",
                "payload": {"user": user, "groups": groups},
            }))
            .await?;
        }
        Ok(())
    }

    async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, message: In) -> HandlerResult {
        match message {
            In::Echo { content } => {
                ctx.send_raw_json(&json!({"action": "echo", "payload": {"content": content}}))
                    .await?;
            }
            In::Fail => return Err("the database said no".into()),
            In::Panic => panic!("handler panicked on purpose"),
            In::Slow { content } => {
                futures_timer::Delay::new(Duration::from_millis(150)).await;
                ctx.send_raw_json(&json!({"action": "slow", "payload": {"content": content}}))
                    .await?;
            }
            In::Group {
                content,
                groups,
                exclude_current,
            } => {
                ctx.send_group_message_to(&GroupOut::Chat { content }, &groups, exclude_current)
                    .await?;
            }
            In::Mine { content } => {
                ctx.send_group_message(&GroupOut::Chat { content }).await?;
            }
            In::Raw { content } => {
                let mut map = Map::new();
                map.insert("raw".into(), json!(content));
                map.insert("nested_key".into(), json!({"inner_key": 1}));
                ctx.send_group_json(&map, None, true).await?;
            }
            In::SetName { user_name } => {
                ctx.send_raw_json(&json!({
                    "action": "name_set",
                    "payload": {"user_name": user_name, "is_ok": true},
                }))
                .await?;
            }
        }
        Ok(())
    }

    async fn receive_event(&mut self, ctx: &mut Context<'_, Self>, event: Ev) -> HandlerResult {
        match event {
            Ev::Notify { content } => {
                ctx.send_raw_json(&json!({"action": "notified", "payload": {"content": content}}))
                    .await?;
                Ok(())
            }
            Ev::Explode => Err("event handler failed".into()),
        }
    }

    async fn on_disconnect(&mut self, ctx: &Context<'_, Self>) {
        assert!(
            ctx.groups().is_empty(),
            "groups are left before on_disconnect"
        );
        self.probe.disconnected.store(true, Ordering::SeqCst);
        self.probe.disconnects.fetch_add(1, Ordering::SeqCst);
    }
}

struct Tokens(HashMap<String, User>);

impl TokenVerifier for Tokens {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<User>, AuthError>> {
        let user = self.0.get(token).cloned();
        Box::pin(async move { Ok(user) })
    }
}

fn tokens() -> Tokens {
    let mut map = HashMap::new();
    map.insert("t-alice".to_owned(), User::new(1, "alice"));
    map.insert("t-alice2".to_owned(), User::new(1, "alice"));
    map.insert("t-bob".to_owned(), User::new(2, "bob"));
    Tokens(map)
}

struct Fixture {
    server: TestServer,
    layer: InMemoryLayer,
    probe: Probe,
}

fn fixture() -> Fixture {
    let layer = InMemoryLayer::new();
    let probe = Probe::default();
    let welcome_probe = Probe {
        welcome: true,
        ..probe.clone()
    };
    let p = probe.clone();
    let room = Endpoint::builder(move || Worker { probe: p.clone() })
        .authenticator(TokenAuthentication::new(tokens()))
        .permission(IsAuthenticated)
        .send_completion(true)
        .build()
        .unwrap();
    let welcome = Endpoint::builder(move || Worker {
        probe: welcome_probe.clone(),
    })
    .authenticator(TokenAuthentication::new(tokens()))
    .permission(IsAuthenticated)
    .build()
    .unwrap();
    let p = probe.clone();
    let camel = Endpoint::builder(move || Worker { probe: p.clone() })
        .permission(AllowAny)
        .camelize(true)
        .send_completion(true)
        .build()
        .unwrap();
    let p = probe.clone();
    let quiet = Endpoint::builder(move || Worker { probe: p.clone() })
        .authenticator(TokenAuthentication::new(tokens()))
        .permission(IsAuthenticated)
        .build()
        .unwrap();
    let routes = RouteTable::new([
        path("room/<str:room>/", room),
        path("welcome/", welcome),
        path("camel/", camel),
        path("quiet/<str:room>/", quiet),
    ])
    .unwrap();
    Fixture {
        server: TestServer::new(Server::new(routes, layer.clone())),
        layer,
        probe,
    }
}

async fn connect(server: &TestServer, at: &str, token: &str) -> TestClient {
    let mut client = TestClient::builder(server, at)
        .header("authorization", &format!("Token {token}"))
        .connect()
        .await
        .unwrap();
    client.assert_authenticated().await.unwrap();
    client
}

fn echo(content: &str) -> Value {
    json!({"action": "echo", "payload": {"content": content}})
}

const FAILED: &str = r#"{"action":"error","payload":{"detail":"Failed to process message"}}"#;

fn failed() -> Value {
    serde_json::from_str(FAILED).unwrap()
}

/// Frames other than `complete` until `n` were collected.
async fn frames(client: &mut TestClient, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let f = client.receive_json().await.unwrap();
        if f["action"] != "complete" {
            out.push(f);
        }
    }
    out
}

/// Runs `fut`, failing the test if it takes longer than `secs`.
async fn within<F: std::future::Future>(secs: u64, fut: F) -> F::Output {
    futures_util::pin_mut!(fut);
    match select(fut, futures_timer::Delay::new(Duration::from_secs(secs))).await {
        Either::Left((out, _)) => out,
        Either::Right(_) => panic!("timed out after {secs}s"),
    }
}

// ---------------------------------------------------------- handler failures

#[test]
fn handler_error_sends_error_frame_and_connection_continues() {
    let f = fixture();
    block_on(async {
        let mut client = connect(&f.server, "/room/r1/", "t-alice").await;
        client
            .send_json(&json!({"action": "fail", "payload": null}))
            .await
            .unwrap();
        assert_eq!(client.receive_all_json().await.unwrap(), [failed()]);
        client.send_json(&echo("still here")).await.unwrap();
        assert_eq!(
            client.receive_all_json().await.unwrap(),
            [echo("still here")]
        );
        client.disconnect().await;
    });
}

#[test]
fn handler_error_text_never_reaches_the_client() {
    let f = fixture();
    block_on(async {
        let mut client = connect(&f.server, "/quiet/r1/", "t-alice").await;
        client.send_text(r#"{"action":"fail"}"#).await.unwrap();
        match client.receive_within(Duration::from_secs(2)).await.unwrap() {
            WsMessage::Text(text) => {
                assert!(!text.contains("database"));
                assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), failed());
            }
            other => panic!("unexpected {other:?}"),
        }
        // Without completion frames nothing else follows.
        assert!(client.receive_nothing(Duration::from_millis(100)).await);
        client.disconnect().await;
    });
}

#[test]
fn handler_panic_sends_error_frame_and_connection_continues() {
    let f = fixture();
    block_on(async {
        let mut client = connect(&f.server, "/room/r1/", "t-alice").await;
        client
            .send_json(&json!({"action": "panic", "payload": null}))
            .await
            .unwrap();
        assert_eq!(client.receive_all_json().await.unwrap(), [failed()]);
        client.send_json(&echo("after panic")).await.unwrap();
        assert_eq!(
            client.receive_all_json().await.unwrap(),
            [echo("after panic")]
        );
        // A second panic is handled just as well.
        client
            .send_json(&json!({"action": "panic", "payload": null}))
            .await
            .unwrap();
        assert_eq!(client.receive_all_json().await.unwrap(), [failed()]);
        client.send_json(&echo("again")).await.unwrap();
        assert_eq!(client.receive_all_json().await.unwrap(), [echo("again")]);
        client.disconnect().await;
    });
    assert!(f.probe.disconnected.load(Ordering::SeqCst));
}

// ------------------------------------------------------------------ ordering

#[test]
fn messages_are_handled_one_at_a_time_in_order() {
    let f = fixture();
    block_on(async {
        let mut client = connect(&f.server, "/room/r1/", "t-alice").await;
        let started = Instant::now();
        client
            .send_json(&json!({"action": "slow", "payload": {"content": "A"}}))
            .await
            .unwrap();
        client.send_json(&echo("B")).await.unwrap();
        client.send_json(&echo("C")).await.unwrap();
        let mut all = Vec::new();
        for _ in 0..6 {
            all.push(client.receive_json().await.unwrap());
        }
        assert!(started.elapsed() >= Duration::from_millis(150));
        let complete = json!({"action": "complete", "payload": null});
        assert_eq!(
            all,
            [
                json!({"action": "slow", "payload": {"content": "A"}}),
                complete.clone(),
                echo("B"),
                complete.clone(),
                echo("C"),
                complete,
            ]
        );
        client.disconnect().await;
    });
}

#[test]
fn many_messages_keep_their_order() {
    let f = fixture();
    block_on(async {
        let mut client = connect(&f.server, "/room/r1/", "t-alice").await;
        for i in 0..50 {
            if i % 10 == 0 {
                client
                    .send_json(&json!({"action": "slow", "payload": {"content": i.to_string()}}))
                    .await
                    .unwrap();
            } else {
                client.send_json(&echo(&i.to_string())).await.unwrap();
            }
        }
        let got = frames(&mut client, 50).await;
        let contents: Vec<String> = got
            .iter()
            .map(|f| f["payload"]["content"].as_str().unwrap().to_owned())
            .collect();
        let expected: Vec<String> = (0..50).map(|i| i.to_string()).collect();
        assert_eq!(contents, expected);
        client.disconnect().await;
    });
}

// ------------------------------------------------------------ channel events

#[test]
fn events_via_send_event_reach_the_group() {
    let f = fixture();
    block_on(async {
        let mut r1 = connect(&f.server, "/room/r1/", "t-alice").await;
        let mut r2 = connect(&f.server, "/room/r2/", "t-bob").await;
        Worker::send_event(
            &f.layer,
            "room_r1",
            &Ev::Notify {
                content: "hello r1".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            r1.receive_all_json().await.unwrap(),
            [json!({"action": "notified", "payload": {"content": "hello r1"}})]
        );
        // Through the server's own layer handle as well.
        Worker::send_event(
            f.server.layer(),
            "room_r1",
            &Ev::Notify {
                content: "via server".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            r1.receive_all_json().await.unwrap(),
            [json!({"action": "notified", "payload": {"content": "via server"}})]
        );
        // Other groups see nothing.
        assert!(r2.receive_nothing(Duration::from_millis(100)).await);
        r1.disconnect().await;
        r2.disconnect().await;
    });
}

#[test]
fn send_event_blocking_from_a_plain_thread() {
    let f = fixture();
    block_on(async {
        let mut client = connect(&f.server, "/room/r1/", "t-alice").await;
        let layer = f.layer.clone();
        let thread = std::thread::spawn(move || {
            Worker::send_event_blocking(
                &layer,
                "room_r1",
                &Ev::Notify {
                    content: "from a thread".into(),
                },
            )
        });
        thread.join().unwrap().unwrap();
        assert_eq!(
            client.receive_all_json().await.unwrap(),
            [json!({"action": "notified", "payload": {"content": "from a thread"}})]
        );
        client.disconnect().await;
    });
}

#[test]
fn event_with_unknown_handler_only_completes() {
    let f = fixture();
    block_on(async {
        let mut client = connect(&f.server, "/room/r1/", "t-alice").await;
        let event =
            LayerMessage::event(&json!({"handler": "no_such_handler", "payload": {"x": 1}}))
                .unwrap();
        f.layer
            .group_send("room_r1", Arc::new(event))
            .await
            .unwrap();
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action": "complete", "payload": null})
        );
        assert!(client.receive_nothing(Duration::from_millis(100)).await);
        // Still alive.
        client.send_json(&echo("ok")).await.unwrap();
        assert_eq!(client.receive_all_json().await.unwrap(), [echo("ok")]);
        client.disconnect().await;
    });
}

#[test]
fn event_handler_error_only_completes() {
    let f = fixture();
    block_on(async {
        let mut client = connect(&f.server, "/room/r1/", "t-alice").await;
        Worker::send_event(&f.layer, "room_r1", &Ev::Explode)
            .await
            .unwrap();
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action": "complete", "payload": null})
        );
        assert!(client.receive_nothing(Duration::from_millis(100)).await);
        client.send_json(&echo("ok")).await.unwrap();
        assert_eq!(client.receive_all_json().await.unwrap(), [echo("ok")]);
        client.disconnect().await;
    });
}

// ------------------------------------------------------ lifecycle and groups

#[test]
fn post_authentication_sends_welcome_after_the_auth_frame() {
    let f = fixture();
    block_on(async {
        let mut client = TestClient::builder(&f.server, "/welcome/")
            .header("authorization", "Token t-alice")
            .connect()
            .await
            .unwrap();
        let first = client.receive_json().await.unwrap();
        assert_eq!(first["action"], "authentication");
        assert_eq!(first["payload"]["status_code"], 200);
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action": "welcome", "payload": {"user": "alice", "groups": ["lobby"]}})
        );
        client.disconnect().await;
    });
}

#[test]
fn post_authentication_does_not_run_for_a_failed_connection() {
    let f = fixture();
    block_on(async {
        let mut client = TestClient::connect(&f.server, "/welcome/").await.unwrap();
        assert_eq!(client.wait_for_auth().await.unwrap()["status_code"], 401);
        match client.receive_within(Duration::from_secs(2)).await.unwrap() {
            WsMessage::Close(Some((4401, _))) => {}
            other => panic!("expected close 4401, got {other:?}"),
        }
    });
}

#[test]
fn build_groups_uses_path_params() {
    let f = fixture();
    block_on(async {
        let mut a = connect(&f.server, "/room/red/", "t-alice").await;
        let mut b = connect(&f.server, "/room/red/", "t-bob").await;
        let mut c = connect(&f.server, "/room/blue/", "t-bob").await;
        assert_eq!(f.layer.group_size("room_red"), 2);
        assert_eq!(f.layer.group_size("room_blue"), 1);
        assert_eq!(f.layer.group_size("lobby"), 0);
        a.send_json(&json!({"action": "mine", "payload": {"content": "to red"}}))
            .await
            .unwrap();
        assert_eq!(a.receive_all_json().await.unwrap(), Vec::<Value>::new());
        let got = b.receive_all_group().await.unwrap();
        assert_eq!(
            got,
            [
                json!({"action": "chat", "payload": {"content": "to red"}, "is_mine": false, "is_current": false})
            ]
        );
        assert!(c.receive_nothing(Duration::from_millis(100)).await);
        assert!(a.receive_nothing(Duration::from_millis(50)).await);
        for client in [a, b, c] {
            client.disconnect().await;
        }
    });
}

#[test]
fn on_disconnect_runs_when_the_client_disconnects() {
    let f = fixture();
    block_on(async {
        let client = connect(&f.server, "/room/r1/", "t-alice").await;
        assert!(!f.probe.disconnected.load(Ordering::SeqCst));
        client.disconnect().await;
    });
    assert!(f.probe.disconnected.load(Ordering::SeqCst));
    assert_eq!(f.probe.disconnects.load(Ordering::SeqCst), 1);
}

#[test]
fn group_message_to_explicit_groups_including_the_sender() {
    let f = fixture();
    block_on(async {
        let mut alice = connect(&f.server, "/room/r1/", "t-alice").await;
        let mut alice2 = connect(&f.server, "/room/r1/", "t-alice2").await;
        let mut bob = connect(&f.server, "/room/r1/", "t-bob").await;
        let mut other = connect(&f.server, "/room/r2/", "t-bob").await;

        alice
            .send_json(&json!({"action": "group", "payload": {
                "content": "hi", "groups": ["room_r1"], "exclude_current": false}}))
            .await
            .unwrap();
        let chat = |mine: bool, current: bool| json!({"action": "chat", "payload": {"content": "hi"}, "is_mine": mine, "is_current": current});
        // The sender's own complete comes first, then its own copy.
        assert_eq!(alice.receive_all_json().await.unwrap(), Vec::<Value>::new());
        assert_eq!(alice.receive_all_group().await.unwrap(), [chat(true, true)]);
        assert_eq!(
            alice2.receive_all_group().await.unwrap(),
            [chat(true, false)]
        );
        assert_eq!(bob.receive_all_group().await.unwrap(), [chat(false, false)]);
        assert!(other.receive_nothing(Duration::from_millis(100)).await);

        // Explicit groups the sender is not in; excluding the sender.
        bob.send_json(&json!({"action": "group", "payload": {
                "content": "cross", "groups": ["room_r2", "room_r1"], "exclude_current": true}}))
            .await
            .unwrap();
        assert_eq!(bob.receive_all_json().await.unwrap(), Vec::<Value>::new());
        let cross = |mine: bool| json!({"action": "chat", "payload": {"content": "cross"}, "is_mine": mine, "is_current": false});
        assert_eq!(other.receive_all_group().await.unwrap(), [cross(true)]);
        assert_eq!(alice.receive_all_group().await.unwrap(), [cross(false)]);
        assert_eq!(alice2.receive_all_group().await.unwrap(), [cross(false)]);
        assert!(bob.receive_nothing(Duration::from_millis(100)).await);
        for client in [alice, alice2, bob, other] {
            client.disconnect().await;
        }
    });
}

#[test]
fn default_group_message_excludes_the_sender() {
    let f = fixture();
    block_on(async {
        let mut alice = connect(&f.server, "/room/r1/", "t-alice").await;
        let mut bob = connect(&f.server, "/room/r1/", "t-bob").await;
        alice
            .send_json(&json!({"action": "mine", "payload": {"content": "yo"}}))
            .await
            .unwrap();
        assert_eq!(alice.receive_all_json().await.unwrap(), Vec::<Value>::new());
        assert!(alice.receive_nothing(Duration::from_millis(100)).await);
        assert_eq!(
            bob.receive_all_group().await.unwrap(),
            [
                json!({"action": "chat", "payload": {"content": "yo"}, "is_mine": false, "is_current": false})
            ]
        );
        alice.disconnect().await;
        bob.disconnect().await;
    });
}

#[test]
fn raw_group_json() {
    let f = fixture();
    block_on(async {
        let mut alice = connect(&f.server, "/room/r1/", "t-alice").await;
        let mut bob = connect(&f.server, "/room/r1/", "t-bob").await;
        alice
            .send_json(&json!({"action": "raw", "payload": {"content": "plain"}}))
            .await
            .unwrap();
        assert_eq!(alice.receive_all_json().await.unwrap(), Vec::<Value>::new());
        assert_eq!(
            bob.receive_all_group().await.unwrap(),
            [
                json!({"raw": "plain", "nested_key": {"inner_key": 1}, "is_mine": false, "is_current": false})
            ]
        );
        assert!(alice.receive_nothing(Duration::from_millis(100)).await);
        alice.disconnect().await;
        bob.disconnect().await;
    });
}

#[test]
fn groups_are_left_on_disconnect() {
    let f = fixture();
    block_on(async {
        let a = connect(&f.server, "/room/r9/", "t-alice").await;
        let b = connect(&f.server, "/room/r9/", "t-bob").await;
        assert_eq!(f.layer.group_size("room_r9"), 2);
        assert_eq!(f.layer.channel_count(), 2);
        a.disconnect().await;
        assert_eq!(f.layer.group_size("room_r9"), 1);
        assert_eq!(f.layer.channel_count(), 1);
        b.disconnect().await;
        assert_eq!(f.layer.group_size("room_r9"), 0);
        assert_eq!(f.layer.channel_count(), 0);
    });
}

#[test]
fn dropping_the_client_cleans_up_too() {
    let f = fixture();
    block_on(async {
        let a = connect(&f.server, "/room/r8/", "t-alice").await;
        assert_eq!(f.layer.group_size("room_r8"), 1);
        drop(a);
    });
    assert_eq!(f.layer.group_size("room_r8"), 0);
    assert_eq!(f.layer.channel_count(), 0);
    assert_eq!(f.server.shutdown().active_connections(), 0);
}

// ------------------------------------------------------------------ camelize

#[test]
fn camelize_endpoint() {
    let f = fixture();
    block_on(async {
        let mut client = TestClient::connect(&f.server, "/camel/").await.unwrap();
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action": "authentication", "payload": {"statusCode": 200, "statusText": "OK", "data": {"detail": "OK"}}})
        );
        client
            .send_json(&json!({"action": "set_name", "payload": {"userName": "Ann"}}))
            .await
            .unwrap();
        assert_eq!(
            client.receive_all_json().await.unwrap(),
            [json!({"action": "name_set", "payload": {"userName": "Ann", "isOk": true}})]
        );
        // snake_case keys are accepted as well.
        client
            .send_json(&json!({"action": "set_name", "payload": {"user_name": "Bo"}}))
            .await
            .unwrap();
        assert_eq!(
            client.receive_all_json().await.unwrap(),
            [json!({"action": "name_set", "payload": {"userName": "Bo", "isOk": true}})]
        );
        // Group relays are camelized, values untouched.
        client
            .send_json(&json!({"action": "group", "payload": {
                "content": "snake_value", "groups": ["lobby"], "excludeCurrent": false}}))
            .await
            .unwrap();
        assert_eq!(
            client.receive_all_json().await.unwrap(),
            Vec::<Value>::new()
        );
        assert_eq!(
            client.receive_all_group().await.unwrap(),
            [
                json!({"action": "chat", "payload": {"content": "snake_value"}, "isMine": false, "isCurrent": true})
            ]
        );
        client.disconnect().await;
    });
}

// ------------------------------------------------------------------ shutdown

#[test]
fn shutdown_closes_clients_with_1001_and_graceful_waits_for_them() {
    let f = fixture();
    block_on(async {
        let mut a = connect(&f.server, "/room/r1/", "t-alice").await;
        let mut b = connect(&f.server, "/quiet/r1/", "t-bob").await;
        let shutdown = f.server.shutdown().clone();
        assert_eq!(shutdown.active_connections(), 2);

        // A handler is in progress when shutdown starts: it finishes first.
        a.send_json(&json!({"action": "slow", "payload": {"content": "last"}}))
            .await
            .unwrap();
        assert!(a.receive_nothing(Duration::from_millis(30)).await);

        let graceful = shutdown.graceful();
        futures_util::pin_mut!(graceful);
        assert!(graceful.as_mut().now_or_never().is_none(), "clients alive");
        assert!(shutdown.is_triggered());
        assert!(matches!(
            TestClient::connect(&f.server, "/room/r1/").await,
            Err(TestError::Refused(Refusal::ShuttingDown))
        ));

        assert_eq!(
            a.receive_json().await.unwrap(),
            json!({"action": "slow", "payload": {"content": "last"}})
        );
        assert_eq!(a.expect_close().await.unwrap(), Some(1001));
        assert_eq!(b.expect_close().await.unwrap(), Some(1001));
        a.disconnect().await;
        b.disconnect().await;
        within(2, graceful).await;
        assert_eq!(shutdown.active_connections(), 0);
    });
    assert_eq!(f.layer.channel_count(), 0);
    assert_eq!(f.layer.group_size("room_r1"), 0);
    assert_eq!(f.probe.disconnects.load(Ordering::SeqCst), 2);
}

#[test]
fn graceful_completes_while_clients_are_driven_concurrently() {
    let f = fixture();
    block_on(async {
        let mut a = connect(&f.server, "/room/r1/", "t-alice").await;
        let shutdown = f.server.shutdown().clone();
        let client_side = async move {
            let code = a.expect_close().await.unwrap();
            a.disconnect().await;
            code
        };
        let ((), code) = within(
            3,
            futures_util::future::join(shutdown.graceful(), client_side),
        )
        .await;
        assert_eq!(code, Some(1001));
    });
}
