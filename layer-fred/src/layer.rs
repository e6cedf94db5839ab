//! [`FredLayer`]: the channel layer over Redis pub/sub, and the tasks
//! that keep its subscriptions and route what Redis delivers.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chanx::layer::{ChannelLayer, Inbox, Joined, LayerError, LocalRegistry};
use chanx_proto::LayerMessage;
use fred::prelude::{
    Builder, Client, ClientLike, Config, EventInterface, PubsubInterface, ReconnectPolicy,
};
use fred::types::{ClusterHash, CustomCommand, Message, RespVersion};
use futures_util::future::BoxFuture;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{Notify, broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::config::FredConfig;
use crate::envelope::{self, Observed, Seq, SeqCounter, SeqTracker, Target};
use crate::error::Error;
use crate::names::{self, Naming};
use crate::subscriptions::Subscriptions;

/// Wakes a join once its group's subscription is confirmed (or failed).
type Waiter = oneshot::Sender<Result<(), fred::error::Error>>;

/// The target channel name of probe messages (no connection has it).
const PROBE: &str = "chanx.probe";

/// Channels per SUBSCRIBE command when resubscribing many at once.
const SUBSCRIBE_BATCH: usize = 512;

/// A channel layer over Redis pub/sub, on the fred client: groups and
/// channels shared by every process (server) connected to the same Redis
/// with the same key prefix.
///
/// ```no_run
/// use chanx::routing::{RouteTable, path};
/// use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};
/// use chanx_fred::{FredConfig, FredLayer};
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// #[serde(tag = "action", rename_all = "snake_case")]
/// enum Incoming { Ping }
///
/// #[derive(serde::Serialize, schemars::JsonSchema)]
/// #[serde(tag = "action", rename_all = "snake_case")]
/// enum Outgoing { Pong }
///
/// #[derive(Default)]
/// struct PingConsumer;
///
/// impl Consumer for PingConsumer {
///     type Incoming = Incoming;
///     type Outgoing = Outgoing;
///     type Event = NoEvent;
///     type GroupMessage = NoGroupMessage;
///     async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, _: Incoming) -> HandlerResult {
///         ctx.send_message(&Outgoing::Pong).await?;
///         Ok(())
///     }
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // Fails at once, saying why, if Redis cannot be reached.
///     let layer = FredLayer::connect(FredConfig::new("redis://127.0.0.1:6379")).await?;
///     let endpoint = chanx::Endpoint::builder(PingConsumer::default).build()?;
///     let routes = RouteTable::new([path("ws/ping/", endpoint)])?;
///     let server = chanx::Server::new(routes, layer);
///     // Serve `server` with an adapter (chanx-axum, chanx-warp, ...).
///     # drop(server);
///     Ok(())
/// }
/// ```
///
/// # Runtime
///
/// fred runs on tokio: [`connect`](Self::connect) and the layer's
/// futures must run inside a tokio runtime, which also runs the layer's
/// background tasks.
///
/// # How it works
///
/// - **Membership is local.** Each process keeps its connections and their
///   groups in memory. While a group has at least one local member, the
///   process is subscribed to the group's Redis channel
///   (`<prefix>:g:<group>`); when the last local member leaves, it
///   unsubscribes. A join resolves only once Redis confirmed the
///   subscription, so a message sent after a join has resolved reaches the
///   new member.
/// - **A group send publishes once.** Local members get the message
///   directly; every other subscribed process parses it once and shares it
///   (an `Arc`) among its local members.
/// - **Channel sends cross processes.** Channel names are
///   `specific.<layer id>!<n>`; a send to another layer's channel is
///   published on that layer's own Redis channel (`<prefix>:proc:<id>`).
/// - **At most once, ordered per sender, bounded**, like every chanx layer:
///   inboxes hold [`FredConfig::capacity`] messages, a full inbox loses new
///   ones (logged).
///
/// # Losing messages honestly
///
/// Redis pub/sub keeps nothing for a disconnected subscriber. Every
/// message carries its publisher's id, its number in the publisher's
/// sequence and the number of the publisher's previous message on the
/// same Redis channel, and the layer detects when messages for a group may
/// have been lost: a broken chain of numbers, the local pub/sub buffer
/// overflowing, a reconnection to Redis (after which every subscription
/// is restored, and confirmed, before anyone is told), or a subscription
/// probe that did not come back. Each such gap is logged, counted
/// ([`gaps_detected`](Self::gaps_detected)), and reported to each local
/// member of the group as a gap notice ([`LayerMessage::gap`], which chanx
/// hands to `Consumer::on_gap`), ahead of the messages that follow the
/// gap. Messages to single channels lost the same way are logged and
/// counted only: there is no per-channel notice.
///
/// The probe: every [`FredConfig::probe_interval`], the layer publishes a
/// message to itself on each probe channel (its own channel, or with
/// sharded pub/sub one per partition in use) and expects it back by the
/// next round. When one does not come back, a subscription ended without
/// notice — a half-open connection, or a slot that migrated to another
/// cluster node and took its subscriptions along (Redis says so with an
/// unsolicited SUNSUBSCRIBE, which fred drops) — and the layer subscribes
/// to everything again on a new connection and reports the gap.
///
/// # Memory
///
/// Bounded by configuration: [`FredConfig::capacity`] messages per
/// connection, [`FredConfig::broadcast_capacity`] between Redis and the
/// router; sequence numbers of at most 65,536 channels per publisher and
/// 64 publishers per channel (least recently used first out: forgetting
/// one only means a gap after a long silence goes unnoticed).
///
/// Reconnection is automatic and never gives up (backoff up to
/// [`FredConfig::max_reconnect_delay`]); it is logged with `tracing`.
#[derive(Clone)]
pub struct FredLayer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FredLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FredLayer")
            .field("layer_id", &self.inner.shared.naming.layer_id())
            .field("capacity", &self.inner.shared.capacity)
            .finish()
    }
}

