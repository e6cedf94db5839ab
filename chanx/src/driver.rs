//! The driver: runs one connection over a [`BoxSocket`], feeding the
//! Sans-IO core and performing its outputs.
//!
//! One future per connection, made of two halves joined together: the
//! session (reads frames and layer messages, runs handlers one at a time,
//! in order) and the writer (drains the outbound queue into the socket).
//! The writer reports what it wrote so the core can bound the backlog
//! (close 4008) without ever blocking the session on a slow client.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chanx_proto::{AuthOutcome, Connection, InFrame, LayerMessage, Output, State, close_code};
use futures_util::future::{Either, FutureExt, select};
use futures_util::{SinkExt, StreamExt};
use tracing::Instrument;

use crate::auth::{AuthDecision, LoadedObject};
use crate::consumer::{Consumer, Context, SendError};
use crate::endpoint::EndpointCore;
use crate::handshake::{Handshake, User};
use crate::layer::ChannelLayer;
use crate::shutdown::ShutdownSignal;
use crate::ws::{BoxSocket, WsMessage};

/// How long a closing connection may take to flush its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which messages are logged, per endpoint.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// Log "Received websocket json" per incoming message.
    pub received: bool,
    /// Log "Sent websocket json" per outgoing frame.
    pub sent: bool,
    /// Actions never logged.
    pub ignored_actions: Vec<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            received: true,
            sent: true,
            ignored_actions: Vec::new(),
        }
    }
}

impl LogSettings {
    fn action_of(&self, enabled: bool, text: &str, key: &str) -> Option<String> {
        if !enabled || !tracing::enabled!(tracing::Level::INFO) {
            return None;
        }
        let action = chanx_proto::codec::peek_action(text, key).unwrap_or_default();
        (!self.ignored_actions.contains(&action)).then_some(action)
    }
}

/// The pending close of a connection, read by the writer.
#[derive(Default)]
struct CloseSlot {
    frame: Option<(u16, String)>,
    discard_pending: bool,
}

/// The session's handle on the writer.
struct Link {
    queue: async_channel::Sender<WsMessage>,
    written: Arc<AtomicUsize>,
    reported: usize,
    close: Arc<Mutex<CloseSlot>>,
}

impl Link {
    fn send(&self, message: WsMessage) -> bool {
        self.queue.try_send(message).is_ok()
    }

    fn close(&self, code: u16, reason: &str) {
        let mut slot = self.close.lock().unwrap_or_else(|e| e.into_inner());
        if slot.frame.is_none() {
            slot.frame = Some((code, reason.to_owned()));
            slot.discard_pending = code == close_code::SLOW_CONSUMER;
        }
        drop(slot);
        self.queue.close();
    }

    /// Frames written since the last call.
    fn take_written(&mut self) -> usize {
        let total = self.written.load(Ordering::Acquire);
        let delta = total.wrapping_sub(self.reported);
        self.reported = total;
        delta
    }
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<BoxSocket, WsMessage>,
    queue: async_channel::Receiver<WsMessage>,
    written: Arc<AtomicUsize>,
    close: Arc<Mutex<CloseSlot>>,
) {
    while let Ok(message) = queue.recv().await {
        let is_data = matches!(message, WsMessage::Text(_) | WsMessage::Binary(_));
        let discard = close.lock().map(|s| s.discard_pending).unwrap_or(false);
        if discard && is_data {
            continue;
        }
        if let Err(error) = sink.feed(message).await {
            tracing::debug!(%error, "socket write failed");
            queue.close();
            return;
        }
        if queue.is_empty() && sink.flush().await.is_err() {
            queue.close();
            return;
        }
        if is_data {
            written.fetch_add(1, Ordering::Release);
        }
    }
    let frame = close.lock().ok().and_then(|mut s| s.frame.take());
    if let Some((code, reason)) = frame {
        let _ = sink.send(WsMessage::Close(Some((code, reason)))).await;
    }
    let _ = sink.close().await;
}

/// A delivered message or event waiting for its handler.
enum Delivery<C: Consumer> {
    Message(C::Incoming),
    Event(C::Event),
}

/// One connection's state, shared by the driver and the [`Context`].
pub(crate) struct Core<C: Consumer> {
    pub(crate) conn: Connection<C::Incoming, C::Event>,
    pub(crate) handshake: Handshake,
    pub(crate) user: Option<User>,
    pub(crate) object: Option<LoadedObject>,
    pub(crate) request_id: String,
    layer: Arc<dyn ChannelLayer>,
    link: Link,
    log: Arc<LogSettings>,
    pending: VecDeque<Delivery<C>>,
}

