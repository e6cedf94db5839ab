//! axum adapter for chanx: mounts a [`chanx::Server`]'s WebSocket routes,
//! the playground and the AsyncAPI document on an axum [`Router`].
//!
//! The adapter only translates: the upgrade request becomes a
//! [`chanx::Handshake`] (via [`Server::prepare`], which resolves the route
//! and checks the origin), and axum's WebSocket becomes a
//! [`chanx::BoxSocket`]. Buffer sizes are set for many small connections:
//! a 4 KiB read buffer (tungstenite's default is 128 KiB per connection) and
//! an 8 KiB write buffer; what waits to be written is bounded by the core
//! (frames and bytes, close 4008).
//!
//! Serve through [`nodelay`] (`TCP_NODELAY` on every connection): the
//! writer flushes whatever is queued
//! as soon as it gets a turn, and with Nagle's algorithm on, a second small
//! write waits for the client's delayed ACK (40 ms on Linux) — a 10x loss
//! of throughput for pipelined traffic, measured with the load benchmark.
//!
//! ```no_run
//! # async fn run(server: chanx::Server) {
//! use chanx_axum::RouterExt;
//! let app = axum::Router::new().chanx_playground(server.clone()).chanx(server.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
//! axum::serve(chanx_axum::nodelay(listener), app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//!     .await
//!     .unwrap();
//! # }
//! ```

use std::future::ready;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chanx::{Server, SocketError, WsMessage};
use futures_util::{SinkExt, StreamExt};

/// Wraps a listener so every accepted connection has `TCP_NODELAY` set
/// (see the crate docs: without it, pipelined frames wait for delayed ACKs).
pub fn nodelay(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    listener.tap_io(set_nodelay as fn(&mut tokio::net::TcpStream))
}

fn set_nodelay(stream: &mut tokio::net::TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
}

/// Read buffer per connection.
pub const READ_BUFFER_SIZE: usize = 4 * 1024;
/// Write buffer flushed when this full.
pub const WRITE_BUFFER_SIZE: usize = 8 * 1024;
/// Room above the endpoint's frame limit given to the transport, so that
/// the core (not tungstenite) decides on oversized frames (close 1009).
const TRANSPORT_SLACK: usize = 64 * 1024;

/// Adds chanx routes to an axum [`Router`].
pub trait RouterExt {
    /// Serves the server's WebSocket endpoints. Every WebSocket upgrade
    /// request goes to chanx, even on a path an HTTP route serves (a path
    /// no endpoint serves answers 404); other unmatched requests answer
    /// 404. Install it last: it wraps the routes added before it.
    fn chanx(self, server: Server) -> Self;

    /// Serves `GET /playground/websocket/`, `GET /playground/websocket-info/`
    /// and `GET /asyncapi.json`.
    fn chanx_playground(self, server: Server) -> Self;
}

impl RouterExt for Router {
    fn chanx(self, server: Server) -> Self {
        let intercept = server.clone();
        self.fallback(move |request: Request| upgrade(server.clone(), request))
            .layer(axum::middleware::from_fn(
                move |request: Request, next: Next| {
                    let server = intercept.clone();
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
        let info_server = server.clone();
        self.route(
            "/playground/websocket/",
            get(|| async { Html(chanx::docs::PLAYGROUND_HTML) }),
        )
        .route(
            "/playground/websocket-info/",
            get(move |request: Request| {
                let server = info_server.clone();
                async move {
                    let base = format!("ws://{}", host_of(&request));
                    axum::Json(chanx::docs::websocket_info(server.routes(), &base))
                }
            }),
        )
        .route(
            "/asyncapi.json",
            get(move |request: Request| {
                let server = server.clone();
                async move {
                    let host = host_of(&request);
                    axum::Json(chanx::docs::asyncapi(
                        server.routes(),
                        "chanx endpoints",
                        &host,
                    ))
                }
            }),
        )
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

fn host_of(request: &Request) -> String {
    request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned()
}

fn status_response(status: u16, detail: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(serde_json::json!({ "detail": detail }))).into_response()
}

/// Answers one request that no HTTP route matched: a WebSocket upgrade to a
/// chanx endpoint, or 404.
pub async fn upgrade(server: Server, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &()).await;
    let prepared = server.prepare(&path, query.as_deref(), parts.headers.clone(), peer);
    let upgrade = match prepared {
        Ok(upgrade) => upgrade,
        Err(refusal) => {
            tracing::info!(%path, status = refusal.status(), reason = %refusal, "WebSocket upgrade refused");
            return status_response(refusal.status(), &refusal.to_string());
        }
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let limit = upgrade
        .endpoint()
        .info()
        .options
        .max_frame_size
        .saturating_add(TRANSPORT_SLACK);
    ws.read_buffer_size(READ_BUFFER_SIZE)
        .write_buffer_size(WRITE_BUFFER_SIZE)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_failed_upgrade(|error| tracing::debug!(%error, "websocket upgrade failed"))
        .on_upgrade(move |socket| upgrade.run(into_socket(socket)))
}

fn from_axum(message: Result<Message, axum::Error>) -> Result<WsMessage, SocketError> {
    match message {
        Ok(Message::Text(text)) => Ok(WsMessage::Text(text.as_str().to_owned())),
        Ok(Message::Binary(bytes)) => Ok(WsMessage::Binary(bytes.to_vec())),
        Ok(Message::Ping(bytes)) => Ok(WsMessage::Ping(bytes.to_vec())),
        Ok(Message::Pong(bytes)) => Ok(WsMessage::Pong(bytes.to_vec())),
        Ok(Message::Close(frame)) => Ok(WsMessage::Close(
            frame.map(|f| (f.code, f.reason.as_str().to_owned())),
        )),
        Err(error) => {
            let text = error.to_string();
            if text.contains("Message too long") || text.contains("Space limit exceeded") {
                Err(SocketError::too_big(text))
            } else {
                Err(SocketError::new(text))
            }
        }
    }
}

fn to_axum(message: WsMessage) -> Message {
    match message {
        WsMessage::Text(text) => Message::Text(text.into()),
        WsMessage::Binary(bytes) => Message::Binary(bytes.into()),
        WsMessage::Ping(bytes) => Message::Ping(bytes.into()),
        WsMessage::Pong(bytes) => Message::Pong(bytes.into()),
        WsMessage::Close(frame) => Message::Close(frame.map(|(code, reason)| CloseFrame {
            code,
            reason: reason.into(),
        })),
    }
}

/// Wraps axum's WebSocket as a chanx socket.
pub fn into_socket(socket: WebSocket) -> chanx::BoxSocket {
    Box::pin(
        socket
            .sink_map_err(SocketError::new)
            .with(|message: WsMessage| ready(Ok::<_, SocketError>(to_axum(message))))
            .map(from_axum),
    )
}
