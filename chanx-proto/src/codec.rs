//! Frame decoding: one serde pass on the fast path, the full pydantic-shaped
//! error list on the slow path.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::case::{camelize, convert_keys, decamelize};
use crate::error::ValidationError;
use crate::schema::{MessageSchema, TagLookup};

/// The result of decoding one client frame.
#[derive(Debug)]
pub enum Decoded<M> {
    /// A valid message of the endpoint's set.
    Message(M),
    /// `{"action": "ping"}` for an endpoint whose set does not declare `ping`.
    BuiltinPing,
    /// The frame is invalid; every problem found.
    Invalid(Vec<ValidationError>),
}

/// The action a built-in ping uses.
pub const PING: &str = "ping";

/// Decodes a text frame into `M`.
///
/// With `decamelize` off, a valid frame costs one `serde_json` pass over its
/// bytes. A frame serde refuses is parsed again into a
/// [`Value`] to explain every problem.
pub fn decode<M: DeserializeOwned>(
    text: &str,
    schema: &MessageSchema,
    decamelize_keys: bool,
    builtin_ping: bool,
) -> Decoded<M> {
    // serde would also read a struct from a JSON array (`["echo", {...}]`),
    // which pydantic refuses: frames holding an array take the schema path.
    if !decamelize_keys
        && !text.contains('[')
        && let Ok(message) = serde_json::from_str::<M>(text)
    {
        return Decoded::Message(message);
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Decoded::Invalid(vec![ValidationError::frame(
                "json_invalid",
                format!("Invalid JSON: {e}"),
            )]);
        }
    };
    let value = if decamelize_keys {
        convert_keys(value, decamelize)
    } else {
        value
    };
    decode_value(value, schema, builtin_ping)
}

pub(crate) fn decode_value<M: DeserializeOwned>(
    mut value: Value,
    schema: &MessageSchema,
    builtin_ping: bool,
) -> Decoded<M> {
    let Value::Object(object) = &mut value else {
        return Decoded::Invalid(vec![ValidationError::frame(
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
        )]);
    };
    let extra: &[&str] = if builtin_ping { &[PING] } else { &[] };
    let tag = match schema.lookup_tag(object) {
        TagLookup::Missing => return Decoded::Invalid(vec![schema.missing_tag_error()]),
        TagLookup::Unknown(Value::String(tag)) if builtin_ping && tag == PING => {
            return match object.get("payload") {
                None | Some(Value::Null) => Decoded::BuiltinPing,
                Some(_) => Decoded::Invalid(vec![ValidationError::new(
                    "none_required",
                    [PING, "payload"],
                    "Input should be None",
                )]),
            };
        }
        TagLookup::Unknown(found) => {
            return Decoded::Invalid(vec![schema.unknown_tag_error(found, extra)]);
        }
        TagLookup::Known(tag) => tag.to_owned(),
    };
    let errors = schema.validate_variant(&tag, object);
    if !errors.is_empty() {
        return Decoded::Invalid(errors);
    }
    // The schema accepted the frame after pydantic's lax coercions
    // (`"5"` for an integer, ...): decode the coerced value.
    match M::deserialize(&value) {
        Ok(message) => Decoded::Message(message),
        // serde refused what the schema accepts (a custom `Deserialize`,
        // say): report it without echoing the input.
        Err(_) => Decoded::Invalid(vec![ValidationError::new(
            "value_error",
            [tag.as_str()],
            "Value error, the input does not match the message type",
        )]),
    }
}

/// Encodes a value as a compact JSON text frame, camelizing its keys if asked.
pub fn encode<T: Serialize + ?Sized>(value: &T, camelize_keys: bool) -> serde_json::Result<String> {
    if camelize_keys {
        let v = serde_json::to_value(value)?;
        serde_json::to_string(&convert_keys(v, camelize))
    } else {
        serde_json::to_string(value)
    }
}

/// A message serialized to JSON text once, ahead of the connection that
/// sends it (a handler on another task, say): only [`Serialized::new`]
/// makes one, so the text is always valid JSON.
///
/// ```
/// let message = chanx_proto::Serialized::new(&serde_json::json!({"action": "x"})).unwrap();
/// assert_eq!(message.as_str(), r#"{"action":"x"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serialized(String);

impl Serialized {
    /// Serializes `value` (keys as written; the connection camelizes when
    /// its endpoint asks for it).
    pub fn new<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        serde_json::to_string(value).map(Serialized)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The frame to send: the text itself, or with camelized keys.
    pub(crate) fn into_frame(self, camelize_keys: bool) -> serde_json::Result<String> {
        if camelize_keys {
            let value: serde_json::Value = serde_json::from_str(&self.0)?;
            encode(&value, true)
        } else {
            Ok(self.0)
        }
    }
}

/// Reads the value of the tag key `key` of a JSON object frame without
/// decoding the rest, for logging. `None` if absent or not a string.
///
/// ```
/// assert_eq!(chanx_proto::codec::peek_action(r#"{"payload":1,"action":"echo"}"#, "action").as_deref(), Some("echo"));
/// ```
pub fn peek_action(text: &str, key: &str) -> Option<String> {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
    use std::fmt;

    struct Peek<'k>(&'k str);
    impl<'de> Visitor<'de> for Peek<'_> {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if k == self.0 && found.is_none() {
                    found = map.next_value::<Value>()?.as_str().map(str::to_owned);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    impl<'de> DeserializeSeed<'de> for Peek<'_> {
        type Value = Option<String>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    Peek(key).deserialize(&mut de).ok().flatten()
}
