//! Harness of the end-to-end suite: starts the quickstart program on an
//! ephemeral port with a chosen adapter, and a small WebSocket/HTTP client.
//!
//! The suite in `tests/` is written once against [`Running`] and runs per
//! adapter, so a new adapter only adds a variant to [`Adapter`] and the
//! function that serves the app with it.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A framework (and runtime) the quickstart is served with in the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// axum on tokio.
    Axum,
    /// warp on tokio.
    Warp,
    /// `chanx-async-std` on the async-std runtime.
    AsyncStd,
    /// `chanx-async-std` on smol.
    Smol,
}

impl Adapter {
    /// The quickstart's `--adapter` for this one.
    pub fn quickstart(self) -> quickstart::Adapter {
        match self {
            Adapter::Axum => quickstart::Adapter::Axum,
            Adapter::Warp => quickstart::Adapter::Warp,
            Adapter::AsyncStd | Adapter::Smol => quickstart::Adapter::AsyncStd,
        }
    }

    fn index(self) -> usize {
        match self {
            Adapter::Axum => 0,
            Adapter::Warp => 1,
            Adapter::AsyncStd => 2,
            Adapter::Smol => 3,
        }
    }
}

/// How long a test waits for any one frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// A quickstart server running in this process, on the channel layer `L`
/// (the in-memory layer unless started with [`start_on`]).
pub struct Running<L = chanx::layer::InMemoryLayer> {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its chanx server (layer, shutdown).
    pub server: chanx::Server,
    /// Its channel layer, to look at from tests (group sizes, channels).
    pub layer: L,
    /// Stops serving (called on drop).
    stop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl<L> Drop for Running<L> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// A benchmark's setting: the environment variable `name` as a number,
/// `default` when unset or not a number.
pub fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of a benchmark's rounds (of an even count, the mean of the
/// middle two).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

/// A benchmark's raw WebSocket client.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw client of the quickstart at `addr` on `path`, logged in as `user`
/// and past a successful authentication frame (`TCP_NODELAY` on). Panics
/// after a minute without the connection or the frame.
pub async fn ws_as(addr: SocketAddr, path: &str, user: &str) -> Ws {
    const WAIT: Duration = Duration::from_secs(60);
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("a request");
    let cookie = format!("sessionid={}", session_for(user));
    request
        .headers_mut()
        .insert("cookie", cookie.parse().expect("a cookie header"));
    let connecting = tokio_tungstenite::connect_async_with_config(request, None, true);
    let (mut ws, _) = tokio::time::timeout(WAIT, connecting)
        .await
        .expect("connecting timed out")
        .expect("connect");
    match tokio::time::timeout(WAIT, ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) if text.contains(r#""status_code":200"#) => ws,
        other => panic!("expected the authentication frame, got {other:?}"),
    }
}

/// The secret the test servers sign cookies with.
pub const SECRET: &str = "e2e-secret-key";

/// Starts the quickstart program with `adapter` and options tweaked by `tweak`.
pub async fn start_with(adapter: Adapter, tweak: impl FnOnce(&mut quickstart::Config)) -> Running {
    start_on(adapter, chanx::layer::InMemoryLayer::new(), tweak).await
}

/// [`start_with`] on the channel layer `layer` (`chanx_fred::FredLayer`,
/// as `quickstart serve --redis` builds it, needs a tokio adapter).
pub async fn start_on<L>(
    adapter: Adapter,
    layer: L,
    tweak: impl FnOnce(&mut quickstart::Config),
) -> Running<L>
where
    L: chanx::layer::ChannelLayer + Clone,
{
    let listener = listener();
    let addr = listener.local_addr().expect("local addr");
    let mut config = quickstart::Config::from_env(addr, |name| match name {
        "CHANX_SECRET_KEY" => Some(SECRET.to_owned()),
        _ => None,
    })
    .expect("config");
    config.adapter = adapter.quickstart();
    tweak(&mut config);
    let app = quickstart::build_app_on(&config, layer.clone()).expect("app");
    let server = app.server.clone();
    let stop = match adapter {
        Adapter::Axum => serve_axum(app.router, listener),
        Adapter::Warp => serve_warp(quickstart::warp::filter(&app), listener),
        Adapter::AsyncStd => serve_async_std(app.server, listener),
        Adapter::Smol => serve_smol(app.server, listener),
    };
    Running {
        addr,
        server,
        layer,
        stop: Some(stop),
    }
}

/// A listener on a free loopback port with a deep accept queue.
fn listener() -> tokio::net::TcpListener {
    // An explicit backlog: many simultaneous connects must not overflow
    // the accept queue (a dropped SYN is retried only after a second).
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_nodelay(true).expect("nodelay");
    socket.bind(([127, 0, 0, 1], 0).into()).expect("bind");
    socket.listen(1024).expect("listen")
}

/// Serves a chanx server of the test's own (its WebSockets only) with
/// `adapter`; `layer` is the server's channel layer.
pub async fn start_server(
    adapter: Adapter,
    server: chanx::Server,
    layer: chanx::layer::InMemoryLayer,
) -> Running {
    use chanx_axum::RouterExt as _;
    let listener = listener();
    let addr = listener.local_addr().expect("local addr");
    let stop: Stop = match adapter {
        Adapter::Axum => serve_axum(axum::Router::new().chanx(server.clone()), listener),
        Adapter::Warp => serve_warp(chanx_warp::websockets(server.clone()), listener),
        Adapter::AsyncStd => serve_async_std(server.clone(), listener),
        Adapter::Smol => serve_smol(server.clone(), listener),
    };
    Running {
        addr,
        server,
        layer,
        stop: Some(stop),
    }
}

fn serve_warp<F>(filter: F, listener: tokio::net::TcpListener) -> Stop
where
    F: warp::Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let limits = chanx_warp::ServeLimits::default();
    let task = tokio::spawn(chanx_warp::serve(
        listener,
        filter,
        limits,
        std::future::pending(),
    ));
    Box::new(move || task.abort())
}

