//! Django/Channels-style route patterns for WebSocket endpoints.
//!
//! Routes are declared with [`path`] (Django `path()` syntax with `<conv:name>`
//! parameters), [`re_path`] (regular expressions with named groups) and nested
//! with [`include()`] / [`re_include`]. [`RouteTable::new`] flattens and compiles
//! the declaration once; [`RouteTable::resolve`] then finds the first route, in
//! declaration order, that matches a request path, and [`RouteTable::routes`]
//! lists every flattened route (for a playground or for mounting in a web
//! framework).
//!
//! ```rust
//! use chanx::routing::{include, path, re_path, RouteTable};
//!
//! let table = RouteTable::new([include(
//!     "ws/",
//!     [include(
//!         "myapp/",
//!         [
//!             path("echo/", "echo"),
//!             path("rooms/<int:room>/", "room"),
//!             re_path(r"^chat/(?P<room_id>\w{1,100})/$", "chat"),
//!         ],
//!     )],
//! )])?;
//!
//! let hit = table.resolve("/ws/myapp/chat/lobby/").ok_or("no match")?;
//! assert_eq!(*hit.target, "chat");
//! assert_eq!(hit.params.get("room_id"), Some("lobby"));
//!
//! // Percent-encoded paths are decoded before matching, like Django does.
//! let hit = table.resolve("/ws/myapp/chat/caf%C3%A9/").ok_or("no match")?;
//! assert_eq!(hit.params.get("room_id"), Some("café"));
//!
//! // Full match only.
//! assert!(table.resolve("/ws/myapp/echo").is_none());
//! assert!(table.resolve("/ws/myapp/echo/extra/").is_none());
//!
//! let listed: Vec<&str> = table.routes().map(|r| r.friendly_path.as_str()).collect();
//! assert_eq!(
//!     listed,
//!     ["ws/myapp/echo/", "ws/myapp/rooms/:room/", "ws/myapp/chat/:room_id/"]
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Matching rules
//!
//! * Patterns are written without a leading `/`. The request path must start
//!   with `/`; exactly one leading `/` is stripped before matching (a path
//!   without it never matches). A full route whose pattern starts with `/` is
//!   rejected by [`RouteTable::new`], since it could only match `//...`.
//! * The remaining path is **percent-decoded first** (as Django matches against
//!   the decoded `path_info`), then matched. A malformed escape or a decoded
//!   path that is not valid UTF-8 matches no route. Consequently `%2F` becomes
//!   a real `/`: it cannot hide inside a `str` parameter (`[^/]+`), only inside
//!   a `path` parameter or a regex that accepts `/`. Parameter values are taken
//!   from the decoded path. `+` is left as is.
//! * Every route is a full match: anchored at both ends of the decoded path.
//! * Regex segments use the `regex` crate syntax (Unicode-aware by default, so
//!   `\w` matches `é`). A leading `^` and a trailing unescaped `$` are stripped
//!   from every regex segment, and each segment is wrapped in a non-capturing
//!   group so that `a|b` or inline flags such as `(?i)` stay local to it.
//!   Only *named* groups (`(?P<name>...)` or `(?<name>...)`) become
//!   parameters; a named group that did not participate in the match is left
//!   out of [`PathParams`], as in Django. Verbose mode `(?x)` comments are not
//!   understood by the group scanner and should be avoided.
//! * Converters keep values as strings; `int` only constrains the syntax.

use std::borrow::Cow;

use regex::Regex;

/// Regex of Django's `str` converter.
const STR_REGEX: &str = "[^/]+";
/// Regex of Django's `int` converter.
const INT_REGEX: &str = "[0-9]+";
/// Regex of Django's `slug` converter.
const SLUG_REGEX: &str = "[-a-zA-Z0-9_]+";
/// Regex of Django's `uuid` converter.
const UUID_REGEX: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
/// Regex of Django's `path` converter.
const PATH_REGEX: &str = ".+";

