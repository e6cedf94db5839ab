//! Ready-made messages, as chanx ships them.

use serde::Serialize;

/// `{"action": "pong", "payload": null}`: the answer to a ping.
///
/// ```
/// assert_eq!(serde_json::to_string(&chanx::messages::PongMessage).unwrap(), r#"{"action":"pong","payload":null}"#);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PongMessage;

impl Serialize for PongMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("PongMessage", 2)?;
        s.serialize_field("action", "pong")?;
        s.serialize_field("payload", &())?;
        s.end()
    }
}
