//! Time-driven limits: the incoming rate limit, the input byte budget and
//! heartbeat deadlines.
//! Time is always passed in; nothing here reads a clock.

use std::time::{Duration, Instant};

use crate::options::{Heartbeat, InputBudget, RateLimit};

/// A token bucket refilled at `per_second`, holding at most `burst` tokens.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        TokenBucket {
            limit,
            tokens: f64::from(limit.burst),
            last: now,
        }
    }

    pub(crate) fn per_second(&self) -> u32 {
        self.limit.per_second
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * f64::from(self.limit.per_second))
            .min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A token bucket of bytes that a frame may overdraw: accepted while not
/// overdrawn, then reading waits until it is paid back.
#[derive(Debug, Clone)]
pub(crate) struct ByteBudget {
    budget: InputBudget,
    /// Negative while overdrawn.
    tokens: f64,
    last: Instant,
}

impl ByteBudget {
    pub(crate) fn new(budget: InputBudget, now: Instant) -> Self {
        ByteBudget {
            budget,
            tokens: budget.burst_bytes as f64,
            last: now,
        }
    }

    pub(crate) fn bytes_per_second(&self) -> u64 {
        self.budget.bytes_per_second
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.budget.bytes_per_second as f64)
            .min(self.budget.burst_bytes as f64);
    }

    /// Spends `bytes` unless the budget is overdrawn at `now`.
    pub(crate) fn try_spend(&mut self, now: Instant, bytes: usize) -> bool {
        self.refill(now);
        if self.tokens < 0.0 {
            return false;
        }
        self.tokens -= bytes as f64;
        true
    }

    /// When an overdrawn budget is paid back; `None` if it is not overdrawn.
    pub(crate) fn paid_back_at(&self) -> Option<Instant> {
        (self.tokens < 0.0).then(|| {
            let seconds = -self.tokens / self.budget.bytes_per_second as f64;
            // Rounded up, so that at that instant the budget is paid back.
            self.last + Duration::from_secs_f64(seconds) + Duration::from_micros(1)
        })
    }
}

/// What a heartbeat deadline asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Not due yet.
    Idle,
    /// Send a ping.
    Ping,
    /// Too many silent intervals: close.
    Dead,
}

#[derive(Debug, Clone)]
pub(crate) struct HeartbeatState {
    config: Heartbeat,
    next: Instant,
    heard_since_ping: bool,
    missed: u32,
    /// The runtime is not reading: silence is ours, not the peer's.
    reads_paused: bool,
}

impl HeartbeatState {
    pub(crate) fn new(config: Heartbeat, now: Instant) -> Self {
        HeartbeatState {
            config,
            next: now + config.interval,
            heard_since_ping: true,
            missed: 0,
            reads_paused: false,
        }
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.next
    }

    pub(crate) fn on_activity(&mut self) {
        self.heard_since_ping = true;
        self.missed = 0;
    }

    /// Reads stopped: until [`resume_reads`](Self::resume_reads) no interval counts as missed.
    pub(crate) fn pause_reads(&mut self) {
        self.reads_paused = true;
    }

    /// Reads go on: answers may wait unread in the socket, so the peer
    /// gets a fresh interval, as if it had just been heard.
    pub(crate) fn resume_reads(&mut self) {
        self.reads_paused = false;
        self.on_activity();
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> Beat {
        if now < self.next {
            return Beat::Idle;
        }
        if !self.heard_since_ping && !self.reads_paused {
            self.missed += 1;
            if self.missed >= self.config.max_missed {
                return Beat::Dead;
            }
        }
        self.heard_since_ping = false;
        self.next = now + self.config.interval.max(Duration::from_millis(1));
        Beat::Ping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_budget_may_be_overdrawn_then_waits() {
        let t0 = Instant::now();
        let mut budget = ByteBudget::new(
            InputBudget {
                bytes_per_second: 1000,
                burst_bytes: 500,
            },
            t0,
        );
        assert_eq!(budget.paid_back_at(), None);
        assert!(budget.try_spend(t0, 400));
        assert!(budget.try_spend(t0, 1100), "not overdrawn yet: accepted");
        let paid = budget.paid_back_at().expect("overdrawn by 1000");
        assert!(paid >= t0 + Duration::from_secs(1));
        assert!(!budget.try_spend(t0 + Duration::from_millis(500), 1));
        assert!(budget.try_spend(paid, 0), "paid back: accepted again");
        assert_eq!(budget.paid_back_at(), None);
    }

    #[test]
    fn bucket_refills_over_time() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(
            RateLimit {
                per_second: 2,
                burst: 2,
            },
            t0,
        );
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_millis(500)));
        assert!(!b.try_take(t0 + Duration::from_millis(500)));
    }

    #[test]
    fn heartbeat_declares_dead_after_missed_intervals() {
        let t0 = Instant::now();
        let s = Duration::from_secs(30);
        let mut h = HeartbeatState::new(
            Heartbeat {
                interval: s,
                max_missed: 2,
            },
            t0,
        );
        assert_eq!(h.on_timeout(t0), Beat::Idle);
        assert_eq!(h.on_timeout(t0 + s), Beat::Ping);
        assert_eq!(h.on_timeout(t0 + s * 2), Beat::Ping);
        assert_eq!(h.on_timeout(t0 + s * 3), Beat::Dead);
        let mut h = HeartbeatState::new(
            Heartbeat {
                interval: s,
                max_missed: 2,
            },
            t0,
        );
        for i in 1..10 {
            assert_eq!(h.on_timeout(t0 + s * i), Beat::Ping);
            h.on_activity();
        }
    }

    #[test]
    fn paused_reads_never_count_as_missed() {
        let t0 = Instant::now();
        let s = Duration::from_secs(30);
        let mut h = HeartbeatState::new(
            Heartbeat {
                interval: s,
                max_missed: 1,
            },
            t0,
        );
        h.pause_reads();
        for i in 1..10 {
            assert_eq!(h.on_timeout(t0 + s * i), Beat::Ping);
        }
        h.resume_reads();
        assert_eq!(h.on_timeout(t0 + s * 10), Beat::Ping);
        assert_eq!(h.on_timeout(t0 + s * 11), Beat::Dead);
    }
}
