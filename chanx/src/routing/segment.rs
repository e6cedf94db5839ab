//! [`Segment`]: one compiled pattern (an `include` prefix or an endpoint
//! pattern), the unit that full routes are concatenated from.

use regex::Regex;

use super::error::RouteError;

/// Piece of a compiled segment's regex.
#[derive(Clone, Debug)]
pub(super) enum Piece {
    /// Regex text copied verbatim.
    Text(String),
    /// Opening of a named group `(?P<name>`; the group's body and closing
    /// parenthesis follow as `Text`. `inner` is the body, for
    /// [`ParamInfo`](super::ParamInfo).
    Open { name: String, inner: String },
}

/// One compiled pattern segment (an `include` prefix or an endpoint pattern).
#[derive(Clone, Debug)]
pub(super) struct Segment {
    /// Pattern exactly as passed to the builder function (for errors).
    pub(super) raw: String,
    /// Pattern as written (regex anchors stripped).
    pub(super) pattern: String,
    /// Pattern with parameters as `:name`.
    pub(super) friendly: String,
    /// The segment's regex, split at the openings of parameter groups.
    pub(super) pieces: Vec<Piece>,
    /// Literal text every match of this segment starts with.
    pub(super) prefix: String,
    /// The whole segment is the literal `prefix`.
    pub(super) literal: bool,
}

impl Segment {
    /// The segment's regex on its own, to validate it or diagnose errors.
    pub(super) fn standalone_regex(&self) -> Result<Regex, RouteError> {
        let mut text = String::new();
        let mut count = 0;
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => text.push_str(t),
                Piece::Open { .. } => {
                    text.push_str(&group_opening(count));
                    count += 1;
                }
            }
        }
        Regex::new(&text).map_err(|source| RouteError::InvalidRegex {
            pattern: self.raw.clone(),
            source,
        })
    }
}

/// Internal capture-group name of the `index`-th parameter. User names are
/// replaced so that any identifier (including non-ASCII) is accepted and
/// duplicates are reported by us, not by the regex compiler.
pub(super) fn group_name(index: usize) -> String {
    format!("p{index}")
}

/// Opening `(?P<…>` of the `index`-th parameter's group.
pub(super) fn group_opening(index: usize) -> String {
    format!("(?P<{}>", group_name(index))
}
