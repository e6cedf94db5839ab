//! The driver: runs one connection over a [`BoxSocket`], feeding the
//! Sans-IO core and performing its outputs.
//!
//! One future per connection, made of two halves joined together: the
//! session (reads frames and layer messages, runs handlers) and the writer
//! (drains the outbound queue into the socket). The writer reports what it
//! wrote so the core can bound the backlog (close 4008) without ever
//! blocking the session on a slow client.
//!
//! Handlers run one at a time, in the order messages arrived, unless the
//! endpoint opted in to concurrency ([`dispatch`]).

mod core;
mod dispatch;
mod halves;
mod timer;
mod writer;

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chanx_proto::{AuthOutcome, Connection, Handled, LayerMessage, State, close_code};
use futures_util::future::{Either, FutureExt, select};
use futures_util::{StreamExt, future};
use tracing::Instrument;

pub use self::core::LogSettings;
pub(crate) use self::core::{Core, SessionInfo};
pub(crate) use self::dispatch::{Command, Remote};
use self::dispatch::{Concurrent, Finished, Reply, report};
use self::halves::{Halves, Turn};
use self::timer::Timer;
use crate::auth::AuthDecision;
use crate::consumer::{Consumer, Context};
use crate::endpoint::EndpointCore;
use crate::handshake::Handshake;
use crate::layer::ChannelLayer;
use crate::shutdown::ShutdownSignal;
use crate::ws::{BoxSocket, SocketError, WsMessage};

/// How long a closing connection may take to flush its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The session yields to the writer at least this often, even when input
/// keeps arriving.
const YIELD_EVERY: u32 = 32;

/// The session yields to the runtime at least this often, so one busy
/// connection cannot monopolize a worker thread.
const FAIR_EVERY: u32 = 128;

/// Returns `Pending` once after waking itself: the runtime polls other
/// tasks before this one again.
async fn yield_to_runtime() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
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
pub(crate) async fn run<C: Consumer>(
    endpoint: Arc<EndpointCore<C>>,
    socket: BoxSocket,
    handshake: Handshake,
    layer: Arc<dyn ChannelLayer>,
    shutdown: ShutdownSignal,
) {
    let request_id = handshake
        .request_id()
        .filter(|id| id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:032x}", fastrand::u128(..)));
    let span = tracing::info_span!(
        "websocket",
        request_id = %request_id,
        path = %handshake.path,
        ip = %handshake.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
    );
    let (sink, stream) = socket.split();
    let (link, writer) = writer::link(sink);
    let turn = Turn::default();
    let writer = writer.instrument(span.clone());
    let io = SessionIo {
        stream,
        link,
        turn: turn.clone(),
    };
    let session = session(endpoint, io, handshake, request_id, layer, shutdown).instrument(span);
    futures_util::pin_mut!(writer, session);
    let halves = Halves {
        session,
        writer: writer.as_mut(),
        writer_done: false,
        turn,
    };
    if !halves.await {
        // Let the writer flush what is queued and the close frame.
        let _ = select(writer, futures_timer::Delay::new(CLOSE_TIMEOUT)).await;
    }
}

/// The session's side of the socket.
struct SessionIo {
    stream: futures_util::stream::SplitStream<BoxSocket>,
    link: writer::Link,
    turn: Turn,
}

