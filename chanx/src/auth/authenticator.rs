//! Authenticators: who is connecting.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::handshake::{Handshake, User};

/// Why an authenticator refused the request.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Credentials were presented and are wrong (DRF's `AuthenticationFailed`).
    /// The text goes to the client.
    #[error("authentication failed: {0}")]
    Failed(String),
    /// The authenticator itself broke (a store is down, ...). The client
    /// gets a 500 with a generic text; the cause goes only to the log.
    #[error("authenticator error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

/// Recognises the user behind an upgrade request.
///
/// Return `Ok(None)` when the request carries no credentials for this
/// scheme (the next authenticator is tried), `Ok(Some(user))` on success and
/// `Err(AuthError::Failed)` for credentials that are present but wrong.
pub trait Authenticator: Send + Sync + 'static {
    /// Inspects the handshake.
    fn authenticate<'a>(
        &'a self,
        handshake: &'a Handshake,
    ) -> BoxFuture<'a, Result<Option<User>, AuthError>>;

    /// The `WWW-Authenticate` challenge of this scheme, if it has one. A
    /// first authenticator with a challenge makes failures 401, else 403.
    fn challenge(&self) -> Option<&str> {
        None
    }
}

/// Looks up the user of a session cookie value.
pub trait SessionStore: Send + Sync + 'static {
    /// The user of this session, or `None` if the session is unknown,
    /// expired or forged.
    fn load<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<Option<User>, AuthError>>;
}

/// Session-cookie authentication (DRF's `SessionAuthentication`): reads a
/// cookie (default `sessionid`) and asks a [`SessionStore`]. It has no
/// challenge, so failures are 403, and a bad cookie is treated like no
/// cookie, as in DRF.
pub struct SessionAuthentication {
    store: Arc<dyn SessionStore>,
    cookie: String,
}

impl SessionAuthentication {
    /// Uses `store` and the `sessionid` cookie.
    pub fn new(store: impl SessionStore) -> Self {
        SessionAuthentication {
            store: Arc::new(store),
            cookie: "sessionid".to_owned(),
        }
    }

    /// Reads another cookie name.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie = name.into();
        self
    }
}

impl Authenticator for SessionAuthentication {
    fn authenticate<'a>(
        &'a self,
        handshake: &'a Handshake,
    ) -> BoxFuture<'a, Result<Option<User>, AuthError>> {
        Box::pin(async move {
            match handshake.cookie(&self.cookie) {
                Some(value) if !value.is_empty() => self.store.load(value).await,
                _ => Ok(None),
            }
        })
    }
}

/// Checks a bearer token and returns its user.
pub trait TokenVerifier: Send + Sync + 'static {
    /// The user of `token`, or `None` if the token is unknown.
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<User>, AuthError>>;
}

/// Token-header authentication (DRF's `TokenAuthentication`):
/// `Authorization: Token <key>` (keyword configurable, e.g. `Bearer`),
/// with DRF's exact texts. Its challenge makes failures 401.
///
/// | header | result |
/// |---|---|
/// | absent, or another scheme | not this scheme (next authenticator) |
/// | `Token` | 401 `Invalid token header. No credentials provided.` |
/// | `Token a b` | 401 `Invalid token header. Token string should not contain spaces.` |
/// | `Token unknown` | 401 `Invalid token.` |
pub struct TokenAuthentication {
    verifier: Arc<dyn TokenVerifier>,
    keyword: String,
}

impl TokenAuthentication {
    /// Uses `verifier` with the keyword `Token`.
    pub fn new(verifier: impl TokenVerifier) -> Self {
        TokenAuthentication {
            verifier: Arc::new(verifier),
            keyword: "Token".to_owned(),
        }
    }

    /// Uses another keyword, e.g. `Bearer`.
    pub fn keyword(mut self, keyword: impl Into<String>) -> Self {
        self.keyword = keyword.into();
        self
    }
}

impl Authenticator for TokenAuthentication {
    fn authenticate<'a>(
        &'a self,
        handshake: &'a Handshake,
    ) -> BoxFuture<'a, Result<Option<User>, AuthError>> {
        Box::pin(async move {
            let Some(header) = handshake.header("authorization") else {
                return Ok(None);
            };
            let parts: Vec<&str> = header.split_whitespace().collect();
            match parts.as_slice() {
                [scheme, ..] if !scheme.eq_ignore_ascii_case(&self.keyword) => Ok(None),
                [] => Ok(None),
                [_] => Err(AuthError::Failed(
                    "Invalid token header. No credentials provided.".into(),
                )),
                [_, token] => match self.verifier.verify(token).await? {
                    Some(user) => Ok(Some(user)),
                    None => Err(AuthError::Failed("Invalid token.".into())),
                },
                _ => Err(AuthError::Failed(
                    "Invalid token header. Token string should not contain spaces.".into(),
                )),
            }
        })
    }

    fn challenge(&self) -> Option<&str> {
        Some(&self.keyword)
    }
}

/// Recognises nobody: every connection is anonymous. Useful for public
/// endpoints together with [`AllowAny`](super::AllowAny).
pub struct AnonymousAuthentication;

impl Authenticator for AnonymousAuthentication {
    fn authenticate<'a>(
        &'a self,
        _: &'a Handshake,
    ) -> BoxFuture<'a, Result<Option<User>, AuthError>> {
        Box::pin(async { Ok(None) })
    }
}
