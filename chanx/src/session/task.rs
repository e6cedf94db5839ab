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
    pub(crate) async fn give(&self) {
        pending_once().await;
    }

    /// Lets the runtime run other tasks before the session continues.
    pub(crate) async fn yield_now(&self) {
        self.0.yield_requested.store(true, Ordering::Release);
        pending_once().await;
    }

    fn yield_requested(&self) -> bool {
        self.0.yield_requested.swap(false, Ordering::AcqRel)
    }
}

/// Returns `Pending` once after waking itself.
async fn pending_once() {
    let mut pending = false;
    std::future::poll_fn(|cx| {
        if pending {
            Poll::Ready(())
        } else {
            pending = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// What the parts' wakers share with the task.
#[derive(Default)]
struct Signals {
    /// The runtime's waker for the whole task.
    task: AtomicWaker,
    /// The task is inside its poll: the loop will see a part's mark.
    polling: AtomicBool,
    /// The session asked for a trip through the runtime.
    yield_requested: AtomicBool,
}

/// One part's waker: marks the part and, when the task is not being
/// polled, wakes the task.
struct PartWaker {
    woken: AtomicBool,
    signals: Arc<Signals>,
}

impl Wake for PartWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // SeqCst here and in `ConnectionTask::poll`: either the waker sees
        // `polling`, or the task's last look at the marks sees this one.
        self.woken.store(true, Ordering::SeqCst);
        if !self.signals.polling.load(Ordering::SeqCst) {
            self.signals.task.wake();
        }
    }
}

pin_project_lite::pin_project! {
    /// A part of the task with its own waker.
    struct Part<F> {
        #[pin]
        future: F,
        done: bool,
        mark: Arc<PartWaker>,
        waker: Waker,
    }
}

impl<F: Future<Output = ()>> Part<F> {
    fn new(future: F, signals: &Arc<Signals>) -> Self {
        let mark = Arc::new(PartWaker {
            // Every part is polled once at the start.
            woken: AtomicBool::new(true),
            signals: Arc::clone(signals),
        });
        Part {
            future,
            done: false,
            waker: Waker::from(Arc::clone(&mark)),
            mark,
        }
    }

    /// Polls the part if it was woken since its last poll; whether it has
    /// ended.
    fn poll_if_woken(self: Pin<&mut Self>) -> bool {
        if self.mark.woken.load(Ordering::SeqCst) {
            self.poll()
        } else {
            self.done
        }
    }

    /// Polls the part (unless it has ended); whether it has ended.
    fn poll(self: Pin<&mut Self>) -> bool {
        let this = self.project();
        this.mark.woken.store(false, Ordering::SeqCst);
        if !*this.done {
            let mut cx = Context::from_waker(this.waker);
            *this.done = this.future.poll(&mut cx).is_ready();
        }
        *this.done
    }

    fn is_woken(&self) -> bool {
        !self.done && self.mark.woken.load(Ordering::SeqCst)
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
    pub(crate) struct ConnectionTask<S, W, L> {
        #[pin]
        session: Part<S>,
        #[pin]
        writer: Part<W>,
        #[pin]
        layer: Part<L>,
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
        ConnectionTask {
            session: Part::new(session, signals),
            writer: Part::new(writer, signals),
            layer: Part::new(layer, signals),
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
        signals.task.register(cx.waker());
        signals.polling.store(true, Ordering::SeqCst);
        let any_woken = |session: &Part<S>, writer: &Part<W>, layer: &Part<L>| {
            session.is_woken() || writer.is_woken() || layer.is_woken()
        };
        for _ in 0..ROUNDS {
            if this.closing.is_none() && this.session.as_mut().poll_if_woken() {
                if this.writer.done && this.layer.done {
                    signals.polling.store(false, Ordering::SeqCst);
                    return Poll::Ready(());
                }
                *this.closing = Some(Delay::new(CLOSE_TIMEOUT));
            }
            // What the session just queued: the writer hears of it from its
            // queue; an idle layer worker does not listen to its queue
            // (see `LayerWorker`) and is polled after every session poll.
            let writer_done = this.writer.as_mut().poll_if_woken();
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
            if !any_woken(&this.session, &this.writer, &this.layer) {
                // The parts wait for real events, wakers set. A part woken
                // between its last poll and now is caught by this last look.
                signals.polling.store(false, Ordering::SeqCst);
                if !any_woken(&this.session, &this.writer, &this.layer) {
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