/// Owns the background tasks: dropping the last handle stops them and
/// closes the Redis connections.
struct Inner {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let publisher = self.shared.publisher.clone();
        let subscriber = self.shared.subscriber.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = subscriber.quit().await;
                let _ = publisher.quit().await;
            });
        }
    }
}

/// Local state changed together: who is a member, what is subscribed,
/// what sequence numbers were seen.
#[derive(Default)]
struct State {
    registry: LocalRegistry,
    subscriptions: Subscriptions<Waiter>,
    tracker: SeqTracker,
}

struct Shared {
    naming: Naming,
    capacity: usize,
    state: Mutex<State>,
    /// Sequence numbers of what this layer publishes; held while a
    /// publish is handed to fred, so Redis sees them in order.
    counter: Mutex<SeqCounter>,
    next_channel: AtomicU64,
    /// Wakes the subscription task after a change of membership.
    wake: Notify,
    gaps: AtomicU64,
    /// The last probe received back, per probe channel.
    probes_seen: Mutex<HashMap<String, u64>>,
    /// Counts replacements of the subscribing connection, so a probe sent
    /// before one is not expected back.
    connection_epoch: AtomicU64,
    publisher: Client,
    subscriber: Client,
}

/// Unregisters a channel when its inbox is dropped.
struct Registration {
    shared: Weak<Shared>,
    channel: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            let emptied = shared.state().registry.unregister(&self.channel);
            if !emptied.is_empty() {
                shared.wake.notify_one();
            }
        }
    }
}

