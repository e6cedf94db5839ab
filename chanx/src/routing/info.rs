//! [`RouteInfo`] and [`ParamInfo`]: the description of a flattened route.

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

/// One flattened route of a [`RouteTable`](super::RouteTable).
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
