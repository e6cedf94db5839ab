//! Pydantic-shaped validation errors from a message set's JSON Schema.
//!
//! The fast path decodes frames with serde alone. Only when serde refuses a
//! frame does the core come here: the frame is parsed into a
//! [`serde_json::Value`], the action tag is read, and the payload is checked
//! against that variant's schema (generated once by `schemars`) so that
//! *every* problem is reported in pydantic's `{type, loc, msg}` form.

use serde_json::{Map, Value};

use crate::error::{ConfigError, LocItem, ValidationError};
use crate::python::{py_repr, py_str};

/// The compiled schema of an action-tagged message set: the tags in
/// declaration order and, for each, the schema of its variant.
#[derive(Clone, Debug)]
pub struct MessageSchema {
    key: String,
    content_key: &'static str,
    variants: Vec<(String, Value)>,
    defs: Map<String, Value>,
    root: Value,
}

/// How a frame's tag compares with a message set.
#[derive(Debug, PartialEq)]
pub enum TagLookup<'a> {
    /// The object has no tag key.
    Missing,
    /// The tag is present but names no variant (or is not a string).
    Unknown(&'a Value),
    /// The tag names this variant.
    Known(&'a str),
}

impl MessageSchema {
    /// Compiles the schema of `T`, tagged by `key`.
    ///
    /// `T` must be an enum tagged with `#[serde(tag = "<key>")]` (with or
    /// without `content = "payload"`), or a single struct whose `key` field
    /// has one constant value.
    pub fn of<T: schemars::JsonSchema>(key: &str) -> Result<Self, ConfigError> {
        let root = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<T>()
            .to_value();
        Self::from_root(std::any::type_name::<T>(), key, root)
    }

    fn from_root(type_name: &str, key: &str, root: Value) -> Result<Self, ConfigError> {
        let not_tagged = |reason: String| ConfigError::NotTagged {
            type_name: type_name.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let defs = root
            .get("$defs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let branches: Vec<Value> = match root.get("oneOf").or_else(|| root.get("anyOf")) {
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(not_tagged("`oneOf` is not a list".into())),
            None => vec![root.clone()],
        };
        let mut variants = Vec::with_capacity(branches.len());
        for branch in branches {
            let branch = resolve_ref(&branch, &defs).clone();
            let tag = branch
                .get("properties")
                .and_then(|p| p.get(key))
                .and_then(constant_string)
                .ok_or_else(|| not_tagged(format!("a variant has no constant `{key}` field")))?;
            variants.push((tag, branch));
        }
        Ok(MessageSchema {
            key: key.to_owned(),
            content_key: "payload",
            variants,
            defs,
            root,
        })
    }

    /// The tag key (e.g. `"action"` or `"handler"`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The tags, in declaration order.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.variants.iter().map(|(t, _)| t.as_str())
    }

    /// Whether a variant with this tag exists.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.variants.iter().any(|(t, _)| t == tag)
    }

    /// The whole JSON Schema document (for playgrounds and AsyncAPI).
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Every variant: its tag and its schema (with `$ref`s pointing into
    /// [`defs`](Self::defs)), in declaration order.
    pub fn variants(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.variants.iter().map(|(t, s)| (t.as_str(), s))
    }

    /// The schema of one variant, with `$ref`s still pointing into [`defs`](Self::defs).
    pub fn variant(&self, tag: &str) -> Option<&Value> {
        self.variants.iter().find(|(t, _)| t == tag).map(|(_, s)| s)
    }

    /// The shared definitions (`$defs`) of the schema.
    pub fn defs(&self) -> &Map<String, Value> {
        &self.defs
    }

    /// Reads the tag of a decoded JSON object.
    pub fn lookup_tag<'a>(&self, object: &'a Map<String, Value>) -> TagLookup<'a> {
        match object.get(&self.key) {
            None => TagLookup::Missing,
            Some(Value::String(s)) if self.has_tag(s) => TagLookup::Known(s),
            Some(other) => TagLookup::Unknown(other),
        }
    }

    /// The `union_tag_invalid` entry for an unknown tag; `extra` tags (such
    /// as a built-in `ping`) are listed after the declared ones.
    pub fn unknown_tag_error(&self, found: &Value, extra: &[&str]) -> ValidationError {
        let expected: Vec<String> = self
            .tags()
            .chain(extra.iter().copied())
            .map(|t| format!("'{t}'"))
            .collect();
        ValidationError::frame(
            "union_tag_invalid",
            format!(
                "Input tag '{}' found using '{}' does not match any of the expected tags: {}",
                shorten(&py_str(found), MAX_TAG_SHOWN),
                self.key,
                expected.join(", ")
            ),
        )
    }

    /// The `union_tag_not_found` entry.
    pub fn missing_tag_error(&self) -> ValidationError {
        ValidationError::frame(
            "union_tag_not_found",
            format!("Unable to extract tag using discriminator '{}'", self.key),
        )
    }

    /// Every problem of `object` against the variant named `tag`, with `loc`
    /// starting at the tag. Empty when the schema finds nothing wrong.
    ///
    /// Values are coerced in place the way pydantic's lax mode does
    /// (`"5"` or `5.0` for an integer, `"1.5"` for a number, `"yes"` for a
    /// boolean), so a caller can decode the coerced object afterwards.
    pub fn validate_variant(
        &self,
        tag: &str,
        object: &mut Map<String, Value>,
    ) -> Vec<ValidationError> {
        let mut out = Vec::new();
        let Some(schema) = self.variant(tag) else {
            return out;
        };
        let mut loc = vec![LocItem::Key(tag.to_owned())];
        let is_unit = schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| p.len() == 1);
        if is_unit {
            if let Some(content) = object.get(self.content_key)
                && !content.is_null()
            {
                loc.push(LocItem::Key(self.content_key.to_owned()));
                out.push(error("none_required", &loc, "Input should be None".into()));
            }
            return out;
        }
        let validator = Validator {
            defs: &self.defs,
            steps: std::cell::Cell::new(MAX_STEPS),
        };
        validator.object(schema, object, None, &mut loc, &mut out, Some(&self.key));
        out
    }
}

