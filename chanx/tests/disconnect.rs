#![allow(clippy::unwrap_used, missing_docs)]
//! `on_disconnect` runs once the connection's groups are left in the
//! channel layer itself, not only in the connection's own bookkeeping.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use chanx::layer::InMemoryLayer;
use chanx::routing::{RouteTable, path};
use chanx::testing::{TestClient, TestServer};
use chanx::{Consumer, Context, Endpoint, HandlerResult, NoEvent, NoGroupMessage, Server};
use futures_executor::block_on;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum In {
    Leave,
}

static LAYER: OnceLock<InMemoryLayer> = OnceLock::new();
/// The size of `room` that `on_disconnect` saw, plus one (0: not run).
static SEEN: AtomicUsize = AtomicUsize::new(0);

#[derive(Default)]
struct Member;

impl Consumer for Member {
    type Incoming = In;
    type Outgoing = chanx::NoOutgoing;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn build_groups(&mut self, _ctx: &Context<'_, Self>) -> Vec<String> {
        vec!["room".into()]
    }

    async fn receive_message(
        &mut self,
        ctx: &mut Context<'_, Self>,
        _message: In,
    ) -> HandlerResult {
        ctx.close(4000).await?;
        Ok(())
    }

    async fn on_disconnect(&mut self, _ctx: &Context<'_, Self>) {
        let size = LAYER
            .get()
            .map_or(usize::MAX, |layer| layer.group_size("room"));
        SEEN.store(size + 1, Ordering::SeqCst);
    }
}

#[test]
fn on_disconnect_sees_the_groups_left_in_the_layer() {
    block_on(async {
        let layer = LAYER.get_or_init(InMemoryLayer::new).clone();
        let endpoint = Endpoint::builder(Member::default).build().unwrap();
        let routes = RouteTable::new([path("room/", endpoint)]).unwrap();
        let server = TestServer::new(Server::new(routes, layer.clone()));
        let mut stays = TestClient::connect(&server, "/room/").await.unwrap();
        stays.assert_authenticated().await.unwrap();
        let mut leaves = TestClient::connect(&server, "/room/").await.unwrap();
        leaves.assert_authenticated().await.unwrap();
        assert_eq!(layer.group_size("room"), 2);
        leaves
            .send_json(&serde_json::json!({"action": "leave"}))
            .await
            .unwrap();
        assert_eq!(leaves.expect_close().await.unwrap(), Some(4000));
        // Drive the server until the hook has run.
        while SEEN.load(Ordering::SeqCst) == 0 {
            let _ = stays
                .receive_nothing(std::time::Duration::from_millis(10))
                .await;
        }
        assert_eq!(
            SEEN.load(Ordering::SeqCst),
            2,
            "on_disconnect saw 1 member left"
        );
    });
}
