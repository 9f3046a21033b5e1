//! The harness: one in-process Roster per test on `127.0.0.1:0`, each with its own temp
//! folder and `users.json`, shut down through a oneshot when the `TestApp` drops.
//!
//! Tests listed in [`also_on_postgres!`] run a second time over PostgreSQL: the same
//! `spawn_app*` calls then give a service over a fresh database of its own (seeded by
//! importing the would-be data file), and the `file_*` helpers read the database's export.

use std::cell::RefCell;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roster::bootstrap::Application;
use roster::config::Config;
use scratch::{ScratchDatabase, test_server};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub mod scratch;
pub mod spawned;
pub mod ws;

/// How long an external edit may take to show through the watcher.
pub const WATCH_DEADLINE: Duration = Duration::from_secs(2);

/// A running service and the folder that holds its data file.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub client: reqwest::Client,
    /// `<dir>/users.json`.
    pub data_file: PathBuf,
    /// Kept alive for as long as the app runs; removed when the test ends.
    pub dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    /// The database when the service runs over PostgreSQL.
    pub database_url: Option<String>,
    /// A database of this app's own, dropped after it (declared last, so dropped last).
    _database: Option<ScratchDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A service over a data file that does not exist yet (it is created at start).
pub async fn spawn_app() -> TestApp {
    start(tempfile::tempdir().expect("a temp dir")).await
}

/// A service over a data file holding exactly `contents` before it starts.
pub async fn spawn_app_with(contents: impl AsRef<[u8]>) -> TestApp {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("users.json"), contents).expect("seed the data file");
    start(dir).await
}

/// A service over a data file holding `users` (pretty JSON) before it starts.
pub async fn spawn_app_with_users(users: &Value) -> TestApp {
    spawn_app_with(serde_json::to_vec_pretty(users).expect("serialise the seed")).await
}

/// A service over whatever `dir` already holds (its `users.json` may be a symlink).
pub async fn spawn_app_in(dir: TempDir) -> TestApp {
    start(dir).await
}

/// A service over whatever `dir` already holds, started with `flags`.
pub async fn spawn_app_in_with(dir: TempDir, flags: &[&str]) -> TestApp {
    start_with(dir, flags).await
}

/// The configuration of a test server over `data_file` on a free loopback port, with
/// `extra` flags; the environment is ignored.
pub fn test_config(data_file: &Path, extra: &[&str]) -> Config {
    let mut flags: Vec<std::ffi::OsString> = ["--host", "127.0.0.1", "--port", "0", "--data-file"]
        .iter()
        .map(Into::into)
        .collect();
    flags.push(data_file.as_os_str().to_owned());
    flags.extend(extra.iter().map(Into::into));
    Config::from_flags(flags).expect("test flags parse")
}

thread_local! {
    /// The PostgreSQL server's URL while a test runs again over it (see [`on_postgres`]).
    static POSTGRES_SERVER: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `test` (a `#[tokio::test]` function) with every `spawn_app*` call serving from a
/// fresh PostgreSQL database instead of the file; skipped loudly without a server (a
/// failure under `ROSTER_REQUIRE_POSTGRES=1`).
pub fn on_postgres(name: &str, test: fn()) {
    let probe = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let Some(server) = probe.block_on(test_server(name)) else {
        return;
    };
    drop(probe);
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            POSTGRES_SERVER.with(|server| server.borrow_mut().take());
        }
    }
    POSTGRES_SERVER.with(|slot| *slot.borrow_mut() = Some(server));
    let _reset = Reset;
    test();
}

/// Runs the listed tests of the enclosing module a second time over PostgreSQL, as
/// `on_postgres::<name>`.
macro_rules! also_on_postgres {
    ($($test:ident),* $(,)?) => {
        mod on_postgres {
            $(
                #[test]
                #[ignore = "needs PostgreSQL"]
                fn $test() {
                    $crate::helpers::on_postgres(concat!(module_path!(), "::", stringify!($test)), super::$test);
                }
            )*
        }
    };
}
pub(crate) use also_on_postgres;

/// A fresh database on the test server, or `None` (reported as skipped) without one.
pub async fn scratch_database(what: &str) -> Option<ScratchDatabase> {
    let server = test_server(what).await?;
    Some(
        ScratchDatabase::create(&server, "roster_test")
            .await
            .expect("a scratch database"),
    )
}

/// The configuration of a test server over the database at `url` on a free loopback port,
/// with `extra` flags; the environment is ignored.
pub fn test_config_on_database(url: &str, extra: &[&str]) -> Config {
    // A small pool: tests run side by side, several replicas each, on one server.
    let mut flags = vec!["--host", "127.0.0.1", "--port", "0", "--database-url", url];
    if !extra.contains(&"--database-pool") {
        flags.extend(["--database-pool", "4"]);
    }
    flags.extend_from_slice(extra);
    Config::from_flags(flags).expect("test flags parse")
}

/// A service (one replica) over the database at `url`, which the caller keeps.
pub async fn spawn_replica(url: &str) -> TestApp {
    spawn_replica_with(url, &[]).await
}

