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

use futures_util::task::AtomicWaker;

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

/// A part of the task with its own waker.
struct Part<'a, F> {
    future: Pin<&'a mut F>,
    done: bool,
    mark: Arc<PartWaker>,
    waker: Waker,
}

impl<'a, F: Future<Output = ()>> Part<'a, F> {
    fn new(future: Pin<&'a mut F>, signals: &Arc<Signals>) -> Self {
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
    fn poll_if_woken(&mut self) -> bool {
        if self.mark.woken.load(Ordering::SeqCst) {
            self.poll();
        }
        self.done
    }

    /// Polls the part (unless it has ended).
    fn poll(&mut self) {
        self.mark.woken.store(false, Ordering::SeqCst);
        if !self.done {
            let mut cx = Context::from_waker(&self.waker);
            self.done = self.future.as_mut().poll(&mut cx).is_ready();
        }
    }

    fn is_woken(&self) -> bool {
        !self.done && self.mark.woken.load(Ordering::SeqCst)
    }
}

/// Polls the session, then the writer and the layer worker, until the
/// session ends; resolves to whether both other parts had ended too.
pub(crate) struct ConnectionTask<'a, S, W, L> {
    session: Part<'a, S>,
    writer: Part<'a, W>,
    layer: Part<'a, L>,
    turn: Turn,
}

impl<'a, S, W, L> ConnectionTask<'a, S, W, L>
where
    S: Future<Output = ()>,
    W: Future<Output = ()>,
    L: Future<Output = ()>,
{
    pub(crate) fn new(
        session: Pin<&'a mut S>,
        writer: Pin<&'a mut W>,
        layer: Pin<&'a mut L>,
        turn: Turn,
    ) -> Self {
        let signals = &turn.0;
        ConnectionTask {
            session: Part::new(session, signals),
            writer: Part::new(writer, signals),
            layer: Part::new(layer, signals),
            turn,
        }
    }

    fn any_woken(&self) -> bool {
        self.session.is_woken() || self.writer.is_woken() || self.layer.is_woken()
    }
}

impl<S, W, L> Future for ConnectionTask<'_, S, W, L>
where
    S: Future<Output = ()>,
    W: Future<Output = ()>,
    L: Future<Output = ()>,
{
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        this.turn.0.task.register(cx.waker());
        this.turn.0.polling.store(true, Ordering::SeqCst);
        for _ in 0..ROUNDS {
            if this.session.poll_if_woken() {
                this.turn.0.polling.store(false, Ordering::SeqCst);
                return Poll::Ready(this.writer.done && this.layer.done);
            }
            // What the session just queued: the writer hears of it from its
            // queue; an idle layer worker does not listen to its queue
            // (see `LayerWorker`) and is polled after every session poll.
            this.writer.poll_if_woken();
            this.layer.poll();
            if this.turn.yield_requested() {
                break;
            }
            if !this.any_woken() {
                // The parts wait for real events, wakers set. A part woken
                // between its last poll and now is caught by this last look.
                this.turn.0.polling.store(false, Ordering::SeqCst);
                if !this.any_woken() {
                    return Poll::Pending;
                }
                this.turn.0.polling.store(true, Ordering::SeqCst);
            }
        }
        // Other tasks' turn; the marks stay for the next poll.
        this.turn.0.polling.store(false, Ordering::SeqCst);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
