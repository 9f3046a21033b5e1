//! A `roster` process started from the built binary, for tests that need a real process:
//! a crash, a second writer on the same file.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::free_port;

/// A `roster` process started from the built binary.
pub struct RosterProcess {
    child: tokio::process::Child,
    pub base: String,
    pub client: reqwest::Client,
}

impl RosterProcess {
    pub async fn start(data_file: &Path) -> Self {
        Self::spawn(&["--data-file".as_ref(), data_file.as_os_str()]).await
    }

    /// A replica over the database at `url`.
    pub async fn start_on_database(url: &str) -> Self {
        Self::spawn(&["--database-url".as_ref(), url.as_ref()]).await
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    async fn spawn(store: &[&std::ffi::OsStr]) -> Self {
        let port = free_port();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(store)
            .env_remove("DATABASE_URL")
            .env_remove("USERS_JSON_PATH")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("roster starts");
        let process = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let health = process
                .client
                .get(format!("{}/health", process.base))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return process;
            }
            assert!(Instant::now() < deadline, "roster did not become healthy");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn gql(&self, query: &str, variables: Value) -> Result<Value, reqwest::Error> {
        self.client
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?
            .json()
            .await
    }

    /// `Ok(Some(id))` when acknowledged, `Ok(None)` when refused, `Err` when the request died.
    pub async fn create(&self, name: &str, email: &str) -> Result<Option<String>, reqwest::Error> {
        let answer = self
            .gql(
                "mutation($u: UserInput!) { createUser(userData: $u) { ok user { id } } }",
                json!({ "u": { "name": name, "email": email } }),
            )
            .await?;
        let payload = &answer["data"]["createUser"];
        Ok((payload["ok"] == true).then(|| payload["user"]["id"].as_str().unwrap_or_default().to_owned()))
    }

    pub async fn emails(&self) -> Vec<String> {
        let answer = self
            .gql("{ allUsers { email } }", json!({}))
            .await
            .expect("allUsers");
        answer["data"]["allUsers"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|u| u["email"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub async fn kill9(&mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("the process ends");
    }
}
