//! Parsing a regex segment into a `regex-syntax` AST whose spans can be read
//! back in the pattern as written.

use regex_syntax::ast::parse::Parser;
use regex_syntax::ast::{self, Ast};

/// A regex segment parsed by `regex-syntax`.
///
/// `regex-syntax` rejects a group name used twice in one regex
/// (`GroupNameDuplicate`). A route, however, may only be judged as a whole:
/// chanx gives every parameter group a private name and reports a repeated
/// parameter name itself, for the full concatenated route
/// ([`RouteError::DuplicateParameter`](crate::routing::RouteError::DuplicateParameter)),
/// after the checks that come first. So [`parse`] renames a repeated name to
/// a placeholder and parses again; the AST's spans then point into the renamed
/// text, and [`Parsed::text`] maps them back to the pattern as written.
#[derive(Debug)]
pub(super) struct Parsed<'p> {
    /// Syntax tree of the (possibly renamed) pattern.
    pub(super) ast: Ast,
    /// The pattern as written.
    original: &'p str,
    /// Length of the parsed (renamed) text.
    parsed_len: usize,
    /// Group names replaced by placeholders.
    renames: Vec<Rename>,
}

/// One group name replaced by a placeholder.
#[derive(Debug)]
struct Rename {
    /// Offset of the placeholder in the parsed text.
    at: usize,
    /// Byte length of the placeholder.
    placeholder_len: usize,
    /// Byte length of the name as written.
    name_len: usize,
}

/// Parses `pattern` with `regex-syntax` (the parser, and default settings,
/// that the `regex` crate uses), tolerating repeated group names.
pub(super) fn parse(pattern: &str) -> Result<Parsed<'_>, Box<ast::Error>> {
    // Placeholders contain `stem`, which the pattern does not contain, so they
    // never equal a name as written nor each other: every round renames one
    // more repeated name as written, and the loop ends.
    let mut stem = String::from("_dup");
    while pattern.contains(stem.as_str()) {
        stem.push('_');
    }
    let mut text = pattern.to_owned();
    let mut renames: Vec<Rename> = Vec::new();
    loop {
        let error = match Parser::new().parse(&text) {
            Ok(ast) => {
                return Ok(Parsed {
                    ast,
                    original: pattern,
                    parsed_len: text.len(),
                    renames,
                });
            }
            Err(error) => error,
        };
        // The span of a duplicate is that of its name, the second occurrence.
        let name = error.span().start.offset..error.span().end.offset;
        if !matches!(error.kind(), ast::ErrorKind::GroupNameDuplicate { .. })
            || text.get(name.clone()).is_none()
        {
            return Err(Box::new(error));
        }
        let placeholder = format!("{stem}{}", renames.len());
        let placeholder_len = placeholder.len();
        let name_len = name.len();
        text.replace_range(name.clone(), &placeholder);
        for later in renames.iter_mut().filter(|r| r.at > name.start) {
            later.at = later.at + placeholder_len - name_len;
        }
        renames.push(Rename {
            at: name.start,
            placeholder_len,
            name_len,
        });
    }
}

impl<'p> Parsed<'p> {
    /// The pattern as written between two offsets of the parsed text (node
    /// boundaries, which never fall inside a renamed group name).
    pub(super) fn text(&self, start: usize, end: usize) -> &'p str {
        self.original
            .get(self.original_offset(start)..self.original_offset(end))
            .unwrap_or_default()
    }

    /// The text of `span` as written.
    pub(super) fn span_text(&self, span: &ast::Span) -> &'p str {
        self.text(span.start.offset, span.end.offset)
    }

    /// Length of the parsed text: the end offset of the whole pattern.
    pub(super) fn end(&self) -> usize {
        self.parsed_len
    }

    /// Offset in the pattern as written of `offset` in the parsed text.
    pub(super) fn original_offset(&self, offset: usize) -> usize {
        self.renames
            .iter()
            .filter(|r| r.at < offset)
            .fold(offset, |shifted, r| {
                (shifted + r.name_len).saturating_sub(r.placeholder_len)
            })
    }
}

#[cfg(test)]
mod tests {
    use regex_syntax::ast::{Ast, GroupKind};

    use super::parse;

    /// Names (as written) and body texts of the top-level named groups.
    fn groups(pattern: &str) -> Vec<(String, String)> {
        let parsed = parse(pattern).expect(pattern);
        let Ast::Concat(concat) = &parsed.ast else {
            panic!("{pattern}: not a concatenation");
        };
        concat
            .asts
            .iter()
            .filter_map(|ast| match ast {
                Ast::Group(group) => match &group.kind {
                    GroupKind::CaptureName { name, .. } => Some((
                        parsed.span_text(&name.span).to_owned(),
                        parsed.span_text(group.ast.span()).to_owned(),
                    )),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    #[test]
    fn repeated_names_are_read_as_written() {
        let owned = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|&(a, b)| (a.into(), b.into())).collect()
        };
        assert_eq!(
            groups("(?P<a>x)(?P<a>y)(?<é>z)(?P<é>(?P<a>w))"),
            owned(&[("a", "x"), ("a", "y"), ("é", "z"), ("é", "(?P<a>w)")])
        );
        // A placeholder never collides with a name as written.
        assert_eq!(
            groups("(?P<_dup0>x)(?P<_dup0>y)"),
            owned(&[("_dup0", "x"), ("_dup0", "y")])
        );
        let parsed = parse("(?P<a>x)(?P<a>y)").expect("parses");
        assert_eq!(parsed.text(0, parsed.end()), "(?P<a>x)(?P<a>y)");
    }

    #[test]
    fn other_errors_are_reported() {
        assert!(parse("(?P<a>x)(?P<a>y)(").is_err());
        assert!(parse("(?P<a>x").is_err());
        assert!(parse("(?P<1a>x)").is_err());
    }
}
