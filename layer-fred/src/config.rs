//! What a [`FredLayer`](crate::FredLayer) connects to and how it bounds
//! its memory.

use std::time::Duration;

use crate::error::Error;
use crate::names::MAX_PARTITIONS;

/// Configuration of a [`FredLayer`](crate::FredLayer).
///
/// ```
/// use chanx_fred::FredConfig;
/// let config = FredConfig::new("redis://127.0.0.1:6379")
///     .prefix("myapp")
///     .capacity(256);
/// assert_eq!(config.key_prefix(), "myapp");
/// ```
#[derive(Clone, Debug)]
pub struct FredConfig {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) capacity: usize,
    pub(crate) broadcast_capacity: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) max_reconnect_delay: Duration,
    pub(crate) probe_interval: Option<Duration>,
    pub(crate) partitions: Option<usize>,
}

impl Default for FredConfig {
    /// `redis://127.0.0.1:6379`, prefix `chanx`, inboxes of 1024 messages,
    /// a pub/sub buffer of 4096 messages, 5 s to connect, 10 s per command,
    /// reconnect backoff up to 5 s, a subscription probe every 15 s,
    /// plain (not sharded) pub/sub.
    fn default() -> Self {
        FredConfig {
            url: "redis://127.0.0.1:6379".to_owned(),
            prefix: "chanx".to_owned(),
            capacity: 1024,
            broadcast_capacity: 4096,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            max_reconnect_delay: Duration::from_secs(5),
            probe_interval: Some(Duration::from_secs(15)),
            partitions: None,
        }
    }
}

impl FredConfig {
    /// The defaults (see [`Default`]) with another server URL.
    ///
    /// The URL is parsed by fred: `redis://` or `rediss://` (TLS, with a
    /// fred TLS feature) for a single server, `redis-cluster://` for a
    /// cluster, `redis-sentinel://` for a sentinel deployment; user,
    /// password and database go in the URL as usual
    /// (`redis://user:secret@host:6379/2`).
    pub fn new(url: impl Into<String>) -> Self {
        FredConfig {
            url: url.into(),
            ..FredConfig::default()
        }
    }

    /// Prefix of every Redis channel this layer uses (default `chanx`).
    /// Layers share groups only when they use the same prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Messages each connection's inbox holds (default 1024, at least 1);
    /// a full inbox loses new messages.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Pub/sub messages buffered between the Redis connection and the
    /// task that routes them to inboxes (default 4096, at least 16). When
    /// the router falls this far behind, messages are lost and every local
    /// group is told so (a gap).
    pub fn broadcast_capacity(mut self, capacity: usize) -> Self {
        self.broadcast_capacity = capacity.max(16);
        self
    }

    /// How long [`FredLayer::connect`](crate::FredLayer::connect) waits for
    /// Redis (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one Redis command (a publish, a subscribe) may take before
    /// it fails (default 10 s); commands issued while reconnecting wait for
    /// the connection within this time.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Longest pause between two reconnection attempts (default 5 s; the
    /// pauses start at 100 ms and double). Reconnection never gives up.
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.max_reconnect_delay = delay;
        self
    }

    /// How often the layer checks that its subscribing connection still
    /// receives (default every 15 s; `None` turns the probe off). It
    /// publishes a probe on its own channel; if the probe has not come back
    /// by the next check, the subscription died silently (a half-open
    /// connection): the layer reconnects, resubscribes and reports a gap to
    /// every local group.
    pub fn probe_interval(mut self, interval: Option<Duration>) -> Self {
        self.probe_interval = interval.map(|interval| interval.max(Duration::from_millis(10)));
        self
    }

    /// Uses sharded pub/sub (SSUBSCRIBE / SPUBLISH, Redis 7 or later) with
    /// group channels spread over `partitions` hash-slot partitions
    /// (`1..=1024`; 16 is a good start).
    ///
    /// Meant for Redis Cluster: a plain PUBLISH is copied to every node
    /// of a cluster, a sharded one only to the node that owns the
    /// channel's slot. All channels of one partition share one slot, so
    /// subscribing to them again after a reconnection costs one
    /// SSUBSCRIBE per partition in use (per 512 channels), however many
    /// groups there are. Each process also subscribes to one probe
    /// channel per partition in use, which catches a partition's
    /// subscriptions ending silently when its slot migrates to another
    /// node. Every process sharing a prefix must use the same setting.
    ///
    /// [`FredLayer::connect`](crate::FredLayer::connect) refuses a count
    /// outside `1..=1024` and, with sharding, a prefix containing `{` or
    /// `}` (it would change the hash tag).
    ///
    /// ```
    /// use chanx_fred::FredConfig;
    /// let config = FredConfig::new("redis-cluster://127.0.0.1:7000").sharded(16);
    /// assert_eq!(config.partitions(), Some(16));
    /// ```
    pub fn sharded(mut self, partitions: usize) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// The number of partitions of sharded pub/sub, `None` for plain
    /// pub/sub.
    pub fn partitions(&self) -> Option<usize> {
        self.partitions
    }

    /// Checks what fred does not: the partition count and the prefix.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if let Some(partitions) = self.partitions {
            if !(1..=MAX_PARTITIONS).contains(&partitions) {
                return Err(Error::Invalid {
                    field: "partitions",
                    reason: format!("{partitions} is not within 1..={MAX_PARTITIONS}"),
                });
            }
            if self.prefix.contains(['{', '}']) {
                return Err(Error::Invalid {
                    field: "prefix",
                    reason:
                        "a prefix with `{` or `}` would change the hash tag of sharded channels"
                            .to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The channel prefix.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The URL without its password, for logs and errors.
    pub(crate) fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

/// Replaces the user-info part of a URL (`user:password@`) with `***@`.
fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let redacted = match rest[..authority_end].rfind('@') {
        Some(at) => format!("***{}", &rest[at..]),
        None => rest.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{redacted}"),
        None => redacted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_do_not_reach_logs() {
        assert_eq!(
            redact("redis://user:pw@host:6379/2"),
            "redis://***@host:6379/2"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact("host/a@b"), "host/a@b");
    }

    #[test]
    fn sharding_settings_are_checked() {
        assert!(FredConfig::default().sharded(16).validate().is_ok());
        for (config, field) in [
            (FredConfig::default().sharded(0), "partitions"),
            (FredConfig::default().sharded(1025), "partitions"),
            (FredConfig::default().prefix("a{b}").sharded(4), "prefix"),
        ] {
            match config.validate() {
                Err(Error::Invalid { field: named, .. }) => assert_eq!(named, field),
                other => panic!("{config:?}: {other:?}"),
            }
        }
        // Without sharding, braces are harmless.
        assert!(FredConfig::default().prefix("a{b}").validate().is_ok());
    }

    #[test]
    fn bounds_are_enforced() {
        let config = FredConfig::default().capacity(0).broadcast_capacity(1);
        assert_eq!(config.capacity, 1);
        assert_eq!(config.broadcast_capacity, 16);
    }
}
