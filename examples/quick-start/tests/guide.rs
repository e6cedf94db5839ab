//! `docs/quick-start.md` shows this crate: every Rust snippet is marked
//! with the file it belongs to, and the snippets of a file, joined in
//! order, are that file. So the guide never shows code that does not
//! compile, and copying its snippets gives this crate. The other documents
//! (`docs/*.md`, `README.md`) quote compiled files: each of their Rust
//! snippets is marked `<!-- part of: path -->` and appears verbatim there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The code blocks of `markdown` in `language`, each with the file its
/// `<!-- file: ... -->` marker names (`None` without a marker).
fn blocks(markdown: &str, language: &str) -> Vec<(Option<String>, String)> {
    marked_blocks(markdown, language, "file")
}

/// The code blocks of `markdown` in `language`, each with the path its
/// `<!-- <kind>: ... -->` marker names.
fn marked_blocks(markdown: &str, language: &str, kind: &str) -> Vec<(Option<String>, String)> {
    let prefix = format!("<!-- {kind}: ");
    let mut found = Vec::new();
    let mut marker = None;
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if let Some(file) = line
            .strip_prefix(prefix.as_str())
            .and_then(|rest| rest.strip_suffix(" -->"))
        {
            marker = Some(file.to_owned());
        } else if let Some(info) = line.strip_prefix("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            if info == language {
                found.push((marker.take(), body.join("\n")));
            }
            marker = None;
        } else if !line.is_empty() {
            marker = None;
        }
    }
    found
}

#[test]
fn every_rust_snippet_of_the_guide_is_this_crate_in_order() {
    let guide = read(&repository().join("docs/quick-start.md"));
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (file, code) in blocks(&guide, "rust") {
        let file = file.unwrap_or_else(|| panic!("a Rust snippet without a file marker:\n{code}"));
        files.entry(file).or_default().push(code);
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut shown = Vec::new();
    for (file, parts) in &files {
        let path = repository().join(file);
        assert_eq!(
            parts.join("\n\n"),
            read(&path).trim_end(),
            "the guide's snippets of {file} differ from the file"
        );
        shown.push(path.canonicalize().unwrap_or(path));
    }
    for dir in ["src", "tests"] {
        for entry in std::fs::read_dir(crate_dir.join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path().canonicalize().unwrap_or(entry.path());
            let is_this_test = path.ends_with("tests/guide.rs");
            assert!(
                is_this_test || shown.contains(&path),
                "the guide does not show {}",
                path.display()
            );
        }
    }
}

#[test]
fn the_guides_dependency_list_names_this_crates_dependencies() {
    let guide = read(&repository().join("docs/quick-start.md"));
    let toml = blocks(&guide, "toml");
    let [(_, listed)] = toml.as_slice() else {
        panic!("the guide has one TOML snippet, found {}", toml.len());
    };
    let names = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#') && !line.starts_with('['))
            .filter_map(|line| line.split_once('='))
            .map(|(name, _)| name.trim().trim_end_matches(".workspace").to_owned())
            .collect()
    };
    let manifest = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap_or_default();
    let mut ours = names(dependencies);
    let mut theirs = names(listed);
    ours.sort();
    theirs.sort();
    assert_eq!(theirs, ours);
}

#[test]
fn every_rust_snippet_of_the_other_documents_is_quoted_from_a_compiled_file() {
    let mut documents = vec![repository().join("README.md")];
    for entry in std::fs::read_dir(repository().join("docs")).expect("docs/") {
        let entry = entry.expect("an entry of docs/");
        let path = entry.path();
        let is_guide = path.ends_with("quick-start.md");
        if path.extension().is_some_and(|e| e == "md") && !is_guide {
            documents.push(path);
        }
    }
    for document in documents {
        let text = read(&document);
        for (file, code) in marked_blocks(&text, "rust", "part of") {
            let file = file.unwrap_or_else(|| {
                panic!(
                    "{}: a Rust snippet without `<!-- part of: path -->`:\n{code}",
                    document.display()
                )
            });
            let source = read(&repository().join(&file));
            assert!(
                source.contains(&code),
                "{}: a snippet is not verbatim in {file}:\n{code}",
                document.display()
            );
        }
    }
}
