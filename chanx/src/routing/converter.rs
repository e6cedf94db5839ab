//! Django's path converters and the regex each one stands for.

/// Regex of Django's `str` converter.
pub(super) const STR_REGEX: &str = "[^/]+";
/// Regex of Django's `int` converter.
pub(super) const INT_REGEX: &str = "[0-9]+";
/// Regex of Django's `slug` converter.
pub(super) const SLUG_REGEX: &str = "[-a-zA-Z0-9_]+";
/// Regex of Django's `uuid` converter.
pub(super) const UUID_REGEX: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
/// Regex of Django's `path` converter.
pub(super) const PATH_REGEX: &str = ".+";

/// Regex of the converter called `converter`, `None` if there is no such
/// converter.
pub(super) fn converter_regex(converter: &str) -> Option<&'static str> {
    match converter {
        "str" => Some(STR_REGEX),
        "int" => Some(INT_REGEX),
        "slug" => Some(SLUG_REGEX),
        "uuid" => Some(UUID_REGEX),
        "path" => Some(PATH_REGEX),
        _ => None,
    }
}
