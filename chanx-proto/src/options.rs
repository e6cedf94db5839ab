//! Per-endpoint options (docs/protocol.md, "Options and limits") and the
//! compiled [`Protocol`] shared by every connection of an endpoint.

use std::marker::PhantomData;
use std::time::Duration;

use crate::error::ConfigError;
use crate::message::MessageSet;
use crate::schema::MessageSchema;
use crate::topic::TopicType;

/// A per-connection limit on incoming messages: a token bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages allowed per second on average.
    pub per_second: u32,
    /// Messages allowed in one burst.
    pub burst: u32,
}

/// A per-connection budget of incoming bytes, so that one heavy sender
/// cannot take the server's time from the others: a token bucket of
/// `burst_bytes`, refilled at `bytes_per_second`. A frame is accepted
/// while the budget is not overdrawn and may overdraw it; while it is
/// overdrawn the runtime stops reading the socket
/// ([`Connection::input_paused_until`](crate::Connection::input_paused_until)),
/// so TCP slows the sender down and nothing is lost. A frame that arrives
/// anyway is refused with the `rate_limited` error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputBudget {
    /// Bytes per second on average.
    pub bytes_per_second: u64,
    /// Bytes that may arrive in one burst.
    pub burst_bytes: u64,
}

impl Default for InputBudget {
    /// 4 MiB per second, bursts of 8 MiB: far above what chat-like traffic
    /// needs (a pipelining benchmark client sends under 1 MiB/s), low
    /// enough that four clients sending 1 MiB frames back to back use a
    /// few percent of a core.
    fn default() -> Self {
        InputBudget {
            bytes_per_second: 4 << 20,
            burst_bytes: 8 << 20,
        }
    }
}

/// Liveness checks: a WebSocket ping every `interval`; after `max_missed`
/// intervals without any frame from the peer the connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Time between pings.
    pub interval: Duration,
    /// Silent intervals tolerated before closing.
    pub max_missed: u32,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval: Duration::from_secs(30),
            max_missed: 2,
        }
    }
}

/// Options of one endpoint. `Options::default()` gives the defaults of
/// docs/protocol.md, "Options and limits".
///
/// ```
/// let options = chanx_proto::Options { send_completion: true, ..Default::default() };
/// assert_eq!(options.action_key, "action");
/// assert_eq!(options.max_frame_size, 1 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The tag field name of incoming messages. Frames the core builds
    /// itself (authentication, error, pong, complete) always use `action`,
    /// as chanx's do.
    pub action_key: String,
    /// Send the `authentication` frame after the upgrade.
    pub send_authentication_message: bool,
    /// Send `complete` / `group_complete` frames.
    pub send_completion: bool,
    /// Camelize outgoing keys and decamelize incoming ones.
    pub camelize: bool,
    /// Largest accepted frame in bytes; larger frames close with 1009.
    pub max_frame_size: usize,
    /// Frames that may wait for the socket; more close the connection with 4008.
    pub max_outbound_frames: usize,
    /// Bytes that may wait for the socket; more close the connection with
    /// 4008 (a single frame larger than this is still sent when nothing
    /// else waits).
    pub max_outbound_bytes: usize,
    /// Optional limit on incoming messages.
    pub rate_limit: Option<RateLimit>,
    /// Budget of incoming bytes (on by default; `None` turns it off).
    pub input_budget: Option<InputBudget>,
    /// Optional liveness checks (on by default).
    pub heartbeat: Option<Heartbeat>,
    /// Send the client `{"action": "group_gap", "payload": {"group": ...}}`
    /// when the channel layer may have lost messages for one of its groups
    /// (so it can fetch the state again). Off by default: the consumer's
    /// gap hook runs either way.
    pub send_gap_frames: bool,
    /// Topic subscriptions one connection may hold; one more is refused
    /// with a `too_many_subscriptions` error frame.
    pub max_subscriptions: usize,
    /// Longest topic name accepted, in characters.
    pub max_topic_length: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            action_key: "action".to_owned(),
            send_authentication_message: true,
            send_completion: false,
            camelize: false,
            max_frame_size: 1 << 20,
            max_outbound_frames: 1024,
            max_outbound_bytes: 16 << 20,
            rate_limit: None,
            input_budget: Some(InputBudget::default()),
            heartbeat: Some(Heartbeat::default()),
            send_gap_frames: false,
            max_subscriptions: 100,
            max_topic_length: 200,
        }
    }
}

