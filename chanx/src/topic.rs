//! Topics: many typed streams on one socket, compatible with chanx 2.10.
//!
//! A [`Topic`] type has a pattern (`"room:{room_id}"`), its own incoming
//! and outgoing message sets, an authorisation check and hooks. Mount it
//! on an endpoint with [`EndpointBuilder::topic`](crate::EndpointBuilder::topic);
//! clients then subscribe over the socket they have
//! (`{"version":1,"topic":"room:lobby","ref":"1","action":"subscribe"}`),
//! send on it, and receive what server-side code broadcasts to it with
//! [`Topic::broadcast`], from this process or any other sharing the
//! channel layer. The wire format is in `docs/topics.md`.
//!
//! ```
//! use chanx::topic::{Topic, TopicContext};
//! use chanx::HandlerResult;
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
//! enum RoomIn { Say { content: String } }
//!
//! #[derive(Serialize, JsonSchema)]
//! #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
//! enum RoomOut { Said(()), ChatMessage { content: String } }
//!
//! struct RoomTopic;
//!
//! impl Topic for RoomTopic {
//!     const PATTERN: &'static str = "room:{room_id}";
//!     type Incoming = RoomIn;
//!     type Outgoing = RoomOut;
//!
//!     async fn receive(&self, ctx: &mut TopicContext<'_, Self>, message: RoomIn) -> HandlerResult {
//!         let RoomIn::Say { content } = message;
//!         let user = ctx.user().map_or("Anonymous", |u| u.username.as_str()).to_owned();
//!         ctx.broadcast(&RoomOut::ChatMessage { content: format!("{user}: {content}") }).await?;
//!         ctx.reply(&RoomOut::Said(())).await?;
//!         Ok(())
//!     }
//! }
//! ```

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chanx_proto::topic::{Envelope, TopicRefusal, TopicType};
use chanx_proto::{ConfigError, MessageSchema, MessageSet, Serialized};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::auth::Permission;
use crate::consumer::{HandlerResult, OutgoingSet};
use crate::handshake::{Handshake, User};
use crate::layer::ChannelLayer;
use crate::session::{Command, SendError, SessionInfo};

mod route;

pub use route::{TopicRoute, route};

/// A topic type: a family of named streams clients subscribe to.
pub trait Topic: Send + Sync + Sized + 'static {
    /// The topic names this type serves: literal text and `{param}`
    /// parts, each param matching `[^:]+` (e.g. `"room:{room_id}"`).
    const PATTERN: &'static str;
    /// What subscribers send on a topic of this type.
    type Incoming: MessageSet + Sync;
    /// What the topic sends: replies, pushes and broadcasts.
    type Outgoing: OutgoingSet;

    /// The type's name, which names its channel-layer groups (default:
    /// the Rust type's name).
    fn name() -> String {
        short_type_name(std::any::type_name::<Self>())
    }

    /// Whether `request.topic` exists, beyond matching the pattern (e.g. a
    /// parameter of the right form): a topic that does not is refused as
    /// `unknown_topic`. Default: every match exists.
    fn exists(&self, request: &TopicRequestInfo<'_>) -> bool {
        let _ = request;
        true
    }

    /// Whether this connection may subscribe to `request.topic` (default:
    /// yes; a permission given at mounting is checked first).
    fn authorize(&self, request: &TopicRequestInfo<'_>) -> impl Future<Output = bool> + Send {
        let _ = request;
        async { true }
    }

    /// Runs after `subscribed` went out: push the initial state here.
    fn on_subscribe(
        &self,
        ctx: &mut TopicContext<'_, Self>,
    ) -> impl Future<Output = HandlerResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs when the client unsubscribes and, for every subscription, when
    /// the connection ends (sending is no longer possible then).
    fn on_unsubscribe(
        &self,
        ctx: &mut TopicContext<'_, Self>,
    ) -> impl Future<Output = HandlerResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Handles one valid message a subscriber sent on a topic.
    fn receive(
        &self,
        ctx: &mut TopicContext<'_, Self>,
        message: Self::Incoming,
    ) -> impl Future<Output = HandlerResult> + Send;

    /// Broadcasts `message` to every subscriber of `topic` (a name this
    /// type's pattern matches), from anywhere that has the layer: an HTTP
    /// handler, a task, another process sharing the layer.
    fn broadcast<'a, L: ChannelLayer + ?Sized>(
        layer: &'a L,
        topic: &'a str,
        message: &Self::Outgoing,
    ) -> impl Future<Output = Result<(), SendError>> + Send + 'a {
        // A topic this type does not serve would reach no one: say so.
        let served = chanx_proto::topic::TopicPattern::parse(Self::PATTERN)
            .is_ok_and(|pattern| pattern.matches(topic).is_some());
        let sent = served
            .then_some(())
            .ok_or_else(|| SendError::UnknownTopic(topic.to_owned()))
            .and_then(|()| serde_json::value::to_raw_value(message).map_err(SendError::from))
            .and_then(|content| {
                chanx_proto::topic::broadcast(&Self::name(), topic, content)
                    .map_err(SendError::from)
            });
        async move {
            let (group, message) = sent?;
            Ok(layer.group_send(&group, Arc::new(message)).await?)
        }
    }

    /// [`broadcast`](Self::broadcast) for synchronous code: blocks until
    /// the layer accepted it. Do not call it from inside an async task.
    fn broadcast_blocking<L: ChannelLayer + ?Sized>(
        layer: &L,
        topic: &str,
        message: &Self::Outgoing,
    ) -> Result<(), SendError> {
        futures_executor::block_on(Self::broadcast(layer, topic, message))
    }
}

