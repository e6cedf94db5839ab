//! The quickstart on warp: the same HTTP API, playground and WebSockets as
//! on axum, from the same framework-neutral pieces.

use warp::filters::path::FullPath;
use warp::http::Method;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use crate::App;
use crate::api::{Api, MAX_BODY};

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
    let other_methods = ours.and(warp::method()).and_then({
        let api = api.clone();
        move |path: FullPath, method: Method| {
            let api = api.clone();
            async move {
                if method == Method::POST {
                    return Err(warp::reject::not_found());
                }
                answer(&api, &method, path.as_str(), &[]).await
            }
        }
    });
    let posts = ours
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY as u64))
        .and(warp::body::bytes())
        .and_then(move |path: FullPath, body: chanx::ws::Bytes| {
            let api = api.clone();
            async move { answer(&api, &Method::POST, path.as_str(), &body).await }
        });
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
    path: &str,
    body: &[u8],
) -> Result<Response, Rejection> {
    match api.handle(method, path, body).await {
        Some(response) => Ok(response.into_response()),
        None => Err(warp::reject::not_found()),
    }
}
