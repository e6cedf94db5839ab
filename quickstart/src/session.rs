//! Signed `sessionid` cookies proving a username.
//!
//! The cookie crate's signed jar signs and verifies (HMAC-SHA256, compared
//! in constant time); the signed value is `<b64url(username)>.<issued unix
//! seconds>`, so that the server can refuse an expired session without
//! storing anything.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, CookieJar, Key, SameSite};
use sha2::{Digest as _, Sha512};

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "sessionid";

/// Default session lifetime: 14 days, like Django's `SESSION_COOKIE_AGE`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(1_209_600);

/// How far in the future an issue time may lie (clock skew allowance), in seconds.
const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// Longer cookie values are rejected before any decoding.
const MAX_COOKIE_LEN: usize = 4096;

/// Why a session cookie was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Too long, or signed but not of the form `<user>.<issued>`.
    #[error("malformed session cookie")]
    Malformed,
    /// The signature does not verify: forged, tampered, unsigned or signed
    /// with another secret key (a changed `CHANX_SECRET_KEY`).
    #[error("session cookie signature does not verify (forged, or signed with another secret key)")]
    BadSignature,
    /// Older than the maximum age, or issued too far in the future.
    #[error("session expired")]
    Expired,
}

/// Signs and verifies session cookie values with a secret key.
#[derive(Clone)]
pub struct SessionSigner {
    key: Key,
    max_age: Duration,
}

impl fmt::Debug for SessionSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSigner")
            .field("secret", &"<redacted>")
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl SessionSigner {
    /// A signer keyed with `secret` (any length), with the default 14-day
    /// maximum age.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        // The cookie crate wants 64 bytes of key; SHA-512 turns a secret of
        // any length into exactly that.
        let key = Key::from(Sha512::digest(secret.as_ref()).as_slice());
        Self {
            key,
            max_age: DEFAULT_MAX_AGE,
        }
    }

    /// The same signer with another maximum age.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How long a signed value stays valid.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// A cookie value proving `username`, issued at `now_unix` seconds.
    pub fn sign(&self, username: &str, now_unix: u64) -> String {
        let payload = format!("{}.{now_unix}", URL_SAFE_NO_PAD.encode(username));
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key)
            .add(Cookie::new(COOKIE_NAME, payload));
        jar.get(COOKIE_NAME)
            .map(|cookie| cookie.value().to_owned())
            .unwrap_or_default()
    }

    /// The username proven by `cookie_value`, if its signature and age check out.
    pub fn verify(&self, cookie_value: &str, now_unix: u64) -> Result<String, SessionError> {
        if cookie_value.len() > MAX_COOKIE_LEN {
            return Err(SessionError::Malformed);
        }
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new(COOKIE_NAME, cookie_value.to_owned()));
        let verified = jar
            .signed(&self.key)
            .get(COOKIE_NAME)
            .ok_or(SessionError::BadSignature)?;
        let (user, issued) = verified
            .value()
            .split_once('.')
            .ok_or(SessionError::Malformed)?;
        if issued.is_empty() || !issued.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SessionError::Malformed);
        }
        let issued_at: u64 = issued.parse().map_err(|_| SessionError::Malformed)?;
        let too_old = now_unix.saturating_sub(issued_at) > self.max_age.as_secs();
        let too_new = issued_at > now_unix.saturating_add(MAX_CLOCK_SKEW_SECS);
        if too_old || too_new {
            return Err(SessionError::Expired);
        }
        let user = URL_SAFE_NO_PAD
            .decode(user)
            .map_err(|_| SessionError::Malformed)?;
        String::from_utf8(user).map_err(|_| SessionError::Malformed)
    }
}

