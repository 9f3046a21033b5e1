//! `roster import` and `roster export` with the real binary (docs/src/storage.md, Import and
//! export): a user list goes into the database and comes back the same, with the keys and
//! records the API does not show, in file order; a non-empty database is only replaced on
//! request.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::{names_of, scratch_database, spawn_replica};

/// Runs `roster <args>` over the database at `url` to its end: exit code and stderr.
async fn roster(args: &[&str], url: &str) -> (Option<i32>, String) {
    crate::postgres_outage::run_roster(args, Some(url)).await
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

/// `value` with every timestamp written as the instant it names, so two forms of the same
/// time compare equal.
fn instants(value: &Value) -> Value {
    let mut value = value.clone();
    for record in value.as_array_mut().into_iter().flatten() {
        for key in ["created_at", "updated_at"] {
            let Some(text) = record.get(key).and_then(Value::as_str) else {
                continue;
            };
            let at = chrono::DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&chrono::Utc))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn export_of_an_import_gives_back_the_same_list_and_the_api_hides_what_is_not_a_user() {
    let Some(database) = scratch_database("import/export round trip").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let original = json!([
        "a note someone left",
        {"id": "u1", "name": "Ann", "email": "ann@x.com", "created_at": "2024-05-01T10:00:00.123456",
         "updated_at": "2024-05-01T12:00:00+02:00", "role": "admin", "tags": ["a", {"b": 1.5}]},
        {"id": 7, "name": "not a user: its id is a number"},
        {"id": "u2", "name": "Bob", "email": "bob@x.com", "created_at": "yesterday", "updated_at": null},
        {"id": "u0", "name": "Cy", "email": "cy@x.com"}
    ]);
    let source = path(dir.path(), "source.json");
    std::fs::write(&source, serde_json::to_vec_pretty(&original).unwrap()).unwrap();

    let (code, stderr) = roster(&["import", &source], database.url()).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("imported 3 users and 2 hidden records"),
        "{stderr}"
    );

    let app = spawn_replica(database.url()).await;
    let users = app.all_users().await;
    assert_eq!(
        names_of(&Value::Array(users.clone())),
        ["Ann", "Bob", "Cy"],
        "file order, users only"
    );
    assert_eq!(
        users[0]["createdAt"], "2024-05-01T10:00:00.123456Z",
        "naive read as UTC"
    );
    assert_eq!(users[0]["updatedAt"], "2024-05-01T10:00:00.000000Z");
    assert_eq!(users[1]["createdAt"], Value::Null);
    let created = app.create_ok("Dee", "dee@x.com").await;

    let target = path(dir.path(), "export.json");
    let (code, stderr) = roster(&["export", &target], database.url()).await;
    assert_eq!(code, Some(0), "{stderr}");
    let exported: Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    let mut expected = original.as_array().unwrap().clone();
    let dee = exported.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        dee["id"],
        created.as_str(),
        "a new user comes after every imported record"
    );
    expected.push(dee);
    assert_eq!(instants(&exported), instants(&Value::Array(expected)));
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(
        text.starts_with("[\n  \"a note someone left\",\n  {\n    \"id\": \"u1\""),
        "{text}"
    );
    assert!(text.ends_with("\n]\n"), "{text}");
    assert!(
        text.contains("\"updated_at\": \"2024-05-01T10:00:00.000000Z\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn import_refuses_a_non_empty_database_unless_told_to_replace_it() {
    let Some(database) = scratch_database("import into a non-empty database").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first = path(dir.path(), "first.json");
    std::fs::write(&first, r#"[{"id":"a","name":"Ann","email":"ann@x.com"}]"#).unwrap();
    let second = path(dir.path(), "second.json");
    std::fs::write(&second, r#"[{"id":"b","name":"Bob","email":"bob@x.com"}]"#).unwrap();
    assert_eq!(roster(&["import", &first], database.url()).await.0, Some(0));
    let app = spawn_replica(database.url()).await;

    let (code, stderr) = roster(&["import", &second], database.url()).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("already holds 1 users") && stderr.contains("--replace"),
        "{stderr}"
    );
    assert_eq!(app.names("").await, ["Ann"]);

    let (code, stderr) = roster(&["import", "--replace", &second], database.url()).await;
    assert_eq!(code, Some(0), "{stderr}");
    crate::helpers::eventually(
        crate::helpers::WATCH_DEADLINE,
        "a running replica sees the import",
        || async { app.names("").await == ["Bob"] },
    )
    .await;

    let clash = path(dir.path(), "clash.json");
    std::fs::write(
        &clash,
        r#"[{"id":"c","name":"C","email":"same@x.com"},{"id":"d","name":"D","email":"SAME@x.com"}]"#,
    )
    .unwrap();
    let (code, stderr) = roster(&["import", &clash], database.url()).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(r#"users "c" and "d" share the email"#),
        "the file's problem comes first: {stderr}"
    );
    let (code, stderr) = roster(&["import", "--replace", &clash], database.url()).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("share the email"), "{stderr}");
    assert_eq!(app.names("").await, ["Bob"], "a refused import changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn import_and_export_of_a_large_file_report_their_progress() {
    let Some(database) = scratch_database("progress of a large import").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let users: Vec<Value> = (0..20_000)
        .map(|n| json!({"id": format!("u{n}"), "name": format!("User {n}"), "email": format!("u{n}@x.com")}))
        .collect();
    let source = path(dir.path(), "large.json");
    std::fs::write(&source, serde_json::to_vec(&users).unwrap()).unwrap();
    let (code, stderr) = roster(&["import", &source], database.url()).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("imported 10000 of 20000 records"), "{stderr}");
    let target = path(dir.path(), "out.json");
    let (code, stderr) = roster(&["export", &target], database.url()).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("exported 20000 of 20000 records"), "{stderr}");
    let exported: Vec<Value> = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    assert_eq!(exported, users);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_without_a_database_url_says_what_is_missing() {
    let (code, stderr) = crate::postgres_outage::run_roster(&["import", "users.json"], None).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("need --database-url"), "{stderr}");
}

/// `depth` arrays and objects nested inside each other around `leaf`, as compact JSON.
fn nested(depth: usize, leaf: &str) -> String {
    let mut text = leaf.to_owned();
    for level in 0..depth {
        text = if level % 2 == 0 {
            format!("[{text},{level}]")
        } else {
            format!("{{\"k{level}\":{text}}}")
        }
    }
    text
}

/// JSON text without the whitespace between its tokens (the texts compared here have none
/// inside their strings).
fn compact(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn values_nested_two_hundred_deep_go_in_and_come_back_verbatim() {
    let Some(database) = scratch_database("deeply nested records").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let deep = nested(200, "\"bottom\"");
    let original =
        format!("[{{\"id\":\"u1\",\"name\":\"Ann\",\"email\":\"ann@x.com\",\"deep\":{deep}}},{deep}]");
    let source = path(dir.path(), "deep.json");
    std::fs::write(&source, &original).unwrap();
    let (code, stderr) = roster(&["import", &source], database.url()).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("imported 1 users and 1 hidden records"),
        "{stderr}"
    );

    // A person adds another deep value with psql.
    let (client, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let by_hand = nested(201, "null");
    client
        .execute(
            "INSERT INTO users (id, name, email, extra) VALUES ('u2', 'Bob', 'bob@x.com', jsonb_build_object('hand', $1::text::jsonb))",
            &[&by_hand],
        )
        .await
        .unwrap();

    let target = path(dir.path(), "out.json");
    let (code, stderr) = roster(&["export", &target], database.url()).await;
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&target).unwrap();
    let expected = format!(
        "[{{\"id\":\"u1\",\"name\":\"Ann\",\"email\":\"ann@x.com\",\"deep\":{deep}}},{deep},\
         {{\"id\":\"u2\",\"name\":\"Bob\",\"email\":\"bob@x.com\",\"hand\":{by_hand}}}]"
    );
    let exported = compact(&text);
    // Users get timestamps on insert; they are not what this test is about.
    let stripped = without_timestamps(&exported);
    assert_eq!(stripped, expected);
    assert!(
        text.starts_with("[\n  {\n    \"id\": \"u1\""),
        "{}",
        &text[..200.min(text.len())]
    );
}

/// `text` without its `"created_at":"…",` and `"updated_at":"…",` members.
fn without_timestamps(text: &str) -> String {
    let mut out = text.to_owned();
    for key in ["\"created_at\":\"", "\"updated_at\":\""] {
        while let Some(start) = out.find(key) {
            let value_end = out[start + key.len()..].find('"').unwrap() + start + key.len() + 1;
            let end = if out[value_end..].starts_with(',') {
                value_end + 1
            } else {
                value_end
            };
            out.replace_range(start..end, "");
        }
    }
    out.replace(",}", "}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn an_import_leaves_the_keys_and_the_change_feed_as_they_were() {
    let Some(database) = scratch_database("keys and triggers after an import").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = path(dir.path(), "users.json");
    std::fs::write(
        &source,
        r#"[{"id":"a","name":"Ann","email":"ann@x.com"},{"id":"b","name":"Bob","email":"bob@x.com"}]"#,
    )
    .unwrap();
    let (client, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for round in 0..2 {
        if round == 1 {
            // Another table that needs the users' key keeps its index from being set aside.
            client
                .batch_execute("CREATE TABLE notes (user_id text REFERENCES users (id))")
                .await
                .unwrap();
        }
        let (code, stderr) = roster(&["import", "--replace", &source], database.url()).await;
        assert_eq!(code, Some(0), "round {round}: {stderr}");
        let app = spawn_replica(database.url()).await;
        let clash = app.create_user("Ann again", "ANN@x.com").await;
        assert_eq!(clash["ok"], false, "round {round}: {clash}");
        let twice = client
            .execute(
                "INSERT INTO users (id, name, email) VALUES ('a', 'A', 'other@x.com')",
                &[],
            )
            .await;
        assert!(twice.is_err(), "round {round}: the id is still the key");
        client
            .execute(
                "INSERT INTO users (id, name, email) VALUES ($1, 'Cy', $2)",
                &[&format!("c{round}"), &format!("cy{round}@x.com")],
            )
            .await
            .unwrap();
        crate::helpers::eventually(
            crate::helpers::WATCH_DEADLINE,
            "a row written with psql reaches the replica",
            || async { app.names("").await.iter().any(|name| name == "Cy") },
        )
        .await;
        let revisions: i64 = client
            .query_one("SELECT count(DISTINCT revision) FROM users", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(revisions, 3, "round {round}: every row has a revision of its own");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_second_export_at_info_prints_no_database_notice() {
    let Some(database) = scratch_database("no NOTICE noise at info").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = path(dir.path(), "out.json");
    for round in 0..2 {
        let (code, stderr) = roster(&["export", &out], database.url()).await;
        assert_eq!(code, Some(0), "{stderr}");
        assert!(!stderr.contains("NOTICE"), "round {round}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn an_import_is_recorded_in_the_history_user_by_user_as_source_import() {
    let Some(database) = scratch_database("import recorded in the history").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, users: Value| {
        let file = path(dir.path(), name);
        std::fs::write(&file, users.to_string()).unwrap();
        file
    };
    let first = write(
        "first.json",
        json!([{"id": "a", "name": "Ann", "email": "ann@x.com"},
               {"id": "b", "name": "Bob", "email": "bob@x.com"},
               {"id": "c", "name": "Cy", "email": "cy@x.com"}]),
    );
    assert_eq!(roster(&["import", &first], database.url()).await.0, Some(0));
    let second = write(
        "second.json",
        json!([{"id": "a", "name": "Ann", "email": "ann@x.com"},
               {"id": "b", "name": "Bobby", "email": "bob@x.com"},
               {"id": "d", "name": "Di", "email": "di@x.com"}]),
    );
    assert_eq!(
        roster(&["import", "--replace", &second], database.url()).await.0,
        Some(0)
    );
    let app = spawn_replica(database.url()).await;
    let answer = app
        .gql(
            "{ changes(first: 100) { nodes { revision kind userId source { kind }
                before { name } after { name } } } }",
            json!({}),
        )
        .await;
    let nodes = answer["data"]["changes"]["nodes"].as_array().unwrap().clone();
    let seen: Vec<(String, String, String, Value, Value)> = nodes
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_owned(),
                c["userId"].as_str().unwrap().to_owned(),
                c["source"]["kind"].as_str().unwrap().to_owned(),
                c["before"]["name"].clone(),
                c["after"]["name"].clone(),
            )
        })
        .collect();
    let change = |kind: &str, id: &str, before: Value, after: Value| {
        (kind.to_owned(), id.to_owned(), "IMPORT".to_owned(), before, after)
    };
    assert_eq!(
        seen,
        [
            change("CREATED", "a", Value::Null, json!("Ann")),
            change("CREATED", "b", Value::Null, json!("Bob")),
            change("CREATED", "c", Value::Null, json!("Cy")),
            change("UPDATED", "b", json!("Bob"), json!("Bobby")),
            change("CREATED", "d", Value::Null, json!("Di")),
            change("DELETED", "c", json!("Cy"), Value::Null),
        ],
        "{answer}"
    );
    let revisions: Vec<u64> = nodes
        .iter()
        .map(|c| c["revision"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
}