impl Options {
    /// Checks every option; the error names the first offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::InvalidOption {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.action_key.is_empty() {
            return invalid("action_key", "must not be empty");
        }
        if self.max_frame_size == 0 {
            return invalid("max_frame_size", "must be at least 1 byte");
        }
        if self.max_outbound_frames == 0 {
            return invalid("max_outbound_frames", "must be at least 1");
        }
        if self.max_outbound_bytes == 0 {
            return invalid("max_outbound_bytes", "must be at least 1 byte");
        }
        if self.max_subscriptions == 0 {
            return invalid("max_subscriptions", "must be at least 1");
        }
        if self.max_topic_length == 0 {
            return invalid("max_topic_length", "must be at least 1 character");
        }
        if let Some(r) = self.rate_limit {
            if r.per_second == 0 {
                return invalid("rate_limit.per_second", "must be at least 1");
            }
            if r.burst == 0 {
                return invalid("rate_limit.burst", "must be at least 1");
            }
        }
        if let Some(b) = self.input_budget {
            if b.bytes_per_second == 0 {
                return invalid("input_budget.bytes_per_second", "must be at least 1");
            }
            if b.burst_bytes == 0 {
                return invalid("input_budget.burst_bytes", "must be at least 1");
            }
        }
        if let Some(h) = self.heartbeat {
            if h.interval.is_zero() {
                return invalid("heartbeat.interval", "must be longer than zero");
            }
            if h.max_missed == 0 {
                return invalid("heartbeat.max_missed", "must be at least 1");
            }
        }
        Ok(())
    }
}

/// An endpoint's compiled protocol: options plus the schemas of its incoming
/// message set `M` and event set `E`. Build it once and share it (in an
/// `Arc`) between the endpoint's connections.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use schemars::JsonSchema;
/// use chanx_proto::{NoEvent, Options, Protocol};
///
/// #[derive(Deserialize, Serialize, JsonSchema)]
/// #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
/// enum Incoming { Echo { content: String } }
///
/// let protocol = Protocol::<Incoming, NoEvent>::new(Options::default()).unwrap();
/// assert_eq!(protocol.incoming().tags().collect::<Vec<_>>(), ["echo"]);
/// ```
#[derive(Debug)]
pub struct Protocol<M, E> {
    pub(crate) options: Options,
    pub(crate) incoming: MessageSchema,
    pub(crate) events: MessageSchema,
    pub(crate) builtin_ping: bool,
    pub(crate) topics: Vec<TopicType>,
    _types: PhantomData<fn() -> (M, E)>,
}

impl<M: MessageSet, E: MessageSet> Protocol<M, E> {
    /// Compiles the schemas and checks the options.
    pub fn new(options: Options) -> Result<Self, ConfigError> {
        options.validate()?;
        let incoming = MessageSchema::of::<M>(&options.action_key)?;
        if incoming.tags().next().is_none() {
            return Err(ConfigError::NotTagged {
                type_name: std::any::type_name::<M>().to_owned(),
                key: options.action_key.clone(),
                reason: "the incoming message set has no variants".into(),
            });
        }
        let events = MessageSchema::of::<E>("handler")?;
        let builtin_ping = !incoming.has_tag(crate::codec::PING);
        Ok(Protocol {
            options,
            incoming,
            events,
            builtin_ping,
            topics: Vec::new(),
            _types: PhantomData,
        })
    }

    /// The same protocol serving `topics` too (topic frames are those with
    /// a `topic` key). Names and patterns must be distinct.
    pub fn with_topics(mut self, topics: Vec<TopicType>) -> Result<Self, ConfigError> {
        for (i, topic) in topics.iter().enumerate() {
            let twin = topics[..i]
                .iter()
                .any(|t| t.name() == topic.name() || t.pattern() == topic.pattern());
            if twin {
                return Err(ConfigError::DuplicateTopicType(topic.name().to_owned()));
            }
        }
        self.topics = topics;
        Ok(self)
    }
}

impl<M, E> Protocol<M, E> {
    /// The endpoint's options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The schema of the incoming message set.
    pub fn incoming(&self) -> &MessageSchema {
        &self.incoming
    }

    /// The schema of the channel-event set.
    pub fn events(&self) -> &MessageSchema {
        &self.events
    }

    /// The topic types this endpoint serves.
    pub fn topics(&self) -> &[TopicType] {
        &self.topics
    }

    /// Whether the core answers `ping` itself (the set declares no `ping`).
    pub fn answers_ping(&self) -> bool {
        self.builtin_ping
    }
}