impl FredLayer {
    /// Connects to Redis and starts the layer.
    ///
    /// Fails with [`Error::Connect`] or [`Error::ConnectTimeout`] if
    /// Redis cannot be reached now; once started, the layer reconnects by
    /// itself. Must be called inside a tokio runtime.
    pub async fn connect(config: FredConfig) -> Result<FredLayer, Error> {
        config.validate()?;
        let subscriber = build_client(&config)?;
        let publisher = build_client(&config)?;
        init(&subscriber, &config).await?;
        if let Err(error) = init(&publisher, &config).await {
            let _ = subscriber.quit().await;
            return Err(error);
        }
        // Before the first SUBSCRIBE, so no message is missed.
        let messages = subscriber.message_rx();
        let reconnects = subscriber.reconnect_rx();
        let shared = Arc::new(Shared {
            naming: Naming::new(&config.prefix, names::random_layer_id(), config.partitions),
            capacity: config.capacity,
            state: Mutex::new(State::default()),
            counter: Mutex::new(SeqCounter::default()),
            next_channel: AtomicU64::new(0),
            wake: Notify::new(),
            gaps: AtomicU64::new(0),
            probes_seen: Mutex::new(HashMap::new()),
            connection_epoch: AtomicU64::new(0),
            publisher,
            subscriber,
        });
        let mut tasks = vec![
            tokio::spawn(route_messages(Arc::clone(&shared), messages)),
            tokio::spawn(log_connection_events(Arc::clone(&shared))),
            tokio::spawn(maintain_subscriptions(Arc::clone(&shared), reconnects)),
        ];
        if let Some(interval) = config.probe_interval {
            tasks.push(tokio::spawn(probe_subscriptions(
                Arc::clone(&shared),
                interval,
            )));
        }
        let layer = FredLayer {
            inner: Arc::new(Inner { shared, tasks }),
        };
        let wanted = {
            let shared = layer.shared();
            shared.wanted(&shared.state())
        };
        layer.shared().await_subscriptions(wanted).await?;
        tracing::info!(
            url = %config.redacted_url(),
            layer_id = layer.shared().naming.layer_id(),
            "channel layer connected to Redis"
        );
        Ok(layer)
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// This layer's id: its connection channels are named
    /// `specific.<id>!<n>`.
    pub fn layer_id(&self) -> &str {
        self.shared().naming.layer_id()
    }

    /// How many gaps (group messages possibly lost) this layer detected
    /// since it started, summed over the groups concerned.
    pub fn gaps_detected(&self) -> u64 {
        self.shared().gaps.load(Ordering::Relaxed)
    }

    /// Number of local members of `group`.
    pub fn group_size(&self, group: &str) -> usize {
        self.shared().state().registry.group_size(group)
    }

    /// Number of local channels.
    pub fn channel_count(&self) -> usize {
        self.shared().state().registry.channel_count()
    }

    /// Number of Redis channels Redis confirmed this layer is subscribed
    /// to on the current connection (its own channel included).
    pub fn subscription_count(&self) -> usize {
        self.shared().state().subscriptions.confirmed_count()
    }
}

fn build_client(config: &FredConfig) -> Result<Client, Error> {
    let mut fred_config = Config::from_url(&config.url).map_err(Error::Config)?;
    // RESP3 lets the subscribing connection run other commands too and
    // delivers pub/sub messages as push frames.
    fred_config.version = RespVersion::RESP3;
    fred_config.fail_fast = true;
    let max_delay = u32::try_from(config.max_reconnect_delay.as_millis()).unwrap_or(u32::MAX);
    Builder::from_config(fred_config)
        .with_performance_config(|performance| {
            performance.broadcast_channel_capacity = config.broadcast_capacity;
            performance.default_command_timeout = config.command_timeout;
        })
        .with_connection_config(|connection| {
            connection.connection_timeout = config.connect_timeout;
        })
        // 0 attempts: never give up.
        .set_policy(ReconnectPolicy::new_exponential(
            0,
            100,
            max_delay.max(100),
            2,
        ))
        .build()
        .map_err(Error::Config)
}

async fn init(client: &Client, config: &FredConfig) -> Result<(), Error> {
    let url = config.redacted_url();
    // fred applies the connect timeout itself; this one is a backstop.
    let backstop = config.connect_timeout + Duration::from_secs(1);
    match tokio::time::timeout(backstop, client.init()).await {
        Ok(Ok(_connection_task)) => Ok(()),
        Ok(Err(source)) => Err(Error::Connect { url, source }),
        Err(_) => Err(Error::ConnectTimeout {
            url,
            timeout: config.connect_timeout,
        }),
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Redis channels this process must be subscribed to: its
    /// groups' channels, its own channel, and the probe channels that
    /// watch them.
    fn wanted(&self, state: &State) -> HashSet<String> {
        let mut wanted: HashSet<String> = state
            .registry
            .groups()
            .map(|group| self.naming.group_channel(group))
            .collect();
        wanted.insert(self.naming.own_channel());
        let probes: Vec<String> = wanted
            .iter()
            .map(|channel| self.naming.probe_channel_for(channel))
            .collect();
        wanted.extend(probes);
        wanted
    }

    /// The probe channels Redis confirmed on the current connection.
    fn confirmed_probe_channels(&self) -> Vec<String> {
        let state = self.state();
        let mut probes: Vec<String> = self
            .wanted(&state)
            .iter()
            .map(|channel| self.naming.probe_channel_for(channel))
            .filter(|probe| state.subscriptions.is_confirmed(probe))
            .collect();
        probes.sort();
        probes.dedup();
        probes
    }

    /// Waits until Redis confirmed a subscription to each of `channels`
    /// (at once for those already confirmed).
    async fn await_subscriptions(
        &self,
        channels: impl IntoIterator<Item = String>,
    ) -> Result<(), Error> {
        let waits = {
            let mut state = self.state();
            register_waits(&mut state, channels)
        };
        self.finish_waits(waits).await
    }

    async fn finish_waits(&self, waits: Vec<oneshot::Receiver<WaitResult>>) -> Result<(), Error> {
        if waits.is_empty() {
            return Ok(());
        }
        self.wake.notify_one();
        for wait in waits {
            match wait.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(Error::Command(error)),
                Err(_) => return Err(Error::Closed),
            }
        }
        Ok(())
    }

    /// Members of `group` may have lost messages: count, log and tell them.
    fn notify_gap(&self, registry: &LocalRegistry, group: &str, reason: &'static str) {
        self.gaps.fetch_add(1, Ordering::Relaxed);
        let members = registry.group_size(group);
        tracing::warn!(
            group,
            reason,
            members,
            "group messages may have been lost; telling the group's local members"
        );
        deliver_gap_notice(registry, group);
    }

    /// Messages sent to this layer's channels (not groups) may have been
    /// lost. There is no per-channel notice; count and log it.
    fn direct_gap(&self, reason: &'static str) {
        self.gaps.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            reason,
            "channel messages to this process may have been lost"
        );
    }

