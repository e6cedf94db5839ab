//! The human-friendly form of a regex segment: `chat/(?P<room>\w+)/` reads
//! `chat/:room/`.

use std::convert::Infallible;

use regex_syntax::ast::{self, Ast, GroupKind, LiteralKind};

use super::parse::Parsed;

/// The pattern as written, except that each outermost named group (with its
/// body) becomes `:name` and escaped punctuation outside character classes
/// (`\.`, `\/`) is unescaped. Everything else, classes included, is kept.
pub(super) fn friendly_form(parsed: &Parsed<'_>) -> String {
    let render = Render {
        parsed,
        out: String::new(),
        copied: 0,
        named_depth: 0,
    };
    let Ok(friendly) = ast::visit(&parsed.ast, render);
    friendly
}

/// AST visitor copying the pattern and rewriting what [`friendly_form`] says.
struct Render<'a, 'p> {
    parsed: &'a Parsed<'p>,
    out: String,
    /// Offset (in the parsed text) up to which the pattern has been rendered.
    copied: usize,
    /// Number of named groups the visitor is inside.
    named_depth: usize,
}

impl Render<'_, '_> {
    /// Copies the pattern up to `offset`, then continues after `end`.
    fn replace(&mut self, offset: usize, end: usize, with: impl FnOnce(&mut String)) {
        self.out.push_str(self.parsed.text(self.copied, offset));
        with(&mut self.out);
        self.copied = end;
    }
}

/// An escaped ASCII punctuation character (`\.`, `\$`, `\/`), shown without
/// its backslash. `\<` and `\>` are word boundaries, not literals.
fn is_escaped_punctuation(literal: &ast::Literal) -> bool {
    matches!(literal.kind, LiteralKind::Meta | LiteralKind::Superfluous)
        && literal.c.is_ascii_punctuation()
}

fn is_named_group(ast: &Ast) -> bool {
    matches!(ast, Ast::Group(group) if matches!(group.kind, GroupKind::CaptureName { .. }))
}

impl ast::Visitor for Render<'_, '_> {
    type Output = String;
    type Err = Infallible;

    fn finish(mut self) -> Result<Self::Output, Self::Err> {
        let end = self.parsed.end();
        self.replace(end, end, |_| ());
        Ok(self.out)
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), Self::Err> {
        if self.named_depth > 0 {
            self.named_depth += usize::from(is_named_group(ast));
            return Ok(());
        }
        match ast {
            Ast::Group(group) => {
                if let GroupKind::CaptureName { name, .. } = &group.kind {
                    let written = self.parsed.span_text(&name.span);
                    self.replace(group.span.start.offset, group.span.end.offset, |out| {
                        out.push(':');
                        out.push_str(written);
                    });
                    self.named_depth = 1;
                }
            }
            Ast::Literal(literal) if is_escaped_punctuation(literal) => {
                self.replace(literal.span.start.offset, literal.span.end.offset, |out| {
                    out.push(literal.c);
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_post(&mut self, ast: &Ast) -> Result<(), Self::Err> {
        if is_named_group(ast) {
            self.named_depth -= 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::friendly_form;

    #[test]
    fn friendly_forms() {
        for (pattern, friendly) in [
            (r"chat/(?P<room_id>\w{1,100})/", "chat/:room_id/"),
            (
                r"f/(?P<outer>a(?P<inner>b))\.txt/(?:z)",
                "f/:outer.txt/(?:z)",
            ),
            (r"c/(?P<v>[()\]]+)/(?P<w>[^]x]+)/\(lit\)", "c/:v/:w/(lit)"),
            (r"opt/(?:(?P<page>\d+)/)?", "opt/(?::page/)?"),
            (r"a\<b\>\d\x41\p{L}[\.]\ ", r"a\<b\>\d\x41\p{L}[\.]\ "),
            (r"\\\$\/\-", r"\$/-"),
            ("(?P<a>x)(?P<a>y)(?<é>z)", ":a:a:é"),
            ("", ""),
        ] {
            let parsed = parse(pattern).expect(pattern);
            assert_eq!(friendly_form(&parsed), friendly, "{pattern}");
        }
    }
}
