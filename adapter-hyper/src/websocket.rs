//! The WebSocket upgrade done on hyper directly, for the tokio adapters.
//!
//! A framework's own WebSocket type costs every connection for as long as
//! it lives: axum's `on_upgrade` task and `WebSocket` wrapper were about
//! 1 KB per idle connection (heaptrack), warp's keeps tungstenite's
//! default 128 KiB read buffer; and each converts every message to its
//! own type and back. Here the upgrade answers the handshake itself and
//! hands a tokio-tungstenite stream, configured as every chanx adapter
//! configures it ([`chanx::ws::websocket_config`]), to the endpoint.
//!
//! The checks and their answers are axum's (`405`, `400`, `426` with the
//! same texts), for HTTP/1.1 upgrades (RFC 6455); no subprotocol is
//! chosen, as with the frameworks' types before.

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Why a request is not a WebSocket upgrade [`WebSocketUpgrade`] accepts;
/// its text is the answer's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeRejection {
    /// Not a `GET` (405).
    #[error("Request method must be `GET`")]
    MethodNotGet,
    /// No `upgrade` in the `Connection` header (400).
    #[error("Connection header did not include 'upgrade'")]
    ConnectionHeader,
    /// The `Upgrade` header is not `websocket` (400).
    #[error("`Upgrade` header did not include 'websocket'")]
    UpgradeHeader,
    /// `Sec-WebSocket-Version` is not 13 (400).
    #[error("`Sec-WebSocket-Version` header did not include '13'")]
    VersionHeader,
    /// No `Sec-WebSocket-Key` (400).
    #[error("`Sec-WebSocket-Key` header missing")]
    KeyMissing,
    /// The server connection cannot be upgraded, e.g. HTTP/1.0 (426).
    #[error("WebSocket request couldn't be upgraded since no upgrade state was present")]
    NotUpgradable,
}

impl UpgradeRejection {
    /// The answer's status.
    pub fn status(self) -> StatusCode {
        match self {
            UpgradeRejection::MethodNotGet => StatusCode::METHOD_NOT_ALLOWED,
            UpgradeRejection::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The answer: the status and the text, as `text/plain`.
    pub fn to_response<B: From<String>>(self) -> Response<B> {
        let mut response = Response::new(B::from(self.to_string()));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// An accepted WebSocket upgrade: the `101` answer to send, and the
/// connection hyper hands over once it is sent.
///
/// ```no_run
/// # async fn example(server: chanx::Server, mut request: http::Request<String>) -> http::Response<String> {
/// let ws = chanx_hyper::WebSocketUpgrade::from_request(&mut request);
/// let path = request.uri().path().to_owned();
/// let upgrade = match server.prepare(&path, request.uri().query(), request.headers().clone(), None) {
///     Ok(upgrade) => upgrade,
///     Err(refusal) => return refusal.to_response().map(|body| body.to_string()),
/// };
/// chanx_hyper::WebSocketUpgrade::answer(ws, upgrade)
/// # }
/// ```
#[derive(Debug)]
pub struct WebSocketUpgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl WebSocketUpgrade {
    /// Checks an HTTP/1.1 WebSocket upgrade request and takes its upgrade
    /// from the request (hyper leaves it in the request's extensions).
    pub fn from_request<B>(request: &mut Request<B>) -> Result<Self, UpgradeRejection> {
        let on_upgrade = request.extensions_mut().remove::<OnUpgrade>();
        Self::from_parts(
            request.method(),
            request.version(),
            request.headers(),
            on_upgrade,
        )
    }

    /// [`from_request`](Self::from_request) for a framework that hands out
    /// the request's parts and lets its upgrade be taken earlier (see
    /// `chanx_warp::serve`).
    pub fn from_parts(
        method: &Method,
        version: Version,
        headers: &HeaderMap,
        on_upgrade: Option<OnUpgrade>,
    ) -> Result<Self, UpgradeRejection> {
        if method != Method::GET {
            return Err(UpgradeRejection::MethodNotGet);
        }
        if !header_contains(headers, header::CONNECTION, b"upgrade") {
            return Err(UpgradeRejection::ConnectionHeader);
        }
        if !header_is(headers, header::UPGRADE, b"websocket") {
            return Err(UpgradeRejection::UpgradeHeader);
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or(UpgradeRejection::KeyMissing)?;
        if !header_is(headers, header::SEC_WEBSOCKET_VERSION, b"13") {
            return Err(UpgradeRejection::VersionHeader);
        }
        let accept = derive_accept_key(key.as_bytes());
        if version > Version::HTTP_11 {
            return Err(UpgradeRejection::NotUpgradable);
        }
        let on_upgrade = on_upgrade.ok_or(UpgradeRejection::NotUpgradable)?;
        // Base64, always a valid header value.
        let accept = HeaderValue::try_from(accept).map_err(|_| UpgradeRejection::KeyMissing)?;
        Ok(WebSocketUpgrade { accept, on_upgrade })
    }

    /// The `101 Switching Protocols` answer, with an empty body.
    pub fn response<B: Default>(&self) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept.clone());
        response
    }

    /// The answer to a checked request: the `101` with the connection
    /// served by `upgrade` (see [`spawn`](Self::spawn)), or the rejection's
    /// answer, logged at debug level.
    pub fn answer<B: Default + From<String>>(
        checked: Result<Self, UpgradeRejection>,
        upgrade: chanx::Upgrade,
    ) -> Response<B> {
        match checked {
            Ok(ws) => {
                let response = ws.response();
                ws.spawn(upgrade);
                response
            }
            Err(rejection) => {
                tracing::debug!(%rejection, "websocket handshake refused");
                rejection.to_response()
            }
        }
    }

    /// Serves `upgrade` on the connection once hyper hands it over (after
    /// the answer is sent), on a tokio task of its own.
    pub fn spawn(self, upgrade: chanx::Upgrade) {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(error) => {
                    tracing::debug!(%error, "connection not handed over after the 101");
                    return;
                }
            };
            // Boxed and gone once made: the stream under construction
            // would otherwise size this task's future for the whole
            // connection.
            let socket = Box::pin(async move {
                let config = Some(chanx::ws::websocket_config(upgrade.max_frame_size()));
                let socket = match upgraded.downcast::<TokioIo<TcpStream>>() {
                    // The TCP stream itself (under this crate's `serve`, so
                    // `chanx_axum::serve` and `chanx_warp::serve`): read and
                    // written without hyper's boxed `Upgraded` in between,
                    // one allocation and one dynamic call per read or write
                    // less. hyper-util's auto server (`axum::serve`,
                    // `warp::serve`) wraps the stream: the boxed path below.
                    Ok(parts) => chanx::ws::tungstenite_socket(
                        WebSocketStream::from_partially_read(
                            parts.io.into_inner(),
                            parts.read_buf.to_vec(),
                            Role::Server,
                            config,
                        )
                        .await,
                    ),
                    Err(upgraded) => chanx::ws::tungstenite_socket(
                        WebSocketStream::from_raw_socket(
                            TokioIo::new(upgraded),
                            Role::Server,
                            config,
                        )
                        .await,
                    ),
                };
                (upgrade, socket)
            });
            let (upgrade, socket) = socket.await;
            upgrade.run(socket).await;
        });
    }
}

