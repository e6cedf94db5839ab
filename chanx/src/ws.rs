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

/// A transport failure.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// A frame exceeded the transport's own size limit (answered with
    /// close code 1009).
    #[error("frame over the transport's size limit: {0}")]
    TooBig(String),
    /// The socket broke or the peer violated the protocol.
    #[error("websocket transport error: {0}")]
    Transport(String),
}

impl SocketError {
    /// A generic transport failure.
    pub fn new(message: impl std::fmt::Display) -> Self {
        SocketError::Transport(message.to_string())
    }

    /// A frame over the transport's size limit.
    pub fn too_big(message: impl std::fmt::Display) -> Self {
        SocketError::TooBig(message.to_string())
    }

    /// Whether this is a frame over the size limit.
    pub fn is_too_big(&self) -> bool {
        matches!(self, SocketError::TooBig(_))
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
