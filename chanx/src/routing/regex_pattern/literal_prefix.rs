//! The literal text every match of a regex segment starts with, for the
//! route table's cheap `starts_with` screen.

use regex_syntax::ast::Ast;

/// Conservative literal prefix of a parsed regex, and whether the whole regex
/// is exactly that literal: the leading plain characters (`a`, `\.`, `\n`, …)
/// of its top-level concatenation, stopping before the first other item —
/// a repetition (so `abc?` gives `ab`), group, class, assertion or flag
/// setting such as `(?i)`. A top-level alternation (`ab|cd`) gives nothing.
pub(super) fn literal_prefix(ast: &Ast) -> (String, bool) {
    let items = match ast {
        Ast::Concat(concat) => concat.asts.as_slice(),
        Ast::Empty(_) => &[],
        single => std::slice::from_ref(single),
    };
    let mut prefix = String::new();
    for item in items {
        let Ast::Literal(literal) = item else {
            return (prefix, false);
        };
        prefix.push(literal.c);
    }
    (prefix, true)
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::literal_prefix;

    #[test]
    fn prefixes() {
        let prefix = |pattern: &str| literal_prefix(&parse(pattern).expect(pattern).ast);
        assert_eq!(prefix(""), ("".into(), true));
        assert_eq!(prefix("a"), ("a".into(), true));
        assert_eq!(prefix(r"v\.1/\n"), ("v.1/\n".into(), true));
        assert_eq!(prefix("(abc)"), ("".into(), false));
        assert_eq!(prefix("ab+"), ("a".into(), false));
        assert_eq!(prefix(r"ab\b"), ("ab".into(), false));
        assert_eq!(prefix("a.b"), ("a".into(), false));
        assert_eq!(prefix("a(?x) b"), ("a".into(), false));
    }
}