/// A `Set-Cookie` header value storing `value` as the session cookie:
/// `HttpOnly`, `Path=/`, `SameSite=Lax`, `Max-Age` in seconds.
pub fn set_cookie_header(value: &str, max_age_secs: u64) -> String {
    let max_age = i64::try_from(max_age_secs).unwrap_or(i64::MAX);
    Cookie::build((COOKIE_NAME, value))
        .http_only(true)
        .path("/")
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build()
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn signer() -> SessionSigner {
        SessionSigner::new("test-secret")
    }

    #[test]
    fn round_trip() {
        let s = signer();
        for name in ["alice", "", "bob.smith", "zoë ☃", "a/b+c=="] {
            let value = s.sign(name, NOW);
            assert_eq!(s.verify(&value, NOW).unwrap(), name);
            assert_eq!(value.split('.').count(), 2, "{value}");
        }
    }

    #[test]
    fn the_signed_payload_is_user_and_issue_time() {
        let value = signer().sign("alice", NOW);
        // The signed jar prefixes a base64 HMAC-SHA256 tag (44 characters).
        assert_eq!(&value[44..], format!("YWxpY2U.{NOW}"));
    }

    #[test]
    fn keys_of_any_length_sign_and_differ() {
        let values: Vec<String> = [0, 1, 32, 63, 64, 65, 200]
            .into_iter()
            .map(|len| {
                let signer = SessionSigner::new(vec![0x5a; len]);
                let value = signer.sign("u", 7);
                assert_eq!(signer.verify(&value, 7).unwrap(), "u", "key length {len}");
                value
            })
            .collect();
        for (i, a) in values.iter().enumerate() {
            assert!(values[i + 1..].iter().all(|b| b != a));
        }
    }

    #[test]
    fn wrong_key_or_tampering_is_bad_signature() {
        let value = signer().sign("alice", NOW);
        let other = SessionSigner::new("other-secret");
        assert_eq!(other.verify(&value, NOW), Err(SessionError::BadSignature));

        let forged = value.replacen("YWxpY2U", "Ym9i", 1); // "bob"
        assert_eq!(
            signer().verify(&forged, NOW),
            Err(SessionError::BadSignature)
        );
        let later = value.replacen(&NOW.to_string(), &(NOW + 1).to_string(), 1);
        assert_eq!(
            signer().verify(&later, NOW),
            Err(SessionError::BadSignature)
        );
        let zero_padded = value.replacen(&NOW.to_string(), &format!("0{NOW}"), 1);
        assert_eq!(
            signer().verify(&zero_padded, NOW),
            Err(SessionError::BadSignature)
        );
        let mut flipped = value.clone();
        let first = if value.starts_with('A') { "B" } else { "A" };
        flipped.replace_range(..1, first);
        assert_eq!(
            signer().verify(&flipped, NOW),
            Err(SessionError::BadSignature)
        );
        for unsigned in ["", "alice", "YWxpY2U.1700000000", &value[..43]] {
            assert_eq!(
                signer().verify(unsigned, NOW),
                Err(SessionError::BadSignature),
                "{unsigned:?}"
            );
        }
    }

    #[test]
    fn expiry_window() {
        let s = signer();
        let max = DEFAULT_MAX_AGE.as_secs();
        let value = s.sign("alice", NOW);
        assert!(s.verify(&value, NOW + max).is_ok());
        assert_eq!(s.verify(&value, NOW + max + 1), Err(SessionError::Expired));
        assert!(s.verify(&value, NOW - 60).is_ok());
        assert_eq!(s.verify(&value, NOW - 61), Err(SessionError::Expired));
        assert_eq!(
            s.verify(&s.sign("a", u64::MAX), 0),
            Err(SessionError::Expired)
        );
        assert!(s.verify(&s.sign("a", u64::MAX), u64::MAX).is_ok());

        let short = signer().with_max_age(Duration::from_secs(10));
        assert_eq!(short.max_age(), Duration::from_secs(10));
        assert_eq!(
            short.verify(&short.sign("a", NOW), NOW + 11),
            Err(SessionError::Expired)
        );
        assert_eq!(signer().max_age(), Duration::from_secs(1_209_600));
    }

    #[test]
    fn signed_but_malformed_values() {
        let s = signer();
        let mut jar = CookieJar::new();
        let cases = [
            "YWxpY2U",
            "YWxpY2U.",
            "YWxpY2U.+1",
            "YWxpY2U.-1",
            "YWxpY2U.99999999999999999999",
            "!!!.1700000000",
        ];
        for case in cases {
            jar.signed_mut(&s.key).add(Cookie::new(COOKIE_NAME, case));
            let value = jar.get(COOKIE_NAME).unwrap().value().to_owned();
            assert_eq!(
                s.verify(&value, NOW),
                Err(SessionError::Malformed),
                "{case:?}"
            );
        }
        let too_long = "x".repeat(MAX_COOKIE_LEN + 1);
        assert_eq!(s.verify(&too_long, NOW), Err(SessionError::Malformed));
    }

    #[test]
    fn garbage_never_panics() {
        let s = signer();
        let good = s.sign("alice", NOW);
        let mut inputs: Vec<String> = vec![
            "...".into(),
            "é.é.é".into(),
            "☃.☃.☃".into(),
            "\0.\0.\0".into(),
            "a.18446744073709551615.b".into(),
            ".".repeat(100_000),
            "A".repeat(1 << 20),
            format!("{}.{NOW}.{}", "A".repeat(100_000), "A".repeat(43)),
        ];
        // Every prefix and every single-byte corruption of a good value.
        for i in 0..=good.len() {
            inputs.push(good[..i].to_owned());
        }
        for i in 0..good.len() {
            for replacement in ["", ".", "é", "\u{0}", "=", "+", "9", "\u{10FFFF}"] {
                let mut bad = good.clone();
                bad.replace_range(i..=i, replacement);
                inputs.push(bad);
            }
        }
        // Pseudo-random strings over a small hostile alphabet.
        let alphabet: Vec<char> = "aZ09-_.=+/ é☃\u{0}\u{10FFFF}".chars().collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..2_000 {
            let len = (state % 80) as usize;
            let mut text = String::new();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            inputs.push(text);
        }
        for input in &inputs {
            if input != &good {
                assert!(s.verify(input, NOW).is_err(), "{input:?}");
            }
        }
    }

    #[test]
    fn debug_does_not_leak_the_key() {
        let text = format!("{:?}", SessionSigner::new("hunter2"));
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn set_cookie_format() {
        let header = set_cookie_header("abc", 1_209_600);
        let cookie = Cookie::parse(header.as_str()).unwrap();
        assert_eq!(cookie.name_value(), ("sessionid", "abc"));
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.path(), Some("/"));
        assert_eq!(cookie.same_site(), Some(SameSite::Lax));
        assert_eq!(
            cookie.max_age(),
            Some(cookie::time::Duration::seconds(1_209_600))
        );
    }
}
