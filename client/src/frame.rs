//! What a client receives: the endpoint's messages, its group messages and
//! the framework's own frames, told apart by action.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;

/// The payload of the `authentication` frame.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct AuthenticationResult {
    /// 200 when the connection was accepted; 401, 403, 404 or 500 otherwise.
    pub status_code: u16,
    /// The status's reason phrase (`OK`, `Forbidden`...).
    pub status_text: String,
    /// Details, e.g. `{"detail": "Authentication credentials were not provided."}`.
    pub data: Value,
}

/// One problem of a refused frame, as pydantic reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ValidationProblem {
    /// The kind of problem (`missing`, `string_type`...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: the action, then the path in the message.
    pub loc: Vec<Value>,
    /// The message, in pydantic's words.
    pub msg: String,
}

/// The payload of an `error` frame.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ErrorPayload {
    /// The frame was refused: every problem found.
    Invalid(Vec<ValidationProblem>),
    /// The handler failed (`{"detail": "Failed to process message"}`) or
    /// another error with a detail.
    Detail {
        /// What went wrong.
        detail: String,
    },
    /// Any other error payload.
    Other(Value),
}

/// A frame received from the endpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame<R, G> {
    /// One of the endpoint's own messages.
    Message(R),
    /// A group message from a member of one of the connection's groups.
    Group {
        /// The message.
        message: G,
        /// Sent by another connection of the same user.
        is_mine: bool,
        /// Sent by this very connection (with `exclude_current` off).
        is_current: bool,
    },
    /// An `error` frame.
    Error(ErrorPayload),
    /// `pong`, the built-in answer to `ping` (endpoints whose own message
    /// set has a `pong` deliver it as a [`Frame::Message`]).
    Pong,
    /// `complete`: an incoming frame or a channel event has been handled.
    Complete,
    /// `group_complete`: a group message has been relayed.
    GroupComplete,
    /// `group_gap`: the channel layer may have lost messages for `group`.
    GroupGap {
        /// The group.
        group: String,
    },
}

/// The parts of a frame that say what it is.
#[derive(Deserialize)]
struct Probe {
    action: String,
    #[serde(default)]
    is_mine: Option<bool>,
    #[serde(default)]
    is_current: Option<bool>,
    #[serde(default)]
    payload: Value,
}

/// Decodes one text frame. Framework actions come first (they are
/// reserved), then group messages (they carry `is_mine`), then the
/// endpoint's messages.
pub(crate) fn decode<R: DeserializeOwned, G: DeserializeOwned>(
    text: &str,
) -> Result<Frame<R, G>, Error> {
    let unexpected = |reason: String| Error::UnexpectedFrame {
        text: text.chars().take(512).collect(),
        reason,
    };
    let probe: Probe = serde_json::from_str(text).map_err(|e| unexpected(e.to_string()))?;
    fn payload<T: DeserializeOwned>(probe: &Probe) -> Result<T, serde_json::Error> {
        T::deserialize(&probe.payload)
    }
    match probe.action.as_str() {
        "error" => {
            let error = payload(&probe).map_err(|e| unexpected(e.to_string()))?;
            return Ok(Frame::Error(error));
        }
        "complete" => return Ok(Frame::Complete),
        "group_complete" => return Ok(Frame::GroupComplete),
        "group_gap" => {
            #[derive(Deserialize)]
            struct Gap {
                group: String,
            }
            let Gap { group } = payload(&probe).map_err(|e| unexpected(e.to_string()))?;
            return Ok(Frame::GroupGap { group });
        }
        _ => {}
    }
    if let (Some(is_mine), Some(is_current)) = (probe.is_mine, probe.is_current) {
        let message = serde_json::from_str(text).map_err(|e| unexpected(e.to_string()))?;
        return Ok(Frame::Group {
            message,
            is_mine,
            is_current,
        });
    }
    match serde_json::from_str(text) {
        Ok(message) => Ok(Frame::Message(message)),
        Err(_) if probe.action == "pong" => Ok(Frame::Pong),
        Err(error) => Err(unexpected(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    enum Out {
        Echo { content: String },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    enum Group {
        ChatMessage { content: String },
    }

    fn frame(text: &str) -> Result<Frame<Out, Group>, Error> {
        decode(text)
    }

    #[test]
    fn frames_are_told_apart() {
        assert_eq!(
            frame(r#"{"action":"echo","payload":{"content":"x"}}"#).ok(),
            Some(Frame::Message(Out::Echo {
                content: "x".into()
            }))
        );
        assert_eq!(
            frame(r#"{"action":"chat_message","payload":{"content":"y"},"is_mine":true,"is_current":false}"#).ok(),
            Some(Frame::Group {
                message: Group::ChatMessage { content: "y".into() },
                is_mine: true,
                is_current: false
            })
        );
        assert_eq!(
            frame(r#"{"action":"pong","payload":null}"#).ok(),
            Some(Frame::Pong)
        );
        assert_eq!(
            frame(r#"{"action":"complete","payload":null}"#).ok(),
            Some(Frame::Complete)
        );
        assert_eq!(
            frame(r#"{"action":"group_gap","payload":{"group":"g"}}"#).ok(),
            Some(Frame::GroupGap { group: "g".into() })
        );
        let Ok(Frame::Error(ErrorPayload::Invalid(problems))) = frame(
            r#"{"action":"error","payload":[{"type":"missing","loc":["echo","payload","content"],"msg":"Field required"}]}"#,
        ) else {
            panic!("a validation error");
        };
        assert_eq!(problems[0].kind, "missing");
        assert_eq!(
            frame(r#"{"action":"error","payload":{"detail":"Failed to process message"}}"#).ok(),
            Some(Frame::Error(ErrorPayload::Detail {
                detail: "Failed to process message".into()
            }))
        );
    }

    #[test]
    fn a_frame_outside_the_sets_is_an_error_naming_it() {
        for text in [r#"{"action":"surprise"}"#, "not json", r#"{"payload":1}"#] {
            let error = frame(text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("unexpected frame"), "{text}: {error}");
        }
    }
}
