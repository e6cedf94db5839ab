//! Sessions backed by signed cookies: the `SessionStore` the Quick Start's
//! session authentication uses.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chanx::User;
use chanx::auth::{AuthError, SessionStore};
use futures_util::future::BoxFuture;

use crate::login::{DemoUser, DemoUsers};
use crate::session::SessionSigner;

/// Verifies signed `sessionid` cookies and maps them to demo users.
#[derive(Clone)]
pub struct SignedSessionStore {
    inner: Arc<(SessionSigner, DemoUsers)>,
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SignedSessionStore {
    /// A store signing with `secret` over `users`.
    pub fn new(secret: &[u8], users: DemoUsers) -> Self {
        SignedSessionStore {
            inner: Arc::new((SessionSigner::new(secret), users)),
        }
    }

    /// The signer (to issue cookies at login).
    pub fn signer(&self) -> &SessionSigner {
        &self.inner.0
    }

    /// The demo users.
    pub fn users(&self) -> &DemoUsers {
        &self.inner.1
    }

    /// The user of a cookie value, if it is valid. Why a cookie is refused
    /// (a signature from another `CHANX_SECRET_KEY`, an expired session...)
    /// is logged at DEBUG: the client only learns that it is not logged in.
    pub fn user_of(&self, cookie: &str) -> Option<DemoUser> {
        let username = match self.signer().verify(cookie, now_unix()) {
            Ok(username) => username,
            Err(reason) => {
                tracing::debug!(%reason, "session cookie refused");
                return None;
            }
        };
        let user = self.users().get(&username);
        if user.is_none() {
            tracing::debug!(%username, "session cookie refused: no such user");
        }
        user
    }
}

impl SessionStore for SignedSessionStore {
    fn load<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<Option<User>, AuthError>> {
        let user = self.user_of(session).map(|u| User::new(u.pk, u.username));
        Box::pin(async move { Ok(user) })
    }
}
