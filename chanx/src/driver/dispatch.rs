//! Running handlers: one at a time, in order (the default), or up to a
//! limit at once on clones of the consumer (opt-in).

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use chanx_proto::{Handled, MessageSet};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Either};
use futures_util::stream::FuturesUnordered;
use tracing::{Instrument, Span};

use chanx_proto::topic::{Envelope, TopicAction, TopicRequest};

use crate::consumer::{Consumer, Context};
use crate::session::{Command, Delivery, Remote, Reply};
use crate::topic::{TopicCall, TopicRequestInfo};

/// The connection state of a consumer's endpoint.
pub(super) type Core<C> = crate::session::Core<<C as Consumer>::Incoming, <C as Consumer>::Event>;

/// Runs the handlers of everything delivered, one at a time, in order.
///
/// Not an `async fn`, and the handler made by [`next_handler`]: this
/// future is part of the session's, which every idle connection keeps, and
/// an async fn would keep its arguments twice, and a delivery taken here
/// would be kept beside its handler.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice in its future"
)]
pub(super) fn dispatch<'a, C: Consumer>(
    core: &'a mut Core<C>,
    consumer: &'a mut C,
) -> impl Future<Output = ()> + 'a {
    async move {
        // `let else`, not `while let`: its scrutinee would live (and
        // borrow the core) until the end of the body.
        loop {
            let Some(handler) = next_handler(core, consumer) else {
                break;
            };
            let finished = handler.await;
            finish(core, finished);
            core.flush().await;
        }
    }
}

/// The handler of the next delivery, if any, boxed: a handler's future is
/// as large as its author made it, and the session's future must not grow
/// with it. One allocation per message.
fn next_handler<'a, C: Consumer>(
    core: &'a mut Core<C>,
    consumer: &'a mut C,
) -> Option<Pin<Box<impl Future<Output = Finished> + 'a>>> {
    let delivery = core.pending.pop_front()?;
    Some(Box::pin(handle(consumer, Context::direct(core), delivery)))
}

/// Tells the core a handler finished (completion and error frames).
pub(super) fn finish<M: MessageSet, E: MessageSet>(
    core: &mut crate::session::Core<M, E>,
    finished: Finished,
) {
    let result = match finished {
        Finished::Message(handled) => core.conn.message_handled(handled),
        Finished::TopicMessage(handled, envelope) => {
            core.conn.topic_message_handled(handled, &envelope)
        }
        Finished::Event => core.conn.event_handled(),
        Finished::Other => Ok(()),
    };
    if let Err(error) = result {
        tracing::error!(%error, "bug: completion without a delivery");
    }
}

/// Runs the handler of one delivery, catching its errors and panics.
///
/// Not an `async fn`: the delivery is taken apart before the future is
/// made, so the future holds one handler's input rather than the whole
/// delivery twice (this future is boxed per message; under 1 KiB, glibc
/// serves it from its per-thread cache).
fn handle<'a, C: Consumer>(
    consumer: &'a mut C,
    mut ctx: Context<'a, C>,
    delivery: Delivery<C::Incoming, C::Event>,
) -> impl Future<Output = Finished> + 'a {
    match delivery {
        Delivery::Message(message) => Either::Left(async move {
            let span =
                wanted_span(|| tracing::info_span!("message", message_id = %MessageId::new()));
            let message = consumer.receive_message(&mut ctx, message);
            Finished::Message(run_caught(&span, "Failed to process message", message).await)
        }),
        Delivery::Event(event) => Either::Right(Either::Left(async move {
            let event = consumer.receive_event(&mut ctx, event);
            run_caught(&Span::none(), "Failed to process channel event", event).await;
            Finished::Event
        })),
        Delivery::Gap(group) => Either::Right(Either::Right(Either::Left(async move {
            let gap = consumer.on_gap(&mut ctx, &group);
            run_caught(&Span::none(), "on_gap failed", gap).await;
            Finished::Other
        }))),
        // Boxed: topic requests are rare, and their future is the largest.
        Delivery::Topic(request) => {
            Either::Right(Either::Right(Either::Right(Box::pin(async move {
                handle_topic(&mut ctx, request).await
            }))))
        }
    }
}

