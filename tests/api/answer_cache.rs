//! The answer cache over real HTTP (docs/src/graphql.md, Caching): a read asked again on the
//! same snapshot is answered from memory, and nothing the cache keeps outlives a change, is
//! shared between credentials, or hides an error.

use serde_json::{Value, json};

use crate::helpers::spawned::{RosterProcess, serve_command};
use crate::helpers::{TestApp, WATCH_DEADLINE, eventually, spawn_app_with_flags, spawn_app_with_users};

const NAMES: &str = "{ allUsers { name } }";

fn names(answer: &Value) -> Vec<String> {
    answer["data"]["allUsers"]
        .as_array()
        .unwrap_or_else(|| panic!("no users: {answer}"))
        .iter()
        .map(|user| user["name"].as_str().unwrap().to_owned())
        .collect()
}

fn two_users() -> Value {
    json!([
        {"id": "1", "name": "Ada", "email": "ada@example.com"},
        {"id": "2", "name": "Bob", "email": "bob@example.com"},
    ])
}

/// `POST /graphql` with `token` as a bearer token: the status and the answer.
async fn post_with(app: &TestApp, query: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

const HITS: &str = "roster_answer_cache_hits_total";

#[tokio::test]
async fn a_write_makes_the_next_read_fresh() {
    let app = spawn_app_with_users(&two_users()).await;
    let hits = app.metric(HITS).await;
    // The store publishes its indexed snapshot shortly after it starts, which empties the
    // cache once: ask until two answers came from it. (The recorder is shared with every
    // other test's server: at least these two hits.)
    eventually(
        std::time::Duration::from_secs(10),
        "the repeated read answered again",
        || async {
            assert_eq!(names(&app.gql(NAMES, json!({})).await), ["Ada", "Bob"]);
            app.metric(HITS).await >= hits + 2.0
        },
    )
    .await;
    app.create_ok("Cy", "cy@example.com").await;
    assert_eq!(names(&app.gql(NAMES, json!({})).await), ["Ada", "Bob", "Cy"]);
    let renamed = app
        .gql(
            r#"mutation { updateUser(userData: {id: "1", name: "Ada L", email: "ada@example.com"}) { ok } }"#,
            json!({}),
        )
        .await;
    assert_eq!(renamed["data"]["updateUser"]["ok"], true, "{renamed}");
    assert_eq!(names(&app.gql(NAMES, json!({})).await), ["Ada L", "Bob", "Cy"]);
    app.delete_user("2").await;
    assert_eq!(names(&app.gql(NAMES, json!({})).await), ["Ada L", "Cy"]);
    // The same read over GET, kept apart from POST's, is fresh too.
    let over_get: Value = app
        .get("/graphql?query=%7B%20allUsers%20%7B%20name%20%7D%20%7D")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&over_get), ["Ada L", "Cy"]);
}