/// A service over the database at `url`, started with `flags`.
pub async fn spawn_replica_with(url: &str, flags: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = test_config_on_database(url, flags);
    let mut app = run(dir, config).await;
    app.database_url = Some(url.to_owned());
    app
}

/// A service over a data file holding `users` (pretty JSON), started with `flags`.
pub async fn spawn_app_with_flags(users: &Value, flags: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().expect("a temp dir");
    let bytes = serde_json::to_vec_pretty(users).expect("serialise the seed");
    std::fs::write(dir.path().join("users.json"), bytes).expect("seed the data file");
    start_with(dir, flags).await
}

async fn start(dir: TempDir) -> TestApp {
    start_with(dir, &[]).await
}

async fn start_with(dir: TempDir, flags: &[&str]) -> TestApp {
    if let Some(server) = POSTGRES_SERVER.with(|server| server.borrow().clone()) {
        let database = ScratchDatabase::create(&server, "roster_test")
            .await
            .expect("a scratch database");
        let seed = dir.path().join("users.json");
        if seed.exists() {
            roster::adapters::inbound::cli::transfer::import_file(
                &seed,
                database.url(),
                Duration::from_secs(5),
                false,
                &|_, _| {},
            )
            .await
            .expect("the seed imports");
        }
        let config = test_config_on_database(database.url(), flags);
        let mut app = run(dir, config).await;
        app.database_url = Some(database.url().to_owned());
        app._database = Some(database);
        return app;
    }
    let data_file = dir.path().join("users.json");
    let config = test_config(&data_file, flags);
    run(dir, config).await
}

async fn run(dir: TempDir, config: Config) -> TestApp {
    let data_file = dir.path().join("users.json");
    let app = Application::build(config).await.expect("the app builds");
    let address = app.local_addr();
    assert!(address.ip().is_loopback(), "bound to {address}");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = rx.await;
    }));
    TestApp {
        base: format!("http://{address}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a client"),
        data_file,
        dir,
        shutdown: Some(tx),
        database_url: None,
        _database: None,
    }
}

