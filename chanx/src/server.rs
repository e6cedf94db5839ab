//! What every adapter shares: route resolution, the origin check, and
//! running an accepted connection. An adapter only maps its framework's
//! request and socket types onto [`Server::prepare`] and [`Upgrade::run`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;

use crate::endpoint::Endpoint;
use crate::handshake::Handshake;
use crate::layer::ChannelLayer;
use crate::routing::RouteTable;
use crate::shutdown::{ActiveGuard, Shutdown, ShutdownSignal};
use crate::ws::BoxSocket;

/// Which browser origins may open WebSockets.
///
/// A request without an `Origin` header (a non-browser client) is always
/// allowed; a present one must match an entry exactly (scheme, host and
/// port, case-insensitively), unless the list is [`OriginPolicy::any`].
#[derive(Clone, Debug, Default)]
pub struct OriginPolicy {
    allowed: Option<Vec<String>>,
}

impl OriginPolicy {
    /// Allows every origin.
    pub fn any() -> Self {
        OriginPolicy { allowed: None }
    }

    /// Allows only these origins, e.g. `http://localhost:8000`.
    pub fn allow_list<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        OriginPolicy {
            allowed: Some(
                origins
                    .into_iter()
                    .map(|o| o.as_ref().trim().trim_end_matches('/').to_ascii_lowercase())
                    .filter(|o| !o.is_empty())
                    .collect(),
            ),
        }
    }

    /// Whether a request with this `Origin` header may connect.
    ///
    /// ```
    /// let policy = chanx::OriginPolicy::allow_list(["http://localhost:8000"]);
    /// assert!(policy.allows(None));
    /// assert!(policy.allows(Some("http://LOCALHOST:8000")));
    /// assert!(!policy.allows(Some("http://evil.example")));
    /// ```
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match (origin, &self.allowed) {
            (None, _) | (_, None) => true,
            (Some(origin), Some(list)) => {
                let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
                list.contains(&origin)
            }
        }
    }

    /// Whether a request with these headers may proceed: one without
    /// `Origin` (a non-browser client), or with one allowed `Origin`.
    /// With an allow-list, several `Origin` headers (no browser sends
    /// that) are refused, so that a check of the first one cannot be
    /// fooled by a second.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header::ORIGIN};
    /// let policy = chanx::OriginPolicy::allow_list(["http://localhost:8000"]);
    /// let mut headers = HeaderMap::new();
    /// assert!(policy.allows_request(&headers));
    /// headers.append(ORIGIN, HeaderValue::from_static("http://localhost:8000"));
    /// assert!(policy.allows_request(&headers));
    /// headers.append(ORIGIN, HeaderValue::from_static("http://evil.example"));
    /// assert!(!policy.allows_request(&headers));
    /// ```
    pub fn allows_request(&self, headers: &HeaderMap) -> bool {
        if self.allowed.is_none() {
            return true;
        }
        let mut origins = headers.get_all(http::header::ORIGIN).iter();
        match (origins.next(), origins.next()) {
            (None, _) => true,
            // An origin that is not even text matches no entry of a list.
            (Some(origin), None) => origin.to_str().is_ok_and(|o| self.allows(Some(o))),
            (Some(_), Some(_)) => false,
        }
    }
}

/// Why an upgrade request is refused before the WebSocket opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No endpoint serves the path (HTTP 404).
    #[error("no WebSocket endpoint at this path")]
    NotFound,
    /// The `Origin` header is not allowed (HTTP 403).
    #[error("origin not allowed")]
    ForbiddenOrigin,
    /// The server is shutting down (HTTP 503).
    #[error("server shutting down")]
    ShuttingDown,
}

impl Refusal {
    /// The HTTP status to answer with.
    pub fn status(self) -> u16 {
        match self {
            Refusal::NotFound => 404,
            Refusal::ForbiddenOrigin => 403,
            Refusal::ShuttingDown => 503,
        }
    }

    /// The HTTP answer every adapter sends: the status and
    /// `{"detail": "<reason>"}` as JSON.
    ///
    /// ```
    /// let response = chanx::Refusal::NotFound.to_response();
    /// assert_eq!(response.status(), 404);
    /// assert_eq!(response.body(), r#"{"detail":"no WebSocket endpoint at this path"}"#);
    /// ```
    pub fn to_response(self) -> http::Response<String> {
        let body = serde_json::json!({ "detail": self.to_string() }).to_string();
        let mut response = http::Response::new(body);
        *response.status_mut() =
            http::StatusCode::from_u16(self.status()).unwrap_or(http::StatusCode::NOT_FOUND);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Routes, channel layer, origin policy and shutdown switch: everything an
/// adapter needs to serve WebSockets. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    routes: Arc<RouteTable<Endpoint>>,
    layer: Arc<dyn ChannelLayer>,
    origins: OriginPolicy,
    shutdown: Shutdown,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("routes", &self.routes.len())
            .field("origins", &self.origins)
            .finish()
    }
}

impl Server {
    /// Serves `routes` over `layer`, allowing any origin.
    pub fn new(routes: RouteTable<Endpoint>, layer: impl ChannelLayer) -> Self {
        Server {
            routes: Arc::new(routes),
            layer: Arc::new(layer),
            origins: OriginPolicy::any(),
            shutdown: Shutdown::new(),
        }
    }

