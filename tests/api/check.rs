//! `roster check [FILE]` (docs/src/guide.md), run as the built binary on real files: what it
//! reports, where, with which exit code, and that what it calls hidden is what the service
//! hides.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

fn roster_check(args: &[&str], file: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    command.args(args);
    if let Some(file) = file {
        command.arg(file);
    }
    command
        .env_remove("USERS_JSON_PATH")
        .stdin(Stdio::null())
        .output()
        .expect("roster check runs")
}

/// Runs `roster check` on a file holding `contents`; returns the file's name and the outcome.
fn check_contents(contents: &str) -> (String, Output) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("users.json");
    std::fs::write(&file, contents).expect("write the file");
    (file.display().to_string(), roster_check(&["check"], Some(&file)))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("an exit code")
}

/// A hand-edited file with one of each problem, each on a line of its own.
const HAND_EDITED: &str = r#"[
  {"id": "1", "name": "Ann", "email": "ann@example.com", "role": "admin"},
  42,
  {"id": "2", "name": "Bob"},
  {"id": "1", "name": "Ann again", "email": "ann2@example.com"},
  {"id": "3", "name": "Cy", "email": "ANN@example.com"},
  {"id": "4", "name": "   ", "email": "dee@example.com"},
  {"id": "5", "name": "Eve", "email": "eve at example.com"},
  {"id": "6", "name": "Fay", "email": "fay@example.com", "created_at": "last tuesday"}
]
"#;