/// A mounted topic type as the playground and AsyncAPI describe it.
#[derive(Clone, Debug)]
pub struct TopicInfo {
    /// The type's name.
    pub name: String,
    /// Its pattern, e.g. `room:{room_id}`.
    pub pattern: String,
    /// The pattern's parameter names, in order.
    pub params: Vec<String>,
    /// What subscribers send.
    pub incoming: MessageSchema,
    /// What the topic sends.
    pub outgoing: MessageSchema,
}

/// A type's name without module paths, generic arguments included:
/// `app::Feed<app::Room>` is `Feed<Room>`.
pub(crate) fn short_type_name(full: &str) -> String {
    let mut short = String::with_capacity(full.len());
    let mut rest = full;
    while let Some(at) = rest.find("::") {
        // Drop the path segment that ends here.
        let head = &rest[..at];
        let keep = head
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        short.push_str(&head[..keep]);
        rest = &rest[at + 2..];
    }
    short.push_str(rest);
    short
}

/// What a subscription request says, for [`Topic::authorize`].
#[derive(Debug)]
pub struct TopicRequestInfo<'a> {
    /// The connection's user.
    pub user: Option<&'a User>,
    /// The connection's upgrade request.
    pub handshake: &'a Handshake,
    /// The topic asked for.
    pub topic: &'a str,
    /// The pattern's parameters.
    pub params: &'a [(String, String)],
}

impl TopicRequestInfo<'_> {
    /// A parameter of the topic's pattern.
    pub fn param(&self, name: &str) -> Option<&str> {
        param(self.params, name)
    }
}

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// What the connection offers a topic's handlers: the one path of every
/// action (`Context` implements it).
pub(crate) trait Perform: Send {
    fn session_info(&self) -> &SessionInfo;
    fn perform_command(&mut self, command: Command) -> BoxFuture<'_, Result<(), SendError>>;
}

/// What a topic's handler can see and do: the connection's user, the
/// topic and its parameters; reply to the request, push to this client,
/// broadcast to every subscriber.
pub struct TopicContext<'a, T: Topic> {
    connection: &'a mut dyn Perform,
    kind: usize,
    envelope: Envelope,
    params: &'a [(String, String)],
    /// On a topic's own route: frames without envelope.
    bare: bool,
    topic_type: PhantomData<fn() -> T>,
}

impl<T: Topic> TopicContext<'_, T> {
    /// The connection's user, `None` for an anonymous connection.
    pub fn user(&self) -> Option<&User> {
        self.connection.session_info().user.as_ref()
    }

    /// The connection's upgrade request.
    pub fn handshake(&self) -> &Handshake {
        self.connection.session_info().handshake.get()
    }

    /// The topic's name, e.g. `room:lobby`.
    pub fn topic(&self) -> &str {
        &self.envelope.topic
    }

    /// A parameter of the topic's pattern.
    pub fn param(&self, name: &str) -> Option<&str> {
        param(self.params, name)
    }

    /// The client's request id (`ref`), when handling a request.
    pub fn reference(&self) -> Option<&str> {
        self.envelope.reference.as_deref()
    }

    /// Answers the request being handled: the frame carries its `ref`.
    pub async fn reply(&mut self, message: &T::Outgoing) -> Result<(), SendError> {
        let envelope = self.envelope.clone();
        self.send(message, envelope).await
    }

    /// Sends this client a message on the topic, without a `ref`.
    pub async fn push(&mut self, message: &T::Outgoing) -> Result<(), SendError> {
        let envelope = Envelope {
            topic: self.envelope.topic.clone(),
            reference: None,
        };
        self.send(message, envelope).await
    }

    /// Sends `message` to every subscriber of the topic (this client too),
    /// in every process sharing the channel layer.
    pub async fn broadcast(&mut self, message: &T::Outgoing) -> Result<(), SendError> {
        let content = serde_json::value::to_raw_value(message)?;
        let command = Command::TopicBroadcast {
            kind: self.kind,
            topic: self.envelope.topic.clone(),
            content,
        };
        self.connection.perform_command(command).await
    }

    /// The same context for another topic type with the same outgoing set
    /// (a shared topic delegating to the one it wraps).
    fn retyped<U: Topic<Outgoing = T::Outgoing>>(&mut self) -> TopicContext<'_, U> {
        TopicContext {
            connection: &mut *self.connection,
            kind: self.kind,
            envelope: self.envelope.clone(),
            params: self.params,
            bare: self.bare,
            topic_type: PhantomData,
        }
    }

    async fn send(&mut self, message: &T::Outgoing, envelope: Envelope) -> Result<(), SendError> {
        let message = Serialized::new(message)?;
        let command = if self.bare {
            Command::Send(message)
        } else {
            Command::TopicSend { message, envelope }
        };
        self.connection.perform_command(command).await
    }
}

