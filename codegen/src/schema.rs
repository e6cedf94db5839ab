//! JSON Schema (as schemars and the AsyncAPI document write it) to
//! TypeScript types.

use serde_json::{Map, Value};

/// The TypeScript type of a JSON Schema: objects with their required and
/// optional properties, `const` and `enum` as literal types, `oneOf` /
/// `anyOf` as unions, `allOf` as intersections, arrays and tuples, and
/// `#/components/schemas/X` references by name. What it cannot express is
/// `unknown`.
///
/// ```
/// use serde_json::json;
/// let schema = json!({"type": "object", "required": ["id"], "properties": {
///     "id": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}},
///     "mood": {"enum": ["happy", "sad"]}}});
/// assert_eq!(
///     chanx_codegen::ts_type(&schema),
///     r#"{ id: number; tags?: string[]; mood?: "happy" | "sad" }"#
/// );
/// ```
pub fn ts_type(schema: &Value) -> String {
    match schema {
        Value::Bool(true) => "unknown".to_owned(),
        Value::Bool(false) => "never".to_owned(),
        Value::Object(schema) => object_schema_type(schema),
        _ => "unknown".to_owned(),
    }
}

fn object_schema_type(schema: &Map<String, Value>) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference
            .rsplit_once('/')
            .map_or_else(|| "unknown".to_owned(), |(_, name)| type_name(name));
    }
    if let Some(constant) = schema.get("const") {
        return literal(constant);
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        return union(values.iter().map(literal).collect());
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            return union(branches.iter().map(ts_type).collect());
        }
    }
    if let Some(Value::Array(parts)) = schema.get("allOf") {
        let parts: Vec<String> = parts.iter().map(|p| wrap(ts_type(p))).collect();
        return if parts.is_empty() {
            "unknown".to_owned()
        } else {
            parts.join(" & ")
        };
    }
    match schema.get("type") {
        Some(Value::String(kind)) => typed(kind, schema),
        Some(Value::Array(kinds)) => union(
            kinds
                .iter()
                .filter_map(Value::as_str)
                .map(|kind| typed(kind, schema))
                .collect(),
        ),
        _ if schema.contains_key("properties") => typed("object", schema),
        _ => "unknown".to_owned(),
    }
}

fn typed(kind: &str, schema: &Map<String, Value>) -> String {
    match kind {
        "string" => "string".to_owned(),
        "integer" | "number" => "number".to_owned(),
        "boolean" => "boolean".to_owned(),
        "null" => "null".to_owned(),
        "array" => array_type(schema),
        "object" => object_type(schema),
        _ => "unknown".to_owned(),
    }
}

fn array_type(schema: &Map<String, Value>) -> String {
    if let Some(Value::Array(prefix)) = schema.get("prefixItems") {
        let items: Vec<String> = prefix.iter().map(ts_type).collect();
        return format!("[{}]", items.join(", "));
    }
    match schema.get("items") {
        Some(Value::Array(tuple)) => {
            let items: Vec<String> = tuple.iter().map(ts_type).collect();
            format!("[{}]", items.join(", "))
        }
        Some(items) => format!("{}[]", wrap(ts_type(items))),
        None => "unknown[]".to_owned(),
    }
}

fn object_type(schema: &Map<String, Value>) -> String {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, property)| {
            let optional = if required.contains(&name.as_str()) {
                ""
            } else {
                "?"
            };
            format!("{}{optional}: {}", property_name(name), ts_type(property))
        })
        .collect();
    match schema.get("additionalProperties") {
        Some(Value::Bool(false)) => {}
        Some(extra @ Value::Object(_)) => {
            fields.push(format!("[key: string]: {}", ts_type(extra)));
        }
        _ if fields.is_empty() => fields.push("[key: string]: unknown".to_owned()),
        _ => {}
    }
    if fields.is_empty() {
        "Record<string, never>".to_owned()
    } else {
        format!("{{ {} }}", fields.join("; "))
    }
}

