//! The HTTP/1.1 server loop chanx's tokio adapters share (`chanx-axum`,
//! `chanx-warp`), with the limits a server on the open internet needs and
//! that `axum::serve` and `warp::serve` do not set: a deadline for the
//! request head, a cap on connections that have not finished their
//! request, `TCP_NODELAY`, no busy loop when accepting fails, and a
//! shutdown that ends; and their WebSocket upgrade on hyper
//! ([`WebSocketUpgrade`]).
//!
//! Frameworks plug in a hyper service per connection; most users call
//! their adapter's `serve` instead.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use chanx_hyper::{ServeLimits, serve};
//!
//! # async fn example() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! let hello = |peer: std::net::SocketAddr| {
//!     hyper::service::service_fn(move |_request| async move {
//!         Ok::<_, Infallible>(hyper::Response::new(format!("hello {peer}")))
//!     })
//! };
//! serve(listener, ServeLimits::default(), tokio::signal::ctrl_c(), hello).await;
//! # Ok(())
//! # }
//! ```

mod websocket;

pub use websocket::{UpgradeRejection, WebSocketUpgrade};

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Limits of [`serve`].
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// How long a client may take to send its whole request head (the
    /// WebSocket upgrade included); a slower one is disconnected.
    pub header_timeout: Duration,
    /// Connections that have not finished their HTTP exchange (or upgrade)
    /// at once; past it the server stops accepting until one finishes.
    pub max_pending: usize,
    /// How long HTTP requests in progress may take once shutdown started;
    /// then their connections are dropped.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    /// A 5 s head deadline, 4096 unfinished connections, 1 s of grace.
    fn default() -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(5),
            max_pending: 4096,
            shutdown_grace: Duration::from_secs(1),
        }
    }
}

/// Sets `TCP_NODELAY` on an accepted socket (pipelined frames must not
/// wait for delayed ACKs); a failure is logged, not fatal.
pub fn set_nodelay(stream: &mut tokio::net::TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
}

/// Serves HTTP/1.1 (with upgrades) on `listener` until `shutdown`
/// resolves, answering each connection with the service `service_for`
/// makes from the peer's address; then stops accepting, gives requests in
/// progress [`shutdown_grace`](ServeLimits::shutdown_grace) and returns.
/// WebSockets are not HTTP requests any more once upgraded: close them
/// with the server's [`Shutdown`](chanx::Shutdown) before (the future
/// passed here usually awaits [`graceful`](chanx::Shutdown::graceful)).
pub async fn serve<S, B>(
    listener: TcpListener,
    limits: ServeLimits,
    shutdown: impl Future,
    service_for: impl Fn(SocketAddr) -> S,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    // HTTP/1.1 only (WebSockets upgrade from it): no protocol sniffing
    // before the request head, whose deadline starts with the connection.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // Every connection task holds a permit until it ends: the permits
    // bound the connections still in their HTTP exchange, and having them
    // all back means every connection task has ended. The tasks are
    // detached (no `JoinSet`): with a set, reaped between two accepts,
    // heaptrack still saw every upgraded connection's task cell allocated
    // (about 200 bytes per connection).
    let max_pending = u32::try_from(limits.max_pending).unwrap_or(u32::MAX).max(1);
    let pending = Arc::new(Semaphore::new(max_pending as usize));
    // `true` tells every connection to finish its request and close; the
    // sender dropped (`serve` returned or was dropped) tells them to stop.
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(async {
        shutdown.await;
    });
    loop {
        // Waiting for a free slot or a connection, shutdown still counts.
        let permit = tokio::select! {
            permit = Arc::clone(&pending).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = shutdown.as_mut() => break,
        };
        let (mut stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if chanx::ws::is_connection_error(&error) => {
                    tracing::debug!(%error, "connection lost before it was accepted");
                    continue;
                }
                Err(error) => {
                    // Out of descriptors, say: wait instead of spinning.
                    tracing::error!(%error, "accept failed; accepting again in 1 s");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = shutdown.as_mut() => break,
                    }
                }
            },
            () = shutdown.as_mut() => break,
        };
        set_nodelay(&mut stream);
        let connection = builder
            .serve_connection(TokioIo::new(stream), service_for(peer))
            .with_upgrades();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                // Shutdown started, or `serve` is gone.
                _ = async { stopping.wait_for(|stop| *stop).await.is_ok() } => {
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        ended = connection.as_mut() => ended,
                        // Only the sender's drop ends this wait: out of grace.
                        _ = stopping.changed() => return,
                    }
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, %peer, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    if tokio::time::timeout(limits.shutdown_grace, pending.acquire_many(max_pending))
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the grace period; dropping them");
    }
}
