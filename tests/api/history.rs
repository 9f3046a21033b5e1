//! The change history over real HTTP and a real file: every change is recorded with its
//! source, can be read back per user or as a feed, and a past state can be restored.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::ws::Subscriber;
use crate::helpers::{
    TestApp, WATCH_DEADLINE, assert_no_errors, eventually, spawn_app, spawn_app_in, spawn_app_in_with,
    spawn_app_with_flags, spawn_replica, spawn_replica_with,
};

const HISTORY: &str = "query($id: ID!, $first: Int, $after: String) {
    userHistory(id: $id, first: $first, after: $after) {
        nodes { revision at kind userId source { kind requestId credential }
                before { name email } after { name email } }
        pageInfo { hasNextPage endCursor }
    } }";

const CHANGES: &str = "query($after: String, $first: Int) {
    changes(after: $after, first: $first) {
        nodes { revision kind userId source { kind } after { name } }
        pageInfo { hasNextPage endCursor }
    } }";

const RESTORE: &str = "mutation($id: ID!, $revision: String!) {
    restoreUser(id: $id, revision: $revision) { ok message user { id name email } } }";

async fn history(app: &TestApp, id: &str) -> Vec<Value> {
    let answer = app.gql(HISTORY, json!({ "id": id })).await;
    assert_no_errors(&answer);
    answer["data"]["userHistory"]["nodes"].as_array().unwrap().clone()
}

async fn changes(app: &TestApp, after: Option<&str>, first: i32) -> Value {
    let answer = app.gql(CHANGES, json!({ "after": after, "first": first })).await;
    assert_no_errors(&answer);
    answer["data"]["changes"].clone()
}

/// Runs `query` with an `X-Request-Id` and, when given, a bearer token.
async fn gql_as(
    app: &TestApp,
    request_id: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", request_id)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer: Value = request.send().await.unwrap().json().await.unwrap();
    assert_no_errors(&answer);
    answer
}

