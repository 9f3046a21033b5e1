//! Who may read and write (docs/src/operations.md, Tokens): bearer tokens over HTTP and the
//! WebSocket, the upgrade's `Origin` check, CORS, and what `/health` shows.

use serde_json::{Value, json};

use crate::helpers::ws::{next_frame, open_socket, send_json};
use crate::helpers::{TestApp, error_codes, spawn_app, spawn_app_with_flags};

const CREATE: &str = r#"mutation { createUser(userData: {name: "Eve", email: "eve@x.com"}) { ok } }"#;
const LIST: &str = "{ allUsers { name } }";

async fn post(app: &TestApp, query: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST /graphql");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.expect("a JSON answer");
    (status, challenge, body)
}

fn assert_unauthenticated((status, challenge, body): &(u16, Option<String>, Value)) {
    assert_eq!(*status, 401, "{body}");
    assert!(
        challenge.as_deref().is_some_and(|c| c.starts_with("Bearer")),
        "{challenge:?}"
    );
    assert_eq!(error_codes(body), ["UNAUTHENTICATED"], "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_token_guards_mutations_and_leaves_reads_open() {
    let app = spawn_app_with_flags(&json!([]), &["--write-token", "w-secret"]).await;
    assert_unauthenticated(&post(&app, CREATE, None).await);
    assert_unauthenticated(&post(&app, CREATE, Some("wrong")).await);
    assert!(app.file_records().is_empty(), "a refused mutation wrote");
    let (status, _, body) = post(&app, CREATE, Some("w-secret")).await;
    assert_eq!(
        (status, &body["data"]["createUser"]["ok"]),
        (200, &json!(true)),
        "{body}"
    );
    let (status, _, body) = post(&app, LIST, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["allUsers"], json!([{ "name": "Eve" }]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_guards_every_operation_and_the_write_token_also_reads() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("write-token");
    std::fs::write(&token_file, "w-secret\n").unwrap();
    let app = spawn_app_with_flags(
        &json!([]),
        &[
            "--read-token",
            "r-secret",
            "--write-token-file",
            token_file.to_str().unwrap(),
        ],
    )
    .await;
    assert_unauthenticated(&post(&app, LIST, None).await);
    assert_unauthenticated(&post(&app, LIST, Some("nope")).await);
    assert_eq!(post(&app, LIST, Some("r-secret")).await.0, 200);
    assert_eq!(post(&app, LIST, Some("w-secret")).await.0, 200);
    assert_unauthenticated(&post(&app, CREATE, Some("r-secret")).await);
    assert_eq!(post(&app, CREATE, Some("w-secret")).await.0, 200);
    assert_eq!(app.file_records().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_stays_open_but_shows_only_status_and_time_without_the_read_token() {
    let app = spawn_app_with_flags(&json!([]), &["--read-token", "r-secret"]).await;
    let anonymous: Value = app.get("/health").await.json().await.unwrap();
    let keys: Vec<&String> = anonymous.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["status", "timestamp"], "{anonymous}");
    let with_token = app.client.get(app.url("/health")).bearer_auth("r-secret");
    let full: Value = with_token.send().await.unwrap().json().await.unwrap();
    assert!(full.get("dataFile").is_some(), "{full}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_refuses_a_foreign_browser_origin_with_a_coded_403() {
    let app = spawn_app_with_flags(&json!([]), &["--cors-origin", "https://app.example"]).await;
    match open_socket(&app, &[("Origin", "https://evil.example")]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(error_codes(&body), ["FORBIDDEN"], "{body}");
        }
        other => panic!("a foreign origin was let in: {:?}", other.map(|_| ())),
    }
    let own = app.base.clone();
    for origin in [None, Some(own.as_str()), Some("https://app.example")] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        let mut socket = open_socket(&app, &headers)
            .await
            .unwrap_or_else(|err| panic!("{origin:?}: {err}"));
        send_json(&mut socket, json!({ "type": "connection_init" })).await;
        assert_eq!(
            next_frame(&mut socket).await.unwrap().unwrap()["type"],
            "connection_ack"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_needs_the_read_token_in_connection_init_or_is_closed_with_4403() {
    let app = spawn_app_with_flags(
        &json!([]),
        &["--read-token", "r-secret", "--write-token", "w-secret"],
    )
    .await;
    let mut socket = open_socket(&app, &[]).await.expect("upgrade");
    send_json(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(next_frame(&mut socket).await, Some(Err(4403)));

    let mut socket = open_socket(&app, &[]).await.expect("upgrade");
    send_json(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer r-secret" } }),
    )
    .await;
    assert_eq!(
        next_frame(&mut socket).await.unwrap().unwrap()["type"],
        "connection_ack"
    );
    send_json(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": LIST } }),
    )
    .await;
    let answer = next_frame(&mut socket).await.unwrap().unwrap();
    assert_eq!(answer["payload"]["data"]["allUsers"], json!([]), "{answer}");
    let _complete = next_frame(&mut socket).await;
    send_json(
        &mut socket,
        json!({ "id": "2", "type": "subscribe", "payload": { "query": CREATE } }),
    )
    .await;
    let refused = next_frame(&mut socket).await.unwrap().unwrap();
    let codes: Vec<&str> = refused["payload"]
        .as_array()
        .or_else(|| refused["payload"]["errors"].as_array())
        .unwrap_or_else(|| panic!("{refused}"))
        .iter()
        .map(|e| e["extensions"]["code"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(codes, ["UNAUTHENTICATED"], "{refused}");
    assert!(
        app.file_records().is_empty(),
        "a mutation without the write token wrote"
    );

    let mut socket = open_socket(&app, &[("Authorization", "Bearer w-secret")])
        .await
        .expect("upgrade");
    send_json(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        next_frame(&mut socket).await.unwrap().unwrap()["type"],
        "connection_ack"
    );
    send_json(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": CREATE } }),
    )
    .await;
    let answer = next_frame(&mut socket).await.unwrap().unwrap();
    assert_eq!(answer["payload"]["data"]["createUser"]["ok"], true, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_in_the_upgrade_is_a_coded_401() {
    let app = spawn_app_with_flags(&json!([]), &["--write-token", "w-secret"]).await;
    match open_socket(&app, &[("Authorization", "Bearer nope")]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a wrong token was let in: {:?}", other.map(|_| ())),
    }
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type, authorization")
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default_and_allows_exactly_the_listed_origins() {
    let closed = spawn_app().await;
    let response = preflight(&closed, "https://app.example").await;
    assert!(response.headers().get("access-control-allow-origin").is_none());

    let app = spawn_app_with_flags(&json!([]), &["--cors-origin", "https://app.example"]).await;
    let response = preflight(&app, "https://app.example").await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );

    let response = preflight(&app, "https://evil.example").await;
    assert!(response.headers().get("access-control-allow-origin").is_none());

    let response = app
        .client
        .post(app.url("/graphql"))
        .header("Origin", "https://app.example")
        .json(&json!({ "query": LIST }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_read_token_when_one_is_set_and_are_open_otherwise() {
    let guarded = spawn_app_with_flags(
        &json!([]),
        &["--read-token", "r-secret", "--write-token", "w-secret"],
    )
    .await;
    let anonymous = guarded.get("/metrics").await;
    let challenge = anonymous
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = anonymous.status().as_u16();
    let body: Value = anonymous.json().await.expect("a JSON refusal");
    assert_unauthenticated(&(status, challenge, body));
    for token in ["r-secret", "w-secret"] {
        let scraped = guarded
            .client
            .get(guarded.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(scraped.status(), 200, "with {token}");
        assert!(
            scraped
                .text()
                .await
                .unwrap()
                .contains("roster_graphql_subscribers")
        );
    }
    let write_only = spawn_app_with_flags(&json!([]), &["--write-token", "w-secret"]).await;
    assert_eq!(write_only.get("/metrics").await.status(), 200);
}
