//! One users-file format, three readers: the same fixture files go through the file store
//! (opened, read, rewritten), `roster check`, and `roster import` into PostgreSQL then
//! `roster export`, and all three must agree on what each file holds.

use std::path::Path;

use chrono::Utc;
use serde_json::{Value, json};

use roster::adapters::inbound::cli::check::{self, NotAList};
use roster::adapters::outbound::json_file::JsonFileUserRepository;
use roster::domain::{Change, Email, User, UserId, UserName};
use roster::ports::UserRepository;

use crate::helpers::scratch_database;

/// `depth` arrays and objects nested inside each other around `leaf`, as compact JSON.
fn nested(depth: usize) -> String {
    let mut text = "\"bottom\"".to_owned();
    for level in 0..depth {
        text = if level % 2 == 0 {
            format!("[{text},{level}]")
        } else {
            format!("{{\"k{level}\":{text}}}")
        }
    }
    text
}

/// What every path must find in a fixture.
enum Verdict {
    /// A user list: this many users served, and whether the database's keys refuse it.
    Users { served: usize, import_refused: bool },
    /// Not a user list: the message every path gives, place included.
    Refused(&'static str),
}

fn fixtures() -> Vec<(&'static str, Vec<u8>, Verdict)> {
    let timestamps = br#"[
  {"id": "a", "name": "Ann", "email": "ann@x.com", "created_at": "2024-05-01T10:00:00.123456Z", "updated_at": null},
  {"id": "b", "name": "Bob", "email": "bob@x.com"},
  {"id": "c", "name": "Cy", "email": "cy@x.com", "created_at": "2024-05-01T10:00:00.123456", "updated_at": "2024-05-01T12:00:00+02:00"},
  {"id": "d", "name": "Dee", "email": "dee@x.com", "created_at": "yesterday", "updated_at": 17, "role": "admin", "prefs": {"tags": [1, 2.5, null]}},
  {"id": "e", "name": "Eve", "email": "eve@x.com", "created_at": null, "updated_at": "+20000-01-01T00:00:00"}
]
"#;
    // The top-level array and the record are two levels, so 998 more reach the limit.
    let at_limit = format!(
        "[{{\"id\":\"a\",\"name\":\"Ann\",\"email\":\"ann@x.com\",\"deep\":{}}},{}]",
        nested(998),
        nested(300)
    );
    let over_limit = format!(
        "[{{\"id\":\"a\",\"name\":\"Ann\",\"email\":\"ann@x.com\",\"deep\":{}}}]",
        nested(999)
    );
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(br#"[{"id": "a", "name": "Ann", "email": "ann@x.com"}]"#);
    let malformed = br#"[42, {"id": 5, "name": "A"}, {"id": "a", "name": "Ann", "email": "ann@x.com"}, [1, {"x": []}], "a note", null]"#;
    let duplicates = br#"[{"id": "a", "name": "Ann", "email": "ann@x.com"}, {"id": "a", "name": "Bob", "email": "bob@x.com"}]"#;
    let keys: Vec<String> = (0..2_000).map(|n| format!("\"key{n}\": {n}")).collect();
    let many_keys = format!(
        "[{{\"id\": \"a\", \"name\": \"Ann\", \"email\": \"ann@x.com\", {}}}]",
        keys.join(", ")
    );
    vec![
        (
            "timestamps",
            timestamps.to_vec(),
            Verdict::Users {
                served: 5,
                import_refused: false,
            },
        ),
        (
            "nested to the limit",
            at_limit.into_bytes(),
            Verdict::Users {
                served: 1,
                import_refused: false,
            },
        ),
        (
            "nested past the limit",
            over_limit.into_bytes(),
            Verdict::Refused("a value is nested more than 1000 levels deep at line 1 column "),
        ),
        (
            "byte-order mark",
            bom,
            Verdict::Users {
                served: 1,
                import_refused: false,
            },
        ),
        (
            "malformed records",
            malformed.to_vec(),
            Verdict::Users {
                served: 1,
                import_refused: false,
            },
        ),
        (
            "duplicate ids",
            duplicates.to_vec(),
            Verdict::Users {
                served: 2,
                import_refused: true,
            },
        ),
        (
            "many keys",
            many_keys.into_bytes(),
            Verdict::Users {
                served: 1,
                import_refused: false,
            },
        ),
    ]
}

/// The file's records as values, byte-order mark skipped, every timestamp that names an
/// instant written as that instant (so two forms of one time compare equal).
fn records(bytes: &[u8]) -> Value {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    deserializer.disable_recursion_limit();
    let mut value: Value =
        serde::Deserialize::deserialize(serde_stacker::Deserializer::new(&mut deserializer))
            .expect("a JSON fixture");
    for record in value.as_array_mut().into_iter().flatten() {
        for key in ["created_at", "updated_at"] {
            let Some(text) = record.get(key).and_then(Value::as_str) else {
                continue;
            };
            let at = chrono::DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&Utc))
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|at| at.and_utc())
                });
            if let Ok(at) = at {
                record[key] = json!(at.timestamp_micros());
            }
        }
    }
    value
}

