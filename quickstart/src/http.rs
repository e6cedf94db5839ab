//! The HTTP side: login, the notify API (`myapp/views.py` in the seed),
//! the playground and the WebSocket fallback.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chanx::{Consumer, Server};
use chanx_axum::RouterExt;
use serde_json::json;

use crate::consumers::ChatConsumer;
use crate::login::{invalid_credentials_json, parse_login};
use crate::messages::{ChatEvent, NotifyPayload};
use crate::notify::parse_notification;
use crate::session::{DEFAULT_MAX_AGE, set_cookie_header};
use crate::store::{SignedSessionStore, now_unix};

#[derive(Clone)]
struct AppState {
    server: Server,
    store: SignedSessionStore,
}

/// The whole HTTP application.
pub fn router(server: Server, store: SignedSessionStore) -> Router {
    let state = AppState {
        server: server.clone(),
        store,
    };
    Router::new()
        .route("/auth/login/", post(login))
        .route("/api/notify/{room_id}/", post(notify))
        .with_state(state)
        .chanx_playground(server.clone())
        .chanx(server)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `POST /auth/login/`.
async fn login(State(state): State<AppState>, body: Bytes) -> Response {
    let request = match parse_login(&body) {
        Ok(r) => r,
        Err(error) => return json_response(StatusCode::BAD_REQUEST, error.to_json()),
    };
    let Some(user) = state
        .store
        .users()
        .check(&request.username, &request.password)
    else {
        tracing::info!(username = %request.username, "login refused");
        return json_response(StatusCode::UNAUTHORIZED, invalid_credentials_json());
    };
    let cookie = state.store.signer().sign(&user.username, now_unix());
    let set_cookie = set_cookie_header(&cookie, DEFAULT_MAX_AGE.as_secs());
    tracing::info!(username = %user.username, "logged in");
    (
        StatusCode::OK,
        [(header::SET_COOKIE, set_cookie)],
        axum::Json(json!({ "username": user.username })),
    )
        .into_response()
}

/// `POST /api/notify/<room_id>/`: sends the `notify` event to `chat_<room_id>`.
async fn notify(
    State(state): State<AppState>,
    Path(room_id): Path<String>,
    body: Bytes,
) -> Response {
    let notification = match parse_notification(&body) {
        Ok(n) => n,
        Err(error) => return json_response(StatusCode::BAD_REQUEST, error.to_json()),
    };
    let level = notification.level.as_str();
    let event = ChatEvent::Notify(NotifyPayload {
        content: notification.message.clone(),
        level: level.to_owned(),
    });
    let group = format!("chat_{room_id}");
    if let Err(error) = ChatConsumer::send_event(state.server.layer(), &group, &event).await {
        tracing::error!(%error, group, "notify event not sent");
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "detail": "Channel layer unavailable." }),
        );
    }
    json_response(
        StatusCode::OK,
        json!({ "status": "sent", "room_id": room_id, "message": notification.message, "level": level }),
    )
}
