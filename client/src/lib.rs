//! A typed Rust client for chanx WebSocket endpoints, over
//! tokio-tungstenite: for service-to-service traffic and for integration
//! tests.
//!
//! It is typed by the endpoint's own message sets: `S` is what the client
//! sends (the endpoint's `Consumer::Incoming`), `R` what the endpoint's
//! handlers send (`Consumer::Outgoing`), `G` its group messages
//! (`Consumer::GroupMessage`). The framework's frames (errors, pong,
//! completions, gap notices) arrive as [`Frame`] variants of their own,
//! and the authentication frame is read by [`Connector::connect`].
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize)]
//! #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
//! enum Send { Echo { content: String } }
//!
//! #[derive(Debug, Deserialize)]
//! #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
//! enum Receive { Echo { content: String } }
//!
//! # async fn run() -> Result<(), chanx_client::Error> {
//! let mut client = chanx_client::Connector::new("ws://localhost:8000/ws/myapp/echo/")
//!     .cookie("sessionid", "<value>")
//!     .connect::<Send, Receive>()
//!     .await?;
//! client.send(&Send::Echo { content: "hi".into() }).await?;
//! let reply = client.recv_message().await?;
//! println!("{reply:?}");
//! client.close().await?;
//! # Ok(()) }
//! ```

mod error;
mod frame;

use std::marker::PhantomData;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use error::Error;
pub use frame::{AuthenticationResult, ErrorPayload, Frame, ValidationProblem};

/// The group-message type of an endpoint whose clients receive none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub enum NoGroupMessage {}

/// How long [`Client::recv`] waits for a frame unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens connections: the URL, headers and cookies of the upgrade request.
#[derive(Clone, Debug)]
pub struct Connector {
    url: String,
    headers: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
    authentication_frame: bool,
}

impl Connector {
    /// A connector for `url` (`ws://host:port/path/`).
    pub fn new(url: impl Into<String>) -> Self {
        Connector {
            url: url.into(),
            headers: Vec::new(),
            cookies: Vec::new(),
            authentication_frame: true,
        }
    }

    /// Adds a header to the upgrade request (`Authorization`, `Origin`...).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a cookie to the upgrade request (`sessionid` for session
    /// authentication).
    pub fn cookie(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cookies.push((name.into(), value.into()));
        self
    }

    /// For endpoints built without the authentication frame: do not wait
    /// for one.
    pub fn without_authentication_frame(mut self) -> Self {
        self.authentication_frame = false;
        self
    }

    /// Upgrades and reads the authentication frame: a client when the
    /// endpoint accepted the connection, [`Error::Refused`] when the
    /// upgrade was refused, [`Error::Authentication`] when authentication
    /// was. `G` defaults to [`NoGroupMessage`]; see
    /// [`connect_with_groups`](Self::connect_with_groups).
    pub async fn connect<S, R>(self) -> Result<Client<S, R>, Error>
    where
        S: Serialize,
        R: DeserializeOwned,
    {
        self.connect_with_groups().await
    }

    /// [`connect`](Self::connect) for an endpoint whose clients also
    /// receive group messages of type `G`.
    pub async fn connect_with_groups<S, R, G>(self) -> Result<Client<S, R, G>, Error>
    where
        S: Serialize,
        R: DeserializeOwned,
        G: DeserializeOwned,
    {
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let headers = request.headers_mut();
        for (name, value) in &self.headers {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::InvalidRequest(format!("header name {name:?}: {e}")))?;
            let value = http::HeaderValue::from_str(value)
                .map_err(|e| Error::InvalidRequest(format!("header {name}: {e}")))?;
            headers.append(name, value);
        }
        if !self.cookies.is_empty() {
            let cookie: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let value = http::HeaderValue::from_str(&cookie.join("; "))
                .map_err(|e| Error::InvalidRequest(format!("cookie: {e}")))?;
            headers.append(http::header::COOKIE, value);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        let mut client = Client {
            ws,
            authentication: None,
            timeout: DEFAULT_TIMEOUT,
            types: PhantomData,
        };
        if self.authentication_frame {
            let text = client.next_text(DEFAULT_TIMEOUT).await?;
            let result = authentication_result(&text)?;
            if result.status_code != 200 {
                return Err(Error::Authentication(result));
            }
            client.authentication = Some(result);
        }
        Ok(client)
    }
}

fn authentication_result(text: &str) -> Result<AuthenticationResult, Error> {
    #[derive(serde::Deserialize)]
    struct AuthenticationFrame {
        action: String,
        payload: AuthenticationResult,
    }
    match serde_json::from_str::<AuthenticationFrame>(text) {
        Ok(frame) if frame.action == "authentication" => Ok(frame.payload),
        Ok(_) => Err(Error::UnexpectedFrame {
            text: text.chars().take(512).collect(),
            reason: "the first frame is not the authentication frame".into(),
        }),
        Err(e) => Err(Error::UnexpectedFrame {
            text: text.chars().take(512).collect(),
            reason: e.to_string(),
        }),
    }
}