/// Builds an endpoint route in Django `path()` syntax.
///
/// `route` is written without a leading `/`, e.g. `"chat/<str:room_id>/"`.
/// Parameters are `<converter:name>` or `<name>` (meaning `str`), with the
/// converters `str`, `int`, `slug`, `uuid` and `path`. Everything outside the
/// angle brackets matches literally. Errors are reported by
/// [`RouteTable::new`].
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
/// against the whole path. Errors are reported by [`RouteTable::new`].
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
/// [`re_include`]; compiled by [`RouteTable::new`].
#[derive(Clone, Debug)]
pub struct Route<T> {
    node: Node<T>,
}

/// Pattern syntax of one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Syntax {
    Path,
    Regex,
}

/// Declaration tree.
#[derive(Clone, Debug)]
enum Node<T> {
    Endpoint {
        syntax: Syntax,
        pattern: String,
        target: T,
    },
    Include {
        syntax: Syntax,
        prefix: String,
        children: Vec<Route<T>>,
    },
}

/// Error building a [`RouteTable`]; every variant names the offending pattern.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A regex segment (or the concatenated route) does not compile.
    #[error("invalid regular expression in route pattern {pattern:?}: {source}")]
    InvalidRegex {
        /// The offending pattern.
        pattern: String,
        /// The error reported by the `regex` crate.
        source: regex::Error,
    },
    /// A `<converter:name>` uses a converter other than
    /// `str`, `int`, `slug`, `uuid` or `path`.
    #[error(
        "route pattern {pattern:?} uses unknown converter {converter:?} \
         (expected str, int, slug, uuid or path)"
    )]
    UnknownConverter {
        /// The offending pattern.
        pattern: String,
        /// The unknown converter name.
        converter: String,
    },
    /// The same parameter name appears twice in one full (concatenated) route.
    #[error("route pattern {pattern:?} uses parameter name {name:?} more than once")]
    DuplicateParameter {
        /// The full concatenated route pattern.
        pattern: String,
        /// The repeated parameter name.
        name: String,
    },
    /// Malformed `<...>` parameter, bad group name or unbalanced brackets.
    #[error("malformed route pattern {pattern:?}: {reason}")]
    Malformed {
        /// The offending pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The full route starts with `/`; patterns are written without it.
    #[error(
        "route pattern {pattern:?} starts with '/'; write patterns without a leading slash \
         (it is stripped from the request path before matching)"
    )]
    LeadingSlash {
        /// The full concatenated route pattern.
        pattern: String,
    },
}

/// Description of one parameter of a route.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParamInfo {
    /// Parameter name.
    pub name: String,
    /// Regex the value must match: the converter's regex (`str` → `[^/]+`,
    /// `int` → `[0-9]+`, `slug` → `[-a-zA-Z0-9_]+`, `uuid` → the lowercase
    /// UUID regex, `path` → `.+`) or the inner text of a named regex group.
    pub pattern: String,
}

/// One flattened route of a [`RouteTable`].
#[derive(Clone, Debug)]
pub struct RouteInfo<T> {
    /// The endpoint stored at this route.
    pub target: T,
    /// The full concatenated pattern as written (regex anchors stripped), e.g.
    /// `ws/myapp/chat/(?P<room_id>\w{1,100})/` or `ws/<str:x>/`.
    pub pattern: String,
    /// Human-friendly path with parameters written as `:name`, e.g.
    /// `ws/myapp/chat/:room_id/`.
    pub friendly_path: String,
    /// Parameters in the order they appear in the pattern.
    pub params: Vec<ParamInfo>,
}

/// Path parameters captured by a match: ordered `(name, value)` pairs with
/// percent-decoded values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathParams {
    pairs: Vec<(String, String)>,
}

impl PathParams {
    /// Value of the first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `(name, value)` pairs in pattern order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// `true` when no parameter was captured.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Number of captured parameters.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// The `(name, value)` pairs, consuming `self`.
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.pairs
    }
}

impl From<Vec<(String, String)>> for PathParams {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }
}

impl FromIterator<(String, String)> for PathParams {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self {
            pairs: iter.into_iter().collect(),
        }
    }
}

impl IntoIterator for PathParams {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.pairs.into_iter()
    }
}

/// Result of [`RouteTable::resolve`].
#[derive(Clone, Debug)]
pub struct Resolved<'a, T> {
    /// The endpoint of the first matching route.
    pub target: &'a T,
    /// Captured parameters (percent-decoded), in pattern order.
    pub params: PathParams,
}

