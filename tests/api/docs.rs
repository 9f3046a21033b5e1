//! The documentation says what the code does.
//!
//! - The configuration reference (`docs/src/configuration.md`) holds the binary's own
//!   `--help` texts between markers; a changed flag makes it stale until it is regenerated
//!   with `UPDATE_DOCS=1 cargo test --test api docs::`.
//! - The examples in `README.md` and `docs/src/**/*.md` run against a real `roster` process,
//!   one per Markdown file on an empty data file, in the order they are written. A fenced
//!   block marked ```` ```graphql example ```` is posted to `/graphql` and must answer 200
//!   without errors; one marked ```` ```sh example ```` runs in `bash -eo pipefail` in the
//!   server's folder (`users.json` is its data file, `roster` is on the `PATH`) and must exit
//!   0. `http://127.0.0.1:5000` in either is the spawned server's address. When the next
//!   fenced block is marked ```` ```json output ```` or ```` ```text output ````, the answer
//!   (or the standard output) must match it: text exactly, JSON as a pattern in which an
//!   object names the keys it checks, `"…"` matches any value and `"$name"` captures one.
//!   Captured values are passed on to later examples of the same file: as the GraphQL
//!   variable `$name` when the document declares it, and as the environment variable `name`
//!   to shell examples. Without an output block, no JSON answer may carry `errors`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::helpers::spawned::RosterProcess;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const REFERENCE: &str = "docs/src/configuration.md";
/// The address the examples are written for (the service's default).
const DOCUMENTED_ADDRESS: &str = "127.0.0.1:5000";

// ---------------------------------------------------------------------------------------
// The configuration reference

/// Each generated block: its marker name and the arguments whose help it holds.
const HELP_BLOCKS: &[(&str, &[&str])] = &[
    ("roster --help", &["--help"]),
    ("roster check --help", &["check", "--help"]),
    ("roster import --help", &["import", "--help"]),
    ("roster export --help", &["export", "--help"]),
    ("roster seed --help", &["seed", "--help"]),
];

/// What the binary prints for `args`, with no environment (clap shows an environment
/// variable's value in the help when it is set) and trailing spaces trimmed from each line.
fn help_text(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(args)
        .env_clear()
        .output()
        .expect("roster runs");
    assert!(output.status.success(), "roster {args:?}: {output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8 help");
    trim_line_ends(&text)
}

fn trim_line_ends(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|line| line.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

fn begin_marker(name: &str) -> String {
    format!("<!-- begin generated: {name} -->")
}

fn end_marker(name: &str) -> String {
    format!("<!-- end generated: {name} -->")
}

/// `page` with the block between `name`'s markers replaced by `body` in a text fence, or
/// `None` when the markers are missing.
fn with_block(page: &str, name: &str, body: &str) -> Option<String> {
    let begin = begin_marker(name);
    let end = end_marker(name);
    let start = page.find(&begin)? + begin.len();
    let stop = start + page[start..].find(&end)?;
    Some(format!(
        "{}\n```text\n{body}\n```\n{}",
        &page[..start],
        &page[stop..]
    ))
}

#[test]
fn the_configuration_reference_holds_the_binarys_own_help() {
    let path = Path::new(ROOT).join(REFERENCE);
    let page = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{REFERENCE}: {err}"));
    let mut expected = page.clone();
    for (name, args) in HELP_BLOCKS {
        expected = with_block(&expected, name, &help_text(args)).unwrap_or_else(|| {
            panic!(
                "{REFERENCE} lacks the markers {} and {}",
                begin_marker(name),
                end_marker(name)
            )
        });
    }
    if expected == page {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).expect("rewrite the configuration reference");
        eprintln!("rewrote {REFERENCE} from the binary's help");
        return;
    }
    let differs = page
        .lines()
        .zip(expected.lines())
        .enumerate()
        .find(|(_, (old, new))| old != new)
        .map_or_else(
            || "the page's length differs".to_owned(),
            |(at, (old, new))| format!("line {}: {old:?}, the binary says {new:?}", at + 1),
        );
    panic!(
        "{REFERENCE} is stale ({differs}); regenerate it with \
         `UPDATE_DOCS=1 cargo test --test api docs::` and commit the result"
    );
}

// ---------------------------------------------------------------------------------------
// The examples

/// A fenced block of a Markdown file.
#[derive(Debug)]
struct Block {
    /// The fence's info string, split on spaces (`["sh", "example"]`).
    info: Vec<String>,
    text: String,
    /// Where the block starts, for messages (`README.md:12`).
    place: String,
}

impl Block {
    fn is(&self, words: &[&str]) -> bool {
        self.info.iter().map(String::as_str).eq(words.iter().copied())
    }
}

/// Every fenced block of `markdown`, with an indented fence's indentation taken off its lines.
fn fenced_blocks(name: &str, markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((at, line)) = lines.next() {
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - trimmed.len();
        let mut text = String::new();
        let mut closed = false;
        for (_, inner) in lines.by_ref() {
            if inner.trim() == "```" {
                closed = true;
                break;
            }
            let unindented = inner.get(indent..).filter(|_| inner[..indent].trim().is_empty());
            text.push_str(unindented.unwrap_or(inner.trim_start()));
            text.push('\n');
        }
        assert!(closed, "{name}:{}: a fence that is never closed", at + 1);
        blocks.push(Block {
            info: info.split_whitespace().map(str::to_owned).collect(),
            text,
            place: format!("{name}:{}", at + 1),
        });
    }
    blocks
}

