#![allow(clippy::unwrap_used, missing_docs)]
//! What handlers read of the upgrade request once the connection is open
//! (the connection keeps it packed and rebuilds it when read): headers,
//! cookies, the query, path parameters and the request id.

use chanx::layer::InMemoryLayer;
use chanx::routing::{RouteTable, path};
use chanx::testing::{TestClient, TestServer};
use chanx::{Consumer, Context, Endpoint, HandlerResult, NoEvent, NoGroupMessage, Server};
use futures_executor::block_on;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Ask {
    Describe,
}

#[derive(Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Answer {
    Described {
        path: String,
        query: Option<String>,
        agent: Option<String>,
        session: Option<String>,
        room: Option<String>,
        request_id: String,
    },
}

#[derive(Default)]
struct Describer;

impl Consumer for Describer {
    type Incoming = Ask;
    type Outgoing = Answer;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, _: Ask) -> HandlerResult {
        let handshake = ctx.handshake();
        let answer = Answer::Described {
            path: handshake.path.clone(),
            query: handshake.query.clone(),
            agent: handshake.header("user-agent").map(str::to_owned),
            session: handshake.cookie("sessionid").map(str::to_owned),
            room: ctx.param("room").map(str::to_owned),
            request_id: ctx.request_id().to_owned(),
        };
        ctx.send_message(&answer).await?;
        Ok(())
    }
}

fn server() -> TestServer {
    let endpoint = Endpoint::builder(Describer::default).build().unwrap();
    let routes = RouteTable::new([path("ws/<str:room>/", endpoint)]).unwrap();
    TestServer::new(Server::new(routes, InMemoryLayer::new()))
}

async fn describe(client: &mut TestClient) -> serde_json::Value {
    client
        .send_json(&json!({"action": "describe"}))
        .await
        .unwrap();
    client.receive_json().await.unwrap()["payload"].take()
}

#[test]
fn handlers_read_the_upgrade_request_on_every_message() {
    block_on(async {
        let server = server();
        let mut client = TestClient::builder(&server, "/ws/lobby/?token=a%20b")
            .header("user-agent", "probe/1.0")
            .header("x-request-id", "trace-7")
            .cookie("sessionid", "xyz")
            .connect()
            .await
            .unwrap();
        client.assert_authenticated().await.unwrap();
        let expected = json!({
            "path": "/ws/lobby/",
            "query": "token=a%20b",
            "agent": "probe/1.0",
            "session": "xyz",
            "room": "lobby",
            "request_id": "trace-7",
        });
        // The first read rebuilds the handshake; the next ones keep it.
        assert_eq!(describe(&mut client).await, expected);
        assert_eq!(describe(&mut client).await, expected);
    });
}

#[test]
fn a_connection_without_a_usable_request_id_gets_one_of_its_own() {
    block_on(async {
        let server = server();
        for sent in [None, Some("has spaces")] {
            let mut builder = TestClient::builder(&server, "/ws/lobby/");
            if let Some(id) = sent {
                builder = builder.header("x-request-id", id);
            }
            let mut client = builder.connect().await.unwrap();
            client.assert_authenticated().await.unwrap();
            let first = describe(&mut client).await["request_id"].take();
            let id = first.as_str().unwrap();
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
            let again = describe(&mut client).await["request_id"].take();
            assert_eq!(again, first, "one id for the whole connection");
        }
    });
}
