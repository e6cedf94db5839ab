//! The embedded, in-process channel layer.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use chanx_proto::LayerMessage;
use futures_util::future::BoxFuture;

use super::{ChannelLayer, Inbox, LayerError, LocalRegistry, unique_channel_name};

struct Shared {
    registry: RwLock<LocalRegistry>,
    capacity: usize,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, LocalRegistry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, LocalRegistry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A channel layer inside one process: a [`LocalRegistry`] behind a lock;
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
    channel: Arc<str>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.write().unregister(&self.channel);
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
                registry: RwLock::new(LocalRegistry::default()),
                capacity: capacity.max(1),
            }),
        }
    }

    /// Number of members of `group` (for tests and metrics).
    pub fn group_size(&self, group: &str) -> usize {
        self.shared.read().group_size(group)
    }

    /// Number of registered channels.
    pub fn channel_count(&self) -> usize {
        self.shared.read().channel_count()
    }
}

impl ChannelLayer for InMemoryLayer {
    fn new_channel(&self) -> BoxFuture<'_, Result<(String, Inbox), LayerError>> {
        Box::pin(async move {
            let name = unique_channel_name("specific");
            let (tx, rx) = super::inbox_channel(self.shared.capacity);
            // One copy of the name for the registry and the registration.
            let registered: Arc<str> = Arc::from(name.as_str());
            self.shared.write().register(Arc::clone(&registered), tx);
            let registration = Registration {
                shared: Arc::downgrade(&self.shared),
                channel: registered,
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
            self.shared.write().add(group, channel);
            Ok(())
        })
    }

    fn join_groups<'a>(
        &'a self,
        channel: &'a str,
        groups: &'a [String],
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            let mut registry = self.shared.write();
            for group in groups {
                registry.add(group, channel);
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
            self.shared.write().discard(group, channel);
            Ok(())
        })
    }

    fn leave_groups<'a>(
        &'a self,
        channel: &'a str,
        groups: &'a [String],
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            let mut registry = self.shared.write();
            for group in groups {
                registry.discard(group, channel);
            }
            Ok(())
        })
    }

    fn group_send<'a>(
        &'a self,
        group: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            self.shared.read().deliver_to_group(group, &message);
            Ok(())
        })
    }

    fn send<'a>(
        &'a self,
        channel: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            self.shared.read().deliver_to_channel(channel, &message);
            Ok(())
        })
    }
}
