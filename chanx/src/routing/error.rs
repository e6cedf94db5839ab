//! [`RouteError`]: why a route declaration does not compile.

/// Error building a [`RouteTable`](super::RouteTable); every variant names the
/// offending pattern.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A regex segment (or the concatenated route) does not compile.
    #[error("invalid regular expression in route pattern {pattern:?}: {source}")]
    InvalidRegex {
        /// The offending pattern.
        pattern: String,
        /// The error reported by the `regex` crate.
        source: regex::Error,
    },
    /// A `<converter:name>` uses a converter other than
    /// `str`, `int`, `slug`, `uuid` or `path`.
    #[error(
        "route pattern {pattern:?} uses unknown converter {converter:?} \
         (expected str, int, slug, uuid or path)"
    )]
    UnknownConverter {
        /// The offending pattern.
        pattern: String,
        /// The unknown converter name.
        converter: String,
    },
    /// The same parameter name appears twice in one full (concatenated) route.
    #[error("route pattern {pattern:?} uses parameter name {name:?} more than once")]
    DuplicateParameter {
        /// The full concatenated route pattern.
        pattern: String,
        /// The repeated parameter name.
        name: String,
    },
    /// Malformed `<...>` parameter, bad group name or unbalanced brackets.
    #[error("malformed route pattern {pattern:?}: {reason}")]
    Malformed {
        /// The offending pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The full route starts with `/`; patterns are written without it.
    #[error(
        "route pattern {pattern:?} starts with '/'; write patterns without a leading slash \
         (it is stripped from the request path before matching)"
    )]
    LeadingSlash {
        /// The full concatenated route pattern.
        pattern: String,
    },
}

impl RouteError {
    /// A [`RouteError::Malformed`] for `pattern`.
    pub(super) fn malformed(pattern: &str, reason: impl Into<String>) -> Self {
        Self::Malformed {
            pattern: pattern.to_owned(),
            reason: reason.into(),
        }
    }
}