/// A way to stop a server, called when its [`Running`] is dropped.
type Stop = Box<dyn FnOnce() + Send + Sync>;

fn serve_axum(router: axum::Router, listener: tokio::net::TcpListener) -> Stop {
    let limits = chanx_axum::ServeLimits::default();
    let task = tokio::spawn(chanx_axum::serve(
        listener,
        router,
        limits,
        std::future::pending(),
    ));
    Box::new(move || task.abort())
}

/// Serves `app`'s WebSockets with `chanx-async-std` on the async-std
/// runtime, as `quickstart serve --adapter async-std` does: the accept loop
/// blocks a thread of its own, the connections run on async-std's
/// executor. Stopping ends the loop and every connection (as aborting a
/// task does on tokio), without starting the server's shutdown.
fn serve_async_std(server: chanx::Server, listener: tokio::net::TcpListener) -> Stop {
    let listener = async_std::net::TcpListener::from(listener.into_std().expect("std listener"));
    let (cancel, cancelled) = async_channel::bounded::<()>(1);
    let thread = std::thread::Builder::new()
        .name("e2e-async-std".into())
        .spawn(move || {
            let spawn = |task| {
                async_std::task::spawn(until_cancelled(task, cancelled.clone()));
            };
            let serving = chanx_async_std::serve(&server, listener, spawn);
            async_std::task::block_on(until_cancelled(serving, cancelled.clone()));
        })
        .expect("async-std server thread");
    Box::new(move || {
        // Closing the channel wakes every waiting `recv`.
        cancel.close();
        let _ = thread.join();
    })
}

/// Serves `app`'s WebSockets with `chanx-async-std` on a smol executor of
/// its own, run by two threads. Stopping ends the accept loop and drops
/// the executor with every connection on it, without starting the
/// server's shutdown.
fn serve_smol(server: chanx::Server, listener: tokio::net::TcpListener) -> Stop {
    let listener = smol::net::TcpListener::try_from(listener.into_std().expect("std listener"))
        .expect("smol listener");
    let (cancel, cancelled) = async_channel::bounded::<()>(1);
    let executor = std::sync::Arc::new(smol::Executor::new());
    let helper = std::thread::Builder::new()
        .name("e2e-smol".into())
        .spawn({
            let executor = std::sync::Arc::clone(&executor);
            let cancelled = cancelled.clone();
            move || smol::block_on(executor.run(async move { cancelled.recv().await }))
        })
        .expect("smol executor thread");
    let main = std::thread::Builder::new()
        .name("e2e-smol".into())
        .spawn(move || {
            let spawner = std::sync::Arc::clone(&executor);
            let spawn = move |task| spawner.spawn(task).detach();
            let serving = chanx_async_std::serve(&server, listener, spawn);
            smol::block_on(executor.run(until_cancelled(serving, cancelled)));
        })
        .expect("smol server thread");
    Box::new(move || {
        cancel.close();
        let _ = main.join();
        let _ = helper.join();
    })
}

