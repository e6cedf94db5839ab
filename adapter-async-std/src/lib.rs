//! async-std and smol adapter for chanx: serves a [`chanx::Server`]'s
//! WebSocket endpoints on any `futures-io` stream, with async-tungstenite's
//! server handshake.
//!
//! ```no_run
//! use chanx::routing::{RouteTable, path};
//! use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};
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
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let echo = chanx::Endpoint::builder(EchoConsumer::default).build()?;
//!     let routes = RouteTable::new([path("ws/echo/", echo)])?;
//!     let server = chanx::Server::new(routes, chanx::layer::InMemoryLayer::new());
//!     smol::block_on(async {
//!         // `Listener` for smol's listener needs the `smol` feature
//!         // (`async-std` for async-std's).
//!         let listener = smol::net::TcpListener::bind("127.0.0.1:8000").await?;
//!         // Serves ws://127.0.0.1:8000/ws/echo/ until shutdown starts.
//!         chanx_async_std::serve(&server, listener, |task| smol::spawn(task).detach()).await;
//!         Ok(())
//!     })
//! }
//! ```
//!
//! One adapter for both runtimes: async-std is discontinued in favour of
//! smol, and both run on the same `futures-io` traits and `async-io`
//! reactor, so this crate depends on neither. [`serve`] is an accept loop
//! over a [`Listener`] that spawns each connection with the spawner you
//! give it (`smol::spawn`, `async_std::task::spawn`, an executor of your
//! own); [`serve_stream`] serves one accepted stream, for those who own
//! their accept loop. The features `async-std` and `smol` implement
//! [`Listener`] for those runtimes' TCP listeners.
//!
//! WebSockets only: a request that is not a WebSocket upgrade gets no
//! answer (the connection is closed); serve an HTTP API, the playground
//! ([`chanx::docs::respond`]) and the AsyncAPI document with an HTTP
//! framework if you need them.
//!
//! What the other adapters do, this one does too:
//! - Routing and the origin check happen in the handshake
//!   ([`Server::prepare`]), so a refused upgrade is answered with its HTTP
//!   status (404 no endpoint, 403 origin, 503 shutting down) and
//!   `{"detail": ...}` as JSON ([`chanx::Refusal::to_response`]).
//! - chanx's buffer sizes and frame limits
//!   ([`chanx::ws::websocket_config`]), frames passed through without
//!   copies and transport errors classified by type
//!   ([`chanx::ws::tungstenite_socket`]).
//! - `TCP_NODELAY` on every accepted connection (the [`Listener`] impls set
//!   it; [`serve_stream`] callers set it themselves): the writer flushes
//!   as soon as it gets a turn, and with Nagle's algorithm a second small
//!   write waits for the client's delayed ACK (40 ms on Linux).
//! - Graceful shutdown: once [`chanx::Shutdown::trigger`] or
//!   [`chanx::Shutdown::graceful`] has started it, [`serve`] stops
//!   accepting and returns at once, every connection closes with 1001,
//!   and `graceful()` waits for them (bound that wait with your runtime's
//!   timeout).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use async_lock::Semaphore;

use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::{HeaderValue, header};
use chanx::{Refusal, Server, ws};
use futures_io::{AsyncRead, AsyncWrite};
use futures_timer::Delay;
use futures_util::FutureExt;
use futures_util::future::{self, BoxFuture, Either, select};

/// How long a client has to complete the WebSocket handshake after its
/// connection was accepted; a silent one is dropped then.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Limits of [`serve_with`].
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// How long a client may take to complete the WebSocket handshake
    /// (its whole request head included) after its connection was
    /// accepted; a slower one is dropped.
    pub handshake_timeout: Duration,
    /// Connections that have not completed their handshake at once; past
    /// it [`serve_with`] stops accepting until one completes or is dropped.
    pub max_pending: usize,
}

impl Default for ServeLimits {
    /// [`HANDSHAKE_TIMEOUT`] and 4096 unfinished handshakes.
    fn default() -> Self {
        ServeLimits {
            handshake_timeout: HANDSHAKE_TIMEOUT,
            max_pending: 4096,
        }
    }
}

/// How long [`serve`] pauses after an accept error that is not about one
/// connection (out of file descriptors, say) before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// A source of accepted connections for [`serve`].
///
/// With the `async-std` feature, async-std's `TcpListener` is one; with
/// `smol`, smol's `TcpListener` and `Async<std::net::TcpListener>` are.
/// An implementation of your own should set `TCP_NODELAY` on TCP streams
/// (see the crate docs).
pub trait Listener {
    /// An accepted connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next connection and its peer address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;
}

#[cfg(any(feature = "async-std", feature = "smol"))]
fn nodelay(result: io::Result<()>) {
    if let Err(error) = result {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
}

#[cfg(feature = "async-std")]
impl Listener for async_std::net::TcpListener {
    type Io = async_std::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Io, SocketAddr)> {
        let (stream, peer) = async_std::net::TcpListener::accept(self).await?;
        nodelay(stream.set_nodelay(true));
        Ok((stream, peer))
    }
}

#[cfg(feature = "smol")]
impl Listener for smol::net::TcpListener {
    type Io = smol::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Io, SocketAddr)> {
        let (stream, peer) = smol::net::TcpListener::accept(self).await?;
        nodelay(stream.set_nodelay(true));
        Ok((stream, peer))
    }
}

#[cfg(feature = "smol")]
impl Listener for smol::Async<std::net::TcpListener> {
    type Io = smol::Async<std::net::TcpStream>;

    async fn accept(&self) -> io::Result<(Self::Io, SocketAddr)> {
        let (stream, peer) = smol::Async::<std::net::TcpListener>::accept(self).await?;
        nodelay(stream.get_ref().set_nodelay(true));
        Ok((stream, peer))
    }
}

