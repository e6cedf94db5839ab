//! The accept loop on async-std and on smol, over real sockets, with an
//! async-tungstenite client: an echo, refusals at the handshake, and
//! graceful shutdown.
#![allow(clippy::unwrap_used, missing_docs)]

use std::future::Future;
use std::net::SocketAddr;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::{self, Message};
use chanx::routing::{RouteTable, path};
use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage, Server};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Deserialize, Serialize, schemars::JsonSchema)]
struct MessagePayload {
    content: String,
}

#[derive(Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum EchoIncoming {
    Ping,
    Echo(MessagePayload),
}

#[derive(Serialize, schemars::JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum EchoOutgoing {
    Pong(()),
    Echo(MessagePayload),
}

#[derive(Default)]
struct EchoConsumer;

impl Consumer for EchoConsumer {
    type Incoming = EchoIncoming;
    type Outgoing = EchoOutgoing;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn receive_message(
        &mut self,
        ctx: &mut Context<'_, Self>,
        message: EchoIncoming,
    ) -> HandlerResult {
        match message {
            EchoIncoming::Ping => ctx.send_message(&EchoOutgoing::Pong(())).await?,
            EchoIncoming::Echo(p) => {
                let content = format!("Echo: {}", p.content);
                ctx.send_message(&EchoOutgoing::Echo(MessagePayload { content }))
                    .await?
            }
        }
        Ok(())
    }
}

fn echo_server() -> Server {
    let echo = chanx::Endpoint::builder(EchoConsumer::default)
        .build()
        .unwrap();
    let routes = RouteTable::new([path("ws/echo/", echo)]).unwrap();
    Server::new(routes, chanx::layer::InMemoryLayer::new())
        .origins(chanx::OriginPolicy::allow_list(["http://localhost:8000"]))
}

async fn next_json<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn close_code<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Option<u16> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            _ => return None,
        }
    }
}

/// Upgrades a fresh connection to `path` with extra headers.
async fn upgrade<S, C, F>(
    connect: &C,
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Result<WebSocketStream<S>, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: Fn(SocketAddr) -> F,
    F: Future<Output = S>,
{
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    async_tungstenite::client_async(request, connect(addr).await)
        .await
        .map(|(ws, _)| ws)
}

/// The status and body of a refused upgrade.
fn refusal<S>(result: Result<WebSocketStream<S>, tungstenite::Error>) -> (u16, Value) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            let content_type = response.headers().get("content-type").unwrap();
            assert_eq!(content_type, "application/json");
            (
                response.status().as_u16(),
                serde_json::from_slice(body).unwrap(),
            )
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

/// The whole check, on whichever runtime `connect` and `serving` use:
/// an echo, a 404 and a 403 at the handshake, then graceful shutdown
/// (1001, the accept loop returns, new connections are refused).
async fn echo_refusals_and_shutdown<S, C, F>(
    server: Server,
    addr: SocketAddr,
    connect: C,
    serving: impl Future<Output = ()>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    C: Fn(SocketAddr) -> F,
    F: Future<Output = S>,
{
    let mut ws = upgrade(&connect, addr, "/ws/echo/", &[]).await.unwrap();
    assert_eq!(next_json(&mut ws).await["payload"]["status_code"], 200);
    let echo = json!({"action": "echo", "payload": {"content": "hi"}});
    ws.send(Message::Text(echo.to_string().into()))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut ws).await,
        json!({"action": "echo", "payload": {"content": "Echo: hi"}})
    );

    let (status, body) = refusal(upgrade(&connect, addr, "/ws/nope/", &[]).await);
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"detail": "no WebSocket endpoint at this path"})
    );
    let evil = [("origin", "http://evil.example")];
    let (status, body) = refusal(upgrade(&connect, addr, "/ws/echo/", &evil).await);
    assert_eq!(status, 403);
    assert_eq!(body, json!({"detail": "origin not allowed"}));
    let allowed = [("origin", "http://localhost:8000")];
    let mut other = upgrade(&connect, addr, "/ws/echo/", &allowed)
        .await
        .unwrap();
    assert_eq!(next_json(&mut other).await["payload"]["status_code"], 200);

    let shutdown = server.shutdown().clone();
    let ((), code, other_code, ()) = futures_util::join!(
        shutdown.graceful(),
        close_code(&mut ws),
        close_code(&mut other),
        serving,
    );
    assert_eq!(code, Some(1001));
    assert_eq!(other_code, Some(1001));
    assert_eq!(shutdown.active_connections(), 0);
}

