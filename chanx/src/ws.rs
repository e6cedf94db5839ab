//! The transport-neutral WebSocket socket that the driver runs over, and
//! the toolkit adapters build it with.
//!
//! Frames travel as [`Text`] and [`Bytes`]: replies the server built stay
//! `String`s until the framework takes them, frames a framework received
//! stay in its buffer (`tungstenite`'s, under axum, warp and
//! async-tungstenite), so neither direction copies a frame. An adapter whose framework speaks tungstenite's [`Message`]
//! uses [`from_tungstenite`] and [`into_tungstenite`]; every adapter
//! classifies transport errors with [`SocketError::classify`], by type.

use std::error::Error as StdError;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Sink, Stream};
pub use tungstenite::{Bytes, Message, Utf8Bytes};

/// The text of a frame: a `String` the server built (handed to any
/// framework without a copy) or a shared buffer a framework received
/// (read by the core without a copy).
#[derive(Clone, Debug)]
pub struct Text(TextRepr);

#[derive(Clone, Debug)]
enum TextRepr {
    Owned(String),
    Shared(Utf8Bytes),
}

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            TextRepr::Owned(text) => text,
            TextRepr::Shared(text) => text.as_str(),
        }
    }

    /// As a `String`: free for text the server built; text received into a
    /// shared buffer is copied.
    pub fn into_string(self) -> String {
        match self.0 {
            TextRepr::Owned(text) => text,
            TextRepr::Shared(text) => text.as_str().to_owned(),
        }
    }

    /// As tungstenite's text, free either way.
    pub fn into_utf8_bytes(self) -> Utf8Bytes {
        match self.0 {
            TextRepr::Owned(text) => text.into(),
            TextRepr::Shared(text) => text,
        }
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Text(TextRepr::Owned(text))
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Text(TextRepr::Owned(text.to_owned()))
    }
}

