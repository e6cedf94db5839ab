//! Logged-in sessions kept in memory: Django's session table, in its
//! simplest form.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use chanx::User;
use chanx::auth::{AuthError, SessionStore};

/// Session id (the `sessionid` cookie's value) to user.
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    users: Arc<Mutex<HashMap<String, User>>>,
}

impl Sessions {
    /// Starts a session for `user`; the new session id.
    pub fn log_in(&self, user: User) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.insert(id.clone(), user);
        id
    }
}

impl SessionStore for Sessions {
    fn load<'a>(
        &'a self,
        session: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<User>, AuthError>> + Send + 'a>> {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let user = users.get(session).cloned();
        Box::pin(async move { Ok(user) })
    }
}
