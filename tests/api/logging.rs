//! The real binary (docs/src/operations.md, Logs): request and field logging to stderr,
//! graceful exit on SIGTERM, the `USERS_JSON_PATH` fallback, `--print-schema`, and start-up
//! errors.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::spawned::{RosterProcess, roster, serve_command, strip_ansi};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_requests_and_fields_with_arguments_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("users.json");
    let mut command = serve_command(&data_file);
    command.env("RUST_LOG", "info");
    let server = RosterProcess::spawn(command).await;
    let answer = server
        .gql(
            r#"mutation { createUser(userData: {name: "Log Me", email: "logme@example.com"}) { ok } }"#,
            json!({}),
        )
        .await
        .expect("POST /graphql");
    assert_eq!(answer["data"]["createUser"]["ok"], true, "{answer}");

    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(stderr.contains("createUser"), "no field line:\n{stderr}");
    assert!(
        stderr.contains("logme@example.com"),
        "no arguments logged:\n{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|line| line.contains("POST") && line.contains("/graphql") && line.contains("200")),
        "no request line:\n{stderr}"
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&data_file).unwrap()).unwrap();
    assert_eq!(saved[0]["email"], "logme@example.com", "{saved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reads_the_data_file_from_users_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("from-env.json");
    let mut command = roster();
    command
        .args(["--host", "127.0.0.1", "--port", "0"])
        .env("USERS_JSON_PATH", &data_file)
        .current_dir(dir.path());
    let server = RosterProcess::spawn(command).await;
    let text = std::fs::read_to_string(&data_file).expect("the env path was created");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!([]));
    let health: Value = server
        .client
        .get(format!("{}/health", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        health["dataFile"]
            .as_str()
            .is_some_and(|p| p.ends_with("from-env.json")),
        "{health}"
    );
    assert!(
        !dir.path().join("users.json").exists(),
        "the default path was used"
    );
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_schema_prints_the_sdl_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        roster().arg("--print-schema").current_dir(dir.path()).output(),
    )
    .await
    .expect("--print-schema returns")
    .expect("roster runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for needle in [
        "allUsers",
        "bulkUpdateEmails",
        "userById",
        "type User",
        "input UserInput",
    ] {
        assert!(stdout.contains(needle), "no {needle} in:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_file_in_a_missing_folder_stops_the_start_with_one_line_naming_it() {
    let path = "/nonexistent-dir/x/users.json";
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        roster()
            .args(["--host", "127.0.0.1", "--port", "0", "--data-file", path])
            .output(),
    )
    .await
    .expect("roster gives up promptly")
    .expect("roster runs");
    let stderr = strip_ansi(&String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "exit status {}", output.status);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line:\n{stderr}");
    assert!(
        lines[0].contains(path),
        "the line does not name the path: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_stops_the_start_with_an_error_naming_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        roster()
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--data-file"])
            .arg(dir.path().join("users.json"))
            .output(),
    )
    .await
    .expect("roster gives up promptly")
    .expect("roster runs");
    let stderr = strip_ansi(&String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "exit status {}", output.status);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    drop(taken);
}
