//! Compiling a declaration tree into flattened routes: each endpoint's
//! segments (its `include` prefixes, then its own pattern) are concatenated
//! into one [`RouteInfo`] and one [`Matcher`].

use regex::Regex;

use super::error::RouteError;
use super::info::{ParamInfo, RouteInfo};
use super::matcher::Matcher;
use super::path_pattern::compile_path_segment;
use super::regex_pattern::compile_regex_segment;
use super::route::{Node, Route, Syntax};
use super::segment::{Piece, Segment, group_name, group_opening};

/// Appends the flattened routes of `route`, nested under the `include`
/// prefixes on `stack`, to `routes`, in declaration order.
pub(super) fn flatten<T>(
    route: Route<T>,
    stack: &mut Vec<Segment>,
    routes: &mut Vec<(RouteInfo<T>, Matcher)>,
) -> Result<(), RouteError> {
    match route.node {
        Node::Endpoint {
            syntax,
            pattern,
            target,
        } => {
            stack.push(compile_segment(syntax, &pattern)?);
            let assembled = assemble(stack, target);
            stack.pop();
            routes.push(assembled?);
        }
        Node::Include {
            syntax,
            prefix,
            children,
        } => {
            let segment = compile_segment(syntax, &prefix)?;
            if children.is_empty() {
                // Not part of any route: validate it on its own.
                segment.standalone_regex()?;
            }
            stack.push(segment);
            let result = children
                .into_iter()
                .try_for_each(|child| flatten(child, stack, routes));
            stack.pop();
            result?;
        }
    }
    Ok(())
}

fn compile_segment(syntax: Syntax, raw: &str) -> Result<Segment, RouteError> {
    match syntax {
        Syntax::Path => compile_path_segment(raw),
        Syntax::Regex => compile_regex_segment(raw),
    }
}

/// Concatenates segments into the full route's regex and metadata.
fn assemble<T>(segments: &[Segment], target: T) -> Result<(RouteInfo<T>, Matcher), RouteError> {
    let pattern: String = segments.iter().map(|s| s.pattern.as_str()).collect();
    let friendly_path: String = segments.iter().map(|s| s.friendly.as_str()).collect();
    if pattern.starts_with('/') {
        return Err(RouteError::LeadingSlash { pattern });
    }
    let mut params: Vec<ParamInfo> = Vec::new();
    let mut regex_text = String::from("^");
    for piece in segments.iter().flat_map(|s| &s.pieces) {
        match piece {
            Piece::Text(text) => regex_text.push_str(text),
            Piece::Open { name, inner } => {
                if params.iter().any(|p| p.name == *name) {
                    return Err(RouteError::DuplicateParameter {
                        pattern,
                        name: name.clone(),
                    });
                }
                regex_text.push_str(&group_opening(params.len()));
                params.push(ParamInfo {
                    name: name.clone(),
                    pattern: inner.clone(),
                });
            }
        }
    }
    regex_text.push('$');
    let regex = match Regex::new(&regex_text) {
        Ok(regex) => regex,
        Err(source) => {
            // Name the offending segment when one fails on its own (only on
            // this error path, so valid tables compile each route once).
            for segment in segments {
                segment.standalone_regex()?;
            }
            return Err(RouteError::InvalidRegex { pattern, source });
        }
    };
    let mut prefix = String::new();
    let mut exact = true;
    for segment in segments {
        prefix.push_str(&segment.prefix);
        if !segment.literal {
            exact = false;
            break;
        }
    }
    let mut groups = Vec::with_capacity(params.len());
    for (index, param) in params.iter().enumerate() {
        let wanted = group_name(index);
        let group = regex
            .capture_names()
            .position(|n| n == Some(wanted.as_str()))
            .ok_or_else(|| {
                RouteError::malformed(
                    &pattern,
                    format!("parameter {:?} is not a capture group", param.name),
                )
            })?;
        groups.push(group);
    }
    let info = RouteInfo {
        target,
        pattern,
        friendly_path,
        params,
    };
    let matcher = Matcher {
        regex,
        groups,
        prefix,
        exact,
    };
    Ok((info, matcher))
}

#[cfg(test)]
mod tests {
    use crate::routing::converter::{INT_REGEX, PATH_REGEX, SLUG_REGEX, STR_REGEX, UUID_REGEX};
    use crate::routing::test_support::{err, hit, ps, table};
    use crate::routing::{ParamInfo, RouteError, include, path, re_include, re_path};

    #[test]
    fn regex_include_and_path_prefix_params() {
        let t = table([
            re_include(r"^ws/(?P<tenant>[a-z]+)/", [path("room/<int:id>/", 1)]),
            include("api/<slug:ver>/", [re_path(r"^items/(?P<id>\d+)$", 2)]),
        ]);
        assert_eq!(
            hit(&t, "/ws/acme/room/7/"),
            (1, ps(&[("tenant", "acme"), ("id", "7")]))
        );
        assert_eq!(
            hit(&t, "/api/v2/items/9"),
            (2, ps(&[("ver", "v2"), ("id", "9")]))
        );
        let infos: Vec<_> = t.routes().collect();
        assert_eq!(infos[0].pattern, "ws/(?P<tenant>[a-z]+)/room/<int:id>/");
        assert_eq!(infos[0].friendly_path, "ws/:tenant/room/:id/");
        assert_eq!(infos[1].pattern, r"api/<slug:ver>/items/(?P<id>\d+)");
        assert_eq!(infos[1].friendly_path, "api/:ver/items/:id");
    }

