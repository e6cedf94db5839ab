//! Key case conversion compatible with pyhumps (what chanx's `CAMELIZE` uses).
//!
//! Only object keys change; values never do.

use serde_json::{Map, Value};

use crate::interned::{Registry, ThreadCache};

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

/// Calls `f` with the struct field name `field` camelized, converted
/// once per program (see [`interned`](crate::interned)): a struct's
/// fields are serialized with the same `&'static str`s frame after frame.
///
/// Measured on a camelizing endpoint's round trip: see
/// [`camelized_fields`] for the figure.
pub(crate) fn with_camelized_field<R>(field: &'static str, f: impl FnOnce(&str) -> R) -> R {
    // Every field, with separators or without: the lookup costs less than
    // looking for a separator (callgrind).
    let camelized = CAMELIZED_FIELD.with(|cache| {
        cache.get(field, &CAMELIZED_FIELDS, || {
            with_camelized(field, |camelized| camelized.into())
        })
    });
    f(camelized)
}

static CAMELIZED_FIELDS: Registry<str> = Registry::new();
static CAMELIZED_STRUCTS: Registry<[(&'static str, Box<str>)]> = Registry::new();

thread_local! {
    static CAMELIZED_FIELD: ThreadCache<str> = const { ThreadCache::new() };
    static CAMELIZED_STRUCT: ThreadCache<[(&'static str, Box<str>)]> =
        const { ThreadCache::new() };
}

/// Whether decamelizing `field` camelized gives `field` back: true for
/// plain snake case (lowercase ASCII letters and digits, words joined by
/// single underscores, every word after the first starting with two
/// letters). The second letter matters: decamelizing splits before a
/// capital that a small letter follows, whatever precedes it, but not
/// before one between capitals or before a digit (`a_b_c2` camelizes to
/// `aBC2`, which decamelizes to `a_bc2`), and leaves a key without small
/// letters as it is (`0_a` camelizes to `0A`).
pub(crate) fn decamelizes_back(field: &str) -> bool {
    let field = field.as_bytes();
    if field.first().is_none_or(|&b| b == b'_') {
        return false;
    }
    let mut i = 0;
    while i < field.len() {
        match field[i] {
            b'_' => {
                let starts_with_two_letters = field
                    .get(i + 1..i + 3)
                    .is_some_and(|word| word.iter().all(u8::is_ascii_lowercase));
                if !starts_with_two_letters {
                    return false;
                }
            }
            b if b.is_ascii_lowercase() || b.is_ascii_digit() => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// A struct's fields that [decamelize back](decamelizes_back), each with
/// its camelized form: a key equal to a camelized form decamelizes to its
/// field, so a decoder can take the field without converting the key.
pub(crate) type CamelizedFields = &'static [(&'static str, Box<str>)];

/// The [`CamelizedFields`] of a struct's `fields`, computed once per
/// program (see [`interned`](crate::interned)).
///
/// With it and [`with_camelized_field`], a camelizing endpoint's round
/// trip went from 14,335 to 11,790 instructions against plain serde_json's
/// 9,258 (`examples/echo_cost.rs camel` under callgrind): its keys were
/// converted one by one on every frame.
pub(crate) fn camelized_fields(fields: &'static [&'static str]) -> CamelizedFields {
    CAMELIZED_STRUCT.with(|cache| {
        cache.get(fields, &CAMELIZED_STRUCTS, || {
            fields
                .iter()
                .filter(|field| decamelizes_back(field))
                .map(|&field| (field, camelize(field).into_boxed_str()))
                .collect()
        })
    })
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

    proptest! {
        #[test]
        fn a_field_said_to_decamelize_back_does(
            field in prop_oneof![
                "[a-z0-9_]{0,12}",
                "[a-zA-Z0-9_-]{0,8}",
                prop::collection::vec("[a-z0-9]{1,3}", 1..5).prop_map(|words| words.join("_")),
            ],
        ) {
            if decamelizes_back(&field) {
                prop_assert_eq!(decamelize(&camelize(&field)), field);
            }
        }

        #[test]
        fn plain_snake_fields_decamelize_back(words in prop::collection::vec("[a-z]{2}[a-z0-9]{0,4}", 1..4)) {
            prop_assert!(decamelizes_back(&words.join("_")));
        }
    }

    #[test]
    fn cached_struct_fields_are_those_that_decamelize_back() {
        static FIELDS: [&str; 4] = ["order_id", "tags", "a_b", "Upper"];
        for _ in 0..2 {
            let camelized = camelized_fields(&FIELDS);
            assert_eq!(
                camelized,
                [("order_id", "orderId".into()), ("tags", "tags".into())]
            );
        }
    }

    #[test]
    fn cached_field_camelization_agrees_with_camelize() {
        for field in [
            "order_id",
            "line_items",
            "tags",
            "a_b_c",
            "trailing_",
            "kebab-case",
        ] {
            for _ in 0..2 {
                assert_eq!(with_camelized_field(field, str::to_owned), camelize(field));
            }
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