/// Runs a topic request: the authorisation and hooks of a subscription,
/// the unsubscribe hook, or a message's handler.
async fn handle_topic<C: Consumer>(ctx: &mut Context<'_, C>, request: TopicRequest) -> Finished {
    let topics = Arc::clone(&ctx.info().topics);
    let Some(topic) = topics.get(request.kind) else {
        tracing::error!(
            kind = request.kind,
            "bug: a topic request for no mounted topic"
        );
        return Finished::Other;
    };
    let TopicRequest {
        kind,
        envelope,
        params,
        action,
    } = request;
    let span = wanted_span(|| tracing::info_span!("topic", topic = %envelope.topic));
    match action {
        TopicAction::Subscribe => {
            let info = ctx.info();
            let decision = topic
                .authorize(TopicRequestInfo {
                    user: info.user.as_ref(),
                    handshake: info.handshake.get(),
                    topic: &envelope.topic,
                    params: &params,
                })
                .instrument(span.clone())
                .await;
            if let Err(refusal) = decision {
                span.in_scope(|| tracing::info!(reason = refusal.reason(), "subscription refused"));
                let _ = ctx
                    .perform(Command::TopicRefuse { envelope, refusal })
                    .await;
                return Finished::Other;
            }
            let accept = Command::TopicAccept {
                kind,
                envelope: envelope.clone(),
                params: params.clone(),
            };
            if ctx.perform(accept).await.is_err() {
                return Finished::Other;
            }
            span.in_scope(|| tracing::info!("subscribed"));
            // Pushes from the hook carry no `ref`.
            let envelope = Envelope {
                reference: None,
                ..envelope
            };
            let call = TopicCall::on_endpoint(ctx, kind, envelope, &params);
            run_caught(&span, "on_subscribe failed", topic.on_subscribe(call)).await;
            Finished::Other
        }
        TopicAction::Unsubscribed => {
            let call = TopicCall::on_endpoint(ctx, kind, envelope, &params);
            run_caught(&span, "on_unsubscribe failed", topic.on_unsubscribe(call)).await;
            Finished::Other
        }
        TopicAction::Message(message) => {
            let call = TopicCall::on_endpoint(ctx, kind, envelope.clone(), &params);
            let handled = run_caught(
                &span,
                "Failed to process message",
                topic.receive(call, message),
            )
            .await;
            Finished::TopicMessage(handled, envelope)
        }
    }
}

/// Runs a handler or hook in `span`, catching its errors and panics.
///
/// A combinator rather than an `async fn`: an async fn would keep the hook's
/// future twice (as its argument, and inside the wrapper it awaits), and
/// the hook is the largest part of a handler's future.
pub(super) fn run_caught<'a>(
    span: &'a tracing::Span,
    what: &'a str,
    hook: impl std::future::Future<Output = crate::HandlerResult> + 'a,
) -> impl std::future::Future<Output = Handled> + 'a {
    let caught = AssertUnwindSafe(hook).catch_unwind();
    // No span to enter or exit on each poll, nor to report in, when none
    // is wanted (`wanted_span`).
    let caught = if span.is_none() {
        Either::Left(caught)
    } else {
        Either::Right(caught.instrument(span.clone()))
    };
    caught.map(move |outcome| {
        if span.is_none() {
            report(what, outcome)
        } else {
            span.in_scope(|| report(what, outcome))
        }
    })
}

/// The span `make` makes (an INFO one), or none at all when no subscriber
/// wants INFO spans: a disabled span still calls into the `log` crate on
/// every enter, exit and drop when tracing's `log` feature is on (axum and
/// warp turn it on), about 10 calls and 270 instructions per echo under
/// callgrind.
fn wanted_span(make: impl FnOnce() -> Span) -> Span {
    if tracing::span_enabled!(tracing::Level::INFO) {
        make()
    } else {
        Span::none()
    }
}

/// What a finished concurrent handler reports.
pub(super) enum Finished {
    Message(Handled),
    /// A topic message's handler, with the message's envelope.
    TopicMessage(Handled, Envelope),
    Event,
    /// Nothing to report (a gap notice, a subscription, an unsubscription).
    Other,
}

/// Handlers in flight for an endpoint with
/// [`concurrent_messages`](crate::EndpointBuilder::concurrent_messages).
pub(super) struct Concurrent<C> {
    limit: usize,
    clone: fn(&C) -> C,
    pub(super) in_flight: FuturesUnordered<BoxFuture<'static, Finished>>,
    pub(super) commands: Pin<Box<async_channel::Receiver<(Command, Reply)>>>,
    sender: async_channel::Sender<(Command, Reply)>,
}

impl<C: Consumer> Concurrent<C> {
    pub(super) fn new(limit: usize, clone: fn(&C) -> C) -> Self {
        let (sender, commands) = async_channel::unbounded();
        Concurrent {
            limit: limit.max(1),
            clone,
            in_flight: FuturesUnordered::new(),
            commands: Box::pin(commands),
            sender,
        }
    }

    /// Starts handlers for waiting deliveries, up to the limit.
    pub(super) fn start(&mut self, core: &mut Core<C>, consumer: &C) {
        while self.in_flight.len() < self.limit {
            let Some(delivery) = core.pending.pop_front() else {
                return;
            };
            let remote = Remote {
                info: Arc::clone(&core.info),
                channel: core.conn.channel_name().to_owned(),
                groups: core.conn.groups().to_vec(),
                commands: self.sender.clone(),
            };
            let consumer = (self.clone)(consumer);
            self.in_flight
                .push(Box::pin(run_remote(consumer, remote, delivery)));
        }
    }
}

async fn run_remote<C: Consumer>(
    mut consumer: C,
    remote: Remote,
    delivery: Delivery<C::Incoming, C::Event>,
) -> Finished {
    handle(&mut consumer, Context::remote(&remote), delivery).await
}

/// A short random id per incoming message, formatted only when logged.
pub(super) struct MessageId(u32);

impl MessageId {
    pub(super) fn new() -> Self {
        MessageId(fastrand::u32(..))
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// Logs a handler's failure or panic.
pub(super) fn report(
    what: &str,
    outcome: Result<crate::HandlerResult, Box<dyn std::any::Any + Send>>,
) -> Handled {
    match outcome {
        Ok(Ok(())) => Handled::Completed,
        Ok(Err(error)) => {
            tracing::error!(%error, "{what}");
            Handled::Failed
        }
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_owned());
            tracing::error!(panic = %text, "{what}: the handler panicked");
            Handled::Failed
        }
    }
}
