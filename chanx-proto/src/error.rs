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

/// Errors returned to the code that drives a [`Connection`](crate::Connection).
///
/// None of these is caused by what a client sends: client mistakes become
/// error frames. These report misuse of the API or values that cannot be
/// encoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The connection is closing or closed; the input was ignored.
    #[error("the connection is closed")]
    Closed,
    /// The input needs an open connection, but authentication has not finished.
    #[error("the connection is not open yet (authentication pending)")]
    NotOpen,
    /// `handle_auth` was called twice.
    #[error("authentication outcome already handled")]
    AlreadyAuthenticated,
    /// `message_handled`/`event_handled` was called with nothing delivered.
    #[error("no delivered {0} is waiting for completion")]
    NothingPending(&'static str),
    /// A value could not be serialized to JSON.
    #[error("could not encode the message as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// A group message's content must serialize to a JSON object.
    #[error("a group message must serialize to a JSON object")]
    ContentNotObject,
    /// A channel event delivered by the layer did not match this endpoint's event type.
    #[error("channel event rejected: {0:?}")]
    InvalidEvent(Vec<ValidationError>),
}

/// A configuration problem found when an endpoint's [`Protocol`](crate::Protocol) is built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
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
