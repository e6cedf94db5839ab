//! An in-process test client: the counterpart of chanx's
//! `WebsocketCommunicator`, with no sockets and no runtime of its own.
//!
//! Wrap the [`Server`] in a [`TestServer`]: its clients share a pool of
//! connection futures, and awaiting any client drives every connection (a
//! group message sent by one client reaches another without awaiting the
//! sender), so tests run on any executor (or `block_on`) with no runtime of
//! their own.
//!
//! ```
//! # use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Deserialize, Serialize, schemars::JsonSchema)]
//! # #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
//! # enum In { Echo { content: String } }
//! # #[derive(Default)] struct EchoConsumer;
//! # impl Consumer for EchoConsumer {
//! #     type Incoming = In; type Outgoing = In; type Event = NoEvent; type GroupMessage = NoGroupMessage;
//! #     async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, m: In) -> HandlerResult {
//! #         let In::Echo { content } = m;
//! #         ctx.send_message(&In::Echo { content: format!("Echo: {content}") }).await?; Ok(())
//! #     }
//! # }
//! use chanx::routing::{path, RouteTable};
//! use chanx::testing::{TestClient, TestServer};
//! use serde_json::json;
//!
//! let endpoint = chanx::Endpoint::builder(EchoConsumer::default).send_completion(true).build().unwrap();
//! let server = TestServer::new(chanx::Server::new(RouteTable::new([path("echo/", endpoint)]).unwrap(), chanx::layer::InMemoryLayer::new()));
//! futures_executor::block_on(async {
//!     let mut client = TestClient::connect(&server, "/echo/").await.unwrap();
//!     client.assert_authenticated().await.unwrap();
//!     client.send_json(&json!({"action": "echo", "payload": {"content": "hi"}})).await.unwrap();
//!     let replies = client.receive_all_json().await.unwrap();
//!     assert_eq!(replies, [json!({"action": "echo", "payload": {"content": "Echo: hi"}})]);
//! });
//! ```

mod pool;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_util::{Sink, Stream};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::Value;

pub(crate) use self::pool::Pool;
use crate::server::{Refusal, Server};
use crate::ws::{SocketError, WsMessage};

/// Default wait for one frame.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// What went wrong in a test client call.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The upgrade was refused (404, 403, ...).
    #[error("upgrade refused: {0}")]
    Refused(#[from] Refusal),
    /// No frame arrived in time.
    #[error("timed out waiting for a frame")]
    Timeout,
    /// The server closed the connection (with this close frame).
    #[error("connection closed by the server: {0:?}")]
    Closed(Option<(u16, String)>),
    /// A frame was not what the call expected.
    #[error("unexpected frame: {0}")]
    Unexpected(String),
    /// A header name or value was invalid.
    #[error("invalid header: {0}")]
    Header(String),
}

/// The server's end of the in-memory socket.
struct ServerSide {
    incoming: Pin<Box<async_channel::Receiver<WsMessage>>>,
    outgoing: async_channel::Sender<WsMessage>,
}

impl Stream for ServerSide {
    type Item = Result<WsMessage, SocketError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.incoming.as_mut().poll_next(cx).map(|m| m.map(Ok))
    }
}

impl Sink<WsMessage> for ServerSide {
    type Error = SocketError;
    fn poll_ready(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<(), SocketError>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, item: WsMessage) -> Result<(), SocketError> {
        self.outgoing
            .try_send(item)
            .map_err(|_| SocketError::new("test client dropped"))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<(), SocketError>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<(), SocketError>> {
        self.outgoing.close();
        Poll::Ready(Ok(()))
    }
}

/// A [`Server`] for in-process tests: the server plus the pool that drives
/// its test clients' connections. It dereferences to the server (for its
/// layer, shutdown switch and routes).
#[derive(Clone)]
pub struct TestServer {
    server: Server,
    pool: Arc<Pool>,
}

impl TestServer {
    /// Wraps `server` for tests.
    pub fn new(server: Server) -> Self {
        TestServer {
            server,
            pool: Arc::default(),
        }
    }

    /// The wrapped server.
    pub fn server(&self) -> &Server {
        &self.server
    }
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for TestServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

/// Builder for a [`TestClient`] with headers, cookies and a peer address.
pub struct TestClientBuilder<'a> {
    server: &'a TestServer,
    path: String,
    headers: HeaderMap,
    error: Option<String>,
}

impl TestClientBuilder<'_> {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            _ => self.error = Some(format!("{name}: {value}")),
        }
        self
    }

    /// Adds a cookie (appends to the `Cookie` header).
    pub fn cookie(self, name: &str, value: &str) -> Self {
        self.header("cookie", &format!("{name}={value}"))
    }

    /// Opens the connection (authentication runs when the client is first awaited).
    pub async fn connect(self) -> Result<TestClient, TestError> {
        if let Some(bad) = self.error {
            return Err(TestError::Header(bad));
        }
        let (path, query) = match self.path.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (self.path.clone(), None),
        };
        let upgrade = self
            .server
            .server
            .prepare(&path, query.as_deref(), self.headers, None)?;
        let (to_server, incoming) = async_channel::unbounded();
        let (outgoing, from_server) = async_channel::unbounded();
        let socket = Box::pin(ServerSide {
            incoming: Box::pin(incoming),
            outgoing,
        });
        let pool = Arc::clone(&self.server.pool);
        let id = pool.add(Box::pin(upgrade.run(socket)));
        Ok(TestClient {
            next_ref: 1,
            pool,
            id,
            to_server,
            from_server,
            close: None,
        })
    }
}

