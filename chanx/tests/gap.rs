#![allow(clippy::unwrap_used, missing_docs)]
//! A layer's gap notice reaches the consumer's `on_gap` hook, and the
//! client when the endpoint sends gap frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chanx::layer::{ChannelLayer, InMemoryLayer};
use chanx::proto::LayerMessage;
use chanx::routing::{RouteTable, path};
use chanx::testing::{TestClient, TestServer};
use chanx::{Consumer, Context, Endpoint, HandlerResult, NoEvent, NoGroupMessage, Server};
use futures_executor::block_on;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum In {
    Echo { content: String },
}

static GAPS: AtomicUsize = AtomicUsize::new(0);

#[derive(Default)]
struct Room;

impl Consumer for Room {
    type Incoming = In;
    type Outgoing = chanx::NoOutgoing;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn build_groups(&mut self, _ctx: &Context<'_, Self>) -> Vec<String> {
        vec!["room".into()]
    }

    async fn receive_message(
        &mut self,
        _ctx: &mut Context<'_, Self>,
        _message: In,
    ) -> HandlerResult {
        Ok(())
    }

    async fn on_gap(&mut self, ctx: &mut Context<'_, Self>, group: &str) -> HandlerResult {
        GAPS.fetch_add(1, Ordering::SeqCst);
        ctx.send_raw_json(&json!({"action": "resync", "payload": {"group": group}}))
            .await?;
        Ok(())
    }
}

#[test]
fn a_gap_notice_runs_the_hook_and_tells_the_client() {
    block_on(async {
        let layer = InMemoryLayer::new();
        let endpoint = Endpoint::builder(Room::default)
            .send_gap_frames(true)
            .build()
            .unwrap();
        let routes = RouteTable::new([path("room/", endpoint)]).unwrap();
        let server = TestServer::new(Server::new(routes, layer.clone()));
        let mut client = TestClient::connect(&server, "/room/").await.unwrap();
        client.assert_authenticated().await.unwrap();
        layer
            .group_send("room", Arc::new(LayerMessage::gap("room")))
            .await
            .unwrap();
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action": "group_gap", "payload": {"group": "room"}})
        );
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action": "resync", "payload": {"group": "room"}})
        );
        assert_eq!(GAPS.load(Ordering::SeqCst), 1);
    });
}
