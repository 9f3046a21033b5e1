//! A test that needs PostgreSQL, Node or Chromium is `#[ignore = "needs ..."]`, so that a
//! plain `cargo test` lists it as not run instead of passing it after a skip; CI runs
//! them with `--include-ignored`. This reads the test sources and holds that rule.

use std::path::Path;

/// What a test calls when it needs a service, and the reason its `ignore` must give.
const NEEDS: [(&str, &str); 4] = [
    ("scratch_database(", "needs PostgreSQL"),
    ("test_server(", "needs PostgreSQL"),
    ("run_client(", "needs Node"),
    ("browser_tools()", "needs Chromium"),
];

fn sources(folder: &Path, into: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(folder).expect("the tests folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).expect("a test source");
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let name = path.strip_prefix(root).unwrap_or(&path).display().to_string();
            into.push((name, text));
        }
    }
}

/// Each test in `text`: its attributes and signature, and its whole text up to the brace
/// that closes it at its own indentation.
fn tests_of(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut tests = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if !(trimmed.starts_with("#[test]") || trimmed.starts_with("#[tokio::test")) {
            continue;
        }
        let indent = &line[..line.len() - trimmed.len()];
        let Some(signature) = (start..lines.len()).find(|&i| lines[i].contains("fn ")) else {
            continue;
        };
        let close = format!("{indent}}}");
        let end = (signature..lines.len())
            .find(|&i| lines[i] == close)
            .unwrap_or(lines.len() - 1);
        tests.push((lines[start..=signature].join("\n"), lines[start..=end].join("\n")));
    }
    tests
}

#[test]
fn every_test_that_needs_a_service_is_ignored_with_the_reason() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api"),
        &mut files,
    );
    let mut unmarked = Vec::new();
    let mut marked = 0;
    for (path, text) in &files {
        if path.ends_with("ignored.rs") {
            continue;
        }
        for (head, body) in tests_of(text) {
            for (call, reason) in NEEDS {
                if body.contains(call) {
                    if head.contains(&format!("#[ignore = \"{reason}\"]")) {
                        marked += 1;
                    } else {
                        let name = body.split("fn ").nth(1).unwrap_or(&body).split('(').next();
                        unmarked.push(format!("{path}: {} ({reason})", name.unwrap_or_default()));
                    }
                }
            }
        }
    }
    assert!(unmarked.is_empty(), "not ignored:\n{}", unmarked.join("\n"));
    // The scan finds the tests it is about (the contract suite, postgres_*, clients, browser).
    assert!(
        marked >= 20,
        "only {marked} marked tests found: the scan is broken"
    );
}