/// A variant's constant tag value: `{"const": "x"}` or `{"enum": ["x"]}`.
fn constant_string(schema: &Value) -> Option<String> {
    if let Some(Value::String(s)) = schema.get("const") {
        return Some(s.clone());
    }
    match schema.get("enum") {
        Some(Value::Array(items)) if items.len() == 1 => items[0].as_str().map(str::to_owned),
        _ => None,
    }
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
}

fn resolve_ref<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    match ref_name(schema).and_then(|name| defs.get(name)) {
        Some(target) => target,
        None => schema,
    }
}

fn error(kind: &str, loc: &[LocItem], msg: String) -> ValidationError {
    ValidationError {
        kind: kind.to_owned(),
        loc: loc.to_vec(),
        msg,
    }
}

/// Longest rendering of a client's tag in an error message: the error frame
/// must not grow with the client's input.
const MAX_TAG_SHOWN: usize = 64;

/// `text` cut to `max` characters, with `...` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

fn json_type_matches(ty: &str, value: &Value) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

/// pydantic's lax-mode conversions from JSON input; true if `value` was
/// converted to JSON type `ty`.
fn coerce(ty: &str, value: &mut Value) -> bool {
    let converted = match (ty, &*value) {
        ("integer", Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        ("integer", Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| Value::from(f as i64)),
        ("integer" | "number", Value::Bool(b)) => Some(Value::from(u8::from(*b))),
        ("number", Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number)),
        ("boolean", Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Some(Value::Bool(false)),
            "1" | "on" | "t" | "true" | "y" | "yes" => Some(Value::Bool(true)),
            _ => None,
        },
        ("boolean", Value::Number(n)) => match n.as_f64() {
            Some(0.0) => Some(Value::Bool(false)),
            Some(1.0) => Some(Value::Bool(true)),
            _ => None,
        },
        _ => None,
    };
    match converted {
        Some(v) => {
            *value = v;
            true
        }
        None => false,
    }
}

fn format_number(n: &Value) -> String {
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => n.to_string(),
    }
}