#[tokio::test]
async fn a_file_the_service_wrote_itself_is_clean() {
    let app = spawn_app().await;
    app.create_ok("Ada Lovelace", "ada@example.com").await;
    app.create_ok("Grace Hopper", "grace@example.com").await;
    let output = roster_check(&["check"], Some(&app.data_file));
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    assert!(
        stdout(&output).ends_with("users.json: no problems in 2 records (2 served as users)\n"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn each_problem_is_named_at_its_line_and_the_exit_code_is_1() {
    let (name, output) = check_contents(HAND_EDITED);
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let report = stdout(&output);
    let lines: Vec<&str> = report.lines().collect();
    let expected = [
        format!("{name}:3:3: problem: not a user record but a number"),
        format!("{name}:4:3: problem: not a user record (`email` is missing)"),
        format!("{name}:5:4: problem: id \"1\" is also the id of the record at line 2"),
        format!(
            "{name}:6:29: problem: email \"ANN@example.com\" is the address of the record at line 2 (\"ann@example.com\")"
        ),
        format!("{name}:7:15: problem: name \"   \": Invalid name"),
        format!("{name}:8:30: problem: email \"eve at example.com\": Invalid email"),
        format!("{name}:9:58: problem: `created_at` \"last tuesday\" is not a timestamp"),
    ];
    assert_eq!(lines.len(), expected.len() + 2, "{report}");
    for (line, wanted) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(wanted.as_str()),
            "{line}\n  should start with\n{wanted}"
        );
    }
    assert!(
        lines[7].starts_with(&format!("{name}:2:58: note: unknown key \"role\"")),
        "{report}"
    );
    assert_eq!(
        lines[8],
        format!("{name}: 7 problems in 8 records (6 served as users)")
    );
}

#[tokio::test]
async fn the_records_check_calls_hidden_are_the_ones_the_service_hides() {
    let app = spawn_app_with(HAND_EDITED).await;
    let served = app.all_users().await;
    let output = roster_check(&["check"], Some(&app.data_file));
    let summary = stdout(&output).lines().last().unwrap_or_default().to_owned();
    assert!(
        summary.ends_with(&format!("({} served as users)", served.len())),
        "{summary}, but the API lists {served:?}"
    );
    assert!(
        !served.iter().any(|user| user["id"] == "2"),
        "the record without an email is hidden"
    );
    let fay = served
        .iter()
        .find(|user| user["id"] == "6")
        .expect("Fay is served");
    assert_eq!(
        fay["createdAt"],
        json!(null),
        "an unreadable timestamp shows as null"
    );
}

#[test]
fn broken_json_exits_2_with_the_parsers_line_and_column() {
    let (name, output) = check_contents("[\n  {\"id\": \"1\", \"name\": \"Ann\",}\n]\n");
    assert_eq!(code(&output), 2, "{}", stdout(&output));
    let report = stdout(&output);
    assert!(
        report.starts_with(&format!(
            "{name}:2:29: problem: not valid JSON: key must be a string\n"
        )),
        "{report}"
    );
    assert!(report.contains("copy it aside"), "{report}");
}

#[test]
fn a_top_level_that_is_not_an_array_exits_2() {
    let (_, output) = check_contents("{\"users\": []}\n");
    assert_eq!(code(&output), 2);
    assert!(
        stdout(&output).contains(":1:1: problem: the top level is an object, not an array of users"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_missing_file_exits_2_and_says_so_on_stderr() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("nowhere.json");
    let output = roster_check(&["check"], Some(&file));
    assert_eq!(code(&output), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read") && stderr.contains("nowhere.json"),
        "{stderr}"
    );
    assert!(!file.exists(), "check never creates the file");
}

#[test]
fn without_a_file_check_reads_the_data_file_flag() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("people.json");
    std::fs::write(&file, "[42]").expect("write the file");
    let data_file = file.to_str().expect("a UTF-8 path");
    let output = roster_check(&["--data-file", data_file, "check"], None);
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    assert!(
        stdout(&output).starts_with(&format!("{data_file}:1:2: problem:")),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_dash_reads_the_file_from_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("roster check runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("its stdin");
        stdin
            .write_all(b"[\n  {\"id\": \"a\", \"name\": \"A\", \"email\": \"nope\"}\n]")
            .expect("write the file");
    }
    let output = child.wait_with_output().expect("it ends");
    assert_eq!(code(&output), 1);
    assert!(
        stdout(&output).starts_with("<stdin>:2:28: problem: email \"nope\""),
        "{}",
        stdout(&output)
    );
}

#[test]
fn broken_json_is_placed_at_a_column_counted_from_one() {
    // The text ends at the start of line 3, where serde_json reports column 0.
    let (data_file, output) = check_contents("[\n  {\"id\": 1,\n");
    assert_eq!(code(&output), 2, "not a user list");
    assert!(
        stdout(&output).starts_with(&format!("{data_file}:3:1: problem: not valid JSON")),
        "{}",
        stdout(&output)
    );
}

#[test]
fn the_history_beside_the_file_is_checked_line_by_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("users.json");
    std::fs::write(&file, "[]").unwrap();
    let change = |revision: u64| {
        format!(
            r#"{{"revision":{revision},"at":"2024-05-01T10:00:00.000000Z","kind":"created","user":"a","source":{{"kind":"api"}},"before":null,"after":{{"id":"a","name":"Ann","email":"ann@x.com"}}}}"#
        )
    };
    let lines = [
        r#"{"revision":2,"at":"2024-05-01T09:00:00.000000Z","kind":"compacted"}"#.to_owned(),
        change(3),
        "not json at all".to_owned(),
        "[1, 2]".to_owned(),
        change(3),
        change(5),
        r#"{"revision":6,"at":"2024-05-01T10:00:00Z","kind":"sideways","user":"a","source":{"kind":"api"}}"#
            .to_owned(),
    ];
    let torn = r#"{"revision":7,"at":"2024"#;
    std::fs::write(
        dir.path().join("users.json.history"),
        format!("{}\n{torn}", lines.join("\n")),
    )
    .unwrap();
    let output = roster_check(&["check"], Some(&file));
    let report = stdout(&output);
    assert_eq!(code(&output), 1, "{report}");
    let history = format!("{}.history", file.display());
    for expected in [
        format!("{history}:3: problem: not JSON"),
        format!("{history}:4: problem: not an object"),
        format!("{history}:5: problem: revision 3 after 3"),
        format!("{history}:7: problem: not a change"),
        format!("{history}:8: problem: the last line is torn"),
    ] {
        assert!(report.contains(&expected), "no {expected:?} in:\n{report}");
    }
    for clean in [":1:", ":2:", ":6:"] {
        assert!(
            !report.contains(&format!("{history}{clean}")),
            "{clean} is fine:\n{report}"
        );
    }

    // A clean history says so and leaves the exit code alone.
    std::fs::write(dir.path().join("users.json.history"), format!("{}\n", change(1))).unwrap();
    let output = roster_check(&["check"], Some(&file));
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    assert!(stdout(&output).contains(&format!("{history}: no problems in 1 changes")));
}
