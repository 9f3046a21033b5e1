//! The real binary (docs/src/operations.md, Logs): request and field logging to stderr,
//! graceful exit on SIGTERM, the `USERS_JSON_PATH` fallback, `--print-schema`, and start-up
//! errors.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::helpers::free_port;

/// A `roster` command with no inherited configuration.
pub fn roster() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    for var in [
        "USERS_JSON_PATH",
        "DATABASE_URL",
        "PORT",
        "HOST",
        "RUST_LOG",
        "ROSTER_LOG_FORMAT",
    ] {
        command.env_remove(var);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Reads a pipe to its end in the background.
fn drain(pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut pipe = pipe;
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes).await;
        strip_ansi(&String::from_utf8_lossy(&bytes))
    })
}

/// Removes terminal colour codes, should any be written.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A started server process with its output being collected.
pub struct Server {
    child: Child,
    pub base: String,
    stderr: JoinHandle<String>,
    pub client: reqwest::Client,
}

impl Server {
    pub async fn start(mut command: Command, port: u16) -> Self {
        let mut child = command.spawn().expect("roster starts");
        let stderr = drain(child.stderr.take().expect("stderr"));
        let _stdout = drain(child.stdout.take().expect("stdout"));
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stderr,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let health = server.client.get(format!("{}/health", server.base)).send().await;
            if health.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            assert!(Instant::now() < deadline, "roster did not answer /health");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub(crate) async fn gql(&self, query: &str, variables: Value) -> Value {
        self.client
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("POST /graphql")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// Sends SIGTERM and waits for the exit; returns the status and everything on stderr.
    pub async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().expect("still running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("roster exits within 10 s of SIGTERM")
            .expect("wait");
        let stderr = tokio::time::timeout(Duration::from_secs(5), self.stderr)
            .await
            .expect("stderr closes")
            .expect("the reader task");
        (status, stderr)
    }
}

pub fn serve_command(port: u16, data_file: &Path) -> Command {
    let mut command = roster();
    command
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--data-file"])
        .arg(data_file);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_requests_and_fields_with_arguments_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("users.json");
    let port = free_port();
    let mut command = serve_command(port, &data_file);
    command.env("RUST_LOG", "info");
    let server = Server::start(command, port).await;
    let answer = server
        .gql(
            r#"mutation { createUser(userData: {name: "Log Me", email: "logme@example.com"}) { ok } }"#,
            json!({}),
        )
        .await;
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
    let port = free_port();
    let mut command = roster();
    command
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("USERS_JSON_PATH", &data_file)
        .current_dir(dir.path());
    let server = Server::start(command, port).await;
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
    let port = free_port();
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        roster()
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--data-file",
                path,
            ])
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
        serve_command(port, &dir.path().join("users.json")).output(),
    )
    .await
    .expect("roster gives up promptly")
    .expect("roster runs");
    let stderr = strip_ansi(&String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "exit status {}", output.status);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    drop(taken);
}
