//! The named groups of a regex segment: its parameters.

use std::convert::Infallible;
use std::ops::Range;

use regex_syntax::ast::{self, Ast, GroupKind};

use super::parse::Parsed;
use crate::routing::segment::Piece;

/// A named group `(?P<name>body)` or `(?<name>body)`; offsets are in the
/// pattern as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NamedGroup {
    /// The group's name.
    pub(super) name: String,
    /// Offset of the opening `(`.
    pub(super) open: usize,
    /// The body, between the `>` of the name and the closing `)`.
    pub(super) body: Range<usize>,
}

/// Every named group, nested ones included, in the order they open.
pub(super) fn named_groups(parsed: &Parsed<'_>) -> Vec<NamedGroup> {
    let Ok(groups) = ast::visit(
        &parsed.ast,
        Collect {
            parsed,
            groups: Vec::new(),
        },
    );
    groups
}

/// Splits `pattern` (as written) at the openings of `groups` (as returned by
/// [`named_groups`]), which become [`Piece::Open`]; the bodies and closing
/// parentheses stay in the [`Piece::Text`] that follows.
pub(super) fn pieces(pattern: &str, groups: &[NamedGroup]) -> Vec<Piece> {
    let mut pieces = Vec::with_capacity(2 * groups.len() + 1);
    let mut copied = 0;
    for group in groups {
        let text = pattern.get(copied..group.open).unwrap_or_default();
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_owned()));
        }
        pieces.push(Piece::Open {
            name: group.name.clone(),
            inner: pattern
                .get(group.body.clone())
                .unwrap_or_default()
                .to_owned(),
        });
        copied = group.body.start;
    }
    let rest = pattern.get(copied..).unwrap_or_default();
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    pieces
}

/// AST visitor collecting the named groups.
struct Collect<'a, 'p> {
    parsed: &'a Parsed<'p>,
    groups: Vec<NamedGroup>,
}

impl ast::Visitor for Collect<'_, '_> {
    type Output = Vec<NamedGroup>;
    type Err = Infallible;

    fn finish(self) -> Result<Self::Output, Self::Err> {
        Ok(self.groups)
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), Self::Err> {
        if let Ast::Group(group) = ast
            && let GroupKind::CaptureName { name, .. } = &group.kind
        {
            let body = group.ast.span();
            self.groups.push(NamedGroup {
                name: self.parsed.span_text(&name.span).to_owned(),
                open: self.parsed.original_offset(group.span.start.offset),
                body: self.parsed.original_offset(body.start.offset)
                    ..self.parsed.original_offset(body.end.offset),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::{NamedGroup, named_groups, pieces};
    use crate::routing::segment::Piece;

    fn group(name: &str, open: usize, body: std::ops::Range<usize>) -> NamedGroup {
        NamedGroup {
            name: name.into(),
            open,
            body,
        }
    }

    #[test]
    fn nested_and_repeated_groups() {
        let pattern = r"a(?P<x>b(?<y>[)]))(?:c)(?P<x>\))";
        let parsed = parse(pattern).expect("parses");
        let groups = named_groups(&parsed);
        assert_eq!(
            groups,
            [
                group("x", 1, 7..17),
                group("y", 8, 13..16),
                group("x", 23, 29..31)
            ]
        );
        let texts: Vec<String> = pieces(pattern, &groups)
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(text) => text,
                Piece::Open { name, inner } => format!("<{name}={inner}>"),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "a",
                "<x=b(?<y>[)])>",
                "b",
                "<y=[)]>",
                "[)]))(?:c)",
                r"<x=\)>",
                r"\))"
            ]
        );
    }
}