/// The value of the sample `line` (a metric name with its labels, as rendered) in a
/// `/metrics` text, or 0 when it is not there.
pub fn metric_sample(text: &str, line: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

impl TestApp {
    /// The sample `line` of this server's `/metrics` (see [`metric_sample`]).
    pub async fn metric(&self, line: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.expect("the metrics text");
        metric_sample(&text, line)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs a GraphQL operation over `POST /graphql` and returns the whole JSON answer.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let response = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("POST /graphql");
        let status = response.status();
        let body = response.text().await.expect("a body");
        assert_eq!(status, 200, "POST /graphql answered {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("not JSON ({err}): {body}"))
    }

    /// `POST /graphql` with a raw body and an optional `Content-Type`.
    pub async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url("/graphql")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.expect("POST /graphql")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {path}: {err}"))
    }

    /// `GET path` as a browser navigating asks for it (`Accept: text/html`).
    pub async fn get_as_browser(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {path}: {err}"))
    }

    /// `GET /health`, asserting 200 and a JSON body.
    pub async fn health(&self) -> Value {
        let response = self.get("/health").await;
        let status = response.status();
        let body: Value = response.json().await.expect("/health answers JSON");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The `createUser` payload (`ok message user { .. }`).
    pub async fn create_user(&self, name: &str, email: &str) -> Value {
        let answer = self
            .gql(
                "mutation($u: UserInput!) { createUser(userData: $u) { ok message user { id name email createdAt updatedAt } } }",
                json!({ "u": { "name": name, "email": email } }),
            )
            .await;
        assert_no_errors(&answer);
        answer["data"]["createUser"].clone()
    }

    /// Creates a user that must be accepted; returns its id.
    pub async fn create_ok(&self, name: &str, email: &str) -> String {
        let payload = self.create_user(name, email).await;
        assert_eq!(payload["ok"], true, "create {name} <{email}>: {payload}");
        payload["user"]["id"]
            .as_str()
            .expect("the new user's id")
            .to_owned()
    }

    /// The `updateUser` payload.
    pub async fn update_user(&self, user_data: Value) -> Value {
        let answer = self
            .gql(
                "mutation($u: UserInput!) { updateUser(userData: $u) { ok message user { id name email createdAt updatedAt } } }",
                json!({ "u": user_data }),
            )
            .await;
        assert_no_errors(&answer);
        answer["data"]["updateUser"].clone()
    }

    /// The `deleteUser` payload.
    pub async fn delete_user(&self, id: &str) -> Value {
        let answer = self
            .gql(
                "mutation($id: ID!) { deleteUser(id: $id) { ok message } }",
                json!({ "id": id }),
            )
            .await;
        assert_no_errors(&answer);
        answer["data"]["deleteUser"].clone()
    }

    /// The `bulkUpdateEmails` payload.
    pub async fn bulk_update(&self, updates: Value) -> Value {
        let answer = self
            .gql(
                "mutation($u: [EmailUpdateInput!]!) { bulkUpdateEmails(updates: $u) { ok updatedCount failed message } }",
                json!({ "u": updates }),
            )
            .await;
        assert_no_errors(&answer);
        answer["data"]["bulkUpdateEmails"].clone()
    }

    /// Every user the API lists, all fields.
    pub async fn all_users(&self) -> Vec<Value> {
        let answer = self
            .gql("{ allUsers { id name email createdAt updatedAt } }", json!({}))
            .await;
        assert_no_errors(&answer);
        answer["data"]["allUsers"]
            .as_array()
            .unwrap_or_else(|| panic!("allUsers is a list: {answer}"))
            .clone()
    }

    /// The names `allUsers(<args>)` lists, in order.
    pub async fn names(&self, args: &str) -> Vec<String> {
        let query = format!("{{ allUsers{args} {{ name }} }}");
        let answer = self.gql(&query, json!({})).await;
        assert_no_errors(&answer);
        names_of(&answer["data"]["allUsers"])
    }

    /// Over PostgreSQL: exports the database into `data_file`, so the `file_*` helpers
    /// read what the database holds, in the file's format.
    fn export_if_on_database(&self) {
        let Some(url) = &self.database_url else { return };
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                roster::adapters::inbound::cli::transfer::export_file(
                    &self.data_file,
                    url,
                    Duration::from_secs(5),
                    &|_, _| {},
                )
                .await
                .expect("the database exports");
            });
        });
    }

    /// The data file parsed as JSON.
    pub fn file_json(&self) -> Value {
        self.export_if_on_database();
        let bytes = std::fs::read(&self.data_file).expect("the data file exists");
        serde_json::from_slice(&bytes).unwrap_or_else(|err| {
            panic!(
                "the data file is not JSON ({err}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    }

    /// The data file's records (it must be a JSON array).
    pub fn file_records(&self) -> Vec<Value> {
        let value = self.file_json();
        value
            .as_array()
            .unwrap_or_else(|| panic!("the data file is not an array: {value}"))
            .clone()
    }

    pub fn file_bytes(&self) -> Vec<u8> {
        self.export_if_on_database();
        std::fs::read(&self.data_file).expect("the data file exists")
    }

    /// The names of the files in the data folder, sorted.
    pub fn folder_entries(&self) -> Vec<String> {
        folder_entries(self.dir.path())
    }

    /// The `users.json.corrupt-*` copies beside the data file.
    pub fn corrupt_copies(&self) -> Vec<PathBuf> {
        self.folder_entries()
            .into_iter()
            .filter(|name| name.starts_with("users.json.corrupt-"))
            .map(|name| self.dir.path().join(name))
            .collect()
    }

    /// Polls `allUsers` until `done` holds for its names, failing after [`WATCH_DEADLINE`].
    pub async fn wait_for_names(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let started = Instant::now();
        loop {
            let names: Vec<String> = self
                .all_users()
                .await
                .iter()
                .map(|u| u["name"].as_str().unwrap_or_default().to_owned())
                .collect();
            if done(&names) {
                return;
            }
            assert!(
                started.elapsed() < WATCH_DEADLINE,
                "{what}: not seen within {WATCH_DEADLINE:?}; allUsers still lists {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The sorted names of the files in `folder`.
pub fn folder_entries(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("the folder is readable")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The `name` of every user in a JSON list.
pub fn names_of(users: &Value) -> Vec<String> {
    users
        .as_array()
        .unwrap_or_else(|| panic!("a list of users: {users}"))
        .iter()
        .map(|u| u["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub fn assert_no_errors(answer: &Value) {
    assert!(
        answer.get("errors").is_none_or(Value::is_null),
        "unexpected errors: {answer}"
    );
}

/// The `extensions.code` of every error in a GraphQL answer.
pub fn error_codes(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("an errors array: {answer}"))
        .iter()
        .map(|e| e["extensions"]["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Asserts the wire (and file) timestamp form: RFC 3339, UTC, `Z`, six fractional digits.
pub fn assert_utc_micros(value: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a timestamp string: {value}"));
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|err| panic!("{text} is not RFC 3339: {err}"));
    assert_eq!(parsed.offset().local_minus_utc(), 0, "{text} is not UTC");
    assert!(text.ends_with('Z'), "{text} does not end with Z");
    assert_eq!(text.len(), "2024-05-01T10:00:00.123456Z".len(), "{text}");
    assert_eq!(text.as_bytes()[19], b'.', "{text} has no fraction");
    assert!(
        text[20..26].bytes().all(|b| b.is_ascii_digit()),
        "{text} has no microseconds"
    );
    parsed.with_timezone(&chrono::Utc)
}

/// Polls `check` every 25 ms until it returns true or `deadline` passes.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < deadline, "{what}: not within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A free loopback port (bound, read, released): only for a port nothing should listen on,
/// or a child that cannot bind port 0 and runs where no other test binds (chromedriver in
/// the browser test's own network namespace). A `roster` child binds port 0 itself
/// ([`spawned`]).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
