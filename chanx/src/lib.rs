//! Typed, authenticated, group-aware WebSocket endpoints: the
//! runtime-agnostic layer of chanx, the Rust counterpart of Python's chanx
//! for Django Channels.
//!
//! You declare message sets as serde enums, write a [`Consumer`] with a
//! handler per message, say who may connect ([`auth`]) and which groups a
//! connection joins, and mount the [`RouteTable`](routing::RouteTable) of
//! [`Endpoint`]s in your web framework through an adapter (`chanx-axum`).
//! Server-side code anywhere pushes typed events into groups with
//! [`Consumer::send_event`]. Protocol decisions live in the Sans-IO core,
//! [`chanx_proto`]; this crate performs its I/O on any async runtime.
//!
//! The pieces:
//! - [`Consumer`], [`Context`]: what users implement and call.
//! - [`auth`]: authenticators, permissions, object loading (DRF's model).
//! - [`layer`]: the [`ChannelLayer`](layer::ChannelLayer) trait and [`InMemoryLayer`](layer::InMemoryLayer).
//! - [`routing`]: Django-like `path`/`re_path`/`include`.
//! - [`Server`]: what adapters call (route, origin check, run).
//! - [`testing`]: an in-process client for tests, no sockets needed.
//! - [`docs`]: playground data and the AsyncAPI document.

pub mod auth;
mod consumer;
pub mod docs;
mod driver;
mod endpoint;
mod handshake;
pub mod layer;
pub mod messages;
pub(crate) mod queue;
pub mod routing;
mod server;
mod session;
mod shutdown;
pub mod testing;
pub mod topic;
pub mod ws;

pub use chanx_proto::{self as proto, NoEvent, Options};
pub use consumer::{
    Consumer, Context, HandlerError, HandlerResult, NoGroupMessage, NoOutgoing, OutgoingSet,
};
pub use endpoint::{Endpoint, EndpointBuilder, EndpointInfo};
pub use handshake::{Handshake, User};
pub use server::{OriginPolicy, Refusal, Server, Upgrade};
pub use session::{LogSettings, SendError};
pub use shutdown::Shutdown;
pub use ws::{BoxSocket, Socket, SocketError, WsMessage};
