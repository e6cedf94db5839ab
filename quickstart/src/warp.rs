//! The quickstart on warp: the same HTTP API, playground and WebSockets as
//! on axum, from the same framework-neutral pieces.

use std::net::{IpAddr, SocketAddr};

use warp::filters::path::FullPath;
use warp::http::{HeaderMap, Method};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use crate::App;
use crate::api::{Api, ApiRequest, MAX_BODY};

/// Every route of the quickstart as one warp filter: WebSockets first,
/// then the API and the playground; anything else is warp's 404.
pub fn filter(app: &App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + use<> {
    let api = app.api.clone();
    let ours = warp::path::full().and_then(|path: FullPath| {
        let serves = Api::serves(path.as_str());
        std::future::ready(if serves {
            Ok(path)
        } else {
            Err(warp::reject::not_found())
        })
    });
    // Only a POST has a body worth reading; any other method is answered
    // (405) before warp would ask for a Content-Length.
    let other_methods = ours
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and_then({
            let api = api.clone();
            move |path: FullPath, method: Method, headers: HeaderMap| {
                let api = api.clone();
                async move {
                    if method == Method::POST {
                        return Err(warp::reject::not_found());
                    }
                    answer(&api, &method, &path, &headers, &[], None).await
                }
            }
        });
    let posts = ours
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(chanx_warp::peer_addr())
        .and(warp::body::content_length_limit(MAX_BODY as u64))
        .and(warp::body::bytes())
        .and_then(
            move |path: FullPath,
                  headers: HeaderMap,
                  peer: Option<SocketAddr>,
                  body: chanx::ws::Bytes| {
                let api = api.clone();
                async move {
                    let peer = peer.map(|addr| addr.ip());
                    answer(&api, &Method::POST, &path, &headers, &body, peer).await
                }
            },
        );
    let api = other_methods.or(posts).unify();
    chanx_warp::websockets(app.server.clone())
        .or(api)
        .unify()
        .or(chanx_warp::playground(app.server.clone()))
        .unify()
}

async fn answer(
    api: &Api,
    method: &Method,
    path: &FullPath,
    headers: &HeaderMap,
    body: &[u8],
    peer: Option<IpAddr>,
) -> Result<Response, Rejection> {
    let request = ApiRequest {
        method,
        path: path.as_str(),
        headers,
        body,
        peer,
    };
    match api.handle(request).await {
        Some(response) => Ok(response.into_response()),
        None => Err(warp::reject::not_found()),
    }
}

/// Logs each answered request at INFO, as the axum router's trace layer
/// does: method, path, status, latency, client address and request id.
pub fn request_log() -> warp::log::Log<impl Fn(warp::log::Info<'_>) + Copy> {
    warp::log::custom(|info| {
        let request_id = info
            .request_headers()
            .get("x-request-id")
            .and_then(|id| id.to_str().ok())
            .unwrap_or_default();
        tracing::info!(
            method = %info.method(),
            path = info.path(),
            status = info.status().as_u16(),
            latency = ?info.elapsed(),
            ip = %info.remote_addr().map(|addr| addr.ip().to_string()).unwrap_or_default(),
            request_id,
            "finished processing request"
        );
    })
}