    /// Redis confirmed a SUBSCRIBE of `channels`.
    fn confirmed(&self, channels: &[String]) {
        let waiters = {
            let mut state = self.state();
            let confirmed = state.subscriptions.subscribed(channels);
            for channel in &confirmed.resynced {
                match self.naming.group_of(channel) {
                    Some(group) => self.notify_gap(&state.registry, group, "reconnected"),
                    None => self.direct_gap("reconnected"),
                }
            }
            confirmed.waiters
        };
        for waiter in waiters {
            let _ = waiter.send(Ok(()));
        }
    }

    /// Subscribes to everything again and reports the gap once Redis has
    /// confirmed it: after the subscribing connection was replaced
    /// (`connection_replaced`: the new one holds nothing, not even what an
    /// UNSUBSCRIBE under way was for), or when subscriptions may have
    /// ended without notice (a probe did not come back).
    fn resubscribe_all(&self, connection_replaced: bool) {
        self.connection_epoch.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        if connection_replaced {
            state.subscriptions.connection_lost();
        } else {
            state.subscriptions.suspect_all();
        }
        state.tracker.reset_all();
        drop(state);
        self.wake.notify_one();
    }

    /// Subscribes to `channels` (all of one partition when sharded) and
    /// returns once Redis has processed the SUBSCRIBE.
    ///
    /// fred resolves SSUBSCRIBE with Redis's reply. It resolves SUBSCRIBE
    /// as soon as the command is written (its replies arrive out of band
    /// and are dropped), so a PING follows on
    /// the same connection (the same cluster node: the slot fred hashes
    /// plain SUBSCRIBE to): Redis answers commands of one connection in
    /// order, so its reply proves the subscription is in place. A failed
    /// SUBSCRIBE surfaces as the PING's error.
    async fn subscribe(&self, channels: &[String]) -> Result<(), fred::error::Error> {
        if self.naming.is_sharded() {
            return self.subscriber.ssubscribe(channels.to_vec()).await;
        }
        self.subscriber.subscribe(channels.to_vec()).await?;
        let slot = fred::util::redis_keyslot(self.subscriber.id().as_bytes());
        let ping = CustomCommand::new_static("PING", ClusterHash::Custom(slot), false);
        let _: fred::prelude::Value = self.subscriber.custom(ping, Vec::<String>::new()).await?;
        Ok(())
    }

    /// Unsubscribes from `channels` (all of one partition when sharded).
    async fn unsubscribe(&self, channels: &[String]) -> Result<(), fred::error::Error> {
        if self.naming.is_sharded() {
            self.subscriber.sunsubscribe(channels.to_vec()).await
        } else {
            self.subscriber.unsubscribe(channels.to_vec()).await
        }
    }

