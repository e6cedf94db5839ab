//! Time-driven limits: the incoming rate limit and heartbeat deadlines.
//! Time is always passed in; nothing here reads a clock.

use std::time::{Duration, Instant};

use crate::options::{Heartbeat, RateLimit};

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
