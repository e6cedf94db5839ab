//! The HTTP side: log in, send a notification to a room, and the router
//! that serves them beside the WebSockets and the playground.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chanx::{Consumer, Server, User};
use chanx_axum::RouterExt;
use serde::Deserialize;
use serde_json::json;

use crate::chat::ChatConsumer;
use crate::chat_messages::{ChatEvent, NotifyPayload};
use crate::sessions::Sessions;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The chanx server (its channel layer sends events).
    pub server: Server,
    /// The logged-in sessions.
    pub sessions: Sessions,
}

/// The whole application: HTTP API, playground, WebSockets.
pub fn router(state: AppState) -> Router {
    let server = state.server.clone();
    Router::new()
        .route("/auth/login/", post(login))
        .route("/api/notify/{room_id}/", post(notify))
        .with_state(state)
        .chanx_playground(server.clone())
        .chanx(server)
}

/// `POST /auth/login/` body.
#[derive(Deserialize)]
pub struct Login {
    username: String,
    password: String,
}

/// Logs in a demo user (`alice`, `bob` or `carol`, password `chanx-demo`)
/// and sets the `sessionid` cookie.
async fn login(State(state): State<AppState>, Json(body): Json<Login>) -> Response {
    let demo_users = ["alice", "bob", "carol"];
    // A demo: a real application checks a password hash.
    let Some(pk) = demo_users.iter().position(|name| *name == body.username) else {
        return invalid_credentials();
    };
    if body.password != "chanx-demo" {
        return invalid_credentials();
    }
    let session = state
        .sessions
        .log_in(User::new(pk + 1, body.username.clone()));
    let cookie = format!("sessionid={session}; HttpOnly; Path=/; SameSite=Lax");
    let reply = Json(json!({ "username": body.username }));
    ([(header::SET_COOKIE, cookie)], reply).into_response()
}

fn invalid_credentials() -> Response {
    let detail = json!({ "detail": "Invalid username or password." });
    (StatusCode::UNAUTHORIZED, Json(detail)).into_response()
}

/// `POST /api/notify/<room_id>/` body.
#[derive(Deserialize)]
pub struct Notify {
    message: String,
    #[serde(default = "info")]
    level: String,
}

fn info() -> String {
    "info".to_owned()
}

/// Sends the `notify` event to every chat client in the room.
async fn notify(
    State(state): State<AppState>,
    Path(room_id): Path<String>,
    Json(body): Json<Notify>,
) -> Response {
    let event = ChatEvent::Notify(NotifyPayload {
        content: body.message.clone(),
        level: body.level.clone(),
    });
    let group = format!("chat_{room_id}");
    match ChatConsumer::send_event(state.server.layer(), &group, &event).await {
        Ok(()) => Json(json!({
            "status": "sent",
            "room_id": room_id,
            "message": body.message,
            "level": body.level,
        }))
        .into_response(),
        Err(error) => {
            let detail = json!({ "detail": error.to_string() });
            (StatusCode::SERVICE_UNAVAILABLE, Json(detail)).into_response()
        }
    }
}
