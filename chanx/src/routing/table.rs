//! [`RouteTable`]: the compiled route table, and [`Resolved`], the result of
//! a lookup.

use super::compile::flatten;
use super::error::RouteError;
use super::info::RouteInfo;
use super::matcher::Matcher;
use super::params::PathParams;
use super::percent_decoding::decode_path;
use super::route::Route;

/// Result of [`RouteTable::resolve`].
#[derive(Clone, Debug)]
pub struct Resolved<'a, T> {
    /// The endpoint of the first matching route.
    pub target: &'a T,
    /// Captured parameters (percent-decoded), in pattern order.
    pub params: PathParams,
}

/// Compiled, flattened route table.
///
/// Matching strategy: routes are tried in declaration order, but each one is
/// first screened by its literal prefix (the text before its first parameter
/// or regex construct, e.g. `ws/myapp/chat/`), a plain `starts_with`; fully
/// literal routes are compared with `==` and never run a regex. Only
/// candidates that pass the screen run their own compiled regex, and routes
/// with parameters go straight to `captures` (one search, not `is_match`
/// followed by `captures`). A [`regex::RegexSet`] over all routes was
/// measured and rejected: Django-style patterns use Unicode classes such as
/// `\w{1,100}` whose automata are huge, so a set of 50 such routes exceeded
/// a 64 MiB size limit, doubled start-up compile time (each route is already
/// compiled on its own for captures), and its single pass still has to be
/// followed by a capture search. With the prefix screen a lookup in a table
/// of ~10–100 routes costs a few nanoseconds per skipped route plus one
/// regex search for the winner.
#[derive(Clone, Debug)]
pub struct RouteTable<T> {
    infos: Vec<RouteInfo<T>>,
    matchers: Vec<Matcher>,
}

impl<T> RouteTable<T> {
    /// Flattens and compiles `routes`.
    ///
    /// # Errors
    ///
    /// A [`RouteError`] naming the offending pattern for an invalid regex, an
    /// unknown converter, a malformed `<...>` parameter, a parameter name used
    /// twice within one full route, or a full route starting with `/`.
    pub fn new(routes: impl IntoIterator<Item = Route<T>>) -> Result<Self, RouteError> {
        let mut flat = Vec::new();
        let mut stack = Vec::new();
        for route in routes {
            flatten(route, &mut stack, &mut flat)?;
        }
        let (infos, matchers) = flat.into_iter().unzip();
        Ok(Self { infos, matchers })
    }

