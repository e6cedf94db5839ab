//! The driver: runs one connection over a [`BoxSocket`], feeding the
//! Sans-IO core what happens and letting [`session`](crate::session)
//! perform what the core decides. It holds no protocol rule of its own:
//! no close code, no threshold.
//!
//! One task per connection, made of three parts polled together: the
//! session loop here (reads frames and layer messages, runs handlers), the
//! writer (drains the outbound queue into the socket and reports what it
//! wrote, so the core bounds the backlog without ever blocking the session
//! on a slow client) and the layer worker (performs layer commands off the
//! write path).
//!
//! Handlers run one at a time, in the order messages arrived, unless the
//! endpoint opted in to concurrency ([`dispatch`]).

mod dispatch;
mod timer;

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Instant;

use chanx_proto::{AuthOutcome, Connection, Failure, Handled, LayerMessage, Protocol, State};
use futures_util::future::{Either, FutureExt};
use futures_util::future::{Fuse, FusedFuture};
use futures_util::stream::FusedStream;
use futures_util::{StreamExt, future};
use tracing::{Instrument, Span};

use self::dispatch::{Concurrent, Core, Finished, dispatch, finish, report, run_caught};
use self::timer::Timer;
use crate::auth::{AuthDecision, AuthPolicy};
use crate::consumer::{Consumer, Context};
use crate::handshake::{Handshake, KeptHandshake};
use crate::layer::{ChannelLayer, Inbox};
use crate::session::{
    CLOSE_TIMEOUT, Command, ConnectionTask, LogSettings, Outlet, Reply, SessionInfo, Turn, link,
};
use crate::shutdown::{ShutdownSignal, Triggered};
use crate::ws::{BoxSocket, SocketError, WsMessage};

/// The session yields to the writer at least this often (messages without
/// a wait), even when input keeps arriving.
const YIELD_EVERY: u32 = 32;

/// The session yields to the runtime at least this often (messages, waits
/// or not), so one busy connection cannot monopolize a worker thread. Not
/// counted since the last wait: a wait ends inside the same poll of the
/// connection's task whenever a source became ready meanwhile (see
/// `ConnectionTask`), so a steady inbox could otherwise keep the thread.
const FAIR_EVERY: u32 = 128;

/// What the session waits on: the socket, the inbox, the timer, the
/// shutdown signal, and a concurrent endpoint's commands and handlers.
const SOURCES: u32 = 6;

/// Every this many messages, the timer and the shutdown signal are polled
/// first.
const RARE_FIRST_EVERY: u32 = 16;

/// The order in which the session polls its sources (numbered as in its
/// wait): a concurrent endpoint's commands and finished handlers first
/// (work under way goes before new input; a direct endpoint has neither,
/// and polls them last), then the socket and the inbox, taking turns; the
/// timer and the shutdown signal come first every [`RARE_FIRST_EVERY`]
/// messages. No source that is always ready starves the others, and a
/// message costs the polls of few sources with nothing for the session
/// (`select!`'s random start cost about 150 instructions per echo under
/// callgrind, a rotation over all six about 70 more than this order).
fn poll_order(count: u32, concurrent: bool) -> [u32; SOURCES as usize] {
    let (first, second) = if count.is_multiple_of(2) {
        (0, 1)
    } else {
        (1, 0)
    };
    if count.is_multiple_of(RARE_FIRST_EVERY) {
        [2, 3, 4, 5, first, second]
    } else if concurrent {
        [4, 5, first, second, 2, 3]
    } else {
        // The two empty checks cost about 30 instructions per echo
        // (callgrind).
        [first, second, 2, 3, 4, 5]
    }
}

/// The session's counts of messages, for the order of its sources and its
/// yields.
#[derive(Default)]
struct Counts {
    /// Messages (and other wake-ups) so far, wrapping.
    messages: u32,
    /// Messages since the session last waited (its input ran dry), for
    /// the writer's turns.
    since_wait: u32,
}

