//! The answer budget over real HTTP (docs/src/http.md, Answers within a memory budget): big
//! answers past `--max-answer-memory-mib` wait and are refused `OVERLOADED` (503 with
//! `Retry-After`) while `/health` answers; a client that never reads holds only its answer's
//! share, given back when the write deadline cuts it off (seen on a process of its own, whose
//! `/metrics` are its alone); an answer whose texts outgrow its bound is stopped
//! `ANSWER_TOO_LARGE`, as is one whose estimate alone is over the budget.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::spawned::{RosterProcess, serve_command};
use crate::helpers::{TestApp, error_codes, eventually, spawn_app_with_flags};

/// The big question of these tests: 20,000 users' ids, names and emails (80,000 values,
/// about 12 MB estimated, about 2 MB of JSON).
const BIG: &str = "{ allUsers { id name email } }";

fn users(count: usize) -> Value {
    Value::Array(
        (0..count)
            .map(|n| json!({ "id": format!("id-{n}"), "name": format!("user {n}"), "email": format!("u{n}@example.com") }))
            .collect(),
    )
}

/// A client that sends `query` and reads only the first kilobyte of its answer (so the
/// answer was made), with a small receive buffer so the rest waits on the server.
async fn stalled_reader(address: &str, query: &str) -> TcpStream {
    let address = address.parse().expect("an address");
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small buffer");
    let mut stream = socket.connect(address).await.expect("connects");
    let body = json!({ "query": query }).to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut head = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut head))
        .await
        .expect("the answer began within 60 s")
        .expect("reads");
    let head = String::from_utf8_lossy(&head[..read]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

async fn post(app: &TestApp, query: &str) -> (u16, Option<String>, Value) {
    post_to(&app.client, &app.url("/graphql"), query).await
}

async fn post_to(client: &reqwest::Client, url: &str, query: &str) -> (u16, Option<String>, Value) {
    let response = client
        .post(url)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    (status, retry, response.json().await.expect("JSON"))
}

// Two workers, as a server has: one builds while the other keeps the waiters' clocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_answers_past_the_budget_wait_then_are_refused_overloaded_while_health_answers() {
    // One big answer (about 12 MiB estimated) fits at a time; the others wait 0.1 s.
    let app = spawn_app_with_flags(
        &users(20_000),
        &["--max-answer-memory-mib", "16", "--answer-queue-timeout", "0.1"],
    )
    .await;
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url("/graphql"));
            tokio::spawn(async move { post_to(&client, &url, BIG).await })
        })
        .collect();
    let health = tokio::time::timeout(Duration::from_secs(10), app.health())
        .await
        .expect("/health did not hang");
    assert_eq!(health["status"], "ok", "{health}");
    let small = app.gql("{ allUsers(limit: 2) { id } }", json!({})).await;
    assert_eq!(
        small["data"]["allUsers"].as_array().map(Vec::len),
        Some(2),
        "a small answer never waits"
    );
    let mut refused = 0;
    for request in requests {
        let (status, retry, answer) = request.await.expect("the request ran");
        if status == 200 {
            assert_eq!(answer["data"]["allUsers"].as_array().map(Vec::len), Some(20_000));
            continue;
        }
        refused += 1;
        assert_eq!(status, 503);
        assert_eq!(retry.as_deref(), Some("2"));
        assert_eq!(error_codes(&answer), ["OVERLOADED"], "{answer}");
        assert!(answer.get("data").is_none(), "{answer}");
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("--max-answer-memory-mib"), "{message}");
    }
    assert!(refused > 0, "eight big answers never fit in a budget for one");
    // Every answer gave its share back.
    let (status, _, answer) = post(&app, BIG).await;
    assert_eq!(status, 200, "{}", answer["errors"]);
}

/// The bytes of answers reserved right now, as the process's `/metrics` says.
async fn reserved(process: &RosterProcess) -> f64 {
    process.metric("roster_answer_memory_reserved_bytes").await
}

#[tokio::test]
async fn a_client_that_never_reads_holds_only_its_answers_share_until_it_is_cut_off() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let data_file = dir.path().join("users.json");
    std::fs::write(&data_file, users(60_000).to_string()).expect("the data file");
    let mut command = serve_command(&data_file);
    command.args(["--idle-timeout", "2"]);
    let process = RosterProcess::spawn(command).await;
    let base = process.base.trim_start_matches("http://").to_owned();
    // The answer (about 4 MB) is made, then waits for a client that does not read.
    let stalled = stalled_reader(&base, BIG).await;
    let held = reserved(&process).await;
    assert!(held > 0.0, "the unread answer holds its share of the budget");
    assert!(held < 40.0 * 1024.0 * 1024.0, "no more than its estimate: {held}");
    let health = tokio::time::timeout(
        Duration::from_secs(10),
        process.client.get(format!("{}/health", process.base)).send(),
    )
    .await
    .expect("/health did not hang")
    .expect("an answer");
    assert_eq!(health.status(), 200);
    // The write deadline (--idle-timeout) cuts the client off and its share comes back.
    eventually(
        Duration::from_secs(30),
        "the stalled answer's share given back",
        || async { reserved(&process).await == 0.0 },
    )
    .await;
    drop(stalled);
}

#[tokio::test]
async fn an_answer_whose_text_outgrows_its_bound_is_stopped_and_one_over_the_budget_is_refused() {
    let name = "n".repeat(20 * 1024 * 1024);
    let app = spawn_app_with_flags(
        &json!([
            { "id": "a", "name": name, "email": "a@example.com" },
            { "id": "b", "name": "Bea", "email": "b@example.com" },
        ]),
        &["--max-answer-memory-mib", "1"],
    )
    .await;
    let answer = app.gql("{ allUsers(limit: 2) { name } }", json!({})).await;
    let text = answer.to_string();
    assert!(text.len() < 10_000, "the 20 MB name is not served");
    assert_eq!(error_codes(&answer), ["ANSWER_TOO_LARGE"], "{text}");
    // The user whose name is too long is null (the list's items may be), the other served.
    assert_eq!(
        answer["data"]["allUsers"],
        json!([null, { "name": "Bea" }]),
        "{text}"
    );
    assert_eq!(answer["errors"][0]["path"], json!(["allUsers", 0, "name"]));
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("--max-answer-memory-mib"), "{message}");

    // An answer estimated over the whole budget (1 MiB) is refused before it runs: ten
    // pages of up to 1,000 users count 30,000 values.
    let many = (0..10)
        .map(|n| format!("a{n}: users(first: 1000) {{ nodes {{ id name }} }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let answer = app.gql(&format!("{{ {many} }}"), json!({})).await;
    assert_eq!(error_codes(&answer), ["ANSWER_TOO_LARGE"], "{answer}");
    assert!(answer.get("data").is_none(), "{answer}");
}
