//! Endpoints: a consumer plus its authentication, options and logging,
//! erased to one type so routes of different consumers share a table.

use std::sync::Arc;

use chanx_proto::{ConfigError, MessageSchema, Options, Protocol};
use futures_util::future::BoxFuture;

use crate::auth::{AuthPolicy, Authenticator, ObjectLoader, Permission};
use crate::consumer::Consumer;
use crate::driver::{self, Concurrency, EndpointCore};
use crate::handshake::Handshake;
use crate::layer::ChannelLayer;
use crate::session::LogSettings;
use crate::shutdown::ShutdownSignal;
use crate::topic::{Mounted, MountedTopic, Topic};
use crate::ws::BoxSocket;

/// Type-erased endpoint behaviour.
trait Serve: Send + Sync {
    fn serve(
        &self,
        socket: BoxSocket,
        handshake: Handshake,
        layer: Arc<dyn ChannelLayer>,
        shutdown: ShutdownSignal,
    ) -> BoxFuture<'static, ()>;
}

impl<C: Consumer> Serve for Arc<EndpointCore<C>> {
    fn serve(
        &self,
        socket: BoxSocket,
        handshake: Handshake,
        layer: Arc<dyn ChannelLayer>,
        shutdown: ShutdownSignal,
    ) -> BoxFuture<'static, ()> {
        Box::pin(driver::run(
            Arc::clone(self),
            socket,
            handshake,
            layer,
            shutdown,
        ))
    }
}

/// Descriptive data of an endpoint, for the playground and AsyncAPI.
#[derive(Clone, Debug)]
pub struct EndpointInfo {
    /// The consumer's name (its type name unless set).
    pub name: String,
    /// A description (empty unless set).
    pub description: String,
    /// The incoming message set: tags, variant schemas, definitions.
    pub incoming: MessageSchema,
    /// What the handlers send to their client ([`Consumer::Outgoing`]).
    pub outgoing: MessageSchema,
    /// The group messages delivered to clients ([`Consumer::GroupMessage`]).
    pub group_messages: MessageSchema,
    /// The channel-event set.
    pub events: MessageSchema,
    /// The topic types mounted on the endpoint.
    pub topics: Vec<crate::topic::TopicInfo>,
    /// The endpoint's options.
    pub options: Options,
}

/// A mountable WebSocket endpoint; cheap to clone.
#[derive(Clone)]
pub struct Endpoint {
    serve: Arc<dyn Serve>,
    info: Arc<EndpointInfo>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.info.name)
            .finish()
    }
}

impl Endpoint {
    /// Starts building an endpoint whose connections each get a consumer
    /// from `factory`.
    ///
    /// ```
    /// # use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};
    /// # #[derive(serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
    /// # #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    /// # enum In { Echo { content: String } }
    /// # #[derive(Default)] struct EchoConsumer;
    /// # impl Consumer for EchoConsumer {
    /// #     type Incoming = In; type Outgoing = chanx::NoOutgoing; type Event = NoEvent; type GroupMessage = NoGroupMessage;
    /// #     async fn receive_message(&mut self, _: &mut Context<'_, Self>, _: In) -> HandlerResult { Ok(()) }
    /// # }
    /// use chanx::auth::{AnonymousAuthentication, AllowAny};
    /// let endpoint = chanx::Endpoint::builder(EchoConsumer::default)
    ///     .authenticator(AnonymousAuthentication)
    ///     .permission(AllowAny)
    ///     .send_completion(true)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.info().name, "EchoConsumer");
    /// ```
    pub fn builder<C: Consumer>(
        factory: impl Fn() -> C + Send + Sync + 'static,
    ) -> EndpointBuilder<C> {
        let name = crate::topic::short_type_name(std::any::type_name::<C>());
        EndpointBuilder {
            factory: Box::new(factory),
            name,
            description: String::new(),
            auth: AuthPolicy::new(),
            options: Options::default(),
            log: LogSettings::default(),
            concurrency: None,
            topics: Vec::new(),
        }
    }

    /// The endpoint's descriptive data.
    pub fn info(&self) -> &EndpointInfo {
        &self.info
    }

    /// Runs one accepted connection to its end.
    pub(crate) fn serve(
        &self,
        socket: BoxSocket,
        handshake: Handshake,
        layer: Arc<dyn ChannelLayer>,
        shutdown: ShutdownSignal,
    ) -> BoxFuture<'static, ()> {
        self.serve.serve(socket, handshake, layer, shutdown)
    }
}