    /// Finds the first route (in declaration order) matching `request_path`.
    ///
    /// `request_path` is the URL path as received: starting with `/`, without
    /// query string, possibly percent-encoded. It is decoded before matching;
    /// a malformed escape or invalid UTF-8 yields `None`.
    pub fn resolve(&self, request_path: &str) -> Option<Resolved<'_, T>> {
        let raw = request_path.strip_prefix('/')?;
        let subject = decode_path(raw)?;
        self.infos
            .iter()
            .zip(&self.matchers)
            .find_map(|(info, matcher)| {
                Some(Resolved {
                    target: &info.target,
                    params: matcher.matches(&subject, &info.params)?,
                })
            })
    }

    /// Every flattened route, in declaration order.
    pub fn routes(&self) -> impl ExactSizeIterator<Item = &RouteInfo<T>> {
        self.infos.iter()
    }

    /// Number of flattened routes.
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    /// `true` when the table has no route.
    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// Replaces every target with `f(target)`, keeping the compiled matchers.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> RouteTable<U> {
        RouteTable {
            infos: self
                .infos
                .into_iter()
                .map(|info| RouteInfo {
                    target: f(info.target),
                    pattern: info.pattern,
                    friendly_path: info.friendly_path,
                    params: info.params,
                })
                .collect(),
            matchers: self.matchers,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::routing::test_support::{nested, table};
    use crate::routing::{PathParams, RouteTable, include, path, re_include, re_path};

    #[test]
    fn nested_includes_two_levels() {
        let t = nested();
        assert_eq!(t.resolve("/ws/myapp/echo/").map(|r| *r.target), Some(1));
        let r = t.resolve("/ws/myapp/chat/lobby/").expect("chat");
        assert_eq!(*r.target, 2);
        assert_eq!(r.params.get("room_id"), Some("lobby"));
        assert_eq!(r.params.len(), 1);
        for bad in [
            "/ws/myapp/chat/lobby",
            "/ws/myapp/chat/",
            "/ws/myapp/chat/a/b/",
            "ws/myapp/chat/lobby/",
            "//ws/myapp/chat/lobby/",
            "/ws/myapp/echo",
            "/ws/myapp/echo/extra/",
            "/ws/myapp/echo/?x=1",
        ] {
            assert!(t.resolve(bad).is_none(), "{bad} should not match");
        }
        let ok = format!("/ws/myapp/chat/{}/", "a".repeat(100));
        assert!(t.resolve(&ok).is_some());
        let too_long = format!("/ws/myapp/chat/{}/", "a".repeat(101));
        assert!(t.resolve(&too_long).is_none());
    }

    #[test]
    fn unicode_word_chars() {
        let t = nested();
        let r = t.resolve("/ws/myapp/chat/caf%C3%A9/").expect("encoded");
        assert_eq!(r.params.get("room_id"), Some("café"));
        let r = t.resolve("/ws/myapp/chat/комната/").expect("raw unicode");
        assert_eq!(r.params.get("room_id"), Some("комната"));
        assert!(t.resolve("/ws/myapp/chat/a-b/").is_none());
        // Non-ASCII parameter names are fine too.
        let t = table([path("x/<str:café>/", 1)]);
        assert_eq!(t.resolve("/x/1/").expect("x").params.get("café"), Some("1"));
    }

    #[test]
    fn first_match_wins() {
        let t = table([
            path("ws/<str:name>/", "generic"),
            path("ws/special/", "special"),
            re_path(r"ws/(?P<n>\d+)/x/", "digits"),
            path("ws/<int:n>/x/", "int"),
        ]);
        assert_eq!(
            t.resolve("/ws/special/").map(|r| *r.target),
            Some("generic")
        );
        assert_eq!(t.resolve("/ws/12/x/").map(|r| *r.target), Some("digits"));
        let t = table([
            path("ws/special/", "special"),
            path("ws/<str:name>/", "generic"),
        ]);
        assert_eq!(
            t.resolve("/ws/special/").map(|r| *r.target),
            Some("special")
        );
        assert_eq!(t.resolve("/ws/other/").map(|r| *r.target), Some("generic"));
    }

    #[test]
    fn literal_prefix_screen() {
        // Prefix screening must not change results, including for routes
        // whose prefix spans several segments or stops inside one.
        let t = table([
            include("ws/", [re_include(r"(?i)CHAT/", [path("<x>/", 1)])]),
            re_include(r"^a|b", [path("c/", 2)]),
            include("lit/", [re_path(r"^v\.1/$", 3), path("z/", 4)]),
        ]);
        assert_eq!(t.resolve("/ws/chat/q/").map(|r| *r.target), Some(1));
        assert_eq!(t.resolve("/ws/ChAt/q/").map(|r| *r.target), Some(1));
        assert_eq!(t.resolve("/ac/").map(|r| *r.target), Some(2));
        assert_eq!(t.resolve("/bc/").map(|r| *r.target), Some(2));
        assert_eq!(t.resolve("/lit/v.1/").map(|r| *r.target), Some(3));
        assert!(t.resolve("/lit/vx1/").is_none());
        assert_eq!(t.resolve("/lit/z/").map(|r| *r.target), Some(4));
        assert!(t.resolve("/lit/z/z").is_none());
    }

    #[test]
    fn map_keeps_matching() {
        let t = nested().map(|n| format!("endpoint-{n}"));
        let r = t.resolve("/ws/myapp/chat/lobby/").expect("mapped");
        assert_eq!(r.target, "endpoint-2");
        assert_eq!(
            r.params,
            PathParams::from(vec![("room_id".into(), "lobby".into())])
        );
    }

    #[test]
    fn empty_table_and_root_route() {
        let t: RouteTable<()> = table([]);
        assert!(t.is_empty());
        assert!(t.resolve("/").is_none());
        let t = table([path("", 1)]);
        assert_eq!(t.resolve("/").map(|r| *r.target), Some(1));
        assert!(t.resolve("").is_none());
        assert!(t.resolve("/x").is_none());
    }
}
