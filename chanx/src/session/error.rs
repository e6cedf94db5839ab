//! What a handler's send can fail with.

use chanx_proto::EncodeError;

use crate::layer::LayerError;

/// Why a send failed.
///
/// Group messages sent from a handler are queued in order and performed by
/// the connection's layer worker, so a layer failure there is logged, not
/// returned; [`SendError::Layer`] comes from calls that wait for the layer
/// themselves, such as [`Consumer::send_event`](crate::Consumer::send_event).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The connection is closing or closed: nothing more reaches the client.
    #[error("the connection is closed")]
    Closed,
    /// The value could not be encoded as the frame or group message asked for.
    #[error("could not encode the message")]
    Encode(#[source] EncodeError),
    /// The channel layer failed.
    #[error("the channel layer failed")]
    Layer(#[source] LayerError),
    /// A subscription that did not happen: withdrawn by an unsubscribe
    /// while it was authorised, already there, or over the cap (the client
    /// was told).
    #[error("not subscribed to `{0}`")]
    NotSubscribed(String),
    /// A broadcast to a topic its topic type's pattern does not match.
    #[error("no topic type serves `{0}`")]
    UnknownTopic(String),
}

impl From<EncodeError> for SendError {
    fn from(error: EncodeError) -> Self {
        SendError::Encode(error)
    }
}

impl From<serde_json::Error> for SendError {
    fn from(error: serde_json::Error) -> Self {
        SendError::Encode(EncodeError::Json(error))
    }
}

impl From<LayerError> for SendError {
    fn from(error: LayerError) -> Self {
        SendError::Layer(error)
    }
}

impl From<chanx_proto::SendError> for SendError {
    fn from(error: chanx_proto::SendError) -> Self {
        match error {
            chanx_proto::SendError::Encode(error) => SendError::Encode(error),
            // A handler only runs on an open connection: "not open" there
            // means it is already gone.
            chanx_proto::SendError::Closed | chanx_proto::SendError::Misuse(_) => SendError::Closed,
        }
    }
}
