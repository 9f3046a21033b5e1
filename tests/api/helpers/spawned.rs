//! The one harness for a `roster` process started from the built binary, for tests that
//! need a real process: its logs, signals, a crash, a second writer on the same file.
//!
//! The process binds port 0 itself and the harness reads the address it got from its
//! "roster is listening" line on stderr, so no port is ever chosen here and handed over
//! (another test could take it in between). Everything else on stderr is kept for
//! [`RosterProcess::terminate`] and [`RosterProcess::stderr`].

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::eventually;

/// The logging the harness asks for when a test sets none: the binary's own start and
/// stop lines (target `roster`, which carry the address), warnings from everywhere else
/// (the library's targets all start with `roster::`).
pub const QUIET_LOG: &str = "warn,roster=info,roster::=warn";

/// How long a process may take to listen and then to answer `/health`.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A `roster` command with no inherited configuration, its output piped.
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

/// `roster` serving on `127.0.0.1:0` with `store` flags (none: the default data file).
pub fn serve_with<S: AsRef<OsStr>>(store: &[S]) -> Command {
    let mut command = roster();
    command.args(["--host", "127.0.0.1", "--port", "0"]).args(store);
    command
}

/// `roster` serving `data_file` on `127.0.0.1:0`.
pub fn serve_command(data_file: &Path) -> Command {
    serve_with(&["--data-file".as_ref(), data_file.as_os_str()])
}

/// Reads a pipe to its end in the background.
pub fn drain(pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut pipe = pipe;
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes).await;
        strip_ansi(&String::from_utf8_lossy(&bytes))
    })
}

/// Removes terminal colour codes, should any be written.
pub fn strip_ansi(text: &str) -> String {
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

/// The address in a "roster is listening" line, in the text or the JSON log format.
fn listening_address(line: &str) -> Option<String> {
    if !line.contains("roster is listening") {
        return None;
    }
    if let Ok(json) = serde_json::from_str::<Value>(line) {
        let address = json.get("address").or_else(|| json["fields"].get("address"))?;
        return address.as_str().map(str::to_owned);
    }
    let value = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("address="))?;
    Some(value.trim_matches('"').to_owned())
}

/// Reads stderr line by line to its end, keeping it all; sends the listening address on
/// `address` as soon as that line comes.
fn watch_stderr(
    pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    address: oneshot::Sender<String>,
) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        let mut address = Some(address);
        let mut kept = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = strip_ansi(&line);
            if let Some(found) = listening_address(&line)
                && let Some(sender) = address.take()
            {
                let _ = sender.send(found);
            }
            kept.push_str(&line);
            kept.push('\n');
        }
        kept
    })
}

/// A started server process with its stderr being collected; killed when dropped.
pub struct RosterProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`, the port the process bound.
    pub base: String,
    stderr: JoinHandle<String>,
    pub client: reqwest::Client,
}

impl RosterProcess {
    /// Starts `command` (see [`serve_with`]) and waits until it listens and answers
    /// `/health` with 200. Unless the command sets `RUST_LOG`, it runs with [`QUIET_LOG`];
    /// one that sets it must keep the `roster` target's info lines.
    pub async fn spawn(mut command: Command) -> Self {
        let sets_log = command
            .as_std()
            .get_envs()
            .any(|(name, value)| name == "RUST_LOG" && value.is_some());
        if !sets_log {
            command.env("RUST_LOG", QUIET_LOG);
        }
        let mut child = command.spawn().expect("roster starts");
        let (sender, address) = oneshot::channel();
        let stderr = watch_stderr(child.stderr.take().expect("stderr"), sender);
        let _stdout = drain(child.stdout.take().expect("stdout"));
        let address = match tokio::time::timeout(START_DEADLINE, address).await {
            Ok(Ok(address)) => address,
            Ok(Err(_)) => {
                let status = child.wait().await.expect("wait");
                let stderr = stderr.await.unwrap_or_default();
                panic!("roster ended ({status}) without saying where it listens; stderr:\n{stderr}");
            }
            Err(_) => panic!("roster did not say where it listens within {START_DEADLINE:?}"),
        };
        let server = Self {
            child,
            base: format!("http://{address}"),
            stderr,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a client"),
        };
        let health = format!("{}/health", server.base);
        eventually(START_DEADLINE, "roster answering /health", || async {
            let answer = server.client.get(&health).send().await;
            answer.is_ok_and(|response| response.status() == 200)
        })
        .await;
        server
    }

    /// A process serving `data_file`.
    pub async fn start(data_file: &Path) -> Self {
        Self::spawn(serve_command(data_file)).await
    }

    /// A replica over the database at `url`.
    pub async fn start_on_database(url: &str) -> Self {
        Self::spawn(serve_with(&["--database-url", url])).await
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Runs a GraphQL operation over `POST /graphql`; `Err` when the request died.
    /// The sample `line` of this process's own `/metrics` (see [`super::metric_sample`]).
    pub async fn metric(&self, line: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics text");
        super::metric_sample(&text, line)
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

    /// Every email `allUsers` lists, in order.
    pub async fn emails(&self) -> Vec<String> {
        let answer = self
            .gql("{ allUsers { email } }", json!({}))
            .await
            .expect("allUsers");
        answer["data"]["allUsers"]
            .as_array()
            .unwrap_or_else(|| panic!("a list: {answer}"))
            .iter()
            .map(|u| u["email"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Sends SIGKILL and waits for the process to end.
    pub async fn kill9(&mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("the process ends");
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
        (status, self.stderr().await)
    }

    /// Everything the process wrote on stderr; waits for it to end (after [`Self::kill9`]
    /// or [`Self::terminate`]), killing it first if it still runs.
    pub async fn stderr(mut self) -> String {
        if self.child.id().is_some() {
            self.kill9().await;
        }
        tokio::time::timeout(Duration::from_secs(5), self.stderr)
            .await
            .expect("stderr closes")
            .expect("the reader task")
    }
}

/// Starts `clients` tasks that create users on `base` as fast as they can until the server
/// stops answering (a `kill -9`, say), each pushing to `acknowledged` the address of every
/// create answered `ok: true`. Addresses are unique per `round`, client and create.
pub fn create_storm(
    base: &str,
    round: usize,
    clients: usize,
    acknowledged: &std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> Vec<JoinHandle<()>> {
    (0..clients)
        .map(|client| {
            let (base, acknowledged) = (base.to_owned(), std::sync::Arc::clone(acknowledged));
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for n in 0.. {
                    let email = format!("r{round}-c{client}-{n}@crash.test");
                    let sent = http
                        .post(format!("{base}/graphql"))
                        .json(&json!({
                            "query": "mutation($u: UserInput!) { createUser(userData: $u) { ok } }",
                            "variables": { "u": { "name": "Crash", "email": email } }
                        }))
                        .send()
                        .await;
                    let Ok(response) = sent else { break };
                    let Ok(answer) = response.json::<Value>().await else {
                        break;
                    };
                    if answer["data"]["createUser"]["ok"] == true {
                        acknowledged.lock().unwrap().push(email);
                    }
                }
            })
        })
        .collect()
}