/// Every file of the app's folder (hidden ones, torn lines and temporary files
/// included), and over PostgreSQL every row of every table, as text.
async fn everything_stored(app: &TestApp) -> Vec<(String, String)> {
    let mut stored: Vec<(String, String)> = crate::helpers::folder_entries(app.dir.path())
        .into_iter()
        .filter_map(|name| {
            let bytes = std::fs::read(app.dir.path().join(&name)).ok()?;
            Some((name, String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect();
    if let Some(url) = &app.database_url {
        stored.extend(database_rows(url).await);
    }
    stored
}

/// Every row of every table of the database's own schemas, as text, by table.
async fn database_rows(url: &str) -> Vec<(String, String)> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let tables = client
        .query(
            "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
              WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .unwrap();
    let mut rows = Vec::new();
    for table in tables {
        let name: String = table.get(0);
        let text: Option<String> = client
            .query_one(&format!("SELECT string_agg(t::text, E'\\n') FROM {name} t"), &[])
            .await
            .unwrap()
            .get(0);
        rows.push((name, text.unwrap_or_default()));
    }
    rows
}

/// Asserts that none of `words` is stored anywhere.
async fn assert_nowhere(app: &TestApp, words: &[&str]) {
    let stored = everything_stored(app).await;
    assert!(
        stored
            .iter()
            .any(|(name, _)| name.contains("history") || name.contains("user_changes"))
    );
    for (name, text) in stored {
        for word in words {
            assert!(!text.contains(word), "{word:?} is still in {name}: {text}");
        }
    }
}

async fn purge(app: &TestApp, id: &str) {
    let answer = app
        .gql(
            "mutation($id: ID!) { purgeUser(id: $id) { ok message } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(answer["data"]["purgeUser"]["ok"], true, "{answer}");
}

async fn all_revisions(app: &TestApp) -> Vec<u64> {
    changes(app, None, 1000).await["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(revision)
        .collect()
}

fn revision(change: &Value) -> u64 {
    change["revision"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn create_update_and_delete_are_recorded_newest_first_with_request_id_and_credential() {
    let app = spawn_app_with_flags(&json!([]), &["--write-token", "secret-w"]).await;
    let created = gql_as(
        &app,
        "req-create",
        Some("secret-w"),
        "mutation { createUser(userData: {name: \"Ann\", email: \"ann@x.test\"}) { user { id } } }",
        json!({}),
    )
    .await;
    let id = created["data"]["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    gql_as(
        &app,
        "req-update",
        Some("secret-w"),
        "mutation($id: ID) { updateUser(userData: {id: $id, name: \"Anna\", email: \"anna@x.test\"}) { ok } }",
        json!({ "id": id }),
    )
    .await;
    gql_as(
        &app,
        "req-delete",
        Some("secret-w"),
        "mutation($id: ID!) { deleteUser(id: $id) { ok } }",
        json!({ "id": id }),
    )
    .await;

    // A deleted user's history is still there, newest first.
    let changes = history(&app, &id).await;
    let kinds: Vec<&str> = changes.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["DELETED", "UPDATED", "CREATED"], "{changes:?}");
    let ids: Vec<&str> = changes
        .iter()
        .map(|c| c["source"]["requestId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["req-delete", "req-update", "req-create"]);
    for change in &changes {
        assert_eq!(change["source"]["kind"], "API");
        assert_eq!(change["source"]["credential"], "WRITE");
        assert_eq!(change["userId"], id.as_str());
    }
    assert!(revision(&changes[0]) > revision(&changes[1]) && revision(&changes[1]) > revision(&changes[2]));
    assert_eq!(changes[2]["before"], Value::Null);
    assert_eq!(changes[2]["after"]["name"], "Ann");
    assert_eq!(changes[1]["before"]["email"], "ann@x.test");
    assert_eq!(changes[1]["after"]["email"], "anna@x.test");
    assert_eq!(changes[0]["before"]["name"], "Anna");
    assert_eq!(changes[0]["after"], Value::Null);

    // Pages: one at a time, following the cursor.
    let first = app.gql(HISTORY, json!({ "id": id, "first": 1 })).await;
    let page = &first["data"]["userHistory"];
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let cursor = page["pageInfo"]["endCursor"].as_str().unwrap();
    let next = app
        .gql(HISTORY, json!({ "id": id, "first": 5, "after": cursor }))
        .await;
    let kinds: Vec<&str> = next["data"]["userHistory"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["UPDATED", "CREATED"]);
}

#[tokio::test]
async fn a_deleted_user_is_restored_and_an_update_rolled_back_as_new_restore_changes() {
    let app = spawn_app().await;
    let id = app.create_ok("Bea", "bea@x.test").await;
    app.update_user(json!({ "id": id, "name": "Beatrix", "email": "trix@x.test" }))
        .await;
    let created_at = history(&app, &id).await[1]["revision"].clone();

    // Roll the update back.
    let answer = app
        .gql(RESTORE, json!({ "id": id, "revision": created_at }))
        .await;
    assert_no_errors(&answer);
    let payload = &answer["data"]["restoreUser"];
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(payload["user"]["email"], "bea@x.test");

    // Undo a delete.
    let before_delete = history(&app, &id).await[0]["revision"].clone();
    app.delete_user(&id).await;
    assert!(app.all_users().await.is_empty());
    let answer = app
        .gql(RESTORE, json!({ "id": id, "revision": before_delete }))
        .await;
    assert_eq!(answer["data"]["restoreUser"]["ok"], true, "{answer}");
    let users = app.all_users().await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["id"], id.as_str());
    assert_eq!(users[0]["name"], "Bea");

    let changes = history(&app, &id).await;
    let kinds: Vec<(&str, &str)> = changes
        .iter()
        .map(|c| (c["kind"].as_str().unwrap(), c["source"]["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("CREATED", "RESTORE"),
            ("DELETED", "API"),
            ("UPDATED", "RESTORE"),
            ("UPDATED", "API"),
            ("CREATED", "API")
        ]
    );

    // Refusals: the email now someone else's, an unknown revision, a deleted state.
    app.delete_user(&id).await;
    app.create_ok("Other", "bea@x.test").await;
    let taken = app
        .gql(RESTORE, json!({ "id": id, "revision": before_delete }))
        .await;
    let payload = &taken["data"]["restoreUser"];
    assert_eq!(payload["ok"], false, "{payload}");
    assert!(
        payload["message"].as_str().unwrap().contains("someone else"),
        "{payload}"
    );
    let unknown = app.gql(RESTORE, json!({ "id": id, "revision": "999999" })).await;
    assert_eq!(unknown["data"]["restoreUser"]["ok"], false, "{unknown}");
    assert!(
        unknown["data"]["restoreUser"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown revision")
    );
}

#[tokio::test]
async fn a_bulk_update_of_emails_is_undone_user_by_user() {
    let app = spawn_app().await;
    let ada = app.create_ok("Ada", "ada@x.test").await;
    let bob = app.create_ok("Bob", "bob@x.test").await;
    let bulk = app
        .gql(
            r#"mutation($u: [EmailUpdateInput!]!) { bulkUpdateEmails(updates: $u) { ok updatedCount } }"#,
            json!({ "u": [{ "id": ada, "email": "wrong1@x.test" }, { "id": bob, "email": "wrong2@x.test" }] }),
        )
        .await;
    assert_eq!(bulk["data"]["bulkUpdateEmails"]["updatedCount"], 2, "{bulk}");
    for (id, email) in [(&ada, "ada@x.test"), (&bob, "bob@x.test")] {
        let changes = history(&app, id).await;
        assert_eq!(changes[0]["kind"], "UPDATED", "{changes:?}");
        let created = changes[1]["revision"].clone();
        let answer = app.gql(RESTORE, json!({ "id": id, "revision": created })).await;
        let payload = &answer["data"]["restoreUser"];
        assert_eq!(payload["ok"], true, "{answer}");
        assert_eq!(payload["user"]["email"], email, "{answer}");
    }
    let mut emails: Vec<String> = app
        .all_users()
        .await
        .iter()
        .map(|user| user["email"].as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    assert_eq!(emails, ["ada@x.test", "bob@x.test"]);
}

#[tokio::test]
async fn a_hand_edit_is_recorded_user_by_user_as_a_file_edit() {
    let app = spawn_app().await;
    let id = app.create_ok("Cy", "cy@x.test").await;
    let mut records = app.file_records();
    records[0]["name"] = json!("Cyrus");
    records.push(json!({ "id": "by-hand", "name": "Dee", "email": "dee@x.test" }));
    std::fs::write(&app.data_file, serde_json::to_vec_pretty(&records).unwrap()).unwrap();
    eventually(WATCH_DEADLINE, "the edit is recorded", || async {
        history(&app, "by-hand").await.len() == 1
    })
    .await;
    let cy = history(&app, &id).await;
    assert_eq!(cy[0]["kind"], "UPDATED");
    assert_eq!(cy[0]["source"]["kind"], "FILE_EDIT");
    assert_eq!(cy[0]["source"]["requestId"], Value::Null);
    assert_eq!(cy[0]["before"]["name"], "Cy");
    assert_eq!(cy[0]["after"]["name"], "Cyrus");
    let dee = history(&app, "by-hand").await;
    assert_eq!(dee[0]["kind"], "CREATED");
    assert_eq!(dee[0]["source"]["kind"], "FILE_EDIT");
}

#[tokio::test]
async fn revisions_keep_growing_across_a_restart_and_the_feed_pages_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir).await;
    for n in 0..3 {
        app.create_ok("Ed", &format!("ed{n}@x.test")).await;
    }
    let before = changes(&app, None, 10).await;
    let last = revision(before["nodes"].as_array().unwrap().last().unwrap());
    // Move the files out before the first server's folder goes away with it.
    let data = keep.path().join("users.json");
    std::fs::copy(&app.data_file, &data).unwrap();
    std::fs::copy(
        app.dir.path().join("users.json.history"),
        keep.path().join("users.json.history"),
    )
    .unwrap();
    drop(app);

    let app = spawn_app_in(keep).await;
    app.create_ok("Fay", "fay@x.test").await;
    let all = changes(&app, None, 10).await;
    let revisions: Vec<u64> = all["nodes"].as_array().unwrap().iter().map(revision).collect();
    assert_eq!(revisions, [last - 2, last - 1, last, last + 1]);
    let after = changes(&app, Some(&last.to_string()), 10).await;
    assert_eq!(after["nodes"][0]["after"]["name"], "Fay");
    assert_eq!(after["pageInfo"]["hasNextPage"], false);
    let page = changes(&app, None, 2).await;
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    // Pages are capped like every connection.
    let too_big = app.gql(CHANGES, json!({ "first": 1001 })).await;
    assert!(too_big["errors"].is_array(), "{too_big}");
}

#[tokio::test]
async fn a_torn_last_line_is_set_aside_and_cut_off_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.json"), "[]").unwrap();
    let good = r#"{"revision":7,"at":"2024-05-01T10:00:00.000000Z","kind":"created","user":"g","source":{"kind":"api","credential":"none"},"before":null,"after":{"id":"g","name":"Gil","email":"gil@x.test","createdAt":null,"updatedAt":null}}"#;
    let torn = r#"{"revision":8,"at":"2024-05-01T1"#;
    std::fs::write(dir.path().join("users.json.history"), format!("{good}\n{torn}")).unwrap();
    // Long enough to keep a change of 2024.
    let app = spawn_app_in_with(dir, &["--history-retention", "36500d"]).await;
    let aside: Vec<String> = app
        .folder_entries()
        .into_iter()
        .filter(|name| name.starts_with("users.json.history.torn-"))
        .collect();
    assert_eq!(aside.len(), 1, "{:?}", app.folder_entries());
    assert_eq!(
        std::fs::read_to_string(app.dir.path().join(&aside[0])).unwrap(),
        torn
    );
    assert_eq!(
        std::fs::read_to_string(app.dir.path().join("users.json.history")).unwrap(),
        format!("{good}\n")
    );
    app.create_ok("Hal", "hal@x.test").await;
    let all = changes(&app, None, 10).await;
    let revisions: Vec<u64> = all["nodes"].as_array().unwrap().iter().map(revision).collect();
    assert_eq!(revisions, [7, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_after_a_revision_gets_every_later_change_once_while_others_write() {
    let app = spawn_app().await;
    for n in 0..5 {
        app.create_ok("Early", &format!("early{n}@x.test")).await;
    }
    let start = revision(&changes(&app, None, 10).await["nodes"][1]);
    let mut feed = Subscriber::open_query(
        &app,
        "subscription($after: String) { userEvents(after: $after) { kind revision user { email } } }",
        json!({ "after": start.to_string() }),
    )
    .await;
    // 1,000 concurrent creates: 20 writers of 50.
    let writers: Vec<_> = (0..20)
        .map(|w| {
            let client = app.client.clone();
            let url = app.url("/graphql");
            tokio::spawn(async move {
                for n in 0..50 {
                    let email = format!("w{w}-{n}@x.test");
                    let query = format!(
                        "mutation {{ createUser(userData: {{name: \"W\", email: \"{email}\"}}) {{ ok }} }}"
                    );
                    client
                        .post(&url)
                        .json(&json!({ "query": query }))
                        .send()
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let expected = 3 + 1_000;
    let mut revisions = Vec::new();
    while revisions.len() < expected {
        let (_, _, event) = feed.next_event(Duration::from_secs(10)).await.unwrap_or_else(|| {
            panic!(
                "only {} of {expected} events came: {revisions:?}",
                revisions.len()
            )
        });
        revisions.push(event["revision"].as_str().unwrap().parse::<u64>().unwrap());
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let wanted: Vec<u64> = (start + 1..=start + expected as u64).collect();
    assert_eq!(revisions, wanted);
    assert!(
        feed.next_event(Duration::from_millis(300)).await.is_none(),
        "a change came twice"
    );
}

#[tokio::test]
async fn a_purged_user_leaves_no_name_or_email_in_the_data_or_the_history() {
    let app = spawn_app().await;
    let id = app.create_ok("Secret Sam", "sam@secret.test").await;
    app.update_user(json!({ "id": id, "name": "Secret Samuel", "email": "samuel@secret.test" }))
        .await;
    let other = app.create_ok("Tess", "tess@x.test").await;
    let answer = app
        .gql(
            "mutation($id: ID!) { purgeUser(id: $id) { ok message } }",
            json!({ "id": id }),
        )
        .await;
    assert_no_errors(&answer);
    assert_eq!(answer["data"]["purgeUser"]["ok"], true, "{answer}");
    let changes = history(&app, &id).await;
    assert_eq!(changes.len(), 3, "{changes:?}");
    for change in &changes {
        assert_eq!(change["kind"], "PURGED");
        assert_eq!(change["before"], Value::Null);
        assert_eq!(change["after"], Value::Null);
        assert_eq!(change["userId"], id.as_str());
    }
    assert_eq!(history(&app, &other).await[0]["after"]["name"], "Tess");
    assert_eq!(app.all_users().await.len(), 1);
    assert_nowhere(&app, &["Secret", "secret.test"]).await;
    let again = app
        .gql(
            "mutation($id: ID!) { purgeUser(id: $id) { ok message } }",
            json!({ "id": "nobody" }),
        )
        .await;
    assert_eq!(again["data"]["purgeUser"]["ok"], false, "{again}");
}

/// Writes a user and purges another with the default retention, then starts again with a
/// retention of one second once they are older than that; `restart` starts the second
/// service.
async fn compaction_case(first: TestApp, restart: impl AsyncFnOnce(TestApp) -> TestApp) {
    let app = first;
    let old = app.create_ok("Old Olga", "olga@old.test").await;
    let secret = app.create_ok("Secret Sam", "sam@secret.test").await;
    app.update_user(json!({ "id": secret, "name": "Secret Samuel", "email": "samuel@secret.test" }))
        .await;
    purge(&app, &secret).await;
    let olga_created = history(&app, &old).await[0]["revision"].clone();
    let last = *all_revisions(&app).await.last().unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let app = restart(app).await;
    eventually(Duration::from_secs(10), "the old changes go", || async {
        all_revisions(&app).await.is_empty()
    })
    .await;
    assert!(history(&app, &old).await.is_empty());
    let nia = app.create_ok("New Nia", "nia@new.test").await;
    let kept = all_revisions(&app).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0] > last, "revision {} after {last}", kept[0]);
    assert_eq!(history(&app, &nia).await[0]["after"]["name"], "New Nia");
    let gone = app
        .gql(RESTORE, json!({ "id": old, "revision": olga_created }))
        .await;
    assert_eq!(gone["data"]["restoreUser"]["ok"], false, "{gone}");
    assert!(
        gone["data"]["restoreUser"]["message"]
            .as_str()
            .unwrap()
            .contains("no longer kept"),
        "{gone}"
    );
    assert_eq!(app.all_users().await.len(), 2);
    assert_nowhere(&app, &["Secret", "secret.test"]).await;
}

#[tokio::test]
async fn a_compaction_drops_the_old_changes_revisions_go_on_and_a_purge_stays_purged() {
    let first = spawn_app().await;
    compaction_case(first, async |app: TestApp| {
        let keep = tempfile::tempdir().unwrap();
        for file in ["users.json", "users.json.history"] {
            std::fs::copy(app.dir.path().join(file), keep.path().join(file)).unwrap();
        }
        drop(app);
        spawn_app_in_with(keep, &["--history-retention", "1s"]).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_compaction_on_postgres_drops_the_old_changes_revisions_go_on_and_a_purge_stays_purged() {
    let Some(database) = crate::helpers::scratch_database("compaction of the history").await else {
        return;
    };
    let first = spawn_replica(database.url()).await;
    compaction_case(first, async |app: TestApp| {
        drop(app);
        spawn_replica_with(database.url(), &["--history-retention", "1s"]).await
    })
    .await;
}

#[tokio::test]
async fn a_purge_removes_a_torn_history_line_that_held_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let tom = json!({ "id": "t", "name": "Torn Tom", "email": "tom@torn.test" });
    std::fs::write(dir.path().join("users.json"), json!([tom]).to_string()).unwrap();
    let torn = r#"{"revision":1,"at":"2024-05-01T10:00:00.000000Z","kind":"created","user":"t","source":{"kind":"api"},"before":null,"after":{"id":"t","name":"Torn Tom","email":"tom@tor"#;
    std::fs::write(dir.path().join("users.json.history"), torn).unwrap();
    let app = spawn_app_in(dir).await;
    assert!(
        app.folder_entries()
            .iter()
            .any(|name| name.starts_with("users.json.history.torn-")),
        "{:?}",
        app.folder_entries()
    );
    purge(&app, "t").await;
    assert_nowhere(&app, &["Torn Tom", "tom@tor"]).await;
}

crate::helpers::also_on_postgres!(
    create_update_and_delete_are_recorded_newest_first_with_request_id_and_credential,
    a_deleted_user_is_restored_and_an_update_rolled_back_as_new_restore_changes,
    a_bulk_update_of_emails_is_undone_user_by_user,
    a_purged_user_leaves_no_name_or_email_in_the_data_or_the_history,
    a_subscription_after_a_revision_gets_every_later_change_once_while_others_write,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_change_made_with_psql_is_recorded_with_source_sql() {
    let Some(database) = crate::helpers::scratch_database("history of a psql change").await else {
        return;
    };
    let app = crate::helpers::spawn_replica(database.url()).await;
    let id = app.create_ok("Ivy", "ivy@x.test").await;
    let (client, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute("UPDATE users SET name = 'Ivy by hand' WHERE id = $1", &[&id])
        .await
        .unwrap();
    let changes = history(&app, &id).await;
    let seen: Vec<(&str, &str)> = changes
        .iter()
        .map(|c| (c["kind"].as_str().unwrap(), c["source"]["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [("UPDATED", "SQL"), ("CREATED", "API")]);
    assert_eq!(changes[0]["before"]["name"], "Ivy");
    assert_eq!(changes[0]["after"]["name"], "Ivy by hand");
    assert_eq!(changes[0]["source"]["requestId"], Value::Null);
    assert!(changes[1]["source"]["requestId"].is_string(), "{:?}", changes[1]);
}

#[tokio::test]
async fn roster_history_prints_a_files_changes_and_one_users_newest_first() {
    let app = spawn_app().await;
    let id = app.create_ok("Jo", "jo@x.test").await;
    app.update_user(json!({ "id": id, "name": "Joan", "email": "jo@x.test" }))
        .await;
    app.create_ok("Kim", "kim@x.test").await;
    let run = |args: Vec<String>| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("history")
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let file = app.data_file.display().to_string();
    let all = run(vec![file.clone()]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 3, "{all}");
    assert!(
        lines[0].contains(" created ") && lines[0].contains("-> Jo <jo@x.test>"),
        "{all}"
    );
    assert!(lines[2].contains("Kim"), "{all}");
    let one = run(vec![file, "--user".into(), id]);
    let lines: Vec<&str> = one.lines().collect();
    assert_eq!(lines.len(), 2, "{one}");
    assert!(
        lines[0].contains(" updated ") && lines[0].contains("Jo <jo@x.test> -> Joan <jo@x.test>"),
        "{one}"
    );
    assert!(lines[0].contains("by api request "), "{one}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_9_mid_storm_loses_no_acknowledged_change_from_the_history() {
    use crate::helpers::spawned::RosterProcess;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    storm_case(|| RosterProcess::start(&path)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL"]
async fn a_kill_9_mid_storm_on_postgres_loses_no_acknowledged_change_from_the_history() {
    use crate::helpers::spawned::RosterProcess;
    let Some(database) = crate::helpers::scratch_database("kill -9 storm and the history").await else {
        return;
    };
    storm_case(|| RosterProcess::start_on_database(database.url())).await;
}

/// A change a storm client was told had happened.
#[derive(Clone, Debug)]
enum Acked {
    Created { id: String },
    Renamed { id: String, name: String },
    Deleted { id: String },
}

/// Starts `clients` tasks that, until the server stops answering, each create a user,
/// rename them, and delete every third, pushing each change answered `ok: true`.
fn mutation_storm(
    base: &str,
    round: usize,
    clients: usize,
    acknowledged: &std::sync::Arc<std::sync::Mutex<Vec<Acked>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|client| {
            let (base, acknowledged) = (base.to_owned(), std::sync::Arc::clone(acknowledged));
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let ask = |query: &'static str, variables: Value| {
                    let request = http
                        .post(format!("{base}/graphql"))
                        .json(&json!({ "query": query, "variables": variables }));
                    async move { request.send().await.ok()?.json::<Value>().await.ok() }
                };
                for n in 0.. {
                    let email = format!("r{round}-c{client}-{n}@crash.test");
                    let Some(answer) = ask(
                        "mutation($u: UserInput!) { createUser(userData: $u) { ok user { id } } }",
                        json!({ "u": { "name": "Crash", "email": email } }),
                    )
                    .await
                    else {
                        break;
                    };
                    let created = &answer["data"]["createUser"];
                    if created["ok"] != true {
                        continue;
                    }
                    let id = created["user"]["id"].as_str().unwrap().to_owned();
                    acknowledged
                        .lock()
                        .unwrap()
                        .push(Acked::Created { id: id.clone() });
                    let name = format!("Renamed {n}");
                    let Some(answer) = ask(
                        "mutation($u: UserInput!) { updateUser(userData: $u) { ok } }",
                        json!({ "u": { "id": id, "name": name } }),
                    )
                    .await
                    else {
                        break;
                    };
                    if answer["data"]["updateUser"]["ok"] == true {
                        acknowledged
                            .lock()
                            .unwrap()
                            .push(Acked::Renamed { id: id.clone(), name });
                    }
                    if n % 3 != 0 {
                        continue;
                    }
                    let Some(answer) = ask(
                        "mutation($id: ID!) { deleteUser(id: $id) { ok } }",
                        json!({ "id": id }),
                    )
                    .await
                    else {
                        break;
                    };
                    if answer["data"]["deleteUser"]["ok"] == true {
                        acknowledged.lock().unwrap().push(Acked::Deleted { id });
                    }
                }
            })
        })
        .collect()
}

/// Three rounds of concurrent creates, renames and deletes, each cut by `kill -9`, then:
/// every acknowledged change is in the history exactly once, revisions only grow, and
/// replaying the history from empty gives the stored users.
async fn storm_case<F, Fut>(start: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = crate::helpers::spawned::RosterProcess>,
{
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    let acknowledged = Arc::new(Mutex::new(Vec::<Acked>::new()));
    for round in 0..3 {
        let mut roster = start().await;
        let clients = mutation_storm(&roster.base, round, 6, &acknowledged);
        tokio::time::sleep(Duration::from_millis(200 + 150 * round as u64)).await;
        roster.kill9().await;
        for client in clients {
            client.await.unwrap();
        }
    }
    let roster = start().await;
    // Replayed from empty: id -> (name, email).
    let mut replayed: HashMap<String, (String, String)> = HashMap::new();
    // How often each (kind, id, name after) is recorded.
    let mut recorded: HashMap<(String, String, String), usize> = HashMap::new();
    let mut last = 0;
    let mut after: Option<String> = None;
    loop {
        let answer = roster
            .gql(
                "query($after: String) { changes(after: $after, first: 1000) {
                    nodes { revision kind userId after { name email } }
                    pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await
            .unwrap();
        assert_no_errors(&answer);
        let page = &answer["data"]["changes"];
        for change in page["nodes"].as_array().unwrap() {
            let revision = revision(change);
            assert!(revision > last, "revision {revision} after {last}");
            last = revision;
            let id = change["userId"].as_str().unwrap().to_owned();
            let kind = change["kind"].as_str().unwrap().to_owned();
            let name = change["after"]["name"].as_str().unwrap_or_default().to_owned();
            match kind.as_str() {
                "CREATED" => {
                    let email = change["after"]["email"].as_str().unwrap().to_owned();
                    let before = replayed.insert(id.clone(), (name.clone(), email));
                    assert!(before.is_none(), "{id} created twice");
                }
                "UPDATED" => {
                    let email = change["after"]["email"].as_str().unwrap().to_owned();
                    let before = replayed.insert(id.clone(), (name.clone(), email));
                    assert!(before.is_some(), "{id} updated before it was created");
                }
                "DELETED" => {
                    assert!(replayed.remove(&id).is_some(), "{id} deleted but not there");
                }
                other => panic!("a storm makes no {other} change"),
            }
            *recorded.entry((kind, id, name)).or_default() += 1;
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(
        acked.iter().any(|a| matches!(a, Acked::Deleted { .. })),
        "{acked:?}"
    );
    for change in &acked {
        let key = match change {
            Acked::Created { id } => ("CREATED", id.as_str(), "Crash"),
            Acked::Renamed { id, name } => ("UPDATED", id.as_str(), name.as_str()),
            Acked::Deleted { id } => ("DELETED", id.as_str(), ""),
        };
        let key = (key.0.to_owned(), key.1.to_owned(), key.2.to_owned());
        assert_eq!(
            recorded.get(&key).copied().unwrap_or(0),
            1,
            "acknowledged {change:?}, recorded {:?} times",
            recorded.get(&key)
        );
    }
    let answer = roster
        .gql("{ allUsers { id name email } }", json!({}))
        .await
        .unwrap();
    assert_no_errors(&answer);
    let stored: HashMap<String, (String, String)> = answer["data"]["allUsers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| {
            let text = |key: &str| user[key].as_str().unwrap().to_owned();
            (text("id"), (text("name"), text("email")))
        })
        .collect();
    assert_eq!(
        replayed, stored,
        "replaying the history does not give the stored users"
    );
}