impl<C: Consumer + Clone> EndpointBuilder<C> {
    /// Opts in to handling up to `limit` messages (and channel events) of
    /// one connection at the same time. Each handler runs on a clone of
    /// the connection's consumer, so keep state that handlers share behind
    /// an `Arc`; replies may leave in a different order than the messages
    /// arrived (as in Python chanx). Without this call, or with a limit of
    /// 1, messages are handled one at a time, in order.
    pub fn concurrent_messages(mut self, limit: usize) -> Self {
        self.concurrency = (limit > 1).then_some((limit, C::clone as fn(&C) -> C));
        self
    }
}

/// Builder of an [`Endpoint`].
pub struct EndpointBuilder<C: Consumer> {
    factory: Box<dyn Fn() -> C + Send + Sync>,
    name: String,
    description: String,
    auth: AuthPolicy,
    options: Options,
    log: LogSettings,
    concurrency: Option<Concurrency<C>>,
    topics: Vec<Arc<dyn MountedTopic>>,
}

impl<C: Consumer> EndpointBuilder<C> {
    /// Serves the topic type `topic` on this endpoint: clients subscribe
    /// to its topics over their socket (see [`crate::topic`]).
    pub fn topic<T: Topic>(mut self, topic: T) -> Self {
        self.topics.push(Arc::new(Mounted {
            topic,
            permission: None,
        }));
        self
    }

    /// [`topic`](Self::topic), with a permission checked before the topic
    /// type's own [`authorize`](Topic::authorize) on every subscription
    /// (the same building blocks as the endpoint's permissions).
    pub fn topic_with_permission<T: Topic>(
        mut self,
        topic: T,
        permission: impl Permission,
    ) -> Self {
        self.topics.push(Arc::new(Mounted {
            topic,
            permission: Some(Box::new(permission)),
        }));
        self
    }

    /// The name shown in the playground (default: the consumer's type name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The description shown in the playground.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Adds an authenticator (tried in order).
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.auth = self.auth.authenticator(authenticator);
        self
    }

    /// Adds a permission (all must allow).
    pub fn permission(mut self, permission: impl Permission) -> Self {
        self.auth = self.auth.permission(permission);
        self
    }

    /// Loads the path's object for object-level permissions.
    pub fn object(mut self, loader: impl ObjectLoader) -> Self {
        self.auth = self.auth.object(loader);
        self
    }

    /// Replaces the whole authentication policy.
    pub fn auth_policy(mut self, policy: AuthPolicy) -> Self {
        self.auth = policy;
        self
    }

    /// Replaces all protocol options.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Sends `complete` / `group_complete` frames.
    pub fn send_completion(mut self, on: bool) -> Self {
        self.options.send_completion = on;
        self
    }

    /// Camelizes outgoing keys and decamelizes incoming ones.
    pub fn camelize(mut self, on: bool) -> Self {
        self.options.camelize = on;
        self
    }

    /// Sends the client `{"action": "group_gap", "payload": {"group": ...}}`
    /// when the channel layer may have lost messages for one of its groups.
    pub fn send_gap_frames(mut self, on: bool) -> Self {
        self.options.send_gap_frames = on;
        self
    }

    /// Sets which messages are logged.
    pub fn logging(mut self, log: LogSettings) -> Self {
        self.log = log;
        self
    }

    /// Compiles the message schemas and checks the options.
    pub fn build(self) -> Result<Endpoint, ConfigError> {
        let protocol = Protocol::<C::Incoming, C::Event>::new(self.options)?;
        let action_key = &protocol.options().action_key;
        let mut topic_types = Vec::with_capacity(self.topics.len());
        let mut topics = Vec::with_capacity(self.topics.len());
        for mounted in &self.topics {
            let topic_type = mounted.topic_type(action_key)?;
            topics.push(crate::topic::TopicInfo {
                name: topic_type.name().to_owned(),
                pattern: topic_type.pattern().to_string(),
                params: topic_type.pattern().params().map(str::to_owned).collect(),
                incoming: topic_type.incoming().clone(),
                outgoing: mounted.outgoing(action_key)?,
            });
            topic_types.push(topic_type);
        }
        let protocol = protocol.with_topics(topic_types)?;
        let action_key = &protocol.options().action_key;
        let info = EndpointInfo {
            name: self.name,
            description: self.description,
            incoming: protocol.incoming().clone(),
            outgoing: MessageSchema::of::<C::Outgoing>(action_key)?,
            group_messages: MessageSchema::of::<C::GroupMessage>(action_key)?,
            events: protocol.events().clone(),
            topics,
            options: protocol.options().clone(),
        };
        let core = Arc::new(EndpointCore {
            factory: self.factory,
            protocol: Arc::new(protocol),
            auth: self.auth,
            log: Arc::new(self.log),
            concurrency: self.concurrency,
            topics: self.topics.into(),
        });
        Ok(Endpoint {
            serve: Arc::new(core),
            info: Arc::new(info),
        })
    }
}
