//! Which Redis channels are subscribed, which should be, and who waits
//! for a subscription to be confirmed. Sans-IO: the caller runs the
//! commands and reports their outcome.
//!
//! The wanted set comes from the local registry (a group's channel is
//! wanted while the group has a local member; the layer's own channel
//! always is). [`Subscriptions::plan`] compares it with what Redis
//! confirmed on the current connection; after a reconnect nothing is
//! confirmed any more ([`Subscriptions::connection_lost`]), so the next
//! plan subscribes to everything again, and each channel that was
//! subscribed before the loss is reported as resynced once Redis confirms
//! it again (its members may have missed messages meanwhile).

use std::collections::{HashMap, HashSet};

/// The commands that bring Redis to the wanted set.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Channels to SUBSCRIBE to.
    pub(crate) subscribe: Vec<String>,
    /// Channels to UNSUBSCRIBE from.
    pub(crate) unsubscribe: Vec<String>,
}

impl Plan {
    pub(crate) fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.unsubscribe.is_empty()
    }
}

/// Outcome of a confirmed SUBSCRIBE.
#[derive(Debug)]
pub(crate) struct Confirmed<W> {
    /// Waiters whose channel is now subscribed.
    pub(crate) waiters: Vec<W>,
    /// Channels subscribed again after a connection loss: their local
    /// members may have missed messages.
    pub(crate) resynced: Vec<String>,
}

/// Subscription state on the current connection; `W` is whatever the
/// layer uses to wake a waiting join (a oneshot sender).
#[derive(Debug)]
pub(crate) struct Subscriptions<W> {
    confirmed: HashSet<String>,
    /// Channels an UNSUBSCRIBE is under way (or failed) for: no longer
    /// confirmed, so a join in the meantime waits for a new SUBSCRIBE.
    unsubscribing: HashSet<String>,
    waiters: HashMap<String, Vec<W>>,
    /// Channels lost with the connection, to report once resubscribed.
    resync: HashSet<String>,
}

impl<W> Default for Subscriptions<W> {
    fn default() -> Self {
        Subscriptions {
            confirmed: HashSet::new(),
            unsubscribing: HashSet::new(),
            waiters: HashMap::new(),
            resync: HashSet::new(),
        }
    }
}

impl<W> Subscriptions<W> {
    /// Whether Redis confirmed `channel` on the current connection.
    pub(crate) fn is_confirmed(&self, channel: &str) -> bool {
        self.confirmed.contains(channel)
    }

    /// Number of confirmed channels.
    pub(crate) fn confirmed_count(&self) -> usize {
        self.confirmed.len()
    }

    /// Registers `waiter` to be woken once `channel` is confirmed.
    pub(crate) fn wait(&mut self, channel: String, waiter: W) {
        self.waiters.entry(channel).or_default().push(waiter);
    }

    /// The commands that bring Redis to `wanted`, and the waiters of
    /// channels no longer wanted (their joins were undone meanwhile:
    /// release them).
    pub(crate) fn plan(&mut self, wanted: &HashSet<String>) -> (Plan, Vec<W>) {
        let mut subscribe: Vec<String> = wanted
            .iter()
            .filter(|channel| !self.confirmed.contains(*channel))
            .cloned()
            .collect();
        // Leaving a channel un-confirms it at once: a join that arrives
        // while the UNSUBSCRIBE is under way must wait for a new SUBSCRIBE.
        let leaving: Vec<String> = self
            .confirmed
            .iter()
            .filter(|channel| !wanted.contains(*channel))
            .cloned()
            .collect();
        for channel in leaving {
            self.confirmed.remove(&channel);
            self.unsubscribing.insert(channel);
        }
        // A failed UNSUBSCRIBE is tried again, unless the channel is
        // wanted again (then the SUBSCRIBE above covers it).
        self.unsubscribing
            .retain(|channel| !wanted.contains(channel));
        let mut unsubscribe: Vec<String> = self.unsubscribing.iter().cloned().collect();
        subscribe.sort();
        unsubscribe.sort();
        self.resync.retain(|channel| wanted.contains(channel));
        let orphans: Vec<String> = self
            .waiters
            .keys()
            .filter(|channel| !wanted.contains(*channel))
            .cloned()
            .collect();
        let released = orphans
            .iter()
            .filter_map(|channel| self.waiters.remove(channel))
            .flatten()
            .collect();
        (
            Plan {
                subscribe,
                unsubscribe,
            },
            released,
        )
    }

    /// Redis confirmed a SUBSCRIBE of `channels`.
    pub(crate) fn subscribed(&mut self, channels: &[String]) -> Confirmed<W> {
        let mut confirmed = Confirmed {
            waiters: Vec::new(),
            resynced: Vec::new(),
        };
        for channel in channels {
            self.confirmed.insert(channel.clone());
            if let Some(waiters) = self.waiters.remove(channel) {
                confirmed.waiters.extend(waiters);
            }
            if self.resync.remove(channel) {
                confirmed.resynced.push(channel.clone());
            }
        }
        confirmed
    }

    /// A SUBSCRIBE of `channels` failed: the waiters to fail. The
    /// channels stay wanted, so the next plan retries them.
    pub(crate) fn subscribe_failed(&mut self, channels: &[String]) -> Vec<W> {
        channels
            .iter()
            .filter_map(|channel| self.waiters.remove(channel))
            .flatten()
            .collect()
    }

    /// Redis confirmed an UNSUBSCRIBE of `channels`.
    pub(crate) fn unsubscribed(&mut self, channels: &[String]) {
        for channel in channels {
            self.confirmed.remove(channel);
            self.unsubscribing.remove(channel);
        }
    }