impl Counts {
    /// One more message.
    fn next(&mut self) {
        self.messages = self.messages.wrapping_add(1);
        self.since_wait = self.since_wait.wrapping_add(1);
    }

    /// The input ran dry: the writer gets its turn with the wait, its
    /// count starts again.
    fn waited(&mut self) {
        self.since_wait = 0;
    }
}

/// Handlers allowed at once, and how to clone the consumer for each.
pub(crate) type Concurrency<C> = (usize, fn(&C) -> C);

/// What a consumer endpoint needs at run time.
pub(crate) struct EndpointCore<C: Consumer> {
    pub(crate) factory: Box<dyn Fn() -> C + Send + Sync>,
    pub(crate) protocol: Arc<Protocol<C::Incoming, C::Event>>,
    pub(crate) auth: AuthPolicy,
    pub(crate) log: Arc<LogSettings>,
    /// Handlers allowed at once and how to clone the consumer for them;
    /// `None`: one at a time, in order.
    pub(crate) concurrency: Option<Concurrency<C>>,
    /// The topic types, in the core's order.
    pub(crate) topics: Arc<[Arc<dyn crate::topic::MountedTopic>]>,
}

/// What woke the session up.
enum Wake {
    Frame(Option<Result<WsMessage, SocketError>>),
    Layer(Option<Arc<LayerMessage>>),
    Timer,
    Shutdown,
    Command(Option<(Command, Reply)>),
    Finished(Option<Finished>),
}

/// Runs one connection to its end. Group membership is always cleaned up.
pub(crate) fn run<C: Consumer>(
    endpoint: Arc<EndpointCore<C>>,
    socket: BoxSocket,
    handshake: Handshake,
    layer: Arc<dyn ChannelLayer>,
    shutdown: ShutdownSignal,
) -> impl Future<Output = ()> {
    let span = tracing::info_span!(
        "websocket",
        request_id = tracing::field::Empty,
        path = %handshake.path,
        ip = %handshake.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
    );
    // Built before the future: the future then holds a pointer to the
    // handshake rather than the handshake itself (200 bytes kept for the
    // whole connection after it moved here, `-Zprint-type-sizes`).
    let info = Arc::new(SessionInfo {
        handshake: KeptHandshake::new(handshake),
        user: None,
        object: None,
        request_id: OnceLock::new(),
        topics: Arc::clone(&endpoint.topics),
    });
    if !span.is_disabled() {
        span.record("request_id", info.request_id());
    }
    // The connection's parts are made once the layer has registered it,
    // outside any async block: an async block keeps its captures for its
    // whole life, moved out or not (`-Zprint-type-sizes`: 128 bytes per
    // connection), while `then` drops the registration's state for the
    // connection's.
    register(layer, span)
        .then(move |registered| run_registered(endpoint, socket, info, shutdown, registered))
}

/// A connection registered on the channel layer.
struct Registered {
    layer: Arc<dyn ChannelLayer>,
    span: Span,
    channel: String,
    /// `None` when the layer is unavailable (logged).
    inbox: Option<Inbox>,
}

/// Registers the connection on the layer; no inbox when the layer is
/// unavailable (logged).
async fn register(layer: Arc<dyn ChannelLayer>, span: Span) -> Registered {
    let (channel, inbox) = match layer.new_channel().instrument(span.clone()).await {
        Ok((channel, inbox)) => (channel, Some(inbox)),
        Err(error) => {
            span.in_scope(|| tracing::error!(%error, "channel layer unavailable"));
            (String::new(), None)
        }
    };
    Registered {
        layer,
        span,
        channel,
        inbox,
    }
}

