//! Authentication and permissions on the upgrade request, modelled on
//! Django REST framework.
//!
//! An endpoint lists [`Authenticator`]s (tried in order; the first that
//! recognises the request wins), [`Permission`]s (all must pass) and,
//! optionally, an [`ObjectLoader`] for object-level permissions. The
//! [`AuthPolicy`] runs them and yields the status docs/protocol.md,
//! "Authentication", describes:
//!
//! | situation | status | detail |
//! |---|---|---|
//! | everything passes | 200 | `OK` |
//! | credentials invalid | 401 if the first authenticator has a challenge, else 403 | the authenticator's text |
//! | a permission fails, nobody authenticated | 401 / 403 as above | `Authentication credentials were not provided.` |
//! | a permission fails for a user | 403 | the permission's message |
//! | the path's object does not exist | 404 | `No <object> matches the given query.` |
//! | the authenticator or loader failed | 500 | `Internal server error` (cause logged) |
//!
//! ```
//! use chanx::auth::{AuthPolicy, IsAuthenticated, PermissionExt, AllowAny};
//! let policy = AuthPolicy::new().permission(IsAuthenticated.or(AllowAny));
//! # let _ = policy;
//! ```

mod authenticator;
mod permission;
mod policy;

pub use authenticator::{
    AnonymousAuthentication, AuthError, Authenticator, SessionAuthentication, SessionStore,
    TokenAuthentication, TokenVerifier,
};
pub use permission::{
    AllowAny, And, DenyAll, IsAuthenticated, Not, Or, Permission, PermissionExt, WithMessage,
};
pub use policy::{AuthDecision, AuthPolicy, LoadedObject, ObjectLoader};

/// DRF's text when credentials are missing.
pub const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
/// DRF's default permission-denied text.
pub const PERMISSION_DENIED: &str = "You do not have permission to perform this action.";
