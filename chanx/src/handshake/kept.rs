//! The handshake a connection keeps for its whole life, packed.
//!
//! A [`Handshake`] is a few hundred bytes spread over many allocations:
//! the header map's index and entries (about 100 bytes per header) and
//! each value's copy. Handlers rarely read it after the connection opens,
//! yet every idle connection kept it: 0.6 KB of its heap on the load
//! benchmark's echo connections (heaptrack), more with a browser's dozen
//! headers. [`KeptHandshake`] keeps the path, the query and the headers in
//! one buffer and builds the [`Handshake`] again the first time something
//! reads it after [`release`](KeptHandshake::release).

use std::net::SocketAddr;
use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::Handshake;
use crate::routing::PathParams;

/// A header value marked sensitive (see [`HeaderValue::set_sensitive`]).
const SENSITIVE: u8 = 1;

/// A connection's handshake: packed, and unpacked while something uses it.
#[derive(Clone)]
pub(crate) struct KeptHandshake {
    /// Path, query and headers back to back (see [`pack`]).
    packed: Box<[u8]>,
    params: PathParams,
    peer: Option<SocketAddr>,
    /// The handshake as handlers see it: the one the connection started
    /// with until [`release`](Self::release), then built again from
    /// `packed` when read.
    unpacked: OnceLock<Box<Handshake>>,
    released: bool,
}

impl KeptHandshake {
    /// Keeps `handshake`, unpacked until [`release`](Self::release).
    pub(crate) fn new(handshake: Handshake) -> Self {
        KeptHandshake {
            packed: pack(&handshake),
            params: handshake.params.clone(),
            peer: handshake.peer,
            unpacked: OnceLock::from(Box::new(handshake)),
            released: false,
        }
    }

    /// The handshake (built from the packed form if it was released).
    pub(crate) fn get(&self) -> &Handshake {
        self.unpacked
            .get_or_init(|| Box::new(unpack(&self.packed, &self.params, self.peer)))
    }

    /// The route's path parameters, without unpacking anything.
    pub(crate) fn params(&self) -> &PathParams {
        &self.params
    }

    /// A header's value as text, if present and valid UTF-8 (the first of
    /// that name), without unpacking anything.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        if let Some(handshake) = self.unpacked.get() {
            return handshake.header(name);
        }
        let mut reader = Reader(&self.packed);
        reader.text_field()?;
        if reader.byte()? == 1 {
            reader.field()?;
        }
        while !reader.0.is_empty() {
            let _flags = reader.byte()?;
            let (header, value) = (reader.field()?, reader.field()?);
            if header.eq_ignore_ascii_case(name.as_bytes()) {
                return std::str::from_utf8(value).ok();
            }
        }
        None
    }

    /// Drops the unpacked handshake the first time it is called: the one
    /// built by the transport, which authentication and `on_connect` used.
    /// A handshake unpacked again later (a handler reads it after the
    /// connection opened) stays, so that one that reads it on every
    /// message does not unpack it each time.
    pub(crate) fn release(&mut self) {
        if !self.released {
            self.released = true;
            self.unpacked.take();
        }
    }
}

/// Appends `bytes` with their length in front.
fn put(buffer: &mut Vec<u8>, bytes: &[u8]) {
    // Header values and paths are far below 4 GiB (hyper caps the whole
    // head at 400 KiB); a longer one is cut rather than mislabelled.
    let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    buffer.extend_from_slice(&length.to_le_bytes());
    buffer.extend_from_slice(&bytes[..length as usize]);
}

/// Packs the path, the query and each header (a flag byte, then name and
/// value) into one buffer.
fn pack(handshake: &Handshake) -> Box<[u8]> {
    let headers: usize = handshake
        .headers
        .iter()
        .map(|(name, value)| 9 + name.as_str().len() + value.len())
        .sum();
    let query = handshake.query.as_deref().map_or(0, str::len);
    let mut buffer = Vec::with_capacity(9 + handshake.path.len() + query + headers + 1);
    put(&mut buffer, handshake.path.as_bytes());
    match &handshake.query {
        Some(query) => {
            buffer.push(1);
            put(&mut buffer, query.as_bytes());
        }
        None => buffer.push(0),
    }
    for (name, value) in &handshake.headers {
        buffer.push(if value.is_sensitive() { SENSITIVE } else { 0 });
        put(&mut buffer, name.as_str().as_bytes());
        put(&mut buffer, value.as_bytes());
    }
    buffer.into_boxed_slice()
}