/// README.md and every page under docs/src, in a stable order.
fn documentation() -> Vec<(String, String)> {
    let mut files = vec![PathBuf::from("README.md")];
    let mut pending = vec![PathBuf::from("docs/src")];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(Path::new(ROOT).join(&dir))
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        for entry in entries {
            let name = dir.join(entry.unwrap().file_name());
            if Path::new(ROOT).join(&name).is_dir() {
                pending.push(name);
            } else if name.extension().is_some_and(|e| e == "md") {
                files.push(name);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(Path::new(ROOT).join(&file)).unwrap();
            (file.display().to_string(), text)
        })
        .collect()
}

/// Whether `actual` matches the documented `pattern`; captures go to `captured`. The
/// error says where they part.
fn matches(
    pattern: &Value,
    actual: &Value,
    at: &str,
    captured: &mut BTreeMap<String, Value>,
) -> Result<(), String> {
    match (pattern, actual) {
        (Value::String(s), _) if s == "…" => Ok(()),
        (Value::String(s), _) if is_capture(s) => {
            let name = &s[1..];
            match captured.get(name) {
                Some(known) if known != actual => Err(format!(
                    "{at}: ${name} was {known} in an earlier answer, here {actual}"
                )),
                _ => {
                    captured.insert(name.to_owned(), actual.clone());
                    Ok(())
                }
            }
        }
        (Value::Object(want), Value::Object(got)) => {
            for (key, value) in want {
                let inner = format!("{at}.{key}");
                let got = got.get(key).ok_or_else(|| format!("{inner} is missing"))?;
                matches(value, got, &inner, captured)?;
            }
            Ok(())
        }
        (Value::Array(want), Value::Array(got)) => {
            if want.len() != got.len() {
                return Err(format!(
                    "{at} has {} items, the docs show {}",
                    got.len(),
                    want.len()
                ));
            }
            want.iter()
                .zip(got)
                .enumerate()
                .try_for_each(|(i, (w, g))| matches(w, g, &format!("{at}[{i}]"), captured))
        }
        _ if pattern == actual => Ok(()),
        _ => Err(format!("{at} is {actual}, the docs show {pattern}")),
    }
}