/// An in-process WebSocket client of a [`TestServer`].
pub struct TestClient {
    pool: Arc<Pool>,
    id: u64,
    to_server: async_channel::Sender<WsMessage>,
    from_server: async_channel::Receiver<WsMessage>,
    close: Option<Option<(u16, String)>>,
    /// The `ref` of the next topic request.
    next_ref: u64,
}

impl Drop for TestClient {
    /// Dropping a client drops its connection's future, like a vanished
    /// peer: the channel is unregistered from the layer (the in-memory
    /// layer forgets its group memberships); `on_disconnect` does not run.
    fn drop(&mut self) {
        self.pool.remove(self.id);
    }
}

impl TestClient {
    /// Connects to `path` without headers.
    pub async fn connect(server: &TestServer, path: &str) -> Result<TestClient, TestError> {
        TestClient::builder(server, path).connect().await
    }

    /// Starts a connection with headers or cookies.
    pub fn builder<'a>(server: &'a TestServer, path: &str) -> TestClientBuilder<'a> {
        TestClientBuilder {
            server,
            path: path.to_owned(),
            headers: HeaderMap::new(),
            error: None,
        }
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) -> Result<(), TestError> {
        self.send(WsMessage::Text(text.into()))
    }

    /// Sends any serializable value as a JSON text frame.
    pub async fn send_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TestError> {
        let text =
            serde_json::to_string(value).map_err(|e| TestError::Unexpected(e.to_string()))?;
        self.send(WsMessage::Text(text.into()))
    }

    /// Sends a raw WebSocket message (binary, ping, close, ...).
    pub fn send(&mut self, message: WsMessage) -> Result<(), TestError> {
        self.to_server
            .try_send(message)
            .map_err(|_| TestError::Closed(self.close.clone().flatten()))
    }

    /// The next message from the server within `timeout`, polling the
    /// connection meanwhile.
    pub async fn receive_within(&mut self, timeout: Duration) -> Result<WsMessage, TestError> {
        if let Some(close) = &self.close {
            return Err(TestError::Closed(close.clone()));
        }
        let mut deadline = futures_timer::Delay::new(timeout);
        let receiver = self.from_server.clone();
        let recv = receiver.recv();
        futures_util::pin_mut!(recv);
        let (pool, id) = (&self.pool, self.id);
        let result = std::future::poll_fn(|cx| {
            pool.drive(id, cx);
            if let Poll::Ready(m) = recv.as_mut().poll(cx) {
                return Poll::Ready(m.map_err(|_| TestError::Closed(None)));
            }
            if Pin::new(&mut deadline).poll(cx).is_ready() {
                return Poll::Ready(Err(TestError::Timeout));
            }
            Poll::Pending
        })
        .await;
        self.pool.forget(self.id);
        if let Ok(WsMessage::Close(frame)) = &result {
            self.close = Some(frame.clone());
        }
        result
    }

    /// The next text frame as JSON, skipping pings; a close is an error.
    pub async fn receive_json(&mut self) -> Result<Value, TestError> {
        loop {
            match self.receive_within(DEFAULT_TIMEOUT).await? {
                WsMessage::Text(text) => {
                    return serde_json::from_str(&text)
                        .map_err(|_| TestError::Unexpected(text.to_string()));
                }
                WsMessage::Close(frame) => return Err(TestError::Closed(frame)),
                WsMessage::Ping(_) | WsMessage::Pong(_) => {}
                WsMessage::Binary(b) => {
                    return Err(TestError::Unexpected(format!("{} binary bytes", b.len())));
                }
            }
        }
    }

    /// Subscribes to `topic`; the server's answer (`subscribed`, or the
    /// error frame of a refusal), with frames of other topics and pushes
    /// before it skipped.
    pub async fn subscribe(&mut self, topic: &str) -> Result<Value, TestError> {
        let reference = self
            .send_topic(topic, &serde_json::json!({"action": "subscribe"}))
            .await?;
        self.receive_reply(topic, &reference).await
    }

    /// Unsubscribes from `topic`; the server's answer (`unsubscribed`).
    pub async fn unsubscribe(&mut self, topic: &str) -> Result<Value, TestError> {
        let reference = self
            .send_topic(topic, &serde_json::json!({"action": "unsubscribe"}))
            .await?;
        self.receive_reply(topic, &reference).await
    }

    /// Sends `message` (a JSON object: `{"action": ..., "payload": ...}`)
    /// on `topic` with the envelope and a fresh `ref`; the `ref`.
    pub async fn send_topic<T: Serialize + ?Sized>(
        &mut self,
        topic: &str,
        message: &T,
    ) -> Result<String, TestError> {
        let mut frame =
            serde_json::to_value(message).map_err(|e| TestError::Unexpected(e.to_string()))?;
        let Value::Object(object) = &mut frame else {
            return Err(TestError::Unexpected(
                "a topic message must be a JSON object".into(),
            ));
        };
        let reference = self.next_ref.to_string();
        self.next_ref += 1;
        object.insert("version".into(), Value::from(1));
        object.insert("topic".into(), Value::from(topic));
        object.insert("ref".into(), Value::from(reference.as_str()));
        self.send_json(&frame).await?;
        Ok(reference)
    }

    /// The next frame on `topic` (frames of other topics skipped).
    pub async fn receive_topic(&mut self, topic: &str) -> Result<Value, TestError> {
        loop {
            let frame = self.receive_json().await?;
            if frame["topic"] == topic {
                return Ok(frame);
            }
        }
    }

    /// The next frame on `topic` answering the request `reference`.
    pub async fn receive_reply(
        &mut self,
        topic: &str,
        reference: &str,
    ) -> Result<Value, TestError> {
        loop {
            let frame = self.receive_topic(topic).await?;
            if frame["ref"] == reference {
                return Ok(frame);
            }
        }
    }

    /// Frames until `{"action": "complete"}` (excluded); needs completion frames on.
    pub async fn receive_all_json(&mut self) -> Result<Vec<Value>, TestError> {
        self.receive_until(|f| f["action"] == "complete", false)
            .await
    }

    /// Frames until `{"action": "group_complete"}` (excluded).
    pub async fn receive_all_group(&mut self) -> Result<Vec<Value>, TestError> {
        self.receive_until(|f| f["action"] == "group_complete", false)
            .await
    }

    /// Frames until one whose action is `action`, skipping completion
    /// frames; the stop frame is included if `inclusive`.
    pub async fn receive_until_action(
        &mut self,
        action: &str,
        inclusive: bool,
    ) -> Result<Vec<Value>, TestError> {
        let mut out = Vec::new();
        loop {
            let frame = self.receive_json().await?;
            let a = frame["action"].as_str().unwrap_or_default();
            if a == action {
                if inclusive {
                    out.push(frame);
                }
                return Ok(out);
            }
            if a != "complete" && a != "group_complete" {
                out.push(frame);
            }
        }
    }

    async fn receive_until(
        &mut self,
        stop: impl Fn(&Value) -> bool,
        inclusive: bool,
    ) -> Result<Vec<Value>, TestError> {
        let mut out = Vec::new();
        loop {
            let frame = self.receive_json().await?;
            if stop(&frame) {
                if inclusive {
                    out.push(frame);
                }
                return Ok(out);
            }
            out.push(frame);
        }
    }

    /// Reads the `authentication` frame and returns its payload.
    pub async fn wait_for_auth(&mut self) -> Result<Value, TestError> {
        let frame = self.receive_json().await?;
        if frame["action"] != "authentication" {
            return Err(TestError::Unexpected(frame.to_string()));
        }
        Ok(frame["payload"].clone())
    }

    /// Reads the `authentication` frame and checks its status is 200.
    pub async fn assert_authenticated(&mut self) -> Result<(), TestError> {
        let payload = self.wait_for_auth().await?;
        if payload["status_code"] != 200 {
            return Err(TestError::Unexpected(payload.to_string()));
        }
        Ok(())
    }

    /// `true` if nothing arrives within `timeout`.
    pub async fn receive_nothing(&mut self, timeout: Duration) -> bool {
        matches!(self.receive_within(timeout).await, Err(TestError::Timeout))
    }

    /// Waits for the server's close frame; returns its code.
    pub async fn expect_close(&mut self) -> Result<Option<u16>, TestError> {
        loop {
            match self.receive_within(DEFAULT_TIMEOUT).await {
                Ok(WsMessage::Close(frame)) | Err(TestError::Closed(frame)) => {
                    return Ok(frame.map(|f| f.0));
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes from the client side and lets the server finish its cleanup.
    pub async fn disconnect(mut self) {
        let _ = self.send(WsMessage::Close(Some((
            chanx_proto::close_code::NORMAL,
            String::new(),
        ))));
        self.to_server.close();
        let finished = pool::until_finished(&self.pool, self.id);
        futures_util::pin_mut!(finished);
        let _ = futures_util::future::select(finished, futures_timer::Delay::new(DEFAULT_TIMEOUT))
            .await;
        self.pool.forget(self.id);
    }
}
