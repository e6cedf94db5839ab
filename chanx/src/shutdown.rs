//! Graceful shutdown: every open connection closes with 1001, then the
//! server waits until they are gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The shutdown switch of a [`Server`](crate::Server); cheap to clone.
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    trigger: async_channel::Sender<()>,
    signal: async_channel::Receiver<()>,
    active: AtomicUsize,
    idle: event_listener::Event,
}

/// A connection's view of the switch: resolves once shutdown starts.
#[derive(Clone)]
pub(crate) struct ShutdownSignal {
    signal: async_channel::Receiver<()>,
}

impl ShutdownSignal {
    pub(crate) async fn wait(&self) {
        // Nothing is ever sent: `recv` returns only when the switch closes.
        let _ = self.signal.recv().await;
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
        let (trigger, signal) = async_channel::bounded(1);
        Shutdown {
            inner: Arc::new(Inner {
                trigger,
                signal,
                active: AtomicUsize::new(0),
                idle: event_listener::Event::new(),
            }),
        }
    }

    pub(crate) fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            signal: self.inner.signal.clone(),
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
        self.inner.trigger.is_closed()
    }

    /// Number of connections still running.
    pub fn active_connections(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Starts shutdown: every connection finishes the handler in progress
    /// (sequential endpoints; concurrent endpoints cancel the handlers in
    /// flight) and closes with 1001. New upgrades are refused with 503.
    pub fn trigger(&self) {
        self.inner.trigger.close();
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
