//! [`Matcher`]: the compiled matcher of one flattened route.

use regex::Regex;

use super::info::ParamInfo;
use super::params::PathParams;

/// Compiled matcher of one flattened route.
#[derive(Clone, Debug)]
pub(super) struct Matcher {
    /// `^...$` regex of the full route.
    pub(super) regex: Regex,
    /// Capture-group index of each parameter, parallel to `RouteInfo::params`.
    pub(super) groups: Vec<usize>,
    /// Literal text every matching path starts with (a cheap pre-check).
    pub(super) prefix: String,
    /// The route is entirely literal: it matches exactly `prefix`.
    pub(super) exact: bool,
}

impl Matcher {
    /// Matches the decoded `subject` (the request path without its leading
    /// `/`); on a match, the values of `params` (the route's parameters, in
    /// the order of `groups`) that participated in it.
    pub(super) fn matches(&self, subject: &str, params: &[ParamInfo]) -> Option<PathParams> {
        if self.exact {
            return (subject == self.prefix).then(PathParams::default);
        }
        if !subject.starts_with(self.prefix.as_str()) {
            return None;
        }
        if self.groups.is_empty() {
            return self.regex.is_match(subject).then(PathParams::default);
        }
        let caps = self.regex.captures(subject)?;
        Some(
            params
                .iter()
                .zip(&self.groups)
                .filter_map(|(param, &group)| {
                    caps.get(group)
                        .map(|m| (param.name.clone(), m.as_str().to_owned()))
                })
                .collect(),
        )
    }
}
