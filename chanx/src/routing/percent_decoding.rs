//! Percent-decoding of request paths before matching.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// Percent-decodes a URL path. `None` on a malformed escape or invalid UTF-8.
pub(super) fn decode_path(path: &str) -> Option<Cow<'_, str>> {
    if has_malformed_escape(path) {
        return None;
    }
    percent_decode_str(path).decode_utf8().ok()
}

/// A `%` not followed by two hex digits. `percent-encoding` passes such text
/// through unchanged (as browsers do), but a path that is not a valid
/// encoding has always matched no route here, so it is checked first.
fn has_malformed_escape(path: &str) -> bool {
    path.split('%').skip(1).any(|after| {
        !after
            .as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
}

#[cfg(test)]
mod tests {
    use super::decode_path;
    use crate::routing::path;
    use crate::routing::test_support::table;

    #[test]
    fn decode_path_rules() {
        assert_eq!(decode_path("a%20b%2Fc%c3%a9").as_deref(), Some("a b/cé"));
        assert_eq!(decode_path("a+b").as_deref(), Some("a+b"));
        assert_eq!(decode_path("").as_deref(), Some(""));
        for bad in ["%", "%2", "%zz", "a%2g", "%%41", "%FF", "%C3"] {
            assert_eq!(decode_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn percent_decoding() {
        let t = table([path("s/<str:v>/", 1), path("p/<path:v>/", 2)]);
        let r = t.resolve("/s/hello%20world/").expect("decoded");
        assert_eq!(r.params.get("v"), Some("hello world"));
        let r = t.resolve("/s/a+b%2b/").expect("plus kept");
        assert_eq!(r.params.get("v"), Some("a+b+"));
        // The whole path is decoded before matching: %2F is a real separator.
        assert!(t.resolve("/s/a%2Fb/").is_none());
        let r = t.resolve("/p/a%2Fb/").expect("path converter");
        assert_eq!(r.params.get("v"), Some("a/b"));
        // Encoded literal parts match too.
        assert!(t.resolve("/%73/x/").is_some());
        // Bad escapes and invalid UTF-8 never match.
        for bad in ["/s/%zz/", "/s/%2/", "/s/abc%", "/s/%FF/", "/s/%C3/"] {
            assert!(t.resolve(bad).is_none(), "{bad}");
        }
    }
}
