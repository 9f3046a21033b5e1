//! Hostile input: each attack that could stall the service, exhaust it or make it
//! answer megabytes, over real HTTP and a real WebSocket, asserting the refusal or the
//! cut-off and that `/health` still answers. Loops are bounded; deadlines are generous and
//! only ever bound a wait, never assert a speed.

use std::time::Duration;

use async_graphql::futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::ws::{next_frame, open_socket, refused_socket, send_json};
use crate::helpers::{TestApp, error_codes, spawn_app, spawn_app_with_flags};

/// How long any single wait in these tests may last before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// `count` users `user0 <user0@example.com>`, … as the data file holds them.
pub fn many_users(count: usize) -> Value {
    Value::Array(
        (0..count)
            .map(|n| json!({ "id": format!("id-{n}"), "name": format!("user{n}"), "email": format!("user{n}@example.com") }))
            .collect(),
    )
}

/// POSTs a GraphQL query and returns the status and the JSON answer.
pub async fn post_query(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(body)
        .send()
        .await
        .expect("POST /graphql");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let answer =
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("{status}: not JSON ({err}): {text}"));
    (status, answer)
}

/// Asserts `/health` answers 200 within [`PATIENCE`].
pub async fn assert_healthy(app: &TestApp) {
    let health = tokio::time::timeout(PATIENCE, app.get("/health"))
        .await
        .expect("/health answered in time");
    assert_eq!(health.status(), 200);
}

