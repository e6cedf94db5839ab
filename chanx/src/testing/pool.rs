//! The connections of every [`TestClient`](super::TestClient) of one
//! server, driven together: awaiting any client lets all of them make
//! progress, as they would on a real server with a task per connection.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The running connections of one server's test clients.
///
/// No lock is held while a connection is polled, so a handler may itself
/// connect, await or drop test clients of the same server.
#[derive(Default)]
pub(crate) struct Pool {
    /// Connections not being polled right now.
    drivers: Mutex<Vec<(u64, Driver)>>,
    /// Ids of the connections still running (polled or not).
    live: Mutex<HashSet<u64>>,
    waiters: Arc<Waiters>,
    next_id: AtomicU64,
}

/// Everyone currently awaiting a client of the pool; a driver's wake-up
/// wakes them all (whoever polls next drives every connection).
#[derive(Default)]
struct Waiters(Mutex<HashMap<u64, Waker>>);

impl Wake for Waiters {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waiters: Vec<Waker> = lock(&self.0).values().cloned().collect();
        for waker in waiters {
            waker.wake();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    /// Adds a connection; returns its id.
    pub(crate) fn add(&self, driver: Driver) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.live).insert(id);
        lock(&self.drivers).push((id, driver));
        id
    }

    /// Whether connection `id` is still running.
    pub(crate) fn is_running(&self, id: u64) -> bool {
        lock(&self.live).contains(&id)
    }

    /// Polls every connection on behalf of waiter `id` (woken when any
    /// connection can progress).
    pub(crate) fn drive(&self, id: u64, cx: &mut Context<'_>) {
        lock(&self.waiters.0).insert(id, cx.waker().clone());
        let waker = Waker::from(Arc::clone(&self.waiters));
        let mut shared = Context::from_waker(&waker);
        let mut polled = std::mem::take(&mut *lock(&self.drivers));
        let mut ended = Vec::new();
        polled.retain_mut(|(id, driver)| {
            // A connection that panicked is dropped, not polled again.
            let poll =
                std::panic::catch_unwind(AssertUnwindSafe(|| driver.as_mut().poll(&mut shared)));
            let running = matches!(poll, Ok(Poll::Pending));
            if !running {
                ended.push(*id);
            }
            running
        });
        let live = {
            let mut live = lock(&self.live);
            for id in ended {
                live.remove(&id);
            }
            live.clone()
        };
        // Keep what is still live (a client may have been dropped while its
        // connection was polled) plus what was added meanwhile.
        polled.retain(|(id, _)| live.contains(id));
        let mut drivers = lock(&self.drivers);
        let added = std::mem::take(&mut *drivers);
        *drivers = polled;
        drivers.extend(added);
    }

    /// Drops connection `id` (its cleanup runs as its future is dropped).
    pub(crate) fn remove(&self, id: u64) {
        lock(&self.live).remove(&id);
        let removed: Vec<(u64, Driver)> = {
            let mut drivers = lock(&self.drivers);
            let (gone, kept) = drivers.drain(..).partition(|(i, _)| *i == id);
            *drivers = kept;
            gone
        };
        drop(removed);
        self.forget(id);
    }

    /// Waiter `id` stopped waiting.
    pub(crate) fn forget(&self, id: u64) {
        lock(&self.waiters.0).remove(&id);
    }
}

/// Polls the pool until connection `id` has ended.
pub(crate) async fn until_finished(pool: &Pool, id: u64) {
    std::future::poll_fn(|cx| {
        pool.drive(id, cx);
        if pool.is_running(id) {
            Poll::Pending
        } else {
            pool.forget(id);
            Poll::Ready(())
        }
    })
    .await;
}