    /// The connection was lost (or replaced): nothing is subscribed any
    /// more; what was is reported when subscribed again.
    pub(crate) fn connection_lost(&mut self) {
        self.suspect_all();
        // A new connection holds no subscription to undo.
        self.unsubscribing.clear();
    }

    /// Some subscriptions may have ended without notice (a probe did not
    /// come back): subscribe to everything again (Redis ignores a
    /// SUBSCRIBE of a channel it still has) and report each channel once
    /// confirmed. Pending UNSUBSCRIBEs stay pending.
    pub(crate) fn suspect_all(&mut self) {
        self.resync.extend(self.confirmed.drain());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_being_left_is_not_confirmed_and_a_failed_leave_is_retried() {
        let mut subs: Subscriptions<u8> = Subscriptions::default();
        let wanted: HashSet<String> = ["a".to_owned()].into();
        let (plan, _) = subs.plan(&wanted);
        subs.subscribed(&plan.subscribe);
        assert!(subs.is_confirmed("a"));
        let (plan, _) = subs.plan(&HashSet::new());
        assert_eq!(plan.unsubscribe, ["a"]);
        // While the UNSUBSCRIBE is under way, a join must not resolve.
        assert!(!subs.is_confirmed("a"));
        // It failed (no `unsubscribed`): the next plan tries again.
        let (plan, _) = subs.plan(&HashSet::new());
        assert_eq!(plan.unsubscribe, ["a"]);
        // Wanted again before it went through: subscribe, don't unsubscribe.
        let (plan, _) = subs.plan(&wanted);
        assert_eq!(plan.subscribe, ["a"]);
        assert!(plan.unsubscribe.is_empty());
    }

    fn wanted(channels: &[&str]) -> HashSet<String> {
        channels.iter().map(|c| (*c).to_owned()).collect()
    }

    fn strings(channels: &[&str]) -> Vec<String> {
        channels.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn subscribes_what_is_wanted_and_wakes_waiters() {
        let mut subs = Subscriptions::<u32>::default();
        subs.wait("a".into(), 1);
        subs.wait("a".into(), 2);
        let (plan, released) = subs.plan(&wanted(&["a", "b"]));
        assert!(released.is_empty());
        assert_eq!(plan.subscribe, strings(&["a", "b"]));
        assert!(plan.unsubscribe.is_empty());
        let confirmed = subs.subscribed(&plan.subscribe);
        assert_eq!(confirmed.waiters, [1, 2]);
        assert!(confirmed.resynced.is_empty(), "a first subscribe is no gap");
        assert!(subs.is_confirmed("a"));
        assert!(subs.plan(&wanted(&["a", "b"])).0.is_empty());
    }

    #[test]
    fn unsubscribes_what_is_no_longer_wanted() {
        let mut subs = Subscriptions::<u32>::default();
        subs.subscribed(&strings(&["a", "b"]));
        let (plan, _) = subs.plan(&wanted(&["b"]));
        assert_eq!(plan.unsubscribe, strings(&["a"]));
        subs.unsubscribed(&plan.unsubscribe);
        assert_eq!(subs.confirmed_count(), 1);
    }

    #[test]
    fn waiters_of_abandoned_channels_are_released() {
        let mut subs = Subscriptions::<u32>::default();
        subs.wait("gone".into(), 7);
        let (plan, released) = subs.plan(&wanted(&[]));
        assert!(plan.is_empty());
        assert_eq!(released, [7]);
    }

    #[test]
    fn failures_fail_waiters_and_are_retried() {
        let mut subs = Subscriptions::<u32>::default();
        subs.wait("a".into(), 1);
        let (plan, _) = subs.plan(&wanted(&["a"]));
        assert_eq!(subs.subscribe_failed(&plan.subscribe), [1]);
        assert_eq!(subs.plan(&wanted(&["a"])).0.subscribe, strings(&["a"]));
    }

    #[test]
    fn a_lost_connection_resubscribes_everything_and_reports_it() {
        let mut subs = Subscriptions::<u32>::default();
        subs.subscribed(&strings(&["a", "b", "c"]));
        subs.connection_lost();
        assert_eq!(subs.confirmed_count(), 0);
        // `c` lost its last member meanwhile: neither resubscribed nor reported.
        let (plan, _) = subs.plan(&wanted(&["a", "b", "d"]));
        assert_eq!(plan.subscribe, strings(&["a", "b", "d"]));
        assert!(plan.unsubscribe.is_empty());
        let confirmed = subs.subscribed(&plan.subscribe);
        assert_eq!(confirmed.resynced, strings(&["a", "b"]));
        // Reported once.
        subs.connection_lost();
        subs.connection_lost();
        let confirmed = subs.subscribed(&strings(&["a"]));
        assert_eq!(confirmed.resynced, strings(&["a"]));
    }

    #[test]
    fn suspected_subscriptions_are_renewed_and_pending_leaves_kept() {
        let mut subs = Subscriptions::<u32>::default();
        subs.subscribed(&strings(&["a", "b"]));
        let (plan, _) = subs.plan(&wanted(&["a"]));
        assert_eq!(plan.unsubscribe, strings(&["b"]));
        subs.suspect_all();
        let (plan, _) = subs.plan(&wanted(&["a"]));
        assert_eq!(plan.subscribe, strings(&["a"]));
        assert_eq!(plan.unsubscribe, strings(&["b"]), "the leave is still owed");
        assert_eq!(subs.subscribed(&plan.subscribe).resynced, strings(&["a"]));
    }
}
