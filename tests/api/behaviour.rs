//! The schema's behaviour (docs/src/graphql.md): payload messages, validation, case-insensitive
//! uniqueness, bulk updates, search, fuzzy ranking, pagination, argument errors, wire
//! timestamps, and the depth limit next to the standard introspection query.

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_no_errors, assert_utc_micros, error_codes, spawn_app, spawn_app_with_users,
};

fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn message(payload: &Value) -> &str {
    payload["message"].as_str().unwrap_or_default()
}

/// Asserts that a refused mutation left both the file and the API as they were.
async fn assert_unchanged(app: &TestApp, file_before: &[u8], users_before: &[Value]) {
    assert_eq!(
        String::from_utf8_lossy(&app.file_bytes()),
        String::from_utf8_lossy(file_before),
        "a refused input changed the file"
    );
    assert_eq!(
        app.all_users().await,
        users_before,
        "a refused input changed allUsers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_user_returns_the_new_user_with_an_id_and_microsecond_utc_timestamps() {
    let app = spawn_app().await;
    let before = chrono::Utc::now();
    let payload = app.create_user("Alice", "alice@example.com").await;
    let after = chrono::Utc::now();
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(message(&payload), "User created.");
    let user = &payload["user"];
    assert!(is_uuid(user["id"].as_str().unwrap_or_default()), "{user}");
    assert_eq!(user["name"], "Alice");
    assert_eq!(user["email"], "alice@example.com");
    let created = assert_utc_micros(&user["createdAt"]);
    assert_eq!(user["createdAt"], user["updatedAt"], "{user}");
    let slack = chrono::Duration::seconds(2);
    assert!(created >= before - slack && created <= after + slack, "{user}");

    let listed = app.all_users().await;
    assert_eq!(listed, std::slice::from_ref(user));
    let record = &app.file_records()[0];
    assert_eq!(record["id"], user["id"]);
    assert_eq!(record["created_at"], user["createdAt"], "{record}");
    assert_eq!(record["updated_at"], user["updatedAt"], "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_user_trims_the_name_and_the_email() {
    let app = spawn_app().await;
    let payload = app.create_user("  Alice Smith \t", "  alice@example.com\n").await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(payload["user"]["name"], "Alice Smith");
    assert_eq!(payload["user"]["email"], "alice@example.com");
    let record = &app.file_records()[0];
    assert_eq!(record["name"], "Alice Smith");
    assert_eq!(record["email"], "alice@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_user_ignores_an_id_given_by_the_client() {
    let app = spawn_app().await;
    let answer = app
        .gql(
            "mutation($u: UserInput!) { createUser(userData: $u) { ok user { id } } }",
            json!({ "u": { "id": "chosen-by-me", "name": "Ann", "email": "ann@x.com" } }),
        )
        .await;
    assert_no_errors(&answer);
    let id = answer["data"]["createUser"]["user"]["id"]
        .as_str()
        .unwrap_or_default();
    assert_ne!(id, "chosen-by-me", "{answer}");
    assert!(is_uuid(id), "{answer}");
    assert_eq!(app.file_records()[0]["id"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_user_rejects_a_duplicate_email_in_any_case_and_with_spaces() {
    let app = spawn_app().await;
    app.create_ok("Alice", "alice@example.com").await;
    let file_before = app.file_bytes();
    let users_before = app.all_users().await;
    for email in ["alice@example.com", "ALICE@Example.COM", "  Alice@example.com  "] {
        let payload = app.create_user("Another", email).await;
        assert_eq!(payload["ok"], false, "{email}: {payload}");
        assert_eq!(message(&payload), "Email exists.", "{email}");
        assert_eq!(payload["user"], Value::Null, "{payload}");
    }
    assert_unchanged(&app, &file_before, &users_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_user_rejects_an_empty_or_overlong_name_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_ok("Existing", "existing@x.com").await;
    let file_before = app.file_bytes();
    let users_before = app.all_users().await;
    for name in [String::new(), "   ".into(), "\t\n".into(), "n".repeat(201)] {
        let payload = app.create_user(&name, "fresh@x.com").await;
        assert_eq!(payload["ok"], false, "{name:?}: {payload}");
        assert!(
            message(&payload).starts_with("Invalid name:"),
            "{name:?}: {payload}"
        );
        assert_eq!(payload["user"], Value::Null, "{payload}");
    }
    assert_unchanged(&app, &file_before, &users_before).await;

    let longest = "n".repeat(200);
    let payload = app.create_user(&format!(" {longest} "), "fresh@x.com").await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(payload["user"]["name"], longest.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_user_rejects_a_malformed_email_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_ok("Existing", "existing@x.com").await;
    let file_before = app.file_bytes();
    let users_before = app.all_users().await;
    let overlong = format!("{}@example.com", "a".repeat(254 - "@example.com".len() + 1));
    assert_eq!(overlong.len(), 255);
    for email in [
        "",
        "   ",
        "no-at-sign",
        "@example.com",
        "alice@",
        "a@b@example.com",
        "a@@example.com",
        "al ice@example.com",
        "alice@exa mple.com",
        "alice\t@example.com",
        overlong.as_str(),
    ] {
        let payload = app.create_user("Someone", email).await;
        assert_eq!(payload["ok"], false, "{email:?}: {payload}");
        assert!(
            message(&payload).starts_with("Invalid email:"),
            "{email:?}: {payload}"
        );
        assert_eq!(payload["user"], Value::Null, "{payload}");
    }
    assert_unchanged(&app, &file_before, &users_before).await;

    let longest = format!("{}@example.com", "a".repeat(254 - "@example.com".len()));
    assert_eq!(longest.len(), 254);
    let payload = app.create_user("Longest", &longest).await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(payload["user"]["email"], longest.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_user_changes_name_and_email_keeps_created_at_and_moves_updated_at() {
    let app = spawn_app().await;
    let created = app.create_user("Carol", "carol@example.com").await;
    let id = created["user"]["id"].as_str().unwrap();
    let payload = app
        .update_user(json!({ "id": id, "name": " Caroline ", "email": " caroline@example.com " }))
        .await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(message(&payload), "User updated.");
    let user = &payload["user"];
    assert_eq!(user["id"], id);
    assert_eq!(user["name"], "Caroline");
    assert_eq!(user["email"], "caroline@example.com");
    assert_eq!(user["createdAt"], created["user"]["createdAt"], "{user}");
    let updated = assert_utc_micros(&user["updatedAt"]);
    assert!(updated >= assert_utc_micros(&user["createdAt"]), "{user}");

    let answer = app
        .gql(
            "query($id: ID!) { userById(id: $id) { name email } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        answer["data"]["userById"],
        json!({ "name": "Caroline", "email": "caroline@example.com" })
    );
    let record = &app.file_records()[0];
    assert_eq!(record["name"], "Caroline");
    assert_eq!(record["updated_at"], user["updatedAt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_user_may_keep_its_own_email_in_another_case() {
    let app = spawn_app().await;
    let id = app.create_ok("Carol", "carol@example.com").await;
    let payload = app
        .update_user(json!({ "id": id, "name": "Carol", "email": "CAROL@example.com" }))
        .await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(payload["user"]["email"], "CAROL@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_user_without_an_id_is_refused() {
    let app = spawn_app().await;
    app.create_ok("Carol", "carol@example.com").await;
    let file_before = app.file_bytes();
    let users_before = app.all_users().await;
    let payload = app
        .update_user(json!({ "name": "Nobody", "email": "nobody@example.com" }))
        .await;
    assert_eq!(payload["ok"], false, "{payload}");
    assert_eq!(message(&payload), "An id is required to update a user.");
    assert_unchanged(&app, &file_before, &users_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_user_of_an_unknown_id_answers_not_found() {
    let app = spawn_app().await;
    app.create_ok("Carol", "carol@example.com").await;
    let file_before = app.file_bytes();
    let users_before = app.all_users().await;
    let payload = app
        .update_user(json!({ "id": "no-id", "name": "X", "email": "x@example.com" }))
        .await;
    assert_eq!(payload["ok"], false, "{payload}");
    assert_eq!(message(&payload), "Not found.");
    assert_eq!(payload["user"], Value::Null);
    assert_unchanged(&app, &file_before, &users_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_user_rejects_an_email_another_user_has_in_any_case() {
    let app = spawn_app().await;
    app.create_ok("Alice", "alice@example.com").await;
    let bob = app.create_ok("Bob", "bob@example.com").await;
    let file_before = app.file_bytes();
    let users_before = app.all_users().await;
    for email in ["alice@example.com", " ALICE@example.com "] {
        let payload = app
            .update_user(json!({ "id": bob, "name": "Bob", "email": email }))
            .await;
        assert_eq!(payload["ok"], false, "{email}: {payload}");
        assert_eq!(message(&payload), "Email in use.");
    }
    assert_unchanged(&app, &file_before, &users_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_user_rejects_an_invalid_name_or_email_and_changes_nothing() {
    let app = spawn_app().await;
    let id = app.create_ok("Carol", "carol@example.com").await;
    let file_before = app.file_bytes();
    let users_before = app.all_users().await;
    let payload = app
        .update_user(json!({ "id": id, "name": "  ", "email": "carol2@example.com" }))
        .await;
    assert_eq!(payload["ok"], false, "{payload}");
    assert!(message(&payload).starts_with("Invalid name:"), "{payload}");
    let payload = app
        .update_user(json!({ "id": id, "name": "Carol", "email": "carol at example.com" }))
        .await;
    assert_eq!(payload["ok"], false, "{payload}");
    assert!(message(&payload).starts_with("Invalid email:"), "{payload}");
    assert_unchanged(&app, &file_before, &users_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_user_names_the_deleted_user_and_then_answers_not_found() {
    let app = spawn_app().await;
    let dave = app.create_ok("Dave", "dave@example.com").await;
    app.create_ok("Erin", "erin@example.com").await;
    let payload = app.delete_user(&dave).await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(message(&payload), "Deleted Dave");
    let answer = app
        .gql(
            "query($id: ID!) { userById(id: $id) { id } }",
            json!({ "id": dave }),
        )
        .await;
    assert_eq!(answer["data"]["userById"], Value::Null, "{answer}");
    let emails: Vec<Value> = app.file_records().iter().map(|r| r["email"].clone()).collect();
    assert_eq!(emails, [json!("erin@example.com")]);

    let again = app.delete_user(&dave).await;
    assert_eq!(again["ok"], false, "{again}");
    assert_eq!(message(&again), "Not found.");
    // The freed email can be taken again.
    app.create_ok("Dave Again", "DAVE@example.com").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_update_emails_applies_items_in_order_and_reports_each_failure() {
    let app = spawn_app().await;
    let a = app.create_ok("A", "a@x.com").await;
    let b = app.create_ok("B", "b@x.com").await;
    let c = app.create_ok("C", "c@x.com").await;
    let payload = app
        .bulk_update(json!([
            { "id": a, "email": "new-a@x.com" },
            { "id": "ghost", "email": "ghost@x.com" },
            { "id": b, "email": "not-an-email" },
            { "id": c, "email": " NEW-A@x.com " },
            { "id": b, "email": " b2@x.com " },
        ]))
        .await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(payload["updatedCount"], 2, "{payload}");
    assert_eq!(
        payload["failed"],
        json!([
            "ghost not found",
            format!("{b} invalid email"),
            format!("{c} email in use")
        ]),
        "{payload}"
    );
    assert!(payload.get("message").is_some(), "{payload}");
    let emails: Vec<Value> = app.file_records().iter().map(|r| r["email"].clone()).collect();
    assert_eq!(
        emails,
        [json!("new-a@x.com"), json!("b2@x.com"), json!("c@x.com")]
    );
    let listed: Vec<Value> = app.all_users().await.iter().map(|u| u["email"].clone()).collect();
    assert_eq!(listed, emails);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_update_emails_refuses_the_second_item_taking_the_first_items_new_email() {
    let app = spawn_app().await;
    let a = app.create_ok("A", "a@x.com").await;
    let b = app.create_ok("B", "b@x.com").await;
    let payload = app
        .bulk_update(json!([
            { "id": a, "email": "shared@x.com" },
            { "id": b, "email": "SHARED@x.com" },
        ]))
        .await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(payload["updatedCount"], 1, "{payload}");
    assert_eq!(
        payload["failed"],
        json!([format!("{b} email in use")]),
        "{payload}"
    );
    let emails: Vec<Value> = app.file_records().iter().map(|r| r["email"].clone()).collect();
    assert_eq!(emails, [json!("shared@x.com"), json!("b@x.com")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_update_emails_sees_an_email_freed_by_an_earlier_item_of_the_batch() {
    let app = spawn_app().await;
    let a = app.create_ok("A", "a@x.com").await;
    let b = app.create_ok("B", "b@x.com").await;
    let payload = app
        .bulk_update(json!([
            { "id": b, "email": "b-new@x.com" },
            { "id": a, "email": "b@x.com" },
        ]))
        .await;
    assert_eq!(payload["updatedCount"], 2, "{payload}");
    assert_eq!(payload["failed"], json!([]), "{payload}");
    let emails: Vec<Value> = app.file_records().iter().map(|r| r["email"].clone()).collect();
    assert_eq!(emails, [json!("b@x.com"), json!("b-new@x.com")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_update_emails_refuses_an_email_another_user_has() {
    let app = spawn_app().await;
    let a = app.create_ok("A", "a@x.com").await;
    app.create_ok("B", "b@x.com").await;
    let file_before = app.file_bytes();
    let payload = app.bulk_update(json!([{ "id": a, "email": "B@X.com" }])).await;
    assert_eq!(payload["ok"], false, "nothing was applied: {payload}");
    assert_eq!(payload["updatedCount"], 0, "{payload}");
    assert_eq!(
        payload["failed"],
        json!([format!("{a} email in use")]),
        "{payload}"
    );
    let records = app.file_records();
    assert_eq!(records[0]["email"], "a@x.com");
    assert_eq!(records[1]["email"], "b@x.com");
    let after: Value = serde_json::from_slice(&app.file_bytes()).unwrap();
    let before: Value = serde_json::from_slice(&file_before).unwrap();
    assert_eq!(after, before, "a batch with no applied item changed the file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_update_emails_of_an_empty_list_updates_nothing() {
    let app = spawn_app().await;
    app.create_ok("A", "a@x.com").await;
    let payload = app.bulk_update(json!([])).await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(payload["updatedCount"], 0, "{payload}");
    assert_eq!(payload["failed"], json!([]), "{payload}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_update_emails_that_applies_nothing_is_not_ok_and_says_why() {
    let app = spawn_app().await;
    let a = app.create_ok("A", "a@x.com").await;
    let mut updates: Vec<Value> = (0..40)
        .map(|n| json!({ "id": format!("ghost-{n}"), "email": format!("g{n}@x.com") }))
        .collect();
    updates.push(json!({ "id": a, "email": "not an email" }));
    updates.push(json!({ "id": a, "email": "still not" }));
    let payload = app.bulk_update(Value::Array(updates)).await;
    assert_eq!(payload["ok"], false, "{payload}");
    assert_eq!(payload["updatedCount"], 0, "{payload}");
    let said = message(&payload);
    for words in ["Nothing", "42", "40 unknown ids", "2 invalid emails"] {
        assert!(said.contains(words), "{words:?} not in {said:?}");
    }

    let invalid: Vec<Value> = (0..30)
        .map(|n| json!({ "id": a, "email": format!("bad {n}") }))
        .collect();
    let answer = app
        .gql(
            "mutation($u: [EmailUpdateInput!]!) { bulkUpdateEmails(updates: $u, dryRun: true) { ok updatedCount dryRun message } }",
            json!({ "u": invalid }),
        )
        .await;
    assert_no_errors(&answer);
    let dry = &answer["data"]["bulkUpdateEmails"];
    assert_eq!(
        (&dry["ok"], &dry["updatedCount"], &dry["dryRun"]),
        (&json!(false), &json!(0), &json!(true)),
        "{dry}"
    );
    let said = message(dry);
    assert!(
        said.contains("30 invalid emails") && said.contains("nothing"),
        "{said}"
    );
    assert_eq!(app.all_users().await[0]["email"], "a@x.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_update_emails_counts_each_user_once_however_many_items_name_it() {
    let app = spawn_app().await;
    let a = app.create_ok("A", "a@x.com").await;
    let b = app.create_ok("B", "b@x.com").await;
    let mut updates: Vec<Value> = (0..300)
        .map(|n| json!({ "id": a, "email": format!("a{n}@x.com") }))
        .collect();
    updates.push(json!({ "id": b, "email": "b@x.com" }));
    updates.push(json!({ "id": b, "email": "b@x.com" }));
    let payload = app.bulk_update(Value::Array(updates)).await;
    assert_eq!(payload["ok"], true, "{payload}");
    assert_eq!(payload["updatedCount"], 2, "A changed, B already so: {payload}");
    assert_eq!(payload["failed"], json!([]), "{payload}");
    let emails: Vec<Value> = app.all_users().await.iter().map(|u| u["email"].clone()).collect();
    assert_eq!(emails, ["a299@x.com", "b@x.com"], "the last item for a user wins");
}

fn seed() -> Value {
    json!([
        { "id": "1", "name": "Robert", "email": "robert@mail.test" },
        { "id": "2", "name": "Zed", "email": "zed@mail.test" },
        { "id": "3", "name": "Bob", "email": "bob@mail.test" },
        { "id": "4", "name": "Rob", "email": "rob@mail.test" },
        { "id": "5", "name": "Alice", "email": "alice@elsewhere.test" },
        { "id": "6", "name": "Zoë", "email": "z@mail.test" },
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_users_search_is_a_case_insensitive_substring_of_name_or_email() {
    let app = spawn_app_with_users(&seed()).await;
    assert_eq!(app.names(r#"(search: "ROB")"#).await, ["Robert", "Rob"]);
    assert_eq!(app.names(r#"(search: "Elsewhere")"#).await, ["Alice"]);
    assert_eq!(app.names(r#"(search: "b@MAIL")"#).await, ["Bob", "Rob"]);
    assert_eq!(app.names(r#"(search: "nobody")"#).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_users_fuzzy_finds_bob_and_bobby_for_bbo_at_distance_one() {
    let app = spawn_app_with_users(&json!([
        { "id": "1", "name": "Bobby", "email": "bobby@example.com" },
        { "id": "2", "name": "Alice", "email": "alice@example.com" },
        { "id": "3", "name": "Bob", "email": "bob@example.com" },
    ]))
    .await;
    // Both at distance 1 (a transposition), so in file order.
    assert_eq!(
        app.names(r#"(fuzzy: "Bbo", maxDistance: 1)"#).await,
        ["Bobby", "Bob"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_users_fuzzy_lists_the_best_match_first_and_ties_in_file_order() {
    let app = spawn_app_with_users(&seed()).await;
    // Bob is exact; Robert ("rob" prefix) and Rob are one substitution away.
    assert_eq!(
        app.names(r#"(fuzzy: "bob", maxDistance: 1)"#).await,
        ["Bob", "Robert", "Rob"]
    );
    assert_eq!(
        app.names(r#"(fuzzy: "rob", maxDistance: 0)"#).await,
        ["Robert", "Rob"]
    );
    assert_eq!(app.names(r#"(fuzzy: "qqqqqq")"#).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_users_fuzzy_defaults_to_a_distance_of_two() {
    let app = spawn_app_with_users(&seed()).await;
    assert_eq!(app.names(r#"(fuzzy: "bobxy")"#).await, ["Bob"]);
    assert_eq!(
        app.names(r#"(fuzzy: "bobxy", maxDistance: 1)"#).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_users_fuzzy_counts_characters_not_bytes() {
    let app = spawn_app_with_users(&seed()).await;
    assert_eq!(app.names(r#"(fuzzy: "zoe", maxDistance: 1)"#).await, ["Zoë"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_users_applies_search_and_fuzzy_together() {
    let app = spawn_app_with_users(&json!([
        { "id": "1", "name": "Bob", "email": "bob@mail.test" },
        { "id": "2", "name": "Bobby", "email": "bobby@other.test" },
    ]))
    .await;
    assert_eq!(
        app.names(r#"(fuzzy: "bbo", maxDistance: 1)"#).await,
        ["Bob", "Bobby"]
    );
    assert_eq!(
        app.names(r#"(search: "other", fuzzy: "bbo", maxDistance: 1)"#)
            .await,
        ["Bobby"]
    );
    assert_eq!(
        app.names(r#"(search: "nothing", fuzzy: "bbo", maxDistance: 1)"#)
            .await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_users_pages_with_offset_then_limit_over_the_filtered_list() {
    let app = spawn_app_with_users(&json!([
        { "id": "0", "name": "U0", "email": "u0@x.com" },
        { "id": "1", "name": "U1", "email": "u1@x.com" },
        { "id": "2", "name": "Other", "email": "other@y.com" },
        { "id": "3", "name": "U3", "email": "u3@x.com" },
        { "id": "4", "name": "U4", "email": "u4@x.com" },
    ]))
    .await;
    assert_eq!(app.names("(offset: 1, limit: 2)").await, ["U1", "Other"]);
    assert_eq!(app.names("(limit: 0)").await, Vec::<String>::new());
    assert_eq!(app.names("(limit: null)").await.len(), 5);
    assert_eq!(app.names("(limit: 2)").await, ["U0", "U1"]);
    assert_eq!(app.names("(offset: 3)").await, ["U3", "U4"]);
    assert_eq!(app.names("(offset: 10)").await, Vec::<String>::new());
    assert_eq!(app.names("(offset: 0, limit: 100)").await.len(), 5);
    assert_eq!(
        app.names(r#"(search: "x.com", offset: 1, limit: 2)"#).await,
        ["U1", "U3"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_users_refuses_out_of_range_arguments_as_bad_user_input() {
    let app = spawn_app_with_users(&seed()).await;
    let too_long = "a".repeat(257);
    let cases = [
        "(limit: -1)".to_owned(),
        "(offset: -1)".to_owned(),
        r#"(fuzzy: "bob", maxDistance: -1)"#.to_owned(),
        r#"(fuzzy: "bob", maxDistance: 11)"#.to_owned(),
        format!(r#"(fuzzy: "{too_long}")"#),
    ];
    for args in &cases {
        let answer = app
            .gql(&format!("{{ allUsers{args} {{ name }} }}"), json!({}))
            .await;
        let codes = error_codes(&answer);
        assert!(
            !codes.is_empty() && codes.iter().all(|c| c == "BAD_USER_INPUT"),
            "{args}: {answer}"
        );
        let data = &answer["data"];
        assert!(data.is_null() || data["allUsers"].is_null(), "{args}: {answer}");
    }
    // The edges of the ranges are accepted.
    let longest = "a".repeat(256);
    for args in [
        r#"(fuzzy: "bob", maxDistance: 0)"#.to_owned(),
        r#"(fuzzy: "bob", maxDistance: 10)"#.to_owned(),
        format!(r#"(fuzzy: "{longest}")"#),
        "(limit: 0, offset: 0)".to_owned(),
    ] {
        let answer = app
            .gql(&format!("{{ allUsers{args} {{ name }} }}"), json!({}))
            .await;
        assert_no_errors(&answer);
        assert!(answer["data"]["allUsers"].is_array(), "{args}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_by_id_returns_the_user_or_null() {
    let app = spawn_app_with_users(&seed()).await;
    let answer = app
        .gql(
            r#"{ known: userById(id: "3") { id name email } unknown: userById(id: "nope") { id } }"#,
            json!({}),
        )
        .await;
    assert_no_errors(&answer);
    assert_eq!(
        answer["data"]["known"],
        json!({ "id": "3", "name": "Bob", "email": "bob@mail.test" })
    );
    assert_eq!(answer["data"]["unknown"], Value::Null);
}

const INTROSPECTION_QUERY: &str = r#"
    query IntrospectionQuery {
      __schema {
        queryType { name }
        mutationType { name }
        subscriptionType { name }
        types {
          ...FullType
        }
        directives {
          name
          description
          locations
          args {
            ...InputValue
          }
        }
      }
    }

    fragment FullType on __Type {
      kind
      name
      description
      fields(includeDeprecated: true) {
        name
        description
        args {
          ...InputValue
        }
        type {
          ...TypeRef
        }
        isDeprecated
        deprecationReason
      }
      inputFields {
        ...InputValue
      }
      interfaces {
        ...TypeRef
      }
      enumValues(includeDeprecated: true) {
        name
        description
        isDeprecated
        deprecationReason
      }
      possibleTypes {
        ...TypeRef
      }
    }

    fragment InputValue on __InputValue {
      name
      description
      type { ...TypeRef }
      defaultValue
    }

    fragment TypeRef on __Type {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType {
                    kind
                    name
                  }
                }
              }
            }
          }
        }
      }
    }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_introspection_query_works_under_the_limits() {
    let app = spawn_app().await;
    let answer = app.gql(INTROSPECTION_QUERY, json!({})).await;
    assert_no_errors(&answer);
    let schema = &answer["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query", "{schema}");
    assert_eq!(schema["mutationType"]["name"], "Mutation", "{schema}");
    let types: Vec<&str> = schema["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for name in [
        "User",
        "UserInput",
        "EmailUpdateInput",
        "CreateUserPayload",
        "BulkUpdateEmailsPayload",
    ] {
        assert!(types.contains(&name), "{name} missing from {types:?}");
    }
    let query = schema["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Query")
        .unwrap();
    let all_users = query["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "allUsers")
        .unwrap_or_else(|| panic!("no allUsers: {query}"));
    let max_distance = all_users["args"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "maxDistance")
        .unwrap_or_else(|| panic!("no maxDistance: {all_users}"));
    assert_eq!(max_distance["defaultValue"], "2", "{max_distance}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_nested_deeper_than_twenty_levels_is_refused() {
    let app = spawn_app().await;
    let levels = 25;
    let query = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(levels),
        "} ".repeat(levels)
    );
    let answer = app.gql(&query, json!({})).await;
    let errors = answer["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("not refused: {answer}"));
    assert!(!errors.is_empty(), "{answer}");
    assert!(answer["data"].is_null(), "{answer}");

    // The same shape within the limit runs.
    let shallow = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(10),
        "} ".repeat(10)
    );
    assert_no_errors(&app.gql(&shallow, json!({})).await);
}

// Every rule above gives the same answers over PostgreSQL (docs/src/storage.md).
crate::helpers::also_on_postgres!(
    create_user_returns_the_new_user_with_an_id_and_microsecond_utc_timestamps,
    create_user_trims_the_name_and_the_email,
    create_user_ignores_an_id_given_by_the_client,
    create_user_rejects_a_duplicate_email_in_any_case_and_with_spaces,
    create_user_rejects_an_empty_or_overlong_name_and_changes_nothing,
    create_user_rejects_a_malformed_email_and_changes_nothing,
    update_user_changes_name_and_email_keeps_created_at_and_moves_updated_at,
    update_user_may_keep_its_own_email_in_another_case,
    update_user_without_an_id_is_refused,
    update_user_of_an_unknown_id_answers_not_found,
    update_user_rejects_an_email_another_user_has_in_any_case,
    update_user_rejects_an_invalid_name_or_email_and_changes_nothing,
    delete_user_names_the_deleted_user_and_then_answers_not_found,
    bulk_update_emails_applies_items_in_order_and_reports_each_failure,
    bulk_update_emails_refuses_the_second_item_taking_the_first_items_new_email,
    bulk_update_emails_sees_an_email_freed_by_an_earlier_item_of_the_batch,
    bulk_update_emails_refuses_an_email_another_user_has,
    bulk_update_emails_of_an_empty_list_updates_nothing,
    bulk_update_emails_that_applies_nothing_is_not_ok_and_says_why,
    bulk_update_emails_counts_each_user_once_however_many_items_name_it,
    all_users_search_is_a_case_insensitive_substring_of_name_or_email,
    all_users_fuzzy_finds_bob_and_bobby_for_bbo_at_distance_one,
    all_users_fuzzy_lists_the_best_match_first_and_ties_in_file_order,
    all_users_fuzzy_defaults_to_a_distance_of_two,
    all_users_fuzzy_counts_characters_not_bytes,
    all_users_applies_search_and_fuzzy_together,
    all_users_pages_with_offset_then_limit_over_the_filtered_list,
    all_users_refuses_out_of_range_arguments_as_bad_user_input,
    user_by_id_returns_the_user_or_null,
    the_standard_introspection_query_works_under_the_limits,
    a_query_nested_deeper_than_twenty_levels_is_refused,
);