/// An open connection to one endpoint. WebSocket pings from the server are
/// answered while the client reads.
pub struct Client<S, R, G = NoGroupMessage> {
    ws: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    authentication: Option<AuthenticationResult>,
    timeout: Duration,
    types: PhantomData<fn(S) -> (R, G)>,
}

impl<S, R, G> std::fmt::Debug for Client<S, R, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("authentication", &self.authentication)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<S: Serialize, R: DeserializeOwned, G: DeserializeOwned> Client<S, R, G> {
    /// The authentication frame's payload (`None` when the connector was
    /// told not to wait for one).
    pub fn authentication(&self) -> Option<&AuthenticationResult> {
        self.authentication.as_ref()
    }

    /// Sets how long [`recv`](Self::recv) waits for a frame.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Sends one of the endpoint's incoming messages.
    pub async fn send(&mut self, message: &S) -> Result<(), Error> {
        self.send_raw_json(message).await
    }

    /// Sends any JSON, unchecked against the endpoint's message set (to
    /// test how the endpoint answers what it does not expect).
    pub async fn send_raw_json<T: Serialize + ?Sized>(&mut self, message: &T) -> Result<(), Error> {
        let text = serde_json::to_string(message).map_err(Error::Serialize)?;
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// The next frame, waiting at most the client's timeout;
    /// [`Error::Closed`] with the close code when the connection ends.
    pub async fn recv(&mut self) -> Result<Frame<R, G>, Error> {
        let text = self.next_text(self.timeout).await?;
        frame::decode(&text)
    }

    /// The next frame that is one of the endpoint's own messages, skipping
    /// completion frames; an `error` frame in between is
    /// [`Error::ErrorFrame`], a group message or gap notice
    /// [`Error::UnexpectedFrame`].
    pub async fn recv_message(&mut self) -> Result<R, Error> {
        loop {
            match self.recv().await? {
                Frame::Message(message) => return Ok(message),
                Frame::Complete | Frame::GroupComplete => {}
                Frame::Error(payload) => return Err(Error::ErrorFrame(payload)),
                other => {
                    return Err(Error::UnexpectedFrame {
                        text: format!("{}", FrameKind(&other)),
                        reason: "expected one of the endpoint's messages".into(),
                    });
                }
            }
        }
    }

    /// Sends a WebSocket ping and waits for its pong (frames received
    /// meanwhile are discarded); the round-trip time.
    pub async fn ping(&mut self) -> Result<Duration, Error> {
        let started = tokio::time::Instant::now();
        let payload = Bytes::from_static(b"chanx-client");
        self.ws.send(Message::Ping(payload.clone())).await?;
        loop {
            let message = self.next_message(self.timeout).await?;
            if message == Message::Pong(payload.clone()) {
                return Ok(started.elapsed());
            }
        }
    }

    /// Closes with 1000 and waits for the server's close frame; the code it
    /// answered with.
    pub async fn close(self) -> Result<Option<u16>, Error> {
        self.close_with(1000, "").await
    }

    /// Closes with `code` and `reason` and waits for the server's close
    /// frame; the code it answered with.
    pub async fn close_with(mut self, code: u16, reason: &str) -> Result<Option<u16>, Error> {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        };
        self.ws.send(Message::Close(Some(frame))).await?;
        loop {
            match self.next_message(self.timeout).await {
                Err(Error::Closed { code }) => return Ok(code),
                Err(error) => return Err(error),
                Ok(_) => {}
            }
        }
    }

    /// The server's close code once it closes, skipping the frames before;
    /// `None` for a close without a code.
    pub async fn closed(&mut self) -> Result<Option<u16>, Error> {
        loop {
            match self.next_message(self.timeout).await {
                Err(Error::Closed { code }) => return Ok(code),
                Err(error) => return Err(error),
                Ok(_) => {}
            }
        }
    }

    async fn next_text(&mut self, timeout: Duration) -> Result<String, Error> {
        loop {
            if let Message::Text(text) = self.next_message(timeout).await? {
                return Ok(text.as_str().to_owned());
            }
        }
    }

    /// The next frame of any kind; a close frame is [`Error::Closed`].
    async fn next_message(&mut self, timeout: Duration) -> Result<Message, Error> {
        let next = tokio::time::timeout(timeout, self.ws.next())
            .await
            .map_err(|_| Error::Timeout(timeout))?;
        match next {
            None => Err(Error::Closed { code: None }),
            Some(Err(error)) => Err(error.into()),
            Some(Ok(Message::Close(frame))) => Err(Error::Closed {
                code: frame.map(|f| u16::from(f.code)),
            }),
            Some(Ok(message)) => Ok(message),
        }
    }
}

/// A frame's kind, for error messages.
struct FrameKind<'a, R, G>(&'a Frame<R, G>);

impl<R, G> std::fmt::Display for FrameKind<'_, R, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Frame::Message(_) => "a message",
            Frame::Group { .. } => "a group message",
            Frame::Error(_) => "an error frame",
            Frame::Pong => "pong",
            Frame::Complete => "complete",
            Frame::GroupComplete => "group_complete",
            Frame::GroupGap { .. } => "group_gap",
        })
    }
}
