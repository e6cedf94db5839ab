//! chanx-client against a real chanx server on axum, over loopback.
#![allow(clippy::unwrap_used, missing_docs)]

use chanx::auth::{AllowAny, AnonymousAuthentication, DenyAll};
use chanx::routing::{RouteTable, path};
use chanx::{Consumer, Context, Endpoint, HandlerResult, NoEvent};
use chanx_client::{Connector, Error, ErrorPayload, Frame};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum In {
    Echo { content: String },
    Shout { content: String },
}

#[derive(Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Out {
    Echo { content: String },
}

#[derive(Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Room {
    Shouted { content: String },
}

#[derive(Default)]
struct Hall;

impl Consumer for Hall {
    type Incoming = In;
    type Outgoing = Out;
    type Event = NoEvent;
    type GroupMessage = Room;

    async fn build_groups(&mut self, _: &Context<'_, Self>) -> Vec<String> {
        vec!["hall".into()]
    }

    async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, message: In) -> HandlerResult {
        match message {
            In::Echo { content } => ctx.send_message(&Out::Echo { content }).await?,
            In::Shout { content } => ctx.send_group_message(&Room::Shouted { content }).await?,
        }
        Ok(())
    }
}

async fn serve() -> String {
    let hall = Endpoint::builder(Hall::default)
        .authenticator(AnonymousAuthentication)
        .permission(AllowAny)
        .build()
        .unwrap();
    let closed = Endpoint::builder(Hall::default)
        .authenticator(AnonymousAuthentication)
        .permission(DenyAll)
        .build()
        .unwrap();
    let routes = RouteTable::new([path("hall/", hall), path("closed/", closed)]).unwrap();
    let server = chanx::Server::new(routes, chanx::layer::InMemoryLayer::new());
    let app = axum::Router::new().chanx(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(chanx_axum::serve(
        listener,
        app,
        chanx_axum::ServeLimits::default(),
        std::future::pending(),
    ));
    format!("ws://{addr}")
}

use chanx_axum::RouterExt as _;

type HallClient = chanx_client::Client<In, Out, Room>;

async fn join(base: &str) -> HallClient {
    Connector::new(format!("{base}/hall/"))
        .header("X-Request-ID", "client-test")
        .connect_with_groups()
        .await
        .unwrap()
}

#[tokio::test]
async fn typed_messages_group_messages_and_errors() {
    let base = serve().await;
    let mut alice = join(&base).await;
    let mut bob = join(&base).await;
    assert_eq!(alice.authentication().map(|a| a.status_code), Some(200));

    alice
        .send(&In::Echo {
            content: "hi".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        alice.recv_message().await.unwrap(),
        Out::Echo {
            content: "hi".into()
        }
    );

    alice
        .send(&In::Shout {
            content: "all".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        bob.recv().await.unwrap(),
        Frame::Group {
            message: Room::Shouted {
                content: "all".into()
            },
            is_mine: false,
            is_current: false,
        }
    );

    alice
        .send_raw_json(&serde_json::json!({"action": "echo", "payload": {}}))
        .await
        .unwrap();
    let Err(Error::ErrorFrame(ErrorPayload::Invalid(problems))) = alice.recv_message().await else {
        panic!("a validation error");
    };
    assert_eq!(problems[0].kind, "missing");

    assert!(alice.ping().await.is_ok());
    assert_eq!(alice.close().await.unwrap(), Some(1000));
    drop(bob);
}

#[tokio::test]
async fn refusals_are_typed() {
    let base = serve().await;
    let refused = Connector::new(format!("{base}/nowhere/"))
        .connect::<In, Out>()
        .await;
    assert!(
        matches!(refused, Err(Error::Refused { status: 404 })),
        "{refused:?}"
    );

    let denied = Connector::new(format!("{base}/closed/"))
        .connect::<In, Out>()
        .await;
    let Err(Error::Authentication(result)) = denied else {
        panic!("authentication refused: {denied:?}");
    };
    assert_eq!(result.status_code, 403);

    let bad = Connector::new(format!("{base}/hall/"))
        .header("bad header", "x")
        .connect::<In, Out>()
        .await;
    assert!(matches!(bad, Err(Error::InvalidRequest(_))), "{bad:?}");
}