impl<C: Consumer> Core<C> {
    /// Performs every output of the core.
    pub(crate) async fn flush(&mut self) -> Result<(), SendError> {
        let written = self.link.take_written();
        if written > 0 {
            self.conn.handle_frames_written(written);
        }
        let mut result = Ok(());
        while let Some(output) = self.conn.poll_output() {
            match output {
                Output::Frame(text) => {
                    let key = &self.conn.protocol().options().action_key;
                    if let Some(action) = self.log.action_of(self.log.sent, &text, key) {
                        tracing::info!(sent_action = %action, "Sent websocket json");
                    }
                    if !self.link.send(WsMessage::Text(text)) {
                        self.conn.handle_transport_closed();
                    }
                }
                Output::Ping => {
                    self.link.send(WsMessage::Ping(Vec::new()));
                }
                Output::Close { code, reason } => {
                    tracing::info!(code, reason, "Closing websocket");
                    self.link.close(code, reason);
                }
                Output::JoinGroup(group) => {
                    if let Err(error) = self.layer.group_add(&group, self.conn.channel_name()).await
                    {
                        tracing::error!(%error, group, "could not join group");
                        result = Err(error.into());
                    }
                }
                Output::LeaveGroup(group) => {
                    if let Err(error) = self
                        .layer
                        .group_discard(&group, self.conn.channel_name())
                        .await
                    {
                        tracing::error!(%error, group, "could not leave group");
                    }
                }
                Output::GroupSend { group, message } => {
                    if let Err(error) = self.layer.group_send(&group, message).await {
                        tracing::error!(%error, group, "group send failed");
                        result = Err(error.into());
                    }
                }
                Output::Message(message) => self.pending.push_back(Delivery::Message(message)),
                Output::Event(event) => self.pending.push_back(Delivery::Event(event)),
            }
        }
        result
    }

    fn is_done(&self) -> bool {
        matches!(self.conn.state(), State::Closing | State::Closed)
    }

    fn on_socket_message(&mut self, message: WsMessage) {
        let now = Instant::now();
        let result = match &message {
            WsMessage::Text(text) => {
                let key = &self.conn.protocol().options().action_key;
                if let Some(action) = self.log.action_of(self.log.received, text, key) {
                    tracing::info!(received_action = %action, "Received websocket json");
                }
                self.conn.handle_frame(InFrame::Text(text), now)
            }
            WsMessage::Binary(bytes) => self.conn.handle_frame(InFrame::Binary(bytes), now),
            WsMessage::Ping(_) => self.conn.handle_frame(InFrame::Ping, now),
            WsMessage::Pong(_) => self.conn.handle_frame(InFrame::Pong, now),
            WsMessage::Close(frame) => self
                .conn
                .handle_frame(InFrame::Close(frame.as_ref().map(|f| f.0)), now),
        };
        if let Err(error) = result {
            tracing::debug!(%error, "frame ignored");
        }
    }

    fn on_layer_message(&mut self, message: &LayerMessage) {
        if let Err(error) = self.conn.handle_layer_message(message) {
            match error {
                chanx_proto::ProtoError::InvalidEvent(errors) => {
                    tracing::error!(?errors, "Failed to process channel event");
                }
                other => tracing::debug!(error = %other, "layer message ignored"),
            }
        }
    }

    /// Runs the handlers of everything delivered, one at a time, in order.
    async fn dispatch(&mut self, consumer: &mut C) {
        while let Some(delivery) = self.pending.pop_front() {
            match delivery {
                Delivery::Message(message) => {
                    let span = tracing::info_span!("message", message_id = %MessageId::new());
                    let outcome = {
                        let mut ctx = Context { core: self };
                        AssertUnwindSafe(consumer.receive_message(&mut ctx, message))
                            .catch_unwind()
                            .instrument(span.clone())
                            .await
                    };
                    let ok = span.in_scope(|| report("Failed to process message", outcome));
                    if let Err(error) = self.conn.message_handled(ok) {
                        tracing::debug!(%error, "completion after close");
                    }
                }
                Delivery::Event(event) => {
                    let outcome = {
                        let mut ctx = Context { core: self };
                        AssertUnwindSafe(consumer.receive_event(&mut ctx, event))
                            .catch_unwind()
                            .await
                    };
                    let _ = report("Failed to process channel event", outcome);
                    if let Err(error) = self.conn.event_handled() {
                        tracing::debug!(%error, "completion after close");
                    }
                }
            }
            let _ = self.flush().await;
        }
    }
}

/// A short random id per incoming message, formatted only when logged.
struct MessageId(u32);

impl MessageId {
    fn new() -> Self {
        MessageId(fastrand::u32(..))
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// Logs a handler's failure or panic; `Err(())` when it failed.
fn report(
    what: &str,
    outcome: Result<crate::HandlerResult, Box<dyn std::any::Any + Send>>,
) -> Result<(), ()> {
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            tracing::error!(%error, "{what}");
            Err(())
        }
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_owned());
            tracing::error!(panic = %text, "{what}: the handler panicked");
            Err(())
        }
    }
}

/// The core's next deadline as a reusable timer: re-armed only when the
/// deadline changes, pending forever when there is none.
#[derive(Default)]
struct Timer {
    deadline: Option<Instant>,
    delay: Option<futures_timer::Delay>,
}

