//! Body of `POST /api/notify/<room_id>/`.
//!
//! Validation mirrors this DRF serializer, error wording included:
//!
//! ```python
//! class NotificationSerializer(serializers.Serializer):
//!     message = serializers.CharField(max_length=500)
//!     level = serializers.ChoiceField(
//!         choices=[('info', 'Info'), ('warning', 'Warning'),
//!                  ('error', 'Error'), ('success', 'Success')],
//!         default='info')
//! ```

use std::collections::BTreeMap;
use std::fmt;

use chanx::proto::python::py_str;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest accepted `message`, in Unicode characters, after trimming.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// The serializer's fields in declaration order (then DRF's non-field key).
const FIELD_ORDER: [&str; 3] = ["message", "level", "non_field_errors"];

const REQUIRED: &str = "This field is required.";
const BLANK: &str = "This field may not be blank.";
const NULL: &str = "This field may not be null.";
const NOT_A_STRING: &str = "Not a valid string.";
const TOO_LONG: &str = "Ensure this field has no more than 500 characters.";
const NULL_CHARACTERS: &str = "Null characters are not allowed.";
const NO_DATA: &str = "No data provided";

/// Severity of a notification, serialized in lowercase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `"info"`, the default.
    #[default]
    Info,
    /// `"warning"`.
    Warning,
    /// `"error"`.
    Error,
    /// `"success"`.
    Success,
}

impl Level {
    /// The wire name: `"info"`, `"warning"`, `"error"` or `"success"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Success => "success",
        }
    }

    fn from_choice(choice: &str) -> Option<Level> {
        [Level::Info, Level::Warning, Level::Error, Level::Success]
            .into_iter()
            .find(|level| level.as_str() == choice)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The message, trimmed, 1 to 500 characters.
    pub message: String,
    /// The severity, `info` when the body left it out.
    pub level: Level,
}

/// Why a notify body was rejected; every variant is a 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The body is not JSON; holds the whole detail, `"JSON parse error - ..."`.
    #[error("{0}")]
    Parse(String),
    /// The body is JSON but invalid: field name (or `non_field_errors`) to messages.
    #[error("invalid notification: {0:?}")]
    Invalid(BTreeMap<String, Vec<String>>),
}

impl NotifyError {
    /// The 400 response body, as DRF would send it.
    pub fn to_json(&self) -> Value {
        match self {
            NotifyError::Parse(detail) => serde_json::json!({ "detail": detail }),
            NotifyError::Invalid(errors) => {
                // DRF lists fields in the serializer's declaration order.
                let mut body = serde_json::Map::new();
                for field in FIELD_ORDER {
                    if let Some(messages) = errors.get(field) {
                        body.insert(field.to_owned(), serde_json::json!(messages));
                    }
                }
                for (field, messages) in errors {
                    if !FIELD_ORDER.contains(&field.as_str()) {
                        body.insert(field.clone(), serde_json::json!(messages));
                    }
                }
                Value::Object(body)
            }
        }
    }
}

/// Parses and validates a notify request body.
pub fn parse_notification(body: &[u8]) -> Result<Notification, NotifyError> {
    let data: Value = serde_json::from_slice(body)
        .map_err(|e| NotifyError::Parse(format!("JSON parse error - {e}")))?;
    let fields = match data {
        Value::Object(fields) => fields,
        Value::Null => return Err(non_field_error(NO_DATA.to_owned())),
        other => {
            return Err(non_field_error(format!(
                "Invalid data. Expected a dictionary, but got {}.",
                python_type_name(&other)
            )));
        }
    };

    let message = validate_message(fields.get("message"));
    let level = validate_level(fields.get("level"));
    match (message, level) {
        (Ok(message), Ok(level)) => Ok(Notification { message, level }),
        (message, level) => {
            let mut errors = BTreeMap::new();
            if let Err(messages) = message {
                errors.insert("message".to_owned(), messages);
            }
            if let Err(messages) = level {
                errors.insert("level".to_owned(), messages);
            }
            Err(NotifyError::Invalid(errors))
        }
    }
}

