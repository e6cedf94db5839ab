//! The upgrade request as authentication and consumers see it.

use std::borrow::Cow;
use std::net::SocketAddr;

use http::HeaderMap;
use serde_json::{Map, Value};

use crate::routing::PathParams;

mod kept;

/// The header a client names its request with.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

pub(crate) use kept::KeptHandshake;

/// An authenticated user.
///
/// ```
/// let alice = chanx::User::new(1, "alice");
/// assert_eq!(alice.username, "alice");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// Primary key; compared across connections for `is_mine`.
    pub pk: Value,
    /// Display name.
    pub username: String,
    /// Anything else the authenticator knows (roles, claims, ...).
    pub attributes: Map<String, Value>,
}

impl User {
    /// A user with a primary key and a name.
    pub fn new(pk: impl Into<Value>, username: impl Into<String>) -> Self {
        User {
            pk: pk.into(),
            username: username.into(),
            attributes: Map::new(),
        }
    }
}

/// The WebSocket upgrade request: what authentication runs on.
#[derive(Clone, Debug, Default)]
pub struct Handshake {
    /// The request path, e.g. `/ws/myapp/chat/lobby/`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// The request headers, except those of the WebSocket handshake itself
    /// (`Connection`, `Upgrade`, `Sec-WebSocket-Key`,
    /// `Sec-WebSocket-Version`, `Sec-WebSocket-Extensions`), which are
    /// spent once the socket is open. `Sec-WebSocket-Protocol` is kept.
    pub headers: HeaderMap,
    /// Parameters captured by the route.
    pub params: PathParams,
    /// The client's address, when the transport knows it.
    pub peer: Option<SocketAddr>,
}

impl Handshake {
    /// A handshake for `path` with no headers (handy in tests).
    pub fn new(path: impl Into<String>) -> Self {
        Handshake {
            path: path.into(),
            ..Handshake::default()
        }
    }

    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A cookie's value from the `Cookie` header(s) (the first of that
    /// name). Quoted values are unquoted; values are not percent-decoded.
    ///
    /// ```
    /// let mut hs = chanx::Handshake::new("/ws/");
    /// hs.headers.insert("cookie", "a=1; sessionid=xyz".parse().unwrap());
    /// assert_eq!(hs.cookie("sessionid"), Some("xyz"));
    /// ```
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|header| header.to_str().ok())
            .flat_map(cookie::Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == name)
            .and_then(|cookie| cookie.value_raw())
            .map(|value| {
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value)
            })
    }

    /// A query parameter's value, percent-decoded (`+` is a space, as in
    /// HTML forms); the first of that name.
    ///
    /// ```
    /// let mut hs = chanx::Handshake::new("/ws/");
    /// hs.query = Some("token=a%20b+c&flag".into());
    /// assert_eq!(hs.query_param("token").as_deref(), Some("a b c"));
    /// assert_eq!(hs.query_param("flag").as_deref(), Some(""));
    /// ```
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        form_urlencoded::parse(self.query.as_deref()?.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// A path parameter captured by the route.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// The `X-Request-ID` header, if the client sent one.
    pub fn request_id(&self) -> Option<&str> {
        self.header(REQUEST_ID_HEADER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(header: &str) -> Handshake {
        let mut hs = Handshake::new("/");
        hs.headers
            .insert(http::header::COOKIE, header.parse().unwrap());
        hs
    }

    #[test]
    fn cookie_header_parsing() {
        let hs = with_cookie("a=1; sessionid=xyz; b=2");
        assert_eq!(hs.cookie("sessionid"), Some("xyz"));
        assert_eq!(hs.cookie("a"), Some("1"));
        assert_eq!(hs.cookie("b"), Some("2"));
        assert_eq!(hs.cookie("c"), None);
        assert_eq!(with_cookie("sessionid").cookie("sessionid"), None);
        assert_eq!(
            with_cookie("  sessionid  =  v  ;x=y").cookie("sessionid"),
            Some("v")
        );
        assert_eq!(
            with_cookie(r#"sessionid="quoted""#).cookie("sessionid"),
            Some("quoted")
        );
        assert_eq!(
            with_cookie("sessionid=first; sessionid=second").cookie("sessionid"),
            Some("first")
        );
        assert_eq!(Handshake::new("/").cookie("sessionid"), None);
    }

    #[test]
    fn query_parameters_are_percent_decoded() {
        let mut hs = Handshake::new("/");
        hs.query = Some("token=a%20b&flag&x=1&t%C3%A9=%E2%98%83&bad=%ff".into());
        assert_eq!(hs.query_param("token").as_deref(), Some("a b"));
        assert_eq!(hs.query_param("flag").as_deref(), Some(""));
        assert_eq!(hs.query_param("té").as_deref(), Some("☃"));
        assert_eq!(hs.query_param("bad").as_deref(), Some("\u{fffd}"));
        assert_eq!(hs.query_param("missing"), None);
    }
}