#[tokio::test]
async fn an_edit_of_the_file_by_someone_else_makes_the_next_read_fresh() {
    let app = spawn_app_with_users(&two_users()).await;
    assert_eq!(names(&app.gql(NAMES, json!({})).await), ["Ada", "Bob"]);
    assert_eq!(names(&app.gql(NAMES, json!({})).await), ["Ada", "Bob"]);
    let mut edited = two_users();
    edited[1]["name"] = json!("Bea");
    std::fs::write(&app.data_file, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
    eventually(WATCH_DEADLINE * 5, "the edit to show", || async {
        names(&app.gql(NAMES, json!({})).await) == ["Ada", "Bea"]
    })
    .await;
}

#[tokio::test]
async fn variables_and_the_operation_name_are_part_of_what_is_remembered() {
    let app = spawn_app_with_users(&two_users()).await;
    let query = "query($n: Int) { allUsers(limit: $n) { name } }";
    for _ in 0..2 {
        assert_eq!(names(&app.gql(query, json!({"n": 1})).await), ["Ada"]);
        assert_eq!(names(&app.gql(query, json!({"n": 2})).await), ["Ada", "Bob"]);
    }
    let two = "query One { allUsers(limit: 1) { name } } query Two { allUsers(limit: 2) { name } }";
    for _ in 0..2 {
        for (operation, expected) in [("One", vec!["Ada"]), ("Two", vec!["Ada", "Bob"])] {
            let answer: Value = app
                .client
                .post(app.url("/graphql"))
                .json(&json!({ "query": two, "operationName": operation }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(names(&answer), expected, "{operation}");
        }
    }
}

#[tokio::test]
async fn an_answer_kept_for_one_credential_is_never_given_to_another() {
    let app = spawn_app_with_flags(
        &two_users(),
        &["--read-token", "r-secret", "--write-token", "w-secret"],
    )
    .await;
    for token in ["r-secret", "w-secret", "r-secret", "w-secret"] {
        let (status, answer) = post_with(&app, NAMES, Some(token)).await;
        assert_eq!((status, names(&answer)), (200, vec!["Ada".into(), "Bob".into()]));
    }
    for token in [None, Some("wrong"), Some("r-secre")] {
        let (status, answer) = post_with(&app, NAMES, token).await;
        assert_eq!(status, 401, "{token:?}: {answer}");
        assert!(answer.get("data").is_none(), "{token:?}: {answer}");
    }
    // A mutation is never answered from a read's entry, and the read sees it afterwards.
    let (status, answer) = post_with(
        &app,
        r#"mutation { createUser(userData: {name: "Cy", email: "cy@example.com"}) { ok } }"#,
        Some("r-secret"),
    )
    .await;
    assert!(status != 200 || answer["errors"].is_array(), "{answer}");
    let (_, answer) = post_with(
        &app,
        r#"mutation { createUser(userData: {name: "Cy", email: "cy@example.com"}) { ok } }"#,
        Some("w-secret"),
    )
    .await;
    assert_eq!(answer["data"]["createUser"]["ok"], true, "{answer}");
    let (_, answer) = post_with(&app, NAMES, Some("r-secret")).await;
    assert_eq!(names(&answer), ["Ada", "Bob", "Cy"]);
}

#[tokio::test]
async fn a_partial_answer_with_an_error_is_run_and_counted_every_time() {
    let app = spawn_app_with_users(&two_users()).await;
    let name = format!("CachePartial{}", uuid::Uuid::new_v4().simple());
    let query =
        format!("query {name}($l: Int) {{ a: allUsers {{ name }} b: allUsers(limit: $l) {{ name }} }}");
    // One clean run first: only an operation that ran cleanly earns its own label.
    let clean = app.gql(&query, json!({ "l": 1 })).await;
    assert!(clean.get("errors").is_none(), "{clean}");
    for _ in 0..3 {
        let answer = app.gql(&query, json!({ "l": -1 })).await;
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{answer}"
        );
        assert_eq!(answer["data"]["a"].as_array().map(Vec::len), Some(2), "{answer}");
    }
    let errored = format!("roster_graphql_requests_total{{operation=\"{name}\",outcome=\"error\"}}");
    let ok = format!("roster_graphql_requests_total{{operation=\"{name}\",outcome=\"ok\"}}");
    assert_eq!(app.metric(&errored).await, 3.0);
    assert_eq!(app.metric(&ok).await, 1.0);
}

#[tokio::test]
async fn an_answer_given_again_is_counted_like_the_first() {
    let app = spawn_app_with_users(&two_users()).await;
    let name = format!("CacheCounted{}", uuid::Uuid::new_v4().simple());
    let query = format!("query {name} {{ allUsers {{ name }} }}");
    for _ in 0..4 {
        assert_eq!(names(&app.gql(&query, json!({})).await), ["Ada", "Bob"]);
    }
    assert!(app.metric(HITS).await >= 3.0);
    let ok = format!("roster_graphql_requests_total{{operation=\"{name}\",outcome=\"ok\"}}");
    let latencies = format!("roster_graphql_request_duration_seconds_count{{operation=\"{name}\"}}");
    assert_eq!(app.metric(&ok).await, 4.0);
    assert_eq!(app.metric(&latencies).await, 4.0);
}

#[tokio::test]
async fn the_history_is_read_afresh_every_time() {
    let app = spawn_app_with_users(&two_users()).await;
    let query = "{ changes { edges { node { revision } } } allUsers { name } }";
    let count = |answer: &Value| answer["data"]["changes"]["edges"].as_array().map(Vec::len);
    let before = count(&app.gql(query, json!({})).await);
    assert_eq!(count(&app.gql(query, json!({})).await), before);
    app.create_ok("Cy", "cy@example.com").await;
    let after = count(&app.gql(query, json!({})).await);
    assert_eq!(after, before.map(|n| n + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_is_one_log_line_with_its_fields_also_when_answered_again() {
    use crate::helpers::spawned::{RosterProcess, serve_command, strip_ansi};
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("users.json");
    std::fs::write(&data_file, serde_json::to_vec(&two_users()).unwrap()).unwrap();
    let mut command = serve_command(&data_file);
    command.env("RUST_LOG", "info");
    let server = RosterProcess::spawn(command).await;
    for _ in 0..2 {
        let answer = server
            .gql("{ allUsers(limit: 1) { name } }", json!({}))
            .await
            .expect("POST /graphql");
        assert_eq!(names(&answer), ["Ada"]);
    }
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{status}; stderr:\n{stderr}");
    let stderr = strip_ansi(&stderr);
    let request_lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains(" request ") || line.contains(": request"))
        .filter(|line| line.contains("/graphql"))
        .collect();
    assert_eq!(request_lines.len(), 2, "{stderr}");
    for line in request_lines {
        assert!(line.contains("fields=allUsers{limit: 1}"), "{line}");
    }
    assert!(
        !stderr.contains("graphql field"),
        "a read logged a field line:\n{stderr}"
    );
}

#[tokio::test]
async fn a_search_estimated_big_but_answered_small_is_kept_too() {
    // A search over 2,000 users is estimated as if it matched them all, so it reserves from
    // the memory budget and is written in chunks; the few it finds are still kept.
    let dir = tempfile::tempdir().expect("a temp dir");
    let data_file = dir.path().join("users.json");
    let users: Vec<Value> = (0..2_000)
        .map(|n| {
            let name = if n % 100 == 0 {
                format!("Needle {n}")
            } else {
                format!("Hay {n}")
            };
            json!({ "id": n.to_string(), "name": name, "email": format!("u{n}@example.com") })
        })
        .collect();
    std::fs::write(&data_file, Value::Array(users).to_string()).expect("the data file");
    // Its own process: the hit counter is then this server's alone.
    let process = RosterProcess::spawn(serve_command(&data_file)).await;
    let query = r#"{ allUsers(search: "needle") { id name email createdAt } }"#;
    let first = process.gql(query, json!({})).await.expect("an answer");
    let found = first["data"]["allUsers"].as_array().map(Vec::len);
    assert_eq!(found, Some(20), "{first}");
    assert_eq!(process.metric(HITS).await, 0.0);
    // The store publishes its indexed snapshot shortly after it starts, which empties the
    // cache once: ask again until an answer came from it.
    eventually(
        std::time::Duration::from_secs(10),
        "the search answered from the cache",
        || async {
            let again = process.gql(query, json!({})).await.expect("an answer");
            assert_eq!(again, first);
            process.metric(HITS).await >= 1.0
        },
    )
    .await;
}