/// The first error's message, asserting every error is coded `code`.
fn refusal(answer: &Value, code: &str) -> String {
    let codes = error_codes(answer);
    assert!(!codes.is_empty() && codes.iter().all(|c| c == code), "{answer}");
    answer["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `count` aliases `a0`, `a1`, … of the field `field(n)` writes, in braces.
fn aliased(count: usize, field: impl Fn(usize) -> String) -> String {
    let fields: Vec<String> = (0..count).map(|n| format!("a{n}: {}", field(n))).collect();
    format!("{{ {} }}", fields.join(" "))
}

/// A fragment fan-out: each of `levels` fragments spreads the next one twice, the last
/// selects `leaf`. Expanded, it selects 2^levels leaves.
fn fan_out(levels: usize, leaf: &str) -> String {
    let mut query = String::from("query { ...F0 }");
    for level in 0..levels {
        query.push_str(&format!(
            " fragment F{level} on Query {{ ...F{n} ...F{n} }}",
            n = level + 1
        ));
    }
    query.push_str(&format!(" fragment F{levels} on Query {{ {leaf} }}"));
    query
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragment_fan_out_under_a_kilobyte_is_refused_before_any_expansion() {
    let app = spawn_app().await;
    for query in [fan_out(24, "__typename"), fan_out(30, "allUsers { id }")] {
        assert!(query.len() < 2_048, "{}", query.len());
        let health = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_healthy(&app).await;
        };
        let body = json!({ "query": query });
        let attack = tokio::time::timeout(PATIENCE, post_query(&app, &body));
        let ((status, answer), ()) = tokio::join!(async { attack.await.expect("answered in time") }, health);
        assert_eq!(status, 200);
        let message = refusal(&answer, "BAD_USER_INPUT");
        assert!(
            message.contains("fields") || message.contains("nest"),
            "{message}"
        );
    }
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_cycles_and_deep_spread_chains_are_refused() {
    let app = spawn_app().await;
    let cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
    let (_, answer) = post_query(&app, &json!({ "query": cycle })).await;
    assert!(
        refusal(&answer, "BAD_USER_INPUT").contains("spreads itself"),
        "{answer}"
    );

    let mut chain = String::from("query { ...F0 }");
    for n in 0..5_000 {
        chain.push_str(&format!(" fragment F{n} on Query {{ ...F{} }}", n + 1));
    }
    chain.push_str(" fragment F5000 on Query { __typename }");
    let (_, answer) = post_query(&app, &json!({ "query": chain })).await;
    assert!(refusal(&answer, "BAD_USER_INPUT").contains("nest"), "{answer}");
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_aliases_of_every_user_are_refused_and_of_small_pages_answered() {
    let app = spawn_app_with_flags(&many_users(10_000), &[]).await;
    let aliases = |field: &str| -> String {
        let body: Vec<String> = (0..300).map(|n| format!("a{n}: {field} {{ id }}")).collect();
        format!("{{ {} }}", body.join(" "))
    };
    let (status, answer) = post_query(&app, &json!({ "query": aliases("allUsers") })).await;
    assert_eq!(status, 200);
    let message = refusal(&answer, "BAD_USER_INPUT");
    assert!(message.contains("values"), "{message}");

    let (_, answer) = post_query(&app, &json!({ "query": aliases("allUsers(limit: 5)") })).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let data = answer["data"].as_object().expect("data");
    assert_eq!(data.len(), 300);
    assert_eq!(data["a299"].as_array().map(Vec::len), Some(5));

    let (_, answer) = post_query(&app, &json!({ "query": "{ allUsers { id name email } }" })).await;
    assert_eq!(
        answer["data"]["allUsers"].as_array().map(Vec::len),
        Some(10_000),
        "the full list still works"
    );
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliased_searches_are_counted_by_the_users_they_scan() {
    let app = spawn_app_with_flags(&many_users(2_000), &[]).await;
    let aliases = |count: usize, field: &str| aliased(count, |_| format!("{field} {{ id }}"));
    // Each typo-tolerant scan of 2,000 users at maxDistance 10 costs milliseconds; a hundred
    // of them in a 7 KB request would cost a second of CPU for five answers each.
    let fuzzy = r#"allUsers(fuzzy: "usr12", maxDistance: 10, limit: 5)"#;
    let (status, answer) = post_query(&app, &json!({ "query": aliases(100, fuzzy) })).await;
    assert_eq!(status, 200);
    let message = refusal(&answer, "BAD_USER_INPUT");
    assert!(message.contains("--max-query-scan"), "{message}");
    let (_, answer) = post_query(&app, &json!({ "query": aliases(1, fuzzy) })).await;
    assert_eq!(answer["data"]["a0"].as_array().map(Vec::len), Some(5), "{answer}");

    // Plain searches cost a scan each, fuzzy ones more, through variables too.
    let app = spawn_app_with_flags(&many_users(2_000), &["--max-query-scan", "10000"]).await;
    let search = r#"allUsers(search: "user1", limit: 5)"#;
    let (_, answer) = post_query(&app, &json!({ "query": aliases(5, search) })).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let (_, answer) = post_query(&app, &json!({ "query": aliases(6, search) })).await;
    refusal(&answer, "BAD_USER_INPUT");
    // A batch shares one request's budget: one search of six operations is refused.
    let batch: Vec<Value> = (0..6).map(|_| json!({ "query": aliases(1, search) })).collect();
    let (_, answers) = post_query(&app, &Value::Array(batch)).await;
    let answers = answers.as_array().expect("a batch answers an array");
    let refused: Vec<&Value> = answers
        .iter()
        .filter(|answer| answer.get("errors").is_some())
        .collect();
    assert_eq!(refused.len(), 1, "{answers:?}");
    let message = refusal(refused[0], "BAD_USER_INPUT");
    assert!(message.contains("batch"), "{message}");
    let by_variable = json!({
        "query": "query($s: String) { a: users(search: $s, first: 5) { nodes { id } } b: allUsers(fuzzy: $s) { id } c: allUsers(search: $s, limit: 1) { id } }",
        "variables": { "s": "user1" },
    });
    let (_, answer) = post_query(&app, &by_variable).await;
    refusal(&answer, "BAD_USER_INPUT");
    let (_, answer) = post_query(
        &app,
        &json!({ "query": by_variable["query"], "variables": { "s": null } }),
    )
    .await;
    assert!(answer.get("errors").is_none(), "no search, no scan: {answer}");
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_pages_cost_their_page_and_searched_ones_the_users_they_sort() {
    let app = spawn_app_with_flags(&many_users(2_000), &["--max-query-scan", "100000"]).await;
    let pages = |count: usize, arguments: &str| {
        aliased(count, |_| {
            format!("users(first: 1{arguments}) {{ nodes {{ id }} }}")
        })
    };
    // A page without a search walks its order's index: a hundred of them scan nobody.
    let by_name = ", orderBy: {field: NAME, direction: DESC}";
    let (_, answer) = post_query(&app, &json!({ "query": pages(100, by_name) })).await;
    assert_eq!(
        answer["data"]["a99"]["nodes"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );
    // With a search, every user is compared (1) and the matches sorted (10 by text):
    // 2,000 users × 11 per page, so four pages fit 100,000 and five do not.
    let searched = r#", search: "user", orderBy: {field: NAME}"#;
    let (_, answer) = post_query(&app, &json!({ "query": pages(4, searched) })).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let (_, answer) = post_query(&app, &json!({ "query": pages(5, searched) })).await;
    let message = refusal(&answer, "BAD_USER_INPUT");
    assert!(message.contains("--max-query-scan"), "{message}");
    // Matches in time order cost less to sort (2), through a variable too: eight fit.
    let by_variable = format!(
        "query($o: UserOrderInput) {}",
        pages(8, r#", search: "user", orderBy: $o"#)
    );
    let (_, answer) = post_query(
        &app,
        &json!({ "query": by_variable, "variables": { "o": { "field": "EMAIL" } } }),
    )
    .await;
    refusal(&answer, "BAD_USER_INPUT");
    for order in [json!(null), json!({ "field": "UPDATED_AT", "direction": "DESC" })] {
        let (_, answer) = post_query(
            &app,
            &json!({ "query": by_variable, "variables": { "o": order } }),
        )
        .await;
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliased_mutations_are_counted_by_the_users_each_write_rewrites() {
    // Each mutation is a commit that writes every user again: 50 aliased creates, a 4 KB
    // request, took 2.7 s at 100,000 users.
    let app = spawn_app_with_flags(&many_users(2_000), &["--max-query-scan", "100000"]).await;
    let creates = |count: usize, tag: &str| {
        let fields = aliased(count, |n| {
            format!(r#"createUser(userData: {{name: "New", email: "{tag}{n}@x.com"}}) {{ ok }}"#)
        });
        format!("mutation {fields}")
    };
    // The first write is what any mutation costs; each further one is 2,000 users × 10:
    // six creates fit 100,000, seven do not, and none of the seven is made.
    let (_, answer) = post_query(&app, &json!({ "query": creates(7, "seven") })).await;
    let message = refusal(&answer, "BAD_USER_INPUT");
    assert!(message.contains("--max-query-scan"), "{message}");
    let (_, answer) = post_query(&app, &json!({ "query": creates(6, "six") })).await;
    assert_eq!(answer["data"]["a5"]["ok"], true, "{answer}");
    let (_, answer) = post_query(&app, &json!({ "query": r#"{ a: userByEmail(email: "seven0@x.com") { id } b: userByEmail(email: "six5@x.com") { id } }"# })).await;
    assert!(
        answer["data"]["a"].is_null() && answer["data"]["b"].is_object(),
        "{answer}"
    );
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_queries_are_refused_before_parsing_and_a_syntax_error_answers_a_short_excerpt() {
    let app = spawn_app().await;
    for n in 0..3 {
        let query = format!("{{ {} b{n} }}", "a ".repeat(500_000));
        let (status, answer) = post_query(&app, &json!({ "query": query })).await;
        assert_eq!(status, 200);
        assert!(refusal(&answer, "BAD_USER_INPUT").contains("tokens"), "{answer}");
    }
    let fields = format!("{{ {} }}", "a ".repeat(5_000));
    let (_, answer) = post_query(&app, &json!({ "query": fields })).await;
    assert!(refusal(&answer, "BAD_USER_INPUT").contains("fields"), "{answer}");

    let broken = format!("{{ allUsers(search: \"{}\") {{ id }} ( }}", "x".repeat(1_000_000));
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": broken }))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(text.len() < 2_048, "a syntax error answered {} bytes", text.len());
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert!(
        refusal(&answer, "BAD_USER_INPUT").starts_with("Syntax error at line 1"),
        "{answer}"
    );
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brackets_nested_past_the_limit_are_refused_before_parsing() {
    let app = spawn_app().await;
    let query = format!(
        "{{ allUsers(search: {}\"x\"{}) {{ id }} }}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (_, answer) = post_query(&app, &json!({ "query": query })).await;
    assert!(refusal(&answer, "BAD_USER_INPUT").contains("nest"), "{answer}");
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_message_over_a_mebibyte_closes_the_socket_with_1009() {
    let app = spawn_app().await;
    let mut socket = open_socket(&app, &[]).await.expect("upgrade");
    send_json(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        next_frame(&mut socket).await.unwrap().unwrap()["type"],
        "connection_ack"
    );
    let query = format!("{{ {} }}", "a ".repeat(5 * 1024 * 1024));
    let _ = socket
        .send(Message::text(
            json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }).to_string(),
        ))
        .await;
    assert_eq!(
        next_frame(&mut socket).await,
        Some(Err(u16::from(CloseCode::Size)))
    );
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_cost_limits_apply_over_the_websocket() {
    let app = spawn_app_with_flags(&many_users(2_000), &[]).await;
    let mut socket = open_socket(&app, &[]).await.expect("upgrade");
    send_json(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        next_frame(&mut socket).await.unwrap().unwrap()["type"],
        "connection_ack"
    );
    let aliases: Vec<String> = (0..300).map(|n| format!("a{n}: allUsers {{ id }}")).collect();
    let query = format!("{{ {} }}", aliases.join(" "));
    send_json(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
    let message = next_frame(&mut socket).await.unwrap().unwrap();
    let errors = message["payload"]
        .as_array()
        .or_else(|| message["payload"]["errors"].as_array())
        .unwrap_or_else(|| panic!("no errors: {message}"));
    let codes: Vec<&str> = errors
        .iter()
        .map(|e| e["extensions"]["code"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(codes, ["BAD_USER_INPUT"], "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_past_the_cap_on_one_websocket_are_refused_until_one_ends() {
    let app = spawn_app_with_flags(&json!([]), &["--max-websocket-operations", "3"]).await;
    let mut socket = open_socket(&app, &[]).await.expect("upgrade");
    send_json(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        next_frame(&mut socket).await.unwrap().unwrap()["type"],
        "connection_ack"
    );
    let subscribe = |id: &str| json!({ "id": id, "type": "subscribe", "payload": { "query": "subscription { userEvents { kind user { email } } }" } });
    for id in ["1", "2", "3", "4"] {
        send_json(&mut socket, subscribe(id)).await;
    }
    // Subscriptions say nothing until an event, so the next message is the refusal.
    let refusal = next_frame(&mut socket).await.unwrap().unwrap();
    assert_eq!(
        (&refusal["type"], &refusal["id"]),
        (&json!("error"), &json!("4")),
        "{refusal}"
    );
    let errors = refusal["payload"].as_array().expect("errors");
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT", "{refusal}");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("at most 3"),
        "{refusal}"
    );

    // Ending one frees its place.
    send_json(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    send_json(&mut socket, subscribe("5")).await;
    let (_, created) = post_query(
        &app,
        &json!({ "query": r#"mutation { createUser(userData: {name: "Ann", email: "ann@x.com"}) { ok } }"# }),
    )
    .await;
    assert_eq!(created["data"]["createUser"]["ok"], true, "{created}");
    let mut heard = Vec::new();
    while heard.len() < 3 {
        let message = next_frame(&mut socket).await.unwrap().unwrap();
        if message == json!({ "type": "complete", "id": "1" }) {
            continue; // the server confirms the end of the one we ended
        }
        assert_eq!(message["type"], "next", "{message}");
        heard.push(message["id"].as_str().unwrap().to_owned());
    }
    heard.sort();
    assert_eq!(heard, ["2", "3", "5"]);
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_without_connection_init_is_closed_with_4408() {
    let app = spawn_app_with_flags(&json!([]), &["--ws-init-timeout", "0.5"]).await;
    let mut socket = open_socket(&app, &[]).await.expect("upgrade");
    assert_eq!(next_frame(&mut socket).await, Some(Err(4408)));
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_past_the_cap_are_refused_with_a_coded_503() {
    let app = spawn_app_with_flags(&json!([]), &["--max-websockets", "2"]).await;
    let _first = open_socket(&app, &[]).await.expect("first");
    let _second = open_socket(&app, &[]).await.expect("second");
    let (status, body) = refused_socket(&app).await;
    assert_eq!(status, 503);
    assert_eq!(error_codes(&body), ["UNAVAILABLE"], "{body}");
    drop(_first);
    crate::helpers::eventually(PATIENCE, "a slot frees when a socket closes", || async {
        open_socket(&app, &[]).await.is_ok()
    })
    .await;
}

/// Reads from a raw connection until it closes, returning what came; fails after [`PATIENCE`].
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open: {}",
        String::from_utf8_lossy(&received)
    );
    String::from_utf8_lossy(&received).into_owned()
}

async fn raw(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_cut_off() {
    let app = spawn_app_with_flags(&json!([]), &["--header-timeout", "0.5"]).await;
    let mut slow = raw(&app).await;
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let silent = raw(&app).await;
    assert_healthy(&app).await;
    let received = read_until_closed(&mut slow).await;
    assert!(!received.contains("200"), "{received}");
    let mut silent = silent;
    read_until_closed(&mut silent).await;
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_64_kib_are_refused_and_smaller_ones_served() {
    let app = spawn_app().await;
    let request = |padding: usize| {
        format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(padding)
        )
    };
    let mut fits = raw(&app).await;
    fits.write_all(request(32 * 1024).as_bytes()).await.unwrap();
    let received = read_until_closed(&mut fits).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");

    let mut too_large = raw(&app).await;
    // The server may close before reading it all; what counts is that it never serves it.
    let _ = too_large.write_all(request(100 * 1024).as_bytes()).await;
    let received = read_until_closed(&mut too_large).await;
    assert!(
        received.is_empty() || received.starts_with("HTTP/1.1 431"),
        "{received}"
    );
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_finishes_answers_a_coded_408_and_closes() {
    let app = spawn_app_with_flags(&json!([]), &["--body-timeout", "0.5"]).await;
    let mut slow = raw(&app).await;
    slow.write_all(
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{\"query\"",
    )
    .await
    .unwrap();
    let received = read_until_closed(&mut slow).await;
    assert!(received.starts_with("HTTP/1.1 408"), "{received}");
    assert!(received.contains("REQUEST_TIMEOUT"), "{received}");
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_with_flags(&json!([]), &["--idle-timeout", "0.5"]).await;
    let mut idle = raw(&app).await;
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut idle).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_closes() {
    let app = spawn_app_with_flags(&json!([]), &["--max-connections", "4", "--header-timeout", "60"]).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(raw(&app).await);
    }
    // Give the server a moment to accept all four; the fifth must then wait.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::new();
    let waiting = client
        .get(app.url("/health"))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(
        waiting.is_err(),
        "a fifth connection was served past the cap of four"
    );
    idle.pop();
    assert_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_error_is_coded_json() {
    let app = spawn_app().await;
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (
            app.client
                .post(app.url("/graphql"))
                .header("content-type", "application/json")
                .body("{"),
            400,
        ),
        (
            app.client
                .post(app.url("/graphql"))
                .header("content-type", "text/plain")
                .body("{}"),
            415,
        ),
        (
            app.client
                .post(app.url("/graphql"))
                .header("content-type", "application/json")
                .body(vec![b' '; 1_048_577]),
            413,
        ),
        (app.client.get(app.url("/nowhere")), 404),
        (app.client.delete(app.url("/graphql")), 405),
        (
            app.client
                .get(app.url("/graphql"))
                .header("upgrade", "websocket")
                .header("connection", "upgrade"),
            400,
        ),
    ];
    for (request, expected) in cases {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, expected, "{text}");
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("{status}: not JSON ({err}): {text:?}"));
        let codes = error_codes(&body);
        assert!(
            !codes.is_empty() && codes.iter().all(|c| !c.is_empty()),
            "{status}: {body}"
        );
    }
    let (status, body) = {
        let response = app.post_raw("{}", Some("text/plain")).await;
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };
    assert_eq!(status, 415);
    assert_eq!(body["errors"][0]["message"], "Only 'application/json' supported.");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_is_a_coded_400_not_a_413() {
    let app = spawn_app().await;
    let mut stream = raw(&app).await;
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    let received = read_until_closed(&mut stream).await;
    assert!(received.starts_with("HTTP/1.1 400"), "{received}");
    assert!(received.contains("\"BAD_REQUEST\""), "{received}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_emails_with_control_or_invisible_characters_are_refused_with_the_rule() {
    let app = spawn_app().await;
    for (name, email, rule) in [
        ("Bob\u{0}", "bob@x.com", "control characters"),
        ("\u{1b}[2JBob", "bob@x.com", "control characters"),
        ("\u{200B}\u{200D}", "bob@x.com", "visible character"),
        ("Bob", "bob\u{200B}@x.com", "zero-width"),
        ("Bob", "bob@x.com\u{7f}", "control characters"),
    ] {
        let payload = app.create_user(name, email).await;
        assert_eq!(payload["ok"], false, "{name:?} <{email:?}>: {payload}");
        let message = payload["message"].as_str().unwrap();
        assert!(message.contains(rule), "{name:?} <{email:?}>: {message}");
    }
    assert!(app.file_records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drops_a_stuck_client_at_its_deadline_and_keeps_every_acknowledged_write() {
    use crate::helpers::spawned::{RosterProcess, serve_command};
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("users.json");
    let mut command = serve_command(&data_file);
    command.args([
        "--shutdown-timeout",
        "1",
        "--body-timeout",
        "120",
        "--header-timeout",
        "120",
    ]);
    let server = RosterProcess::spawn(command).await;
    let created = server
        .gql(
            r#"mutation { createUser(userData: {name: "Ann", email: "ann@x.com"}) { ok } }"#,
            json!({}),
        )
        .await
        .expect("POST /graphql");
    assert_eq!(created["data"]["createUser"]["ok"], true, "{created}");
    let mut stuck = TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stuck
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
        .await
        .unwrap();
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{status}: {stderr}");
    let records: Value = serde_json::from_slice(&std::fs::read(&data_file).unwrap()).unwrap();
    assert_eq!(records.as_array().map(Vec::len), Some(1), "{records}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_argument_is_logged_as_a_short_line_with_its_length() {
    use crate::helpers::spawned::{RosterProcess, serve_command};
    let dir = tempfile::tempdir().unwrap();
    let mut command = serve_command(&dir.path().join("users.json"));
    command.env("RUST_LOG", "info");
    let server = RosterProcess::spawn(command).await;
    let search = "x".repeat(1_000_000);
    let answer = server
        .gql(
            "query($s: String) { allUsers(search: $s) { id } }",
            json!({ "s": search }),
        )
        .await
        .expect("POST /graphql");
    assert_eq!(answer["data"]["allUsers"], json!([]), "{answer}");
    let (_, stderr) = server.terminate().await;
    let longest = stderr.lines().map(str::len).max().unwrap_or_default();
    assert!(longest < 4_096, "a log line of {longest} bytes");
    assert!(
        stderr.contains("(1000002 chars)"),
        "the length is not logged: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_limit_can_be_lowered_by_a_flag() {
    let app = spawn_app_with_flags(&json!([]), &["--max-body-bytes", "2048"]).await;
    let body = format!("{{\"query\":\"{{ allUsers {{ id }} }}\"{}}}", " ".repeat(3_000));
    let response = app.post_raw(body, Some("application/json")).await;
    assert_eq!(response.status(), 413);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(error_codes(&answer), ["PAYLOAD_TOO_LARGE"], "{answer}");
    assert!(
        answer["errors"][0]["message"].as_str().unwrap().contains("2048"),
        "{answer}"
    );
    let (status, answer) = post_query(&app, &json!({ "query": "{ allUsers { id } }" })).await;
    assert_eq!(
        (status, &answer["data"]["allUsers"]),
        (200, &json!([])),
        "{answer}"
    );
}
