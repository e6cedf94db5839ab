//! The quickstart on axum: the HTTP API, the playground and the
//! WebSockets on one router.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chanx::Server;
use chanx_axum::RouterExt;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{Level, Span};

use crate::api::{Api, ApiRequest, MAX_BODY};

/// The whole HTTP application on axum. Every request gets an
/// `X-Request-ID` (the client's, or a new UUID), echoed in the response and
/// used by the WebSocket's log lines, and is logged at INFO when answered.
pub fn router(server: Server, api: Api) -> Router {
    Router::new()
        .route("/auth/login/", any(api_route))
        .route("/api/notify/{room_id}/", any(api_route))
        .with_state(api)
        .chanx_playground(server.clone())
        .chanx(server)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// The span of one HTTP request: method, path, client address, request id.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default();
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_default();
    tracing::info_span!(
        "http",
        method = %request.method(),
        path = %request.uri().path(),
        ip = %ip,
        request_id = %request_id,
    )
}

async fn api_route(State(api): State<Api>, method: Method, uri: Uri, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let (parts, body) = request.into_parts();
    // A body over the limit is refused, as warp's `content_length_limit`
    // refuses it, rather than read as empty.
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let request = ApiRequest {
        method: &method,
        path: uri.path(),
        headers: &parts.headers,
        body: &body,
        peer,
    };
    match api.handle(request).await {
        Some(response) => response.into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}
