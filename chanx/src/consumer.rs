//! The `Consumer` trait users implement, and the `Context` its handlers get.

use std::any::Any;
use std::future::Future;

use chanx_proto::{ContentKind, MessageSet, Serialized};
use futures_util::future::{self, Either};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::handshake::{Handshake, User};
use crate::layer::ChannelLayer;
use crate::session::{Command, Core, Remote, SendError, SessionInfo};

/// What a handler may return as an error: anything that is an `Error`.
/// The client gets `{"detail": "Failed to process message"}`; the error
/// goes to the log.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// The result type of handlers.
pub type HandlerResult = Result<(), HandlerError>;

/// A set of messages the server sends to clients: an action-tagged serde
/// enum (`#[serde(tag = "action", content = "payload")]`) that also
/// describes itself as a JSON Schema, for the playground, the AsyncAPI
/// document and generated clients.
pub trait OutgoingSet: Serialize + schemars::JsonSchema + Send + Sync + 'static {}

impl<T: Serialize + schemars::JsonSchema + Send + Sync + 'static> OutgoingSet for T {}

/// The group-message set of a consumer that sends no group messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NoGroupMessage {}

/// The outgoing set of a consumer that sends its client nothing but the
/// framework's own frames (authentication, errors, pong, completions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NoOutgoing {}

/// An empty set: a schema no message matches.
macro_rules! empty_set_schema {
    ($($set:ident),*) => {$(
        impl schemars::JsonSchema for $set {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($set).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "oneOf": [] })
            }
        }
    )*};
}

empty_set_schema!(NoGroupMessage, NoOutgoing);

/// A WebSocket endpoint's behaviour: one value per connection.
///
/// The echo consumer of chanx's Quick Start (Python):
///
/// ```
/// use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Deserialize, Serialize, JsonSchema)]
/// pub struct MessagePayload { pub content: String }
///
/// #[derive(Debug, Deserialize, Serialize, JsonSchema)]
/// #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
/// pub enum EchoIncoming { Ping, Echo(MessagePayload) }
///
/// #[derive(Serialize, JsonSchema)]
/// #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
/// pub enum EchoOutgoing { Pong(()), Echo(MessagePayload) }
///
/// #[derive(Default)]
/// pub struct EchoConsumer;
///
/// impl Consumer for EchoConsumer {
///     type Incoming = EchoIncoming;
///     type Outgoing = EchoOutgoing;
///     type Event = NoEvent;
///     type GroupMessage = NoGroupMessage;
///
///     async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, message: EchoIncoming) -> HandlerResult {
///         match message {
///             EchoIncoming::Ping => ctx.send_message(&EchoOutgoing::Pong(())).await?,
///             EchoIncoming::Echo(p) => {
///                 let content = format!("Echo: {}", p.content);
///                 ctx.send_message(&EchoOutgoing::Echo(MessagePayload { content })).await?
///             }
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Consumer: Send + Sized + 'static {
    /// The incoming message set (action-tagged serde enum).
    type Incoming: MessageSet;
    /// What the handlers send to their own client (action-tagged serde
    /// enum), or [`NoOutgoing`]: [`Context::send_message`] takes nothing
    /// else. A variant `Pong(())` serializes as
    /// `{"action": "pong", "payload": null}`.
    type Outgoing: OutgoingSet;
    /// The channel-event set (`handler`-tagged), or [`NoEvent`](crate::NoEvent).
    type Event: MessageSet + Serialize + Sync;
    /// The group messages members send each other, delivered to clients
    /// as they are (with `is_mine` and `is_current`), or [`NoGroupMessage`].
    type GroupMessage: OutgoingSet;

    /// Groups this connection joins after authentication.
    fn build_groups(
        &mut self,
        ctx: &Context<'_, Self>,
    ) -> impl Future<Output = Vec<String>> + Send {
        let _ = ctx;
        async { Vec::new() }
    }

    /// Runs once after authentication succeeded and the groups were joined.
    fn post_authentication(
        &mut self,
        ctx: &mut Context<'_, Self>,
    ) -> impl Future<Output = HandlerResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Handles one validated incoming message.
    fn receive_message(
        &mut self,
        ctx: &mut Context<'_, Self>,
        message: Self::Incoming,
    ) -> impl Future<Output = HandlerResult> + Send;

    /// Handles one channel event sent to one of this connection's groups.
    fn receive_event(
        &mut self,
        ctx: &mut Context<'_, Self>,
        event: Self::Event,
    ) -> impl Future<Output = HandlerResult> + Send {
        let _ = (ctx, event);
        async { Ok(()) }
    }

    /// The channel layer may have lost messages for `group`, one of this
    /// connection's groups (a networked layer reconnected, lagged or saw a
    /// sequence gap). The default does nothing more than the warning the
    /// driver logs; resend state the client may have missed here, or turn
    /// on [`Options::send_gap_frames`](chanx_proto::Options::send_gap_frames)
    /// so the client hears `{"action": "group_gap", ...}` and refetches.
    fn on_gap(
        &mut self,
        ctx: &mut Context<'_, Self>,
        group: &str,
    ) -> impl Future<Output = HandlerResult> + Send {
        let _ = (ctx, group);
        async { Ok(()) }
    }

    /// Runs once when the connection ends — client close, server close,
    /// shutdown, broken socket — with its groups already left. It does not
    /// run when the connection's future itself is dropped (a runtime
    /// shutting down, a dropped `TestClient`); the channel layer still
    /// forgets the connection then, when its inbox is dropped.
    fn on_disconnect(&mut self, ctx: &Context<'_, Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Sends a typed channel event to `group` from anywhere (an HTTP
    /// handler, a task, another process sharing the layer). Only this
    /// consumer's event type is accepted.
    fn send_event<'a, L: ChannelLayer + ?Sized>(
        layer: &'a L,
        group: &'a str,
        event: &Self::Event,
    ) -> impl Future<Output = Result<(), SendError>> + Send + 'a {
        let message = chanx_proto::LayerMessage::event(event).map(std::sync::Arc::new);
        async move { Ok(layer.group_send(group, message?).await?) }
    }

    /// [`send_event`](Self::send_event) for synchronous code: blocks the
    /// current thread until the layer accepted the event. Do not call it
    /// from inside an async task.
    fn send_event_blocking<L: ChannelLayer + ?Sized>(
        layer: &L,
        group: &str,
        event: &Self::Event,
    ) -> Result<(), SendError> {
        futures_executor::block_on(Self::send_event(layer, group, event))
    }
}

