//! warp adapter for chanx: a filter that serves a [`chanx::Server`]'s
//! WebSocket endpoints, and one for the playground and the AsyncAPI
//! document.
//!
//! ```no_run
//! use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};
//! use chanx::routing::{RouteTable, path};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//! use warp::Filter;
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
//!     let app = chanx_warp::websockets(server.clone()).or(chanx_warp::playground(server.clone()));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//!     let shutdown = async move {
//!         let _ = tokio::signal::ctrl_c().await;
//!         server.shutdown().graceful().await; // every WebSocket closes with 1001
//!     };
//!     chanx_warp::serve(listener, app, chanx_warp::ServeLimits::default(), shutdown).await;
//!     Ok(())
//! }
//! ```
//!
//! The upgrade request (path, query, headers with cookies, peer address)
//! goes to [`Server::prepare`]; a refusal is answered before upgrading with
//! its HTTP status (404, 403, 503) and `{"detail": ...}`. Text frames pass
//! through without copies (warp hides tungstenite's text type, so a
//! received buffer is checked as UTF-8 again rather than copied: the same
//! cost, measured, and half the memory for large frames), and
//! transport errors are classified by type.
//!
//! Serve with [`serve`] rather than `warp::serve`: warp 0.4's server has
//! no deadline for request heads (a client sending one byte a second holds
//! a connection forever) and its graceful shutdown waits for such clients;
//! [`serve`] runs the filter on `chanx-hyper`'s server loop, with a head
//! deadline, a cap on unfinished requests, `TCP_NODELAY` and a shutdown
//! that ends. There `warp::addr::remote()` sees no address (warp keeps
//! its own marker private); use [`peer_addr`], which works under both.
//! With `warp::serve`, use [`listener`] at least (`TCP_NODELAY`).
//!
//! The WebSocket upgrade is done on hyper directly
//! ([`chanx_hyper::WebSocketUpgrade`], axum's checks and answers) with
//! chanx's buffers (4 KiB read), under [`serve`] as under `warp::serve`:
//! warp's `Ws` builder cannot set buffer sizes, and its connections kept
//! tungstenite's default 128 KiB read buffer (about 137 KB per idle
//! connection against 9 KB). [`into_socket`] still turns a warp
//! `WebSocket` into a chanx socket for those who upgrade with warp.

use std::net::SocketAddr;

use chanx::ws::{SocketError, Utf8Bytes, WsMessage};
use chanx::{BoxSocket, Server, docs};
use futures_util::{SinkExt, StreamExt, future};
use warp::filters::path::FullPath;
use warp::filters::ws::{Message, WebSocket};
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

/// Serves the server's WebSocket endpoints: every request that asks for a
/// WebSocket (`Upgrade: websocket`) goes to chanx, whatever its path (a
/// path no endpoint serves answers 404); other requests are not matched,
/// so put this filter first and the HTTP routes after it with `.or(...)`.
pub fn websockets(server: Server) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    wants_websocket()
        // hyper's handle on the upgrade (a clone reaches the same one);
        // none for a request that cannot be upgraded (HTTP/1.0): 426.
        .and(warp::ext::optional::<hyper::upgrade::OnUpgrade>())
        .and(warp::method())
        .and(warp::path::full())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(peer_addr())
        .map(
            move |on_upgrade, method: Method, path: FullPath, query, headers, peer| {
                upgrade(
                    &server,
                    on_upgrade,
                    &method,
                    path.as_str(),
                    query,
                    headers,
                    peer,
                )
            },
        )
}

/// Serves `GET /playground/websocket/`, `GET /playground/websocket-info/`
/// and `GET /asyncapi.json` ([`chanx::docs::respond`]); another method on
/// those paths gets 405, any other path is not matched.
pub fn playground(server: Server) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path::full()
        .and(raw_query())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and_then(
            move |path: FullPath, query: Option<String>, method: Method, headers: HeaderMap| {
                let path = path.as_str();
                let answer = if !matches!(
                    path,
                    docs::paths::PLAYGROUND | docs::paths::WEBSOCKET_INFO | docs::paths::ASYNCAPI
                ) {
                    None
                } else if method == Method::GET {
                    docs::respond(server.routes(), path, query.as_deref(), &headers)
                        .map(Reply::into_response)
                } else {
                    Some(StatusCode::METHOD_NOT_ALLOWED.into_response())
                };
                future::ready(answer.ok_or_else(warp::reject::not_found))
            },
        )
}

/// The client's address, under [`serve`] as under `warp::serve`.
pub fn peer_addr()
-> impl Filter<Extract = (Option<SocketAddr>,), Error = std::convert::Infallible> + Copy {
    warp::addr::remote()
        .and(warp::ext::optional::<PeerAddr>())
        .map(|remote: Option<SocketAddr>, ours: Option<PeerAddr>| {
            remote.or(ours.map(|PeerAddr(addr)| addr))
        })
}

/// The client's address, as [`serve`] records it in each request's
/// extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

pub use chanx_hyper::ServeLimits;