    /// Publishes `payload` on `channel`: PUBLISH, or SPUBLISH when sharded.
    fn publish(&self, channel: String, payload: String) -> PublishFuture<'_> {
        if self.naming.is_sharded() {
            Box::pin(self.publisher.spublish::<i64, _, _>(channel, payload))
        } else {
            Box::pin(self.publisher.publish::<i64, _, _>(channel, payload))
        }
    }

    /// Routes one message Redis delivered to the local inboxes.
    fn route(&self, message: &Message) {
        let Some(bytes) = message.value.as_bytes() else {
            tracing::warn!(channel = %message.channel, "dropping a non-text pub/sub message");
            return;
        };
        let wrapped = match envelope::decode(bytes) {
            Ok(wrapped) => wrapped,
            Err(error) => {
                tracing::warn!(channel = %message.channel, %error, "dropping a malformed pub/sub message");
                return;
            }
        };
        if wrapped.publisher == self.naming.layer_id() {
            if wrapped.target == Target::Channel(PROBE.into()) {
                let mut seen = self.probes_seen.lock().unwrap_or_else(|e| e.into_inner());
                let last = seen.entry(message.channel.to_string()).or_default();
                *last = (*last).max(wrapped.seq.this);
            }
            // Our own group send: its local members already have it.
            return;
        }
        // Parsed once, shared by every local receiver.
        let layer_message = match LayerMessage::from_json(wrapped.message.get().as_bytes()) {
            Ok(layer_message) => Arc::new(layer_message),
            Err(error) => {
                tracing::warn!(channel = %message.channel, %error, "dropping an unreadable layer message");
                return;
            }
        };
        let mut state = self.state();
        let observed = state
            .tracker
            .observe(&message.channel, &wrapped.publisher, wrapped.seq);
        match (observed, &wrapped.target) {
            (Observed::Stale, _) => {
                tracing::debug!(
                    channel = %message.channel,
                    publisher = %wrapped.publisher,
                    seq = wrapped.seq.this,
                    "dropping a duplicate pub/sub message"
                );
            }
            (observed, Target::Group(group)) => {
                if observed == Observed::Gap {
                    tracing::debug!(group = %group, publisher = %wrapped.publisher, "sequence gap");
                    self.notify_gap(&state.registry, group, "sequence gap");
                }
                state.registry.deliver_to_group(group, &layer_message);
            }
            (observed, Target::Channel(channel)) => {
                if observed == Observed::Gap {
                    self.direct_gap("sequence gap");
                }
                state.registry.deliver_to_channel(channel, &layer_message);
            }
        }
    }

    /// The pub/sub buffer overflowed: every local group may have lost
    /// messages.
    fn lagged(&self, missed: u64) {
        tracing::warn!(
            missed,
            "the Redis pub/sub buffer overflowed; raise FredConfig::broadcast_capacity"
        );
        let mut state = self.state();
        state.tracker.reset_all();
        let state = &*state;
        for group in state.registry.groups() {
            self.notify_gap(&state.registry, group, "pub/sub buffer overflow");
        }
        self.direct_gap("pub/sub buffer overflow");
    }

    /// Assigns the next sequence number on `redis_channel` and hands the
    /// PUBLISH to fred before returning, so publishes reach Redis in the
    /// order this is called.
    fn start_publish(
        &self,
        redis_channel: String,
        target: Target<'_>,
        message: &LayerMessage,
    ) -> Publish<'_> {
        let json = message.to_json();
        let mut counter = self.counter.lock().unwrap_or_else(|e| e.into_inner());
        let seq = counter.next(&redis_channel);
        let payload = envelope::encode(self.naming.layer_id(), seq, &target, &json);
        let mut publish = self.publish(redis_channel, payload);
        // fred queues the command on the connection during the first poll
        // (no await comes before it), so polling once under the counter
        // lock fixes the order; the real waker registers when awaited.
        let first = publish
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        drop(counter);
        match first {
            Poll::Ready(result) => Publish::Done(result),
            Poll::Pending => Publish::Pending(publish),
        }
    }
}

type WaitResult = Result<(), fred::error::Error>;
type PublishFuture<'a> =
    Pin<Box<dyn Future<Output = fred::interfaces::FredResult<i64>> + Send + 'a>>;

