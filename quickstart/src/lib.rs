//! The chanx Quick Start as a program: its echo endpoint, chat
//! rooms with group messages, and a REST call that pushes a typed channel
//! event into a room.
//!
//! Built only on the public API of `chanx`, its adapters and `chanx-fred`;
//! [`build_app`] assembles everything so tests can serve it on any port.

pub mod api;
pub mod config;
pub mod consumers;
pub mod guards;
pub mod http;
pub mod login;
pub mod messages;
pub mod notify;
pub mod rooms;
pub mod session;
pub mod store;
pub mod warp;

use chanx::Server;
use chanx::auth::IsAuthenticated;
use chanx::layer::InMemoryLayer;
use chanx::routing::{RouteTable, include, path, re_path};

pub use config::{Adapter, Config, ConfigError};

/// Everything `serve` runs: the chanx server and the HTTP router.
pub struct App {
    /// WebSocket routes, layer, origins, shutdown.
    pub server: Server,
    /// The axum router (HTTP API, playground, WebSockets).
    pub router: axum::Router,
    /// The HTTP API without a framework, for the other adapters.
    pub api: api::Api,
}

/// `authentication_classes = [SessionAuthentication]` and
/// `permission_classes = [IsAuthenticated]` of chanx's Quick Start (Python),
/// shared by both endpoints.
fn secured<C: chanx::Consumer>(
    builder: chanx::EndpointBuilder<C>,
    store: &store::SignedSessionStore,
    config: &Config,
) -> chanx::EndpointBuilder<C> {
    builder
        .authenticator(chanx::auth::SessionAuthentication::new(store.clone()))
        .permission(IsAuthenticated)
        .options(config.options.clone())
}

/// Builds the WebSocket routes, the HTTP API and the playground on the
/// embedded in-memory channel layer.
pub fn build_app(config: &Config) -> Result<App, ConfigError> {
    build_app_on(config, InMemoryLayer::new())
}

/// [`build_app`] on a channel layer of your choice (Redis, for several
/// processes).
pub fn build_app_on(
    config: &Config,
    layer: impl chanx::layer::ChannelLayer,
) -> Result<App, ConfigError> {
    let store = store::SignedSessionStore::new(
        config.secret_key.as_bytes(),
        login::DemoUsers::new(config.demo_password.clone()),
    );
    let echo = secured(
        chanx::Endpoint::builder(consumers::EchoConsumer::default),
        &store,
        config,
    )
    .description("Simple echo consumer with authentication.")
    .build()?;
    let chat = secured(
        chanx::Endpoint::builder(consumers::ChatConsumer::default),
        &store,
        config,
    )
    .description("Chat consumer with room-based groups and event handling.")
    .build()?;
    // Rooms over one socket: the echo consumer's frames, plus the topic
    // type `room:<room_id>`.
    let rooms = secured(
        chanx::Endpoint::builder(consumers::EchoConsumer::default),
        &store,
        config,
    )
    .name("RoomsConsumer")
    .description("Rooms over one socket: subscribe to room:<room_id> topics.")
    .topic(rooms::RoomTopic)
    .build()?;
    let routes = RouteTable::new([include(
        "ws/",
        [include(
            "myapp/",
            [
                path("echo/", echo),
                re_path(r"chat/(?P<room_id>\w{1,100})/", chat),
                path("rooms/", rooms),
            ],
        )],
    )])?;
    let origins = chanx::OriginPolicy::allow_list(&config.allowed_origins);
    let server = Server::new(routes, layer).origins(origins.clone());
    let api = api::Api::new(server.clone(), store, origins);
    let router = http::router(server.clone(), api.clone());
    Ok(App {
        server,
        router,
        api,
    })
}
