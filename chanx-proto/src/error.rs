//! Error values of the core: validation entries sent to clients, and the
//! errors returned to the code driving a connection.

use serde::{Deserialize, Serialize};

/// One element of a validation error's `loc` path: an object key or a list index.
///
/// Serializes as a bare JSON string or integer, as pydantic does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LocItem {
    /// An object key (or the action tag, as the first element).
    Key(String),
    /// A position in a list.
    Index(usize),
}

impl From<&str> for LocItem {
    fn from(key: &str) -> Self {
        LocItem::Key(key.to_owned())
    }
}

impl From<usize> for LocItem {
    fn from(index: usize) -> Self {
        LocItem::Index(index)
    }
}

/// One problem with an incoming frame, in pydantic's `errors()` shape.
///
/// ```
/// use chanx_proto::ValidationError;
/// let e = ValidationError::new("missing", ["echo", "payload", "content"], "Field required");
/// assert_eq!(
///     serde_json::to_string(&e).unwrap(),
///     r#"{"type":"missing","loc":["echo","payload","content"],"msg":"Field required"}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// Stable machine-readable code (`missing`, `string_type`, `union_tag_invalid`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Path to the offending value; starts with the action when the tag is known.
    pub loc: Vec<LocItem>,
    /// Human-readable sentence, pydantic's wording where pydantic has one.
    pub msg: String,
}

impl ValidationError {
    /// Builds an entry from its three parts.
    pub fn new<L: Into<LocItem>>(
        kind: &str,
        loc: impl IntoIterator<Item = L>,
        msg: impl Into<String>,
    ) -> Self {
        ValidationError {
            kind: kind.to_owned(),
            loc: loc.into_iter().map(Into::into).collect(),
            msg: msg.into(),
        }
    }

    /// An entry about the frame as a whole (`loc` is `[]`).
    pub fn frame(kind: &str, msg: impl Into<String>) -> Self {
        ValidationError {
            kind: kind.to_owned(),
            loc: Vec::new(),
            msg: msg.into(),
        }
    }
}

/// A call a correct runtime never makes.
///
/// Everything a client or the channel layer causes — a bad frame, a
/// rejected event, a connection that closed in the meantime — comes out of
/// [`poll_output`](crate::Connection::poll_output) instead, so a runtime can
/// treat every `ProtoError` as a bug in itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The input needs an open connection, but authentication has not been
    /// applied yet ([`handle_auth`](crate::Connection::handle_auth) comes first).
    #[error("the connection is not open yet (authentication pending)")]
    NotOpen,
    /// `handle_auth` was called twice.
    #[error("authentication outcome already handled")]
    AlreadyAuthenticated,
    /// `message_handled`/`event_handled` was called with nothing delivered.
    #[error("no delivered {0} is waiting for completion")]
    NothingPending(&'static str),
}

/// Why a value could not be turned into a frame or a group message.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The value could not be serialized to JSON.
    #[error("could not encode the message as JSON")]
    Json(#[from] serde_json::Error),
    /// A group message must serialize to a JSON object.
    #[error("a group message must serialize to a JSON object")]
    NotAnObject,
}

/// Why a `send_*` call did not queue anything.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The connection is closing or closed: nothing more reaches the client.
    #[error("the connection is closed")]
    Closed,
    /// The value could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Misuse: the connection is not open yet.
    #[error(transparent)]
    Misuse(#[from] ProtoError),
}

impl From<serde_json::Error> for SendError {
    fn from(error: serde_json::Error) -> Self {
        SendError::Encode(EncodeError::Json(error))
    }
}

/// A configuration problem found when an endpoint's [`Protocol`](crate::Protocol) is built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A topic pattern that cannot be matched as written.
    #[error("invalid topic pattern `{pattern}`: {reason}")]
    TopicPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two topic types of one endpoint share a name or a pattern.
    #[error("two topic types of one endpoint are both `{0}`")]
    DuplicateTopicType(String),
    /// An option has a value outside its allowed range; names the option.
    #[error("invalid option `{field}`: {reason}")]
    InvalidOption {
        /// The option's name.
        field: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// The message type's schema does not describe an action-tagged message set.
    #[error("message type `{type_name}` is not tagged by `{key}`: {reason}")]
    NotTagged {
        /// Rust type name of the offending message set.
        type_name: String,
        /// The tag key looked for.
        key: String,
        /// What was found instead.
        reason: String,
    },
}