/// Serves `filter` on `listener` until `shutdown` resolves, with a
/// deadline for each request head, a cap on connections still in their
/// HTTP exchange, `TCP_NODELAY` and a shutdown that ends (see
/// [`ServeLimits`]); then stops accepting, gives HTTP requests in progress
/// [`shutdown_grace`](ServeLimits::shutdown_grace) and returns. Close the
/// WebSockets with the server's [`Shutdown`](chanx::Shutdown) before (the
/// future passed here usually awaits
/// [`graceful`](chanx::Shutdown::graceful)). Unmatched requests get
/// warp's rejection replies, as with `warp::serve`.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    filter: F,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let service = warp::service(filter);
    chanx_hyper::serve(listener, limits, shutdown, |peer| {
        let service = service.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(PeerAddr(peer));
            let mut service = service.clone();
            tower_service::Service::call(&mut service, request)
        })
    })
    .await;
}

/// A tokio listener on `addr` for `warp::serve`: `TCP_NODELAY` (inherited
/// by accepted sockets on Linux: pipelined frames must not wait for delayed
/// ACKs) and a deep accept queue (1024) for bursts of connects.
pub fn listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Rejects (as "not found", so other routes get their turn) every request
/// that does not ask for a WebSocket.
fn wants_websocket() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("upgrade")
        .and_then(|upgrade: Option<String>| {
            let websocket = upgrade.is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
            future::ready(if websocket {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            })
        })
        .untuple_one()
}

/// The raw query string, `None` when the URL has none.
fn raw_query() -> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone
{
    warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
}

/// The upgrade, done on hyper ([`chanx_hyper::WebSocketUpgrade`]): chanx's
/// buffers, no warp `WebSocket`; or the refusal, logged.
fn upgrade(
    server: &Server,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
    method: &Method,
    path: &str,
    query: Option<String>,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
) -> Response {
    // warp serves HTTP/1.1 upgrades (its server speaks HTTP/1 and 2, and
    // an HTTP/2 request asks with CONNECT, refused here as axum does).
    let ws = chanx_hyper::WebSocketUpgrade::from_parts(
        method,
        warp::http::Version::HTTP_11,
        &headers,
        on_upgrade,
    );
    match server.prepare(path, query.as_deref(), headers, peer) {
        Ok(upgrade) => chanx_hyper::WebSocketUpgrade::answer(ws, upgrade),
        Err(refusal) => {
            tracing::info!(%path, status = refusal.status(), reason = %refusal, "WebSocket upgrade refused");
            refusal.to_response().into_response()
        }
    }
}

/// warp's message as chanx's: the buffer is shared, text is re-checked.
fn from_warp(message: Message) -> Result<WsMessage, SocketError> {
    if message.is_close() {
        let frame = message
            .close_frame()
            .map(|(code, reason)| (code, reason.to_owned()));
        return Ok(WsMessage::Close(frame));
    }
    let is = (message.is_text(), message.is_ping(), message.is_pong());
    let bytes = message.into_bytes();
    Ok(match is {
        // warp hides tungstenite's text type: the shared buffer is checked
        // as UTF-8 again rather than copied (the same cost, half the memory).
        (true, _, _) => {
            let text = Utf8Bytes::try_from(bytes).map_err(SocketError::classify)?;
            WsMessage::Text(text.into())
        }
        (_, true, _) => WsMessage::Ping(bytes),
        (_, _, true) => WsMessage::Pong(bytes),
        _ => WsMessage::Binary(bytes),
    })
}

/// chanx's message as warp's (the server's replies are `String`s, what
/// warp builds text from: no copy).
fn to_warp(message: WsMessage) -> Message {
    match message {
        WsMessage::Text(text) => Message::text(text.into_string()),
        WsMessage::Binary(bytes) => Message::binary(bytes),
        WsMessage::Ping(bytes) => Message::ping(bytes),
        WsMessage::Pong(bytes) => Message::pong(bytes),
        WsMessage::Close(Some((code, reason))) => Message::close_with(code, reason),
        WsMessage::Close(None) => Message::close(),
    }
}

/// Wraps warp's WebSocket as a chanx socket.
pub fn into_socket(socket: WebSocket) -> BoxSocket {
    Box::pin(
        chanx::ws::map_sink_errors(socket, SocketError::classify)
            .with(|message: WsMessage| future::ready(Ok::<_, SocketError>(to_warp(message))))
            .map(|item| item.map_err(SocketError::classify).and_then(from_warp)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_warp_unchanged() {
        for message in [
            WsMessage::Text("héllo".into()),
            WsMessage::Binary(chanx::ws::Bytes::from_static(b"\x00\xff")),
            WsMessage::Ping(chanx::ws::Bytes::from_static(b"p")),
            WsMessage::Pong(chanx::ws::Bytes::new()),
            WsMessage::Close(Some((1001, "server shutdown".into()))),
        ] {
            let back = from_warp(to_warp(message.clone()));
            assert_eq!(back.ok(), Some(message));
        }
    }
}
