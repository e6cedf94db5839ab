//! Redis channel names and chanx channel names. Sans-IO.
//!
//! With plain pub/sub:
//! - a group's Redis channel: `<prefix>:g:<group>`;
//! - a layer's own Redis channel, for messages to its connections:
//!   `<prefix>:proc:<layer id>`.
//!
//! With sharded pub/sub, every Redis channel carries the hash tag of its
//! partition, so all channels of one partition live in one hash slot and
//! one SSUBSCRIBE covers them: `<prefix>:{<tag>}:g:<group>`,
//! `<prefix>:{<tag>}:proc:<layer id>`, and one probe channel per
//! partition, `<prefix>:{<tag>}:probe:<layer id>`. A name's partition is
//! its CRC16 hash slot modulo the number of partitions, the same in every
//! process.
//!
//! A connection's chanx channel is `specific.<layer id>!<n>` either way,
//! so any layer can tell which layer (process) owns it.

use std::collections::BTreeMap;

use fred::util::redis_keyslot;

/// Number of Redis Cluster hash slots.
const HASH_SLOTS: usize = 16_384;

/// Most partitions sharded pub/sub may use (tags are computed at start,
/// in time that grows with the square of this).
pub(crate) const MAX_PARTITIONS: usize = 1024;

/// Hash tags of the partitions of sharded pub/sub: tag `k` hashes into
/// the `k`th of `n` equal ranges of hash slots, so the partitions spread
/// evenly over a cluster's nodes (which own contiguous slot ranges);
/// the bare tags `{0}`, `{1}`, ... would not.
#[derive(Debug)]
struct Partitions {
    tags: Vec<String>,
}

impl Partitions {
    /// Tags for `count` partitions, `1..=MAX_PARTITIONS`.
    fn new(count: usize) -> Self {
        let tags = (0..count)
            .map(|k| {
                let range = k * HASH_SLOTS / count..(k + 1) * HASH_SLOTS / count;
                // About `count` tries per tag: CRC16 spreads short strings evenly.
                (0u64..)
                    .map(|salt| format!("{k}.{salt}"))
                    .find(|tag| range.contains(&usize::from(redis_keyslot(tag.as_bytes()))))
                    .unwrap_or_default()
            })
            .collect();
        Partitions { tags }
    }

    /// The partition of a group name or layer id.
    fn of(&self, name: &str) -> usize {
        usize::from(redis_keyslot(name.as_bytes())) % self.tags.len()
    }
}

/// The names one layer uses.
#[derive(Debug)]
pub(crate) struct Naming {
    prefix: String,
    layer_id: String,
    /// `Some` with sharded pub/sub.
    partitions: Option<Partitions>,
}

impl Naming {
    /// Names for plain pub/sub, or for sharded pub/sub over `partitions`
    /// partitions (`1..=MAX_PARTITIONS`, checked by the configuration).
    pub(crate) fn new(prefix: &str, layer_id: String, partitions: Option<usize>) -> Self {
        Naming {
            prefix: prefix.to_owned(),
            layer_id,
            partitions: partitions.map(Partitions::new),
        }
    }

    /// Whether channels are sharded (SSUBSCRIBE / SPUBLISH).
    pub(crate) fn is_sharded(&self) -> bool {
        self.partitions.is_some()
    }

    /// This layer's id (also its publisher id).
    pub(crate) fn layer_id(&self) -> &str {
        &self.layer_id
    }

    /// `<prefix>:` or `<prefix>:{<tag of name's partition>}:`.
    fn head(&self, name: &str) -> String {
        match &self.partitions {
            Some(partitions) => format!(
                "{}:{{{}}}:",
                self.prefix,
                partitions.tags[partitions.of(name)]
            ),
            None => format!("{}:", self.prefix),
        }
    }

    /// The Redis channel of `group`.
    pub(crate) fn group_channel(&self, group: &str) -> String {
        format!("{}g:{group}", self.head(group))
    }

