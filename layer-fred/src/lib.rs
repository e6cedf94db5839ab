//! A Redis channel layer for chanx, on the [fred](https://docs.rs/fred)
//! client: groups and channel sends shared by every chanx server connected
//! to the same Redis.
//!
//! Start with [`FredLayer::connect`] and a [`FredConfig`], then hand the
//! layer to `chanx::Server::new`. The layer needs a tokio runtime (fred
//! runs on tokio); Redis 6 or later (the layer speaks RESP3).
//!
//! Delivery follows chanx's layer semantics — at most once, ordered per
//! sender, bounded inboxes, each message parsed once per process — and
//! the layer tells a group's members when they may have lost messages
//! (see [`FredLayer`], "Losing messages honestly").

mod config;
mod envelope;
mod error;
mod layer;
mod names;
mod subscriptions;

pub use config::FredConfig;
pub use error::Error;
pub use layer::FredLayer;
