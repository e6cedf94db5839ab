//! What travels through the channel layer: group messages and channel
//! events, in chanx's envelope format.
//!
//! A [`LayerMessage`] is built once by the sender and shared (behind an
//! `Arc`) by every receiver in the process; each receiver only stamps
//! `is_mine`/`is_current` onto the already-serialized content.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// How a group message's content was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    /// A typed message of the sender's group-message set.
    Message,
    /// A raw JSON object.
    Json,
}

/// A group message: content plus who sent it.
#[derive(Clone, Debug)]
pub struct GroupEnvelope {
    content: Box<RawValue>,
    kind: ContentKind,
    exclude_current: bool,
    from_channel: String,
    from_user_pk: Box<RawValue>,
    /// Compact JSON of `from_user_pk` when it is truthy (Python's `bool()`).
    sender_key: Option<String>,
    /// The content already has `is_mine`/`is_current` keys (a forwarded
    /// frame): stamping must replace them, not append duplicates.
    carries_flags: bool,
    /// The sender's sequence number, set when one message targets several
    /// groups, so a member of more than one receives it once.
    seq: Option<u64>,
    /// `content` with camelized keys, once a camelizing receiver asked.
    camelized: OnceLock<Box<str>>,
}

/// A typed channel event: `{"handler": ..., "payload": ...}`.
#[derive(Clone, Debug)]
pub struct EventEnvelope {
    event_data: Box<RawValue>,
}

/// One message carried by a channel layer.
///
/// ```
/// use chanx_proto::LayerMessage;
/// let wire = r#"{"type":"handle_channel_event","event_data":{"handler":"notify","payload":{"content":"hi"}}}"#;
/// let msg = LayerMessage::from_json(wire.as_bytes()).unwrap();
/// assert_eq!(msg.to_json(), wire);
/// ```
#[derive(Clone, Debug)]
pub enum LayerMessage {
    /// `{"type": "send_group_member", ...}`.
    Group(GroupEnvelope),
    /// `{"type": "handle_channel_event", ...}`.
    Event(EventEnvelope),
    /// `{"type": "chanx.gap", "group": ...}`: the layer may have lost
    /// messages for `group` (a reconnect, a lagging receiver, a sequence
    /// gap). Built by a layer for its local members, never by a client.
    Gap(GapNotice),
    /// A broadcast to the subscribers of a topic.
    Topic(TopicEnvelope),
}

/// A broadcast to a topic's subscribers: the message (a JSON object,
/// already serialized) and the topic it is for, stamped onto it on
/// delivery.
#[derive(Clone, Debug)]
pub struct TopicEnvelope {
    topic: String,
    content: Box<RawValue>,
    /// The frame every subscriber gets (content plus `version` and
    /// `topic`), built once per broadcast rather than once per receiver.
    frame: String,
    /// `frame` and `content` with camelized keys, once a camelizing
    /// subscriber asked.
    camelized: [OnceLock<Box<str>>; 2],
}

impl TopicEnvelope {
    /// A broadcast of `content` (a JSON object) to `topic`.
    pub fn new(topic: impl Into<String>, content: Box<RawValue>) -> Result<Self, EnvelopeError> {
        if !is_object(&content) {
            return Err(EnvelopeError::ContentNotObject);
        }
        let topic = topic.into();
        let envelope = crate::topic::Envelope {
            topic,
            reference: None,
        };
        let frame = envelope.stamp(content.get(), None);
        Ok(TopicEnvelope {
            topic: envelope.topic,
            content,
            frame,
            camelized: Default::default(),
        })
    }

    /// The frame for subscribers: the content with `version` and `topic`.
    pub fn frame(&self) -> &str {
        &self.frame
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The message, serialized.
    pub fn content(&self) -> &str {
        self.content.get()
    }

    /// What a subscriber sends its client: the frame, or the content alone
    /// for a topic on its own route (`bare`); keys camelized if asked. The
    /// envelope keys are single words, which camelizing leaves alone.
    pub(crate) fn text_for(&self, bare: bool, camelize: bool) -> serde_json::Result<&str> {
        let (text, cache) = if bare {
            (self.content(), &self.camelized[0])
        } else {
            (self.frame(), &self.camelized[1])
        };
        if camelize {
            camelized_once(cache, text)
        } else {
            Ok(text)
        }
    }
}

/// What a [`LayerMessage::Gap`] says: which group may have lost messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GapNotice {
    group: String,
}

impl GapNotice {
    /// The group that may have lost messages.
    pub fn group(&self) -> &str {
        &self.group
    }
}

