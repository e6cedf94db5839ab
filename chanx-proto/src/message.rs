//! The traits a message set satisfies, and the frames the core itself sends.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A set of incoming messages or channel events: an ordinary serde enum,
/// tagged by its action (or `handler`) field, with a JSON Schema.
///
/// Implemented automatically for every type with the required derives:
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use schemars::JsonSchema;
///
/// #[derive(Deserialize, Serialize, JsonSchema)]
/// struct MessagePayload { content: String }
///
/// #[derive(Deserialize, Serialize, JsonSchema)]
/// #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
/// enum Incoming { Echo(MessagePayload), Ping }
///
/// fn takes_a_set<M: chanx_proto::MessageSet>() {}
/// takes_a_set::<Incoming>();
/// ```
pub trait MessageSet: DeserializeOwned + schemars::JsonSchema + Send + 'static {}

impl<T: DeserializeOwned + schemars::JsonSchema + Send + 'static> MessageSet for T {}

/// The event set of an endpoint that handles no channel events.
///
/// It has no values: every event delivered to such an endpoint is rejected
/// (and logged by the driver), as chanx does for an unknown `handler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "handler")]
pub enum NoEvent {}

impl schemars::JsonSchema for NoEvent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NoEvent".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "oneOf": [] })
    }
}

/// A frame built by the core itself: `{"action": <action>, "payload": <payload>}`.
#[derive(Serialize)]
pub(crate) struct CoreFrame<'a, P: Serialize> {
    pub(crate) action: &'a str,
    pub(crate) payload: P,
}

/// Payload of the `authentication` frame.
#[derive(Serialize)]
pub(crate) struct AuthPayload<'a> {
    pub(crate) status_code: u16,
    pub(crate) status_text: &'a str,
    pub(crate) data: Detail<'a>,
}

/// Payload of the `group_gap` frame.
#[derive(Serialize)]
pub(crate) struct GapPayload<'a> {
    pub(crate) group: &'a str,
}

/// `{"detail": "..."}`.
#[derive(Serialize)]
pub(crate) struct Detail<'a> {
    pub(crate) detail: &'a str,
}

/// The reason phrase of an HTTP status code, as DRF reports it.
///
/// ```
/// assert_eq!(chanx_proto::status_text(403), "Forbidden");
/// ```
pub fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown Status",
    }
}