fn non_field_error(message: String) -> NotifyError {
    NotifyError::Invalid(BTreeMap::from([(
        "non_field_errors".to_owned(),
        vec![message],
    )]))
}

/// `CharField(max_length=500)` with DRF defaults (trimmed, no blank, no null).
fn validate_message(value: Option<&Value>) -> Result<String, Vec<String>> {
    let text = match value {
        None => return Err(vec![REQUIRED.to_owned()]),
        Some(Value::Null) => return Err(vec![NULL.to_owned()]),
        Some(Value::String(s)) => python_strip(s).to_owned(),
        Some(number @ Value::Number(_)) => py_str(number),
        Some(_) => return Err(vec![NOT_A_STRING.to_owned()]),
    };
    if text.is_empty() {
        return Err(vec![BLANK.to_owned()]);
    }
    // DRF runs every validator and reports all failures.
    let mut errors = Vec::new();
    if text.chars().count() > MAX_MESSAGE_CHARS {
        errors.push(TOO_LONG.to_owned());
    }
    if text.contains('\0') {
        errors.push(NULL_CHARACTERS.to_owned());
    }
    if errors.is_empty() {
        Ok(text)
    } else {
        Err(errors)
    }
}

/// `ChoiceField` with `default='info'`: the input's `str()` must be a choice.
fn validate_level(value: Option<&Value>) -> Result<Level, Vec<String>> {
    match value {
        None => Ok(Level::Info),
        Some(Value::Null) => Err(vec![NULL.to_owned()]),
        Some(value) => {
            let text = py_str(value);
            Level::from_choice(&text)
                .ok_or_else(|| vec![format!("\"{text}\" is not a valid choice.")])
        }
    }
}

