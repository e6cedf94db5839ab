//! Topics in process, with the test client: authorisation with permission
//! building blocks, hooks, pushes and broadcasts from outside, camelize,
//! and unsubscribe hooks when the connection ends.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};

use chanx::auth::{AllowAny, AnonymousAuthentication, DenyAll};
use chanx::routing::{RouteTable, path};
use chanx::testing::{TestClient, TestServer};
use chanx::topic::{Topic, TopicContext, TopicRequestInfo};
use chanx::{Consumer, Context, Endpoint, HandlerResult, NoEvent, NoGroupMessage, NoOutgoing};
use futures_executor::block_on;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Deserialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Own {
    Hello,
}

#[derive(Default)]
struct Plain;

impl Consumer for Plain {
    type Incoming = Own;
    type Outgoing = NoOutgoing;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn receive_message(&mut self, _: &mut Context<'_, Self>, _: Own) -> HandlerResult {
        Ok(())
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum FeedIn {
    Post { long_text: String },
}

#[derive(Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum FeedOut {
    Snapshot { item_count: u32 },
    Posted { long_text: String },
}

/// Records its hooks; only `feed:open_*` topics may be subscribed to.
#[derive(Clone, Default)]
struct FeedTopic {
    log: Arc<Mutex<Vec<String>>>,
}

impl FeedTopic {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Topic for FeedTopic {
    const PATTERN: &'static str = "feed:{name}";
    type Incoming = FeedIn;
    type Outgoing = FeedOut;

    async fn authorize(&self, request: &TopicRequestInfo<'_>) -> bool {
        request
            .param("name")
            .is_some_and(|n| n.starts_with("open_"))
    }

    async fn on_subscribe(&self, ctx: &mut TopicContext<'_, Self>) -> HandlerResult {
        self.log
            .lock()
            .unwrap()
            .push(format!("subscribe {}", ctx.topic()));
        ctx.push(&FeedOut::Snapshot { item_count: 3 }).await?;
        Ok(())
    }

    async fn on_unsubscribe(&self, ctx: &mut TopicContext<'_, Self>) -> HandlerResult {
        self.log
            .lock()
            .unwrap()
            .push(format!("unsubscribe {}", ctx.topic()));
        Ok(())
    }