fn literal(value: &Value) -> String {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => value.to_string(),
        _ => "unknown".to_owned(),
    }
}

fn union(members: Vec<String>) -> String {
    let mut unique: Vec<String> = Vec::with_capacity(members.len());
    for member in members {
        if !unique.contains(&member) {
            unique.push(member);
        }
    }
    match unique.len() {
        0 => "never".to_owned(),
        1 => unique.remove(0),
        _ => unique.into_iter().map(wrap).collect::<Vec<_>>().join(" | "),
    }
}

/// Parenthesizes a union or intersection used inside another type (only
/// one at the top level: `{ a: string | null }[]` needs none).
fn wrap(ty: String) -> String {
    let mut depth = 0usize;
    let mut top_level_operator = false;
    let bytes = ty.as_bytes();
    for (i, byte) in bytes.iter().enumerate() {
        match byte {
            b'{' | b'(' | b'[' | b'<' => depth += 1,
            b'}' | b')' | b']' | b'>' => depth = depth.saturating_sub(1),
            b'|' | b'&' if depth == 0 && i > 0 && bytes[i - 1] == b' ' => top_level_operator = true,
            _ => {}
        }
    }
    if top_level_operator {
        format!("({ty})")
    } else {
        ty
    }
}

/// A TypeScript identifier for a schema or channel name.
pub(crate) fn type_name(name: &str) -> String {
    let mut ident: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '$' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident.insert(0, '_');
    }
    ident
}

/// A property name, quoted unless it is a plain identifier.
pub(crate) fn property_name(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain {
        name.to_owned()
    } else {
        Value::String(name.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn schemas_become_types() {
        let cases = [
            (json!({"type": "null"}), "null"),
            (json!({"type": ["string", "null"]}), "string | null"),
            (
                json!({"$ref": "#/components/schemas/Chat_Payload"}),
                "Chat_Payload",
            ),
            (
                json!({"oneOf": [{"type": "string"}, {"type": "integer"}]}),
                "string | number",
            ),
            (
                json!({"type": "array", "items": {"type": ["string", "integer"]}}),
                "(string | number)[]",
            ),
            (
                json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}]}),
                "[string, boolean]",
            ),
            (json!({"type": "object"}), "{ [key: string]: unknown }"),
            (
                json!({"type": "object", "additionalProperties": {"type": "integer"}}),
                "{ [key: string]: number }",
            ),
            (
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                "Record<string, never>",
            ),
            (
                json!({"properties": {"a-b": {"const": 1}}, "required": ["a-b"]}),
                r#"{ "a-b": 1 }"#,
            ),
            (
                json!({"allOf": [{"$ref": "#/x/A"}, {"oneOf": [{"$ref": "#/x/B"}, {"$ref": "#/x/C"}]}]}),
                "A & (B | C)",
            ),
            (json!({"oneOf": []}), "never"),
            (
                json!({"type": "array", "items": {"type": "object", "required": ["a"], "properties": {"a": {"type": ["string", "null"]}}}}),
                "{ a: string | null }[]",
            ),
            (
                json!({"oneOf": [{"type": "array", "items": {"type": "object", "properties": {"a": {"type": ["string", "null"]}}}}, {"type": "null"}]}),
                "{ a?: string | null }[] | null",
            ),
            (json!(true), "unknown"),
            (json!({"description": "anything"}), "unknown"),
        ];
        for (schema, expected) in cases {
            assert_eq!(ts_type(&schema), expected, "{schema}");
        }
    }

    #[test]
    fn names_are_identifiers() {
        assert_eq!(type_name("Chat_Payload"), "Chat_Payload");
        assert_eq!(type_name("my-endpoint.v2"), "my_endpoint_v2");
        assert_eq!(type_name("2fa"), "_2fa");
        assert_eq!(property_name("room_id"), "room_id");
        assert_eq!(property_name("room-id"), r#""room-id""#);
    }
}
