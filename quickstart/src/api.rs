//! The HTTP API (login and notify, `myapp/views.py` in chanx's Quick Start (Python)) without a
//! web framework: each adapter hands it the method, path and body of a
//! request and sends back the answer, so every framework serves the same
//! API byte for byte.

use std::net::IpAddr;
use std::sync::Arc;

use chanx::topic::Topic as _;
use chanx::{Consumer, OriginPolicy, Server};
use http::{HeaderMap, Method, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::consumers::ChatConsumer;
use crate::guards::{LoginThrottle, content_type_refusal, origin_refusal};
use crate::login::{invalid_credentials_json, parse_login};
use crate::messages::{ChatEvent, MessagePayload, NotifyPayload, RoomOutgoing};
use crate::notify::parse_notification;
use crate::rooms::RoomTopic;
use crate::session::{DEFAULT_MAX_AGE, set_cookie_header};
use crate::store::{SignedSessionStore, now_unix};

/// Largest request body the API reads; a larger one is refused with 413.
pub const MAX_BODY: usize = 1 << 20;

/// The API's state: the chanx server (for its layer), the session store,
/// the origins allowed to post, and the login throttle.
#[derive(Clone)]
pub struct Api {
    server: Server,
    store: SignedSessionStore,
    origins: OriginPolicy,
    throttle: Arc<LoginThrottle>,
}

/// One request to the API, as an adapter hands it over.
#[derive(Clone, Copy, Debug)]
pub struct ApiRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path, not decoded.
    pub path: &'a str,
    /// The headers (`Origin`, `Content-Type`).
    pub headers: &'a HeaderMap,
    /// The whole body.
    pub body: &'a [u8],
    /// The client's address, for the login throttle (clients of unknown
    /// address share one budget).
    pub peer: Option<IpAddr>,
}

impl Api {
    /// The API over `server` and `store`; browsers may post from `origins`
    /// only.
    pub fn new(server: Server, store: SignedSessionStore, origins: OriginPolicy) -> Self {
        Api {
            server,
            store,
            origins,
            throttle: Arc::new(LoginThrottle::default()),
        }
    }

    /// Answers a request to one of the API's paths; `None` for any other
    /// path (the adapter goes on to the playground, WebSockets or 404).
    ///
    /// Every method but `POST` gets 405; a foreign `Origin` 403, a body
    /// that is not JSON by its `Content-Type` 415, a client over its login
    /// budget 429 (see [`crate::guards`]).
    pub async fn handle(&self, request: ApiRequest<'_>) -> Option<Response<String>> {
        let ApiRequest {
            method,
            path,
            headers,
            body,
            peer,
        } = request;
        let route = Route::of(path)?;
        if method != Method::POST {
            let mut response = json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "detail": format!("Method \"{method}\" not allowed.") }),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, http::HeaderValue::from_static("POST"));
            return Some(response);
        }
        if let Some(refusal) =
            origin_refusal(&self.origins, headers).or_else(|| content_type_refusal(headers))
        {
            return Some(refusal);
        }
        Some(match route {
            Route::Login => self.login(body, peer),
            Route::Notify(room) => self.notify(&room, body).await,
        })
    }

    /// `POST /auth/login/`.
    fn login(&self, body: &[u8], peer: Option<IpAddr>) -> Response<String> {
        let request = match parse_login(body) {
            Ok(r) => r,
            Err(error) => return json_response(StatusCode::BAD_REQUEST, error.to_json()),
        };
        // Counted before the password is checked, so a throttled client
        // learns nothing about its guesses.
        if let Some(throttled) = self.throttle.refusal(peer) {
            return throttled;
        }
        let Some(user) = self
            .store
            .users()
            .check(&request.username, &request.password)
        else {
            tracing::info!(username = %request.username, "login refused");
            return json_response(StatusCode::UNAUTHORIZED, invalid_credentials_json());
        };
        let cookie = self.store.signer().sign(&user.username, now_unix());
        let set_cookie = set_cookie_header(&cookie, DEFAULT_MAX_AGE.as_secs());
        tracing::info!(username = %user.username, "logged in");
        let mut response = json_response(StatusCode::OK, json!({ "username": user.username }));
        if let Ok(value) = http::HeaderValue::from_str(&set_cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        response
    }

    /// `POST /api/notify/<room_id>/`: sends the `notify` event to `chat_<room_id>`.
    async fn notify(&self, room_id: &str, body: &[u8]) -> Response<String> {
        let notification = match parse_notification(body) {
            Ok(n) => n,
            Err(error) => return json_response(StatusCode::BAD_REQUEST, error.to_json()),
        };
        let level = notification.level.as_str();
        let event = ChatEvent::Notify(NotifyPayload {
            content: notification.message.clone(),
            level: level.to_owned(),
        });
        let group = format!("chat_{room_id}");
        let topic = RoomTopic::topic(room_id);
        let content = format!("{}: {}", level.to_uppercase(), notification.message);
        let broadcast = RoomOutgoing::Notify(MessagePayload { content });
        let layer = self.server.layer();
        let (event_sent, broadcast_sent) = futures_util::future::join(
            ChatConsumer::send_event(layer, &group, &event),
            RoomTopic::broadcast(layer, &topic, &broadcast),
        )
        .await;
        // A room id that names no topic (`a:b`) has no topic subscribers.
        let broadcast_sent = match broadcast_sent {
            Err(chanx::SendError::UnknownTopic(_)) => Ok(()),
            other => other,
        };
        if let Err(error) = event_sent.and(broadcast_sent) {
            tracing::error!(%error, group, topic, "notification not sent");
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

    /// Whether `path` is one of the API's (before reading any body).
    pub fn serves(path: &str) -> bool {
        Route::of(path).is_some()
    }
}

enum Route {
    Login,
    /// The room id, percent-decoded as the WebSocket routes decode it
    /// (`caf%C3%A9` is the room `café`).
    Notify(String),
}

impl Route {
    fn of(path: &str) -> Option<Self> {
        if path == "/auth/login/" {
            return Some(Route::Login);
        }
        let raw = path.strip_prefix("/api/notify/")?.strip_suffix('/')?;
        let room = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?;
        (!room.is_empty() && !room.contains('/')).then(|| Route::Notify(room.into_owned()))
    }
}

/// A JSON answer with `status`.
pub(crate) fn json_response(status: StatusCode, body: Value) -> Response<String> {
    let mut response = Response::new(body.to_string());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