/// Why bytes from the layer are not a [`LayerMessage`].
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON, or fields of the wrong type.
    #[error("malformed layer message: {0}")]
    Json(#[from] serde_json::Error),
    /// `type` names no known message.
    #[error("unknown layer message type `{0}`")]
    UnknownType(String),
    /// A field the type requires is absent.
    #[error("layer message of type `{kind}` lacks `{field}`")]
    Missing {
        /// The message's `type`.
        kind: &'static str,
        /// The absent field.
        field: &'static str,
    },
    /// A group message's content is not a JSON object.
    #[error("group message content is not a JSON object")]
    ContentNotObject,
}

/// A JSON value kept raw; present even when it is `null` (an
/// `Option<Box<RawValue>>` would read `null` as absent).
#[derive(Default)]
struct Raw(Option<Box<RawValue>>);

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(|raw| Raw(Some(raw)))
    }
}

#[derive(Deserialize)]
struct WireIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    content: Raw,
    #[serde(rename = "kind")]
    content_kind: Option<ContentKind>,
    exclude_current: Option<bool>,
    from_channel: Option<String>,
    #[serde(default)]
    from_user_pk: Raw,
    #[serde(default)]
    event_data: Raw,
    seq: Option<u64>,
    group: Option<String>,
    topic: Option<String>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum WireOut<'a> {
    #[serde(rename = "send_group_member")]
    Group {
        content: &'a RawValue,
        kind: ContentKind,
        exclude_current: bool,
        from_channel: &'a str,
        from_user_pk: &'a RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    #[serde(rename = "handle_channel_event")]
    Event { event_data: &'a RawValue },
    #[serde(rename = "chanx.gap")]
    Gap { group: &'a str },
    #[serde(rename = "chanx.topic")]
    Topic {
        topic: &'a str,
        content: &'a RawValue,
    },
}

fn is_object(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with('{')
}

/// The JSON object `object` with `members` added at its end: `members` is
/// the text of one or more members followed by the closing `}`. Both come
/// from the core's own serialization, so the result is valid JSON.
pub(crate) fn extend_object(object: &str, members: &str) -> String {
    let body = object.trim_end();
    let inner = body.strip_suffix('}').unwrap_or(body);
    let empty = inner
        .trim_start()
        .strip_prefix('{')
        .is_some_and(|rest| rest.trim().is_empty());
    let mut out = String::with_capacity(inner.len() + 1 + members.len());
    out.push_str(inner);
    if !empty {
        out.push(',');
    }
    out.push_str(members);
    out
}

fn carries_flags(content: &RawValue) -> bool {
    let text = content.get();
    text.contains("\"is_mine\"") || text.contains("\"is_current\"")
}

fn truthy_key(pk: &RawValue) -> Option<String> {
    let value: Value = serde_json::from_str(pk.get()).ok()?;
    let truthy = match &value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    };
    truthy.then(|| value.to_string())
}

/// The compact JSON form used to compare user primary keys.
#[cfg(test)]
pub(crate) fn user_key(pk: &Value) -> Option<String> {
    let raw = serde_json::value::to_raw_value(pk).ok()?;
    truthy_key(&raw)
}

/// A connection's user primary key as its group messages carry it:
/// serialized once, at authentication, rather than on every send.
#[derive(Clone, Debug)]
pub(crate) struct SenderPk {
    /// Compact JSON.
    json: Box<RawValue>,
    key: SenderKey,
}

/// The key `is_mine` compares: what [`truthy_key`] makes of the JSON, as a
/// receiver makes it of a message's `from_user_pk`.
#[derive(Clone, Debug)]
enum SenderKey {
    /// A falsy primary key (Python's `bool()`): never `is_mine`.
    None,
    /// The JSON itself, as it is for most keys.
    Json,
    /// Another text: a float that reads back one unit off (serde_json's
    /// fast float parsing), say.
    Own(Box<str>),
}

impl SenderPk {
    /// The sender form of `pk`.
    pub(crate) fn new(pk: &Value) -> Self {
        // A `Value` displays as compact JSON, which always reads back.
        let json =
            RawValue::from_string(pk.to_string()).unwrap_or_else(|_| RawValue::NULL.to_owned());
        let key = match truthy_key(&json) {
            None => SenderKey::None,
            Some(key) if key == json.get() => SenderKey::Json,
            Some(key) => SenderKey::Own(key.into_boxed_str()),
        };
        SenderPk { json, key }
    }

    /// The primary key's JSON.
    pub(crate) fn json(&self) -> &RawValue {
        &self.json
    }

    /// The key `is_mine` compares, if the primary key is truthy.
    pub(crate) fn key(&self) -> Option<&str> {
        match &self.key {
            SenderKey::None => None,
            SenderKey::Json => Some(self.json.get()),
            SenderKey::Own(key) => Some(key),
        }
    }
}

impl GroupEnvelope {
    /// Builds a group message from content already serialized as a JSON object.
    pub fn new(
        content: Box<RawValue>,
        kind: ContentKind,
        exclude_current: bool,
        from_channel: impl Into<String>,
        from_user_pk: Option<&Value>,
    ) -> Result<Self, EnvelopeError> {
        let sender = from_user_pk.map(SenderPk::new);
        Self::from_sender(
            content,
            kind,
            exclude_current,
            from_channel,
            sender.as_ref(),
        )
    }

    /// [`new`](Self::new) with the sender's primary key already serialized
    /// (`None`: anonymous).
    pub(crate) fn from_sender(
        content: Box<RawValue>,
        kind: ContentKind,
        exclude_current: bool,
        from_channel: impl Into<String>,
        sender: Option<&SenderPk>,
    ) -> Result<Self, EnvelopeError> {
        if !is_object(&content) {
            return Err(EnvelopeError::ContentNotObject);
        }
        Ok(GroupEnvelope {
            carries_flags: carries_flags(&content),
            content,
            kind,
            exclude_current,
            from_channel: from_channel.into(),
            from_user_pk: sender.map_or(RawValue::NULL, SenderPk::json).to_owned(),
            sender_key: sender.and_then(SenderPk::key).map(str::to_owned),
            seq: None,
            camelized: OnceLock::new(),
        })
    }

    /// Marks the message with the sender's sequence number (for a message
    /// sent to several groups: receivers drop the repeats).
    pub fn with_seq(mut self, seq: u64) -> Self {
        self.seq = Some(seq);
        self
    }

    /// The sender's sequence number, if the message went to several groups.
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// The content as sent (a JSON object).
    pub fn content(&self) -> &str {
        self.content.get()
    }

    /// Whether the content is a typed message or raw JSON.
    pub fn kind(&self) -> ContentKind {
        self.kind
    }

    /// Whether the sending connection skips its own copy.
    pub fn exclude_current(&self) -> bool {
        self.exclude_current
    }

    /// The sending connection's channel name.
    pub fn from_channel(&self) -> &str {
        &self.from_channel
    }

    /// The sender's user primary key as JSON (`null` when anonymous).
    pub fn from_user_pk(&self) -> &str {
        self.from_user_pk.get()
    }

    /// `is_mine` for a receiver whose own key is `receiver_key`
    /// (see [`LayerMessage`]): the sender's pk is truthy and equal.
    pub(crate) fn is_mine(&self, receiver_key: Option<&str>) -> bool {
        matches!((&self.sender_key, receiver_key), (Some(a), Some(b)) if a == b)
    }

    /// The frame a receiver sends its client: the content with `is_mine`
    /// and `is_current` appended, keys camelized if asked.
    pub fn stamp(
        &self,
        is_mine: bool,
        is_current: bool,
        camelize: bool,
    ) -> serde_json::Result<String> {
        if self.carries_flags {
            let mut value: Value = serde_json::from_str(self.content.get())?;
            if let Value::Object(map) = &mut value {
                map.insert("is_mine".into(), Value::Bool(is_mine));
                map.insert("is_current".into(), Value::Bool(is_current));
            }
            return crate::codec::encode(&value, camelize);
        }
        let content = if camelize {
            self.camelized_content()?
        } else {
            self.content.get()
        };
        let members =
            FLAG_MEMBERS[usize::from(camelize)][usize::from(is_mine)][usize::from(is_current)];
        Ok(extend_object(content, members))
    }

    /// The content with camelized keys, made once for every camelizing
    /// receiver of this message.
    fn camelized_content(&self) -> serde_json::Result<&str> {
        camelized_once(&self.camelized, self.content.get())
    }
}

/// The members a receiver's frame ends with, by `[camelize][is_mine]
/// [is_current]`: written out rather than formatted per receiver (a
/// formatted string was one more allocation per delivery).
const FLAG_MEMBERS: [[[&str; 2]; 2]; 2] = [
    [
        [
            "\"is_mine\":false,\"is_current\":false}",
            "\"is_mine\":false,\"is_current\":true}",
        ],
        [
            "\"is_mine\":true,\"is_current\":false}",
            "\"is_mine\":true,\"is_current\":true}",
        ],
    ],
    [
        [
            "\"isMine\":false,\"isCurrent\":false}",
            "\"isMine\":false,\"isCurrent\":true}",
        ],
        [
            "\"isMine\":true,\"isCurrent\":false}",
            "\"isMine\":true,\"isCurrent\":true}",
        ],
    ],
];

/// `text` with camelized keys, kept in `cache`: a message shared by many
/// receivers is camelized once for all of them.
fn camelized_once<'a>(cache: &'a OnceLock<Box<str>>, text: &str) -> serde_json::Result<&'a str> {
    if let Some(done) = cache.get() {
        return Ok(done);
    }
    let camelized = crate::codec::camelize_text(text)?;
    Ok(cache.get_or_init(|| camelized.into_boxed_str()))
}

