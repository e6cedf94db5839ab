//! The local side of a channel layer: the channels that live in this
//! process, the groups they joined, and delivery to them.
//!
//! [`InMemoryLayer`](super::InMemoryLayer) is this registry behind a lock;
//! a networked layer keeps one per process for its local members and
//! learns from [`LocalRegistry::add`], [`LocalRegistry::discard`] and
//! [`LocalRegistry::unregister`] when a group gains its first local member
//! or loses its last (when to subscribe and unsubscribe).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use chanx_proto::LayerMessage;

use crate::queue::{Pushed, TaskQueue};

/// The sending end of one channel's inbox, holding at most `capacity`
/// messages: a message for a full inbox is dropped (the connection lags).
/// The inbox ends (its stream yields `None`) once every sender is dropped.
///
/// The queue underneath grows as messages arrive instead of allocating its
/// capacity up front: a bounded channel of 1024 messages was 16 KB on
/// every connection, most of it never used (measured with `LOAD_PARTS=idle
/// cargo bench -p chanx-e2e --bench load`).
#[derive(Debug)]
pub struct MessageSender {
    shared: Arc<InboxQueue>,
    capacity: usize,
}

/// The reading end of one channel's inbox, for one reader; give it to
/// [`Inbox::new`](super::Inbox::new). Dropping it drops the messages it
/// holds, and senders then fail.
#[derive(Debug)]
pub struct InboxReceiver {
    shared: Arc<InboxQueue>,
}

/// What both ends share.
struct InboxQueue {
    queue: TaskQueue<Arc<LayerMessage>>,
    /// Live `MessageSender`s; the last one to go closes the queue.
    senders: AtomicUsize,
}

impl std::fmt::Debug for InboxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxQueue")
            .field("senders", &self.senders.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A new inbox holding at most `capacity` messages (at least 1): the end
/// to [`register`](LocalRegistry::register) and the end to read.
pub fn inbox_channel(capacity: usize) -> (MessageSender, InboxReceiver) {
    let shared = Arc::new(InboxQueue {
        queue: TaskQueue::default(),
        senders: AtomicUsize::new(1),
    });
    let sender = MessageSender {
        shared: Arc::clone(&shared),
        capacity: capacity.max(1),
    };
    (sender, InboxReceiver { shared })
}

impl Clone for MessageSender {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        MessageSender {
            shared: Arc::clone(&self.shared),
            capacity: self.capacity,
        }
    }
}

impl Drop for MessageSender {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.queue.close();
        }
    }
}

impl InboxReceiver {
    /// The next message if one is waiting (`None` whether the inbox is
    /// empty or ended).
    pub fn try_recv(&self) -> Option<Arc<LayerMessage>> {
        self.shared.queue.try_pop()
    }

    /// The next message; `None` once every sender is gone and the inbox is
    /// drained. One reader at a time: only the waker of the last poll that
    /// found the inbox empty is woken.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Arc<LayerMessage>>> {
        self.shared.queue.poll_pop(cx)
    }
}

impl Drop for InboxReceiver {
    fn drop(&mut self) {
        self.shared.queue.close_and_clear();
    }
}

/// What [`LocalRegistry::add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    /// The channel joined a group that had no local member before.
    FirstLocalMember,
    /// The channel joined a group that already had local members.
    Added,
    /// The channel was already a member: nothing changed.
    AlreadyMember,
    /// No such channel is registered (it has gone): nothing changed.
    UnknownChannel,
}

/// Local channels and group memberships, kept both ways (group to
/// channels for delivery, channel to groups for a cheap unregister).
///
/// ```
/// use chanx::layer::{Joined, LocalRegistry};
/// let mut registry = LocalRegistry::default();
/// let (tx, rx) = chanx::layer::inbox_channel(8);
/// registry.register("specific.a", tx);
/// assert_eq!(registry.add("lobby", "specific.a"), Joined::FirstLocalMember);
/// assert_eq!(registry.add("lobby", "specific.a"), Joined::AlreadyMember);
/// let event = chanx_proto::LayerMessage::event(&serde_json::json!({"handler": "x", "payload": null})).unwrap();
/// assert_eq!(registry.deliver_to_group("lobby", &std::sync::Arc::new(event)), 1);
/// assert!(rx.try_recv().is_some());
/// assert_eq!(registry.unregister("specific.a"), ["lobby"]);
/// assert_eq!(registry.group_size("lobby"), 0);
/// ```
#[derive(Debug, Default)]
pub struct LocalRegistry {
    /// Channel names are shared by every map they are in (one allocation
    /// per channel rather than one per map and group).
    channels: HashMap<Arc<str>, MessageSender>,
    groups: HashMap<String, HashMap<Arc<str>, MessageSender>>,
    memberships: HashMap<Arc<str>, HashSet<String>>,
}

impl LocalRegistry {
    /// Registers a channel and the sender of its inbox (replacing any
    /// channel of the same name).
    pub fn register(&mut self, channel: impl Into<Arc<str>>, sender: MessageSender) {
        self.channels.insert(channel.into(), sender);
    }

    /// Forgets a channel and all its memberships; returns the groups it
    /// left without any local member.
    pub fn unregister(&mut self, channel: &str) -> Vec<String> {
        self.channels.remove(channel);
        let groups = self.memberships.remove(channel).unwrap_or_default();
        groups
            .into_iter()
            .filter(|group| self.remove_member(group, channel))
            .collect()
    }

