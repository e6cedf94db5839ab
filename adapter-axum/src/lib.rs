//! axum adapter for chanx: mounts a [`chanx::Server`]'s WebSocket routes,
//! the playground and the AsyncAPI document on an axum [`Router`].
//!
//! The adapter only translates: the upgrade request becomes a
//! [`chanx::Handshake`] (via [`Server::prepare`], which resolves the route
//! and checks the origin), and the upgrade is done on hyper
//! ([`chanx_hyper::WebSocketUpgrade`], axum's checks and answers; see
//! [`upgrade`] for HTTP/2): the connection is a tokio-tungstenite stream
//! as a [`chanx::BoxSocket`], without axum's `WebSocket` and its task
//! (about 1 KB per idle connection); frames pass through without copies
//! and transport errors are classified by type. Buffer sizes are chanx's
//! for many small connections ([`chanx::ws::READ_BUFFER_SIZE`], 4 KiB,
//! where tungstenite's default is 128 KiB); what waits to be written is
//! bounded by the core (frames and bytes, close 4008).
//!
//! Serve with [`serve`]: unlike `axum::serve` it bounds the time a client
//! may take to send its request head (a slowloris client is dropped), caps
//! the connections still in their HTTP exchange, sets `TCP_NODELAY` (with
//! Nagle's algorithm on, a second small write waits for the client's
//! delayed ACK — a 10x loss of throughput for pipelined traffic, measured
//! with the load benchmark) and ends its shutdown after a grace period.
//! With `axum::serve`, wrap the listener in [`nodelay`] at least.
//!
//! ```no_run
//! use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};
//! use chanx::routing::{RouteTable, path};
//! use chanx_axum::RouterExt;
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Deserialize, Serialize, JsonSchema)]
//! pub struct MessagePayload { pub content: String }
//!
//! #[derive(Debug, Deserialize, Serialize, JsonSchema)]
//! #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
//! pub enum EchoIncoming { Ping, Echo(MessagePayload) }
//!
//! #[derive(Serialize, JsonSchema)]
//! #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
//! pub enum EchoOutgoing { Pong(()), Echo(MessagePayload) }
//!
//! #[derive(Default)]
//! pub struct EchoConsumer;
//!
//! impl Consumer for EchoConsumer {
//!     type Incoming = EchoIncoming;
//!     type Outgoing = EchoOutgoing;
//!     type Event = NoEvent;
//!     type GroupMessage = NoGroupMessage;
//!
//!     async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, message: EchoIncoming) -> HandlerResult {
//!         match message {
//!             EchoIncoming::Ping => ctx.send_message(&EchoOutgoing::Pong(())).await?,
//!             EchoIncoming::Echo(p) => {
//!                 let content = format!("Echo: {}", p.content);
//!                 ctx.send_message(&EchoOutgoing::Echo(MessagePayload { content })).await?
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let echo = chanx::Endpoint::builder(EchoConsumer::default).build()?;
//!     let routes = RouteTable::new([path("ws/echo/", echo)])?;
//!     let server = chanx::Server::new(routes, chanx::layer::InMemoryLayer::new());
//!     // The one line that differs per framework:
//!     let app = axum::Router::new().chanx_playground(server.clone()).chanx(server.clone());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//!     let stop = async move {
//!         let _ = tokio::signal::ctrl_c().await;
//!         server.shutdown().graceful().await; // every WebSocket closes with 1001
//!     };
//!     chanx_axum::serve(listener, app, chanx_axum::ServeLimits::default(), stop).await;
//!     Ok(())
//! }
//! ```

mod serve;

pub use chanx_hyper::ServeLimits;
pub use serve::serve;

use std::future::ready;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chanx::ws::{self, SocketError, WsMessage};
use chanx::{Server, docs};
use futures_util::{SinkExt, StreamExt};

/// Wraps a listener so every accepted connection has `TCP_NODELAY` set
/// (see the crate docs: without it, pipelined frames wait for delayed ACKs).
pub fn nodelay(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    listener.tap_io(chanx_hyper::set_nodelay as fn(&mut tokio::net::TcpStream))
}

/// Adds chanx routes to an axum [`Router`].
pub trait RouterExt {
    /// Serves the server's WebSocket endpoints: every WebSocket upgrade
    /// request (`Upgrade: websocket`) goes to chanx, even on a path an HTTP
    /// route serves, and one on a path no endpoint serves answers 404.
    /// Plain HTTP requests are left to the router's routes and fallback.
    /// Install it after the routes and the fallback: like any
    /// [`Router::layer`], it wraps what was added before it.
    ///
    /// ```
    /// use chanx_axum::RouterExt;
    ///
    /// # fn app(server: chanx::Server) -> axum::Router {
    /// axum::Router::new()
    ///     .route("/", axum::routing::get(|| async { "home" }))
    ///     .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "no such page") })
    ///     .chanx(server)
    /// # }
    /// ```
    fn chanx(self, server: Server) -> Self;

    /// Serves `GET /playground/websocket/`, `GET /playground/websocket-info/`
    /// and `GET /asyncapi.json` ([`chanx::docs::respond`]).
    fn chanx_playground(self, server: Server) -> Self;
}

