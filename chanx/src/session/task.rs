//! The parts of a connection — session, writer and layer worker — in one
//! task.
//!
//! Like `select(session, writer, layer)`, with two differences:
//! - each part has a waker of its own. A part woken while the task is being
//!   polled (the session queues a frame, which wakes the writer) is only
//!   marked, and the loop below polls it; the runtime hears of a wake-up
//!   only when it comes from outside (the socket, a timer, another task).
//!   Waking the task's own waker from inside its poll makes the runtime
//!   schedule it again and, on tokio, wake an idle worker thread to steal
//!   it: one futex and one eventfd write per batch of messages, measured
//!   with `strace -c` (they were most of the gap to a bare server's CPU per
//!   message);
//! - the session can hand the writer a turn ([`Turn::give`]) without going
//!   back to the runtime, and ask for a real trip through the runtime
//!   ([`Turn::yield_now`]) when input never runs dry.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_timer::Delay;
use futures_util::FutureExt;
use futures_util::task::AtomicWaker;

/// How long a closing connection may take to flush its close frame and
/// leave its groups.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Rounds of polling within one poll of the task before yielding to the
/// runtime.
const ROUNDS: usize = 64;

/// The session's handle for scheduling the other parts and the runtime;
/// made first, then given to the [`ConnectionTask`], whose parts' wakers
/// share its allocation.
#[derive(Clone, Default)]
pub(crate) struct Turn(Arc<Signals>);

impl Turn {
    /// Lets the writer and the layer worker run (if they have work) before
    /// the session continues, without leaving the task.
    pub(crate) fn give(&self) -> PendingOnce {
        PendingOnce { woken: false }
    }

    /// Lets the runtime run other tasks before the session continues (the
    /// request is made here: await the future at once).
    pub(crate) fn yield_now(&self) -> PendingOnce {
        self.0.yield_requested.store(true, Ordering::Release);
        PendingOnce { woken: false }
    }

    fn yield_requested(&self) -> bool {
        self.0.yield_requested.swap(false, Ordering::AcqRel)
    }
}

/// Returns `Pending` once after waking itself.
///
/// A struct rather than an `async fn` around `poll_fn`: it is part of the
/// session's future and of every flush's, which every idle connection
/// keeps (one byte here, 32 as an async fn, `-Zprint-type-sizes`).
#[must_use = "futures do nothing unless polled"]
pub(crate) struct PendingOnce {
    woken: bool,
}

impl Future for PendingOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.woken {
            Poll::Ready(())
        } else {
            self.woken = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// What the parts' wakers share with the task; also the session's waker
/// (and the layer worker's, see [`ConnectionTask`]), which therefore
/// takes no allocation of its own.
#[derive(Default)]
struct Signals {
    /// The runtime's waker for the whole task.
    task: AtomicWaker,
    /// The task is inside its poll: the loop will see a part's mark.
    polling: AtomicBool,
    /// The session asked for a trip through the runtime.
    yield_requested: AtomicBool,
    /// The session (or the layer worker) was woken since its last poll.
    session_woken: AtomicBool,
}

/// Marks `woken` and, when the task is not being polled, wakes the task.
fn mark(woken: &AtomicBool, signals: &Signals) {
    // SeqCst here and in `ConnectionTask::poll`: either the waker sees
    // `polling`, or the task's last look at the marks sees this one.
    woken.store(true, Ordering::SeqCst);
    if !signals.polling.load(Ordering::SeqCst) {
        signals.task.wake();
    }
}

impl Wake for Signals {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        mark(&self.session_woken, self);
    }
}

/// The writer's waker: marks the writer.
struct WriterWaker {
    woken: AtomicBool,
    signals: Arc<Signals>,
}

impl Wake for WriterWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        mark(&self.woken, &self.signals);
    }
}

pin_project_lite::pin_project! {
    /// A part of the task, with the waker it is polled with.
    struct Part<F> {
        #[pin]
        future: F,
        done: bool,
        waker: Waker,
    }
}

impl<F: Future<Output = ()>> Part<F> {
    fn new(future: F, waker: Waker) -> Self {
        Part {
            future,
            done: false,
            waker,
        }
    }

    /// Polls the part if `woken` was marked since its last poll; whether
    /// it has ended.
    fn poll_if_woken(self: Pin<&mut Self>, woken: &AtomicBool) -> bool {
        if woken.swap(false, Ordering::SeqCst) {
            self.poll()
        } else {
            self.done
        }
    }