    /// Adds a registered channel to `group`; adding twice is harmless.
    pub fn add(&mut self, group: &str, channel: &str) -> Joined {
        let Some((name, sender)) = self.channels.get_key_value(channel) else {
            return Joined::UnknownChannel;
        };
        let members = self.groups.entry(group.to_owned()).or_default();
        let first = members.is_empty();
        if members.insert(Arc::clone(name), sender.clone()).is_some() {
            return Joined::AlreadyMember;
        }
        self.memberships
            .entry(Arc::clone(name))
            .or_default()
            .insert(group.to_owned());
        if first {
            Joined::FirstLocalMember
        } else {
            Joined::Added
        }
    }

    /// Removes `channel` from `group`; returns whether the group has no
    /// local member left (and was a local group before).
    pub fn discard(&mut self, group: &str, channel: &str) -> bool {
        if let Some(groups) = self.memberships.get_mut(channel) {
            groups.remove(group);
            if groups.is_empty() {
                self.memberships.remove(channel);
            }
        }
        self.remove_member(group, channel)
    }

    /// Removes one side of a membership; whether the group is now empty.
    fn remove_member(&mut self, group: &str, channel: &str) -> bool {
        let Some(members) = self.groups.get_mut(group) else {
            return false;
        };
        if members.remove(channel).is_none() {
            return false;
        }
        if members.is_empty() {
            self.groups.remove(group);
            return true;
        }
        false
    }

    /// Puts `message` in the inbox of every local member of `group`;
    /// returns how many took it. A full inbox loses the message (logged):
    /// a slow connection never stalls the sender.
    pub fn deliver_to_group(&self, group: &str, message: &Arc<LayerMessage>) -> usize {
        self.groups.get(group).map_or(0, |members| {
            members
                .iter()
                .filter(|(channel, sender)| deliver(sender, channel, message))
                .count()
        })
    }

    /// Puts `message` in one local channel's inbox; whether it took it.
    pub fn deliver_to_channel(&self, channel: &str, message: &Arc<LayerMessage>) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|sender| deliver(sender, channel, message))
    }

    /// Number of local members of `group`.
    pub fn group_size(&self, group: &str) -> usize {
        self.groups.get(group).map_or(0, HashMap::len)
    }

    /// Number of registered channels.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// The groups with at least one local member (e.g. to subscribe to
    /// again after a reconnect).
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }
}

fn deliver(inbox: &MessageSender, channel: &str, message: &Arc<LayerMessage>) -> bool {
    match inbox
        .shared
        .queue
        .push_within(Arc::clone(message), inbox.capacity)
    {
        Pushed::Queued => true,
        Pushed::Full => {
            tracing::warn!(channel, "channel layer inbox full; message dropped");
            false
        }
        // The inbox is gone, and its registration goes with it.
        Pushed::Closed => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry_with(channels: &[&str]) -> (LocalRegistry, Vec<InboxReceiver>) {
        let mut registry = LocalRegistry::default();
        let inboxes = channels
            .iter()
            .map(|name| {
                let (tx, rx) = inbox_channel(1);
                registry.register((*name).to_owned(), tx);
                rx
            })
            .collect();
        (registry, inboxes)
    }

    fn message() -> Arc<LayerMessage> {
        let event = serde_json::json!({"handler": "x", "payload": null});
        Arc::new(LayerMessage::event(&event).expect("an object"))
    }

    #[test]
    fn first_and_last_local_members_are_reported() {
        let (mut registry, _inboxes) = registry_with(&["a", "b"]);
        assert_eq!(registry.add("g", "a"), Joined::FirstLocalMember);
        assert_eq!(registry.add("g", "b"), Joined::Added);
        assert_eq!(registry.add("g", "missing"), Joined::UnknownChannel);
        assert!(!registry.discard("g", "a"));
        assert!(
            !registry.discard("g", "a"),
            "discarding twice changes nothing"
        );
        assert!(registry.discard("g", "b"));
        assert!(!registry.discard("other", "b"));
        assert_eq!(registry.groups().count(), 0);
    }

    #[test]
    fn unregister_leaves_every_group_once() {
        let (mut registry, _inboxes) = registry_with(&["a", "b"]);
        registry.add("g1", "a");
        registry.add("g2", "a");
        registry.add("g2", "b");
        let mut emptied = registry.unregister("a");
        emptied.sort();
        assert_eq!(emptied, ["g1"]);
        assert_eq!(registry.group_size("g2"), 1);
        assert_eq!(registry.channel_count(), 1);
        assert!(registry.unregister("a").is_empty());
    }

    #[test]
    fn full_and_closed_inboxes_do_not_count_as_delivered() {
        let (mut registry, inboxes) = registry_with(&["a", "b"]);
        registry.add("g", "a");
        registry.add("g", "b");
        assert_eq!(registry.deliver_to_group("g", &message()), 2);
        // Inboxes hold one message: the next one is dropped for both.
        assert_eq!(registry.deliver_to_group("g", &message()), 0);
        drop(inboxes);
        assert!(!registry.deliver_to_channel("a", &message()));
        assert!(!registry.deliver_to_channel("nobody", &message()));
    }
}
