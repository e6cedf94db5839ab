//! Body of `POST /auth/login/` and the demo user table.
//!
//! `{"username": "...", "password": "..."}` answers 200 `{"username": "..."}`,
//! 401 [`INVALID_CREDENTIALS`] on wrong credentials, 400 on a malformed body.

use std::fmt;

use serde_json::Value;
use subtle::ConstantTimeEq as _;

/// Password of the demo users unless `CHANX_DEMO_PASSWORD` overrides it.
pub const DEFAULT_DEMO_PASSWORD: &str = "chanx-demo";

/// The 401 `detail` for wrong credentials.
pub const INVALID_CREDENTIALS: &str = "Invalid username or password.";

const FIELDS_REQUIRED: &str = "username and password are required strings.";

/// A login attempt; `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginRequest {
    /// The claimed username.
    pub username: String,
    /// The plain-text password.
    pub password: String,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a login body was rejected (400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Not JSON, or lacking string `username` and `password`; holds the `detail`.
    #[error("{0}")]
    Malformed(String),
}

impl LoginError {
    /// The 400 response body, `{"detail": ...}`.
    pub fn to_json(&self) -> Value {
        match self {
            LoginError::Malformed(detail) => serde_json::json!({ "detail": detail }),
        }
    }
}

/// The 401 response body for wrong credentials.
pub fn invalid_credentials_json() -> Value {
    serde_json::json!({ "detail": INVALID_CREDENTIALS })
}

/// The fields of a login body.
#[derive(serde::Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// Parses a login body; extra fields are ignored.
pub fn parse_login(body: &[u8]) -> Result<LoginRequest, LoginError> {
    let fields_required = || LoginError::Malformed(FIELDS_REQUIRED.to_owned());
    match serde_json::from_slice::<LoginBody>(body) {
        // serde also reads a struct from a JSON array: only an object counts.
        Ok(_) if !body.trim_ascii_start().starts_with(b"{") => Err(fields_required()),
        Ok(LoginBody { username, password }) => Ok(LoginRequest { username, password }),
        Err(error) if error.is_data() => Err(fields_required()),
        Err(error) => Err(LoginError::Malformed(format!("JSON parse error - {error}"))),
    }
}

/// A demo account.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoUser {
    /// Primary key, as a Django user would have.
    pub pk: u64,
    /// The username.
    pub username: String,
}

/// The fixed demo accounts `alice` (pk 1), `bob` (pk 2) and `carol` (pk 3),
/// sharing one password; `Debug` hides it.
#[derive(Clone)]
pub struct DemoUsers {
    password: String,
    users: Vec<DemoUser>,
}

impl fmt::Debug for DemoUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoUsers")
            .field("password", &"<redacted>")
            .field("users", &self.users)
            .finish()
    }
}

impl DemoUsers {
    /// The demo accounts, all with `password`.
    pub fn new(password: String) -> Self {
        let users = ["alice", "bob", "carol"]
            .into_iter()
            .zip(1..)
            .map(|(username, pk)| DemoUser {
                pk,
                username: username.to_owned(),
            })
            .collect();
        Self { password, users }
    }

    /// The user, if `username` exists and `password` is right.
    ///
    /// The password is compared in constant time, and compared even for an
    /// unknown username so timing does not reveal which usernames exist.
    pub fn check(&self, username: &str, password: &str) -> Option<DemoUser> {
        let user = self.get(username);
        let password_ok: bool = password.as_bytes().ct_eq(self.password.as_bytes()).into();
        user.filter(|_| password_ok)
    }

    /// The user named `username` (case-sensitive), if any.
    pub fn get(&self, username: &str) -> Option<DemoUser> {
        self.users.iter().find(|u| u.username == username).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn users() -> DemoUsers {
        DemoUsers::new(DEFAULT_DEMO_PASSWORD.to_owned())
    }

    #[test]
    fn parses_a_valid_body() {
        let req = parse_login(br#"{"username": "alice", "password": "pw", "extra": 1}"#).unwrap();
        assert_eq!(req.username, "alice");
        assert_eq!(req.password, "pw");
        assert!(!format!("{req:?}").contains("pw"));
    }

    #[test]
    fn non_json_is_a_parse_error() {
        for body in [&b""[..], b"username=alice", b"{\"username\": ", b"\xff"] {
            let LoginError::Malformed(detail) = parse_login(body).unwrap_err();
            assert!(detail.starts_with("JSON parse error - "), "{detail}");
        }
        assert_eq!(
            parse_login(b"oops").unwrap_err().to_json(),
            json!({"detail": "JSON parse error - expected value at line 1 column 1"})
        );
    }

    #[test]
    fn missing_or_wrong_typed_fields() {
        let bodies = [
            json!({}),
            json!({"username": "alice"}),
            json!({"password": "pw"}),
            json!({"username": null, "password": "pw"}),
            json!({"username": "alice", "password": 5}),
            json!({"username": ["alice"], "password": "pw"}),
            json!(["alice", "pw"]),
            json!("alice"),
            json!(null),
        ];
        for body in bodies {
            let err = parse_login(body.to_string().as_bytes()).unwrap_err();
            assert_eq!(
                err.to_json(),
                json!({"detail": "username and password are required strings."}),
                "{body}"
            );
        }
    }

    #[test]
    fn demo_users_and_pks() {
        let users = users();
        let expected = [("alice", 1), ("bob", 2), ("carol", 3)];
        for (name, pk) in expected {
            let user = DemoUser {
                pk,
                username: name.to_owned(),
            };
            assert_eq!(users.get(name), Some(user.clone()));
            assert_eq!(users.check(name, "chanx-demo"), Some(user));
        }
        assert_eq!(users.get("dave"), None);
        assert_eq!(users.get("Alice"), None);
    }

    #[test]
    fn wrong_credentials_are_refused() {
        let users = users();
        assert_eq!(users.check("alice", "wrong"), None);
        assert_eq!(users.check("alice", ""), None);
        assert_eq!(users.check("alice", "chanx-demo "), None);
        assert_eq!(users.check("alice", "chanx-dem0"), None);
        assert_eq!(users.check("dave", "chanx-demo"), None);
        assert_eq!(users.check("", ""), None);
        assert_eq!(
            invalid_credentials_json(),
            json!({"detail": "Invalid username or password."})
        );
    }

    #[test]
    fn password_is_configurable_and_hidden() {
        let users = DemoUsers::new("s3cret".to_owned());
        assert!(users.check("bob", "s3cret").is_some());
        assert!(users.check("bob", "chanx-demo").is_none());
        assert!(!format!("{users:?}").contains("s3cret"));
    }
}
