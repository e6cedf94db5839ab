//! The transport-neutral WebSocket socket that the driver runs over.
//!
//! Adapters map their framework's message type to [`WsMessage`] and hand
//! the driver a [`BoxSocket`].

use std::pin::Pin;

use futures_util::{Sink, Stream};

/// One WebSocket message, independent of the framework that carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsMessage {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A ping control frame.
    Ping(Vec<u8>),
    /// A pong control frame.
    Pong(Vec<u8>),
    /// A close frame with an optional code and reason.
    Close(Option<(u16, String)>),
}

/// A transport failure (the socket broke, the peer sent garbage, a frame
/// exceeded the transport's own size limit).
#[derive(Debug, thiserror::Error)]
#[error("websocket transport error: {message}")]
pub struct SocketError {
    /// What the transport reported.
    pub message: String,
    /// Whether the failure is a frame over the transport's size limit
    /// (answered with close code 1009).
    pub too_big: bool,
}

impl SocketError {
    /// A generic transport failure.
    pub fn new(message: impl std::fmt::Display) -> Self {
        SocketError {
            message: message.to_string(),
            too_big: false,
        }
    }

    /// A frame over the transport's size limit.
    pub fn too_big(message: impl std::fmt::Display) -> Self {
        SocketError {
            message: message.to_string(),
            too_big: true,
        }
    }
}

/// A WebSocket as a stream of incoming messages and a sink of outgoing ones.
pub trait Socket:
    Stream<Item = Result<WsMessage, SocketError>> + Sink<WsMessage, Error = SocketError> + Send
{
}

impl<T> Socket for T where
    T: Stream<Item = Result<WsMessage, SocketError>> + Sink<WsMessage, Error = SocketError> + Send
{
}

/// A boxed [`Socket`], what adapters hand to [`Server`](crate::Server).
pub type BoxSocket = Pin<Box<dyn Socket>>;