/// Reads what [`pack`] wrote, one field at a time.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let (length, rest) = self.0.split_first_chunk::<4>()?;
        let length = u32::from_le_bytes(*length) as usize;
        let field = rest.get(..length)?;
        self.0 = &rest[length..];
        Some(field)
    }

    fn text_field(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.field()?).ok()
    }

    fn text(&mut self) -> Option<String> {
        self.text_field().map(str::to_owned)
    }

    fn header(&mut self) -> Option<(HeaderName, HeaderValue)> {
        let flags = self.byte()?;
        let name = HeaderName::from_bytes(self.field()?).ok()?;
        let mut value = HeaderValue::from_bytes(self.field()?).ok()?;
        value.set_sensitive(flags & SENSITIVE != 0);
        Some((name, value))
    }
}

/// The handshake [`pack`] packed.
fn unpack(packed: &[u8], params: &PathParams, peer: Option<SocketAddr>) -> Handshake {
    let mut reader = Reader(packed);
    let path = reader.text().unwrap_or_default();
    let query = match reader.byte() {
        Some(1) => reader.text(),
        _ => None,
    };
    let mut headers = HeaderMap::new();
    while !reader.0.is_empty() {
        // Only what `pack` wrote is read here: every header reads back.
        let Some((name, value)) = reader.header() else {
            tracing::error!("bug: a packed handshake did not read back");
            break;
        };
        headers.append(name, value);
    }
    Handshake {
        path,
        query,
        headers,
        params: params.clone(),
        peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        let mut handshake = Handshake::new("/ws/chat/lobby/");
        handshake.query = Some("token=a%20b&x".into());
        handshake.peer = Some("127.0.0.1:4000".parse().unwrap());
        let headers = &mut handshake.headers;
        headers.append("host", "example.com".parse().unwrap());
        headers.append("cookie", "a=1".parse().unwrap());
        headers.append("cookie", "sessionid=xyz".parse().unwrap());
        headers.append("x-custom", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let mut secret = HeaderValue::from_static("Bearer t");
        secret.set_sensitive(true);
        headers.append("authorization", secret);
        handshake
    }

    fn assert_same(a: &Handshake, b: &Handshake) {
        assert_eq!(a.path, b.path);
        assert_eq!(a.query, b.query);
        assert_eq!(a.headers, b.headers);
        assert_eq!(a.params, b.params);
        assert_eq!(a.peer, b.peer);
        let sensitive = |h: &Handshake| {
            h.headers
                .iter()
                .map(|(_, v)| v.is_sensitive())
                .collect::<Vec<_>>()
        };
        assert_eq!(sensitive(a), sensitive(b));
    }

    #[test]
    fn a_released_handshake_reads_back_the_same() {
        let original = sample();
        let mut kept = KeptHandshake::new(original.clone());
        assert_same(kept.get(), &original);
        kept.release();
        assert!(kept.unpacked.get().is_none(), "released");
        assert_same(kept.get(), &original);
        assert_eq!(kept.get().cookie("sessionid"), Some("xyz"));
    }

    #[test]
    fn headers_read_from_the_packed_form_as_from_the_handshake() {
        let original = sample();
        let mut kept = KeptHandshake::new(original.clone());
        kept.release();
        for name in ["host", "Cookie", "x-custom", "authorization", "absent"] {
            assert_eq!(kept.header(name), original.header(name), "{name}");
        }
        assert!(kept.unpacked.get().is_none(), "nothing unpacked");
    }

    #[test]
    fn no_query_and_an_empty_query_stay_apart() {
        for query in [None, Some(String::new())] {
            let mut handshake = Handshake::new("/");
            handshake.query = query.clone();
            let mut kept = KeptHandshake::new(handshake);
            kept.release();
            assert_eq!(kept.get().query, query);
            assert!(kept.get().headers.is_empty());
        }
    }

    #[test]
    fn only_the_first_release_drops_the_handshake() {
        let mut kept = KeptHandshake::new(sample());
        kept.release();
        kept.get();
        kept.release();
        assert!(
            kept.unpacked.get().is_some(),
            "read again after opening: kept"
        );
    }
}