    #[test]
    fn friendly_path_and_params_listing() {
        let t = table([include(
            "ws/",
            [include(
                "myapp/",
                [
                    path("echo/", 1),
                    re_path(r"chat/(?P<room_id>\w{1,100})/", 2),
                    path("u/<uuid:id>/<x>/", 3),
                    re_path(r"^f/(?P<outer>a(?P<inner>b))\.txt/(?:z)$", 4),
                ],
            )],
        )]);
        let infos: Vec<_> = t.routes().collect();
        assert_eq!(infos.len(), 4);
        assert_eq!(t.len(), 4);
        assert_eq!(infos[0].pattern, "ws/myapp/echo/");
        assert_eq!(infos[0].friendly_path, "ws/myapp/echo/");
        assert!(infos[0].params.is_empty());
        assert_eq!(infos[1].pattern, r"ws/myapp/chat/(?P<room_id>\w{1,100})/");
        assert_eq!(infos[1].friendly_path, "ws/myapp/chat/:room_id/");
        assert_eq!(
            infos[1].params,
            vec![ParamInfo {
                name: "room_id".into(),
                pattern: r"\w{1,100}".into()
            }]
        );
        assert_eq!(infos[2].friendly_path, "ws/myapp/u/:id/:x/");
        assert_eq!(
            infos[2].params,
            vec![
                ParamInfo {
                    name: "id".into(),
                    pattern: UUID_REGEX.into()
                },
                ParamInfo {
                    name: "x".into(),
                    pattern: "[^/]+".into()
                },
            ]
        );
        assert_eq!(infos[3].friendly_path, "ws/myapp/f/:outer.txt/(?:z)");
        let names: Vec<_> = infos[3].params.iter().map(|p| p.pattern.as_str()).collect();
        assert_eq!(names, ["a(?P<inner>b)", "b"]);
        let r = t.resolve("/ws/myapp/f/ab.txt/z").expect("nested groups");
        assert_eq!(r.params.get("outer"), Some("ab"));
        assert_eq!(r.params.get("inner"), Some("b"));
        let converters: Vec<_> = [
            ("s", STR_REGEX),
            ("i", INT_REGEX),
            ("g", SLUG_REGEX),
            ("p", PATH_REGEX),
        ]
        .into_iter()
        .collect();
        let t = table([path("<str:s>/<int:i>/<slug:g>/<path:p>", ())]);
        let listed: Vec<_> = t
            .routes()
            .flat_map(|r| {
                r.params
                    .iter()
                    .map(|p| (p.name.as_str(), p.pattern.as_str()))
            })
            .collect();
        assert_eq!(listed, converters);
    }

    #[test]
    fn error_duplicate_parameter() {
        let e = err([path("<int:id>/<str:id>/", 1)]);
        assert!(
            matches!(&e, RouteError::DuplicateParameter { pattern, name } if pattern == "<int:id>/<str:id>/" && name == "id")
        );
        let e = err([include("r/<id>/", [re_path(r"(?P<id>\d+)/", 1)])]);
        assert!(
            matches!(&e, RouteError::DuplicateParameter { pattern, name } if pattern == r"r/<id>/(?P<id>\d+)/" && name == "id")
        );
        assert!(e.to_string().contains("r/<id>/(?P<id>"), "{e}");
        let e = err([re_path(r"(?P<a>x)(?P<a>y)", 1)]);
        assert!(matches!(e, RouteError::DuplicateParameter { .. }));
        // Same name in sibling routes is fine.
        let t = table([path("a/<id>/", 1), path("b/<id>/", 2)]);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn duplicates_inside_one_regex_are_judged_per_route() {
        // Reported for the full route, first repeated name in pattern order.
        let e = err([include("<a>/", [re_path(r"(?P<b>x)(?P<a>y)(?P<b>z)", 1)])]);
        assert!(
            matches!(&e, RouteError::DuplicateParameter { pattern, name } if pattern == "<a>/(?P<b>x)(?P<a>y)(?P<b>z)" && name == "a"),
            "{e:?}"
        );
        // A leading slash is reported first.
        let e = err([re_path(r"/(?P<a>x)(?P<a>y)", 1)]);
        assert!(matches!(e, RouteError::LeadingSlash { .. }), "{e:?}");
        // An include prefix without routes forms no route.
        let t = table([re_include(r"(?P<a>x)(?P<a>y)", Vec::new()), path("z", 1)]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn error_leading_slash() {
        let e = err([path("/ws/echo/", 1)]);
        assert!(matches!(&e, RouteError::LeadingSlash { pattern } if pattern == "/ws/echo/"));
        let e = err([re_include("^/ws/", [path("echo/", 1)])]);
        assert!(matches!(&e, RouteError::LeadingSlash { pattern } if pattern == "/ws/echo/"));
    }
}