/// Compiled matcher of one flattened route.
#[derive(Clone, Debug)]
struct Matcher {
    /// `^...$` regex of the full route.
    regex: Regex,
    /// Capture-group index of each parameter, parallel to `RouteInfo::params`.
    groups: Vec<usize>,
    /// Literal text every matching path starts with (a cheap pre-check).
    prefix: String,
    /// The route is entirely literal: it matches exactly `prefix`.
    exact: bool,
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
        let mut infos = Vec::new();
        let mut matchers = Vec::new();
        let mut stack = Vec::new();
        for route in routes {
            flatten(route, &mut stack, &mut infos, &mut matchers)?;
        }
        Ok(Self { infos, matchers })
    }

    /// Finds the first route (in declaration order) matching `request_path`.
    ///
    /// `request_path` is the URL path as received: starting with `/`, without
    /// query string, possibly percent-encoded. It is decoded before matching;
    /// a malformed escape or invalid UTF-8 yields `None`.
    pub fn resolve(&self, request_path: &str) -> Option<Resolved<'_, T>> {
        let raw = request_path.strip_prefix('/')?;
        let decoded = percent_decode(raw)?;
        let subject: &str = &decoded;
        for (info, matcher) in self.infos.iter().zip(&self.matchers) {
            if matcher.exact {
                if subject == matcher.prefix {
                    return Some(Resolved {
                        target: &info.target,
                        params: PathParams::default(),
                    });
                }
                continue;
            }
            if !subject.starts_with(matcher.prefix.as_str()) {
                continue;
            }
            if matcher.groups.is_empty() {
                if matcher.regex.is_match(subject) {
                    return Some(Resolved {
                        target: &info.target,
                        params: PathParams::default(),
                    });
                }
                continue;
            }
            if let Some(caps) = matcher.regex.captures(subject) {
                let params = info
                    .params
                    .iter()
                    .zip(&matcher.groups)
                    .filter_map(|(param, &group)| {
                        caps.get(group)
                            .map(|m| (param.name.clone(), m.as_str().to_owned()))
                    })
                    .collect();
                return Some(Resolved {
                    target: &info.target,
                    params,
                });
            }
        }
        None
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

/// Piece of a compiled segment's regex.
#[derive(Clone, Debug)]
enum Piece {
    /// Regex text copied verbatim.
    Text(String),
    /// Opening of a named group `(?P<name>`; the group's body and closing
    /// parenthesis follow as `Text`. `inner` is the body, for [`ParamInfo`].
    Open { name: String, inner: String },
}

/// One compiled pattern segment (an `include` prefix or an endpoint pattern).
#[derive(Clone, Debug)]
struct Segment {
    /// Pattern exactly as passed to the builder function (for errors).
    raw: String,
    /// Pattern as written (regex anchors stripped).
    pattern: String,
    /// Pattern with parameters as `:name`.
    friendly: String,
    pieces: Vec<Piece>,
    /// Literal text every match of this segment starts with.
    prefix: String,
    /// The whole segment is the literal `prefix`.
    literal: bool,
}

impl Segment {
    /// The segment's regex on its own, to validate it or diagnose errors.
    fn standalone_regex(&self) -> Result<Regex, RouteError> {
        let mut text = String::new();
        let mut count = 0;
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => text.push_str(t),
                Piece::Open { .. } => {
                    text.push_str(&format!("(?P<{}>", group_name(count)));
                    count += 1;
                }
            }
        }
        Regex::new(&text).map_err(|source| RouteError::InvalidRegex {
            pattern: self.raw.clone(),
            source,
        })
    }
}

fn flatten<T>(
    route: Route<T>,
    stack: &mut Vec<Segment>,
    infos: &mut Vec<RouteInfo<T>>,
    matchers: &mut Vec<Matcher>,
) -> Result<(), RouteError> {
    match route.node {
        Node::Endpoint {
            syntax,
            pattern,
            target,
        } => {
            stack.push(compile_segment(syntax, &pattern)?);
            let assembled = assemble(stack);
            stack.pop();
            let (info, matcher) = assembled?;
            infos.push(RouteInfo {
                target,
                pattern: info.pattern,
                friendly_path: info.friendly_path,
                params: info.params,
            });
            matchers.push(matcher);
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
                .try_for_each(|child| flatten(child, stack, infos, matchers));
            stack.pop();
            result?;
        }
    }
    Ok(())
}