/// Whether the header's value is `expected`, ignoring ASCII case.
fn header_is(headers: &HeaderMap, name: header::HeaderName, expected: &[u8]) -> bool {
    headers
        .get(name)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(expected))
}

/// Whether the header's value contains `needle` (lowercase ASCII),
/// ignoring ASCII case (`Connection: keep-alive, Upgrade`).
fn header_contains(headers: &HeaderMap, name: header::HeaderName, needle: &[u8]) -> bool {
    headers.get(name).is_some_and(|value| {
        value
            .as_bytes()
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request<()> {
        Request::get("/ws/")
            .header(header::CONNECTION, "keep-alive, Upgrade")
            .header(header::UPGRADE, "WebSocket")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .body(())
            .expect("a valid request")
    }

    #[test]
    fn each_missing_piece_is_refused_with_axums_answer() {
        type Case = (fn(&mut Request<()>), UpgradeRejection, u16);
        let cases: [Case; 5] = [
            (
                |r| *r.method_mut() = Method::POST,
                UpgradeRejection::MethodNotGet,
                405,
            ),
            (
                |r| drop(r.headers_mut().remove(header::CONNECTION)),
                UpgradeRejection::ConnectionHeader,
                400,
            ),
            (
                |r| {
                    drop(
                        r.headers_mut()
                            .insert(header::UPGRADE, HeaderValue::from_static("h2c")),
                    )
                },
                UpgradeRejection::UpgradeHeader,
                400,
            ),
            (
                |r| drop(r.headers_mut().remove(header::SEC_WEBSOCKET_KEY)),
                UpgradeRejection::KeyMissing,
                400,
            ),
            (
                |r| {
                    r.headers_mut()
                        .insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
                },
                UpgradeRejection::VersionHeader,
                400,
            ),
        ];
        for (edit, rejection, status) in cases {
            let mut request = request();
            edit(&mut request);
            let refused = WebSocketUpgrade::from_request(&mut request).map(|_| ());
            assert_eq!(refused, Err(rejection));
            let response: Response<String> = rejection.to_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.body(), &rejection.to_string());
        }
    }

    #[test]
    fn the_answer_is_rfc_6455s() {
        let request = request();
        // A handle that never resolves: enough for the answer.
        let on_upgrade = hyper::upgrade::on(Request::new(()));
        let ws = WebSocketUpgrade::from_parts(
            request.method(),
            request.version(),
            request.headers(),
            Some(on_upgrade),
        )
        .expect("a valid handshake");
        let response: Response<String> = ws.response();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        let headers = response.headers();
        // The example of RFC 6455, section 1.3.
        assert_eq!(
            headers[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(headers[header::UPGRADE], "websocket");
        assert_eq!(headers[header::CONNECTION], "upgrade");
    }

    #[test]
    fn a_request_without_hypers_upgrade_is_not_upgradable() {
        let mut request = request();
        assert_eq!(
            WebSocketUpgrade::from_request(&mut request).map(|_| ()),
            Err(UpgradeRejection::NotUpgradable)
        );
    }
}
