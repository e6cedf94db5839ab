//! The embedded, in-process channel layer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, Weak};

use chanx_proto::LayerMessage;
use futures_util::future::BoxFuture;

use super::{ChannelLayer, Inbox, LayerError, unique_channel_name};

type Sender = async_channel::Sender<Arc<LayerMessage>>;

#[derive(Default)]
struct Registry {
    channels: HashMap<String, Sender>,
    groups: HashMap<String, HashMap<String, Sender>>,
    /// The groups of each channel, so unregistering touches only those.
    memberships: HashMap<String, HashSet<String>>,
}

impl Registry {
    /// Removes `channel` from `group`'s members (the group goes when empty).
    fn discard(&mut self, group: &str, channel: &str) {
        if let Some(members) = self.groups.get_mut(group) {
            members.remove(channel);
            if members.is_empty() {
                self.groups.remove(group);
            }
        }
        if let Some(groups) = self.memberships.get_mut(channel) {
            groups.remove(group);
        }
    }
}

struct Shared {
    registry: RwLock<Registry>,
    capacity: usize,
}

/// A channel layer inside one process: groups are maps of channel senders,
/// a group send clones one `Arc` per member. The default for development
/// and single-process deployments.
///
/// ```
/// # futures_executor::block_on(async {
/// use chanx::layer::{ChannelLayer, InMemoryLayer};
/// let layer = InMemoryLayer::new();
/// let (name, inbox) = layer.new_channel().await.unwrap();
/// layer.group_add("lobby", &name).await.unwrap();
/// let event = chanx_proto::LayerMessage::event(&serde_json::json!({"handler": "x", "payload": null})).unwrap();
/// layer.group_send("lobby", std::sync::Arc::new(event)).await.unwrap();
/// assert!(inbox.recv().await.is_some());
/// # });
/// ```
#[derive(Clone)]
pub struct InMemoryLayer {
    shared: Arc<Shared>,
}

impl Default for InMemoryLayer {
    fn default() -> Self {
        InMemoryLayer::new()
    }
}

impl std::fmt::Debug for InMemoryLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryLayer")
            .field("capacity", &self.shared.capacity)
            .finish()
    }
}

/// Unregisters a channel when its inbox is dropped.
struct Registration {
    shared: Weak<Shared>,
    channel: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            let mut registry = shared.registry.write().unwrap_or_else(|e| e.into_inner());
            registry.channels.remove(&self.channel);
            for group in registry
                .memberships
                .remove(&self.channel)
                .unwrap_or_default()
            {
                registry.discard(&group, &self.channel);
            }
        }
    }
}

impl InMemoryLayer {
    /// A layer whose inboxes hold up to 1024 messages each.
    pub fn new() -> Self {
        InMemoryLayer::with_capacity(1024)
    }

    /// A layer whose inboxes hold up to `capacity` messages each (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        InMemoryLayer {
            shared: Arc::new(Shared {
                registry: RwLock::new(Registry::default()),
                capacity: capacity.max(1),
            }),
        }
    }

    /// Number of members of `group` (for tests and metrics).
    pub fn group_size(&self, group: &str) -> usize {
        self.read().groups.get(group).map_or(0, HashMap::len)
    }

    /// Number of registered channels.
    pub fn channel_count(&self) -> usize {
        self.read().channels.len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.shared
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.shared
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn deliver(sender: &Sender, channel: &str, message: &Arc<LayerMessage>) {
        if let Err(async_channel::TrySendError::Full(_)) = sender.try_send(Arc::clone(message)) {
            tracing::warn!(channel, "channel layer inbox full; message dropped");
        }
    }
}

impl ChannelLayer for InMemoryLayer {
    fn new_channel(&self) -> BoxFuture<'_, Result<(String, Inbox), LayerError>> {
        Box::pin(async move {
            let name = unique_channel_name("specific");
            let (tx, rx) = async_channel::bounded(self.shared.capacity);
            self.write().channels.insert(name.clone(), tx);
            let registration = Registration {
                shared: Arc::downgrade(&self.shared),
                channel: name.clone(),
            };
            Ok((name, Inbox::new(rx, registration)))
        })
    }

    fn group_add<'a>(
        &'a self,
        group: &'a str,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            let mut registry = self.write();
            if let Some(sender) = registry.channels.get(channel).cloned() {
                registry
                    .groups
                    .entry(group.to_owned())
                    .or_default()
                    .insert(channel.to_owned(), sender);
                registry
                    .memberships
                    .entry(channel.to_owned())
                    .or_default()
                    .insert(group.to_owned());
            }
            Ok(())
        })
    }

    fn group_discard<'a>(
        &'a self,
        group: &'a str,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            self.write().discard(group, channel);
            Ok(())
        })
    }

    fn group_send<'a>(
        &'a self,
        group: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            let registry = self.read();
            if let Some(members) = registry.groups.get(group) {
                for (channel, sender) in members {
                    Self::deliver(sender, channel, &message);
                }
            }
            Ok(())
        })
    }

    fn send<'a>(
        &'a self,
        channel: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            if let Some(sender) = self.read().channels.get(channel) {
                Self::deliver(sender, channel, &message);
            }
            Ok(())
        })
    }
}