/// Walks a value against a schema, collecting pydantic-style errors.
///
/// The walk is bounded whatever the client sends: it stops descending
/// below [`MAX_DEPTH`] and after [`MAX_STEPS`] schema nodes (a frame that
/// exhausts it gets the errors found so far, or a generic `value_error`).
struct Validator<'a> {
    defs: &'a Map<String, Value>,
    steps: std::cell::Cell<u32>,
}

/// Deepest `loc` the validator explains.
const MAX_DEPTH: usize = 32;
/// Schema nodes one frame's validation may visit.
const MAX_STEPS: u32 = 20_000;

impl Validator<'_> {
    fn value(
        &self,
        schema: &Value,
        value: &mut Value,
        name: Option<&str>,
        loc: &mut Vec<LocItem>,
        out: &mut Vec<ValidationError>,
    ) {
        let steps = self.steps.get();
        if steps == 0 || loc.len() > MAX_DEPTH {
            return;
        }
        self.steps.set(steps - 1);
        if let Value::Bool(accept) = schema {
            if !accept {
                out.push(error(
                    "extra_forbidden",
                    loc,
                    "Extra inputs are not permitted".into(),
                ));
            }
            return;
        }
        if let Some(target_name) = ref_name(schema) {
            if let Some(target) = self.defs.get(target_name) {
                self.value(target, value, Some(target_name), loc, out);
            }
            return;
        }
        if let Some(Value::Array(all)) = schema.get("allOf") {
            for s in all {
                self.value(s, value, name, loc, out);
            }
        }
        if let Some(Value::Array(branches)) = schema.get("anyOf").or_else(|| schema.get("oneOf")) {
            self.union(branches, value, name, loc, out);
            return;
        }
        if let Some(expected) = schema.get("const") {
            if expected != &*value {
                out.push(error(
                    "literal_error",
                    loc,
                    format!("Input should be {}", py_repr(expected)),
                ));
            }
            return;
        }
        if let Some(Value::Array(choices)) = schema.get("enum") {
            if !choices.contains(&*value) {
                out.push(error("literal_error", loc, literal_message(choices)));
            }
            return;
        }
        if !self.check_type(schema, value, name, loc, out) {
            return;
        }
        if value.is_number() {
            self.number(schema, value, loc, out);
        }
        match value {
            Value::String(s) => self.string(schema, s, loc, out),
            Value::Array(items) => self.array(schema, items, loc, out),
            Value::Object(map) => self.object(schema, map, name, loc, out, None),
            _ => {}
        }
    }

    /// Checks `type`, coercing lax inputs; returns whether the value's kind
    /// is acceptable.
    fn check_type(
        &self,
        schema: &Value,
        value: &mut Value,
        name: Option<&str>,
        loc: &[LocItem],
        out: &mut Vec<ValidationError>,
    ) -> bool {
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return true,
        };
        if types.iter().any(|t| json_type_matches(t, value)) {
            return true;
        }
        if types.iter().any(|t| coerce(t, value)) {
            return true;
        }
        let primary = types
            .iter()
            .copied()
            .find(|t| *t != "null")
            .unwrap_or("null");
        let (kind, msg) = match primary {
            "string" => ("string_type", "Input should be a valid string".to_owned()),
            "integer" if value.is_f64() => (
                "int_from_float",
                "Input should be a valid integer, got a number with a fractional part".to_owned(),
            ),
            "integer" if value.is_string() => (
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer".to_owned(),
            ),
            "integer" => ("int_type", "Input should be a valid integer".to_owned()),
            "number" if value.is_string() => (
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number".to_owned(),
            ),
            "number" => ("float_type", "Input should be a valid number".to_owned()),
            "boolean" if value.is_string() || value.is_number() => (
                "bool_parsing",
                "Input should be a valid boolean, unable to interpret input".to_owned(),
            ),
            "boolean" => ("bool_type", "Input should be a valid boolean".to_owned()),
            "array" => ("list_type", "Input should be a valid list".to_owned()),
            "null" => ("none_required", "Input should be None".to_owned()),
            "object" => match name.or_else(|| schema.get("title").and_then(Value::as_str)) {
                Some(n) if schema.get("properties").is_some() => (
                    "model_type",
                    format!("Input should be a valid dictionary or instance of {n}"),
                ),
                _ => ("dict_type", "Input should be a valid dictionary".to_owned()),
            },
            _ => return true,
        };
        out.push(error(kind, loc, msg));
        false
    }

    fn union(
        &self,
        branches: &[Value],
        value: &mut Value,
        name: Option<&str>,
        loc: &mut Vec<LocItem>,
        out: &mut Vec<ValidationError>,
    ) {
        let mut first_errors: Option<Vec<ValidationError>> = None;
        let all_literal = branches
            .iter()
            .all(|b| b.get("const").is_some() || b.get("enum").is_some());
        for branch in branches {
            let mut errors = Vec::new();
            let mut candidate = value.clone();
            self.value(branch, &mut candidate, name, loc, &mut errors);
            if errors.is_empty() {
                *value = candidate;
                return;
            }
            let is_null_branch = branch.get("type").and_then(Value::as_str) == Some("null");
            if first_errors.is_none() && !is_null_branch {
                first_errors = Some(errors);
            }
        }
        if all_literal {
            let choices: Vec<Value> = branches
                .iter()
                .flat_map(|b| match (b.get("const"), b.get("enum")) {
                    (Some(c), _) => vec![c.clone()],
                    (None, Some(Value::Array(e))) => e.clone(),
                    _ => Vec::new(),
                })
                .collect();
            out.push(error("literal_error", loc, literal_message(&choices)));
            return;
        }
        out.extend(
            first_errors.unwrap_or_else(|| {
                vec![error("none_required", loc, "Input should be None".into())]
            }),
        );
    }

    fn string(&self, schema: &Value, s: &str, loc: &[LocItem], out: &mut Vec<ValidationError>) {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            let unit = if min == 1 { "character" } else { "characters" };
            out.push(error(
                "string_too_short",
                loc,
                format!("String should have at least {min} {unit}"),
            ));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            let unit = if max == 1 { "character" } else { "characters" };
            out.push(error(
                "string_too_long",
                loc,
                format!("String should have at most {max} {unit}"),
            ));
        }
    }

    fn number(&self, schema: &Value, n: &Value, loc: &[LocItem], out: &mut Vec<ValidationError>) {
        let Some(x) = n.as_f64() else { return };
        /// JSON Schema keyword, pydantic type, wording, check.
        type Bound = (
            &'static str,
            &'static str,
            &'static str,
            fn(f64, f64) -> bool,
        );
        let bounds: [Bound; 4] = [
            (
                "minimum",
                "greater_than_equal",
                "greater than or equal to",
                |x, b| x >= b,
            ),
            (
                "maximum",
                "less_than_equal",
                "less than or equal to",
                |x, b| x <= b,
            ),
            (
                "exclusiveMinimum",
                "greater_than",
                "greater than",
                |x, b| x > b,
            ),
            ("exclusiveMaximum", "less_than", "less than", |x, b| x < b),
        ];
        for (keyword, kind, words, ok) in bounds {
            if let Some(bound) = schema.get(keyword)
                && let Some(b) = bound.as_f64()
                && !ok(x, b)
            {
                out.push(error(
                    kind,
                    loc,
                    format!("Input should be {words} {}", format_number(bound)),
                ));
            }
        }
    }

    fn array(
        &self,
        schema: &Value,
        items: &mut [Value],
        loc: &mut Vec<LocItem>,
        out: &mut Vec<ValidationError>,
    ) {
        let prefix = schema.get("prefixItems").and_then(Value::as_array);
        for (i, item) in items.iter_mut().enumerate() {
            let item_schema = prefix
                .and_then(|p| p.get(i))
                .or_else(|| schema.get("items"));
            if let Some(item_schema) = item_schema {
                loc.push(LocItem::Index(i));
                self.value(item_schema, item, None, loc, out);
                loc.pop();
            }
        }
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            out.push(error(
                "too_short",
                loc,
                format!(
                    "List should have at least {min} item{} after validation, not {}",
                    if min == 1 { "" } else { "s" },
                    items.len()
                ),
            ));
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && (items.len() as u64) > max
        {
            out.push(error(
                "too_long",
                loc,
                format!(
                    "List should have at most {max} item{} after validation, not {}",
                    if max == 1 { "" } else { "s" },
                    items.len()
                ),
            ));
        }
    }

    /// Validates an object's properties in declaration order; `skip` is a key
    /// already checked by the caller (the tag).
    fn object(
        &self,
        schema: &Value,
        map: &mut Map<String, Value>,
        _name: Option<&str>,
        loc: &mut Vec<LocItem>,
        out: &mut Vec<ValidationError>,
        skip: Option<&str>,
    ) {
        let empty = Map::new();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (key, prop_schema) in properties {
            if Some(key.as_str()) == skip {
                continue;
            }
            loc.push(LocItem::Key(key.clone()));
            match map.get_mut(key) {
                Some(v) => self.value(prop_schema, v, None, loc, out),
                None if required.contains(&key.as_str()) => {
                    out.push(error("missing", loc, "Field required".into()));
                }
                None => {}
            }
            loc.pop();
        }
        for key in required {
            if !properties.contains_key(key) && !map.contains_key(key) {
                loc.push(LocItem::Key(key.to_owned()));
                out.push(error("missing", loc, "Field required".into()));
                loc.pop();
            }
        }
        if let Some(extra) = schema.get("additionalProperties") {
            for (key, v) in map.iter_mut() {
                if properties.contains_key(key) || Some(key.as_str()) == skip {
                    continue;
                }
                loc.push(LocItem::Key(key.clone()));
                self.value(extra, v, None, loc, out);
                loc.pop();
            }
        }
    }
}