/// Runs a connection the layer has registered to its end.
fn run_registered<C: Consumer>(
    endpoint: Arc<EndpointCore<C>>,
    socket: BoxSocket,
    info: Arc<SessionInfo>,
    shutdown: ShutdownSignal,
    registered: Registered,
) -> impl Future<Output = ()> {
    let Registered {
        layer,
        span,
        channel,
        inbox,
    } = registered;
    let (sink, stream) = socket.split();
    let (link, writer) = link(sink);
    let turn = Turn::default();
    // One copy of the name for the core and the layer worker.
    let channel: Arc<str> = channel.into();
    let (outlet, layer_worker) = Outlet::new(
        link,
        turn.clone(),
        Arc::clone(&endpoint.log),
        layer,
        Arc::clone(&channel),
    );
    let core = Core::<C> {
        conn: Connection::new(Arc::clone(&endpoint.protocol), channel, Instant::now()),
        info,
        outlet,
        pending: VecDeque::new(),
    };
    let io = SessionIo {
        stream: stream.fuse(),
        inbox,
        turn: turn.clone(),
    };
    let session = session(endpoint, core, io, shutdown);
    let task = ConnectionTask::new(session, writer, layer_worker, turn);
    // A span no subscriber wants is not entered at all: with tracing's
    // `log` feature on (warp and axum turn it on), entering even a
    // disabled span costs a check per poll (about 240 instructions per
    // echo under callgrind). An instrumented task is boxed, so that its
    // span does not size every connection's future.
    if span.is_disabled() {
        Either::Left(task)
    } else {
        Either::Right(Box::pin(task.instrument(span)))
    }
}

/// The session's inputs besides the endpoint.
///
/// The session uses these fields where they are instead of binding them
/// anew: a binding moved out of an upvalue takes a second slot in the
/// future.
struct SessionIo {
    stream: futures_util::stream::Fuse<futures_util::stream::SplitStream<BoxSocket>>,
    /// `None` when the layer could not register the connection.
    inbox: Option<Inbox>,
    turn: Turn,
}