impl Timer {
    fn arm(&mut self, deadline: Option<Instant>) {
        if deadline == self.deadline && (deadline.is_none() || self.delay.is_some()) {
            return;
        }
        self.deadline = deadline;
        self.delay = deadline.map(|at| {
            let wait = at.saturating_duration_since(Instant::now());
            match self.delay.take() {
                Some(mut delay) => {
                    delay.reset(wait);
                    delay
                }
                None => futures_timer::Delay::new(wait),
            }
        });
    }
}

impl std::future::Future for Timer {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        match self.delay.as_mut() {
            Some(delay) => match std::pin::Pin::new(delay).poll(cx) {
                std::task::Poll::Ready(()) => {
                    self.delay = None;
                    std::task::Poll::Ready(())
                }
                std::task::Poll::Pending => std::task::Poll::Pending,
            },
            None => std::task::Poll::Pending,
        }
    }
}

impl futures_util::future::FusedFuture for Timer {
    fn is_terminated(&self) -> bool {
        false
    }
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
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:032x}", fastrand::u128(..)));
    let span = tracing::info_span!(
        "websocket",
        request_id = %request_id,
        path = %handshake.path,
        ip = %handshake.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
    );
    let (sink, stream) = socket.split();
    let (queue_tx, queue_rx) = async_channel::unbounded();
    let written = Arc::new(AtomicUsize::new(0));
    let close = Arc::new(Mutex::new(CloseSlot::default()));
    let link = Link {
        queue: queue_tx,
        written: Arc::clone(&written),
        reported: 0,
        close: Arc::clone(&close),
    };
    let writer = write_loop(sink, queue_rx, written, close).instrument(span.clone());
    let session = session(
        endpoint, stream, link, handshake, request_id, layer, shutdown,
    )
    .instrument(span);
    futures_util::pin_mut!(writer, session);
    match select(session, writer).await {
        Either::Left(((), writer)) => {
            let _ = select(writer, futures_timer::Delay::new(CLOSE_TIMEOUT)).await;
        }
        Either::Right(((), session)) => session.await,
    }
}

async fn session<C: Consumer>(
    endpoint: Arc<EndpointCore<C>>,
    stream: futures_util::stream::SplitStream<BoxSocket>,
    link: Link,
    handshake: Handshake,
    request_id: String,
    layer: Arc<dyn ChannelLayer>,
    shutdown: ShutdownSignal,
) {
    let (channel, mut inbox) = match layer.new_channel().await {
        Ok(registered) => registered,
        Err(error) => {
            tracing::error!(%error, "channel layer unavailable; refusing connection");
            link.close(1011, "channel layer unavailable");
            return;
        }
    };
    let decision = endpoint.auth.decide(&handshake).await;
    let mut core = Core::<C> {
        conn: Connection::new(Arc::clone(&endpoint.protocol), channel, Instant::now()),
        handshake,
        user: None,
        object: None,
        request_id,
        layer,
        link,
        log: Arc::clone(&endpoint.log),
        pending: VecDeque::new(),
    };
    let mut consumer = (endpoint.factory)();
    let outcome = match decision {
        AuthDecision::Allowed { user, object } => {
            core.user = user;
            core.object = object;
            let groups = consumer.build_groups(&Context { core: &mut core }).await;
            AuthOutcome::Accepted {
                user_pk: core.user.as_ref().map(|u| u.pk.clone()),
                groups,
            }
        }
        AuthDecision::Denied { status, detail } => {
            tracing::info!(status, %detail, "Authentication refused");
            AuthOutcome::Rejected { status, detail }
        }
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
                let mut ctx = Context { core: &mut core };
                AssertUnwindSafe(consumer.post_authentication(&mut ctx))
                    .catch_unwind()
                    .await
            };
            if report("post_authentication failed", outcome).is_err() {
                core.conn.close(1011, "internal error");
            }
        }
        let _ = core.flush().await;
    }
    // Long-lived futures: re-creating them per message would register a
    // fresh waker with the channel and the timer on every iteration.
    let mut stream = stream.fuse();
    let shutdown_signal = shutdown.wait().fuse();
    futures_util::pin_mut!(shutdown_signal);
    let mut timer = Timer::default();
    while !core.is_done() {
        timer.arm(core.conn.poll_timeout());
        futures_util::select! {
            frame = stream.next() => match frame {
                Some(Ok(message)) => core.on_socket_message(message),
                Some(Err(error)) if error.too_big => core.conn.close(close_code::MESSAGE_TOO_BIG, "message too big"),
                Some(Err(error)) => {
                    tracing::debug!(%error, "socket read failed");
                    core.conn.handle_transport_closed();
                }
                None => core.conn.handle_transport_closed(),
            },
            message = inbox.next() => match message {
                Some(message) => core.on_layer_message(&message),
                None => core.conn.close(1011, "channel layer closed"),
            },
            () = timer => core.conn.handle_timeout(Instant::now()),
            () = shutdown_signal => core.conn.shutdown(),
        }
        let _ = core.flush().await;
        core.dispatch(&mut consumer).await;
    }
    let _ = core.flush().await;
    tracing::info!("Disconnecting websocket");
    consumer.on_disconnect(&Context { core: &mut core }).await;
    drop(inbox);
}
