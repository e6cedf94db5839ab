//! Python's `str()` and `repr()` of decoded JSON values: what pydantic and
//! DRF print when they quote a client's input in an error message.

use serde_json::{Map, Number, Value};

/// Python's `str()` of a decoded JSON value: strings bare, the rest as `repr()`.
pub fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a decoded JSON value.
///
/// ```
/// use chanx_proto::python::py_repr;
/// assert_eq!(py_repr(&serde_json::json!(["a", 1e20, null, true])), "['a', 1e+20, None, True]");
/// assert_eq!(py_repr(&serde_json::json!("it's")), "\"it's\"");
/// ```
pub fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => python_number(n),
        Value::String(s) => python_string_repr(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => python_dict_repr(map),
    }
}

fn python_dict_repr(map: &Map<String, Value>) -> String {
    let entries: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}: {}", python_string_repr(k), py_repr(v)))
        .collect();
    format!("{{{}}}", entries.join(", "))
}

fn python_string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() && u32::from(c) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str()` of a JSON number: ints as-is, floats like `1.5` or `1e+20`.
fn python_number(n: &Number) -> String {
    if n.is_f64() {
        n.as_f64().map_or_else(|| n.to_string(), python_float)
    } else {
        n.to_string()
    }
}

/// Rust's `{:?}` already matches Python's shortest round-trip `repr` and its
/// switch to exponent notation; only the exponent spelling differs.
fn python_float(f: f64) -> String {
    let text = format!("{f:?}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(digits) => ('-', digits),
                None => ('+', exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}