/// Values as deep as the fixtures' are dropped on a thread with room for them.
fn drop_deep(value: Value) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || drop(value))
        .unwrap()
        .join()
        .unwrap();
}

fn ann_too(n: u32) -> Change {
    Change::Create(User::new(
        UserId::new(format!("new{n}")),
        UserName::parse("New").unwrap(),
        Email::parse(&format!("new{n}@x.com")).unwrap(),
        Utc::now(),
    ))
}

/// What the store makes of `bytes`: the ids it serves, or the note it gives for a corrupt
/// file; and for a user list, the file after a rewrite that leaves every record as it was.
async fn through_the_store(folder: &Path, bytes: &[u8]) -> (Result<Vec<String>, String>, Option<Vec<u8>>) {
    let path = folder.join("store.json");
    std::fs::write(&path, bytes).unwrap();
    let store = JsonFileUserRepository::open(&path).unwrap();
    if let Some(corrupt) = store.health().corrupt {
        return (Err(corrupt), None);
    }
    let ids = store
        .snapshot()
        .await
        .unwrap()
        .users()
        .map(|user| user.id().to_string())
        .collect();
    // A write adds a user and the next takes it away: every other record is rewritten.
    store.apply(ann_too(1)).await.unwrap();
    store
        .apply(Change::Delete {
            id: UserId::new("new1"),
        })
        .await
        .unwrap();
    drop(store);
    (Ok(ids), Some(std::fs::read(&path).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn the_store_check_and_import_export_agree_on_every_fixture() {
    let database = scratch_database("one file format through three paths").await;
    for (name, bytes, verdict) in fixtures() {
        let dir = tempfile::tempdir().unwrap();
        let (served, rewritten) = through_the_store(dir.path(), &bytes).await;
        let checked = check::check(&bytes);
        let imported = match &database {
            Some(database) => {
                let source = dir.path().join("source.json");
                std::fs::write(&source, &bytes).unwrap();
                let source = source.to_string_lossy().into_owned();
                Some(
                    crate::postgres_outage::run_roster(
                        &["import", "--replace", &source],
                        Some(database.url()),
                    )
                    .await,
                )
            }
            None => None,
        };
        match verdict {
            Verdict::Refused(message) => {
                let note = served.expect_err(name);
                assert!(note.starts_with(message), "{name}: the store says {note}");
                let place = note[message.len()..].split(';').next().unwrap().to_owned();
                let NotAList { at, message: said } = checked.expect_err(name);
                let at = at.expect("a place");
                assert_eq!(
                    format!("{said} at line {} column {}", at.line, at.column),
                    format!("{message}{place}"),
                    "{name}: check and the store"
                );
                if let Some((code, stderr)) = imported {
                    assert_eq!(code, Some(1), "{name}: {stderr}");
                    assert!(
                        stderr.contains(&format!("{message}{place}")),
                        "{name}: import says {stderr}"
                    );
                }
            }
            Verdict::Users {
                served: count,
                import_refused,
            } => {
                let ids = served.unwrap_or_else(|note| panic!("{name}: the store says {note}"));
                assert_eq!(ids.len(), count, "{name}: {ids:?}");
                let report = checked.unwrap_or_else(|err| panic!("{name}: check says {err:?}"));
                assert_eq!(report.users, count, "{name}: check and the store");
                let original = records(&bytes);
                let rewritten = records(&rewritten.expect("a rewrite"));
                assert_eq!(rewritten, original, "{name}: a rewrite keeps every record");
                let repeated_id = report
                    .problems
                    .iter()
                    .any(|p| p.message.contains("is also the id"));
                assert_eq!(repeated_id, import_refused, "{name}: {report:?}");
                if let (Some(database), Some((code, stderr))) = (&database, imported) {
                    if import_refused {
                        assert_eq!(code, Some(1), "{name}: {stderr}");
                        assert!(stderr.contains("used twice"), "{name}: {stderr}");
                    } else {
                        assert_eq!(code, Some(0), "{name}: {stderr}");
                        assert!(
                            stderr.contains(&format!("imported {count} users")),
                            "{name}: {stderr}"
                        );
                        let target = dir.path().join("export.json");
                        let target = target.to_string_lossy().into_owned();
                        let (code, stderr) =
                            crate::postgres_outage::run_roster(&["export", &target], Some(database.url()))
                                .await;
                        assert_eq!(code, Some(0), "{name}: {stderr}");
                        let exported = records(&std::fs::read(&target).unwrap());
                        assert_eq!(exported, original, "{name}: export of the import");
                        drop_deep(exported);
                    }
                }
                drop_deep(original);
                drop_deep(rewritten);
            }
        }
    }
}

#[tokio::test]
async fn a_null_timestamp_stays_null_until_its_user_is_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    std::fs::write(
        &path,
        r#"[{"id": "a", "name": "Ann", "email": "ann@x.com", "updated_at": null},
            {"id": "b", "name": "Bob", "email": "bob@x.com", "created_at": null, "updated_at": null}]"#,
    )
    .unwrap();
    let store = JsonFileUserRepository::open(&path).unwrap();
    let snapshot = store.snapshot().await.unwrap();
    assert!(snapshot.users().all(|user| user.updated_at().is_none()));
    store
        .apply(Change::Update {
            id: UserId::new("b"),
            name: UserName::parse("Bob").unwrap(),
            email: Email::parse("bob@y.com").unwrap(),
            at: Utc::now(),
        })
        .await
        .unwrap();
    let file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        file[0]["updated_at"],
        Value::Null,
        "an unchanged user keeps its null"
    );
    assert!(file[0].as_object().unwrap().contains_key("updated_at"));
    assert!(
        file[1]["updated_at"].is_string(),
        "the change's time replaces it: {file}"
    );
    assert_eq!(
        file[1]["created_at"],
        Value::Null,
        "a change does not set created_at"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("\"updated_at\"").count(), 2, "no key twice: {text}");
    let report = check::check(text.as_bytes()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(
        report.notes.iter().any(|note| note
            .message
            .contains("null timestamp is served as null and kept as written")),
        "{report:?}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_regular_file_is_refused_by_every_path_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let fifo = dir.path().join("fifo.json");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for (path, what) in [(&zero, "a device"), (&fifo, "a FIFO")] {
        let refused = format!("it is {what}, not a regular file");
        let opened = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::task::spawn_blocking({
                let path = path.clone();
                move || JsonFileUserRepository::open(path).map(|_| ())
            }),
        )
        .await
        .expect("the store answers at once")
        .unwrap();
        let err = opened.expect_err("the store refuses it").to_string();
        assert!(err.ends_with(&refused), "{err}");
        let output = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_roster"))
                .arg("check")
                .arg(path)
                .env_remove("USERS_JSON_PATH")
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("check answers at once")
        .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&refused), "{stderr}");
        let path = path.to_string_lossy().into_owned();
        let (code, stderr) =
            crate::postgres_outage::run_roster(&["import", &path], Some("postgres://127.0.0.1:1/none")).await;
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains(&refused), "{stderr}");
    }
}

