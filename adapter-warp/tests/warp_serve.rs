//! The endpoints under `warp::serve` (the workspace's suite covers
//! `chanx_warp::serve`): the upgrade is done on hyper there too, and a bad
//! handshake gets axum's answer.

use chanx::routing::{RouteTable, path};
use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};
use futures_util::{SinkExt, StreamExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Incoming {
    Echo(String),
}

#[derive(Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Outgoing {
    Echo(String),
}

#[derive(Default)]
struct EchoConsumer;

impl Consumer for EchoConsumer {
    type Incoming = Incoming;
    type Outgoing = Outgoing;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn receive_message(
        &mut self,
        ctx: &mut Context<'_, Self>,
        message: Incoming,
    ) -> HandlerResult {
        let Incoming::Echo(text) = message;
        ctx.send_message(&Outgoing::Echo(text)).await?;
        Ok(())
    }
}

#[tokio::test]
async fn an_endpoint_answers_under_warp_serve() -> Result<(), Box<dyn std::error::Error>> {
    let echo = chanx::Endpoint::builder(EchoConsumer::default).build()?;
    let server = chanx::Server::new(
        RouteTable::new([path("ws/echo/", echo)])?,
        chanx::layer::InMemoryLayer::new(),
    );
    let listener = chanx_warp::listener("127.0.0.1:0".parse()?)?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        warp::serve(chanx_warp::websockets(server))
            .incoming(listener)
            .run(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/echo/")).await?;
    // The authentication frame, then the echo.
    let first = socket.next().await.ok_or("closed")??;
    assert!(first.to_text()?.contains("authentication"), "{first:?}");
    socket
        .send(Message::text(r#"{"action":"echo","payload":"hi"}"#))
        .await?;
    let reply = socket.next().await.ok_or("closed")??;
    assert_eq!(reply.to_text()?, r#"{"action":"echo","payload":"hi"}"#);

    // No Sec-WebSocket-Key: 400 with axum's text, not warp's 500.
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            b"GET /ws/echo/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
              Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await?;
    let mut answer = vec![0; 512];
    let read = stream.read(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    Ok(())
}
