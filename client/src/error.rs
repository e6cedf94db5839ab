//! What can go wrong, classified by type.

use crate::frame::{AuthenticationResult, ErrorPayload};

/// An error of a chanx client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL or a header is not valid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The server refused the upgrade with an HTTP status (404: no endpoint
    /// at this path, 403: origin not allowed, 503: shutting down).
    #[error("upgrade refused with HTTP {status}")]
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// The server accepted the upgrade but refused the connection in its
    /// `authentication` frame (it then closes with 4000 + status).
    #[error("authentication refused: {} {}", .0.status_code, .0.status_text)]
    Authentication(AuthenticationResult),
    /// The connection closed (the close code, when the server sent one).
    #[error("connection closed (code {code:?})")]
    Closed {
        /// The close code.
        code: Option<u16>,
    },
    /// No frame within the time asked for.
    #[error("no frame within {0:?}")]
    Timeout(std::time::Duration),
    /// A frame that is none of the expected messages.
    #[error("unexpected frame ({reason}): {text}")]
    UnexpectedFrame {
        /// The frame (at most 512 characters of it).
        text: String,
        /// Why it did not decode.
        reason: String,
    },
    /// An `error` frame where one of the endpoint's messages was expected.
    #[error("the endpoint answered with an error: {0:?}")]
    ErrorFrame(ErrorPayload),
    /// A message that does not serialize.
    #[error("message does not serialize: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The WebSocket transport failed.
    #[error("WebSocket error: {0}")]
    Transport(#[source] Box<tokio_tungstenite::tungstenite::Error>),
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(error: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error as WsError;
        match error {
            WsError::Http(response) => Error::Refused {
                status: response.status().as_u16(),
            },
            WsError::ConnectionClosed | WsError::AlreadyClosed => Error::Closed { code: None },
            WsError::Url(e) => Error::InvalidRequest(e.to_string()),
            other => Error::Transport(Box::new(other)),
        }
    }
}
