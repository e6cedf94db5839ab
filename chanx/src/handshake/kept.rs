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
use std::sync::atomic::{AtomicU8, Ordering};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::Handshake;
use crate::routing::PathParams;

/// A header value marked sensitive (see [`HeaderValue::set_sensitive`]).
const SENSITIVE: u8 = 1;

/// Rebuilt this many times, a handshake is kept for good: something
/// reads it again and again (a handler on every message, say), and
/// rebuilding it each time would cost more than keeping it.
const KEEP_AFTER_REBUILDS: u8 = 3;

/// A connection's handshake: packed, and unpacked while something uses it.
pub(crate) struct KeptHandshake {
    /// Path, query and headers back to back (see [`pack`]).
    packed: Box<[u8]>,
    params: PathParams,
    peer: Option<SocketAddr>,
    /// The handshake as handlers see it: the one the connection started
    /// with until [`release`](Self::release), then built again from
    /// `packed` when read.
    unpacked: OnceLock<Box<Handshake>>,
    /// How many times `unpacked` was built from `packed`.
    rebuilds: AtomicU8,
}

impl Clone for KeptHandshake {
    fn clone(&self) -> Self {
        KeptHandshake {
            packed: self.packed.clone(),
            params: self.params.clone(),
            peer: self.peer,
            unpacked: self.unpacked.clone(),
            rebuilds: AtomicU8::new(self.rebuilds.load(Ordering::Relaxed)),
        }
    }
}

impl KeptHandshake {
    /// Keeps `handshake`, unpacked until [`release`](Self::release).
    pub(crate) fn new(handshake: Handshake) -> Self {
        KeptHandshake {
            packed: pack(&handshake),
            params: handshake.params.clone(),
            peer: handshake.peer,
            unpacked: OnceLock::from(Box::new(handshake)),
            rebuilds: AtomicU8::new(0),
        }
    }

    /// The handshake (built from the packed form if it was released).
    pub(crate) fn get(&self) -> &Handshake {
        self.unpacked.get_or_init(|| {
            // At most `KEEP_AFTER_REBUILDS`: `release` stops dropping it.
            self.rebuilds.fetch_add(1, Ordering::Relaxed);
            Box::new(unpack(&self.packed, &self.params, self.peer))
        })
    }

    /// The route's path parameters, without unpacking anything.
    pub(crate) fn params(&self) -> &PathParams {
        &self.params
    }

    /// A header's value as text (visible ASCII, as
    /// [`Handshake::header`] reads it), the first of that name, without
    /// unpacking anything.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        if let Some(handshake) = self.unpacked.get() {
            return handshake.header(name);
        }
        let mut reader = Reader(&self.packed);
        reader.path_and_query()?;
        while !reader.0.is_empty() {
            let (header, value, _sensitive) = reader.raw_header()?;
            if header.eq_ignore_ascii_case(name.as_bytes()) {
                // `HeaderValue::to_str`'s rule.
                let visible = value
                    .iter()
                    .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
                return visible.then(|| std::str::from_utf8(value).ok()).flatten();
            }
        }
        None
    }

    /// Drops the unpacked handshake, for a connection about to wait: the
    /// one the transport built, which authentication and `on_connect`
    /// used, and one rebuilt since (a topic subscription's authorisation
    /// reads it), until it has been rebuilt [`KEEP_AFTER_REBUILDS`] times.
    pub(crate) fn release(&mut self) {
        if *self.rebuilds.get_mut() < KEEP_AFTER_REBUILDS {
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

    /// The path and the query, which [`pack`] writes first.
    fn path_and_query(&mut self) -> Option<(&'a str, Option<&'a str>)> {
        let path = self.text_field()?;
        let query = match self.byte()? {
            1 => Some(self.text_field()?),
            _ => None,
        };
        Some((path, query))
    }

    /// The next header: name, value and whether it is sensitive.
    fn raw_header(&mut self) -> Option<(&'a [u8], &'a [u8], bool)> {
        let flags = self.byte()?;
        Some((self.field()?, self.field()?, flags & SENSITIVE != 0))
    }

    fn header(&mut self) -> Option<(HeaderName, HeaderValue)> {
        let (name, value, sensitive) = self.raw_header()?;
        let name = HeaderName::from_bytes(name).ok()?;
        let mut value = HeaderValue::from_bytes(value).ok()?;
        value.set_sensitive(sensitive);
        Some((name, value))
    }
}

/// The handshake [`pack`] packed.
fn unpack(packed: &[u8], params: &PathParams, peer: Option<SocketAddr>) -> Handshake {
    let mut reader = Reader(packed);
    let (path, query) = reader.path_and_query().unwrap_or_default();
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
        path: path.to_owned(),
        query: query.map(str::to_owned),
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
    fn a_handshake_read_again_and_again_is_kept() {
        let mut kept = KeptHandshake::new(sample());
        for rebuild in 1..=KEEP_AFTER_REBUILDS {
            kept.release();
            assert!(
                kept.unpacked.get().is_none(),
                "released before rebuild {rebuild}"
            );
            kept.get();
        }
        kept.release();
        assert!(kept.unpacked.get().is_some(), "kept for good");
    }

    #[test]
    fn a_header_the_handshake_would_not_read_as_text_is_not_read_packed_either() {
        let mut handshake = Handshake::new("/");
        let utf8 = HeaderValue::from_bytes("café".as_bytes()).unwrap();
        handshake.headers.append("x-name", utf8);
        let mut kept = KeptHandshake::new(handshake);
        assert_eq!(kept.header("x-name"), None);
        kept.release();
        assert_eq!(kept.header("x-name"), None);
    }
}