async fn session<C: Consumer>(
    endpoint: Arc<EndpointCore<C>>,
    io: SessionIo,
    handshake: Handshake,
    request_id: String,
    layer: Arc<dyn ChannelLayer>,
    shutdown: ShutdownSignal,
) {
    let SessionIo { stream, link, turn } = io;
    let (channel, mut inbox) = match layer.new_channel().await {
        Ok(registered) => registered,
        Err(error) => {
            tracing::error!(%error, "channel layer unavailable; refusing connection");
            link.close(1011, "channel layer unavailable");
            return;
        }
    };
    let decision = match AssertUnwindSafe(endpoint.auth.decide(&handshake))
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
    let (user, object, outcome) = match decision {
        AuthDecision::Allowed { user, object } => {
            let user_pk = user.as_ref().map(|u| u.pk.clone());
            (user, object, Ok(user_pk))
        }
        AuthDecision::Denied { status, detail } => {
            tracing::info!(status, %detail, "Authentication refused");
            (None, None, Err(AuthOutcome::Rejected { status, detail }))
        }
    };
    let mut core = Core::<C> {
        conn: Connection::new(Arc::clone(&endpoint.protocol), channel, Instant::now()),
        info: Arc::new(SessionInfo {
            handshake,
            user,
            object,
            request_id,
        }),
        layer,
        link,
        turn: turn.clone(),
        log: Arc::clone(&endpoint.log),
        pending: VecDeque::new(),
    };
    let mut consumer = (endpoint.factory)();
    let outcome = match outcome {
        Ok(user_pk) => {
            let groups = AssertUnwindSafe(consumer.build_groups(&Context::direct(&mut core)))
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
        Err(rejected) => rejected,
    };
    if let Err(error) = core.conn.handle_auth(outcome, Instant::now()) {
        tracing::error!(%error, "authentication outcome not applied");
    }
    let joined = core.flush().await;
    if core.conn.state() == State::Open {
        if let Err(error) = joined {
            tracing::error!(%error, "could not join the connection's groups");
            core.conn.close(1011, "channel layer unavailable");
        } else {
            let outcome = {
                let mut ctx = Context::direct(&mut core);
                AssertUnwindSafe(consumer.post_authentication(&mut ctx))
                    .catch_unwind()
                    .await
            };
            if report("post_authentication failed", outcome) == Handled::Failed {
                core.conn.close(1011, "internal error");
            }
        }
        let _ = core.flush().await;
    }
    let mut concurrent = endpoint
        .concurrency
        .map(|(limit, clone)| Concurrent::<C>::new(limit, clone));
    // Long-lived futures: re-creating them per message would register a
    // fresh waker with the channel and the timer on every iteration.
    let mut stream = stream.fuse();
    let shutdown_signal = shutdown.wait().fuse();
    futures_util::pin_mut!(shutdown_signal);
    let mut timer = Timer::default();
    let mut iteration: u32 = 1;
    while !core.is_done() {
        timer.arm(core.conn.poll_timeout());
        // Concurrent endpoints stop reading while deliveries wait for a
        // free handler slot: the client feels backpressure, memory stays bounded.
        let can_read = core.pending.is_empty();
        if iteration.is_multiple_of(YIELD_EVERY) {
            // The writer shares this task: let it write regularly even when
            // input keeps arriving (`Core::flush` also hands it a turn
            // whenever the backlog passes half the bound).
            turn.give().await;
        }
        if iteration.is_multiple_of(FAIR_EVERY) {
            // Input that never runs dry must not starve the other
            // connections (nor their inboxes) of this runtime thread.
            yield_to_runtime().await;
        }
        iteration = iteration.wrapping_add(1);
        let wake = {
            let (mut read, mut layer) = if can_read {
                (Either::Left(stream.next()), Either::Left(inbox.next()))
            } else {
                (
                    Either::Right(future::pending()),
                    Either::Right(future::pending()),
                )
            };
            let (mut command, mut finished) = match &mut concurrent {
                Some(c) => (
                    Either::Left(c.commands.next()),
                    Either::Left(c.in_flight.next()),
                ),
                None => (
                    Either::Right(future::pending()),
                    Either::Right(future::pending()),
                ),
            };
            futures_util::select! {
                frame = read => Wake::Frame(frame),
                message = layer => Wake::Layer(message),
                () = timer => Wake::Timer,
                () = shutdown_signal => Wake::Shutdown,
                c = command => Wake::Command(c),
                f = finished => Wake::Finished(f),
            }
        };
        match wake {
            Wake::Frame(Some(Ok(message))) => core.on_socket_message(message),
            Wake::Frame(Some(Err(error))) if error.is_too_big() => {
                core.conn
                    .close(close_code::MESSAGE_TOO_BIG, "message too big");
            }
            Wake::Frame(Some(Err(error))) => {
                tracing::debug!(%error, "socket read failed");
                core.conn.handle_transport_closed();
            }
            Wake::Frame(None) => core.conn.handle_transport_closed(),
            Wake::Layer(Some(message)) => core.on_layer_message(&message),
            Wake::Layer(None) => core.conn.close(1011, "channel layer closed"),
            Wake::Timer => {
                let now = Instant::now();
                if !can_read {
                    // Reads are paused by us (handlers busy), not by a dead
                    // peer: count the peer as alive.
                    let _ = core.conn.handle_frame(chanx_proto::InFrame::Pong, now);
                }
                core.conn.handle_timeout(now);
            }
            Wake::Shutdown => core.conn.shutdown(),
            Wake::Command(Some((command, reply))) => {
                let result = core.execute(command).await;
                let _ = reply.try_send(result);
            }
            Wake::Finished(Some(finished)) => core.finish(finished),
            Wake::Command(None) | Wake::Finished(None) => {}
        }
        let _ = core.flush().await;
        match &mut concurrent {
            Some(c) => c.start(&mut core, &consumer),
            None => core.dispatch(&mut consumer).await,
        }
    }
    // Handlers still in flight are cancelled before `on_disconnect`: they
    // may hold locks it needs, and nothing polls them any more.
    drop(concurrent);
    let _ = core.flush().await;
    tracing::info!("Disconnecting websocket");
    let disconnected = AssertUnwindSafe(consumer.on_disconnect(&Context::direct(&mut core)))
        .catch_unwind()
        .await;
    if disconnected.is_err() {
        tracing::error!("on_disconnect panicked");
    }
    drop(inbox);
}