fn session<C: Consumer>(
    endpoint: Arc<EndpointCore<C>>,
    mut core: Core<C>,
    mut io: SessionIo,
    shutdown: ShutdownSignal,
) -> impl Future<Output = ()> {
    // An `async move` block rather than an `async fn`: an async fn keeps
    // each argument twice in its future (the argument and its binding in
    // the body), and `core` is the largest (544 bytes each per connection,
    // `-Zprint-type-sizes`).
    // The wait made here: inside, the future would keep the signal and
    // the wait made of it (16 bytes more).
    let mut shutdown_signal = shutdown.wait().fuse();
    async move {
        let Some(inbox) = io.inbox.as_mut() else {
            core.conn.handle_failure(Failure::LayerUnavailable);
            core.flush().await;
            return;
        };
        let mut consumer = (endpoint.factory)();
        // Opening and closing run once per connection: boxed, so that their
        // futures (the authenticator's, the hooks') do not size the
        // session's future, which every idle connection keeps.
        Box::pin(open(
            &endpoint,
            &mut core,
            &mut consumer,
            &mut shutdown_signal,
        ))
        .await;
        // Boxed: 56 bytes that most endpoints, one handler at a time,
        // would keep in every connection's future for nothing.
        let mut concurrent = endpoint
            .concurrency
            .map(|(limit, clone)| Box::new(Concurrent::<C>::new(limit, clone)));
        // Long-lived futures: re-creating them per message would register a
        // fresh waker with the channel and the timer on every iteration.
        let mut timer = Timer::default();
        let mut reads_paused = false;
        let mut counts = Counts::default();
        while !core.is_done() {
            timer.arm(core.conn.poll_timeout());
            // Concurrent endpoints stop reading while deliveries wait for a
            // free handler slot: the client feels backpressure, memory stays
            // bounded, and the core knows (the heartbeat must not blame the
            // peer for answers we do not read).
            let can_read = core.pending.is_empty();
            // A connection over its input budget leaves its socket unread
            // until the budget is paid back (the timer wakes the loop then):
            // TCP slows the sender down, the other connections keep the CPU.
            let read_socket = can_read
                && core
                    .conn
                    .input_paused_until()
                    .is_none_or(|until| until <= Instant::now());
            if read_socket == reads_paused {
                reads_paused = !read_socket;
                if reads_paused {
                    core.conn.handle_reads_paused();
                } else {
                    core.conn.handle_reads_resumed();
                }
            }
            counts.next();
            if counts.since_wait.is_multiple_of(YIELD_EVERY) {
                // The writer shares this task: let it write regularly even when
                // input keeps arriving (`Core::flush` also hands it a turn
                // whenever the core says the backlog is high).
                io.turn.give().await;
            }
            if counts.messages.is_multiple_of(FAIR_EVERY) {
                // Input that never runs dry must not starve the other
                // connections (nor their inboxes) of this runtime thread.
                io.turn.yield_now().await;
            }
            // Moved in, as references and values: the flags then share one
            // word of the closure instead of a reference each (the closure
            // is part of the session's future).
            let woken = {
                let (counts, stream, inbox, timer, signal, concurrent, core_ref) = (
                    &mut counts,
                    &mut io.stream,
                    &mut *inbox,
                    &mut timer,
                    &mut shutdown_signal,
                    &mut concurrent,
                    &mut core,
                );
                future::poll_fn(move |cx| {
                    for source in poll_order(counts.messages, concurrent.is_some()) {
                        // Each source returns as soon as it is ready: a `Poll<Wake>`
                        // built per source costs its drop when pending.
                        match source {
                            0 if read_socket && !stream.is_terminated() => {
                                if let Poll::Ready(frame) = stream.poll_next_unpin(cx) {
                                    return Poll::Ready(Wake::Frame(frame));
                                }
                            }
                            1 if can_read && !inbox.is_terminated() => {
                                if let Poll::Ready(message) = inbox.poll_next_unpin(cx) {
                                    return Poll::Ready(Wake::Layer(message));
                                }
                            }
                            2 if timer.poll_unpin(cx).is_ready() => {
                                return Poll::Ready(Wake::Timer);
                            }
                            3 if !signal.is_terminated() && signal.poll_unpin(cx).is_ready() => {
                                return Poll::Ready(Wake::Shutdown);
                            }
                            4 => {
                                if let Some(c) = concurrent
                                    && !c.commands.is_terminated()
                                    && let Poll::Ready(command) = c.commands.poll_next_unpin(cx)
                                {
                                    return Poll::Ready(Wake::Command(command));
                                }
                            }
                            5 => {
                                if let Some(c) = concurrent
                                    && !c.in_flight.is_terminated()
                                    && let Poll::Ready(finished) = c.in_flight.poll_next_unpin(cx)
                                {
                                    return Poll::Ready(Wake::Finished(finished));
                                }
                            }
                            _ => {}
                        }
                    }
                    // The connection waits: what its queues grew to for the last
                    // messages goes back now rather than staying with every idle
                    // connection. A connection that gets one message at a time
                    // pays for it on each (the queues grow again): about 300 of
                    // some 8,600 server instructions per fan-out delivery
                    // (callgrind, BENCHMARKS.md).
                    core_ref.release_idle_memory();
                    counts.waited();
                    Poll::Pending
                })
            }
            .await;
            // Handed over whole: what woke the session is then gone before
            // the awaits below (a binding only partly moved out stays in
            // the session's future across them: 88 bytes per connection,
            // `-Zprint-type-sizes`).
            if let Some(performing) = on_wake::<C>(&mut core, woken) {
                performing.await;
            }
            core.flush().await;
            match &mut concurrent {
                Some(c) => c.start(&mut core, &consumer),
                None => dispatch(&mut core, &mut consumer).await,
            }
        }
        // Handlers still in flight are cancelled before `on_disconnect`: they
        // may hold locks it needs, and nothing polls them any more.
        drop(concurrent);
        Box::pin(close(&mut core, &mut consumer)).await;
        drop(io.inbox);
    }
}

