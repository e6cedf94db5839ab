//! Finds the end-to-end suite's tests so that no adapter can forget one.
//!
//! A suite test is a function of `tests/suite/*.rs` written exactly as
//!
//! ```text
//! pub(crate) async fn name(adapter: Adapter) {
//! ```
//!
//! (whitespace and line breaks are free, the parameter may have any name,
//! there is no return type). This script lists them all in
//! `$OUT_DIR/suite_tests.rs`, which `tests/suite/mod.rs` includes: every
//! adapter's `adapter_tests!` then runs each of them unless it opts out by
//! name.
//!
//! Why a build script: Rust has no way to enumerate the functions of a
//! module, and the alternatives cost more than this scan. A proc macro
//! would need a crate of its own in the workspace; a registry such as
//! `inventory` plus a custom harness would add dependencies and replace
//! libtest (`--list`, `--ignored`, filters). Scanning the source is cheap,
//! and its one weakness, missing a test written in another shape, is
//! covered: a function that looks like a test but is not quite one (a
//! single `Adapter` parameter, no return type, yet not `pub(crate) async`)
//! fails the build instead of being dropped silently. A false positive
//! cannot go unnoticed either: the generated wrapper would not compile.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

/// The suite's directory, relative to this package.
const SUITE_DIR: &str = "tests/suite";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // A directory: Cargo reruns this script if any file in it changes,
    // including a file being added or removed.
    println!("cargo:rerun-if-changed={SUITE_DIR}");

    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("Cargo sets CARGO_MANIFEST_DIR");
    let suite_dir = Path::new(&manifest_dir).join(SUITE_DIR);
    let mut files: Vec<_> = fs::read_dir(&suite_dir)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read the suite directory {}: {e}",
                suite_dir.display()
            )
        })
        .map(|entry| {
            entry
                .expect("cannot read an entry of the suite directory")
                .path()
        })
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();

    let mut tests: Vec<(String, String)> = Vec::new();
    for path in &files {
        let source = fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let file = path
            .file_name()
            .expect("a listed file has a name")
            .to_string_lossy()
            .into_owned();
        for name in suite_tests(&source, path) {
            if let Some((_, other)) = tests.iter().find(|(known, _)| *known == name) {
                panic!("the suite test `{name}` is defined in both {other} and {file}");
            }
            tests.push((name, file.clone()));
        }
    }
    assert!(
        !tests.is_empty(),
        "no suite test found in {}: has the test signature changed? (see tests/build.rs)",
        suite_dir.display()
    );

    let out_dir = env::var("OUT_DIR").expect("Cargo sets OUT_DIR for build scripts");
    let out = Path::new(&out_dir).join("suite_tests.rs");
    fs::write(&out, generate(&tests))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// The names of the suite tests defined in `source` (the file `file`), in
/// order of definition. Panics on a function that looks like a test but
/// would not be found as one.
fn suite_tests(source: &str, file: &Path) -> Vec<String> {
    // Whole-line comments go (doc comments may show signatures); anything
    // else is kept, so a `//` inside a string literal is harmless.
    let code: String = source
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n");

    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = find_keyword(rest, "fn") {
        let before = &rest[..at];
        let after = &rest[at + "fn".len()..];
        rest = after;
        let Some(function) = Function::parse(before, after) else {
            continue;
        };
        if !function.takes_only_an_adapter || function.returns_something {
            continue;
        }
        if function.is_pub_crate_async {
            found.push(function.name);
        } else {
            panic!(
                "{file}: `fn {name}` takes only an `Adapter` and returns nothing, \
                 like a suite test, but is not declared `pub(crate) async fn {name}(adapter: \
                 Adapter)`, so it would never run. Declare it so, or give a helper another \
                 signature.",
                file = file.display(),
                name = function.name,
            );
        }
    }
    found
}

/// The byte offset of the first occurrence of `keyword` in `text` as a whole
/// word.
fn find_keyword(text: &str, keyword: &str) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(offset) = text[from..].find(keyword) {
        let at = from + offset;
        let end = at + keyword.len();
        let starts_word = !text[..at].chars().next_back().is_some_and(is_word);
        let ends_word = !text[end..].chars().next().is_some_and(is_word);
        if starts_word && ends_word {
            return Some(at);
        }
        from = end;
    }
    None
}

/// What matters about one `fn` item.
struct Function {
    name: String,
    /// Declared `pub(crate) async fn` (whitespace aside).
    is_pub_crate_async: bool,
    /// Exactly one parameter, of type `Adapter`.
    takes_only_an_adapter: bool,
    /// Declares a return type.
    returns_something: bool,
}

impl Function {
    /// Parses the `fn` whose keyword sits between `before` and `after`;
    /// `None` if it is not a plain named function with parameters (a
    /// function pointer type, generics, ...).
    fn parse(before: &str, after: &str) -> Option<Self> {
        let after = after.trim_start();
        let name_len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 {
            return None;
        }
        let name = after[..name_len].to_owned();
        let params_and_rest = after[name_len..].trim_start().strip_prefix('(')?;
        let close = matching_paren(params_and_rest)?;
        let params: String = params_and_rest[..close]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let tail = params_and_rest[close + 1..].trim_start();

        // The qualifiers before `fn`, back to the end of the previous item
        // or attribute.
        let start = before.rfind([';', '{', '}', ']']).map_or(0, |at| at + 1);
        let qualifiers: String = before[start..]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();

        let params: Vec<&str> = params.split(',').filter(|p| !p.is_empty()).collect();
        let takes_only_an_adapter = match params.as_slice() {
            [param] => param
                .split_once(':')
                .is_some_and(|(_, ty)| ty == "Adapter" || ty.ends_with("::Adapter")),
            _ => false,
        };
        Some(Self {
            name,
            is_pub_crate_async: qualifiers == "pub(crate)async",
            takes_only_an_adapter,
            returns_something: tail.starts_with("->"),
        })
    }
}

/// The offset of the `)` closing a parenthesis opened just before `text`.
fn matching_paren(text: &str) -> Option<usize> {
    let mut depth = 0_usize;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(at),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The generated file: the list of tests as a macro and as a module of
/// names (see `tests/suite/mod.rs`).
fn generate(tests: &[(String, String)]) -> String {
    let mut out = String::from(
        "// Generated by tests/build.rs from tests/suite/*.rs: do not edit.\n\n\
         /// Expands `$emit!(name);` for every suite test.\n\
         macro_rules! for_each_suite_test {\n    ($emit:ident) => {\n",
    );
    for (name, _) in tests {
        writeln!(out, "        $emit!({name});").expect("writing to a String cannot fail");
    }
    out.push_str(
        "    };\n}\npub(crate) use for_each_suite_test;\n\n\
         /// One item per suite test, named like it: an adapter's opt-outs are\n\
         /// imported from here, so naming a test that does not exist fails to compile.\n\
         #[allow(non_upper_case_globals)]\npub(crate) mod names {\n",
    );
    for (name, file) in tests {
        writeln!(
            out,
            "    /// The suite test in `{file}`.\n    pub(crate) const {name}: () = ();"
        )
        .expect("writing to a String cannot fail");
    }
    out.push_str("}\n");
    out
}
