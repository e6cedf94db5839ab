//! Serving a router with the limits a server on the open internet needs,
//! which `axum::serve` does not set: a deadline for the request head, a cap
//! on connections that have not finished their request, `TCP_NODELAY`, and
//! a shutdown that ends.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
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
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    let pending = Arc::new(Semaphore::new(limits.max_pending.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let Ok(permit) = Arc::clone(&pending).acquire_owned().await else {
            break;
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, say: wait instead of spinning.
                    tracing::error!(%error, "accept failed; accepting again in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
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
        let connection = graceful.watch(
            builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned(),
        );
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the grace period; dropping them");
    }
}
