//! The wire wrapper around a layer message, and per-publisher sequence
//! tracking. Sans-IO: no Redis here.
//!
//! Every message this layer publishes is one JSON object:
//!
//! ```text
//! {"p":"<publisher id>","s":<seq>,"g":"<group>","m":<layer message>}   (group send)
//! {"p":"<publisher id>","s":<seq>,"c":"<channel>","m":<layer message>} (channel send)
//! ```
//!
//! `m` is [`LayerMessage::to_json`](chanx_proto::LayerMessage::to_json),
//! embedded as is. `s` counts the publisher's messages on one Redis
//! channel, from 1, so a receiver that sees `s` jump knows it lost
//! messages from that publisher on that channel.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

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
    pub(crate) seq: u64,
    pub(crate) target: Target<'a>,
    /// The layer message's JSON, still to be parsed.
    pub(crate) message: &'a RawValue,
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
    #[serde(borrow, default)]
    g: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    c: Option<Cow<'a, str>>,
    #[serde(borrow)]
    m: &'a RawValue,
}

/// Wraps a layer message's JSON (`message`, as produced by
/// `LayerMessage::to_json`, hence valid JSON) for publishing.
pub(crate) fn encode(publisher: &str, seq: u64, target: &Target<'_>, message: &str) -> String {
    let (key, name) = match target {
        Target::Group(group) => ("g", group),
        Target::Channel(channel) => ("c", channel),
    };
    let mut out = String::with_capacity(message.len() + name.len() + publisher.len() + 40);
    out.push_str("{\"p\":");
    push_json_str(&mut out, publisher);
    out.push_str(",\"s\":");
    out.push_str(&seq.to_string());
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
        seq: wire.s,
        target,
        message: wire.m,
    })
}

/// What a sequence number says about the stream it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    /// The first message seen from this publisher on this channel since
    /// (re)subscribing: it starts the sequence.
    First,
    /// The next message in sequence.
    Next,
    /// `missed` messages from this publisher were lost before this one.
    Gap {
        /// How many sequence numbers were skipped.
        missed: u64,
    },
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
    last: HashMap<String, HashMap<String, u64>>,
}

impl SeqTracker {
    /// Records `seq` from `publisher` on `channel`.
    pub(crate) fn observe(&mut self, channel: &str, publisher: &str, seq: u64) -> Observed {
        let publishers = match self.last.get_mut(channel) {
            Some(publishers) => publishers,
            None => self.last.entry(channel.to_owned()).or_default(),
        };
        match publishers.get_mut(publisher) {
            None => {
                publishers.insert(publisher.to_owned(), seq);
                Observed::First
            }
            Some(last) if seq <= *last => Observed::Stale,
            Some(last) => {
                let missed = seq - *last - 1;
                *last = seq;
                if missed == 0 {
                    Observed::Next
                } else {
                    Observed::Gap { missed }
                }
            }
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

/// The publishing side: the next sequence number per Redis channel.
#[derive(Debug, Default)]
pub(crate) struct SeqCounter {
    next: HashMap<String, u64>,
}

impl SeqCounter {
    /// The sequence number of the next message on `channel` (from 1).
    pub(crate) fn next(&mut self, channel: &str) -> u64 {
        let counter = match self.next.get_mut(channel) {
            Some(counter) => counter,
            None => self.next.entry(channel.to_owned()).or_insert(0),
        };
        *counter += 1;
        *counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str =
        r#"{"type":"handle_channel_event","event_data":{"handler":"x","payload":null}}"#;

    #[test]
    fn round_trips_groups_and_channels() {
        for target in [
            Target::Group("lobby \"1\"".into()),
            Target::Channel("specific.ab!3".into()),
        ] {
            let wire = encode("p1", 7, &target, EVENT);
            let decoded = decode(wire.as_bytes()).expect("decodes");
            assert_eq!(decoded.publisher, "p1");
            assert_eq!(decoded.seq, 7);
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
    fn the_first_message_starts_the_sequence() {
        let mut tracker = SeqTracker::default();
        // Subscribed mid-stream: 41 is simply the first one seen.
        assert_eq!(tracker.observe("c", "p", 41), Observed::First);
        assert_eq!(tracker.observe("c", "p", 42), Observed::Next);
        assert_eq!(tracker.observe("c", "p", 45), Observed::Gap { missed: 2 });
        assert_eq!(tracker.observe("c", "p", 45), Observed::Stale);
        assert_eq!(tracker.observe("c", "p", 44), Observed::Stale);
        assert_eq!(tracker.observe("c", "p", 46), Observed::Next);
    }

    #[test]
    fn sequences_are_per_publisher_and_channel() {
        let mut tracker = SeqTracker::default();
        assert_eq!(tracker.observe("c1", "p", 1), Observed::First);
        assert_eq!(tracker.observe("c2", "p", 5), Observed::First);
        assert_eq!(tracker.observe("c1", "q", 9), Observed::First);
        assert_eq!(tracker.observe("c1", "p", 2), Observed::Next);
        assert_eq!(tracker.observe("c2", "p", 6), Observed::Next);
        tracker.reset("c1");
        assert_eq!(tracker.channels(), 1);
        assert_eq!(tracker.observe("c1", "p", 10), Observed::First);
        tracker.reset_all();
        assert_eq!(tracker.observe("c2", "p", 8), Observed::First);
    }

    #[test]
    fn counters_are_per_channel() {
        let mut counter = SeqCounter::default();
        assert_eq!(counter.next("a"), 1);
        assert_eq!(counter.next("a"), 2);
        assert_eq!(counter.next("b"), 1);
    }
}
