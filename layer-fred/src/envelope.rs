//! The wire wrapper around a layer message, and per-publisher sequence
//! tracking. Sans-IO: no Redis here.
//!
//! Every message this layer publishes is one JSON object:
//!
//! ```text
//! {"p":"<publisher id>","s":<seq>,"q":<prev>,"g":"<group>","m":<layer message>}   (group send)
//! {"p":"<publisher id>","s":<seq>,"q":<prev>,"c":"<channel>","m":<layer message>} (channel send)
//! ```
//!
//! `m` is [`LayerMessage::to_json`](chanx_proto::LayerMessage::to_json),
//! embedded as is. `s` numbers the publisher's messages, from 1, across
//! all Redis channels; `q` is the `s` of the publisher's previous message
//! on the same Redis channel, left out when the publisher does not
//! remember one. A receiver that last saw `s = 7` from a publisher on a
//! channel and then gets `q = 9` knows it lost at least one message.
//!
//! Chaining (`q`) rather than counting per channel keeps both sides'
//! memory bounded: a publisher remembers the last number of at most
//! [`REMEMBERED_CHANNELS`] channels and a receiver at most
//! [`REMEMBERED_PUBLISHERS`] publishers per channel, least recently used
//! first out; forgetting only means a gap after a long silence goes
//! unnoticed, never a false alarm or a dropped message.

use std::borrow::Cow;
use std::collections::HashMap;

use lru::LruCache;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Redis channels a publisher remembers its last sequence number on.
pub(crate) const REMEMBERED_CHANNELS: usize = 65_536;

/// Publishers a receiver remembers per Redis channel.
pub(crate) const REMEMBERED_PUBLISHERS: usize = 64;

/// Who a wrapped message is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// Every local member of a group.
    Group(Cow<'a, str>),
    /// One channel (connection).
    Channel(Cow<'a, str>),
}

/// A decoded wire message; borrows from the received bytes.
#[derive(Debug)]
pub(crate) struct Wrapped<'a> {
    pub(crate) publisher: Cow<'a, str>,
    pub(crate) seq: Seq,
    pub(crate) target: Target<'a>,
    /// The layer message's JSON, still to be parsed.
    pub(crate) message: &'a RawValue,
}

/// A message's place in its publisher's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seq {
    /// The message's number (from 1, per publisher).
    pub(crate) this: u64,
    /// The number of the publisher's previous message on the same Redis
    /// channel, if the publisher remembers one.
    pub(crate) previous: Option<u64>,
}

/// Why received bytes are not a wrapped message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("malformed layer envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("layer envelope names neither a group nor a channel (or both)")]
    Target,
}

#[derive(Deserialize)]
struct WireIn<'a> {
    #[serde(borrow)]
    p: Cow<'a, str>,
    s: u64,
    #[serde(default)]
    q: Option<u64>,
    #[serde(borrow, default)]
    g: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    c: Option<Cow<'a, str>>,
    #[serde(borrow)]
    m: &'a RawValue,
}

/// Wraps a layer message's JSON (`message`, as produced by
/// `LayerMessage::to_json`, hence valid JSON) for publishing.
pub(crate) fn encode(publisher: &str, seq: Seq, target: &Target<'_>, message: &str) -> String {
    let (key, name) = match target {
        Target::Group(group) => ("g", group),
        Target::Channel(channel) => ("c", channel),
    };
    let mut out = String::with_capacity(message.len() + name.len() + publisher.len() + 40);
    out.push_str("{\"p\":");
    push_json_str(&mut out, publisher);
    out.push_str(",\"s\":");
    out.push_str(&seq.this.to_string());
    if let Some(previous) = seq.previous {
        out.push_str(",\"q\":");
        out.push_str(&previous.to_string());
    }
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
    push_json_str(&mut out, name);
    out.push_str(",\"m\":");
    out.push_str(message);
    out.push('}');
    out
}

fn push_json_str(out: &mut String, value: &str) {
    // Serializing a string into JSON cannot fail.
    out.push_str(&serde_json::to_string(value).unwrap_or_default());
}

