//! Channel layers: how group messages and channel events travel between
//! connections, in one process or across many.
//!
//! # Semantics every layer keeps
//!
//! - **At most once.** A message reaches each member of a group at most
//!   once; a member whose inbox is full, or a process that is down, misses
//!   it (the layer logs the drop). There is no redelivery.
//! - **Ordered per sender.** Messages one sender sends to one group reach
//!   each member in the order sent.
//! - **Bounded.** Each connection's inbox holds at most `capacity`
//!   messages; a slow connection loses new messages rather than growing
//!   memory without bound or stalling the sender.
//! - **Serialize once.** A message is built once (an `Arc<LayerMessage>`)
//!   and shared by every local receiver.

mod memory;
mod registry;

use std::sync::Arc;

use chanx_proto::LayerMessage;
use futures_util::future::BoxFuture;

pub use memory::InMemoryLayer;
pub use registry::{InboxReceiver, Joined, LocalRegistry, MessageSender, inbox_channel};

/// A layer failure (e.g. Redis unreachable).
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The backend could not be reached or refused the command.
    #[error("channel layer backend error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// The layer has been shut down.
    #[error("channel layer is closed")]
    Closed,
}

/// The receiving end of one connection's channel: layer messages addressed
/// to it, directly or through its groups. Dropping it unregisters the channel.
///
/// It is a [`Stream`](futures_util::Stream) of messages that ends once the
/// layer dropped the channel.
pub struct Inbox {
    receiver: InboxReceiver,
    /// The stream has yielded its final `None`.
    ended: bool,
    _registration: Box<dyn Send + Sync>,
}

impl Inbox {
    /// Wraps a receiver; `registration` is dropped with the inbox (use it
    /// to unregister the channel).
    pub fn new(receiver: InboxReceiver, registration: impl Send + Sync + 'static) -> Self {
        Inbox {
            receiver,
            ended: false,
            _registration: Box::new(registration),
        }
    }

    /// The next message; `None` once the layer dropped the channel. One
    /// reader at a time (an inbox belongs to one connection): of two tasks
    /// waiting at once, only the last to wait is woken.
    pub async fn recv(&self) -> Option<Arc<LayerMessage>> {
        std::future::poll_fn(|cx| self.receiver.poll_recv(cx)).await
    }
}

impl futures_util::Stream for Inbox {
    type Item = Arc<LayerMessage>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.ended {
            return std::task::Poll::Ready(None);
        }
        let next = self.receiver.poll_recv(cx);
        if let std::task::Poll::Ready(None) = next {
            self.ended = true;
        }
        next
    }
}

impl futures_util::stream::FusedStream for Inbox {
    /// Terminated only after `None` was yielded, so the driver sees the
    /// end of the channel.
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

/// A channel layer: groups of channels and delivery between them.
///
/// Implement it over any backend; [`InMemoryLayer`] is the embedded
/// default and `chanx-fred` carries it over Redis. Keep the
/// local side in a [`LocalRegistry`].
///
/// # How connections call it
///
/// Each connection performs its layer work on a worker of its own, off the
/// path of its socket: it may have several calls in flight at once, and it
/// *starts* them — polls each returned future once — in the order it
/// issued them. A layer keeps per-sender order by doing its ordering work
/// (taking a lock, writing a command to its connection) before its
/// future's first `Pending`.
pub trait ChannelLayer: Send + Sync + 'static {
    /// Registers a new, unique channel and returns its name and inbox.
    fn new_channel(&self) -> BoxFuture<'_, Result<(String, Inbox), LayerError>>;

    /// Adds `channel` to `group`.
    fn group_add<'a>(
        &'a self,
        group: &'a str,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>>;

    /// Removes `channel` from `group`.
    fn group_discard<'a>(
        &'a self,
        group: &'a str,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>>;

    /// Adds `channel` to every group of `groups` in one batch (a
    /// connection's groups after authentication). The default calls
    /// [`group_add`](Self::group_add) for each; a networked layer should
    /// make it one round trip. Resolves once every membership is effective.
    fn join_groups<'a>(
        &'a self,
        channel: &'a str,
        groups: &'a [String],
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            for group in groups {
                self.group_add(group, channel).await?;
            }
            Ok(())
        })
    }

    /// Removes `channel` from every group of `groups` in one batch (a
    /// closing connection's groups). The default calls
    /// [`group_discard`](Self::group_discard) for each, going on after a
    /// failure and reporting the first.
    fn leave_groups<'a>(
        &'a self,
        channel: &'a str,
        groups: &'a [String],
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            let mut result = Ok(());
            for group in groups {
                let left = self.group_discard(group, channel).await;
                if result.is_ok() {
                    result = left;
                }
            }
            result
        })
    }

    /// Delivers `message` to every channel of `group`.
    fn group_send<'a>(
        &'a self,
        group: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>>;

    /// Delivers `message` to one channel.
    fn send<'a>(
        &'a self,
        channel: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>>;
}

impl<L: ChannelLayer + ?Sized> ChannelLayer for Arc<L> {
    fn new_channel(&self) -> BoxFuture<'_, Result<(String, Inbox), LayerError>> {
        (**self).new_channel()
    }
    fn group_add<'a>(
        &'a self,
        group: &'a str,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        (**self).group_add(group, channel)
    }
    fn group_discard<'a>(
        &'a self,
        group: &'a str,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        (**self).group_discard(group, channel)
    }
    fn join_groups<'a>(
        &'a self,
        channel: &'a str,
        groups: &'a [String],
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        (**self).join_groups(channel, groups)
    }
    fn leave_groups<'a>(
        &'a self,
        channel: &'a str,
        groups: &'a [String],
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        (**self).leave_groups(channel, groups)
    }
    fn group_send<'a>(
        &'a self,
        group: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        (**self).group_send(group, message)
    }
    fn send<'a>(
        &'a self,
        channel: &'a str,
        message: Arc<LayerMessage>,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        (**self).send(channel, message)
    }
}

/// A fresh channel name, unique across processes: `specific.<random>!<n>`.
pub fn unique_channel_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PROCESS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let process = PROCESS.get_or_init(|| format!("{:016x}", fastrand::u64(..)));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}.{process}!{n}")
}
