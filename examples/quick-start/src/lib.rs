//! The Quick Start guide's application: an authenticated echo endpoint,
//! chat rooms with group messages, and a REST call that sends a channel
//! event into a room. `docs/quick-start.md` walks through it file by file.

pub mod chat;
pub mod chat_messages;
pub mod echo;
pub mod http;
pub mod messages;
pub mod sessions;

use chanx::auth::{IsAuthenticated, SessionAuthentication};
use chanx::layer::InMemoryLayer;
use chanx::routing::{RouteTable, include, path, re_path};
use chanx::{Endpoint, OriginPolicy, Server};

use crate::chat::ChatConsumer;
use crate::echo::EchoConsumer;
use crate::sessions::Sessions;

/// Browser origins allowed to open WebSockets (a request without `Origin`,
/// from a script or a command-line client, is always allowed).
pub const ALLOWED_ORIGINS: [&str; 2] = ["http://localhost:8000", "http://127.0.0.1:8000"];

/// The WebSocket endpoints, their routes and the channel layer.
pub fn build_server(sessions: Sessions) -> Result<Server, Box<dyn std::error::Error>> {
    let echo = Endpoint::builder(EchoConsumer::default)
        .authenticator(SessionAuthentication::new(sessions.clone()))
        .permission(IsAuthenticated)
        .build()?;
    let chat = Endpoint::builder(ChatConsumer::default)
        .authenticator(SessionAuthentication::new(sessions))
        .permission(IsAuthenticated)
        .build()?;
    let routes = RouteTable::new([include(
        "ws/",
        [include(
            "myapp/",
            [
                path("echo/", echo),
                re_path(r"chat/(?P<room_id>\w{1,100})/", chat),
            ],
        )],
    )])?;
    let server = Server::new(routes, InMemoryLayer::new())
        .origins(OriginPolicy::allow_list(ALLOWED_ORIGINS));
    Ok(server)
}
