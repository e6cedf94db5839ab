//! Frame decoding: one serde pass on the fast path, the full pydantic-shaped
//! error list on the slow path.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::case::{camelize, convert_keys, decamelize};
use crate::error::ValidationError;
use crate::schema::{MessageSchema, TagLookup};

mod camel;
mod strict;

pub(crate) use camel::camelize_text;

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
/// A valid frame costs one `serde_json` pass over its bytes, list fields
/// and decamelized keys included (a reading that refuses structs read from
/// arrays, as pydantic does, and decamelizes keys as it goes). A frame
/// serde refuses, or one the single pass cannot vouch for, is parsed again
/// into a [`Value`] and checked against the schema, which explains every
/// problem.
pub fn decode<M: DeserializeOwned>(
    text: &str,
    schema: &MessageSchema,
    decamelize_keys: bool,
    builtin_ping: bool,
) -> Decoded<M> {
    if let Some(message) = decode_in_one_pass(text, decamelize_keys) {
        return Decoded::Message(message);
    }
    decode_on_schema_path(text, schema, decamelize_keys, builtin_ping)
}

/// The slow path: the frame as a [`Value`], keys converted, checked
/// against the schema (with pydantic's lax coercions), then decoded.
fn decode_on_schema_path<M: DeserializeOwned>(
    text: &str,
    schema: &MessageSchema,
    decamelize_keys: bool,
    builtin_ping: bool,
) -> Decoded<M> {
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

/// The fast path: `M` read straight from the text, when the reading is
/// sure to agree with the schema path.
fn decode_in_one_pass<M: DeserializeOwned>(text: &str, decamelize_keys: bool) -> Option<M> {
    let needs_schema_path = std::cell::Cell::new(false);
    let reading = strict::Reading::new(decamelize_keys, &needs_schema_path);
    let mut json = serde_json::Deserializer::from_str(text);
    let message = M::deserialize(strict::Strict::new(&mut json, reading)).ok()?;
    json.end().ok()?;
    (!needs_schema_path.get()).then_some(message)
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

/// Encodes a value as a compact JSON text frame, camelizing its keys if asked
/// (in the same single pass, for every shape but tuple and struct variants).
pub fn encode<T: Serialize + ?Sized>(value: &T, camelize_keys: bool) -> serde_json::Result<String> {
    if !camelize_keys {
        return serde_json::to_string(value);
    }
    if let Some(frame) = camel::to_camel_string(value) {
        return frame;
    }
    let v = serde_json::to_value(value)?;
    serde_json::to_string(&convert_keys(v, camelize))
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
            camelize_text(&self.0)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use proptest::sample::select;
    use schemars::JsonSchema;
    use serde::Deserialize;
    use serde_json::{Map, Value, json};

    use super::*;

    #[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
    struct Item {
        item_name: String,
        count: i64,
    }

    /// A payload with every shape the one-pass reading must get right.
    #[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
    struct Order {
        tags: Vec<String>,
        line_items: Vec<Item>,
        gift_wrap: Option<Item>,
        unit_prices: BTreeMap<String, i64>,
    }

    #[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
    #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    enum Message {
        PlaceOrder(Order),
        Plain(Item),
    }

    fn schema() -> MessageSchema {
        MessageSchema::of::<Message>("action").expect("schema")
    }

    fn on_schema_path(text: &str, decamelize_keys: bool) -> Option<Message> {
        match decode_on_schema_path::<Message>(text, &schema(), decamelize_keys, false) {
            Decoded::Message(message) => Some(message),
            _ => None,
        }
    }

    fn order() -> Message {
        Message::PlaceOrder(Order {
            tags: vec!["a".into(), "b".into()],
            line_items: vec![Item {
                item_name: "tea".into(),
                count: 2,
            }],
            gift_wrap: Some(Item {
                item_name: "paper".into(),
                count: 1,
            }),
            unit_prices: BTreeMap::from([("tea".into(), 3)]),
        })
    }

    #[test]
    fn list_fields_take_one_pass() {
        let text = serde_json::to_string(&order()).expect("json");
        assert!(text.contains('['));
        assert_eq!(decode_in_one_pass::<Message>(&text, false), Some(order()));
    }

    #[test]
    fn camelized_keys_take_one_pass() {
        let camel = convert_keys(serde_json::to_value(order()).expect("json"), camelize);
        let text = camel.to_string();
        assert!(text.contains("lineItems") && text.contains("itemName"));
        assert_eq!(decode_in_one_pass::<Message>(&text, true), Some(order()));
        // Without decamelizing, the camel keys are missing fields.
        assert_eq!(decode_in_one_pass::<Message>(&text, false), None);
    }

    #[test]
    fn structs_never_read_from_arrays() {
        for text in [
            r#"["plain",{"item_name":"x","count":1}]"#,
            r#"{"action":"plain","payload":["x",1]}"#,
            r#"{"action":"place_order","payload":{"tags":[],"line_items":[["x",1]],"gift_wrap":null,"unit_prices":{}}}"#,
            // The payload before its tag is buffered by serde through
            // `deserialize_any`: an array in it leaves the frame to the
            // schema path.
            r#"{"payload":["x",1],"action":"plain"}"#,
        ] {
            assert_eq!(decode_in_one_pass::<Message>(text, false), None, "{text}");
            assert_eq!(on_schema_path(text, false), None, "{text}");
        }
        // A buffered payload without arrays is read in one pass.
        let text = r#"{"payload":{"item_name":"x","count":1},"action":"plain"}"#;
        let plain = Message::Plain(Item {
            item_name: "x".into(),
            count: 1,
        });
        assert_eq!(
            decode_in_one_pass::<Message>(text, false),
            Some(plain.clone())
        );
        assert_eq!(on_schema_path(text, false), Some(plain));
    }

    #[test]
    fn trailing_text_is_refused() {
        let text = r#"{"action":"plain","payload":{"item_name":"x","count":1}} x"#;
        assert_eq!(decode_in_one_pass::<Message>(text, false), None);
    }

    /// A frame made from a valid message, then perhaps camelized, reordered
    /// (payload first) or with one of its objects turned into an array.
    fn frame() -> impl Strategy<Value = (String, bool)> {
        let item = ("[a-zA-Z_]{0,6}", any::<i64>())
            .prop_map(|(item_name, count)| Item { item_name, count });
        let message = prop_oneof![
            item.clone().prop_map(Message::Plain),
            (
                proptest::collection::vec("[a-z]{0,3}", 0..3),
                proptest::collection::vec(item.clone(), 0..3),
                proptest::option::of(item),
                proptest::collection::btree_map("[a-zA-Z_]{1,6}", any::<i64>(), 0..3),
            )
                .prop_map(|(tags, line_items, gift_wrap, unit_prices)| {
                    Message::PlaceOrder(Order {
                        tags,
                        line_items,
                        gift_wrap,
                        unit_prices,
                    })
                }),
        ];
        let to_array = prop::option::of(select(vec![
            "",
            "/payload",
            "/payload/line_items/0",
            "/payload/gift_wrap",
        ]));
        (message, any::<bool>(), any::<bool>(), to_array).prop_map(
            |(message, camel, payload_first, to_array)| {
                let mut value = serde_json::to_value(&message).expect("json");
                if let Some(object) = to_array.and_then(|at| value.pointer_mut(at))
                    && let Value::Object(fields) = object
                {
                    *object = Value::Array(fields.values().cloned().collect());
                }
                if camel {
                    value = convert_keys(value, camelize);
                }
                if payload_first && let Value::Object(object) = &value {
                    let reordered: Map<String, Value> = object
                        .iter()
                        .rev()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    value = Value::Object(reordered);
                }
                (value.to_string(), camel)
            },
        )
    }

    proptest! {
        /// Whatever the one pass returns, the schema path returns too; and
        /// an untouched frame in the usual order always takes the one pass.
        #[test]
        fn one_pass_agrees_with_the_schema_path((text, camel) in frame()) {
            if let Some(fast) = decode_in_one_pass::<Message>(&text, camel) {
                prop_assert_eq!(Some(fast), on_schema_path(&text, camel), "{}", text);
            }
        }

        #[test]
        fn valid_frames_take_one_pass(message in any::<i64>().prop_map(|count| Message::Plain(Item { item_name: "x".into(), count }))) {
            let text = serde_json::to_string(&message).expect("json");
            prop_assert_eq!(decode_in_one_pass::<Message>(&text, false), Some(message));
        }
    }

    #[test]
    fn value_fields_with_arrays_take_the_schema_path() {
        #[derive(Debug, PartialEq, Deserialize, JsonSchema)]
        #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
        enum Raw {
            Raw(Value),
        }
        let text = json!({"action": "raw", "payload": {"list": [1, 2]}}).to_string();
        assert_eq!(decode_in_one_pass::<Raw>(&text, false), None);
        let text = json!({"action": "raw", "payload": {"key": 1}}).to_string();
        assert_eq!(
            decode_in_one_pass::<Raw>(&text, false),
            Some(Raw::Raw(json!({"key": 1})))
        );
    }
}