/// Feeds the core what woke the session; for a concurrent handler's
/// command, the performing of it (and the reply), boxed as handlers are
/// in `dispatch`: only concurrent endpoints get there.
fn on_wake<C: Consumer>(
    core: &mut Core<C>,
    woken: Wake,
) -> Option<Pin<Box<impl Future<Output = ()> + '_>>> {
    match woken {
        Wake::Frame(Some(message)) => core.on_socket_message(message),
        Wake::Frame(None) => core.conn.handle_transport_closed(),
        Wake::Layer(Some(message)) => core.on_layer_message(&message),
        Wake::Layer(None) => core.conn.handle_failure(Failure::LayerClosed),
        Wake::Timer => core.conn.handle_timeout(Instant::now()),
        Wake::Shutdown => core.conn.shutdown(),
        Wake::Command(Some((command, reply))) => {
            return Some(Box::pin(async move {
                let result = core.perform(command).await;
                let _ = reply.try_send(result);
            }));
        }
        Wake::Finished(Some(finished)) => finish(core, finished),
        Wake::Command(None) | Wake::Finished(None) => {}
    }
    None
}

/// Authenticates the connection and, once it is open, joins its groups
/// and runs `post_authentication`.
async fn open<C: Consumer>(
    endpoint: &EndpointCore<C>,
    core: &mut Core<C>,
    consumer: &mut C,
    shutdown_signal: &mut Fuse<Triggered>,
) {
    let outcome = authenticate(endpoint, core, consumer).await;
    if let Err(error) = core.conn.handle_auth(outcome, Instant::now()) {
        tracing::error!(%error, "bug: authentication outcome not applied");
    }
    core.flush().await;
    if core.conn.state() != State::Open {
        return;
    }
    // A layer that is down may take long to join: a shutdown still ends
    // the connection meanwhile.
    let joined = {
        let settled = core.settled();
        futures_util::pin_mut!(settled);
        match future::select(settled, shutdown_signal).await {
            Either::Left((joined, _)) => Some(joined),
            Either::Right(_) => None,
        }
    };
    if let Some(Err(error)) = &joined {
        tracing::error!(%error, "could not join the connection's groups");
        core.conn.handle_failure(Failure::LayerUnavailable);
    } else if joined.is_none() {
        core.conn.shutdown();
    } else {
        core.conn.handle_groups_joined();
        let outcome = {
            let mut ctx = Context::direct(core);
            AssertUnwindSafe(consumer.post_authentication(&mut ctx))
                .catch_unwind()
                .await
        };
        if report("post_authentication failed", outcome) == Handled::Failed {
            core.conn.handle_failure(Failure::Application);
        }
    }
    core.flush().await;
}

/// Leaves the groups (bounded: a layer that is down must not hold the
/// connection), then runs the unsubscribe hooks and `on_disconnect`.
async fn close<C: Consumer>(core: &mut Core<C>, consumer: &mut C) {
    core.flush().await;
    {
        let left = core.settled();
        futures_util::pin_mut!(left);
        let timeout = futures_timer::Delay::new(CLOSE_TIMEOUT);
        if let Either::Right(_) = future::select(left, timeout).await {
            tracing::warn!("the channel layer did not confirm leaving the groups in time");
        }
    }
    unsubscribe_all::<C>(core).await;
    tracing::info!("Disconnecting websocket");
    let disconnected = AssertUnwindSafe(consumer.on_disconnect(&Context::direct(core)))
        .catch_unwind()
        .await;
    if disconnected.is_err() {
        tracing::error!("on_disconnect panicked");
    }
}

