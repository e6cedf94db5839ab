//! Topics: many named streams on one socket, in chanx 2.10's envelope.
//!
//! A topic frame is flat: the message's own keys plus the reserved
//! envelope keys `version` (always 1), `topic`, `ref` (a client request's
//! id, echoed on its direct replies) and `seq`. The core strips and checks
//! the envelope, keeps each connection's subscriptions, validates the
//! message against its topic type's message set, and stamps the envelope
//! on every reply and push.

use std::any::Any;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::case::{convert_keys, decamelize};
use crate::codec::{self, Decoded};
use crate::envelope::{LayerMessage, TopicEnvelope};
use crate::error::{ConfigError, EncodeError, ValidationError};
use crate::message::MessageSet;
use crate::schema::MessageSchema;

/// The envelope version this core speaks.
pub const ENVELOPE_VERSION: u64 = 1;

/// Group names are cut at this length and suffixed with a digest, so that
/// every topic maps to a group name every channel layer accepts.
const MAX_GROUP_NAME: usize = 99;

/// A topic type's pattern, such as `"room:{room_id}"`: literal text and
/// `{param}` parts, each param matching `[^:]+`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPattern {
    text: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Param(String),
}

impl TopicPattern {
    /// Parses a pattern. A parameter is `{name}` (a Rust-like identifier)
    /// and must end the pattern or be followed by `:`, since it matches
    /// everything up to the next `:`.
    ///
    /// ```
    /// let pattern = chanx_proto::topic::TopicPattern::parse("room:{room_id}").unwrap();
    /// assert_eq!(pattern.matches("room:lobby"), Some(vec![("room_id".into(), "lobby".into())]));
    /// assert_eq!(pattern.matches("room:"), None);
    /// assert_eq!(pattern.matches("room:a:b"), None);
    /// ```
    pub fn parse(pattern: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::TopicPattern {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| invalid("a `{` is not closed"))?;
                    let name = &rest[1..end];
                    let is_ident = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !is_ident {
                        return Err(invalid("a parameter name is not an identifier"));
                    }
                    if parts.iter().any(|p| p == &Part::Param(name.to_owned())) {
                        return Err(invalid("a parameter appears twice"));
                    }
                    rest = &rest[end + 1..];
                    if !(rest.is_empty() || rest.starts_with(':')) {
                        return Err(invalid(
                            "a parameter must end the pattern or be followed by `:`",
                        ));
                    }
                    parts.push(Part::Param(name.to_owned()));
                }
                found => {
                    let end = found.unwrap_or(rest.len());
                    if rest[..end].contains('}') {
                        return Err(invalid("a `}` is not opened"));
                    }
                    parts.push(Part::Literal(rest[..end].to_owned()));
                    rest = &rest[end..];
                }
            }
        }
        if parts.is_empty() {
            return Err(invalid("the pattern is empty"));
        }
        Ok(TopicPattern {
            text: pattern.to_owned(),
            parts,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parameter names, in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Param(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// The parameters of `topic` if it matches.
    pub fn matches(&self, topic: &str) -> Option<Vec<(String, String)>> {
        let mut rest = topic;
        let mut params = Vec::new();
        for part in &self.parts {
            match part {
                Part::Literal(literal) => rest = rest.strip_prefix(literal.as_str())?,
                Part::Param(name) => {
                    let end = rest.find(':').unwrap_or(rest.len());
                    if end == 0 {
                        return None;
                    }
                    params.push((name.clone(), rest[..end].to_owned()));
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(params)
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Decodes a stripped topic frame into the topic type's message, boxed.
type DecodeFn = dyn Fn(Value, &MessageSchema) -> Decoded<Box<dyn Any + Send + Sync>> + Send + Sync;

/// One topic type an endpoint mounts: its name (which names its groups),
/// its pattern and its incoming message set.
pub struct TopicType {
    name: String,
    pattern: TopicPattern,
    incoming: MessageSchema,
    decode: Box<DecodeFn>,
}

impl fmt::Debug for TopicType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicType")
            .field("name", &self.name)
            .field("pattern", &self.pattern)
            .finish_non_exhaustive()
    }
}

impl TopicType {
    /// A topic type named `name` (e.g. `RoomTopic`) serving `pattern`,
    /// whose clients send `M` (tagged by `action_key`).
    pub fn new<M: MessageSet + Sync>(
        name: impl Into<String>,
        pattern: &str,
        action_key: &str,
    ) -> Result<Self, ConfigError> {
        let incoming = MessageSchema::of::<M>(action_key)?;
        // As on the endpoint: `ping` is answered by the core unless the
        // topic type declares its own.
        let builtin_ping = !incoming.has_tag(codec::PING);
        Ok(TopicType {
            name: name.into(),
            pattern: TopicPattern::parse(pattern)?,
            incoming,
            decode: Box::new(move |value, schema| {
                match codec::decode_value::<M>(value, schema, builtin_ping) {
                    Decoded::Message(message) => Decoded::Message(Box::new(message)),
                    Decoded::BuiltinPing => Decoded::BuiltinPing,
                    Decoded::Invalid(errors) => Decoded::Invalid(errors),
                }
            }),
        })
    }

    /// The type's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type's pattern.
    pub fn pattern(&self) -> &TopicPattern {
        &self.pattern
    }

    /// What clients send on topics of this type.
    pub fn incoming(&self) -> &MessageSchema {
        &self.incoming
    }

    pub(crate) fn decode(&self, value: Value) -> Decoded<Box<dyn Any + Send + Sync>> {
        (self.decode)(value, &self.incoming)
    }
}

/// The channel-layer group of `topic` of type `type_name`: characters
/// outside `[A-Za-z0-9._-]` become `-`, the parts are joined with `.`, and
/// a name longer than 99 characters is cut and suffixed with a digest.
///
/// ```
/// use chanx_proto::topic::group_name;
/// assert_eq!(group_name("DiscussionTopic", "discussion:5"), "DiscussionTopic.discussion-5");
/// assert_eq!(group_name("T", &"x".repeat(500)).len(), 99);
/// ```
pub fn group_name(type_name: &str, topic: &str) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| match c {
                'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
                _ => '-',
            })
            .collect()
    };
    let name = format!("{}.{}", clean(type_name), clean(topic));
    if name.len() <= MAX_GROUP_NAME {
        return name;
    }
    // A digest of the topic and the type name (as given, before cleaning)
    // keeps cut names apart. FNV-1a, written out here so that the core
    // keeps its short dependency list.
    let digest = topic
        .bytes()
        .chain(type_name.bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    let suffix = format!("-{digest:016x}");
    let keep = MAX_GROUP_NAME - suffix.len();
    format!("{}{suffix}", &name[..keep])
}

/// The envelope of a topic frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The topic.
    pub topic: String,
    /// The client's request id, echoed on direct replies.
    pub reference: Option<String>,
}

impl Envelope {
    /// Stamps the envelope keys (`version`, `topic`, `ref`, and `seq` when
    /// given) onto a serialized JSON object.
    pub fn stamp(&self, frame: &str, seq: Option<u64>) -> String {
        #[derive(Serialize)]
        struct Keys<'a> {
            version: u64,
            topic: &'a str,
            #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
            reference: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            seq: Option<u64>,
        }
        let keys = Keys {
            version: ENVELOPE_VERSION,
            topic: &self.topic,
            reference: self.reference.as_deref(),
            seq,
        };
        // `{"version":1,...}` spliced into the frame's object: both are
        // objects the core serialized, so the text is valid JSON.
        let keys = serde_json::to_string(&keys).unwrap_or_default();
        crate::envelope::extend_object(frame, keys.strip_prefix('{').unwrap_or(&keys))
    }
}

/// A frame that named a topic, its envelope stripped and checked.
#[derive(Debug)]
pub(crate) struct TopicFrame {
    pub(crate) envelope: Envelope,
    pub(crate) message: Map<String, Value>,
}

/// The frame's envelope when it has a `topic` key: `Ok(None)` when it has
/// none (the endpoint's own handlers take it), the envelope's problems in
/// pydantic's shape when it is malformed.
pub(crate) fn split_envelope(
    mut object: Map<String, Value>,
    max_topic_length: usize,
) -> Result<Option<TopicFrame>, Vec<ValidationError>> {
    let Some(topic) = object.remove("topic") else {
        return Ok(None);
    };
    let mut errors = Vec::new();
    let topic = match topic {
        Value::String(topic) if topic.chars().count() > max_topic_length => {
            errors.push(ValidationError::new(
                "string_too_long",
                ["topic"],
                format!("String should have at most {max_topic_length} characters"),
            ));
            String::new()
        }
        Value::String(topic) => topic,
        _ => {
            errors.push(ValidationError::new(
                "string_type",
                ["topic"],
                "Input should be a valid string",
            ));
            String::new()
        }
    };
    let reference = match object.remove("ref") {
        None | Some(Value::Null) => None,
        Some(Value::String(reference)) => Some(reference),
        Some(_) => {
            errors.push(ValidationError::new(
                "string_type",
                ["ref"],
                "Input should be a valid string",
            ));
            None
        }
    };
    match object.remove("version") {
        None => {}
        Some(Value::Number(n)) if n.as_u64() == Some(ENVELOPE_VERSION) => {}
        Some(Value::Number(_)) => errors.push(ValidationError::new(
            "literal_error",
            ["version"],
            format!("Input should be {ENVELOPE_VERSION}"),
        )),
        Some(_) => errors.push(ValidationError::new(
            "int_type",
            ["version"],
            "Input should be a valid integer",
        )),
    }
    object.remove("seq");
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Some(TopicFrame {
        envelope: Envelope { topic, reference },
        message: object,
    }))
}