/// A PUBLISH already handed to fred.
enum Publish<'a> {
    Done(fred::interfaces::FredResult<i64>),
    Pending(PublishFuture<'a>),
}

impl Publish<'_> {
    async fn finish(self) -> Result<(), LayerError> {
        let result = match self {
            Publish::Done(result) => result,
            Publish::Pending(future) => future.await,
        };
        result
            .map(|_receivers| ())
            .map_err(|error| Error::Command(error).into())
    }
}

/// Registers a waiter for each of `channels` not yet confirmed.
fn register_waits(
    state: &mut State,
    channels: impl IntoIterator<Item = String>,
) -> Vec<oneshot::Receiver<WaitResult>> {
    let mut waits = Vec::new();
    for channel in channels {
        if !state.subscriptions.is_confirmed(&channel) {
            let (tx, rx) = oneshot::channel();
            state.subscriptions.wait(channel, tx);
            waits.push(rx);
        }
    }
    waits
}

/// Tells the local members of `group` that they may have missed messages
/// (one notice, shared by all of them).
fn deliver_gap_notice(registry: &LocalRegistry, group: &str) {
    registry.deliver_to_group(group, &Arc::new(LayerMessage::gap(group)));
}

/// Reads what Redis delivers and routes it to the local inboxes; never
/// waits on an inbox.
async fn route_messages(shared: Arc<Shared>, mut messages: broadcast::Receiver<Message>) {
    loop {
        match messages.recv().await {
            Ok(message) => shared.route(&message),
            Err(RecvError::Lagged(missed)) => shared.lagged(missed),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Keeps the Redis subscriptions equal to the local groups, across
/// reconnections.
async fn maintain_subscriptions(
    shared: Arc<Shared>,
    mut reconnects: broadcast::Receiver<fred::prelude::Server>,
) {
    let mut backoff = Backoff::default();
    loop {
        loop {
            match reconnects.try_recv() {
                Ok(server) => reconnected(&shared, &server.to_string()),
                Err(TryRecvError::Lagged(_)) => reconnected(&shared, "?"),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        let plan = {
            let mut state = shared.state();
            let wanted = shared.wanted(&state);
            let (plan, released) = state.subscriptions.plan(&wanted);
            for waiter in released {
                let _ = waiter.send(Ok(()));
            }
            plan
        };
        if plan.is_empty() {
            backoff.reset();
            tokio::select! {
                () = shared.wake.notified() => {}
                event = reconnects.recv() => match event {
                    Ok(server) => reconnected(&shared, &server.to_string()),
                    Err(RecvError::Lagged(_)) => reconnected(&shared, "?"),
                    Err(RecvError::Closed) => return,
                },
            }
            continue;
        }
        let mut unsubscribe_failed = false;
        for batch in shared.naming.batches(&plan.unsubscribe, SUBSCRIBE_BATCH) {
            match shared.unsubscribe(&batch).await {
                Ok(()) => {
                    let mut state = shared.state();
                    state.subscriptions.unsubscribed(&batch);
                    for channel in &batch {
                        state.tracker.reset(channel);
                    }
                    tracing::debug!(channels = batch.len(), "unsubscribed");
                }
                Err(error) => {
                    tracing::warn!(%error, "Redis UNSUBSCRIBE failed; retrying");
                    unsubscribe_failed = true;
                    break;
                }
            }
        }
        if unsubscribe_failed {
            backoff.wait().await;
            continue;
        }
        for batch in shared.naming.batches(&plan.subscribe, SUBSCRIBE_BATCH) {
            let batch = batch.as_slice();
            {
                let mut state = shared.state();
                for channel in batch {
                    state.tracker.reset(channel);
                }
            }
            match shared.subscribe(batch).await {
                Ok(()) => {
                    tracing::debug!(channels = batch.len(), "subscribed");
                    shared.confirmed(batch);
                }
                Err(error) => {
                    tracing::warn!(%error, channels = batch.len(), "Redis SUBSCRIBE failed; retrying");
                    let waiters = shared.state().subscriptions.subscribe_failed(batch);
                    for waiter in waiters {
                        let _ = waiter.send(Err(error.clone()));
                    }
                    backoff.wait().await;
                    break;
                }
            }
        }
    }
}

/// Checks, every `interval`, that the probe published on each probe
/// channel last time came back. If one did not, a subscription ended
/// without a word from fred (a half-open connection, or with sharded
/// pub/sub a slot that migrated and took its subscriptions along): the
/// subscribing connection is replaced, which subscribes everything again
/// and reports the gap.
async fn probe_subscriptions(shared: Arc<Shared>, interval: Duration) {
    // Probes of the last round: (channel, sequence number), and the
    // connection they were sent on.
    let mut pending: Vec<(String, u64)> = Vec::new();
    let mut pending_epoch = 0;
    let mut seq = 0;
    loop {
        tokio::time::sleep(interval).await;
        let epoch = shared.connection_epoch.load(Ordering::Relaxed);
        let confirmed = shared.confirmed_probe_channels();
        if epoch == pending_epoch
            && let Some((channel, _)) = lost_probe(&shared, &pending, &confirmed)
        {
            tracing::warn!(
                channel,
                "subscription probe not received back; subscribing again on a new connection"
            );
            // Subscribing again repairs subscriptions a slot migration
            // ended; the new connection repairs a half-open one (fred
            // reports no reconnection event for a forced one).
            shared.resubscribe_all(false);
            if let Err(error) = shared.subscriber.force_reconnection().await {
                tracing::warn!(%error, "forced reconnection failed");
            }
            pending.clear();
            continue;
        }
        seq += 1;
        pending.clear();
        pending_epoch = epoch;
        for channel in confirmed {
            // Probes are numbered apart from messages, and never chained.
            let probe_seq = Seq {
                this: seq,
                previous: None,
            };
            let probe = envelope::encode(
                shared.naming.layer_id(),
                probe_seq,
                &Target::Channel(PROBE.into()),
                "null",
            );
            match shared.publish(channel.clone(), probe).await {
                Ok(_) => pending.push((channel, seq)),
                // The publisher's own trouble is logged elsewhere.
                Err(error) => tracing::debug!(%error, channel, "subscription probe not published"),
            }
        }
    }
}

/// The first probe of `pending` not received back on a channel that is
/// still subscribed.
fn lost_probe<'p>(
    shared: &Shared,
    pending: &'p [(String, u64)],
    confirmed: &[String],
) -> Option<&'p (String, u64)> {
    let seen = shared.probes_seen.lock().unwrap_or_else(|e| e.into_inner());
    pending.iter().find(|(channel, seq)| {
        confirmed.contains(channel) && seen.get(channel).copied().unwrap_or(0) < *seq
    })
}

fn reconnected(shared: &Shared, server: &str) {
    tracing::debug!(server, "subscriber reconnected; restoring subscriptions");
    shared.resubscribe_all(true);
}

/// Logs connection trouble of both Redis connections: the first error
/// after a (re)connection as a warning, the failed attempts that follow at
/// debug level, and the reconnection.
async fn log_connection_events(shared: Arc<Shared>) {
    let mut subscriber_errors = shared.subscriber.error_rx();
    let mut subscriber_reconnects = shared.subscriber.reconnect_rx();
    let mut publisher_errors = shared.publisher.error_rx();
    let mut publisher_reconnects = shared.publisher.reconnect_rx();
    let mut subscriber = ConnectionLog::new("subscriber");
    let mut publisher = ConnectionLog::new("publisher");
    loop {
        let open = tokio::select! {
            event = subscriber_errors.recv() => subscriber.error(event),
            event = subscriber_reconnects.recv() => subscriber.reconnected(event),
            event = publisher_errors.recv() => publisher.error(event),
            event = publisher_reconnects.recv() => publisher.reconnected(event),
        };
        if !open {
            return;
        }
    }
}

/// Whether one connection is down, to log its outage once.
struct ConnectionLog {
    name: &'static str,
    down: bool,
}

impl ConnectionLog {
    fn new(name: &'static str) -> Self {
        ConnectionLog { name, down: false }
    }

    /// Logs an error event; false once the event stream closed.
    fn error(
        &mut self,
        event: Result<(fred::error::Error, Option<fred::prelude::Server>), RecvError>,
    ) -> bool {
        let (error, server) = match event {
            Ok(event) => event,
            Err(RecvError::Lagged(_)) => return true,
            Err(RecvError::Closed) => return false,
        };
        let server = server.map(|server| server.to_string()).unwrap_or_default();
        if self.down {
            tracing::debug!(connection = self.name, server, %error, "Redis still unreachable");
        } else {
            self.down = true;
            tracing::warn!(connection = self.name, server, %error, "Redis connection lost; reconnecting");
        }
        true
    }

    /// Logs a reconnection; false once the event stream closed.
    fn reconnected(&mut self, event: Result<fred::prelude::Server, RecvError>) -> bool {
        match event {
            Ok(server) => {
                self.down = false;
                tracing::info!(connection = self.name, server = %server, "reconnected to Redis");
                true
            }
            Err(RecvError::Lagged(_)) => true,
            Err(RecvError::Closed) => false,
        }
    }
}

/// Pauses between retries: 100 ms, doubling up to 5 s.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    async fn wait(&mut self) {
        let delay = Duration::from_millis(100)
            .saturating_mul(1 << self.failures.min(6))
            .min(Duration::from_secs(5));
        self.failures = self.failures.saturating_add(1);
        tokio::time::sleep(delay).await;
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

impl ChannelLayer for FredLayer {
    fn new_channel(&self) -> BoxFuture<'_, Result<(String, Inbox), LayerError>> {
        Box::pin(async move {
            let shared = self.shared();
            let n = shared.next_channel.fetch_add(1, Ordering::Relaxed);
            let name = shared.naming.connection_channel(n);
            let (tx, rx) = chanx::layer::inbox_channel(shared.capacity);
            shared.state().registry.register(name.clone(), tx);
            let registration = Registration {
                shared: Arc::downgrade(&self.inner.shared),
                channel: name.clone(),
            };
            Ok((name, Inbox::new(rx, registration)))
        })
    }

    fn group_add<'a>(
        &'a self,
        group: &'a str,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.join(channel, std::iter::once(group))
    }

    fn join_groups<'a>(
        &'a self,
        channel: &'a str,
        groups: &'a [String],
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.join(channel, groups.iter().map(String::as_str))
    }

    fn group_discard<'a>(
        &'a self,
        group: &'a str,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.leave(channel, std::iter::once(group))
    }

    fn leave_groups<'a>(
        &'a self,
        channel: &'a str,
        groups: &'a [String],
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.leave(channel, groups.iter().map(String::as_str))
    }

    fn group_send<'a>(
        &'a self,
        group: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            let shared = self.shared();
            shared.state().registry.deliver_to_group(group, &message);
            let publish = shared.start_publish(
                shared.naming.group_channel(group),
                Target::Group(group.into()),
                &message,
            );
            publish.finish().await
        })
    }

    fn send<'a>(
        &'a self,
        channel: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            let shared = self.shared();
            match names::owner_of(channel) {
                Some(owner) if owner != shared.naming.layer_id() => {
                    let publish = shared.start_publish(
                        shared.naming.layer_channel(owner),
                        Target::Channel(channel.into()),
                        &message,
                    );
                    publish.finish().await
                }
                _ => {
                    shared
                        .state()
                        .registry
                        .deliver_to_channel(channel, &message);
                    Ok(())
                }
            }
        })
    }
}