impl RouterExt for Router {
    fn chanx(self, server: Server) -> Self {
        self.layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let server = server.clone();
                async move {
                    if is_websocket_upgrade(&request) {
                        upgrade(server, request).await
                    } else {
                        next.run(request).await
                    }
                }
            },
        ))
    }

    fn chanx_playground(self, server: Server) -> Self {
        let serve_doc = move |request: Request| {
            let server = server.clone();
            async move {
                docs::respond(
                    server.routes(),
                    request.uri().path(),
                    request.uri().query(),
                    request.headers(),
                )
                .map_or_else(
                    || axum::http::StatusCode::NOT_FOUND.into_response(),
                    |r| r.into_response(),
                )
            }
        };
        self.route(docs::paths::PLAYGROUND, get(serve_doc.clone()))
            .route(docs::paths::WEBSOCKET_INFO, get(serve_doc.clone()))
            .route(docs::paths::ASYNCAPI, get(serve_doc))
    }
}

/// Whether the request asks for a WebSocket (`Upgrade: websocket`).
fn is_websocket_upgrade(request: &Request) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Answers one WebSocket upgrade request: the upgrade to a chanx endpoint,
/// or the refusal (404 for a path no endpoint serves, 403 for a foreign
/// origin), logged as such.
///
/// An HTTP/1.1 upgrade is done on hyper directly
/// ([`chanx_hyper::WebSocketUpgrade`]: the same checks and answers as
/// axum's, about 1 KB less per connection than axum's `on_upgrade` task
/// and `WebSocket`, and no conversion of each message); an HTTP/2 one
/// (RFC 8441, where the server enables it) goes through axum's
/// `WebSocketUpgrade`. [`RouterExt::chanx`] sends only requests with
/// `Upgrade: websocket` here, which HTTP/2 ones do not carry: call
/// `upgrade` from a route of your own for those.
pub async fn upgrade(server: Server, mut request: Request) -> Response {
    if request.version() > axum::http::Version::HTTP_11 {
        return upgrade_with_axum(server, request).await;
    }
    let ws = chanx_hyper::WebSocketUpgrade::from_request(&mut request);
    let upgrade = match prepare(&server, &request) {
        Ok(upgrade) => upgrade,
        Err(refused) => return refused,
    };
    chanx_hyper::WebSocketUpgrade::answer(ws, upgrade)
}

/// The upgrade [`Server::prepare`] gives the request, or its refusal
/// answered and logged.
#[allow(clippy::result_large_err)]
fn prepare(server: &Server, request: &Request) -> Result<chanx::Upgrade, Response> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let uri = request.uri();
    let path = uri.path();
    server
        .prepare(path, uri.query(), request.headers().clone(), peer)
        .map_err(|refusal| {
            tracing::info!(%path, status = refusal.status(), reason = %refusal, "WebSocket upgrade refused");
            refusal.to_response().into_response()
        })
}

/// An HTTP/2 upgrade, through axum's `WebSocketUpgrade`.
async fn upgrade_with_axum(server: Server, request: Request) -> Response {
    let upgrade = match prepare(&server, &request) {
        Ok(upgrade) => upgrade,
        Err(refused) => return refused,
    };
    let (mut parts, _body) = request.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let limit = ws::transport_limit(upgrade.max_frame_size());
    ws.read_buffer_size(ws::READ_BUFFER_SIZE)
        .write_buffer_size(ws::WRITE_BUFFER_SIZE)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_failed_upgrade(|error| tracing::debug!(%error, "websocket upgrade failed"))
        .on_upgrade(move |socket| upgrade.run(into_socket(socket)))
}

/// axum's text as chanx's, sharing axum's buffer. axum hides tungstenite's
/// text type, so the shared buffer is checked as UTF-8 again instead of
/// copied: measured natively, the check costs what the copy did (28 vs
/// 32 ns for a small echo frame, 60 vs 47 ns at 1 KB, equal at 60 KB) and
/// never holds a frame twice in memory.
fn text_from_axum(text: Utf8Bytes) -> Result<ws::Text, SocketError> {
    let text = ws::Utf8Bytes::try_from(Bytes::from(text)).map_err(SocketError::classify)?;
    Ok(text.into())
}

fn from_axum(message: Result<Message, axum::Error>) -> Result<WsMessage, SocketError> {
    Ok(
        match message.map_err(|e| SocketError::classify(e.into_inner()))? {
            Message::Text(text) => WsMessage::Text(text_from_axum(text)?),
            Message::Binary(bytes) => WsMessage::Binary(bytes),
            Message::Ping(bytes) => WsMessage::Ping(bytes),
            Message::Pong(bytes) => WsMessage::Pong(bytes),
            Message::Close(frame) => {
                WsMessage::Close(frame.map(|f| (f.code, f.reason.as_str().to_owned())))
            }
        },
    )
}

fn to_axum(message: WsMessage) -> Message {
    match message {
        // The server's replies are `String`s: handed over as they are.
        WsMessage::Text(text) => Message::Text(text.into_string().into()),
        WsMessage::Binary(bytes) => Message::Binary(bytes),
        WsMessage::Ping(bytes) => Message::Ping(bytes),
        WsMessage::Pong(bytes) => Message::Pong(bytes),
        WsMessage::Close(frame) => Message::Close(frame.map(|(code, reason)| CloseFrame {
            code,
            reason: reason.into(),
        })),
    }
}

/// Wraps axum's WebSocket as a chanx socket.
pub fn into_socket(socket: WebSocket) -> chanx::BoxSocket {
    Box::pin(
        chanx::ws::map_sink_errors(socket, |e: axum::Error| {
            SocketError::classify(e.into_inner())
        })
        .with(|message: WsMessage| ready(Ok::<_, SocketError>(to_axum(message))))
        .map(from_axum),
    )
}
