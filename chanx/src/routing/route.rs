//! Route declarations: [`path`], [`re_path`], [`include()`] and [`re_include`].
//!
//! Declaring only records the pattern text; it is checked and compiled by
//! [`RouteTable::new`](super::RouteTable::new).

/// Builds an endpoint route in Django `path()` syntax.
///
/// `route` is written without a leading `/`, e.g. `"chat/<str:room_id>/"`.
/// Parameters are `<converter:name>` or `<name>` (meaning `str`), with the
/// converters `str`, `int`, `slug`, `uuid` and `path`. Everything outside the
/// angle brackets matches literally. Errors are reported by
/// [`RouteTable::new`](super::RouteTable::new).
pub fn path<T>(route: &str, target: T) -> Route<T> {
    Route {
        node: Node::Endpoint {
            syntax: Syntax::Path,
            pattern: route.to_owned(),
            target,
        },
    }
}

/// Builds an endpoint route from a regular expression with named groups.
///
/// Example: `re_path(r"chat/(?P<room_id>\w{1,100})/", target)`. A leading `^`
/// and a trailing `$` are accepted and stripped; the route is always matched
/// against the whole path. Errors are reported by
/// [`RouteTable::new`](super::RouteTable::new).
pub fn re_path<T>(pattern: &str, target: T) -> Route<T> {
    Route {
        node: Node::Endpoint {
            syntax: Syntax::Regex,
            pattern: pattern.to_owned(),
            target,
        },
    }
}

/// Nests `routes` under `prefix`, written in [`path`] syntax (it may contain
/// `<conv:name>` parameters, which are captured for every nested route).
pub fn include<T>(prefix: &str, routes: impl IntoIterator<Item = Route<T>>) -> Route<T> {
    Route {
        node: Node::Include {
            syntax: Syntax::Path,
            prefix: prefix.to_owned(),
            children: routes.into_iter().collect(),
        },
    }
}

/// Nests `routes` under `prefix`, written in [`re_path`] syntax (a leading `^`
/// and trailing `$` are stripped; named groups become parameters).
pub fn re_include<T>(prefix: &str, routes: impl IntoIterator<Item = Route<T>>) -> Route<T> {
    Route {
        node: Node::Include {
            syntax: Syntax::Regex,
            prefix: prefix.to_owned(),
            children: routes.into_iter().collect(),
        },
    }
}

/// A route declaration built by [`path`], [`re_path`], [`include()`] or
/// [`re_include`]; compiled by [`RouteTable::new`](super::RouteTable::new).
#[derive(Clone, Debug)]
pub struct Route<T> {
    pub(super) node: Node<T>,
}

/// Pattern syntax of one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Syntax {
    /// Django `path()` syntax with `<conv:name>` parameters.
    Path,
    /// Regular expression with named groups.
    Regex,
}

/// Declaration tree.
#[derive(Clone, Debug)]
pub(super) enum Node<T> {
    /// A route that resolves to `target`.
    Endpoint {
        syntax: Syntax,
        pattern: String,
        target: T,
    },
    /// `prefix` in front of every route of `children`.
    Include {
        syntax: Syntax,
        prefix: String,
        children: Vec<Route<T>>,
    },
}
