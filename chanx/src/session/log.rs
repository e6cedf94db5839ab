//! Which frames a connection logs.

/// Which messages are logged, per endpoint.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// Log "Received websocket json" per incoming message.
    pub received: bool,
    /// Log "Sent websocket json" per outgoing frame.
    pub sent: bool,
    /// Actions never logged.
    pub ignored_actions: Vec<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            received: true,
            sent: true,
            ignored_actions: Vec::new(),
        }
    }
}

impl LogSettings {
    /// The action of `text` when a line should be logged for it.
    pub(crate) fn action_of(&self, enabled: bool, text: &str, key: &str) -> Option<String> {
        if !enabled || !tracing::enabled!(tracing::Level::INFO) {
            return None;
        }
        // Frames the core itself builds (authentication, error, pong,
        // complete) always use `action`, as chanx's do.
        let action = chanx_proto::codec::peek_action(text, key)
            .or_else(|| {
                (key != "action")
                    .then(|| chanx_proto::codec::peek_action(text, "action"))
                    .flatten()
            })
            .unwrap_or_default();
        (!self.ignored_actions.contains(&action)).then_some(action)
    }
}
