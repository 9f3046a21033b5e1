//! The dependency rule: arrows point inward. `domain`, `ports` and `app` name no
//! framework, no serialisation, no async file I/O and no adapter; `domain` knows neither
//! `ports` nor `app`; `ports` does not know `app`. Among the adapters, the driven ones
//! (`outbound`: stores, cache, clock) never name the driving ones (`inbound`), and the
//! servers (`graphql`, `http`, `console`) never name a driven adapter: only the composition
//! root and the command-line tasks, which must open a store, name both. A server's own
//! unit tests (a `tests` folder) may open a real store. Comments may talk about anything.

use std::path::{Path, PathBuf};

fn rust_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The file's code with `//` comments removed (string contents are left alone).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(code_of_line).collect::<Vec<_>>().join("\n")
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `needle` occurs in `code` as a whole path or word: an identifier at either end
/// of the needle must not continue into the surrounding code (`notify_one` is no `notify`).
fn mentions(code: &str, needle: &str) -> bool {
    let open_start = needle.starts_with(is_ident_char);
    let open_end = needle.ends_with(is_ident_char);
    code.match_indices(needle).any(|(at, _)| {
        let glued_before = open_start && code[..at].chars().next_back().is_some_and(is_ident_char);
        let glued_after = open_end
            && code[at + needle.len()..]
                .chars()
                .next()
                .is_some_and(is_ident_char);
        !glued_before && !glued_after
    })
}

fn violations(layer: &str, forbidden: &[&str]) -> Vec<String> {
    violations_outside_tests(layer, forbidden, false)
}

/// As [`violations`]; with `skip_tests`, files under a `tests` folder are not looked at.
fn violations_outside_tests(layer: &str, forbidden: &[&str], skip_tests: bool) -> Vec<String> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(layer);
    let mut files = rust_files(&folder);
    if skip_tests {
        files.retain(|file| {
            !file
                .strip_prefix(&folder)
                .unwrap()
                .iter()
                .any(|part| part == "tests")
        });
    }
    assert!(!files.is_empty(), "no Rust files under {}", folder.display());
    let mut found = Vec::new();
    for file in files {
        let code = code_of(&file);
        for needle in forbidden {
            if mentions(&code, needle) {
                found.push(format!("{} mentions {needle}", file.display()));
            }
        }
    }
    found
}

const OUTER_WORLD: &[&str] = &[
    "axum",
    "async_graphql",
    "serde_json",
    "notify",
    "tokio::fs",
    "crate::adapters",
    "adapters::",
];

#[test]
fn domain_ports_and_app_name_no_framework_serialisation_file_io_or_adapter() {
    let mut found = Vec::new();
    for layer in ["domain", "ports", "app"] {
        found.extend(violations(layer, OUTER_WORLD));
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_domain_knows_neither_ports_nor_use_cases() {
    let found = violations(
        "domain",
        &[
            "crate::ports",
            "crate::app",
            "super::super::ports",
            "super::super::app",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_ports_do_not_know_the_use_cases() {
    let found = violations("ports", &["crate::app", "super::super::app"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn driven_adapters_never_name_driving_ones() {
    let found = violations("adapters/outbound", &["inbound"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_servers_never_name_a_driven_adapter() {
    let mut found = Vec::new();
    for server in ["graphql", "http", "console"] {
        found.extend(violations_outside_tests(
            &format!("adapters/inbound/{server}"),
            &["outbound"],
            true,
        ));
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_word_matcher_catches_a_real_import() {
    assert!(mentions("use serde_json::Value;", "serde_json"));
    assert!(mentions(
        "use crate::adapters::outbound::cache;",
        "crate::adapters"
    ));
    assert!(!mentions("fn notify_all() {}", "notify"));
    assert!(!mentions("let maxum = 1;", "axum"));
    assert!(mentions("use super::adapters::inbound::http;", "adapters::"));
    assert_eq!(code_of_line("let x = 1; // uses axum"), "let x = 1; ");
}

/// A line without its trailing `//` comment, unless the `//` may sit inside a string.
fn code_of_line(line: &str) -> &str {
    match line.find("//") {
        Some(at) if !line[..at].contains('"') => &line[..at],
        _ => line,
    }
}