/// A topic type mounted on an endpoint, its types erased.
pub(crate) trait MountedTopic: Send + Sync {
    fn topic_type(&self, action_key: &str) -> Result<TopicType, ConfigError>;
    fn outgoing(&self, action_key: &str) -> Result<MessageSchema, ConfigError>;
    fn authorize<'a>(
        &'a self,
        request: TopicRequestInfo<'a>,
    ) -> BoxFuture<'a, Result<(), TopicRefusal>>;
    fn on_subscribe<'a>(&'a self, call: TopicCall<'a>) -> BoxFuture<'a, HandlerResult>;
    fn on_unsubscribe<'a>(&'a self, call: TopicCall<'a>) -> BoxFuture<'a, HandlerResult>;
    fn receive<'a>(
        &'a self,
        call: TopicCall<'a>,
        message: Box<dyn Any + Send + Sync>,
    ) -> BoxFuture<'a, HandlerResult>;
}

/// Whether a subscription to `request.topic` may go ahead: the topic
/// exists, the mounting permission (if any) and the type's own check agree.
pub(crate) async fn decide<T: Topic>(
    topic: &T,
    permission: Option<&dyn Permission>,
    request: &TopicRequestInfo<'_>,
) -> Result<(), TopicRefusal> {
    let checks = async {
        if !topic.exists(request) {
            return Err(TopicRefusal::UnknownTopic);
        }
        let permitted = permission.is_none_or(|p| p.check(request.user, request.handshake).is_ok());
        if permitted && topic.authorize(request).await {
            Ok(())
        } else {
            Err(TopicRefusal::Unauthorized)
        }
    };
    // A panicking check refuses.
    AssertUnwindSafe(checks)
        .catch_unwind()
        .await
        .unwrap_or(Err(TopicRefusal::Unauthorized))
}

/// The untyped parts of a [`TopicContext`].
pub(crate) struct TopicCall<'a> {
    pub(crate) connection: &'a mut dyn Perform,
    pub(crate) kind: usize,
    pub(crate) envelope: Envelope,
    pub(crate) params: &'a [(String, String)],
    pub(crate) bare: bool,
}

impl<'a> TopicCall<'a> {
    /// A call on a topic subscribed to on an endpoint (frames with the
    /// envelope).
    pub(crate) fn on_endpoint(
        connection: &'a mut dyn Perform,
        kind: usize,
        envelope: Envelope,
        params: &'a [(String, String)],
    ) -> Self {
        TopicCall {
            connection,
            kind,
            envelope,
            params,
            bare: false,
        }
    }

    fn typed<T: Topic>(self) -> TopicContext<'a, T> {
        TopicContext {
            connection: self.connection,
            kind: self.kind,
            envelope: self.envelope,
            params: self.params,
            bare: self.bare,
            topic_type: PhantomData,
        }
    }
}

/// A topic with the permission it was mounted with.
pub(crate) struct Mounted<T> {
    pub(crate) topic: T,
    pub(crate) permission: Option<Box<dyn Permission>>,
}

impl<T: Topic> MountedTopic for Mounted<T> {
    fn topic_type(&self, action_key: &str) -> Result<TopicType, ConfigError> {
        TopicType::new::<T::Incoming>(T::name(), T::PATTERN, action_key)
    }

    fn outgoing(&self, action_key: &str) -> Result<MessageSchema, ConfigError> {
        MessageSchema::of::<T::Outgoing>(action_key)
    }

    fn authorize<'a>(
        &'a self,
        request: TopicRequestInfo<'a>,
    ) -> BoxFuture<'a, Result<(), TopicRefusal>> {
        Box::pin(async move { decide(&self.topic, self.permission.as_deref(), &request).await })
    }

    fn on_subscribe<'a>(&'a self, call: TopicCall<'a>) -> BoxFuture<'a, HandlerResult> {
        Box::pin(async move { self.topic.on_subscribe(&mut call.typed::<T>()).await })
    }

    fn on_unsubscribe<'a>(&'a self, call: TopicCall<'a>) -> BoxFuture<'a, HandlerResult> {
        Box::pin(async move { self.topic.on_unsubscribe(&mut call.typed::<T>()).await })
    }

    fn receive<'a>(
        &'a self,
        call: TopicCall<'a>,
        message: Box<dyn Any + Send + Sync>,
    ) -> BoxFuture<'a, HandlerResult> {
        Box::pin(async move {
            // The core decoded it with this type's message set.
            let message = message
                .downcast::<T::Incoming>()
                .map_err(|_| "a topic message of another type (a bug)")?;
            self.topic.receive(&mut call.typed::<T>(), *message).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    #[test]
    fn type_names_lose_their_paths_only() {
        assert_eq!(short_type_name("app::rooms::RoomTopic"), "RoomTopic");
        assert_eq!(
            short_type_name("app::Feed<app::x::Room, u8>"),
            "Feed<Room, u8>"
        );
        assert_eq!(short_type_name("Plain"), "Plain");
    }
}