    /// The group whose Redis channel is `channel`, if it is one.
    pub(crate) fn group_of<'c>(&self, channel: &'c str) -> Option<&'c str> {
        let rest = channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(':')?;
        let rest = match self.partitions {
            // The tag has no `}`; the prefix has none either (checked by
            // the configuration).
            Some(_) => rest.strip_prefix('{')?.split_once("}:")?.1,
            None => rest,
        };
        rest.strip_prefix("g:")
    }

    /// The Redis channel of the layer `layer_id`.
    pub(crate) fn layer_channel(&self, layer_id: &str) -> String {
        format!("{}proc:{layer_id}", self.head(layer_id))
    }

    /// This layer's own Redis channel.
    pub(crate) fn own_channel(&self) -> String {
        self.layer_channel(&self.layer_id)
    }

    /// The channel this layer probes the subscription of `channel` with:
    /// its own channel with plain pub/sub (one connection carries every
    /// subscription), its probe channel in `channel`'s partition with
    /// sharded pub/sub (each partition may live on another node, and a
    /// slot migration ends the subscriptions of one partition only).
    pub(crate) fn probe_channel_for(&self, channel: &str) -> String {
        match (&self.partitions, tag_of(channel)) {
            (Some(_), Some(tag)) => format!("{}:{{{tag}}}:probe:{}", self.prefix, self.layer_id),
            _ => self.own_channel(),
        }
    }

    /// `channels` in batches for one SUBSCRIBE or UNSUBSCRIBE each: at
    /// most `limit` channels, and with sharded pub/sub all of one
    /// partition (one hash slot), as Redis Cluster requires.
    pub(crate) fn batches(&self, channels: &[String], limit: usize) -> Vec<Vec<String>> {
        let mut by_tag: BTreeMap<Option<&str>, Vec<String>> = BTreeMap::new();
        for channel in channels {
            let tag = if self.is_sharded() {
                tag_of(channel)
            } else {
                None
            };
            by_tag.entry(tag).or_default().push(channel.clone());
        }
        by_tag
            .into_values()
            .flat_map(|channels| {
                channels
                    .chunks(limit.max(1))
                    .map(<[String]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The name of this layer's `n`th connection channel.
    pub(crate) fn connection_channel(&self, n: u64) -> String {
        format!("specific.{}!{n}", self.layer_id)
    }
}

/// The hash tag of a Redis channel name (between its first `{` and the
/// next `}`), as Redis Cluster reads it.
fn tag_of(channel: &str) -> Option<&str> {
    let (_, rest) = channel.split_once('{')?;
    let (tag, _) = rest.split_once('}')?;
    Some(tag)
}

/// The id of the layer that owns a connection channel
/// (`specific.<layer id>!<n>`), if the name has that shape.
pub(crate) fn owner_of(channel: &str) -> Option<&str> {
    let rest = channel.strip_prefix("specific.")?;
    let (owner, _) = rest.split_once('!')?;
    (!owner.is_empty()).then_some(owner)
}

/// A fresh random layer id (16 hex digits).
pub(crate) fn random_layer_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_channels_name_their_owner() {
        let naming = Naming::new("app", "00ff".to_owned(), None);
        let channel = naming.connection_channel(7);
        assert_eq!(channel, "specific.00ff!7");
        assert_eq!(owner_of(&channel), Some("00ff"));
        assert_eq!(owner_of("specific.!1"), None);
        assert_eq!(owner_of("other"), None);
        assert_eq!(owner_of("specific.abc"), None);
        assert_eq!(naming.own_channel(), "app:proc:00ff");
        assert_eq!(naming.group_channel("lobby"), "app:g:lobby");
        assert_eq!(naming.group_of("app:g:lobby"), Some("lobby"));
        assert_eq!(naming.group_of("app:proc:00ff"), None);
        assert_eq!(naming.group_of("other:g:lobby"), None);
        assert_eq!(naming.probe_channel_for("app:g:lobby"), "app:proc:00ff");
        assert_eq!(random_layer_id().len(), 16);
    }

    #[test]
    fn partition_tags_spread_evenly_over_the_hash_slots() {
        for count in [1, 3, 16, 100] {
            let partitions = Partitions::new(count);
            for (k, tag) in partitions.tags.iter().enumerate() {
                let slot = usize::from(redis_keyslot(tag.as_bytes()));
                let range = k * HASH_SLOTS / count..(k + 1) * HASH_SLOTS / count;
                assert!(range.contains(&slot), "tag {tag} of {count}: slot {slot}");
            }
        }
    }

    #[test]
    fn sharded_channels_of_a_partition_share_one_hash_slot() {
        let naming = Naming::new("app", "00ff".to_owned(), Some(8));
        let group = naming.group_channel("lobby");
        assert_eq!(naming.group_of(&group), Some("lobby"));
        assert_eq!(naming.group_of(&naming.own_channel()), None);
        // A group name with braces of its own keeps the partition's tag.
        let braces = naming.group_channel("a{b}c");
        assert_eq!(naming.group_of(&braces), Some("a{b}c"));
        let probe = naming.probe_channel_for(&group);
        assert_eq!(
            redis_keyslot(probe.as_bytes()),
            redis_keyslot(group.as_bytes())
        );
        assert!(probe.ends_with(":probe:00ff"), "{probe}");
        // Another layer computes the same names.
        let other = Naming::new("app", "1234".to_owned(), Some(8));
        assert_eq!(other.group_channel("lobby"), group);
        assert_eq!(other.layer_channel("00ff"), naming.own_channel());
    }

    #[test]
    fn batches_respect_the_limit_and_with_sharding_the_partition() {
        let plain = Naming::new("app", "1".to_owned(), None);
        let groups: Vec<String> = (0..50)
            .map(|n| plain.group_channel(&n.to_string()))
            .collect();
        let batches = plain.batches(&groups, 20);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [20, 20, 10]
        );

        let sharded = Naming::new("app", "1".to_owned(), Some(4));
        let groups: Vec<String> = (0..50)
            .map(|n| sharded.group_channel(&n.to_string()))
            .collect();
        let batches = sharded.batches(&groups, 512);
        assert!(batches.len() <= 4, "one SSUBSCRIBE per partition");
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 50);
        for batch in &batches {
            let slot = redis_keyslot(batch[0].as_bytes());
            assert!(batch.iter().all(|c| redis_keyslot(c.as_bytes()) == slot));
        }
    }
}
