//! Redis channel names and chanx channel names. Sans-IO.
//!
//! - A group's Redis channel: `<prefix>:g:<group>`.
//! - A layer's own Redis channel, for messages to its connections:
//!   `<prefix>:proc:<layer id>`.
//! - A connection's chanx channel: `specific.<layer id>!<n>`, so any
//!   layer can tell which layer (process) owns it.

/// The names one layer uses.
#[derive(Debug)]
pub(crate) struct Naming {
    prefix: String,
    layer_id: String,
}

impl Naming {
    pub(crate) fn new(prefix: &str, layer_id: String) -> Self {
        Naming {
            prefix: prefix.to_owned(),
            layer_id,
        }
    }

    /// This layer's id (also its publisher id).
    pub(crate) fn layer_id(&self) -> &str {
        &self.layer_id
    }

    /// The Redis channel of `group`.
    pub(crate) fn group_channel(&self, group: &str) -> String {
        format!("{}:g:{group}", self.prefix)
    }

    /// The group whose Redis channel is `channel`, if it is one.
    pub(crate) fn group_of<'c>(&self, channel: &'c str) -> Option<&'c str> {
        channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":g:")
    }

    /// The Redis channel of the layer `layer_id`.
    pub(crate) fn layer_channel(&self, layer_id: &str) -> String {
        format!("{}:proc:{layer_id}", self.prefix)
    }

    /// This layer's own Redis channel.
    pub(crate) fn own_channel(&self) -> String {
        self.layer_channel(&self.layer_id)
    }

    /// The name of this layer's `n`th connection channel.
    pub(crate) fn connection_channel(&self, n: u64) -> String {
        format!("specific.{}!{n}", self.layer_id)
    }
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
        let naming = Naming::new("app", "00ff".to_owned());
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
        assert_eq!(random_layer_id().len(), 16);
    }
}