/// What a handler can see and do on its connection.
pub struct Context<'a, C: Consumer> {
    pub(crate) target: Target<'a, C>,
}

/// Where a context's actions go: straight into the connection (handlers
/// run one at a time), or through the driver's command queue (concurrent
/// handlers, see [`EndpointBuilder::concurrent_messages`](crate::EndpointBuilder::concurrent_messages)).
pub(crate) enum Target<'a, C: Consumer> {
    Direct(&'a mut Core<C::Incoming, C::Event>),
    Remote(&'a Remote),
}

impl<'a, C: Consumer> Context<'a, C> {
    pub(crate) fn direct(core: &'a mut Core<C::Incoming, C::Event>) -> Self {
        Context {
            target: Target::Direct(core),
        }
    }

    pub(crate) fn remote(remote: &'a Remote) -> Self {
        Context {
            target: Target::Remote(remote),
        }
    }
}

impl<'a, C: Consumer> Context<'a, C> {
    pub(crate) fn info(&self) -> &SessionInfo {
        match &self.target {
            Target::Direct(core) => &core.info,
            Target::Remote(remote) => &remote.info,
        }
    }

    /// The authenticated user, `None` for an anonymous connection.
    pub fn user(&self) -> Option<&User> {
        self.info().user.as_ref()
    }

    /// The upgrade request (headers, cookies, query, path parameters, peer).
    pub fn handshake(&self) -> &Handshake {
        self.info().handshake.get()
    }

    /// A path parameter captured by the route.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.info().handshake.params().get(name)
    }

    /// The object the endpoint's [`ObjectLoader`](crate::auth::ObjectLoader) loaded, if of type `T`.
    pub fn object<T: Any>(&self) -> Option<&T> {
        self.info()
            .object
            .as_deref()
            .and_then(|o| (o as &dyn Any).downcast_ref::<T>())
    }

    /// This connection's channel name.
    pub fn channel_name(&self) -> &str {
        match &self.target {
            Target::Direct(core) => core.conn.channel_name(),
            Target::Remote(remote) => &remote.channel,
        }
    }

    /// The groups this connection is in.
    pub fn groups(&self) -> &[String] {
        match &self.target {
            Target::Direct(core) => core.conn.groups(),
            Target::Remote(remote) => &remote.groups,
        }
    }

    /// The request id of this connection (`X-Request-ID` or generated).
    pub fn request_id(&self) -> &str {
        self.info().request_id()
    }

    /// Sends one of the endpoint's outgoing messages to this connection's
    /// client. A message outside [`Consumer::Outgoing`] does not compile;
    /// [`send_raw_json`](Self::send_raw_json) sends anything.
    ///
    /// ```
    /// # use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};
    /// # #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// # #[serde(tag = "action")] enum In { Hello }
    /// #[derive(serde::Serialize, schemars::JsonSchema)]
    /// #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    /// enum Out { Welcome(String) }
    ///
    /// #[derive(serde::Serialize)]
    /// struct Unlisted { action: &'static str }
    ///
    /// # #[derive(Default)] struct Greeter;
    /// impl Consumer for Greeter {
    /// #   type Incoming = In; type Event = NoEvent; type GroupMessage = NoGroupMessage;
    ///     type Outgoing = Out;
    ///     async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, _: In) -> HandlerResult {
    ///         ctx.send_message(&Out::Welcome("hi".into())).await?;
    ///         // Outside the set: only under its explicit name.
    ///         ctx.send_raw_json(&Unlisted { action: "surprise" }).await?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    ///
    /// The same handler sending `Unlisted` with `send_message` does not
    /// compile:
    ///
    /// ```compile_fail
    /// # use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};
    /// # #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// # #[serde(tag = "action")] enum In { Hello }
    /// # #[derive(serde::Serialize, schemars::JsonSchema)]
    /// # #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    /// # enum Out { Welcome(String) }
    /// # #[derive(serde::Serialize)]
    /// # struct Unlisted { action: &'static str }
    /// # #[derive(Default)] struct Greeter;
    /// impl Consumer for Greeter {
    /// #   type Incoming = In; type Event = NoEvent; type GroupMessage = NoGroupMessage;
    ///     type Outgoing = Out;
    ///     async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, _: In) -> HandlerResult {
    ///         ctx.send_message(&Unlisted { action: "surprise" }).await?; // error: expected `&Out`
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn send_message(
        &mut self,
        message: &C::Outgoing,
    ) -> impl Future<Output = Result<(), SendError>> + use<'_, 'a, C> {
        self.send_raw_json(message)
    }

    /// Sends any serializable value to this connection's client, unchecked
    /// against the endpoint's outgoing set (which documents it, so prefer
    /// [`send_message`](Self::send_message)).
    pub fn send_raw_json<T: Serialize + ?Sized>(
        &mut self,
        message: &T,
    ) -> impl Future<Output = Result<(), SendError>> + use<'_, 'a, C, T> {
        self.perform_made(Serialized::new(message).map(Command::Send))
    }

    /// Sends a group message to this connection's groups, except this connection.
    ///
    /// The message is queued for the channel layer in order and the call
    /// returns: replies to the client never wait for the layer. A layer
    /// failure is logged.
    pub fn send_group_message(
        &mut self,
        message: &C::GroupMessage,
    ) -> impl Future<Output = Result<(), SendError>> + use<'_, 'a, C> {
        self.group(raw(message), ContentKind::Message, None, true)
    }

    /// Sends a group message to named groups; `exclude_current` skips this connection.
    pub fn send_group_message_to(
        &mut self,
        message: &C::GroupMessage,
        groups: &[String],
        exclude_current: bool,
    ) -> impl Future<Output = Result<(), SendError>> + use<'_, 'a, C> {
        self.group(
            raw(message),
            ContentKind::Message,
            Some(groups),
            exclude_current,
        )
    }

    /// Sends a raw JSON object to groups (this connection's own when `groups` is `None`).
    pub fn send_group_json(
        &mut self,
        content: &Map<String, Value>,
        groups: Option<&[String]>,
        exclude_current: bool,
    ) -> impl Future<Output = Result<(), SendError>> + use<'_, 'a, C> {
        self.group(raw(content), ContentKind::Json, groups, exclude_current)
    }

    fn group(
        &mut self,
        content: serde_json::Result<Box<RawValue>>,
        kind: ContentKind,
        groups: Option<&[String]>,
        exclude_current: bool,
    ) -> impl Future<Output = Result<(), SendError>> + use<'_, 'a, C> {
        self.perform_made(content.map(|content| Command::Group {
            content,
            kind,
            groups: groups.map(<[String]>::to_vec),
            exclude_current,
        }))
    }

    /// Closes the connection with `code` after the frames already sent.
    pub fn close(&mut self, code: u16) -> impl Future<Output = Result<(), SendError>> + '_ {
        self.perform(Command::Close(code))
    }

    /// The one path of every action: performed here when handlers run one
    /// at a time, by the session loop for concurrent handlers.
    ///
    /// Not an `async fn` (nor are the sends above): the message is
    /// serialized and the command made before the future is, which then
    /// holds the command once (an `async fn` keeps its arguments twice);
    /// the command takes effect at the first poll. A handler's future
    /// holds one of these per send in flight, and is boxed per message.
    pub(crate) fn perform(
        &mut self,
        command: Command,
    ) -> impl Future<Output = Result<(), SendError>> + '_ {
        match &mut self.target {
            Target::Direct(core) => Either::Left(core.perform(command)),
            Target::Remote(remote) => Either::Right(remote.call(command)),
        }
    }

    /// [`perform`](Self::perform)s a command, or fails with the error met
    /// making it.
    fn perform_made<E: Into<SendError>>(
        &mut self,
        command: Result<Command, E>,
    ) -> impl Future<Output = Result<(), SendError>> + '_ {
        match command {
            Ok(command) => Either::Left(self.perform(command)),
            Err(error) => Either::Right(future::ready(Err(error.into()))),
        }
    }
}

fn raw<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Box<RawValue>> {
    serde_json::value::to_raw_value(value)
}

/// Topic handlers act through the same path as the consumer's.
impl<C: Consumer> crate::topic::Perform for Context<'_, C> {
    fn session_info(&self) -> &SessionInfo {
        self.info()
    }

    fn perform_command(
        &mut self,
        command: Command,
    ) -> futures_util::future::BoxFuture<'_, Result<(), SendError>> {
        Box::pin(self.perform(command))
    }
}