#[async_std::test]
async fn serves_on_async_std() {
    let server = echo_server();
    let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = async_std::task::spawn({
        let server = server.clone();
        async move {
            chanx_async_std::serve(&server, listener, |task| {
                async_std::task::spawn(task);
            })
            .await;
        }
    });
    let connect = |addr| async move { async_std::net::TcpStream::connect(addr).await.unwrap() };
    echo_refusals_and_shutdown(server, addr, connect, serving).await;
    // The listener is gone with the loop.
    assert!(async_std::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn serves_on_smol() {
    smol::block_on(async {
        let server = echo_server();
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = smol::spawn({
            let server = server.clone();
            async move {
                chanx_async_std::serve(&server, listener, |task| smol::spawn(task).detach()).await;
            }
        });
        let connect = |addr| async move { smol::net::TcpStream::connect(addr).await.unwrap() };
        echo_refusals_and_shutdown(server, addr, connect, serving).await;
        assert!(smol::net::TcpStream::connect(addr).await.is_err());
    });
}

/// `Async<std::net::TcpListener>` and a local executor, whose tasks end
/// when it is dropped.
#[test]
fn serves_on_a_smol_executor_with_async_io() {
    let executor = std::sync::Arc::new(smol::Executor::new());
    smol::block_on(executor.run({
        let executor = executor.clone();
        async move {
            let server = echo_server();
            let listener = smol::Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
            let addr = listener.get_ref().local_addr().unwrap();
            let serving = executor.spawn({
                let server = server.clone();
                let executor = executor.clone();
                async move {
                    chanx_async_std::serve(&server, listener, |task| executor.spawn(task).detach())
                        .await;
                }
            });
            let connect = |addr| async move {
                smol::Async::<std::net::TcpStream>::connect(addr)
                    .await
                    .unwrap()
            };
            echo_refusals_and_shutdown(server, addr, connect, serving).await;
        }
    }));
}

/// A request that is not a WebSocket upgrade is closed without an answer,
/// and `serve_stream` returns.
#[test]
fn plain_http_is_closed() {
    use futures_util::{AsyncReadExt, AsyncWriteExt};
    smol::block_on(async {
        let server = echo_server();
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = smol::net::TcpStream::connect(addr).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let serving = smol::spawn(async move {
            chanx_async_std::serve_stream(&server, stream, Some(peer)).await;
        });
        client
            .write_all(b"GET /ws/echo/ HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        serving.await;
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    });
}

/// With every handshake slot taken by a client that sends nothing, a new
/// client waits: it is served once the silent one has been dropped by the
/// handshake deadline, not before.
#[test]
fn a_full_handshake_queue_waits_for_a_free_slot() {
    use futures_util::AsyncReadExt;
    smol::block_on(async {
        let server = echo_server();
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = chanx_async_std::ServeLimits {
            handshake_timeout: std::time::Duration::from_millis(500),
            max_pending: 1,
        };
        let _serving = smol::spawn({
            let server = server.clone();
            async move {
                chanx_async_std::serve_with(
                    &server,
                    listener,
                    |task| smol::spawn(task).detach(),
                    limits,
                )
                .await;
            }
        });
        // Takes the only slot, says nothing; the server drops it at its
        // deadline, which starts when it is accepted, after `before`.
        let before = std::time::Instant::now();
        let mut silent = smol::net::TcpStream::connect(addr).await.unwrap();
        // Let the server accept it first.
        smol::Timer::after(std::time::Duration::from_millis(100)).await;
        let connect = |addr| async move { smol::net::TcpStream::connect(addr).await.unwrap() };
        let mut ws = upgrade(&connect, addr, "/ws/echo/", &[])
            .await
            .expect("served in the end");
        // No slot was free before the silent client's deadline (a lower
        // bound no machine can beat: without the cap this takes ~100 ms).
        assert!(
            before.elapsed() >= limits.handshake_timeout,
            "the second client was served after {:?}, while the first still held the only slot",
            before.elapsed()
        );
        let mut buffer = [0u8; 16];
        assert_eq!(
            silent.read(&mut buffer).await.unwrap_or(0),
            0,
            "the silent client was dropped"
        );
        assert_eq!(next_json(&mut ws).await["payload"]["status_code"], 200);
    });
}