impl EventEnvelope {
    /// Wraps a serialized event object (`{"handler": ..., "payload": ...}`).
    pub fn new(event_data: Box<RawValue>) -> Self {
        EventEnvelope { event_data }
    }

    /// The event as JSON.
    pub fn event_data(&self) -> &str {
        self.event_data.get()
    }
}

impl LayerMessage {
    /// Builds a channel event from any serializable event value.
    ///
    /// ```
    /// # use serde::Serialize;
    /// #[derive(Serialize)]
    /// #[serde(tag = "handler", content = "payload", rename_all = "snake_case")]
    /// enum ChatEvent { Notify { content: String } }
    /// let msg = chanx_proto::LayerMessage::event(&ChatEvent::Notify { content: "hi".into() }).unwrap();
    /// assert!(msg.to_json().contains(r#""event_data":{"handler":"notify""#));
    /// ```
    pub fn event<E: Serialize + ?Sized>(event: &E) -> serde_json::Result<Self> {
        Ok(LayerMessage::Event(EventEnvelope::new(
            serde_json::value::to_raw_value(event)?,
        )))
    }

    /// Parses the envelope from the bytes a channel layer carried.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let wire: WireIn<'_> = serde_json::from_slice(bytes)?;
        match wire.kind.as_ref() {
            "send_group_member" => {
                const KIND: &str = "send_group_member";
                let missing = |field| EnvelopeError::Missing { kind: KIND, field };
                let content = wire.content.0.ok_or_else(|| missing("content"))?;
                if !is_object(&content) {
                    return Err(EnvelopeError::ContentNotObject);
                }
                let from_user_pk = match wire.from_user_pk.0 {
                    Some(pk) => pk,
                    None => serde_json::value::to_raw_value(&Value::Null)?,
                };
                let sender_key = truthy_key(&from_user_pk);
                Ok(LayerMessage::Group(GroupEnvelope {
                    carries_flags: carries_flags(&content),
                    content,
                    kind: wire.content_kind.unwrap_or(ContentKind::Json),
                    exclude_current: wire.exclude_current.unwrap_or(false),
                    from_channel: wire.from_channel.ok_or_else(|| missing("from_channel"))?,
                    from_user_pk,
                    sender_key,
                    seq: wire.seq,
                    camelized: OnceLock::new(),
                }))
            }
            "handle_channel_event" => {
                let event_data = wire.event_data.0.ok_or(EnvelopeError::Missing {
                    kind: "handle_channel_event",
                    field: "event_data",
                })?;
                Ok(LayerMessage::Event(EventEnvelope { event_data }))
            }
            "chanx.gap" => Ok(LayerMessage::gap(wire.group.ok_or(
                EnvelopeError::Missing {
                    kind: "chanx.gap",
                    field: "group",
                },
            )?)),
            "chanx.topic" => {
                let missing = |field| EnvelopeError::Missing {
                    kind: "chanx.topic",
                    field,
                };
                let content = wire.content.0.ok_or_else(|| missing("content"))?;
                let topic = wire.topic.ok_or_else(|| missing("topic"))?;
                Ok(LayerMessage::Topic(TopicEnvelope::new(topic, content)?))
            }
            other => Err(EnvelopeError::UnknownType(other.to_owned())),
        }
    }

    /// A gap notice for `group`: what a layer delivers to the local members
    /// of a group when it may have lost messages for it.
    ///
    /// ```
    /// let notice = chanx_proto::LayerMessage::gap("chat_lobby");
    /// assert_eq!(notice.to_json(), r#"{"type":"chanx.gap","group":"chat_lobby"}"#);
    /// ```
    pub fn gap(group: impl Into<String>) -> Self {
        LayerMessage::Gap(GapNotice {
            group: group.into(),
        })
    }

    /// Serializes the envelope (for a layer that crosses processes).
    pub fn to_json(&self) -> String {
        let wire = match self {
            LayerMessage::Group(g) => WireOut::Group {
                content: &g.content,
                kind: g.kind,
                exclude_current: g.exclude_current,
                from_channel: &g.from_channel,
                from_user_pk: &g.from_user_pk,
                seq: g.seq,
            },
            LayerMessage::Event(e) => WireOut::Event {
                event_data: &e.event_data,
            },
            LayerMessage::Gap(g) => WireOut::Gap { group: &g.group },
            LayerMessage::Topic(t) => WireOut::Topic {
                topic: &t.topic,
                content: &t.content,
            },
        };
        // Every field is already valid JSON or a plain string: this cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(content: &str, pk: Value) -> GroupEnvelope {
        GroupEnvelope::new(
            RawValue::from_string(content.to_owned()).unwrap(),
            ContentKind::Message,
            true,
            "chan.1",
            Some(&pk),
        )
        .unwrap()
    }

    #[test]
    fn stamps_without_reparsing() {
        let g = group(
            r#"{"action":"chat_message","payload":{"content":"hi"}}"#,
            json!(1),
        );
        assert_eq!(
            g.stamp(true, false, false).unwrap(),
            r#"{"action":"chat_message","payload":{"content":"hi"},"is_mine":true,"is_current":false}"#
        );
        let empty = group("{ }", json!(1));
        assert_eq!(
            empty.stamp(false, true, false).unwrap(),
            r#"{ "is_mine":false,"is_current":true}"#
        );
        let v: Value = serde_json::from_str(&empty.stamp(false, true, false).unwrap()).unwrap();
        assert_eq!(v, json!({"is_mine": false, "is_current": true}));
    }

    #[test]
    fn stamps_camelized() {
        let g = group(
            r#"{"action":"chat_message","payload":{"snake_key":1}}"#,
            json!(1),
        );
        assert_eq!(
            g.stamp(false, true, true).unwrap(),
            r#"{"action":"chat_message","payload":{"snakeKey":1},"isMine":false,"isCurrent":true}"#
        );
    }

    #[test]
    fn is_mine_follows_python_truthiness() {
        assert!(group("{}", json!(7)).is_mine(Some("7")));
        assert!(!group("{}", json!(7)).is_mine(Some("8")));
        assert!(!group("{}", json!(0)).is_mine(Some("0")));
        assert!(!group("{}", Value::Null).is_mine(None));
        assert!(group("{}", json!("abc")).is_mine(user_key(&json!("abc")).as_deref()));
    }

    #[test]
    fn round_trips_and_rejects() {
        let g = LayerMessage::Group(group(r#"{"a":1}"#, json!(3)));
        let wire = g.to_json();
        assert_eq!(
            wire,
            r#"{"type":"send_group_member","content":{"a":1},"kind":"message","exclude_current":true,"from_channel":"chan.1","from_user_pk":3}"#
        );
        assert_eq!(
            LayerMessage::from_json(wire.as_bytes()).unwrap().to_json(),
            wire
        );
        assert!(matches!(
            LayerMessage::from_json(b"{\"type\":\"x\"}"),
            Err(EnvelopeError::UnknownType(_))
        ));
        assert!(matches!(
            LayerMessage::from_json(
                br#"{"type":"send_group_member","content":[1],"from_channel":"c"}"#
            ),
            Err(EnvelopeError::ContentNotObject)
        ));
        assert!(LayerMessage::from_json(b"nope").is_err());
    }

    #[test]
    fn a_sender_pk_has_the_key_a_receiver_computes() {
        for pk in [
            json!(7),
            json!(-1.5),
            json!("abc"),
            json!("é \"quoted\""),
            json!([1, {"b": 2, "a": 1}]),
            json!(390303.01290535636),
            json!({"z": null, "a": [true]}),
        ] {
            let sender = SenderPk::new(&pk);
            assert_eq!(sender.key(), user_key(&pk).as_deref(), "{pk}");
            assert_eq!(sender.json().get(), pk.to_string());
        }
        for falsy in [
            json!(null),
            json!(0),
            json!(""),
            json!(false),
            json!([]),
            json!({}),
        ] {
            assert_eq!(SenderPk::new(&falsy).key(), None, "{falsy}");
        }
    }
}