/// Unwraps received bytes (the layer message inside is not parsed yet).
pub(crate) fn decode(bytes: &[u8]) -> Result<Wrapped<'_>, DecodeError> {
    let wire: WireIn<'_> = serde_json::from_slice(bytes)?;
    let target = match (wire.g, wire.c) {
        (Some(group), None) => Target::Group(group),
        (None, Some(channel)) => Target::Channel(channel),
        _ => return Err(DecodeError::Target),
    };
    Ok(Wrapped {
        publisher: wire.p,
        seq: Seq {
            this: wire.s,
            previous: wire.q,
        },
        target,
        message: wire.m,
    })
}

/// What a sequence number says about the stream it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    /// The first message seen from this publisher on this channel since
    /// (re)subscribing, or one whose predecessor the publisher or this
    /// receiver forgot: it (re)starts the chain.
    First,
    /// The next message in sequence.
    Next,
    /// At least one message from this publisher on this channel was lost
    /// before this one.
    Gap,
    /// Not newer than the last one seen (a duplicate): drop it.
    Stale,
}

/// The last sequence number seen per (Redis channel, publisher).
///
/// Reset a channel when (re)subscribing to it or unsubscribing from it:
/// what was published while not subscribed is not a gap for the members
/// that join afterwards.
#[derive(Debug, Default)]
pub(crate) struct SeqTracker {
    last: HashMap<String, LruCache<String, u64>>,
}

impl SeqTracker {
    /// Records `seq` from `publisher` on `channel`.
    pub(crate) fn observe(&mut self, channel: &str, publisher: &str, seq: Seq) -> Observed {
        let publishers = match self.last.get_mut(channel) {
            Some(publishers) => publishers,
            // Unbounded here, bounded below: `LruCache::new` would allocate
            // room for every publisher up front, per channel.
            None => self
                .last
                .entry(channel.to_owned())
                .or_insert_with(LruCache::unbounded),
        };
        let Some(last) = publishers.get_mut(publisher) else {
            publishers.put(publisher.to_owned(), seq.this);
            if publishers.len() > REMEMBERED_PUBLISHERS {
                publishers.pop_lru();
            }
            return Observed::First;
        };
        if seq.this <= *last {
            return Observed::Stale;
        }
        let seen = std::mem::replace(last, seq.this);
        match seq.previous {
            Some(previous) if previous > seen => Observed::Gap,
            Some(_) => Observed::Next,
            None => Observed::First,
        }
    }

    /// Forgets everything seen on `channel`.
    pub(crate) fn reset(&mut self, channel: &str) {
        self.last.remove(channel);
    }

    /// Forgets everything.
    pub(crate) fn reset_all(&mut self) {
        self.last.clear();
    }

    /// Number of channels tracked (for tests).
    #[cfg(test)]
    pub(crate) fn channels(&self) -> usize {
        self.last.len()
    }
}

/// The publishing side: numbers messages and remembers, per Redis
/// channel, the number of the last message published there.
#[derive(Debug)]
pub(crate) struct SeqCounter {
    last: u64,
    last_on: LruCache<String, u64>,
    memory: usize,
}

impl Default for SeqCounter {
    fn default() -> Self {
        SeqCounter::with_memory(REMEMBERED_CHANNELS)
    }
}

impl SeqCounter {
    /// A counter remembering at most `channels` channels (at least 1).
    pub(crate) fn with_memory(channels: usize) -> Self {
        SeqCounter {
            last: 0,
            // Bounded below rather than by `LruCache::new`, which would
            // allocate room for every channel up front.
            last_on: LruCache::unbounded(),
            memory: channels.max(1),
        }
    }

