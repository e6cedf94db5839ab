//! Key case conversion compatible with pyhumps (what chanx's `CAMELIZE` uses).
//!
//! Only object keys change; values never do.

use serde_json::{Map, Value};

/// `snake_case` → `camelCase` the way pyhumps does it: a run of `_`/`-`
/// between two other characters is removed and the following character is
/// upper-cased; leading and trailing underscores are kept.
///
/// ```
/// use chanx_proto::case::camelize;
/// assert_eq!(camelize("status_code"), "statusCode");
/// assert_eq!(camelize("field_1"), "field1");
/// assert_eq!(camelize("a__b"), "aB");
/// assert_eq!(camelize("_private"), "_private");
/// ```
pub fn camelize(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let is_sep = |c: char| c == '_' || c == '-';
    let mut out = String::with_capacity(key.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_sep(c) && i > 0 && !is_sep(chars[i - 1]) {
            let mut j = i;
            while j < chars.len() && is_sep(chars[j]) {
                j += 1;
            }
            if j < chars.len() {
                out.extend(chars[j].to_uppercase());
                i = j + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// `camelCase` → `snake_case` the way pyhumps does it: all-caps keys are left
/// alone, abbreviations are kept together (`HTTPHeader` → `http_header`).
///
/// ```
/// use chanx_proto::case::decamelize;
/// assert_eq!(decamelize("statusCode"), "status_code");
/// assert_eq!(decamelize("HTTPHeader"), "http_header");
/// assert_eq!(decamelize("ABC"), "ABC");
/// assert_eq!(decamelize("already_snake"), "already_snake");
/// ```
pub fn decamelize(key: &str) -> String {
    let has_lower = key.chars().any(char::is_lowercase);
    let has_upper = key.chars().any(char::is_uppercase);
    if !has_upper || !has_lower {
        return key.to_owned();
    }
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::with_capacity(key.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_uppercase() && next_is_lower)
            {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

// The `with_*` helpers repeat `camelize`'s and `decamelize`'s rules on
// ASCII bytes, on purpose: written once over chars into a stack buffer
// (`fmt::Write`), a camelizing endpoint's round trip cost 20,111
// instructions against 14,356 with these (`examples/echo_cost.rs camel`
// under callgrind). A property test holds them to the char versions.

/// Longest key the `with_*` helpers convert on the stack.
const STACK_KEY: usize = 64;

/// Calls `f` with `key` camelized (see [`camelize`]); a short ASCII key
/// is converted on the stack, without allocating (the codec does this for
/// every key of every frame on a camelizing endpoint).
pub(crate) fn with_camelized<R>(key: &str, f: impl FnOnce(&str) -> R) -> R {
    let is_sep = |b: u8| b == b'_' || b == b'-';
    if !key.bytes().any(is_sep) {
        return f(key);
    }
    if !key.is_ascii() || key.len() > STACK_KEY {
        return f(&camelize(key));
    }
    let bytes = key.as_bytes();
    let mut out = [0u8; STACK_KEY];
    let mut len = 0;
    // A leading run of separators is kept, and so is a trailing one.
    let mut previous_is_sep = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if is_sep(b) && !previous_is_sep {
            let next = (i..bytes.len()).find(|&j| !is_sep(bytes[j]));
            if let Some(next) = next {
                out[len] = bytes[next].to_ascii_uppercase();
                len += 1;
                i = next + 1;
                previous_is_sep = false;
                continue;
            }
        }
        out[len] = b;
        len += 1;
        previous_is_sep = is_sep(b);
        i += 1;
    }
    match std::str::from_utf8(&out[..len]) {
        Ok(camelized) => f(camelized),
        Err(_) => f(&camelize(key)),
    }
}

/// Calls `f` with `key` decamelized (see [`decamelize`]); a short ASCII
/// key is converted on the stack, without allocating.
pub(crate) fn with_decamelized<R>(key: &str, f: impl FnOnce(&str) -> R) -> R {
    let has_upper = key.bytes().any(|b| b.is_ascii_uppercase());
    if key.is_ascii() && (!has_upper || !key.bytes().any(|b| b.is_ascii_lowercase())) {
        return f(key);
    }
    if !key.is_ascii() || key.len() > STACK_KEY {
        return f(&decamelize(key));
    }
    let bytes = key.as_bytes();
    let mut out = [0u8; 2 * STACK_KEY];
    let mut len = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_uppercase() && i > 0 {
            let previous = bytes[i - 1];
            let next_is_lower = bytes.get(i + 1).is_some_and(u8::is_ascii_lowercase);
            if previous.is_ascii_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_ascii_uppercase() && next_is_lower)
            {
                out[len] = b'_';
                len += 1;
            }
        }
        out[len] = b.to_ascii_lowercase();
        len += 1;
    }
    match std::str::from_utf8(&out[..len]) {
        Ok(decamelized) => f(decamelized),
        Err(_) => f(&decamelize(key)),
    }
}

/// Applies `convert` to every object key of `value`, recursively.
pub fn convert_keys(value: Value, convert: fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (convert(&k), convert_keys(v, convert)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| convert_keys(v, convert))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn stack_conversions_agree(key in prop_oneof!["[a-zA-Z0-9_-]{0,12}", "[a-zA-Zé_]{0,6}", "[a-z_]{60,70}"]) {
            prop_assert_eq!(with_camelized(&key, str::to_owned), camelize(&key));
            prop_assert_eq!(with_decamelized(&key, str::to_owned), decamelize(&key));
        }
    }

    #[test]
    fn pyhumps_quirks() {
        assert_eq!(camelize("is_mine"), "isMine");
        assert_eq!(camelize("trailing_"), "trailing_");
        assert_eq!(camelize("already"), "already");
        assert_eq!(camelize("kebab-case"), "kebabCase");
        assert_eq!(decamelize("isCurrent"), "is_current");
        assert_eq!(decamelize("field1"), "field1");
        assert_eq!(decamelize("Pascal"), "pascal");
        assert_eq!(decamelize("myHTTPHeader"), "my_http_header");
    }

    #[test]
    fn converts_nested_keys_not_values() {
        let v = serde_json::json!({"status_code": 1, "data": [{"inner_key": "snake_value"}]});
        let c = convert_keys(v, camelize);
        assert_eq!(
            c,
            serde_json::json!({"statusCode": 1, "data": [{"innerKey": "snake_value"}]})
        );
        assert_eq!(
            convert_keys(c, decamelize),
            serde_json::json!({"status_code": 1, "data": [{"inner_key": "snake_value"}]})
        );
    }
}
