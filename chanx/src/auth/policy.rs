//! Runs authenticators, permissions and the object lookup in DRF's order.

use std::any::Any;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{AuthError, Authenticator, NOT_PROVIDED, PERMISSION_DENIED, Permission};
use crate::handshake::{Handshake, User};

/// An object loaded from the path, shared with the consumer.
pub type LoadedObject = Arc<dyn Any + Send + Sync>;

/// Loads the object an endpoint's path names (DRF's `get_object`), for
/// object-level permissions and for the consumer ([`Context::object`](crate::Context::object)).
pub trait ObjectLoader: Send + Sync + 'static {
    /// The object's name in the 404 text: `No <name> matches the given query.`
    fn object_name(&self) -> &str;

    /// The object named by the handshake's path parameters, `None` if it
    /// does not exist.
    fn load<'a>(
        &'a self,
        handshake: &'a Handshake,
    ) -> BoxFuture<'a, Result<Option<LoadedObject>, AuthError>>;
}

/// What the policy decided.
#[derive(Clone)]
pub enum AuthDecision {
    /// Connect; `user` is `None` for an anonymous connection.
    Allowed {
        /// The authenticated user.
        user: Option<User>,
        /// The object loaded from the path, if the endpoint has a loader.
        object: Option<LoadedObject>,
    },
    /// Refuse with an HTTP-like status and a detail text.
    Denied {
        /// 401, 403, 404 or 500.
        status: u16,
        /// The text sent in `{"detail": ...}`.
        detail: String,
    },
}

impl std::fmt::Debug for AuthDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthDecision::Allowed { user, object } => f
                .debug_struct("Allowed")
                .field("user", user)
                .field("object", &object.is_some())
                .finish(),
            AuthDecision::Denied { status, detail } => f
                .debug_struct("Denied")
                .field("status", status)
                .field("detail", detail)
                .finish(),
        }
    }
}

/// The authentication and permission setup of an endpoint.
#[derive(Clone, Default)]
pub struct AuthPolicy {
    authenticators: Vec<Arc<dyn Authenticator>>,
    permissions: Vec<Arc<dyn Permission>>,
    object: Option<Arc<dyn ObjectLoader>>,
}

impl AuthPolicy {
    /// No authenticators, no permissions: everybody connects anonymously.
    pub fn new() -> Self {
        AuthPolicy::default()
    }

    /// Adds an authenticator (tried in the order added).
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticators.push(Arc::new(authenticator));
        self
    }

    /// Adds a permission (all must allow).
    pub fn permission(mut self, permission: impl Permission) -> Self {
        self.permissions.push(Arc::new(permission));
        self
    }

    /// Sets the loader of the path's object.
    pub fn object(mut self, loader: impl ObjectLoader) -> Self {
        self.object = Some(Arc::new(loader));
        self
    }

    fn unauthenticated_status(&self) -> u16 {
        match self.authenticators.first() {
            Some(a) if a.challenge().is_some() => 401,
            _ => 403,
        }
    }

    fn denied(status: u16, detail: impl Into<String>) -> AuthDecision {
        AuthDecision::Denied {
            status,
            detail: detail.into(),
        }
    }

    fn internal(error: &AuthError) -> AuthDecision {
        tracing::error!(%error, "Authentication failed with unexpected error");
        Self::denied(500, "Internal server error")
    }

    /// Decides whether `handshake` may connect.
    pub async fn decide(&self, handshake: &Handshake) -> AuthDecision {
        let mut user = None;
        for authenticator in &self.authenticators {
            match authenticator.authenticate(handshake).await {
                Ok(Some(found)) => {
                    user = Some(found);
                    break;
                }
                Ok(None) => {}
                Err(AuthError::Failed(detail)) => {
                    return Self::denied(self.unauthenticated_status(), detail);
                }
                Err(error @ AuthError::Internal(_)) => return Self::internal(&error),
            }
        }
        for permission in &self.permissions {
            if let Err(message) = permission.check(user.as_ref(), handshake) {
                return self.permission_denied(user.as_ref(), message);
            }
        }
        let mut object = None;
        if let Some(loader) = &self.object {
            match loader.load(handshake).await {
                Ok(Some(found)) => object = Some(found),
                Ok(None) => {
                    return Self::denied(
                        404,
                        format!("No {} matches the given query.", loader.object_name()),
                    );
                }
                Err(AuthError::Failed(_)) => return Self::denied(404, "Not found."),
                Err(error @ AuthError::Internal(_)) => return Self::internal(&error),
            }
        }
        if let Some(obj) = &object {
            for permission in &self.permissions {
                if let Err(message) =
                    permission.check_object(user.as_ref(), handshake, obj.as_ref())
                {
                    return self.permission_denied(user.as_ref(), message);
                }
            }
        }
        AuthDecision::Allowed { user, object }
    }

    fn permission_denied(&self, user: Option<&User>, message: Option<&str>) -> AuthDecision {
        if user.is_none() && !self.authenticators.is_empty() {
            return Self::denied(self.unauthenticated_status(), NOT_PROVIDED);
        }
        Self::denied(403, message.unwrap_or(PERMISSION_DENIED))
    }
}
