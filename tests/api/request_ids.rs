//! Request ids (docs/src/http.md, docs/src/operations.md): every answer carries `X-Request-Id`
//! (the client's, when it is a plausible id), and every log line a request causes carries the
//! same id, in text and in JSON logs, over HTTP and over the WebSocket.

use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::helpers::spawned::{RosterProcess, serve_command};
use crate::helpers::ws::{connect_acked, next_json, send_json};

const CREATE: &str =
    r#"mutation { createUser(userData: {name: "Traced", email: "traced@example.com"}) { ok } }"#;

fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-Id on {}", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_answer_carries_a_new_request_id_even_refusals() {
    let app = spawn_app().await;
    let first = request_id(&app.get("/health").await);
    let second = request_id(&app.get("/health").await);
    assert_ne!(first, second);
    for id in [&first, &second] {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id} is not a UUID");
    }
    let not_found = app.get("/nowhere").await;
    assert_eq!(not_found.status(), 404);
    request_id(&not_found);
    let not_json = app.post_raw("{}", Some("text/plain")).await;
    assert_eq!(not_json.status(), 415);
    request_id(&not_json);
}

#[tokio::test]
async fn a_plausible_incoming_request_id_is_kept_and_anything_else_is_replaced() {
    let app = spawn_app().await;
    let send = |id: String| {
        app.client
            .get(app.url("/health"))
            .header("X-Request-Id", id)
            .send()
    };
    let kept = "client-7f3e:01/ab+c=@x.y_z";
    assert_eq!(request_id(&send(kept.to_owned()).await.unwrap()), kept);
    let longest = "a".repeat(128);
    assert_eq!(request_id(&send(longest.clone()).await.unwrap()), longest);
    for refused in ["a".repeat(129), "two words".to_owned(), "<script>".to_owned()] {
        let answered = request_id(&send(refused.clone()).await.unwrap());
        assert_ne!(answered, refused);
        assert!(uuid::Uuid::parse_str(&answered).is_ok(), "{answered}");
    }
}

/// Starts the binary with `RUST_LOG=info` and `extra` environment.
async fn start_logging(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> RosterProcess {
    let mut command = serve_command(&dir.path().join("users.json"));
    command.env("RUST_LOG", "info");
    command.envs(env.iter().copied());
    RosterProcess::spawn(command).await
}

async fn post_with_id(server: &RosterProcess, id: &str, query: &str) -> reqwest::Response {
    server
        .client
        .post(format!("{}/graphql", server.base))
        .header("X-Request-Id", id)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("POST /graphql")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_put_the_request_id_on_the_request_line_and_every_field_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_logging(&dir, &[("ROSTER_LOG_FORMAT", "json")]).await;
    let answer = post_with_id(&server, "trace-me-42", CREATE).await;
    assert_eq!(request_id(&answer), "trace-me-42");
    let other = post_with_id(&server, "someone-else", "{ allUsers { id } }").await;
    assert_eq!(other.status(), 200);
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{status}; stderr:\n{stderr}");

    let lines: Vec<Value> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}")))
        .collect();
    let ours: Vec<&Value> = lines
        .iter()
        .filter(|line| line["span"]["request_id"] == "trace-me-42")
        .collect();
    assert!(
        ours.iter().any(|line| line["message"] == "request"
            && line["method"] == "POST"
            && line["path"] == "/graphql"
            && line["status"] == 200),
        "no request line with the id:\n{stderr}"
    );
    assert!(
        ours.iter()
            .any(|line| line["message"] == "graphql field" && line["field"] == "createUser"),
        "no field line with the id:\n{stderr}"
    );
    for line in &lines {
        if line["field"] == "createUser" || line["field"] == "allUsers" {
            let expected = if line["field"] == "createUser" {
                "trace-me-42"
            } else {
                "someone-else"
            };
            assert_eq!(line["span"]["request_id"], expected, "{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_show_the_request_id_on_the_request_line_and_the_field_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_logging(&dir, &[]).await;
    post_with_id(&server, "text-id-7", CREATE).await;
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{status}; stderr:\n{stderr}");
    let tagged: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("request_id=text-id-7"))
        .collect();
    assert!(
        tagged
            .iter()
            .any(|line| line.contains("POST") && line.contains("status=200")),
        "no request line with the id:\n{stderr}"
    );
    assert!(
        tagged.iter().any(|line| line.contains("createUser")),
        "no field line with the id:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_over_a_websocket_log_the_id_of_its_upgrade_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_logging(&dir, &[("ROSTER_LOG_FORMAT", "json")]).await;
    let (mut socket, response) = connect_acked(&server.base, &[("X-Request-Id", "socket-9")]).await;
    assert_eq!(response.headers()["x-request-id"], "socket-9");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ allUsers { id } }" } });
    send_json(&mut socket, subscribe).await;
    // next, complete: the operation has run once `complete` arrives.
    while next_json(&mut socket).await["type"] != "complete" {}
    socket.close(None).await.unwrap();
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{status}; stderr:\n{stderr}");
    let field_line = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["field"] == "allUsers")
        .unwrap_or_else(|| panic!("no field line:\n{stderr}"));
    assert_eq!(field_line["span"]["request_id"], "socket-9", "{field_line}");
}
