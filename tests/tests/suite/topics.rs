//! Rooms over one socket: topics on the quickstart's RoomsConsumer
//! (docs/topics.md; docs/quick-start.md, "The quickstart program's
//! interface"), over real sockets on every adapter.

use chanx_e2e::{Adapter, Client, Running, http, shared};
use serde_json::{Value, json};

use super::{assert_echoes, assert_quiet, error_frame};

/// The rooms endpoint.
pub(crate) const ROOMS: &str = "/ws/myapp/rooms/";

/// A topic request frame.
fn on(topic: &str, reference: &str, action: &str) -> Value {
    json!({"version": 1, "topic": topic, "ref": reference, "action": action})
}

/// `on(...)` with a payload.
fn on_with(topic: &str, reference: &str, action: &str, payload: Value) -> Value {
    let mut frame = on(topic, reference, action);
    frame["payload"] = payload;
    frame
}

/// A confirmation frame (`subscribed`, `unsubscribed`, `sent`, `pong`).
fn reply(action: &str, topic: &str, reference: &str) -> Value {
    json!({"action": action, "payload": null, "version": 1, "topic": topic, "ref": reference})
}

/// A topic error frame.
fn topic_error(reason: &str, detail: &str, topic: &str, reference: &str) -> Value {
    json!({"action": "error", "payload": {"reason": reason, "detail": detail},
           "version": 1, "topic": topic, "ref": reference})
}

async fn join(server: &Running, user: &str, topics: &[&str]) -> Client {
    let mut client = server.connect_as(ROOMS, user).await;
    for (i, topic) in topics.iter().enumerate() {
        let reference = format!("s{i}");
        client.send_json(&on(topic, &reference, "subscribe")).await;
        assert_eq!(
            client.recv_json().await,
            reply("subscribed", topic, &reference)
        );
    }
    client
}

pub(crate) async fn topic_subscribe_twice_and_unsubscribe(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut alice = join(server, "alice", &["room:t_sub"]).await;
    // Subscribing again confirms again.
    alice.send_json(&on("room:t_sub", "2", "subscribe")).await;
    assert_eq!(
        alice.recv_json().await,
        reply("subscribed", "room:t_sub", "2")
    );
    alice.send_json(&on("room:t_sub", "3", "unsubscribe")).await;
    assert_eq!(
        alice.recv_json().await,
        reply("unsubscribed", "room:t_sub", "3")
    );
    // Unsubscribing when not subscribed is confirmed too.
    alice.send_json(&on("room:t_sub", "4", "unsubscribe")).await;
    assert_eq!(
        alice.recv_json().await,
        reply("unsubscribed", "room:t_sub", "4")
    );
    // And then messages on it are refused.
    let say = on_with("room:t_sub", "5", "echo", json!({"content": "hi"}));
    alice.send_json(&say).await;
    assert_eq!(
        alice.recv_json().await,
        topic_error(
            "not_subscribed",
            "Not subscribed to 'room:t_sub'",
            "room:t_sub",
            "5"
        )
    );
}

pub(crate) async fn topic_messages_are_broadcast_and_replies_carry_the_ref(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut alice = join(server, "alice", &["room:t_a", "room:t_b"]).await;
    let mut bob = join(server, "bob", &["room:t_a"]).await;
    let mut carol = join(server, "carol", &["room:t_b"]).await;

    alice
        .send_json(&on_with(
            "room:t_a",
            "7",
            "echo",
            json!({"content": "hello"}),
        ))
        .await;
    let line = json!({"action": "chat_message", "payload": {"content": "alice: hello"}, "version": 1, "topic": "room:t_a"});
    assert_eq!(bob.recv_json().await, line);
    // The sender gets the broadcast and its `sent` reply, in either order.
    let mut to_alice = vec![alice.recv_json().await, alice.recv_json().await];
    to_alice.sort_by_key(|f| f["action"].as_str().unwrap_or_default().to_owned());
    assert_eq!(to_alice, [line, reply("sent", "room:t_a", "7")]);
    assert_quiet(&mut carol, "a subscriber of another room").await;

    // The built-in ping on a topic answers with the envelope and the ref.
    bob.send_json(&on("room:t_a", "p", "ping")).await;
    assert_eq!(bob.recv_json().await, reply("pong", "room:t_a", "p"));
}

pub(crate) async fn topic_errors_unknown_topic_and_malformed_envelope(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut alice = join(server, "alice", &[]).await;
    for topic in ["chat:x", "room:", "room:a:b", "room:not a word"] {
        alice.send_json(&on(topic, "1", "subscribe")).await;
        assert_eq!(
            alice.recv_json().await,
            topic_error(
                "unknown_topic",
                &format!("Unknown topic '{topic}'"),
                topic,
                "1"
            ),
            "{topic}"
        );
    }
    // A malformed envelope: the validation error, no complete, still open.
    alice
        .send_json(&json!({"version": 1, "topic": "room:x", "ref": 1, "action": "subscribe"}))
        .await;
    assert_eq!(
        alice.recv_json().await,
        error_frame(
            "string_type",
            json!(["ref"]),
            "Input should be a valid string"
        )
    );
    // A frame without `topic` reaches the endpoint's own handlers.
    assert_echoes(&mut alice, "plain").await;
}