    async fn receive(&self, ctx: &mut TopicContext<'_, Self>, message: FeedIn) -> HandlerResult {
        let FeedIn::Post { long_text } = message;
        ctx.broadcast(&FeedOut::Posted { long_text }).await?;
        Ok(())
    }
}

fn server(feed: FeedTopic, camelize: bool) -> TestServer {
    let open = Endpoint::builder(Plain::default)
        .authenticator(AnonymousAuthentication)
        .permission(AllowAny)
        .camelize(camelize)
        .topic(feed.clone())
        .build()
        .unwrap();
    let locked = Endpoint::builder(Plain::default)
        .authenticator(AnonymousAuthentication)
        .permission(AllowAny)
        .topic_with_permission(feed, DenyAll)
        .build()
        .unwrap();
    let routes = RouteTable::new([path("open/", open), path("locked/", locked)]).unwrap();
    TestServer::new(chanx::Server::new(
        routes,
        chanx::layer::InMemoryLayer::new(),
    ))
}

#[test]
fn authorisation_refuses_with_the_envelope() {
    block_on(async {
        let server = server(FeedTopic::default(), false);
        let mut client = TestClient::connect(&server, "/open/").await.unwrap();
        client.assert_authenticated().await.unwrap();
        assert_eq!(
            client.subscribe("feed:secret").await.unwrap(),
            json!({"action": "error", "payload": {"reason": "unauthorized", "detail": "Not allowed to subscribe to 'feed:secret'"},
                   "version": 1, "topic": "feed:secret", "ref": "1"})
        );
        // The permission given at mounting is checked first.
        let mut locked = TestClient::connect(&server, "/locked/").await.unwrap();
        locked.assert_authenticated().await.unwrap();
        let refused = locked.subscribe("feed:open_news").await.unwrap();
        assert_eq!(refused["payload"]["reason"], "unauthorized");
    });
}

#[test]
fn on_subscribe_pushes_after_subscribed_and_hooks_run_on_disconnect() {
    block_on(async {
        let feed = FeedTopic::default();
        let server = server(feed.clone(), false);
        let mut client = TestClient::connect(&server, "/open/").await.unwrap();
        client.assert_authenticated().await.unwrap();
        assert_eq!(
            client.subscribe("feed:open_a").await.unwrap()["action"],
            "subscribed"
        );
        assert_eq!(
            client.receive_topic("feed:open_a").await.unwrap(),
            json!({"action": "snapshot", "payload": {"item_count": 3}, "version": 1, "topic": "feed:open_a"})
        );
        client.subscribe("feed:open_b").await.unwrap();
        client.receive_topic("feed:open_b").await.unwrap();
        client.unsubscribe("feed:open_a").await.unwrap();
        // Close: the remaining subscription's hook runs.
        client
            .send(chanx::WsMessage::Close(Some((1000, String::new()))))
            .unwrap();
        let _ = client
            .receive_within(std::time::Duration::from_secs(2))
            .await;
        let mut log = Vec::new();
        for _ in 0..50 {
            log = feed.log();
            if log.len() == 4 {
                break;
            }
            futures_timer::Delay::new(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            log,
            [
                "subscribe feed:open_a",
                "subscribe feed:open_b",
                "unsubscribe feed:open_a",
                "unsubscribe feed:open_b"
            ]
        );
    });
}

#[test]
fn broadcasts_from_handlers_and_from_outside_reach_every_subscriber_camelized() {
    block_on(async {
        let server = server(FeedTopic::default(), true);
        let mut a = TestClient::connect(&server, "/open/").await.unwrap();
        let mut b = TestClient::connect(&server, "/open/").await.unwrap();
        for client in [&mut a, &mut b] {
            // Camelized: `statusCode`.
            let auth = client.receive_json().await.unwrap();
            assert_eq!(auth["payload"]["statusCode"], 200);
            client.subscribe("feed:open_x").await.unwrap();
            client.receive_topic("feed:open_x").await.unwrap();
        }
        // Incoming keys are decamelized, outgoing camelized, envelope too.
        a.send_topic(
            "feed:open_x",
            &json!({"action": "post", "payload": {"longText": "hi"}}),
        )
        .await
        .unwrap();
        let posted = json!({"action": "posted", "payload": {"longText": "hi"}, "version": 1, "topic": "feed:open_x"});
        assert_eq!(b.receive_topic("feed:open_x").await.unwrap(), posted);
        assert_eq!(a.receive_topic("feed:open_x").await.unwrap(), posted);

        // From outside a connection, typed by the topic's outgoing set.
        let outside = FeedOut::Posted {
            long_text: "from a task".into(),
        };
        FeedTopic::broadcast(server.server().layer().as_ref(), "feed:open_x", &outside)
            .await
            .unwrap();
        let expected = json!({"action": "posted", "payload": {"longText": "from a task"}, "version": 1, "topic": "feed:open_x"});
        assert_eq!(b.receive_topic("feed:open_x").await.unwrap(), expected);

        // A topic the type does not serve is an error, not a silent loss.
        let astray =
            FeedTopic::broadcast(server.server().layer().as_ref(), "fed:typo", &outside).await;
        assert!(matches!(astray, Err(chanx::SendError::UnknownTopic(t)) if t == "fed:typo"));
    });
}

/// A topic type on its own route: the path names the topic, frames carry
/// no envelope, and broadcasts reach route and envelope subscribers alike.
#[test]
fn a_topic_on_its_own_route_needs_no_envelope() {
    block_on(async {
        let feed = FeedTopic::default();
        let own = chanx::topic::route(feed.clone())
            .authenticator(AnonymousAuthentication)
            .permission(AllowAny)
            .build()
            .unwrap();
        let open = Endpoint::builder(Plain::default)
            .authenticator(AnonymousAuthentication)
            .permission(AllowAny)
            .topic(feed.clone())
            .build()
            .unwrap();
        let routes = RouteTable::new([
            chanx::routing::re_path(r"^feeds/(?P<name>\w+)/$", own),
            path("open/", open),
        ])
        .unwrap();
        let server = TestServer::new(chanx::Server::new(
            routes,
            chanx::layer::InMemoryLayer::new(),
        ));

        let mut routed = TestClient::connect(&server, "/feeds/open_r/")
            .await
            .unwrap();
        routed.assert_authenticated().await.unwrap();
        // on_subscribe's push, without envelope.
        assert_eq!(
            routed.receive_json().await.unwrap(),
            json!({"action": "snapshot", "payload": {"item_count": 3}})
        );
        let mut enveloped = TestClient::connect(&server, "/open/").await.unwrap();
        enveloped.assert_authenticated().await.unwrap();
        enveloped.subscribe("feed:open_r").await.unwrap();
        enveloped.receive_topic("feed:open_r").await.unwrap();

        routed
            .send_json(&json!({"action": "post", "payload": {"long_text": "bare"}}))
            .await
            .unwrap();
        assert_eq!(
            routed.receive_json().await.unwrap(),
            json!({"action": "posted", "payload": {"long_text": "bare"}})
        );
        assert_eq!(
            enveloped.receive_topic("feed:open_r").await.unwrap(),
            json!({"action": "posted", "payload": {"long_text": "bare"}, "version": 1, "topic": "feed:open_r"})
        );

        // The route takes no envelope frames: a subscribe past the route
        // goes to the topic's handler, which refuses it as a message.
        routed
            .send_json(&json!({"version": 1, "topic": "feed:open_other", "action": "subscribe"}))
            .await
            .unwrap();
        let refused_frame = routed.receive_json().await.unwrap();
        assert_eq!(refused_frame["action"], "error", "{refused_frame}");
        assert!(refused_frame.get("topic").is_none(), "{refused_frame}");

        // A topic the type refuses closes the connection with 4403.
        let mut refused = TestClient::connect(&server, "/feeds/secret/")
            .await
            .unwrap();
        refused.assert_authenticated().await.unwrap();
        let closed = refused.receive_json().await;
        assert!(
            matches!(
                &closed,
                Err(chanx::testing::TestError::Closed(Some((4403, _))))
            ),
            "{closed:?}"
        );
        assert!(feed.log().contains(&"subscribe feed:open_r".to_owned()));
    });
}