/// Decodes a stripped topic message with `camelize` applied to its keys.
pub(crate) fn decode_message(
    topic_type: &TopicType,
    message: Map<String, Value>,
    camelize: bool,
) -> Decoded<Box<dyn Any + Send + Sync>> {
    let value = Value::Object(message);
    let value = if camelize {
        convert_keys(value, decamelize)
    } else {
        value
    };
    topic_type.decode(value)
}

/// The group and the layer message of a broadcast of `content` (a
/// serialized JSON object) to `topic`, of the topic type named
/// `type_name`: what a handler's broadcast and server-side code send alike.
pub fn broadcast(
    type_name: &str,
    topic: &str,
    content: Box<serde_json::value::RawValue>,
) -> Result<(String, LayerMessage), EncodeError> {
    let envelope = TopicEnvelope::new(topic, content).map_err(|_| EncodeError::NotAnObject)?;
    Ok((group_name(type_name, topic), LayerMessage::Topic(envelope)))
}

/// A client's request on a topic, for the runtime
/// ([`Output::Topic`](crate::Output::Topic)).
#[derive(Debug)]
pub struct TopicRequest {
    /// The topic type, as an index into the protocol's
    /// [`topics`](crate::Protocol::topics).
    pub kind: usize,
    /// The topic and the request's `ref`.
    pub envelope: Envelope,
    /// The topic pattern's parameters.
    pub params: Vec<(String, String)>,
    /// What was asked.
    pub action: TopicAction,
}