    /// Restricts browser origins.
    pub fn origins(mut self, origins: OriginPolicy) -> Self {
        self.origins = origins;
        self
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable<Endpoint> {
        &self.routes
    }

    /// The channel layer (to send events from HTTP handlers).
    pub fn layer(&self) -> &Arc<dyn ChannelLayer> {
        &self.layer
    }

    /// The shutdown switch.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// The largest frame any endpoint accepts: the limit for a transport
    /// configured before the route is known (the core still applies each
    /// endpoint's own limit, closing with 1009).
    pub fn max_frame_size(&self) -> usize {
        self.routes
            .routes()
            .map(|route| route.target.info().options.max_frame_size)
            .max()
            .unwrap_or(chanx_proto::Options::default().max_frame_size)
    }

    /// Decides whether an upgrade request may proceed, before the WebSocket
    /// handshake answers 101.
    pub fn prepare(
        &self,
        path: &str,
        query: Option<&str>,
        headers: HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<Upgrade, Refusal> {
        // Count the connection before checking the switch: `graceful()`
        // must not see zero connections while this one is starting.
        let guard = self.shutdown.track();
        if self.shutdown.is_triggered() {
            return Err(Refusal::ShuttingDown);
        }
        let resolved = self.routes.resolve(path).ok_or(Refusal::NotFound)?;
        if !self.origins.allows_request(&headers) {
            return Err(Refusal::ForbiddenOrigin);
        }
        Ok(Upgrade(Box::new(Accepted {
            endpoint: resolved.target.clone(),
            handshake: Handshake {
                path: path.to_owned(),
                query: query.map(str::to_owned),
                headers: detached(headers),
                params: resolved.params,
                peer,
            },
            layer: Arc::clone(&self.layer),
            signal: self.shutdown.signal(),
            guard,
        })))
    }
}

/// The headers of the WebSocket handshake itself, spent once the socket is
/// open: not kept with the connection.
const TRANSPORT_HEADERS: [http::HeaderName; 5] = [
    http::header::CONNECTION,
    http::header::UPGRADE,
    http::header::SEC_WEBSOCKET_KEY,
    http::header::SEC_WEBSOCKET_VERSION,
    http::header::SEC_WEBSOCKET_EXTENSIONS,
];

/// The headers the connection keeps, with values of their own.
///
/// An HTTP server hands over header values that share its read buffer
/// (hyper: an 8 KiB allocation per connection); the handshake lives as
/// long as the connection, and would keep that whole buffer alive for a
/// few hundred bytes of headers (measured with heaptrack: 8.2 KB of 23 KB
/// per idle connection on axum). The WebSocket handshake's own headers
/// ([`TRANSPORT_HEADERS`]) are left out, and the map is sized for what it
/// holds (`HeaderMap` rounds up, keeping room for a quarter more): an
/// entry is about 100 bytes, and a map sized for a browser's dozen headers
/// was 1.3 KB per connection (heaptrack).
fn detached(headers: HeaderMap) -> HeaderMap {
    let kept = |name: &http::HeaderName| !TRANSPORT_HEADERS.contains(name);
    let mut own = HeaderMap::with_capacity(headers.keys().filter(|name| kept(name)).count());
    let mut last_name = None;
    for (name, value) in headers {
        // `None`: another value of the previous header.
        let name = match name {
            Some(name) => last_name.insert(name).clone(),
            None => match &last_name {
                Some(name) => name.clone(),
                None => continue,
            },
        };
        if !kept(&name) {
            continue;
        }
        let sensitive = value.is_sensitive();
        let mut copy = http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or(value);
        copy.set_sensitive(sensitive);
        own.append(name, copy);
    }
    own
}

/// An accepted upgrade, ready to run once the adapter has the socket.
///
/// One pointer wide: adapters keep it in their upgrade callback, whose
/// future lives as long as the connection.
pub struct Upgrade(Box<Accepted>);

struct Accepted {
    endpoint: Endpoint,
    handshake: Handshake,
    layer: Arc<dyn ChannelLayer>,
    signal: ShutdownSignal,
    guard: ActiveGuard,
}

impl Upgrade {
    /// The endpoint that will serve the connection.
    pub fn endpoint(&self) -> &Endpoint {
        &self.0.endpoint
    }

    /// The handshake authentication will see.
    pub fn handshake(&self) -> &Handshake {
        &self.0.handshake
    }

    /// The endpoint's largest accepted frame (see
    /// [`ws::websocket_config`](crate::ws::websocket_config)).
    pub fn max_frame_size(&self) -> usize {
        self.0.endpoint.info().options.max_frame_size
    }

    /// Runs the connection over `socket` until it ends.
    pub fn run(self, socket: BoxSocket) -> impl Future<Output = ()> + Send + 'static {
        let Accepted {
            endpoint,
            handshake,
            layer,
            signal,
            guard,
        } = *self.0;
        let serving = endpoint.serve(socket, handshake, layer, signal);
        // Not an `async fn`: its future would keep a copy of the upgrade,
        // handshake included, for the whole connection.
        async move {
            serving.await;
            drop(guard);
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::detached;

    #[test]
    fn detached_headers_keep_every_other_value_and_its_sensitivity() {
        let mut headers = HeaderMap::new();
        let mut cookie = HeaderValue::from_static("a=1; b=2");
        cookie.set_sensitive(true);
        headers.insert("cookie", cookie);
        headers.append("x-many", HeaderValue::from_static("one"));
        headers.append("x-many", HeaderValue::from_static("two"));
        let mut with_transport = headers.clone();
        with_transport.insert("connection", HeaderValue::from_static("Upgrade"));
        with_transport.insert("upgrade", HeaderValue::from_static("websocket"));
        with_transport.insert(
            "sec-websocket-key",
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        with_transport.insert("sec-websocket-version", HeaderValue::from_static("13"));
        let own = detached(with_transport);
        assert_eq!(own, headers, "the handshake's own headers are left out");
        assert!(own["cookie"].is_sensitive());
        let many: Vec<_> = own.get_all("x-many").iter().collect();
        assert_eq!(many, ["one", "two"]);
    }
}