    /// Polls the part (unless it has ended); whether it has ended.
    fn poll(self: Pin<&mut Self>) -> bool {
        let this = self.project();
        if !*this.done {
            let mut cx = Context::from_waker(this.waker);
            *this.done = this.future.poll(&mut cx).is_ready();
        }
        *this.done
    }
}

pin_project_lite::pin_project! {
    /// Polls the session, then the writer and the layer worker, until the
    /// session ends; then the writer and the layer worker until they end
    /// (the close frame flushed, the groups left), for at most
    /// [`CLOSE_TIMEOUT`].
    ///
    /// It owns its parts rather than borrowing them from an async block:
    /// an async block keeps a second copy of what it pins, and of every
    /// value it captured (`-Zprint-type-sizes`).
    ///
    /// The layer worker is polled after every poll of the session and
    /// shares its waker: its rare wake-ups (a layer call finishing later)
    /// poll the session too, and a connection allocates one waker less.
    pub(crate) struct ConnectionTask<S, W, L> {
        #[pin]
        session: Part<S>,
        #[pin]
        writer: Part<W>,
        #[pin]
        layer: Part<L>,
        writer_woken: Arc<WriterWaker>,
        turn: Turn,
        // Running once the session has ended before the other parts.
        closing: Option<Delay>,
    }
}

impl<S, W, L> ConnectionTask<S, W, L>
where
    S: Future<Output = ()>,
    W: Future<Output = ()>,
    L: Future<Output = ()>,
{
    pub(crate) fn new(session: S, writer: W, layer: L, turn: Turn) -> Self {
        let signals = &turn.0;
        // Every part is polled once at the start.
        signals.session_woken.store(true, Ordering::SeqCst);
        let writer_woken = Arc::new(WriterWaker {
            woken: AtomicBool::new(true),
            signals: Arc::clone(signals),
        });
        let session_waker = Waker::from(Arc::clone(signals));
        ConnectionTask {
            session: Part::new(session, session_waker.clone()),
            writer: Part::new(writer, Waker::from(Arc::clone(&writer_woken))),
            layer: Part::new(layer, session_waker),
            writer_woken,
            turn,
            closing: None,
        }
    }
}

impl<S, W, L> Future for ConnectionTask<S, W, L>
where
    S: Future<Output = ()>,
    W: Future<Output = ()>,
    L: Future<Output = ()>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let signals = &this.turn.0;
        let writer_woken = &this.writer_woken.woken;
        signals.task.register(cx.waker());
        signals.polling.store(true, Ordering::SeqCst);
        for _ in 0..ROUNDS {
            if this.closing.is_none() {
                if this.session.as_mut().poll_if_woken(&signals.session_woken) {
                    if this.writer.done && this.layer.done {
                        signals.polling.store(false, Ordering::SeqCst);
                        return Poll::Ready(());
                    }
                    *this.closing = Some(Delay::new(CLOSE_TIMEOUT));
                }
            } else {
                // The session has ended: its mark is the layer worker's,
                // which is polled below.
                signals.session_woken.store(false, Ordering::SeqCst);
            }
            // What the session just queued: the writer hears of it from its
            // queue; an idle layer worker does not listen to its queue
            // (see `LayerWorker`) and is polled after every session poll.
            let writer_done = this.writer.as_mut().poll_if_woken(writer_woken);
            let layer_done = this.layer.as_mut().poll();
            if let Some(closing) = this.closing.as_mut()
                && ((writer_done && layer_done) || closing.poll_unpin(cx).is_ready())
            {
                signals.polling.store(false, Ordering::SeqCst);
                return Poll::Ready(());
            }
            if this.turn.yield_requested() {
                break;
            }
            let any_woken = || {
                signals.session_woken.load(Ordering::SeqCst)
                    || (!this.writer.done && writer_woken.load(Ordering::SeqCst))
            };
            if !any_woken() {
                // The parts wait for real events, wakers set. A part woken
                // between its last poll and now is caught by this last look.
                signals.polling.store(false, Ordering::SeqCst);
                if !any_woken() {
                    return Poll::Pending;
                }
                signals.polling.store(true, Ordering::SeqCst);
            }
        }
        // Other tasks' turn; the marks stay for the next poll.
        signals.polling.store(false, Ordering::SeqCst);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
