//! Compiling Django `path()` patterns (`chat/<int:room>/`) into segments.

use super::converter::converter_regex;
use super::error::RouteError;
use super::identifier::is_identifier;
use super::segment::{Piece, Segment};

/// Compiles a pattern in Django `path()` syntax: literal text (escaped) with
/// `<converter:name>` or `<name>` parameters.
pub(super) fn compile_path_segment(raw: &str) -> Result<Segment, RouteError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut friendly = String::new();
    let mut rest = raw;
    let mut prefix = None;
    while let Some(at) = rest.find(['<', '>']) {
        let (literal, tail) = rest.split_at(at);
        text.push_str(&regex::escape(literal));
        friendly.push_str(literal);
        if prefix.is_none() {
            prefix = Some(friendly.clone());
        }
        let Some(body) = tail.strip_prefix('<') else {
            return Err(RouteError::malformed(raw, "'>' without a matching '<'"));
        };
        let Some(close) = body.find('>') else {
            return Err(RouteError::malformed(raw, "'<' without a closing '>'"));
        };
        let (inner, after) = body.split_at(close);
        if inner.contains('<') {
            return Err(RouteError::malformed(raw, "nested '<' inside a parameter"));
        }
        if inner.chars().any(char::is_whitespace) {
            return Err(RouteError::malformed(
                raw,
                "whitespace inside angle brackets <...>",
            ));
        }
        let (converter, name) = inner.split_once(':').unwrap_or(("str", inner));
        if !is_identifier(name) {
            return Err(RouteError::malformed(
                raw,
                format!("parameter name {name:?} in <{inner}> is not a valid identifier"),
            ));
        }
        let Some(param_regex) = converter_regex(converter) else {
            return Err(RouteError::UnknownConverter {
                pattern: raw.to_owned(),
                converter: converter.to_owned(),
            });
        };
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(Piece::Open {
            name: name.to_owned(),
            inner: param_regex.to_owned(),
        });
        text.push_str(param_regex);
        text.push(')');
        friendly.push(':');
        friendly.push_str(name);
        rest = after.strip_prefix('>').unwrap_or(after);
    }
    text.push_str(&regex::escape(rest));
    friendly.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    let literal = prefix.is_none();
    Ok(Segment {
        raw: raw.to_owned(),
        pattern: raw.to_owned(),
        prefix: prefix.unwrap_or_else(|| friendly.clone()),
        literal,
        friendly,
        pieces,
    })
}

#[cfg(test)]
mod tests {
    use super::compile_path_segment;
    use crate::routing::test_support::{err, hit, ps, table};
    use crate::routing::{RouteError, include, path};

    #[test]
    fn converters() {
        let t = table([
            path("s/<str:v>/", 1),
            path("i/<int:v>/", 2),
            path("g/<slug:v>/", 3),
            path("u/<uuid:v>/", 4),
            path("p/<path:v>", 5),
            path("d/<v>/", 6),
        ]);
        assert_eq!(hit(&t, "/s/hello world/"), (1, ps(&[("v", "hello world")])));
        assert!(t.resolve("/s/a/b/").is_none());
        assert_eq!(hit(&t, "/i/0042/"), (2, ps(&[("v", "0042")])));
        assert!(t.resolve("/i/-1/").is_none());
        assert!(t.resolve("/i/12a/").is_none());
        assert_eq!(hit(&t, "/g/my-slug_1/"), (3, ps(&[("v", "my-slug_1")])));
        assert!(t.resolve("/g/not.a.slug/").is_none());
        let uuid = "123e4567-e89b-12d3-a456-426614174000";
        assert_eq!(hit(&t, &format!("/u/{uuid}/")), (4, ps(&[("v", uuid)])));
        assert!(t.resolve(&format!("/u/{}/", uuid.to_uppercase())).is_none());
        assert!(t.resolve("/u/123e4567/").is_none());
        assert_eq!(hit(&t, "/p/a/b/c.txt"), (5, ps(&[("v", "a/b/c.txt")])));
        assert!(t.resolve("/p/").is_none());
        assert_eq!(hit(&t, "/d/x/"), (6, ps(&[("v", "x")])));
        assert!(t.resolve("/d//").is_none());
    }

    #[test]
    fn literal_text_is_escaped_in_path_syntax() {
        let t = table([path("a.b+(c)/<int:n>/", 1)]);
        assert!(t.resolve("/a.b+(c)/1/").is_some());
        assert!(t.resolve("/axb+(c)/1/").is_none());
        assert!(t.resolve("/a.bb(c)/1/").is_none());
    }

    #[test]
    fn literal_prefix() {
        let seg = |raw: &str| {
            let seg = compile_path_segment(raw).expect(raw);
            (seg.prefix, seg.literal)
        };
        assert_eq!(seg("ws/echo/"), ("ws/echo/".into(), true));
        assert_eq!(seg("ws/<id>/x/"), ("ws/".into(), false));
    }

    #[test]
    fn error_unknown_converter() {
        let e = err([include("ws/", [path("x/<foo:x>/", 1)])]);
        assert!(
            matches!(&e, RouteError::UnknownConverter { pattern, converter } if pattern == "x/<foo:x>/" && converter == "foo")
        );
        assert!(e.to_string().contains("x/<foo:x>/"), "{e}");
        assert!(e.to_string().contains("\"foo\""), "{e}");
    }

    #[test]
    fn error_malformed() {
        for bad in [
            "x/<int:id/",
            "x/<>/",
            "x/<int:>/",
            "x/<:id>/",
            "x/<int id>/",
            "x/< id>/",
            "x/<1abc>/",
            "x/<a-b>/",
            "x/<int:a:b>/",
            "x/<a<b>>/",
            "x/id>/",
        ] {
            let e = err([path(bad, 1)]);
            assert!(
                matches!(&e, RouteError::Malformed { pattern, .. } if pattern == bad)
                    || matches!(&e, RouteError::UnknownConverter { pattern, .. } if pattern == bad && bad == "x/<:id>/"),
                "{bad}: {e:?}"
            );
            assert!(e.to_string().contains(bad), "{e}");
        }
        let e = err([include("<x", [path("a/", 1)])]);
        assert!(matches!(&e, RouteError::Malformed { pattern, .. } if pattern == "<x"));
    }
}