impl FredLayer {
    /// Adds `channel` to `groups`; resolves once Redis confirmed every
    /// group's subscription. On an error the memberships stay, and become
    /// effective once Redis answers again.
    fn join<'a>(
        &'a self,
        channel: &'a str,
        groups: impl IntoIterator<Item = &'a str> + Send + 'a,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            let shared = self.shared();
            let waits = {
                let mut state = shared.state();
                let mut joined = Vec::new();
                for group in groups {
                    if state.registry.add(group, channel) == Joined::UnknownChannel {
                        tracing::debug!(group, channel, "join of an unknown channel ignored");
                        continue;
                    }
                    joined.push(shared.naming.group_channel(group));
                }
                register_waits(&mut state, joined)
            };
            shared.finish_waits(waits).await.map_err(LayerError::from)
        })
    }

    /// Removes `channel` from `groups`; unsubscribing from groups left
    /// without local members happens in the background.
    fn leave<'a>(
        &'a self,
        channel: &'a str,
        groups: impl IntoIterator<Item = &'a str> + Send + 'a,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            let shared = self.shared();
            let mut emptied = false;
            {
                let mut state = shared.state();
                for group in groups {
                    emptied |= state.registry.discard(group, channel);
                }
            }
            if emptied {
                shared.wake.notify_one();
            }
            Ok(())
        })
    }
}