pub(crate) async fn topic_subscriptions_are_capped(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut alice = server.connect_as(ROOMS, "alice").await;
    let frames: Vec<String> = (0..101)
        .map(|i| on(&format!("room:t_cap{i}"), &i.to_string(), "subscribe").to_string())
        .collect();
    alice.send_batch(frames).await;
    for i in 0..100 {
        let topic = format!("room:t_cap{i}");
        assert_eq!(
            alice.recv_json().await,
            reply("subscribed", &topic, &i.to_string())
        );
    }
    let refused = alice.recv_json().await;
    assert_eq!(
        refused["payload"]["reason"], "too_many_subscriptions",
        "{refused}"
    );
    assert_eq!(refused["ref"], "100");
}

pub(crate) async fn notify_reaches_room_topic_subscribers(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut alice = join(server, "alice", &["room:t_notify"]).await;
    let reply = http(
        server.addr,
        "POST",
        "/api/notify/t_notify/",
        r#"{"message": "Welcome!", "level": "warning"}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        alice.recv_json().await,
        json!({"action": "notify", "payload": {"content": "WARNING: Welcome!"}, "version": 1, "topic": "room:t_notify"})
    );
}

/// A topic type of the test's own: only `gate:open_*` topics may be
/// subscribed to, and it records its unsubscribe hook.
#[derive(Clone, Default)]
struct GateTopic {
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum GateIn {
    Knock { long_text: String },
}

#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum GateOut {
    Knocked { long_text: String },
}

impl chanx::topic::Topic for GateTopic {
    const PATTERN: &'static str = "gate:{name}";
    type Incoming = GateIn;
    type Outgoing = GateOut;

    async fn authorize(&self, request: &chanx::topic::TopicRequestInfo<'_>) -> bool {
        request
            .param("name")
            .is_some_and(|n| n.starts_with("open_"))
    }

    async fn on_unsubscribe(
        &self,
        ctx: &mut chanx::topic::TopicContext<'_, Self>,
    ) -> chanx::HandlerResult {
        let entry = format!("unsubscribe {}", ctx.topic());
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
        Ok(())
    }

    async fn receive(
        &self,
        ctx: &mut chanx::topic::TopicContext<'_, Self>,
        message: GateIn,
    ) -> chanx::HandlerResult {
        let GateIn::Knock { long_text } = message;
        ctx.reply(&GateOut::Knocked { long_text }).await?;
        Ok(())
    }
}

pub(crate) async fn topic_authorisation_camelize_and_hooks_on_disconnect(adapter: Adapter) {
    use chanx::auth::{AllowAny, AnonymousAuthentication};
    let gate = GateTopic::default();
    let endpoint = chanx::Endpoint::builder(quickstart::consumers::EchoConsumer::default)
        .authenticator(AnonymousAuthentication)
        .permission(AllowAny)
        .camelize(true)
        .topic(gate.clone())
        .build()
        .expect("an endpoint");
    let routes =
        chanx::routing::RouteTable::new([chanx::routing::path("gate/", endpoint)]).expect("routes");
    let layer = chanx::layer::InMemoryLayer::new();
    let server =
        chanx_e2e::start_server(adapter, chanx::Server::new(routes, layer.clone()), layer).await;
    let mut client = server
        .connect_with("/gate/", &[])
        .await
        .open("the gate endpoint");
    assert_eq!(client.recv_json().await["payload"]["statusCode"], 200);

    client.send_json(&on("gate:secret", "1", "subscribe")).await;
    assert_eq!(
        client.recv_json().await,
        topic_error(
            "unauthorized",
            "Not allowed to subscribe to 'gate:secret'",
            "gate:secret",
            "1"
        )
    );
    client.send_json(&on("gate:open_a", "2", "subscribe")).await;
    assert_eq!(
        client.recv_json().await,
        reply("subscribed", "gate:open_a", "2")
    );
    // Camelized both ways; the envelope keys are single words.
    client
        .send_json(&on_with(
            "gate:open_a",
            "3",
            "knock",
            json!({"longText": "hi"}),
        ))
        .await;
    assert_eq!(
        client.recv_json().await,
        json!({"action": "knocked", "payload": {"longText": "hi"}, "version": 1, "topic": "gate:open_a", "ref": "3"})
    );
    client.close().await;
    // The unsubscribe hook runs for the subscription left at disconnect.
    let mut log = Vec::new();
    for _ in 0..250 {
        log = gate.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(log, ["unsubscribe gate:open_a"]);
}