impl From<Utf8Bytes> for Text {
    fn from(text: Utf8Bytes) -> Self {
        Text(TextRepr::Shared(text))
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One WebSocket message, independent of the framework that carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsMessage {
    /// A text frame.
    Text(Text),
    /// A binary frame.
    Binary(Bytes),
    /// A ping control frame.
    Ping(Bytes),
    /// A pong control frame.
    Pong(Bytes),
    /// A close frame with an optional code and reason.
    Close(Option<(u16, String)>),
}

/// A boxed error from a transport.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A transport failure, classified by the type of the underlying error.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// A frame or message exceeded the transport's size limit (the core
    /// answers with close code 1009).
    #[error("frame over the transport's size limit")]
    TooBig(#[source] BoxError),
    /// The peer violated the WebSocket protocol (close 1002).
    #[error("websocket protocol violation")]
    ProtocolViolation(#[source] BoxError),
    /// A text frame was not valid UTF-8 (close 1007).
    #[error("text frame is not valid UTF-8")]
    InvalidUtf8(#[source] BoxError),
    /// The socket broke or the peer went away.
    #[error("websocket transport error")]
    Transport(#[source] BoxError),
}

impl SocketError {
    /// Classifies a transport error by its type: the first
    /// [`tungstenite::Error`] in its chain of sources decides; anything
    /// else is a broken transport.
    pub fn classify(error: impl Into<BoxError>) -> Self {
        let error = error.into();
        let root: &(dyn StdError + 'static) = &*error;
        let mut chain = std::iter::successors(Some(root), |e| (*e).source());
        let variant = chain
            .find_map(|e| e.downcast_ref::<tungstenite::Error>())
            .map_or(SocketError::Transport as fn(BoxError) -> Self, variant_for);
        variant(error)
    }

    /// A transport failure with this description.
    pub fn new(message: impl std::fmt::Display) -> Self {
        SocketError::Transport(message.to_string().into())
    }
}

/// What a tungstenite error means for the connection.
fn variant_for(error: &tungstenite::Error) -> fn(BoxError) -> SocketError {
    use tungstenite::error::ProtocolError;
    match error {
        tungstenite::Error::Capacity(_) | tungstenite::Error::WriteBufferFull(_) => {
            SocketError::TooBig
        }
        tungstenite::Error::Utf8(_) => SocketError::InvalidUtf8,
        // A peer that hangs up without a close frame is gone, not rude.
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            SocketError::Transport
        }
        tungstenite::Error::Protocol(_) => SocketError::ProtocolViolation,
        _ => SocketError::Transport,
    }
}

/// A received tungstenite message as a chanx message, without copying;
/// `None` for a raw frame (tungstenite yields those only when asked to).
pub fn from_tungstenite(message: Message) -> Option<WsMessage> {
    Some(match message {
        Message::Text(text) => WsMessage::Text(text.into()),
        Message::Binary(bytes) => WsMessage::Binary(bytes),
        Message::Ping(bytes) => WsMessage::Ping(bytes),
        Message::Pong(bytes) => WsMessage::Pong(bytes),
        Message::Close(frame) => {
            WsMessage::Close(frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())))
        }
        Message::Frame(_) => return None,
    })
}

/// A chanx message as a tungstenite message to send, without copying.
pub fn into_tungstenite(message: WsMessage) -> Message {
    use tungstenite::protocol::CloseFrame;
    match message {
        WsMessage::Text(text) => Message::Text(text.into_utf8_bytes()),
        WsMessage::Binary(bytes) => Message::Binary(bytes),
        WsMessage::Ping(bytes) => Message::Ping(bytes),
        WsMessage::Pong(bytes) => Message::Pong(bytes),
        WsMessage::Close(frame) => Message::Close(frame.map(|(code, reason)| CloseFrame {
            code: code.into(),
            reason: reason.into(),
        })),
    }
}

/// Whether an accept error concerns only the connection being accepted
/// (the peer reset it first): an accept loop skips it, where any other
/// error (out of descriptors) calls for a pause.
pub fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Read buffer per connection: small, for many mostly idle connections
/// (tungstenite's default is 128 KiB).
pub const READ_BUFFER_SIZE: usize = 4 * 1024;

/// Write buffer flushed when this full.
pub const WRITE_BUFFER_SIZE: usize = 8 * 1024;

/// Room above an endpoint's frame limit given to the transport, so that the
/// core (not the transport) decides on oversized frames (close 1009).
const TRANSPORT_SLACK: usize = 64 * 1024;

/// The message and frame limit to give a transport serving an endpoint
/// whose frames may be `max_frame_size` bytes.
pub fn transport_limit(max_frame_size: usize) -> usize {
    max_frame_size.saturating_add(TRANSPORT_SLACK)
}

/// The tungstenite configuration every adapter uses: the buffer sizes
/// above and [`transport_limit`] for messages and frames.
pub fn websocket_config(max_frame_size: usize) -> tungstenite::protocol::WebSocketConfig {
    let limit = transport_limit(max_frame_size);
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .write_buffer_size(WRITE_BUFFER_SIZE)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
}

/// A WebSocket as a stream of incoming messages and a sink of outgoing ones.
pub trait Socket:
    Stream<Item = Result<WsMessage, SocketError>> + Sink<WsMessage, Error = SocketError> + Send
{
}

impl<T> Socket for T where
    T: Stream<Item = Result<WsMessage, SocketError>> + Sink<WsMessage, Error = SocketError> + Send
{
}

/// A boxed [`Socket`], what adapters hand to [`Server`](crate::Server).
pub type BoxSocket = Pin<Box<dyn Socket>>;

/// A socket whose sink errors are mapped by `map`, every time: futures'
/// `sink_map_err` maps only the first error (its closure is `FnOnce`) and
/// panics when the sink fails again, which a dying connection does.
pub fn map_sink_errors<S, F>(socket: S, map: F) -> MapSinkErrors<S, F> {
    MapSinkErrors { socket, map }
}

/// See [`map_sink_errors`]; its stream side passes through unchanged.
#[derive(Debug)]
pub struct MapSinkErrors<S, F> {
    socket: S,
    map: F,
}

impl<S: Unpin, F> Unpin for MapSinkErrors<S, F> {}

impl<S, F, I, E, T> Sink<I> for MapSinkErrors<S, F>
where
    S: Sink<I, Error = E> + Unpin,
    F: FnMut(E) -> T,
{
    type Error = T;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T>> {
        let this = &mut *self;
        Pin::new(&mut this.socket)
            .poll_ready(cx)
            .map_err(&mut this.map)
    }

    fn start_send(mut self: Pin<&mut Self>, item: I) -> Result<(), T> {
        let this = &mut *self;
        Pin::new(&mut this.socket)
            .start_send(item)
            .map_err(&mut this.map)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T>> {
        let this = &mut *self;
        Pin::new(&mut this.socket)
            .poll_flush(cx)
            .map_err(&mut this.map)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T>> {
        let this = &mut *self;
        Pin::new(&mut this.socket)
            .poll_close(cx)
            .map_err(&mut this.map)
    }
}

impl<S: Stream + Unpin, F> Stream for MapSinkErrors<S, F> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.socket).poll_next(cx)
    }
}

/// Wraps any tungstenite-speaking stream (async-tungstenite's, say) as a
/// chanx socket: messages pass through without copies, errors are
/// classified by type.
pub fn tungstenite_socket<S, E>(socket: S) -> BoxSocket
where
    S: Stream<Item = Result<Message, E>> + Sink<Message, Error = E> + Send + Unpin + 'static,
    E: Into<BoxError> + 'static,
{
    Box::pin(TungsteniteSocket(socket))
}

/// A tungstenite-speaking stream as a chanx socket (see
/// [`tungstenite_socket`]). One type rather than futures' `with` and
/// `filter_map` over [`map_sink_errors`]: each of those keeps a future's
/// state and polls it on every frame, for a conversion that needs none.
struct TungsteniteSocket<S>(S);

impl<S, E> Stream for TungsteniteSocket<S>
where
    S: Stream<Item = Result<Message, E>> + Unpin,
    E: Into<BoxError>,
{
    type Item = Result<WsMessage, SocketError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match std::task::ready!(Pin::new(&mut self.0).poll_next(cx)) {
                // `None`: a raw frame, not a message of its own.
                Some(Ok(message)) => {
                    if let Some(message) = from_tungstenite(message) {
                        return Poll::Ready(Some(Ok(message)));
                    }
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(SocketError::classify(error)))),
                None => return Poll::Ready(None),
            }
        }
    }
}

