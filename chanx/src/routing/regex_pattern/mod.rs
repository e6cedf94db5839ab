//! Compiling `re_path` patterns (regular expressions with named groups) into
//! segments, by analysing them with `regex-syntax`.

mod friendly;
mod literal_prefix;
mod named_groups;
mod parse;

use regex::Regex;

use super::error::RouteError;
use super::identifier::is_identifier;
use super::segment::{Piece, Segment};

/// Compiles a regex segment: strips its anchors, parses it, turns its named
/// groups into parameters and wraps it in a non-capturing group so that
/// alternation and inline flags stay local to it.
///
/// Syntax errors are reported here; errors that only show when the regex is
/// translated and compiled (an unknown Unicode class, a size limit) are
/// reported when the full route is compiled.
pub(super) fn compile_regex_segment(raw: &str) -> Result<Segment, RouteError> {
    let stripped = strip_anchors(raw);
    let parsed =
        parse::parse(stripped).map_err(|error| reject(raw, stripped, error.to_string()))?;
    let groups = named_groups::named_groups(&parsed);
    // regex-syntax also accepts `.`, `[` and `]` in group names; parameters
    // are identifiers (Django passes them as keyword arguments).
    if let Some(group) = groups.iter().find(|group| !is_identifier(&group.name)) {
        let reason = format!("group name {:?} is not a valid identifier", group.name);
        return Err(reject(raw, stripped, reason));
    }
    // A parsed pattern has balanced groups and classes, so the wrapped
    // segment cannot pair brackets with its neighbours.
    let mut pieces = vec![Piece::Text("(?:".to_owned())];
    pieces.extend(named_groups::pieces(stripped, &groups));
    pieces.push(Piece::Text(")".to_owned()));
    let (prefix, literal) = literal_prefix::literal_prefix(&parsed.ast);
    Ok(Segment {
        raw: raw.to_owned(),
        pattern: stripped.to_owned(),
        friendly: friendly::friendly_form(&parsed),
        pieces,
        prefix,
        literal,
    })
}

/// The error for a rejected segment: the `regex` crate's own diagnostic when
/// it has one, else [`RouteError::Malformed`] with `reason`.
fn reject(raw: &str, stripped: &str, reason: String) -> RouteError {
    match Regex::new(stripped) {
        Err(source) => RouteError::InvalidRegex {
            pattern: raw.to_owned(),
            source,
        },
        Ok(_) => RouteError::malformed(raw, reason),
    }
}

