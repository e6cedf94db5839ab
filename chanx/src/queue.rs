//! A queue with one consumer: between two parts of one connection's task
//! (the session and the writer, the session and the layer worker), and
//! from the channel layer to a connection (its inbox).
//!
//! Ours rather than a channel crate's, for memory: a `Mutex` around a
//! `VecDeque` and the consumer's waker, about 100 bytes, where
//! `async-channel`'s unbounded channel is cache-padded (768 bytes for an
//! inbox, heaptrack) and kept a 31-slot block (about 2.3 KB for the
//! writer's queue) per idle connection, and cost a few hundred
//! instructions per item in its event listeners (callgrind). The lock is
//! held for a push or a pop only; within a task it is never contended.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// What [`TaskQueue::push_within`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// The limit was reached; the item is dropped.
    Full,
    /// The queue was closed; the item is dropped.
    Closed,
}

/// The queue; shared by its ends through an `Arc`.
pub(crate) struct TaskQueue<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    /// The consumer's waker, registered when it found the queue empty and
    /// kept (not taken by a wake-up): a consumer polled with the same
    /// waker, as the parts of a connection's task always are, registers
    /// once; `AtomicWaker`'s take-on-wake cost a clone and a registration
    /// per item, about 150 instructions per echo (callgrind).
    consumer: Option<Waker>,
}

impl<T> Default for TaskQueue<T> {
    fn default() -> Self {
        TaskQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                consumer: None,
            }),
        }
    }
}

impl<T> TaskQueue<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item`; `false` (and the item dropped) once closed.
    pub(crate) fn push(&self, item: T) -> bool {
        self.push_within(item, usize::MAX) == Pushed::Queued
    }

    /// No item is accepted any more; the consumer drains what is queued.
    pub(crate) fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        let consumer = state.consumer.clone();
        drop(state);
        // Woken outside the lock: a waker may run code of its own.
        if let Some(consumer) = consumer {
            consumer.wake();
        }
    }

    /// Queues `item` unless `limit` items are already queued.
    pub(crate) fn push_within(&self, item: T, limit: usize) -> Pushed {
        let mut state = self.state();
        if state.closed {
            return Pushed::Closed;
        }
        if state.items.len() >= limit {
            return Pushed::Full;
        }
        // The consumer waits only on an empty queue, and takes everything
        // queued once woken: the first item wakes it, the others need not.
        let consumer = if state.items.is_empty() {
            state.consumer.clone()
        } else {
            None
        };
        state.items.push_back(item);
        drop(state);
        if let Some(consumer) = consumer {
            consumer.wake();
        }
        Pushed::Queued
    }

    /// Closes the queue and drops what it holds (the consumer is gone),
    /// its waker too: it would keep the consumer's task alive for as long
    /// as a producer holds the queue.
    pub(crate) fn close_and_clear(&self) {
        let mut state = self.state();
        state.closed = true;
        state.items = VecDeque::new();
        let consumer = state.consumer.take();
        drop(state);
        drop(consumer);
    }

    /// The next item if one is queued, without registering a waker (the
    /// consumer's registered waker stays).
    pub(crate) fn try_pop(&self) -> Option<T> {
        self.state().items.pop_front()
    }

    /// Whether the queue was closed (items may still be queued).
    pub(crate) fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// The next item; `None` once closed and drained. Registers the
    /// consumer's waker when there is nothing yet, and gives the drained
    /// queue's memory back: a consumer that waits has caught up, and an
    /// idle connection should not keep what its last burst needed.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.state();
        if let Some(item) = state.items.pop_front() {
            return Poll::Ready(Some(item));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        if state.items.capacity() > 0 {
            state.items = VecDeque::new();
        }
        // Registered under the lock: a push after this sees it. A waker
        // replaced is dropped after the lock (its drop may run code).
        let replaced = match &state.consumer {
            Some(registered) if registered.will_wake(cx.waker()) => None,
            _ => state.consumer.replace(cx.waker().clone()),
        };
        drop(state);
        drop(replaced);
        Poll::Pending
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use super::{Pushed, TaskQueue};

    /// A waker that counts its wake-ups (also the shutdown signal's tests').
    #[derive(Default)]
    pub(crate) struct CountingWaker(pub(crate) AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn items_come_out_in_order_then_none_once_closed() {
        let queue = TaskQueue::default();
        let wakes = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        assert_eq!(queue.poll_pop(&mut cx), Poll::Pending);
        assert!(queue.push(1));
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "a push wakes the consumer"
        );
        assert!(queue.push(2));
        queue.close();
        assert!(!queue.push(3), "closed: refused");
        assert!(queue.is_closed());
        assert_eq!(queue.poll_pop(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(queue.poll_pop(&mut cx), Poll::Ready(Some(2)));
        assert_eq!(queue.poll_pop(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn a_drained_queue_gives_its_memory_back_when_its_consumer_waits() {
        let queue = TaskQueue::default();
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        let mut cx = Context::from_waker(&waker);
        for i in 0..10_000 {
            queue.push(i);
        }
        for i in 0..10_000 {
            assert_eq!(queue.poll_pop(&mut cx), Poll::Ready(Some(i)));
        }
        assert!(queue.state().items.capacity() > 0, "kept while draining");
        assert_eq!(queue.poll_pop(&mut cx), Poll::Pending);
        assert_eq!(queue.state().items.capacity(), 0);
        assert!(queue.push(1), "used again after");
    }

    #[test]
    fn a_limited_push_refuses_beyond_the_limit_and_after_close() {
        let queue = TaskQueue::default();
        assert_eq!(queue.push_within(1, 2), Pushed::Queued);
        assert_eq!(queue.push_within(2, 2), Pushed::Queued);
        assert_eq!(queue.push_within(3, 2), Pushed::Full);
        queue.close_and_clear();
        assert!(queue.state().items.is_empty());
        assert_eq!(queue.push_within(4, 2), Pushed::Closed);
    }

    #[test]
    fn try_pop_keeps_the_consumers_waker_and_clearing_drops_it() {
        let queue = TaskQueue::default();
        let wakes = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&wakes));
        assert_eq!(
            queue.poll_pop(&mut Context::from_waker(&waker)),
            Poll::Pending
        );
        assert_eq!(queue.try_pop(), None);
        assert!(queue.push(1));
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "still the consumer's waker"
        );
        assert_eq!(queue.try_pop(), Some(1));
        assert_eq!(
            queue.poll_pop(&mut Context::from_waker(&waker)),
            Poll::Pending
        );
        let before = Arc::strong_count(&wakes);
        queue.close_and_clear();
        assert_eq!(
            Arc::strong_count(&wakes),
            before - 1,
            "the waker is dropped"
        );
    }

    #[test]
    fn only_the_first_item_queued_wakes_the_waiting_consumer() {
        let queue = TaskQueue::default();
        let wakes = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        assert_eq!(queue.poll_pop(&mut cx), Poll::Pending);
        assert!(queue.push(1));
        assert!(queue.push(2));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "one wake-up for both");
        assert_eq!(queue.poll_pop(&mut cx), Poll::Ready(Some(1)));
        assert!(queue.push(3), "not empty: no wake-up");
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(queue.poll_pop(&mut cx), Poll::Ready(Some(2)));
        assert_eq!(queue.poll_pop(&mut cx), Poll::Ready(Some(3)));
        assert_eq!(queue.poll_pop(&mut cx), Poll::Pending);
        // The same waker again: kept, not registered anew.
        assert_eq!(Arc::strong_count(&wakes), 3);
        assert!(queue.push(4));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2, "empty again: woken");
        queue.close();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 3, "closing wakes it");
    }
}
