//! Signed `sessionid` cookies proving a username.
//!
//! Value format: `<b64url(username)>.<issued unix seconds>.<b64url(HMAC-SHA256)>`,
//! base64url without padding, the MAC taken over `"<b64url(username)>.<issued>"`.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "sessionid";

/// Default session lifetime: 14 days, like Django's `SESSION_COOKIE_AGE`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(1_209_600);

/// How far in the future an issue time may lie (clock skew allowance), in seconds.
const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// Longer cookie values are rejected before any decoding.
const MAX_COOKIE_LEN: usize = 4096;

/// HMAC-SHA256 block size; shorter keys are zero-padded, longer ones hashed.
const BLOCK_SIZE: usize = 64;

/// Why a session cookie was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not of the form `<user>.<issued>.<mac>` with valid parts.
    #[error("malformed session cookie")]
    Malformed,
    /// The MAC does not match: forged, tampered or signed with another key.
    #[error("bad session signature")]
    BadSignature,
    /// Older than the maximum age, or issued too far in the future.
    #[error("session expired")]
    Expired,
}

/// Signs and verifies session cookie values with a secret key.
#[derive(Clone)]
pub struct SessionSigner {
    mac: HmacSha256,
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
    /// A signer keyed with `secret`, with the default 14-day maximum age.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        // Standard HMAC key preparation, done here so that keying is infallible.
        let secret = secret.as_ref();
        let mut key = [0u8; BLOCK_SIZE];
        if secret.len() > BLOCK_SIZE {
            key[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            key[..secret.len()].copy_from_slice(secret);
        }
        Self {
            mac: HmacSha256::new(&key.into()),
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
        let tag = self.tag(&payload).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The username proven by `cookie_value`, if its signature and age check out.
    pub fn verify(&self, cookie_value: &str, now_unix: u64) -> Result<String, SessionError> {
        if cookie_value.len() > MAX_COOKIE_LEN {
            return Err(SessionError::Malformed);
        }
        let mut parts = cookie_value.split('.');
        let (Some(user), Some(issued), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Malformed);
        };
        if issued.is_empty() || !issued.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SessionError::Malformed);
        }
        let issued_at: u64 = issued.parse().map_err(|_| SessionError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SessionError::Malformed)?;

        let payload_len = user.len() + 1 + issued.len();
        self.tag(&cookie_value[..payload_len])
            .verify_slice(&tag)
            .map_err(|_| SessionError::BadSignature)?;

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

    fn tag(&self, payload: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        mac
    }
}

/// A `Set-Cookie` header value storing `value` as the session cookie.
pub fn set_cookie_header(value: &str, max_age_secs: u64) -> String {
    format!("{COOKIE_NAME}={value}; HttpOnly; Path=/; SameSite=Lax; Max-Age={max_age_secs}")
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
            assert!(value.split('.').count() == 3);
        }
    }

    #[test]
    fn format_matches_spec() {
        let value = signer().sign("alice", NOW);
        let (payload, tag) = value.rsplit_once('.').unwrap();
        assert_eq!(payload, format!("YWxpY2U.{NOW}"));
        let mut mac = HmacSha256::new_from_slice(b"test-secret").unwrap();
        mac.update(payload.as_bytes());
        assert_eq!(tag, URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn keying_matches_hmac_for_all_key_lengths() {
        for len in [0, 1, 32, 63, 64, 65, 200] {
            let key = vec![0x5a; len];
            let value = SessionSigner::new(&key).sign("u", 7);
            let payload = "dQ.7";
            let mut mac = HmacSha256::new_from_slice(&key).unwrap();
            mac.update(payload.as_bytes());
            let expected = format!(
                "{payload}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            );
            assert_eq!(value, expected, "key length {len}");
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
        let last = if value.ends_with('A') { "B" } else { "A" };
        flipped.replace_range(value.len() - 1.., last);
        assert!(signer().verify(&flipped, NOW).is_err());
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
    fn malformed_values() {
        let s = signer();
        let good = s.sign("alice", NOW);
        let (user, rest) = good.split_once('.').unwrap();
        let (_, tag) = rest.split_once('.').unwrap();
        let cases = [
            String::new(),
            "alice".into(),
            "a.b".into(),
            "a.1.b.c".into(),
            format!("{good}."),
            format!("{user}..{tag}"),
            format!("{user}.+{NOW}.{tag}"),
            format!("{user}.-1.{tag}"),
            format!("{user}.99999999999999999999.{tag}"),
            format!("{user}.{NOW}.{tag}="),
            format!("{user}.{NOW}.!!!"),
            "x".repeat(MAX_COOKIE_LEN + 1),
        ];
        for case in cases {
            assert_eq!(
                s.verify(&case, NOW),
                Err(SessionError::Malformed),
                "{case:?}"
            );
        }
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
        assert_eq!(
            set_cookie_header("abc", 1_209_600),
            "sessionid=abc; HttpOnly; Path=/; SameSite=Lax; Max-Age=1209600"
        );
    }
}
