//! Serving a router with [`chanx_hyper`]'s limits, which `axum::serve`
//! does not set.

use std::convert::Infallible;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use chanx_hyper::ServeLimits;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` resolves, with a
/// deadline for each request head, a cap on connections still in their
/// HTTP exchange, `TCP_NODELAY` and a shutdown that ends (see
/// [`ServeLimits`]); then stops accepting, gives HTTP requests in progress
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
    chanx_hyper::serve(listener, limits, shutdown, |peer| {
        let router = router.clone();
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
        })
    })
    .await;
}