/// Accepts connections from `listener` and serves each with
/// [`serve_stream`] on a task of its own, started by `spawn` (e.g.
/// `|task| smol::spawn(task).detach()` or
/// `|task| { async_std::task::spawn(task); }`), until the server's
/// shutdown starts. Then it drops the listener (new connections are
/// refused) and returns; open connections go on until they have closed
/// with 1001: wait for them with [`chanx::Shutdown::graceful`].
///
/// An accept error about one connection (reset before it was accepted) is
/// skipped; any other (out of file descriptors) is logged and accepting
/// resumes a second later.
pub async fn serve<L: Listener>(
    server: &Server,
    listener: L,
    spawn: impl Fn(BoxFuture<'static, ()>),
) {
    serve_with(server, listener, spawn, ServeLimits::default()).await;
}

/// [`serve`] with other [`ServeLimits`].
pub async fn serve_with<L: Listener>(
    server: &Server,
    listener: L,
    spawn: impl Fn(BoxFuture<'static, ()>),
    limits: ServeLimits,
) {
    let pending = Arc::new(Semaphore::new(limits.max_pending.max(1)));
    let mut stop = pin!(server.shutdown().triggered());
    loop {
        // Waiting for a free slot or a connection, shutdown still counts.
        let permit = match select(pin!(pending.acquire_arc()), stop.as_mut()).await {
            Either::Left((permit, _)) => permit,
            Either::Right(((), _)) => break,
        };
        let accepted = match select(pin!(listener.accept()), stop.as_mut()).await {
            Either::Left((accepted, _)) => accepted,
            Either::Right(((), _)) => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let server = server.clone();
                let timeout = limits.handshake_timeout;
                // The handshake boxed, then the connection in its place:
                // the task's future is sized by the connection alone, not
                // by a finished handshake's state (about 250 bytes per
                // connection, heaptrack).
                let handshake = Box::pin(async move {
                    let connection = upgrade(&server, stream, Some(peer), timeout).await;
                    drop(permit);
                    connection
                });
                spawn(Box::pin(handshake.then(|connection| match connection {
                    Some(connection) => Either::Left(connection),
                    None => Either::Right(future::ready(())),
                })));
            }
            Err(error) if ws::is_connection_error(&error) => {
                tracing::debug!(%error, "connection lost before it was accepted");
            }
            Err(error) => {
                tracing::error!(%error, "accept failed; accepting again in 1 s");
                if let Either::Right(_) = select(Delay::new(ACCEPT_BACKOFF), stop.as_mut()).await {
                    break;
                }
            }
        }
    }
    tracing::debug!("shutdown started: no longer accepting connections");
}

/// Serves one accepted connection: the WebSocket handshake, then the
/// endpoint its path routes to, until the connection ends.
///
/// The route and the origin are checked during the handshake, so a
/// refused upgrade is answered with its HTTP status and a JSON `detail`;
/// a client that has not completed the handshake within
/// [`HANDSHAKE_TIMEOUT`] is dropped. `peer` becomes the handshake's
/// [`peer`](chanx::Handshake). Set `TCP_NODELAY` on a TCP stream before
/// (see the crate docs).
pub async fn serve_stream<S>(server: &Server, stream: S, peer: Option<SocketAddr>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Some(connection) = upgrade(server, stream, peer, HANDSHAKE_TIMEOUT).await {
        connection.await;
    }
}

/// The WebSocket handshake of [`serve_stream`] with a deadline; the
/// connection to run when the upgrade succeeded.
async fn upgrade<S>(
    server: &Server,
    stream: S,
    peer: Option<SocketAddr>,
    handshake_timeout: Duration,
) -> Option<impl Future<Output = ()> + Send + 'static + use<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut prepared = None;
    // The signature is tungstenite's `Callback`.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let uri = request.uri();
        let path = uri.path();
        match server.prepare(path, uri.query(), request.headers().clone(), peer) {
            Ok(upgrade) => {
                prepared = Some(upgrade);
                Ok(response)
            }
            Err(refusal) => {
                tracing::info!(%path, status = refusal.status(), reason = %refusal, "WebSocket upgrade refused");
                Err(refusal_response(refusal))
            }
        }
    };
    let config = ws::websocket_config(server.max_frame_size());
    // Boxed: inline, the handshake's future (the stream, the request being
    // read) would size this future, and so the connection's task, for the
    // connection's whole life, though it is gone once the upgrade is done
    // (heaptrack: 1.5 KB per idle connection).
    let handshake = Box::pin(async_tungstenite::accept_hdr_async_with_config(
        stream,
        callback,
        Some(config),
    ));
    let socket = match select(handshake, Delay::new(handshake_timeout)).await {
        Either::Left((Ok(socket), _)) => socket,
        // The callback's refusal, answered and logged.
        Either::Left((Err(async_tungstenite::tungstenite::Error::Http(_)), _)) => return None,
        Either::Left((Err(error), _)) => {
            tracing::debug!(%error, ?peer, "WebSocket handshake failed");
            return None;
        }
        Either::Right(_) => {
            tracing::debug!(?peer, "WebSocket handshake timed out");
            return None;
        }
    };
    // Always set when the handshake succeeded: the callback ran and agreed.
    prepared.map(|upgrade| upgrade.run(ws::tungstenite_socket(socket)))
}

/// A refusal as the handshake's HTTP answer: [`Refusal::to_response`]
/// with its length, on a connection that closes after it.
fn refusal_response(refusal: Refusal) -> ErrorResponse {
    let response = refusal.to_response();
    let length = response.body().len();
    let mut response = response.map(Some);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