/// Runs `future` until it ends or `cancelled` is closed.
async fn until_cancelled(
    future: impl std::future::Future<Output = ()>,
    cancelled: async_channel::Receiver<()>,
) {
    let cancelled = std::pin::pin!(cancelled.recv());
    futures_util::future::select(std::pin::pin!(future), cancelled).await;
}

/// Starts the quickstart program with default options.
pub async fn start(adapter: Adapter) -> Running {
    start_with(adapter, |_| {}).await
}

/// One server per adapter with default options, shared by every test of
/// the binary that asks for it (building the app costs a noticeable amount
/// of CPU in debug builds, mostly compiling the route regexes).
///
/// It runs on its own runtime, so it outlives each test's runtime. Tests
/// that use it must not depend on server-wide state: they use room names
/// of their own and never shut it down; tests needing other options, a
/// shutdown or a quiet room use [`start`] / [`start_with`].
pub async fn shared(adapter: Adapter) -> &'static Running {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    static SERVERS: [tokio::sync::OnceCell<Running>; 4] = [
        tokio::sync::OnceCell::const_new(),
        tokio::sync::OnceCell::const_new(),
        tokio::sync::OnceCell::const_new(),
        tokio::sync::OnceCell::const_new(),
    ];
    let cell = &SERVERS[adapter.index()];
    cell.get_or_init(|| async move {
        let runtime = RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("shared-e2e-server")
                .enable_all()
                .build()
                .expect("shared server runtime")
        });
        runtime
            .spawn(start(adapter))
            .await
            .expect("shared server start")
    })
    .await
}

/// A valid session cookie value for `username`.
pub fn session_for(username: &str) -> String {
    session_issued_at(username, quickstart::store::now_unix())
}

/// A session cookie value for `username` signed with the test secret and
/// issued at `issued_unix` seconds (to build expired sessions).
pub fn session_issued_at(username: &str, issued_unix: u64) -> String {
    quickstart::session::SessionSigner::new(SECRET).sign(username, issued_unix)
}

/// A WebSocket client connection.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a handshake attempt produced.
// Short-lived and matched on at once: boxing the client buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Connect {
    /// 101: the socket is open.
    Open(Client),
    /// Refused with this HTTP status.
    Refused(u16),
    /// The handshake failed without an HTTP status (connection refused or
    /// reset, e.g. by an adapter that stopped listening).
    Failed(String),
}

impl Connect {
    /// The refusal status; panics (with `what`) if the socket opened.
    pub fn refused_status(self, what: &str) -> Option<u16> {
        match self {
            Connect::Open(_) => panic!("{what}: the upgrade unexpectedly succeeded"),
            Connect::Refused(status) => Some(status),
            Connect::Failed(_) => None,
        }
    }

    /// The open client; panics (with `what`) if the upgrade was refused.
    pub fn open(self, what: &str) -> Client {
        match self {
            Connect::Open(client) => client,
            Connect::Refused(status) => panic!("{what}: upgrade refused with {status}"),
            Connect::Failed(error) => panic!("{what}: upgrade failed: {error}"),
        }
    }
}

impl<L: Clone> Running<L> {
    /// The same server reached at `addr`, where a test serves its own
    /// router around it (stopping it is the test's business).
    pub fn reached_at(&self, addr: SocketAddr) -> Running<L> {
        Running {
            addr,
            server: self.server.clone(),
            layer: self.layer.clone(),
            stop: None,
        }
    }

