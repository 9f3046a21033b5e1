//! The data file (docs/src/storage.md): a file with naive timestamps loads as it is, unknown
//! keys and broken records survive rewrites, corrupt files are set aside once and kept until a
//! mutation, external edits show through the watcher, permissions are kept, no temporary file
//! is left, and concurrent creates lose nothing and keep emails unique.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, WATCH_DEADLINE, assert_utc_micros, eventually, spawn_app, spawn_app_with, spawn_app_with_users,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_by_the_reference_loads_unchanged() {
    let app = spawn_app_with(
        r#"[{"id": "u1", "name": "Ann", "email": "ann@x.com", "created_at": "2024-05-01T10:00:00.123456", "updated_at": "2024-05-01T10:00:00.123456"}]"#,
    )
    .await;
    let users = app.all_users().await;
    assert_eq!(
        users,
        [json!({
            "id": "u1",
            "name": "Ann",
            "email": "ann@x.com",
            "createdAt": "2024-05-01T10:00:00.123456Z",
            "updatedAt": "2024-05-01T10:00:00.123456Z",
        })]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc_3339_timestamps_with_an_offset_load_as_utc() {
    let app = spawn_app_with_users(&json!([
        { "id": "u1", "name": "Ann", "email": "ann@x.com",
          "created_at": "2024-05-01T12:00:00.5+02:00", "updated_at": "2024-05-01T10:00:00Z" }
    ]))
    .await;
    let user = &app.all_users().await[0];
    assert_eq!(user["createdAt"], "2024-05-01T10:00:00.500000Z", "{user}");
    assert_eq!(user["updatedAt"], "2024-05-01T10:00:00.000000Z", "{user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_timestamps_load_with_null_timestamps() {
    let app = spawn_app_with(r#"[{"id": "u1", "name": "Ann", "email": "ann@x.com"}]"#).await;
    let users = app.all_users().await;
    assert_eq!(
        users,
        [json!({ "id": "u1", "name": "Ann", "email": "ann@x.com", "createdAt": null, "updatedAt": null })]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_survive_a_rewrite_and_an_update_of_their_record() {
    let ann = json!({
        "id": "u1", "name": "Ann", "email": "ann@x.com",
        "created_at": "2024-05-01T10:00:00.123456", "updated_at": "2024-05-01T10:00:00.123456",
        "role": "admin",
        "prefs": { "theme": "dark", "tags": [1, 2, { "deep": null }] },
        "score": 12.5
    });
    let app = spawn_app_with_users(&json!([ann])).await;
    app.create_ok("Bob", "bob@x.com").await;
    let records = app.file_records();
    assert_eq!(records.len(), 2, "{records:?}");
    let kept = &records[0];
    for key in ["id", "name", "email", "role", "prefs", "score"] {
        assert_eq!(kept[key], ann[key], "{key} changed: {kept}");
    }
    for key in ["created_at", "updated_at"] {
        let at = chrono::DateTime::parse_from_rfc3339(kept[key].as_str().unwrap_or_default())
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(
                    kept[key].as_str().unwrap_or_default(),
                    "%Y-%m-%dT%H:%M:%S%.f",
                )
                .map(|naive| naive.and_utc().fixed_offset())
            })
            .unwrap_or_else(|err| panic!("{key} unreadable ({err}): {kept}"));
        assert_eq!(
            at.to_rfc3339(),
            "2024-05-01T10:00:00.123456+00:00",
            "{key}: {kept}"
        );
    }

    let payload = app
        .update_user(json!({ "id": "u1", "name": "Ann B", "email": "ann@x.com" }))
        .await;
    assert_eq!(payload["ok"], true, "{payload}");
    let updated = &app.file_records()[0];
    assert_eq!(updated["name"], "Ann B");
    for key in ["role", "prefs", "score"] {
        assert_eq!(updated[key], ann[key], "{key} lost by the update: {updated}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_hidden_from_the_api_but_kept_verbatim_in_the_file() {
    let broken = [
        json!(42),
        json!({ "id": 5 }),
        json!({ "name": "x" }),
        json!("a string"),
        json!(null),
        json!({ "id": "u9", "name": "No Email" }),
        json!({ "id": "u8", "name": ["list"], "email": "list@x.com" }),
    ];
    let mut seed: Vec<Value> = broken.to_vec();
    seed.insert(3, json!({ "id": "u1", "name": "Ann", "email": "ann@x.com" }));
    let app = spawn_app_with_users(&Value::Array(seed.clone())).await;
    let users = app.all_users().await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["name"], "Ann");

    let new_id = app.create_ok("Bob", "bob@x.com").await;
    let records = app.file_records();
    assert_eq!(records.len(), seed.len() + 1, "{records:?}");
    for record in &broken {
        assert!(records.contains(record), "{record} was not kept: {records:?}");
    }
    assert!(records.iter().any(|r| r["id"] == "u1" && r["name"] == "Ann"));
    assert!(records.iter().any(|r| r["id"] == new_id.as_str()));
    let names: Vec<Value> = app.all_users().await.iter().map(|u| u["name"].clone()).collect();
    assert_eq!(names, [json!("Ann"), json!("Bob")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_written_file_is_a_two_space_indented_array_with_a_trailing_newline() {
    let app = spawn_app().await;
    app.create_ok("Ann", "ann@x.com").await;
    app.create_ok("Bob", "bob@x.com").await;
    let text = String::from_utf8(app.file_bytes()).expect("UTF-8");
    assert!(text.starts_with("[\n  {\n    \""), "{text}");
    assert!(text.ends_with("}\n]\n"), "{text:?}");
    assert!(!text.ends_with("\n\n"), "{text:?}");
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        text,
        format!("{}\n", serde_json::to_string_pretty(&parsed).unwrap()),
        "not two-space pretty JSON"
    );
    for record in parsed.as_array().unwrap() {
        let keys: Vec<&String> = record.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["id", "name", "email", "created_at", "updated_at"],
            "{record}"
        );
        assert_utc_micros(&record["created_at"]);
        assert_utc_micros(&record["updated_at"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_is_created_as_an_empty_array_at_start() {
    let app = spawn_app().await;
    // Checked before any request: creating it is part of starting.
    assert_eq!(app.file_json(), json!([]));
    assert!(app.all_users().await.is_empty());
    assert_eq!(app.health().await["users"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_loads_as_an_empty_list_and_is_not_treated_as_corrupt() {
    let app = spawn_app_with("").await;
    assert!(app.all_users().await.is_empty());
    assert!(app.corrupt_copies().is_empty(), "{:?}", app.folder_entries());
    app.create_ok("Ann", "ann@x.com").await;
    assert_eq!(app.file_records().len(), 1);
}

async fn assert_a_corrupt_file_is_set_aside_and_kept_until_a_mutation(contents: &str) {
    let app = spawn_app_with(contents).await;
    for _ in 0..3 {
        let response = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": "{ allUsers { id } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["allUsers"], json!([]), "{contents}: {body}");
    }
    let copies = app.corrupt_copies();
    assert_eq!(copies.len(), 1, "{contents}: {:?}", app.folder_entries());
    assert_eq!(std::fs::read(&copies[0]).unwrap(), contents.as_bytes());
    assert_eq!(
        app.file_bytes(),
        contents.as_bytes(),
        "the broken file was touched"
    );

    let health = app.health().await;
    assert_eq!(health["status"], "ok", "{health}");
    assert!(
        health["corrupt"].as_str().is_some_and(|s| !s.is_empty()),
        "{contents}: {health}"
    );

    let id = app.create_ok("Ann", "ann@x.com").await;
    let records = app.file_records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["id"], id.as_str());
    assert_eq!(app.corrupt_copies(), copies);
    assert_eq!(std::fs::read(&copies[0]).unwrap(), contents.as_bytes());
    assert_eq!(app.all_users().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_json_is_set_aside_and_kept_until_a_mutation() {
    assert_a_corrupt_file_is_set_aside_and_kept_until_a_mutation("not a json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_an_array_is_set_aside_and_kept_until_a_mutation() {
    assert_a_corrupt_file_is_set_aside_and_kept_until_a_mutation(r#"{"a":1}"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_distinct_corrupt_content_written_while_running_is_copied_once() {
    let app = spawn_app_with_users(&json!([{ "id": "u1", "name": "Ann", "email": "ann@x.com" }])).await;
    assert_eq!(app.all_users().await.len(), 1);
    std::fs::write(&app.data_file, "broken one").unwrap();
    app.wait_for_names("the first corruption", |names| names.is_empty())
        .await;
    for _ in 0..3 {
        assert!(app.all_users().await.is_empty());
    }
    assert_eq!(app.corrupt_copies().len(), 1, "{:?}", app.folder_entries());

    std::fs::write(&app.data_file, "[]").unwrap();
    std::fs::write(&app.data_file, "broken two!").unwrap();
    eventually(WATCH_DEADLINE, "the second corrupt content is copied", || async {
        app.all_users().await;
        app.corrupt_copies().len() >= 2
    })
    .await;
    let mut contents: Vec<Vec<u8>> = app
        .corrupt_copies()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    contents.sort();
    assert_eq!(contents, [b"broken one".to_vec(), b"broken two!".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_edit_in_place_is_seen_well_before_the_ttl() {
    let app = spawn_app_with_users(&json!([
        { "id": "u1", "name": "Ann", "email": "ann@x.com" },
        { "id": "u2", "name": "Bob", "email": "bob@x.com" },
    ]))
    .await;
    assert_eq!(app.all_users().await.len(), 2);
    std::fs::write(&app.data_file, "[]").unwrap();
    app.wait_for_names("an in-place write of []", |names| names.is_empty())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_style_rename_over_the_file_is_seen_well_before_the_ttl() {
    let app = spawn_app_with_users(&json!([{ "id": "u1", "name": "Ann", "email": "ann@x.com" }])).await;
    assert_eq!(app.all_users().await.len(), 1);
    let staging = app.dir.path().join(".users.json.swp");
    std::fs::write(&staging, r#"[{"id": "u2", "name": "Zed", "email": "zed@x.com"}]"#).unwrap();
    std::fs::rename(&staging, &app.data_file).unwrap();
    app.wait_for_names("a rename over the file", |names| names == ["Zed"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_edits_are_still_seen_after_the_services_own_writes() {
    let app = spawn_app().await;
    for round in 0..3 {
        app.create_ok(&format!("Own{round}"), &format!("own{round}@x.com"))
            .await;
        // Read once, so the cache holds the state our own rename produced.
        let own = if round == 0 { 1 } else { 2 };
        assert_eq!(app.all_users().await.len(), own);
        let name = format!("Hand{round}");
        std::fs::write(
            &app.data_file,
            format!(r#"[{{"id": "h{round}", "name": "{name}", "email": "hand{round}@x.com"}}]"#),
        )
        .unwrap();
        app.wait_for_names(&format!("hand edit {round}"), |names| names == [name.as_str()])
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_right_after_an_external_edit_does_not_overwrite_it() {
    let app = spawn_app_with_users(&json!([{ "id": "u1", "name": "Ann", "email": "ann@x.com" }])).await;
    assert_eq!(app.all_users().await.len(), 1);
    std::fs::write(
        &app.data_file,
        r#"[{"id": "u1", "name": "Ann", "email": "ann@x.com"}, {"id": "u2", "name": "Zed", "email": "zed@x.com"}]"#,
    )
    .unwrap();
    // No waiting: the writer must revalidate against the file itself.
    let refused = app.create_user("Zed Two", "ZED@x.com").await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["message"], "Email exists.");
    app.create_ok("Carl", "carl@x.com").await;
    let names: Vec<Value> = app.file_records().iter().map(|r| r["name"].clone()).collect();
    assert_eq!(names, [json!("Ann"), json!("Zed"), json!("Carl")]);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_keeps_the_files_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app_with("[]").await;
    std::fs::set_permissions(&app.data_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    app.create_ok("Ann", "ann@x.com").await;
    app.create_ok("Bob", "bob@x.com").await;
    let mode = std::fs::metadata(&app.data_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "mode is {mode:o}");
    assert_eq!(app.file_records().len(), 2);
}

fn assert_only_our_files(app: &TestApp) {
    let entries = app.folder_entries();
    let stray: Vec<&String> = entries
        .iter()
        .filter(|name| {
            !matches!(
                name.as_str(),
                "users.json" | "users.json.lock" | "users.json.history"
            ) && !name.starts_with("users.json.corrupt-")
        })
        .collect();
    assert!(stray.is_empty(), "left behind: {stray:?} (all: {entries:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_leave_no_temporary_file_behind() {
    let app = spawn_app_with("not a json").await;
    assert!(app.all_users().await.is_empty());
    let a = app.create_ok("Ann", "ann@x.com").await;
    let b = app.create_ok("Bob", "bob@x.com").await;
    assert_eq!(
        app.update_user(json!({ "id": a, "name": "Ann", "email": "ann2@x.com" }))
            .await["ok"],
        true
    );
    assert_eq!(
        app.bulk_update(json!([{ "id": b, "email": "bob2@x.com" }])).await["updatedCount"],
        1
    );
    assert_eq!(app.delete_user(&a).await["ok"], true);
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let client = app.client.clone();
            let url = app.url("/graphql");
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({
                        "query": "mutation($u: UserInput!) { createUser(userData: $u) { ok } }",
                        "variables": { "u": { "name": "Many", "email": format!("many{n}@x.com") } }
                    }))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        let answer = task.await.unwrap();
        assert_eq!(answer["data"]["createUser"]["ok"], true, "{answer}");
    }
    assert_eq!(app.file_records().len(), 21);
    assert_only_our_files(&app);
}

async fn concurrent_creates(app: &Arc<TestApp>, people: Vec<(String, String)>) -> Vec<Value> {
    let tasks: Vec<_> = people
        .into_iter()
        .map(|(name, email)| {
            let app = Arc::clone(app);
            tokio::spawn(async move { app.create_user(&name, &email).await })
        })
        .collect();
    let mut payloads = Vec::new();
    for task in tasks {
        payloads.push(task.await.expect("a create task"));
    }
    payloads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_creates_are_all_acknowledged_and_all_written() {
    let app = Arc::new(spawn_app().await);
    let people = (0..200)
        .map(|n| (format!("User {n}"), format!("user{n}@x.com")))
        .collect();
    let payloads = concurrent_creates(&app, people).await;
    for payload in &payloads {
        assert_eq!(payload["ok"], true, "{payload}");
        assert_eq!(payload["message"], "User created.");
    }
    let records = app.file_records();
    assert_eq!(records.len(), 200);
    let mut emails: Vec<String> = records
        .iter()
        .map(|r| r["email"].as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    emails.dedup();
    assert_eq!(emails.len(), 200);
    let ids: std::collections::HashSet<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 200, "ids are unique");
    assert_eq!(app.all_users().await.len(), 200);
    assert_only_our_files(&app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_creates_of_one_email_in_different_cases_let_exactly_one_through() {
    let app = Arc::new(spawn_app().await);
    let people = (0..20)
        .map(|n| {
            let email: String = "racer@example.com"
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if (n >> (i % 5)) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            (format!("Racer {n}"), email)
        })
        .collect();
    let payloads = concurrent_creates(&app, people).await;
    let winners = payloads.iter().filter(|p| p["ok"] == true).count();
    assert_eq!(winners, 1, "{payloads:?}");
    let refused: Vec<&Value> = payloads.iter().filter(|p| p["ok"] == false).collect();
    assert_eq!(refused.len(), 19);
    assert!(
        refused.iter().all(|p| p["message"] == "Email exists."),
        "{refused:?}"
    );
    let records = app.file_records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0]["email"].as_str().unwrap().to_lowercase(),
        "racer@example.com"
    );
}
