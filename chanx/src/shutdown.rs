//! Graceful shutdown: every open connection closes with 1001, then the
//! server waits until they are gone.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use slab::Slab;

/// The shutdown switch of a [`Server`](crate::Server); cheap to clone.
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    triggered: AtomicBool,
    /// The wakers of the connections waiting for the switch.
    ///
    /// Ours rather than an `event_listener` (or a closed channel, as it
    /// was): a connection polls its wait every time it goes idle, and an
    /// unchanged registration costs here one atomic load and a waker
    /// comparison, where a listener took about 120 instructions per poll
    /// (callgrind, BENCHMARKS.md) and an allocation per connection.
    waiting: Mutex<Slab<Waker>>,
    active: AtomicUsize,
    idle: event_listener::Event,
}

impl Inner {
    fn waiting(&self) -> MutexGuard<'_, Slab<Waker>> {
        // A waker's clone or drop cannot leave the slab inconsistent.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection's view of the switch.
#[derive(Clone)]
pub(crate) struct ShutdownSignal {
    inner: Arc<Inner>,
}

impl ShutdownSignal {
    /// Resolves once shutdown starts.
    pub(crate) fn wait(self) -> Triggered {
        Triggered {
            inner: self.inner,
            registered: None,
        }
    }
}

/// Resolves once shutdown has started; see [`ShutdownSignal::wait`].
pub(crate) struct Triggered {
    inner: Arc<Inner>,
    /// The waker registered, and its key in `waiting`.
    registered: Option<(usize, Waker)>,
}

impl Future for Triggered {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.triggered.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if let Some((_, waker)) = &self.registered
            && waker.will_wake(cx.waker())
        {
            return Poll::Pending;
        }
        let inner = Arc::clone(&self.inner);
        let mut waiting = inner.waiting();
        // Under the lock: `trigger` sets the flag before it takes the lock
        // to wake everyone, so a waker registered here is either woken or
        // not needed.
        if inner.triggered.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let waker = cx.waker().clone();
        let replaced = match &mut self.registered {
            Some((key, registered)) => {
                let slot = waiting
                    .get_mut(*key)
                    .map(|slot| std::mem::replace(slot, waker.clone()));
                Some((slot, std::mem::replace(registered, waker)))
            }
            None => {
                self.registered = Some((waiting.insert(waker.clone()), waker));
                None
            }
        };
        // Replaced wakers are dropped after the lock (a drop may run code).
        drop(waiting);
        drop(replaced);
        Poll::Pending
    }
}

impl Drop for Triggered {
    fn drop(&mut self) {
        if let Some((key, _)) = self.registered.take() {
            // Gone already if the switch was flipped (`trigger` drains).
            self.inner.waiting().try_remove(key);
        }
    }
}

/// Counts a connection as active while alive.
pub(crate) struct ActiveGuard {
    inner: Arc<Inner>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if self.inner.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify(usize::MAX);
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    /// A switch that has not been flipped.
    pub fn new() -> Self {
        Shutdown {
            inner: Arc::new(Inner {
                triggered: AtomicBool::new(false),
                waiting: Mutex::new(Slab::new()),
                active: AtomicUsize::new(0),
                idle: event_listener::Event::new(),
            }),
        }
    }

    pub(crate) fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            inner: Arc::clone(&self.inner),
        }
    }

    pub(crate) fn track(&self) -> ActiveGuard {
        self.inner.active.fetch_add(1, Ordering::AcqRel);
        ActiveGuard {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Resolves once shutdown has started (at once if it has), on any
    /// runtime: an accept loop stops accepting when it does.
    ///
    /// ```
    /// let shutdown = chanx::Shutdown::new();
    /// shutdown.trigger();
    /// futures_executor::block_on(shutdown.triggered());
    /// ```
    pub async fn triggered(&self) {
        self.signal().wait().await;
    }

    /// Whether shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// Number of connections still running.
    pub fn active_connections(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Starts shutdown: every connection finishes the handler in progress
    /// (sequential endpoints; concurrent endpoints cancel the handlers in
    /// flight) and closes with 1001. New upgrades are refused with 503.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::Release);
        let waiting = std::mem::take(&mut *self.inner.waiting());
        // Woken outside the lock: a waker may run code of its own.
        for (_, waker) in waiting {
            waker.wake();
        }
    }

    /// Starts shutdown and waits until every connection has ended. A
    /// handler that never returns keeps its connection open: bound the
    /// wait with your runtime's timeout (the quickstart waits 10 s).
    pub async fn graceful(&self) {
        self.trigger();
        loop {
            let listener = self.inner.idle.listen();
            if self.active_connections() == 0 {
                return;
            }
            listener.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::tests::CountingWaker;

    fn poll(wait: &mut Triggered, waker: &Arc<CountingWaker>) -> Poll<()> {
        let waker = Waker::from(Arc::clone(waker));
        Pin::new(wait).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn trigger_wakes_every_waiting_connection_once() {
        let shutdown = Shutdown::new();
        let (first, second) = (Arc::default(), Arc::default());
        let mut waits = [shutdown.signal().wait(), shutdown.signal().wait()];
        assert!(poll(&mut waits[0], &first).is_pending());
        assert!(poll(&mut waits[1], &second).is_pending());
        // Polled again with the same waker: still one registration each.
        assert!(poll(&mut waits[0], &first).is_pending());
        assert_eq!(shutdown.inner.waiting().len(), 2);
        shutdown.trigger();
        assert_eq!(first.0.load(Ordering::SeqCst), 1);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut waits[0], &first).is_ready());
        assert!(poll(&mut waits[1], &second).is_ready());
        assert!(shutdown.is_triggered());
    }

    #[test]
    fn a_new_waker_replaces_the_registered_one() {
        let shutdown = Shutdown::new();
        let (old, new) = (Arc::default(), Arc::default());
        let mut wait = shutdown.signal().wait();
        assert!(poll(&mut wait, &old).is_pending());
        assert!(poll(&mut wait, &new).is_pending());
        assert_eq!(shutdown.inner.waiting().len(), 1);
        shutdown.trigger();
        assert_eq!(old.0.load(Ordering::SeqCst), 0);
        assert_eq!(new.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_dropped_wait_leaves_no_waker_behind() {
        let shutdown = Shutdown::new();
        let waker = Arc::default();
        let mut wait = shutdown.signal().wait();
        assert!(poll(&mut wait, &waker).is_pending());
        drop(wait);
        assert!(shutdown.inner.waiting().is_empty());
        shutdown.trigger();
        assert_eq!(waker.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_wait_made_after_the_trigger_is_ready_at_once() {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let mut wait = shutdown.signal().wait();
        assert!(poll(&mut wait, &Arc::default()).is_ready());
        assert!(shutdown.inner.waiting().is_empty());
        futures_executor::block_on(shutdown.triggered());
    }
}