/// What a [`TopicRequest`] asks.
#[derive(Debug)]
pub enum TopicAction {
    /// Subscribe: authorise, then call
    /// [`Connection::accept_subscription`](crate::Connection::accept_subscription)
    /// or [`Connection::refuse_topic`](crate::Connection::refuse_topic).
    Subscribe,
    /// The client unsubscribed (the core already confirmed it and left the
    /// group): run the topic type's unsubscribe hook.
    Unsubscribed,
    /// A valid message of the topic type's set, boxed (downcast it to the
    /// type's message set); report it with
    /// [`Connection::topic_message_handled`](crate::Connection::topic_message_handled).
    Message(Box<dyn Any + Send + Sync>),
}

/// Why a topic request was refused, with the error frame's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicRefusal {
    /// No mounted topic type matches the name.
    UnknownTopic,
    /// The topic type's authorisation said no.
    Unauthorized,
    /// A message on a topic the connection has not subscribed to.
    NotSubscribed,
    /// The connection holds as many subscriptions as it may.
    TooManySubscriptions,
}

impl TopicRefusal {
    /// The `reason` of the error frame.
    pub fn reason(self) -> &'static str {
        match self {
            TopicRefusal::UnknownTopic => "unknown_topic",
            TopicRefusal::Unauthorized => "unauthorized",
            TopicRefusal::NotSubscribed => "not_subscribed",
            TopicRefusal::TooManySubscriptions => "too_many_subscriptions",
        }
    }

    /// The `detail` of the error frame.
    pub fn detail(self, topic: &str, limit: usize) -> String {
        match self {
            TopicRefusal::UnknownTopic => format!("Unknown topic '{topic}'"),
            TopicRefusal::Unauthorized => format!("Not allowed to subscribe to '{topic}'"),
            TopicRefusal::NotSubscribed => format!("Not subscribed to '{topic}'"),
            TopicRefusal::TooManySubscriptions => {
                format!(
                    "Cannot subscribe to '{topic}': at most {limit} subscriptions per connection"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn patterns_parse_and_match() {
        let p = TopicPattern::parse("a:{x}:b:{y}").unwrap();
        assert_eq!(p.params().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(
            p.matches("a:1:b:two"),
            Some(vec![("x".into(), "1".into()), ("y".into(), "two".into())])
        );
        assert_eq!(p.matches("a:1:b:"), None);
        assert_eq!(p.matches("a:1:c:2"), None);
        assert_eq!(
            TopicPattern::parse("feed").unwrap().matches("feed"),
            Some(vec![])
        );
        for bad in [
            "",
            "room:{",
            "room:}",
            "room:{1x}",
            "{a}{b}",
            "{a}-x",
            "{a}:{a}",
        ] {
            assert!(TopicPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn group_names_are_clean_and_bounded() {
        assert_eq!(
            group_name("RoomTopic", "room:lobby"),
            "RoomTopic.room-lobby"
        );
        assert_eq!(group_name("T", "é ü/x"), "T.----x");
        let long_a = group_name("T", &format!("{}a", "x".repeat(200)));
        let long_b = group_name("T", &format!("{}b", "x".repeat(200)));
        assert_eq!(long_a.len(), 99);
        assert_ne!(long_a, long_b);
    }

    #[test]
    fn envelopes_are_stamped_and_split() {
        let envelope = Envelope {
            topic: "room:1".into(),
            reference: Some("7".into()),
        };
        assert_eq!(
            envelope.stamp(r#"{"action":"pong","payload":null}"#, None),
            r#"{"action":"pong","payload":null,"version":1,"topic":"room:1","ref":"7"}"#
        );
        let push = Envelope {
            topic: "t".into(),
            reference: None,
        };
        assert_eq!(
            push.stamp("{}", Some(3)),
            r#"{"version":1,"topic":"t","seq":3}"#
        );

        let Value::Object(frame) = json!({"version": 1, "topic": "t", "ref": "1", "action": "x"})
        else {
            unreachable!()
        };
        let split = split_envelope(frame, 200).unwrap().unwrap();
        assert_eq!(split.envelope.reference.as_deref(), Some("1"));
        assert_eq!(Value::Object(split.message), json!({"action": "x"}));

        let Value::Object(bad) = json!({"version": "x", "topic": 5, "ref": 1}) else {
            unreachable!()
        };
        let errors = split_envelope(bad, 200).unwrap_err();
        let locs: Vec<String> = errors.iter().map(|e| format!("{:?}", e.loc)).collect();
        assert_eq!(errors.len(), 3, "{locs:?}");
        let Value::Object(plain) = json!({"action": "x"}) else {
            unreachable!()
        };
        assert!(split_envelope(plain, 200).unwrap().is_none());
    }
}