#[test]
fn a_report_lists_at_most_a_hundred_findings_and_counts_the_rest() {
    let text = format!("[{}]", vec!["1"; 1_000].join(","));
    let verdict = check::check(text.as_bytes());
    let mut out = Vec::new();
    check::write_report(&mut out, "f", &verdict).unwrap();
    let report = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), check::MAX_REPORTED + 2, "{report}");
    assert_eq!(lines[100], "f: 900 more problems and 0 more notes not shown");
    assert_eq!(lines[101], "f: 1000 problems in 1000 records (0 served as users)");
}

/// What `check` costs on such a record is measured, not asserted here (tests never fail on
/// timing): the figures are in docs/src/benchmarks.md.
#[test]
fn a_record_with_forty_thousand_keys_is_checked_key_by_key() {
    let keys: Vec<String> = (0..40_000).map(|n| format!("\"key{n}\": {n}")).collect();
    let text = format!(
        "[{{\"id\": \"a\", \"name\": \"Ann\", \"email\": \"ann@x.com\", {}, \"key0\": 0}}]",
        keys.join(", ")
    );
    let report = check::check(text.as_bytes()).unwrap();
    assert_eq!(report.notes.len(), 40_000);
    assert_eq!(report.problems.len(), 1, "key0 twice");
}
