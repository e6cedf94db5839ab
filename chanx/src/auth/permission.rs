//! Permissions: may this user connect, and to this object?

use std::any::Any;

use crate::handshake::{Handshake, User};

/// A yes/no rule checked after authentication (DRF's `BasePermission`).
///
/// ```
/// use chanx::auth::{Permission, PermissionExt};
/// use chanx::{Handshake, User};
///
/// struct StaffOnly;
/// impl Permission for StaffOnly {
///     fn has_permission(&self, user: Option<&User>, _: &Handshake) -> bool {
///         user.is_some_and(|u| u.attributes.get("staff") == Some(&true.into()))
///     }
///     fn message(&self) -> Option<&str> { Some("Staff only.") }
/// }
/// let rule = StaffOnly.with_message("Only staff may watch this room.");
/// # let _ = rule;
/// ```
pub trait Permission: Send + Sync + 'static {
    /// Request-level check.
    fn has_permission(&self, user: Option<&User>, handshake: &Handshake) -> bool;

    /// Object-level check, run after the endpoint's object was loaded.
    fn has_object_permission(
        &self,
        _user: Option<&User>,
        _handshake: &Handshake,
        _object: &(dyn Any + Send + Sync),
    ) -> bool {
        true
    }

    /// The denial text (DRF's `message`); `None` uses the default text.
    fn message(&self) -> Option<&str> {
        None
    }

    /// Request-level check with the denial text of the rule that failed
    /// (combinators override it to report the failing operand's text).
    fn check(&self, user: Option<&User>, handshake: &Handshake) -> Result<(), Option<&str>> {
        if self.has_permission(user, handshake) {
            Ok(())
        } else {
            Err(self.message())
        }
    }

    /// Object-level check with the denial text of the rule that failed.
    fn check_object(
        &self,
        user: Option<&User>,
        handshake: &Handshake,
        object: &(dyn Any + Send + Sync),
    ) -> Result<(), Option<&str>> {
        if self.has_object_permission(user, handshake, object) {
            Ok(())
        } else {
            Err(self.message())
        }
    }
}

/// Allows authenticated users only.
#[derive(Clone, Copy, Debug, Default)]
pub struct IsAuthenticated;

impl Permission for IsAuthenticated {
    fn has_permission(&self, user: Option<&User>, _: &Handshake) -> bool {
        user.is_some()
    }
}

/// Allows everybody.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAny;

impl Permission for AllowAny {
    fn has_permission(&self, _: Option<&User>, _: &Handshake) -> bool {
        true
    }
}

/// Allows nobody (handy for tests and maintenance switches).
#[derive(Clone, Copy, Debug, Default)]
pub struct DenyAll;

impl Permission for DenyAll {
    fn has_permission(&self, _: Option<&User>, _: &Handshake) -> bool {
        false
    }
}

/// Both must allow (DRF's `A & B`); the denial text is the failing one's.
pub struct And<A, B>(pub A, pub B);
/// Either may allow (DRF's `A | B`).
pub struct Or<A, B>(pub A, pub B);
/// Inverts a permission (DRF's `~A`).
pub struct Not<A>(pub A);
/// A permission with a custom denial text.
pub struct WithMessage<A> {
    inner: A,
    message: String,
}

impl<A: Permission, B: Permission> Permission for And<A, B> {
    fn has_permission(&self, user: Option<&User>, hs: &Handshake) -> bool {
        self.0.has_permission(user, hs) && self.1.has_permission(user, hs)
    }
    fn has_object_permission(
        &self,
        user: Option<&User>,
        hs: &Handshake,
        obj: &(dyn Any + Send + Sync),
    ) -> bool {
        self.0.has_object_permission(user, hs, obj) && self.1.has_object_permission(user, hs, obj)
    }
    fn check(&self, user: Option<&User>, hs: &Handshake) -> Result<(), Option<&str>> {
        self.0.check(user, hs)?;
        self.1.check(user, hs)
    }
    fn check_object(
        &self,
        user: Option<&User>,
        hs: &Handshake,
        obj: &(dyn Any + Send + Sync),
    ) -> Result<(), Option<&str>> {
        self.0.check_object(user, hs, obj)?;
        self.1.check_object(user, hs, obj)
    }
}

impl<A: Permission, B: Permission> Permission for Or<A, B> {
    fn has_permission(&self, user: Option<&User>, hs: &Handshake) -> bool {
        self.0.has_permission(user, hs) || self.1.has_permission(user, hs)
    }
    fn has_object_permission(
        &self,
        user: Option<&User>,
        hs: &Handshake,
        obj: &(dyn Any + Send + Sync),
    ) -> bool {
        (self.0.has_permission(user, hs) && self.0.has_object_permission(user, hs, obj))
            || (self.1.has_permission(user, hs) && self.1.has_object_permission(user, hs, obj))
    }
}

impl<A: Permission> Permission for Not<A> {
    fn has_permission(&self, user: Option<&User>, hs: &Handshake) -> bool {
        !self.0.has_permission(user, hs)
    }
    fn has_object_permission(
        &self,
        user: Option<&User>,
        hs: &Handshake,
        obj: &(dyn Any + Send + Sync),
    ) -> bool {
        !self.0.has_object_permission(user, hs, obj)
    }
}

impl<A: Permission> Permission for WithMessage<A> {
    fn has_permission(&self, user: Option<&User>, hs: &Handshake) -> bool {
        self.inner.has_permission(user, hs)
    }
    fn has_object_permission(
        &self,
        user: Option<&User>,
        hs: &Handshake,
        obj: &(dyn Any + Send + Sync),
    ) -> bool {
        self.inner.has_object_permission(user, hs, obj)
    }
    fn message(&self) -> Option<&str> {
        Some(&self.message)
    }
}

/// Combinators for every [`Permission`].
pub trait PermissionExt: Permission + Sized {
    /// Both must allow.
    fn and<B: Permission>(self, other: B) -> And<Self, B> {
        And(self, other)
    }
    /// Either may allow.
    fn or<B: Permission>(self, other: B) -> Or<Self, B> {
        Or(self, other)
    }
    /// Inverts the rule.
    fn not(self) -> Not<Self> {
        Not(self)
    }
    /// Replaces the denial text.
    fn with_message(self, message: impl Into<String>) -> WithMessage<Self> {
        WithMessage {
            inner: self,
            message: message.into(),
        }
    }
}

impl<P: Permission> PermissionExt for P {}
