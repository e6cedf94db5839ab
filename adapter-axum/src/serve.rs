//! Serving a router with the limits a server on the open internet needs,
//! which `axum::serve` does not set: a deadline for the request head, a cap
//! on connections that have not finished their request, `TCP_NODELAY`, and
//! a shutdown that ends.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

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
    fn default() -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(5),
            max_pending: 4096,
            shutdown_grace: Duration::from_secs(1),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting, gives HTTP requests in progress
/// [`shutdown_grace`](ServeLimits::shutdown_grace) and returns. WebSockets
/// are not HTTP requests any more once upgraded: close them with the
/// server's [`Shutdown`](chanx::Shutdown) before (the future passed here
/// usually awaits [`graceful`](chanx::Shutdown::graceful)).
///
/// Each request carries [`ConnectInfo<std::net::SocketAddr>`], as with axum's
/// `into_make_service_with_connect_info`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    // HTTP/1.1 only (WebSockets upgrade from it): no protocol sniffing
    // before the request head, whose deadline starts with the connection.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    let pending = Arc::new(Semaphore::new(limits.max_pending.max(1)));
    // Tells every connection to finish its request and close.
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
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
        crate::set_nodelay(&mut stream);
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let router = router.clone();
                async move {
                    Ok::<_, Infallible>(
                        router
                            .oneshot(request.map(axum::body::Body::new))
                            .await
                            .unwrap_or_else(|never| match never {}),
                    )
                }
            });
        let builder = Arc::clone(&builder);
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                true = async { stopping.wait_for(|stop| *stop).await.is_ok() } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, %peer, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_grace, drained)
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the grace period; dropping them");
    }
    connections.abort_all();
}