impl<S, E> Sink<WsMessage> for TungsteniteSocket<S>
where
    S: Sink<Message, Error = E> + Unpin,
    E: Into<BoxError>,
{
    type Error = SocketError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        Pin::new(&mut self.0)
            .poll_ready(cx)
            .map_err(SocketError::classify)
    }

    fn start_send(mut self: Pin<&mut Self>, message: WsMessage) -> Result<(), SocketError> {
        Pin::new(&mut self.0)
            .start_send(into_tungstenite(message))
            .map_err(SocketError::classify)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        Pin::new(&mut self.0)
            .poll_flush(cx)
            .map_err(SocketError::classify)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        Pin::new(&mut self.0)
            .poll_close(cx)
            .map_err(SocketError::classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that fails every time.
    struct Broken;

    impl Sink<u8> for Broken {
        type Error = &'static str;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Err("broken"))
        }
        fn start_send(self: Pin<&mut Self>, _: u8) -> Result<(), Self::Error> {
            Err("broken")
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Err("broken"))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Err("broken"))
        }
    }

    #[test]
    fn sink_errors_are_mapped_every_time() {
        use futures_util::SinkExt;
        let mut sink = map_sink_errors(Broken, str::len);
        futures_executor::block_on(async {
            assert_eq!(sink.send(1).await, Err(6));
            // futures' `sink_map_err` panics here.
            assert_eq!(sink.send(2).await, Err(6));
            assert_eq!(sink.close().await, Err(6));
        });
    }

    #[test]
    fn tungstenite_errors_are_classified_by_type() {
        use tungstenite::error::{CapacityError, ProtocolError};
        let too_long = tungstenite::Error::Capacity(CapacityError::MessageTooLong {
            size: 2,
            max_size: 1,
        });
        assert!(matches!(
            SocketError::classify(too_long),
            SocketError::TooBig(_)
        ));
        let rsv = tungstenite::Error::Protocol(ProtocolError::NonZeroReservedBits);
        assert!(matches!(
            SocketError::classify(rsv),
            SocketError::ProtocolViolation(_)
        ));
        let reset = tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake);
        assert!(matches!(
            SocketError::classify(reset),
            SocketError::Transport(_)
        ));
        let utf8 = tungstenite::Error::Utf8("bad".into());
        assert!(matches!(
            SocketError::classify(utf8),
            SocketError::InvalidUtf8(_)
        ));
        // Wrapped by a framework: the source chain is searched.
        #[derive(Debug, thiserror::Error)]
        #[error("framework error")]
        struct Wrapper(#[source] tungstenite::Error);
        let wrapped = Wrapper(tungstenite::Error::Utf8("bad".into()));
        assert!(matches!(
            SocketError::classify(wrapped),
            SocketError::InvalidUtf8(_)
        ));
        let io = std::io::Error::other("broken pipe");
        assert!(matches!(
            SocketError::classify(io),
            SocketError::Transport(_)
        ));
    }

    #[test]
    fn text_moves_between_representations_without_copies() {
        let reply = String::from(r#"{"action":"pong","payload":null}"#);
        let at = reply.as_ptr();
        let back = Text::from(reply).into_string();
        assert_eq!(back.as_ptr(), at);
        assert_eq!(Text::from(back).into_utf8_bytes().as_str().as_ptr(), at);
        let received = Utf8Bytes::from_static("hi");
        let text = Text::from(received.clone());
        assert_eq!(text.as_str().as_ptr(), received.as_str().as_ptr());
        assert_eq!(text, Text::from("hi"));
    }

    #[test]
    fn messages_convert_both_ways_without_loss() {
        for message in [
            WsMessage::Text("hi".into()),
            WsMessage::Binary(Bytes::from_static(b"\x00\x01")),
            WsMessage::Ping(Bytes::new()),
            WsMessage::Pong(Bytes::from_static(b"p")),
            WsMessage::Close(Some((4008, "slow consumer".into()))),
            WsMessage::Close(None),
        ] {
            let back = from_tungstenite(into_tungstenite(message.clone()));
            assert_eq!(back, Some(message));
        }
    }
}
