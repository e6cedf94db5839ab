#![allow(clippy::unwrap_used, missing_docs)]
//! A channel layer that takes its time must not hold up the socket: group
//! sends are performed off the write path, so replies keep flowing while
//! a send is in flight, and the held sends still arrive, in order.

use std::sync::Arc;

use chanx::layer::{ChannelLayer, InMemoryLayer, Inbox, LayerError};
use chanx::proto::LayerMessage;
use chanx::routing::{RouteTable, path};
use chanx::testing::{TestClient, TestServer};
use chanx::{Consumer, Context, Endpoint, HandlerResult, NoEvent, Server};
use futures_executor::block_on;
use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The in-memory layer, except that every group send waits for the gate
/// to let it through.
#[derive(Clone)]
struct GatedLayer {
    inner: InMemoryLayer,
    gate: async_channel::Receiver<()>,
}

impl ChannelLayer for GatedLayer {
    fn new_channel(&self) -> BoxFuture<'_, Result<(String, Inbox), LayerError>> {
        self.inner.new_channel()
    }
    fn group_add<'a>(
        &'a self,
        group: &'a str,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.inner.group_add(group, channel)
    }
    fn group_discard<'a>(
        &'a self,
        group: &'a str,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.inner.group_discard(group, channel)
    }
    fn group_send<'a>(
        &'a self,
        group: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            self.gate.recv().await.map_err(|_| LayerError::Closed)?;
            self.inner.group_send(group, message).await
        })
    }
    fn send<'a>(
        &'a self,
        channel: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.inner.send(channel, message)
    }
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum In {
    Echo { content: String },
    Shout { content: String },
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Out {
    Echo { content: String },
    Shout { content: String },
}

#[derive(Default)]
struct Room;

impl Consumer for Room {
    type Incoming = In;
    type Outgoing = Out;
    type Event = NoEvent;
    type GroupMessage = Out;

    async fn build_groups(&mut self, _ctx: &Context<'_, Self>) -> Vec<String> {
        vec!["room".into()]
    }

    async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, message: In) -> HandlerResult {
        match message {
            In::Echo { content } => ctx.send_message(&Out::Echo { content }).await?,
            In::Shout { content } => {
                ctx.send_group_message_to(&Out::Shout { content }, &["room".to_owned()], false)
                    .await?
            }
        }
        Ok(())
    }
}

#[test]
fn echo_replies_flow_while_a_group_send_waits_for_the_layer() {
    block_on(async {
        let (open_gate, gate) = async_channel::unbounded();
        let layer = GatedLayer {
            inner: InMemoryLayer::new(),
            gate,
        };
        let endpoint = Endpoint::builder(Room::default).build().unwrap();
        let server = TestServer::new(Server::new(
            RouteTable::new([path("room/", endpoint)]).unwrap(),
            layer,
        ));
        let mut client = TestClient::connect(&server, "/room/").await.unwrap();
        client.assert_authenticated().await.unwrap();

        client
            .send_json(&json!({"action": "shout", "payload": {"content": "first"}}))
            .await
            .unwrap();
        client
            .send_json(&json!({"action": "shout", "payload": {"content": "second"}}))
            .await
            .unwrap();
        // Both sends wait at the gate; the echo behind them is answered.
        for n in 0..3 {
            client
                .send_json(&json!({"action": "echo", "payload": {"content": n.to_string()}}))
                .await
                .unwrap();
            assert_eq!(
                client.receive_json().await.unwrap(),
                json!({"action": "echo", "payload": {"content": n.to_string()}})
            );
        }
        // Let the layer go on: the held sends arrive, in the order sent.
        open_gate.send(()).await.unwrap();
        open_gate.send(()).await.unwrap();
        let shout = |content: &str| json!({"action": "shout", "payload": {"content": content}, "is_mine": false, "is_current": true});
        assert_eq!(client.receive_json().await.unwrap(), shout("first"));
        assert_eq!(client.receive_json().await.unwrap(), shout("second"));
    });
}