fn is_capture(text: &str) -> bool {
    text.strip_prefix('$').is_some_and(|name| {
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Every JSON value in `text`, one after another (curl prints one per request).
fn json_values(text: &str) -> Result<Vec<Value>, serde_json::Error> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect()
}

fn carries_errors(value: &Value) -> bool {
    match value {
        Value::Object(fields) => fields.contains_key("errors"),
        Value::Array(items) => items.iter().any(carries_errors),
        _ => false,
    }
}

/// One Markdown file's examples, run in order against a server of their own.
struct Run {
    server: RosterProcess,
    dir: tempfile::TempDir,
    captured: BTreeMap<String, Value>,
}

impl Run {
    fn address(&self) -> &str {
        self.server.base.trim_start_matches("http://")
    }

    /// The captured values a document declares as variables (`$name:`).
    fn variables_for(&self, document: &str) -> Value {
        let declared: Map<String, Value> = self
            .captured
            .iter()
            .filter(|(name, _)| {
                let declaration = format!("${name}:");
                document.contains(&declaration)
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Value::Object(declared)
    }

    async fn graphql(&mut self, block: &Block, expected: Option<&Block>) -> Result<(), String> {
        let place = &block.place;
        let response = self
            .server
            .client
            .post(format!("{}/graphql", self.server.base))
            .json(&json!({ "query": block.text, "variables": self.variables_for(&block.text) }))
            .send()
            .await
            .map_err(|err| format!("{place}: {err}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|err| format!("{place}: {err}"))?;
        let answer: Value = serde_json::from_str(&text.replace(self.address(), DOCUMENTED_ADDRESS))
            .map_err(|err| format!("{place}: not JSON ({err}): {text}"))?;
        if status != 200 || carries_errors(&answer) {
            return Err(format!("{place}: {status} {answer}"));
        }
        match expected {
            Some(output) if output.is(&["json", "output"]) => {
                let pattern: Value = serde_json::from_str(&output.text)
                    .map_err(|err| format!("{}: not JSON: {err}", output.place))?;
                matches(&pattern, &answer, "answer", &mut self.captured)
                    .map_err(|err| format!("{place}: {err}\n  answer: {answer}"))
            }
            Some(output) => Err(format!("{}: a GraphQL answer is JSON", output.place)),
            None => Ok(()),
        }
    }

    async fn shell(&mut self, block: &Block, expected: Option<&Block>) -> Result<(), String> {
        let place = &block.place;
        let script = block.text.replace(DOCUMENTED_ADDRESS, self.address());
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_roster"));
        let path = std::env::join_paths(std::iter::once(binary.parent().unwrap().to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        let mut command = tokio::process::Command::new("bash");
        command
            .args(["-eo", "pipefail", "-c", &script])
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env_remove("DATABASE_URL")
            .env_remove("USERS_JSON_PATH")
            .env_remove("PORT")
            .env_remove("HOST")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in &self.captured {
            let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            command.env(name, text);
        }
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .map_err(|_| format!("{place}: still running after 60 s"))?
            .map_err(|err| format!("{place}: bash: {err}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).replace(self.address(), DOCUMENTED_ADDRESS);
        if !output.status.success() {
            return Err(format!(
                "{place}: {}\n  stdout: {stdout}\n  stderr: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let values = json_values(&stdout);
        match expected {
            Some(output) if output.is(&["text", "output"]) => {
                let want = trim_line_ends(&output.text);
                let got = trim_line_ends(&stdout);
                if want == got {
                    Ok(())
                } else {
                    Err(format!("{place}: printed\n{got}\n  the docs show\n{want}"))
                }
            }
            Some(output) if output.is(&["json", "output"]) => {
                let patterns =
                    json_values(&output.text).map_err(|err| format!("{}: not JSON: {err}", output.place))?;
                let values = values.map_err(|err| format!("{place}: not JSON ({err}): {stdout}"))?;
                if patterns.len() != values.len() {
                    return Err(format!(
                        "{place}: printed {} JSON values, the docs show {}: {stdout}",
                        values.len(),
                        patterns.len()
                    ));
                }
                for (i, (pattern, value)) in patterns.iter().zip(&values).enumerate() {
                    matches(pattern, value, &format!("value {}", i + 1), &mut self.captured)
                        .map_err(|err| format!("{place}: {err}\n  printed: {stdout}"))?;
                }
                Ok(())
            }
            Some(output) => Err(format!("{}: an unknown output block", output.place)),
            None => match values {
                Ok(values) if values.iter().any(carries_errors) => {
                    Err(format!("{place}: an answer carries errors: {stdout}"))
                }
                _ => Ok(()),
            },
        }
    }
}

#[tokio::test]
async fn the_examples_in_the_readme_and_the_docs_run_and_answer_what_they_say() {
    let mut ran = 0;
    let mut failures = Vec::new();
    for (name, markdown) in documentation() {
        let blocks = fenced_blocks(&name, &markdown);
        let examples: Vec<usize> = (0..blocks.len())
            .filter(|&i| blocks[i].info.get(1).is_some_and(|word| word == "example"))
            .collect();
        if examples.is_empty() {
            continue;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let data_file = dir.path().join("users.json");
        std::fs::write(&data_file, "[]\n").expect("an empty data file");
        let server = RosterProcess::start(&data_file).await;
        let mut run = Run {
            server,
            dir,
            captured: BTreeMap::new(),
        };
        for i in examples {
            let block = &blocks[i];
            let expected = blocks
                .get(i + 1)
                .filter(|next| next.info.get(1).is_some_and(|word| word == "output"));
            let outcome = match block.info[0].as_str() {
                "graphql" if block.info.len() == 2 => run.graphql(block, expected).await,
                "sh" if block.info.len() == 2 => run.shell(block, expected).await,
                _ => Err(format!("{}: an unknown kind of example", block.place)),
            };
            ran += 1;
            if let Err(failure) = outcome {
                failures.push(failure);
            }
        }
    }
    assert!(ran > 0, "no example found in README.md or docs/src");
    assert!(
        failures.is_empty(),
        "{} of {ran} examples do not do what the docs say:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_pattern_names_the_keys_it_checks_and_captures_values() {
    let mut captured = BTreeMap::new();
    let answer = json!({ "data": { "u": { "id": "a1", "name": "Ann", "extra": 1 } } });
    let pattern = json!({ "data": { "u": { "id": "$id", "name": "Ann" } } });
    assert_eq!(matches(&pattern, &answer, "answer", &mut captured), Ok(()));
    assert_eq!(captured["id"], "a1");
    let other = json!({ "data": { "u": { "id": "b2", "name": "Ann" } } });
    assert!(matches(&pattern, &other, "answer", &mut captured).is_err());
    let wrong = json!({ "data": { "u": { "id": "a1", "name": "Bob" } } });
    assert!(matches(&pattern, &wrong, "answer", &mut captured).is_err());
    assert!(matches(&json!([1, "…"]), &json!([1, {"any": true}]), "a", &mut captured).is_ok());
    assert!(matches(&json!([1]), &json!([1, 2]), "a", &mut captured).is_err());
}

#[test]
fn fenced_blocks_are_found_with_their_info_and_indentation() {
    let markdown = "text\n\n  ```sh example\n  echo hi\n    indented\n  ```\n```json output\n{}\n```\n";
    let blocks = fenced_blocks("x.md", markdown);
    assert_eq!(blocks.len(), 2);
    assert!(blocks[0].is(&["sh", "example"]));
    assert_eq!(blocks[0].text, "echo hi\n  indented\n");
    assert_eq!(blocks[0].place, "x.md:3");
    assert!(blocks[1].is(&["json", "output"]));
}
