//! Which parameter names are accepted.

/// Identifier check in the spirit of Python's `str.isidentifier()` (Django
/// passes parameters as keyword arguments, so their names are identifiers).
pub(super) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::is_identifier;

    #[test]
    fn identifiers() {
        for good in ["a", "_", "room_id", "café", "x1", "комната"] {
            assert!(is_identifier(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "a.b", "a[0]", "a b"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