/// Strips one leading `^` and one trailing unescaped `$`.
///
/// Done on the text, before parsing, as the route table always has: the
/// stripped text is what [`RouteInfo::pattern`](super::RouteInfo::pattern)
/// shows, and `^a|b` loses its `^` although regex-syntax would place it in the
/// first alternative only. An odd run of backslashes before the `$` is all
/// that tells `\$` (a literal) from `$`.
fn strip_anchors(raw: &str) -> &str {
    let s = raw.strip_prefix('^').unwrap_or(raw);
    match s.strip_suffix('$') {
        Some(body) => {
            let backslashes = body.bytes().rev().take_while(|&b| b == b'\\').count();
            if backslashes % 2 == 0 { body } else { s }
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::compile_regex_segment;
    use crate::routing::test_support::{err, hit, ps, table};
    use crate::routing::{Route, RouteError, re_include, re_path};

    #[test]
    fn regex_groups_and_anchors() {
        let t = table([
            re_path(r"^r/(?P<year>[0-9]{4})/(?<slug>[a-z]+)/$", 1),
            re_path(r"^opt/(?:(?P<page>\d+)/)?$", 2),
            re_path(r"^alt/(?P<x>a|b)/$", 3),
            re_path(r"x|y", 4),
            re_path(r"dollar\$", 5),
        ]);
        assert_eq!(
            hit(&t, "/r/2024/news/"),
            (1, ps(&[("year", "2024"), ("slug", "news")]))
        );
        assert!(t.resolve("/r/24/news/").is_none());
        assert_eq!(hit(&t, "/opt/3/"), (2, ps(&[("page", "3")])));
        let r = t.resolve("/opt/").expect("optional group");
        assert!(r.params.is_empty(), "non-participating group is omitted");
        assert_eq!(hit(&t, "/alt/b/"), (3, ps(&[("x", "b")])));
        // Alternation stays inside its segment and is still fully anchored.
        assert_eq!(t.resolve("/x").map(|r| *r.target), Some(4));
        assert!(t.resolve("/xy").is_none());
        assert_eq!(t.resolve("/dollar$").map(|r| *r.target), Some(5));
    }

    #[test]
    fn scanner_handles_classes_and_escapes() {
        let t = table([re_path(r"c/(?P<v>[()\]]+)/(?P<w>[^]x]+)/\(lit\)", 1)]);
        let r = t.resolve("/c/(])/yy/(lit)").expect("classes");
        assert_eq!(r.params.get("v"), Some("(])"));
        assert_eq!(r.params.get("w"), Some("yy"));
        let info = t.routes().next().expect("one route");
        assert_eq!(info.friendly_path, "c/:v/:w/(lit)");
        assert_eq!(info.params[0].pattern, r"[()\]]+");
        let t = table([re_path(r"k/(?P<v>[[:alpha:]]+)/", 1)]);
        assert!(t.resolve("/k/abc/").is_some());
    }

    #[test]
    fn literal_prefix_screen() {
        let seg = |raw: &str| {
            let seg = compile_regex_segment(raw).expect(raw);
            (seg.prefix, seg.literal)
        };
        assert_eq!(seg(r"^chat\.v1/(?P<r>\w+)/$"), ("chat.v1/".into(), false));
        assert_eq!(seg(r"^abc/$"), ("abc/".into(), true));
        assert_eq!(seg(r"abc?"), ("ab".into(), false));
        assert_eq!(seg(r"ab{2}"), ("a".into(), false));
        assert_eq!(seg(r"ab|cd"), ("".into(), false));
        assert_eq!(seg(r"(?i)ab"), ("".into(), false));
        assert_eq!(seg(r"a\<b"), ("a".into(), false));
        assert_eq!(seg(r"a(b|c)d|e"), ("".into(), false));
    }

    #[test]
    fn error_invalid_regex() {
        let e = err([re_path(r"chat/(?P<id>\w+/", 1)]);
        assert!(
            matches!(&e, RouteError::InvalidRegex { pattern, .. } if pattern == r"chat/(?P<id>\w+/")
        );
        assert!(e.to_string().contains(r"chat/(?P<id>\w+/"), "{e}");
        let e = err([re_path(r"a[b", 1)]);
        assert!(matches!(&e, RouteError::InvalidRegex { pattern, .. } if pattern == "a[b"));
        let e = err([re_path(r"a{2,1}", 1)]);
        assert!(matches!(&e, RouteError::InvalidRegex { pattern, .. } if pattern == "a{2,1}"));
        let e = err([re_path(r"a)", 1)]);
        assert!(matches!(&e, RouteError::InvalidRegex { pattern, .. } if pattern == "a)"));
        // A broken include prefix cannot be "repaired" by the nested pattern.
        let e = err([re_include(r"^a/(", [re_path(r"b)", 1)])]);
        assert!(matches!(&e, RouteError::InvalidRegex { pattern, .. } if pattern == "^a/("));
        // An include prefix without routes is still validated.
        let e = err([re_include(r"x{2,1}/", Vec::<Route<i32>>::new())]);
        assert!(matches!(&e, RouteError::InvalidRegex { pattern, .. } if pattern == "x{2,1}/"));
        // Lookbehind is reported by the regex crate, not as a bad group name.
        let e = err([re_path(r"(?<=a)b", 1)]);
        assert!(matches!(e, RouteError::InvalidRegex { .. }));
        // Parsed, but not translatable: reported when the route is compiled.
        let e = err([re_include(r"a/", [re_path(r"\p{NoSuchClass}", 1)])]);
        assert!(
            matches!(&e, RouteError::InvalidRegex { pattern, .. } if pattern == r"\p{NoSuchClass}"),
            "{e:?}"
        );
    }

    #[test]
    fn error_malformed() {
        // Bad group names are rejected by the regex crate first, if it can.
        let e = err([re_path(r"(?P<1a>x)", 1)]);
        assert!(
            matches!(&e, RouteError::InvalidRegex { pattern, .. } if pattern == "(?P<1a>x)"),
            "{e:?}"
        );
        // Accepted by the regex crate, but not an identifier.
        let e = err([re_path(r"(?P<a.b>x)", 1)]);
        assert!(
            matches!(&e, RouteError::Malformed { pattern, .. } if pattern == "(?P<a.b>x)"),
            "{e:?}"
        );
        assert!(e.to_string().contains(r#"group name "a.b""#), "{e}");
    }
}
