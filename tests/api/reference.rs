//! The first eight scenarios: health, the JSON-only guard, a corrupt file read as an empty
//! list, a duplicate email, search and fuzzy search finding Bob and Bobby, update, delete,
//! and a bulk update with an unknown id beside an external edit seen by the watcher.
//! Each gets its own service, and the watcher check polls for 2 s instead of sleeping past
//! the 5 s TTL.

use serde_json::{Value, json};

use crate::helpers::{names_of, spawn_app, spawn_app_with_users};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_ok_with_a_timestamp() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let data: Value = response.json().await.unwrap();
    assert_eq!(data["status"], "ok", "{data}");
    assert!(data["timestamp"].is_string(), "{data}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_rejects_a_non_json_request() {
    let app = spawn_app().await;
    let response = app.post_raw("query{}", Some("text/plain")).await;
    assert_ne!(response.status(), 200);
    assert_eq!(response.status(), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_json_file_reads_as_an_empty_list() {
    // Start with a user so that an empty answer can only come from reading the broken file.
    let app = spawn_app_with_users(&json!([
        { "id": "u1", "name": "Ann", "email": "ann@x.com" }
    ]))
    .await;
    assert_eq!(app.all_users().await.len(), 1);
    std::fs::write(&app.data_file, "not a json").unwrap();
    app.wait_for_names("the corrupted file", |names| names.is_empty())
        .await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ allUsers { id name email } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["allUsers"], json!([]), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_user_then_the_same_email_again_is_refused() {
    let app = spawn_app().await;
    let create = r#"
        mutation {
          createUser(userData: {name: "Alice", email: "alice@example.com"}) {
            ok message user { id name email }
          }
        }
    "#;
    let first = app.gql(create, json!({})).await;
    let res1 = &first["data"]["createUser"];
    assert_eq!(res1["ok"], true, "{first}");
    assert_eq!(res1["user"]["name"], "Alice", "{first}");

    let second = app.gql(create, json!({})).await;
    let res2 = &second["data"]["createUser"];
    assert_eq!(res2["ok"], false, "{second}");
    assert!(
        res2["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Email exists"),
        "{second}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_fuzzy_find_bob_and_bobby() {
    let app = spawn_app().await;
    for (name, email) in [("Bob", "bob@example.com"), ("Bobby", "bobby@example.com")] {
        let q = format!(
            r#"mutation {{ createUser(userData: {{name: "{name}", email: "{email}"}}) {{ user {{ id name email }} }} }}"#
        );
        let answer = app.gql(&q, json!({})).await;
        assert!(answer["data"]["createUser"]["user"]["id"].is_string(), "{answer}");
    }

    let exact = app
        .gql(r#"{ allUsers(search: "Bob") { name } }"#, json!({}))
        .await;
    let names = names_of(&exact["data"]["allUsers"]);
    assert!(
        names.contains(&"Bob".to_owned()) && names.contains(&"Bobby".to_owned()),
        "{names:?}"
    );

    let fuzzy = app
        .gql(
            r#"{ allUsers(fuzzy: "Bbo", maxDistance: 1) { name } }"#,
            json!({}),
        )
        .await;
    let names2 = names_of(&fuzzy["data"]["allUsers"]);
    assert!(
        names2.contains(&"Bob".to_owned()) && names2.contains(&"Bobby".to_owned()),
        "{names2:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_user_changes_a_user_and_refuses_an_unknown_id() {
    let app = spawn_app().await;
    let created = app
        .gql(
            r#"mutation { createUser(userData: {name: "Carol", email: "carol@example.com"}) { user { id } } }"#,
            json!({}),
        )
        .await;
    let user_id = created["data"]["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let update = format!(
        r#"mutation {{ updateUser(userData: {{id: "{user_id}", name: "Caroline", email: "caroline@example.com"}}) {{ ok user {{ name email }} }} }}"#
    );
    let answer = app.gql(&update, json!({})).await;
    let data2 = &answer["data"]["updateUser"];
    assert_eq!(data2["ok"], true, "{answer}");
    assert_eq!(data2["user"]["name"], "Caroline", "{answer}");

    let missing = app
        .gql(
            r#"mutation { updateUser(userData: {id: "no-id", name: "X", email: "x@example.com"}) { ok message } }"#,
            json!({}),
        )
        .await;
    assert_eq!(missing["data"]["updateUser"]["ok"], false, "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_user_removes_a_user_and_refuses_a_second_time() {
    let app = spawn_app().await;
    let created = app
        .gql(
            r#"mutation { createUser(userData: {name: "Dave", email: "dave@example.com"}) { user { id } } }"#,
            json!({}),
        )
        .await;
    let user_id = created["data"]["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let delete = format!(r#"mutation {{ deleteUser(id: "{user_id}") {{ ok message }} }}"#);
    let first = app.gql(&delete, json!({})).await;
    assert_eq!(first["data"]["deleteUser"]["ok"], true, "{first}");
    let again = app.gql(&delete, json!({})).await;
    assert_eq!(again["data"]["deleteUser"]["ok"], false, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_update_reports_the_unknown_id_and_the_watcher_sees_an_external_edit() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for name in ["E1", "E2"] {
        let q = format!(
            r#"mutation {{ createUser(userData: {{name: "{name}", email: "{}@x.com"}}) {{ user {{ id }} }} }}"#,
            name.to_lowercase()
        );
        let answer = app.gql(&q, json!({})).await;
        ids.push(
            answer["data"]["createUser"]["user"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    let updates = format!(
        r#"{{id: "{}", email: "n1@x.com"}},{{id: "{}", email: "n2@x.com"}},{{id: "bad", email: "z@z.com"}}"#,
        ids[0], ids[1]
    );
    let bulk = format!("mutation {{ bulkUpdateEmails(updates: [{updates}]) {{ ok updatedCount failed }} }}");
    let answer = app.gql(&bulk, json!({})).await;
    let bu = &answer["data"]["bulkUpdateEmails"];
    assert_eq!(bu["updatedCount"], 2, "{answer}");
    assert!(
        bu["failed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap_or_default().contains("bad not found")),
        "{answer}"
    );

    // The file watcher: an external edit is seen well before the 5 s TTL.
    assert_eq!(app.all_users().await.len(), 2);
    std::fs::write(&app.data_file, "[]").unwrap();
    app.wait_for_names("the external edit to []", |names| names.is_empty())
        .await;
    let after = app.gql("{ allUsers { id } }", json!({})).await;
    assert_eq!(after["data"]["allUsers"], json!([]), "{after}");
}

// The scenarios above that are not about the file itself, over PostgreSQL too.
crate::helpers::also_on_postgres!(
    health_answers_ok_with_a_timestamp,
    graphql_rejects_a_non_json_request,
    create_user_then_the_same_email_again_is_refused,
    search_and_fuzzy_find_bob_and_bobby,
    update_user_changes_a_user_and_refuses_an_unknown_id,
    delete_user_removes_a_user_and_refuses_a_second_time,
);
