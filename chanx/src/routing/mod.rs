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
//!   out of [`PathParams`], as in Django. In verbose mode `(?x)`, a `#`
//!   comment runs to the end of the line, so one that ends the pattern would
//!   also comment out the closing parenthesis of that wrapping group: avoid
//!   such comments, or end them with a newline.
//! * Converters keep values as strings; `int` only constrains the syntax.
//!
//! # Layout
//!
//! Declarations (`route`) are compiled segment by segment — Django path
//! syntax in `path_pattern` (with the converters of `converter`), regular
//! expressions in `regex_pattern` — into segments (`segment`), which
//! `compile` concatenates into one matcher (`matcher`) per flattened route.
//! [`RouteTable`] (`table`) decodes the request path (`percent_decoding`) and
//! runs the matchers.

mod compile;
mod converter;
mod error;
mod identifier;
mod info;
mod matcher;
mod params;
mod path_pattern;
mod percent_decoding;
mod regex_pattern;
mod route;
mod segment;
mod table;
#[cfg(test)]
mod test_support;

pub use error::RouteError;
pub use info::{ParamInfo, RouteInfo};
pub use params::PathParams;
pub use route::{Route, include, path, re_include, re_path};
pub use table::{Resolved, RouteTable};