/// Runs every subscription's unsubscribe hook once the connection ended
/// (its groups are already left; sending is no longer possible).
async fn unsubscribe_all<C: Consumer>(core: &mut Core<C>) {
    type Subscription = (String, usize, Vec<(String, String)>);
    let subscriptions: Vec<Subscription> = core
        .conn
        .subscriptions()
        .map(|(topic, kind, params)| (topic.to_owned(), kind, params.to_vec()))
        .collect();
    let topics = Arc::clone(&core.info.topics);
    for (topic, kind, params) in subscriptions {
        let Some(mounted) = topics.get(kind) else {
            continue;
        };
        let mut ctx = Context::<C>::direct(core);
        let envelope = chanx_proto::topic::Envelope {
            topic,
            reference: None,
        };
        let call = crate::topic::TopicCall::on_endpoint(&mut ctx, kind, envelope, &params);
        let hook = mounted.on_unsubscribe(call);
        run_caught(&Span::none(), "on_unsubscribe failed", hook).await;
    }
}

/// Decides whether the connection may open and which groups it joins.
async fn authenticate<C: Consumer>(
    endpoint: &EndpointCore<C>,
    core: &mut Core<C>,
    consumer: &mut C,
) -> AuthOutcome {
    let decision = match AssertUnwindSafe(endpoint.auth.decide(core.info.handshake.get()))
        .catch_unwind()
        .await
    {
        Ok(decision) => decision,
        Err(_) => {
            tracing::error!(
                "Authentication failed with unexpected error: the authenticator panicked"
            );
            AuthDecision::Denied {
                status: 500,
                detail: String::new(),
            }
        }
    };
    let (user, object) = match decision {
        AuthDecision::Allowed { user, object } => (user, object),
        AuthDecision::Denied { status, detail } => {
            tracing::info!(status, %detail, "Authentication refused");
            return AuthOutcome::Rejected { status, detail };
        }
    };
    let user_pk = user.as_ref().map(|u| u.pk.clone());
    // Nothing shares the info before the connection opens: no copy here.
    let info = Arc::make_mut(&mut core.info);
    info.user = user;
    info.object = object;
    let groups = AssertUnwindSafe(consumer.build_groups(&Context::direct(core)))
        .catch_unwind()
        .await;
    match groups {
        Ok(groups) => {
            let user = core.info.user.as_ref().map(|u| u.username.as_str());
            tracing::info!(user, ?groups, "Websocket connected");
            AuthOutcome::Accepted { user_pk, groups }
        }
        Err(_) => {
            tracing::error!("build_groups panicked; refusing the connection");
            AuthOutcome::Rejected {
                status: 500,
                detail: String::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_order_polls_every_source_once() {
        for count in 0..64 {
            for concurrent in [false, true] {
                let mut order = poll_order(count, concurrent);
                order.sort_unstable();
                assert_eq!(
                    order,
                    [0, 1, 2, 3, 4, 5],
                    "count {count}, concurrent {concurrent}"
                );
            }
        }
    }

    #[test]
    fn socket_and_inbox_take_turns_and_rare_sources_come_first_regularly() {
        // Work under way first, then the socket and the inbox, in turns.
        assert_eq!(poll_order(1, true)[..4], [4, 5, 1, 0]);
        assert_eq!(poll_order(2, true)[..4], [4, 5, 0, 1]);
        assert_eq!(poll_order(1, false)[..2], [1, 0]);
        assert_eq!(poll_order(2, false)[..2], [0, 1]);
        // The timer and the shutdown signal lead once every
        // RARE_FIRST_EVERY messages, also across the count's wrap.
        for concurrent in [false, true] {
            let leading = |count: u32| poll_order(count, concurrent)[..2] == [2, 3];
            let led: Vec<u32> = (1..=64).filter(|&c| leading(c)).collect();
            assert_eq!(led, [16, 32, 48, 64]);
            assert!(leading(u32::MAX.wrapping_add(1)));
            assert!(leading(u32::MAX - (RARE_FIRST_EVERY - 1)));
        }
    }
}