    /// The sequence of the next message on `channel`.
    pub(crate) fn next(&mut self, channel: &str) -> Seq {
        self.last += 1;
        let this = self.last;
        let previous = match self.last_on.get_mut(channel) {
            Some(last) => Some(std::mem::replace(last, this)),
            None => {
                self.last_on.put(channel.to_owned(), this);
                if self.last_on.len() > self.memory {
                    self.last_on.pop_lru();
                }
                None
            }
        };
        Seq { this, previous }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str =
        r#"{"type":"handle_channel_event","event_data":{"handler":"x","payload":null}}"#;

    fn seq(this: u64, previous: Option<u64>) -> Seq {
        Seq { this, previous }
    }

    #[test]
    fn round_trips_groups_and_channels() {
        for (target, sequence) in [
            (Target::Group("lobby \"1\"".into()), seq(7, Some(3))),
            (Target::Channel("specific.ab!3".into()), seq(1, None)),
        ] {
            let wire = encode("p1", sequence, &target, EVENT);
            let decoded = decode(wire.as_bytes()).expect("decodes");
            assert_eq!(decoded.publisher, "p1");
            assert_eq!(decoded.seq, sequence);
            assert_eq!(decoded.target, target);
            assert_eq!(decoded.message.get(), EVENT);
            let message = chanx_proto::LayerMessage::from_json(decoded.message.get().as_bytes())
                .expect("the inner message parses");
            assert_eq!(message.to_json(), EVENT);
        }
    }

    #[test]
    fn rejects_malformed_envelopes() {
        assert!(matches!(decode(b"nope"), Err(DecodeError::Json(_))));
        assert!(matches!(
            decode(br#"{"p":"a","s":1,"m":{}}"#),
            Err(DecodeError::Target)
        ));
        assert!(matches!(
            decode(br#"{"p":"a","s":1,"g":"x","c":"y","m":{}}"#),
            Err(DecodeError::Target)
        ));
        assert!(matches!(
            decode(br#"{"p":"a","g":"x","m":{}}"#),
            Err(DecodeError::Json(_))
        ));
    }

    #[test]
    fn a_chain_detects_gaps_and_duplicates() {
        let mut tracker = SeqTracker::default();
        // Subscribed mid-stream: 41 is simply the first one seen.
        assert_eq!(
            tracker.observe("c", "p", seq(41, Some(30))),
            Observed::First
        );
        assert_eq!(tracker.observe("c", "p", seq(42, Some(41))), Observed::Next);
        // Numbers skipped for other channels are no gap here.
        assert_eq!(tracker.observe("c", "p", seq(50, Some(42))), Observed::Next);
        assert_eq!(tracker.observe("c", "p", seq(55, Some(53))), Observed::Gap);
        assert_eq!(
            tracker.observe("c", "p", seq(55, Some(53))),
            Observed::Stale
        );
        assert_eq!(
            tracker.observe("c", "p", seq(44, Some(43))),
            Observed::Stale
        );
        assert_eq!(tracker.observe("c", "p", seq(56, Some(55))), Observed::Next);
        // The publisher forgot this channel: the chain restarts, no alarm.
        assert_eq!(tracker.observe("c", "p", seq(90, None)), Observed::First);
        assert_eq!(tracker.observe("c", "p", seq(91, Some(90))), Observed::Next);
    }

    #[test]
    fn chains_are_per_publisher_and_channel() {
        let mut tracker = SeqTracker::default();
        assert_eq!(tracker.observe("c1", "p", seq(1, None)), Observed::First);
        assert_eq!(tracker.observe("c2", "p", seq(5, None)), Observed::First);
        assert_eq!(tracker.observe("c1", "q", seq(9, None)), Observed::First);
        assert_eq!(tracker.observe("c1", "p", seq(6, Some(1))), Observed::Next);
        assert_eq!(tracker.observe("c2", "p", seq(7, Some(5))), Observed::Next);
        tracker.reset("c1");
        assert_eq!(tracker.channels(), 1);
        assert_eq!(
            tracker.observe("c1", "p", seq(10, Some(6))),
            Observed::First
        );
        tracker.reset_all();
        assert_eq!(tracker.observe("c2", "p", seq(8, Some(7))), Observed::First);
    }

    #[test]
    fn a_receiver_remembers_a_bounded_number_of_publishers() {
        let mut tracker = SeqTracker::default();
        for publisher in 0..REMEMBERED_PUBLISHERS + 10 {
            tracker.observe("c", &publisher.to_string(), seq(1, None));
        }
        assert_eq!(tracker.last["c"].len(), REMEMBERED_PUBLISHERS);
        // The oldest were forgotten: their next message restarts the chain.
        assert_eq!(tracker.observe("c", "0", seq(2, Some(1))), Observed::First);
    }

    #[test]
    fn a_publisher_chains_per_channel_and_forgets_the_least_recent() {
        let mut counter = SeqCounter::with_memory(2);
        assert_eq!(counter.next("a"), seq(1, None));
        assert_eq!(counter.next("a"), seq(2, Some(1)));
        assert_eq!(counter.next("b"), seq(3, None));
        assert_eq!(counter.next("a"), seq(4, Some(2)));
        // `b` is the least recently used of two: `c` pushes it out.
        assert_eq!(counter.next("c"), seq(5, None));
        assert_eq!(counter.next("b"), seq(6, None));
        assert_eq!(counter.last_on.len(), 2);
    }
}
