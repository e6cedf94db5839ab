//! What can go wrong, by kind.

use chanx::layer::LayerError;

/// A failure of the Redis channel layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration (usually the URL) is not valid for fred.
    #[error("invalid Redis configuration: {0}")]
    Config(#[source] fred::error::Error),
    /// A setting of [`FredConfig`](crate::FredConfig) is out of range.
    #[error("invalid channel layer setting `{field}`: {reason}")]
    Invalid {
        /// The setting, as [`FredConfig`](crate::FredConfig) names it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Redis could not be reached when the layer started.
    #[error("cannot connect to Redis at {url}: {source}")]
    Connect {
        /// The server URL, without its password.
        url: String,
        /// Why the connection failed.
        #[source]
        source: fred::error::Error,
    },
    /// Redis did not answer within the connect timeout when the layer started.
    #[error("no answer from Redis at {url} within {timeout:?}")]
    ConnectTimeout {
        /// The server URL, without its password.
        url: String,
        /// The configured connect timeout.
        timeout: std::time::Duration,
    },
    /// A command (publish, subscribe) failed or timed out.
    #[error("Redis command failed: {0}")]
    Command(#[source] fred::error::Error),
    /// The layer's background tasks have stopped (the layer is shutting down).
    #[error("the Redis channel layer is closed")]
    Closed,
}

impl From<Error> for LayerError {
    fn from(error: Error) -> Self {
        match error {
            Error::Closed => LayerError::Closed,
            other => LayerError::Backend(Box::new(other)),
        }
    }
}