/// Python's `str.strip()`: Unicode whitespace plus the `\x1c`..`\x1f` separators.
fn python_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// `type(value).__name__` of the Python object `json.loads` would build.
fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<Notification, NotifyError> {
        parse_notification(body.to_string().as_bytes())
    }

    fn errors(body: Value) -> Value {
        parse(body).unwrap_err().to_json()
    }

    #[test]
    fn valid_body_with_and_without_level() {
        let n = parse(json!({"message": "  hello  ", "level": "warning"})).unwrap();
        assert_eq!(n.message, "hello");
        assert_eq!(n.level, Level::Warning);
        let n = parse(json!({"message": "hi"})).unwrap();
        assert_eq!(n.level, Level::Info);
        for level in ["info", "warning", "error", "success"] {
            let n = parse(json!({"message": "x", "level": level})).unwrap();
            assert_eq!(n.level.as_str(), level);
            assert_eq!(n.level.to_string(), level);
        }
    }

    #[test]
    fn extra_fields_are_ignored() {
        let n = parse(json!({"message": "x", "room": 5})).unwrap();
        assert_eq!(n.message, "x");
    }

    #[test]
    fn level_serde_is_lowercase() {
        assert_eq!(
            serde_json::to_value(Level::Success).unwrap(),
            json!("success")
        );
        let level: Level = serde_json::from_value(json!("error")).unwrap();
        assert_eq!(level, Level::Error);
        let n = Notification {
            message: "m".into(),
            level: Level::Info,
        };
        assert_eq!(
            serde_json::to_value(n).unwrap(),
            json!({"message": "m", "level": "info"})
        );
    }

    #[test]
    fn numbers_are_accepted_as_text() {
        assert_eq!(parse(json!({"message": 5})).unwrap().message, "5");
        assert_eq!(parse(json!({"message": -12})).unwrap().message, "-12");
        assert_eq!(parse(json!({"message": 1.5})).unwrap().message, "1.5");
        assert_eq!(parse(json!({"message": 2.0})).unwrap().message, "2.0");
        assert_eq!(
            parse_notification(br#"{"message": 1e20}"#).unwrap().message,
            "1e+20"
        );
        assert_eq!(
            parse_notification(br#"{"message": 1e-7}"#).unwrap().message,
            "1e-07"
        );
        assert_eq!(
            parse_notification(br#"{"message": 0.0001}"#)
                .unwrap()
                .message,
            "0.0001"
        );
    }

    #[test]
    fn message_errors() {
        assert_eq!(
            errors(json!({})),
            json!({"message": ["This field is required."]})
        );
        assert_eq!(
            errors(json!({"message": null})),
            json!({"message": ["This field may not be null."]})
        );
        assert_eq!(
            errors(json!({"message": ""})),
            json!({"message": ["This field may not be blank."]})
        );
        assert_eq!(
            errors(json!({"message": " \n\t"})),
            json!({"message": ["This field may not be blank."]})
        );
        assert_eq!(
            errors(json!({"message": "\u{1f} "})),
            json!({"message": ["This field may not be blank."]})
        );
        for bad in [json!(true), json!(false), json!(["a"]), json!({"a": 1})] {
            assert_eq!(
                errors(json!({"message": bad})),
                json!({"message": ["Not a valid string."]})
            );
        }
        assert_eq!(
            errors(json!({"message": "a\u{0}b"})),
            json!({"message": ["Null characters are not allowed."]})
        );
    }

    #[test]
    fn message_length_counts_chars_after_trimming() {
        let ok = "é".repeat(500);
        assert_eq!(
            parse(json!({"message": format!("  {ok}  ")}))
                .unwrap()
                .message,
            ok
        );
        let long = "é".repeat(501);
        assert_eq!(
            errors(json!({"message": long})),
            json!({"message": ["Ensure this field has no more than 500 characters."]})
        );
    }

    #[test]
    fn level_errors() {
        let e = |level: Value| errors(json!({"message": "m", "level": level}));
        assert_eq!(
            e(json!("loud")),
            json!({"level": ["\"loud\" is not a valid choice."]})
        );
        assert_eq!(
            e(json!("")),
            json!({"level": ["\"\" is not a valid choice."]})
        );
        assert_eq!(
            e(json!("Info")),
            json!({"level": ["\"Info\" is not a valid choice."]})
        );
        assert_eq!(
            e(json!(" info")),
            json!({"level": ["\" info\" is not a valid choice."]})
        );
        assert_eq!(
            e(json!(5)),
            json!({"level": ["\"5\" is not a valid choice."]})
        );
        assert_eq!(
            e(json!(true)),
            json!({"level": ["\"True\" is not a valid choice."]})
        );
        assert_eq!(
            e(json!(["info"])),
            json!({"level": ["\"['info']\" is not a valid choice."]})
        );
        assert_eq!(
            e(json!({"a": [null, 1.5, "it's"]})),
            json!({"level": ["\"{'a': [None, 1.5, \"it's\"]}\" is not a valid choice."]})
        );
        assert_eq!(
            e(Value::Null),
            json!({"level": ["This field may not be null."]})
        );
    }

    #[test]
    fn all_field_errors_are_reported_together() {
        assert_eq!(
            errors(json!({"message": "   ", "level": "loud"})),
            json!({
                "message": ["This field may not be blank."],
                "level": ["\"loud\" is not a valid choice."],
            })
        );
    }

    #[test]
    fn non_object_bodies() {
        let cases = [
            (json!([1]), "list"),
            (json!("x"), "str"),
            (json!(3), "int"),
            (json!(3.5), "float"),
            (json!(true), "bool"),
        ];
        for (body, name) in cases {
            let expected = format!("Invalid data. Expected a dictionary, but got {name}.");
            assert_eq!(errors(body), json!({"non_field_errors": [expected]}));
        }
        assert_eq!(
            errors(Value::Null),
            json!({"non_field_errors": ["No data provided"]})
        );
    }

    #[test]
    fn parse_errors() {
        let err = parse_notification(b"oops").unwrap_err();
        assert_eq!(
            err.to_json(),
            json!({"detail": "JSON parse error - expected value at line 1 column 1"})
        );
        assert_eq!(
            err.to_string(),
            "JSON parse error - expected value at line 1 column 1"
        );
        for body in [
            &b""[..],
            b"{",
            b"{\"message\": \"x\"} trailing",
            b"\xff\xfe",
        ] {
            match parse_notification(body) {
                Err(NotifyError::Parse(detail)) => {
                    assert!(detail.starts_with("JSON parse error - "))
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
    }
}
