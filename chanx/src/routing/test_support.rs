//! Helpers shared by the routing unit tests.

use super::{Route, RouteError, RouteTable, include, path, re_path};

/// Builds a table, panicking with the error.
pub(super) fn table<T>(routes: impl IntoIterator<Item = Route<T>>) -> RouteTable<T> {
    match RouteTable::new(routes) {
        Ok(t) => t,
        Err(e) => panic!("route table failed to build: {e}"),
    }
}

/// The error building a table, panicking if it builds.
pub(super) fn err<T: std::fmt::Debug>(routes: impl IntoIterator<Item = Route<T>>) -> RouteError {
    match RouteTable::new(routes) {
        Ok(t) => panic!("expected an error, got {t:?}"),
        Err(e) => e,
    }
}

/// Target and parameters of the route matching `p`, panicking if none does.
pub(super) fn hit<T: Copy>(t: &RouteTable<T>, p: &str) -> (T, Vec<(String, String)>) {
    let r = t.resolve(p).expect(p);
    (*r.target, r.params.into_vec())
}

/// Owned `(name, value)` pairs.
pub(super) fn ps(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|&(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// `ws/myapp/echo/` (1) and `ws/myapp/chat/(?P<room_id>\w{1,100})/` (2).
pub(super) fn nested() -> RouteTable<i32> {
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