fn literal_message(choices: &[Value]) -> String {
    let parts: Vec<String> = choices.iter().map(py_repr).collect();
    let text = match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    };
    format!("Input should be {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemars::JsonSchema;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct MessagePayload {
        content: String,
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct SlowPayload {
        delay: f64,
        tag: String,
        #[serde(default)]
        tags: Vec<String>,
        count: Option<u8>,
        #[serde(default)]
        level: Level,
    }

    #[derive(Deserialize, JsonSchema, Default)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Level {
        #[default]
        Info,
        Warning,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Incoming {
        Echo(MessagePayload),
        Ping,
        Slow(SlowPayload),
    }

    fn schema() -> MessageSchema {
        MessageSchema::of::<Incoming>("action").unwrap()
    }

    fn check(frame: Value) -> Vec<Value> {
        let s = schema();
        let mut frame = frame;
        let obj = frame.as_object_mut().unwrap();
        let tag = match s.lookup_tag(obj) {
            TagLookup::Known(tag) => Ok(tag.to_owned()),
            TagLookup::Missing => Err(vec![s.missing_tag_error()]),
            TagLookup::Unknown(v) => Err(vec![s.unknown_tag_error(v, &[])]),
        };
        let errors = match tag {
            Ok(tag) => s.validate_variant(&tag, obj),
            Err(e) => e,
        };
        errors
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect()
    }

    #[test]
    fn tags_in_declaration_order() {
        assert_eq!(
            schema().tags().collect::<Vec<_>>(),
            ["echo", "ping", "slow"]
        );
    }

    #[test]
    fn pydantic_rows() {
        assert_eq!(
            check(json!({"action": "echo", "payload": {}})),
            [
                json!({"type": "missing", "loc": ["echo", "payload", "content"], "msg": "Field required"})
            ]
        );
        assert_eq!(
            check(json!({"action": "echo", "payload": {"content": 123}})),
            [
                json!({"type": "string_type", "loc": ["echo", "payload", "content"], "msg": "Input should be a valid string"})
            ]
        );
        assert_eq!(
            check(json!({"action": "echo", "payload": "x"})),
            [
                json!({"type": "model_type", "loc": ["echo", "payload"], "msg": "Input should be a valid dictionary or instance of MessagePayload"})
            ]
        );
        assert_eq!(
            check(json!({"action": "echo"})),
            [json!({"type": "missing", "loc": ["echo", "payload"], "msg": "Field required"})]
        );
        assert_eq!(
            check(json!({"action": "ping", "payload": {"x": 1}})),
            [
                json!({"type": "none_required", "loc": ["ping", "payload"], "msg": "Input should be None"})
            ]
        );
        assert!(check(json!({"action": "ping", "payload": null})).is_empty());
        assert_eq!(
            check(json!({"action": "nope", "payload": null})),
            [
                json!({"type": "union_tag_invalid", "loc": [], "msg": "Input tag 'nope' found using 'action' does not match any of the expected tags: 'echo', 'ping', 'slow'"})
            ]
        );
        assert_eq!(
            check(json!({"payload": null})),
            [
                json!({"type": "union_tag_not_found", "loc": [], "msg": "Unable to extract tag using discriminator 'action'"})
            ]
        );
    }

    #[test]
    fn non_string_tags_shown_as_python_prints_them() {
        let s = schema();
        for (tag, shown) in [
            (json!(5), "'5'"),
            (json!(null), "'None'"),
            (json!(["a"]), "'['a']'"),
            (json!(true), "'True'"),
        ] {
            let e = s.unknown_tag_error(&tag, &[]);
            assert!(
                e.msg.starts_with(&format!("Input tag {shown} found")),
                "{}",
                e.msg
            );
        }
    }

    #[test]
    fn all_problems_reported_in_field_order() {
        let errors = check(
            json!({"action": "slow", "payload": {"delay": "abc", "tags": ["a", 2], "count": 300, "level": "loud"}}),
        );
        let kinds: Vec<_> = errors
            .iter()
            .map(|e| (e["type"].as_str().unwrap(), e["loc"].clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("float_parsing", json!(["slow", "payload", "delay"])),
                ("missing", json!(["slow", "payload", "tag"])),
                ("string_type", json!(["slow", "payload", "tags", 1])),
                ("less_than_equal", json!(["slow", "payload", "count"])),
                ("literal_error", json!(["slow", "payload", "level"])),
            ]
        );
        assert_eq!(
            errors[3]["msg"],
            "Input should be less than or equal to 255"
        );
        assert_eq!(errors[4]["msg"], "Input should be 'info' or 'warning'");
    }

    #[test]
    fn lax_coercions_like_pydantic() {
        let s = schema();
        let mut frame = json!({"action": "slow", "payload": {"delay": "1.5", "tag": "t", "count": "5", "tags": []}});
        let obj = frame.as_object_mut().unwrap();
        assert!(s.validate_variant("slow", obj).is_empty());
        assert_eq!(frame["payload"]["delay"], json!(1.5));
        assert_eq!(frame["payload"]["count"], json!(5));
        let errors =
            check(json!({"action": "slow", "payload": {"delay": 1, "tag": "t", "count": "x"}}));
        assert_eq!(errors[0]["type"], "int_parsing");
        let errors = check(json!({"action": "slow", "payload": {"delay": 1, "tag": 5}}));
        assert_eq!(errors[0]["type"], "string_type");
    }

    #[test]
    fn validation_of_deep_recursive_input_is_bounded() {
        #[derive(Deserialize, JsonSchema)]
        #[allow(dead_code)]
        struct Node {
            name: String,
            children: Vec<Node>,
            next: Option<Box<Node>>,
        }
        #[derive(Deserialize, JsonSchema)]
        #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
        #[allow(dead_code)]
        enum Tree {
            Tree(Node),
        }
        let s = MessageSchema::of::<Tree>("action").unwrap();
        // 120 levels of `next`, each with a wrong `name` and a wide list of bad children.
        let mut node = json!({"name": 1, "children": vec![json!({"name": 2}); 50]});
        for _ in 0..120 {
            node = json!({"name": 1, "children": vec![json!({"name": 2}); 50], "next": node});
        }
        let mut frame = json!({"action": "tree", "payload": node});
        let errors = s.validate_variant("tree", frame.as_object_mut().unwrap());
        assert!(!errors.is_empty());
        assert!(errors.iter().all(|e| e.loc.len() <= MAX_DEPTH + 1));
    }

    #[test]
    fn untagged_type_is_a_config_error() {
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Plain {
            x: u8,
        }
        let err = MessageSchema::of::<Plain>("action").unwrap_err();
        assert!(matches!(err, ConfigError::NotTagged { .. }));
    }
}