/// Concatenates segments into the full route's regex and metadata.
fn assemble(segments: &[Segment]) -> Result<(RouteInfo<()>, Matcher), RouteError> {
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
                regex_text.push_str(&format!("(?P<{}>", group_name(params.len())));
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
            .ok_or_else(|| RouteError::Malformed {
                pattern: pattern.clone(),
                reason: format!("parameter {:?} is not a capture group", param.name),
            })?;
        groups.push(group);
    }
    let info = RouteInfo {
        target: (),
        pattern,
        friendly_path,
        params,
    };
    Ok((
        info,
        Matcher {
            regex,
            groups,
            prefix,
            exact,
        },
    ))
}

/// Internal capture-group name of the `index`-th parameter. User names are
/// replaced so that any identifier (including non-ASCII) is accepted and
/// duplicates are reported by us, not by the regex compiler.
fn group_name(index: usize) -> String {
    format!("p{index}")
}

fn compile_segment(syntax: Syntax, raw: &str) -> Result<Segment, RouteError> {
    match syntax {
        Syntax::Path => compile_path_segment(raw),
        Syntax::Regex => compile_regex_segment(raw),
    }
}

fn malformed(pattern: &str, reason: impl Into<String>) -> RouteError {
    RouteError::Malformed {
        pattern: pattern.to_owned(),
        reason: reason.into(),
    }
}

fn converter_regex(converter: &str) -> Option<&'static str> {
    match converter {
        "str" => Some(STR_REGEX),
        "int" => Some(INT_REGEX),
        "slug" => Some(SLUG_REGEX),
        "uuid" => Some(UUID_REGEX),
        "path" => Some(PATH_REGEX),
        _ => None,
    }
}