    /// The `ws://` URL of `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Connects to `path` with extra headers.
    pub async fn connect_with(&self, path: &str, headers: &[(&str, &str)]) -> Connect {
        let mut request = self.ws_url(path).into_client_request().expect("request");
        for (name, value) in headers {
            request.headers_mut().append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                value.parse().expect("header value"),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Connect::Open(Client { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Connect::Refused(response.status().as_u16())
            }
            Err(other) => Connect::Failed(other.to_string()),
        }
    }

    /// Connects as `username` (valid session cookie) and checks the 200 authentication frame.
    pub async fn connect_as(&self, path: &str, username: &str) -> Client {
        let cookie = format!("sessionid={}", session_for(username));
        match self.connect_with(path, &[("cookie", &cookie)]).await {
            Connect::Open(mut client) => {
                let auth = client.recv_json().await;
                assert_eq!(
                    auth["payload"]["status_code"], 200,
                    "authentication frame: {auth}"
                );
                client
            }
            Connect::Refused(status) => panic!("upgrade refused with {status}"),
            Connect::Failed(error) => panic!("upgrade failed: {error}"),
        }
    }

    /// Connects to `path` with the session cookie value `session` (no checks).
    pub async fn connect_with_session(&self, path: &str, session: &str) -> Connect {
        let cookie = format!("sessionid={session}");
        self.connect_with(path, &[("cookie", &cookie)]).await
    }
}

impl Client {
    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Sends JSON.
    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends several text frames with a single flush (pipelined).
    pub async fn send_batch<I>(&mut self, texts: I)
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        for text in texts {
            let text: String = text.into();
            self.ws
                .feed(Message::Text(text.into()))
                .await
                .expect("feed");
        }
        self.ws.flush().await.expect("flush");
    }

    /// Sends messages in one write (one TCP segment when they fit), as a
    /// client that sends and closes at once does.
    pub async fn send_all(&mut self, messages: impl IntoIterator<Item = Message>) {
        for message in messages {
            self.ws.feed(message).await.expect("feed");
        }
        self.ws.flush().await.expect("flush");
    }

    /// Sends any message.
    pub async fn send(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// The next data or close message (pings/pongs skipped, and answered by
    /// tungstenite), or `None` on timeout or when the connection ended
    /// without a close frame. `timeout` bounds the whole wait: pings do not
    /// extend it.
    pub async fn next(&mut self, timeout: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(Some(Ok(message))) => return Some(message),
                Ok(Some(Err(_)) | None) => return None,
                Err(_) => return None,
            }
        }
    }

    /// The next text frame as JSON; panics on anything else.
    pub async fn recv_json(&mut self) -> Value {
        match self.next(FRAME_TIMEOUT).await {
            Some(Message::Text(text)) => serde_json::from_str(&text).expect("frame is JSON"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The raw text of the next frame.
    pub async fn recv_text(&mut self) -> String {
        match self.next(FRAME_TIMEOUT).await {
            Some(Message::Text(text)) => text.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Waits for the close frame and returns its code (skipping data frames).
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next(FRAME_TIMEOUT).await {
                Some(Message::Close(frame)) => return frame.map(|f: CloseFrame| u16::from(f.code)),
                Some(_) => {}
                None => return None,
            }
        }
    }

    /// `true` if the connection ends within [`FRAME_TIMEOUT`], by a close
    /// frame or at the transport level (data frames are skipped); `false`
    /// if it is still open.
    pub async fn ends(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => return true,
                Ok(Some(Ok(_))) => {}
                Err(_) => return false,
            }
        }
    }

    /// `true` if no data frame arrives within `wait`.
    pub async fn receives_nothing(&mut self, wait: Duration) -> bool {
        self.next(wait).await.is_none()
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Result of an HTTP call.
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: axum::http::HeaderMap,
    /// Body as text.
    pub body: String,
}

impl HttpReply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A minimal HTTP/1.1 client over a raw TCP stream (no extra dependency);
/// the body is sent as `application/json`.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> HttpReply {
    http_with(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body,
    )
    .await
}

/// [`http`] with the given extra headers (and no default `Content-Type`).
pub async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(FRAME_TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .expect("timeout")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = axum::http::HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':')
            && let (Ok(k), Ok(v)) = (
                axum::http::HeaderName::from_bytes(k.trim().as_bytes()),
                v.trim().parse(),
            )
        {
            headers.append(k, v);
        }
    }
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    HttpReply {
        status,
        headers,
        body,
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}