/// Identifier check in the spirit of Python's `str.isidentifier()`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn compile_path_segment(raw: &str) -> Result<Segment, RouteError> {
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
            return Err(malformed(raw, "'>' without a matching '<'"));
        };
        let Some(close) = body.find('>') else {
            return Err(malformed(raw, "'<' without a closing '>'"));
        };
        let (inner, after) = body.split_at(close);
        if inner.contains('<') {
            return Err(malformed(raw, "nested '<' inside a parameter"));
        }
        if inner.chars().any(char::is_whitespace) {
            return Err(malformed(raw, "whitespace inside angle brackets <...>"));
        }
        let (converter, name) = inner.split_once(':').unwrap_or(("str", inner));
        if !is_identifier(name) {
            return Err(malformed(
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

/// Strips one leading `^` and one trailing unescaped `$`.
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

fn compile_regex_segment(raw: &str) -> Result<Segment, RouteError> {
    let stripped = strip_anchors(raw);
    let scan = match scan_regex(stripped) {
        Ok(scan) => scan,
        Err(reason) => {
            // Prefer the regex crate's own diagnostic when it has one.
            return Err(match Regex::new(stripped) {
                Err(source) => RouteError::InvalidRegex {
                    pattern: raw.to_owned(),
                    source,
                },
                Ok(_) => malformed(raw, reason),
            });
        }
    };
    // Each segment is wrapped in a non-capturing group so that alternation
    // and inline flags stay local. The scanner guarantees balanced groups
    // and classes, so a segment cannot pair brackets with its neighbours.
    let mut pieces = Vec::with_capacity(scan.pieces.len() + 2);
    pieces.push(Piece::Text("(?:".to_owned()));
    pieces.extend(scan.pieces);
    pieces.push(Piece::Text(")".to_owned()));
    let (prefix, literal) = if scan.top_level_alternation {
        (String::new(), false)
    } else {
        regex_literal_prefix(stripped)
    };
    Ok(Segment {
        raw: raw.to_owned(),
        pattern: stripped.to_owned(),
        friendly: scan.friendly,
        pieces,
        prefix,
        literal,
    })
}

/// `\` followed by this char is the literal char (`\<`, `\>` are word
/// boundaries in the regex crate).
fn is_literal_escape(c: char) -> bool {
    c.is_ascii_punctuation() && c != '<' && c != '>'
}

/// Conservative literal prefix of a regex without top-level alternation, and
/// whether the whole regex is that literal.
fn regex_literal_prefix(s: &str) -> (String, bool) {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let literal = match c {
            '\\' => match chars.next() {
                Some(next) if is_literal_escape(next) => next,
                _ => return (out, false),
            },
            '.' | '^' | '$' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '?' | '*' | '+' => {
                return (out, false);
            }
            c => c,
        };
        if matches!(chars.peek(), Some('?' | '*' | '+' | '{')) {
            return (out, false);
        }
        out.push(literal);
    }
    (out, true)
}

/// Result of [`scan_regex`].
struct Scan {
    pieces: Vec<Piece>,
    friendly: String,
    /// A `|` outside any group or class.
    top_level_alternation: bool,
}

/// Index of the `]` closing the character class opened at `chars[start]`.
fn class_end(chars: &[(usize, char)], start: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut i = start;
    while let Some(&(_, c)) = chars.get(i) {
        match c {
            '[' => {
                depth += 1;
                i += 1;
                if matches!(chars.get(i), Some((_, '^'))) {
                    i += 1;
                }
                // A ']' right after the opening is a literal.
                if matches!(chars.get(i), Some((_, ']'))) {
                    i += 1;
                }
            }
            '\\' => i += 2,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    Err("unclosed '[' character class".to_owned())
}

/// If `chars[at]` opens a named group `(?P<name>` or `(?<name>`, returns the
/// name and the number of chars of the opening.
fn named_group_at(chars: &[(usize, char)], at: usize) -> Result<Option<(String, usize)>, String> {
    let head: String = chars.iter().skip(at).take(4).map(|&(_, c)| c).collect();
    let skip = if head.starts_with("(?P<") {
        4
    } else if head.starts_with("(?<") && !head.starts_with("(?<=") && !head.starts_with("(?<!") {
        3
    } else {
        return Ok(None);
    };
    let mut name = String::new();
    for &(_, c) in chars.iter().skip(at + skip) {
        if c == '>' {
            if !is_identifier(&name) {
                return Err(format!("group name {name:?} is not a valid identifier"));
            }
            let consumed = skip + name.chars().count() + 1;
            return Ok(Some((name, consumed)));
        }
        name.push(c);
    }
    Err("unterminated group name".to_owned())
}

/// Splits a regex into pieces, turning named groups into parameters, and
/// computes its friendly form.
fn scan_regex(s: &str) -> Result<Scan, String> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut friendly = String::new();
    // Open groups: Some((body start byte, index of its Piece::Open)) if named.
    let mut stack: Vec<Option<(usize, usize)>> = Vec::new();
    let mut named_depth = 0usize;
    let mut top_level_alternation = false;
    let mut i = 0;
    while let Some(&(pos, c)) = chars.get(i) {
        let visible = named_depth == 0;
        match c {
            '\\' => {
                let Some(&(_, next)) = chars.get(i + 1) else {
                    return Err("trailing backslash".to_owned());
                };
                text.push('\\');
                text.push(next);
                if visible {
                    if !is_literal_escape(next) {
                        friendly.push('\\');
                    }
                    friendly.push(next);
                }
                i += 2;
            }
            '[' => {
                let end = class_end(&chars, i)?;
                let end_byte = chars.get(end + 1).map_or(s.len(), |&(p, _)| p);
                let class = s.get(pos..end_byte).unwrap_or_default();
                text.push_str(class);
                if visible {
                    friendly.push_str(class);
                }
                i = end + 1;
            }
            '(' => match named_group_at(&chars, i)? {
                Some((name, consumed)) => {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    if visible {
                        friendly.push(':');
                        friendly.push_str(&name);
                    }
                    stack.push(Some((0, pieces.len())));
                    pieces.push(Piece::Open {
                        name,
                        inner: String::new(),
                    });
                    named_depth += 1;
                    i += consumed;
                    let body_start = chars.get(i).map_or(s.len(), |&(p, _)| p);
                    if let Some(Some((start, _))) = stack.last_mut() {
                        *start = body_start;
                    }
                }
                None => {
                    stack.push(None);
                    text.push('(');
                    if visible {
                        friendly.push('(');
                    }
                    i += 1;
                }
            },
            ')' => {
                match stack.pop() {
                    None => return Err("unbalanced ')'".to_owned()),
                    Some(Some((start, piece))) => {
                        if let Some(Piece::Open { inner, .. }) = pieces.get_mut(piece) {
                            *inner = s.get(start..pos).unwrap_or_default().to_owned();
                        }
                        named_depth -= 1;
                    }
                    Some(None) => {
                        if visible {
                            friendly.push(')');
                        }
                    }
                }
                text.push(')');
                i += 1;
            }
            _ => {
                top_level_alternation |= c == '|' && stack.is_empty();
                text.push(c);
                if visible {
                    friendly.push(c);
                }
                i += 1;
            }
        }
    }
    if !stack.is_empty() {
        return Err("unclosed '('".to_owned());
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(Scan {
        pieces,
        friendly,
        top_level_alternation,
    })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes a URL path. `None` on a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let mut bytes = s.bytes();
    let mut out = Vec::with_capacity(s.len());
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = hex_value(bytes.next()?)?;
            let lo = hex_value(bytes.next()?)?;
            out.push(hi << 4 | lo);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table<T>(routes: impl IntoIterator<Item = Route<T>>) -> RouteTable<T> {
        match RouteTable::new(routes) {
            Ok(t) => t,
            Err(e) => panic!("route table failed to build: {e}"),
        }
    }

    fn err<T: std::fmt::Debug>(routes: impl IntoIterator<Item = Route<T>>) -> RouteError {
        match RouteTable::new(routes) {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(e) => e,
        }
    }

    fn hit<T: Copy>(t: &RouteTable<T>, p: &str) -> (T, Vec<(String, String)>) {
        let r = t.resolve(p).expect(p);
        (*r.target, r.params.into_vec())
    }

    fn ps(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    fn nested() -> RouteTable<i32> {
        table([include(
            "ws/",
            [include(
                "myapp/",
                [
                    path("echo/", 1),
                    re_path(r"chat/(?P<room_id>\w{1,100})/", 2),
                ],
            )],
        )])
    }

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
        let seg = |syntax, raw: &str| {
            let seg = compile_segment(syntax, raw).expect(raw);
            (seg.prefix, seg.literal)
        };
        assert_eq!(seg(Syntax::Path, "ws/echo/"), ("ws/echo/".into(), true));
        assert_eq!(seg(Syntax::Path, "ws/<id>/x/"), ("ws/".into(), false));
        assert_eq!(
            seg(Syntax::Regex, r"^chat\.v1/(?P<r>\w+)/$"),
            ("chat.v1/".into(), false)
        );
        assert_eq!(seg(Syntax::Regex, r"^abc/$"), ("abc/".into(), true));
        assert_eq!(seg(Syntax::Regex, r"abc?"), ("ab".into(), false));
        assert_eq!(seg(Syntax::Regex, r"ab{2}"), ("a".into(), false));
        assert_eq!(seg(Syntax::Regex, r"ab|cd"), ("".into(), false));
        assert_eq!(seg(Syntax::Regex, r"(?i)ab"), ("".into(), false));
        assert_eq!(seg(Syntax::Regex, r"a\<b"), ("a".into(), false));
        assert_eq!(seg(Syntax::Regex, r"a(b|c)d|e"), ("".into(), false));

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

    #[test]
    fn path_params_api() {
        let p: PathParams = vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ]
        .into();
        assert_eq!(p.get("b"), Some("2"));
        assert_eq!(p.get("c"), None);
        assert_eq!(p.len(), 2);
        assert!(!p.is_empty());
        assert_eq!(p.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        assert_eq!(p.clone().into_vec().len(), 2);
        assert!(PathParams::default().is_empty());
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
        let e = err([include("<x", [path("a/", 1)])]);
        assert!(matches!(&e, RouteError::Malformed { pattern, .. } if pattern == "<x"));
    }

    #[test]
    fn error_leading_slash() {
        let e = err([path("/ws/echo/", 1)]);
        assert!(matches!(&e, RouteError::LeadingSlash { pattern } if pattern == "/ws/echo/"));
        let e = err([re_include("^/ws/", [path("echo/", 1)])]);
        assert!(matches!(&e, RouteError::LeadingSlash { pattern } if pattern == "/ws/echo/"));
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
}
