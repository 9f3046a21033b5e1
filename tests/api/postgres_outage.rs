//! A database that goes away and comes back (docs/src/storage.md, What holds across replicas):
//! a TCP proxy between the service and PostgreSQL cuts every connection and refuses new ones,
//! then lets them through again. Also what start-up says when the database cannot be reached or
//! the flags disagree.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

use crate::helpers::ws::Subscriber;
use crate::helpers::{eventually, free_port, scratch_database, spawn_replica, spawn_replica_with};

/// A loopback TCP proxy to one address that can be cut and restored.
struct Proxy {
    port: u16,
    target: SocketAddr,
    accepting: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a proxy port");
        let mut proxy = Self {
            port: listener.local_addr().expect("an address").port(),
            target,
            accepting: None,
            connections: Arc::default(),
        };
        proxy.accept(listener);
        proxy
    }

    fn accept(&mut self, listener: TcpListener) {
        let (target, connections) = (self.target, Arc::clone(&self.connections));
        self.accepting = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(relay.abort_handle());
            }
        }));
    }

    /// Closes every connection and stops listening: new connections are refused.
    fn cut(&mut self) {
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// Listens on the same port again.
    async fn restore(&mut self) {
        let port = self.port;
        let listener = Mutex::new(None);
        eventually(
            Duration::from_secs(10),
            "listening on the proxy port again",
            || async {
                let bound = TcpListener::bind(("127.0.0.1", port)).await.ok();
                let done = bound.is_some();
                *listener.lock().unwrap() = bound;
                done
            },
        )
        .await;
        self.accept(listener.into_inner().unwrap().expect("bound"));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// The server's address and a key/value URL of `url`'s database through `port`.
fn through_proxy(url: &str) -> (SocketAddr, impl Fn(u16) -> String) {
    let config: tokio_postgres::Config = url.parse().expect("a database URL");
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("the outage test needs a TCP server, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let target = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .expect("the server resolves")
        .next()
        .expect("an address");
    let user = config.get_user().unwrap_or("postgres").to_owned();
    let dbname = config.get_dbname().unwrap_or("postgres").to_owned();
    let password = config
        .get_password()
        .map(|p| format!(" password={}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    (target, move |port| {
        format!("host=127.0.0.1 port={port} user={user} dbname={dbname}{password}")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn while_the_database_is_away_reads_go_on_writes_fail_fast_and_health_says_so_until_it_returns() {
    let Some(database) = scratch_database("a database outage").await else {
        return;
    };
    let (target, url_through) = through_proxy(database.url());
    let mut proxy = Proxy::start(target).await;
    let app = spawn_replica(&url_through(proxy.port)).await;
    app.create_ok("Ann", "ann@x.com").await;
    let mut subscriber = Subscriber::open(&app, Value::Null).await;
    subscriber.sync(&app, "probe").await;

    proxy.cut();
    eventually(Duration::from_secs(10), "/health turning 503", || async {
        app.get("/health").await.status() == 503
    })
    .await;
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["status"], "unavailable", "{health}");
    assert!(
        health["writeError"]
            .as_str()
            .is_some_and(|e| e.contains("database")),
        "{health}"
    );
    let names: Vec<Value> = app.all_users().await.iter().map(|u| u["name"].clone()).collect();
    assert!(
        names.contains(&json!("Ann")),
        "reads answer from the last snapshot: {names:?}"
    );

    let started = Instant::now();
    let refused = app
        .gql(
            "mutation { createUser(userData: {name: \"Cy\", email: \"cy@x.com\"}) { ok } }",
            json!({}),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a write waited {:?}",
        started.elapsed()
    );
    let error = &refused["errors"][0];
    assert_eq!(error["extensions"]["code"], "STORAGE_UNAVAILABLE", "{refused}");
    assert!(
        error["message"].as_str().is_some_and(|m| m.contains("database")),
        "the message names the cause: {refused}"
    );

    // A change made meanwhile by someone else is not missed.
    let (direct, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    direct
        .execute(
            "INSERT INTO users (id, name, email) VALUES ('meanwhile', 'Meanwhile', 'm@x.com')",
            &[],
        )
        .await
        .unwrap();

    proxy.restore().await;
    eventually(Duration::from_secs(15), "/health 200 again", || async {
        app.get("/health").await.status() == 200
    })
    .await;
    let (kind, name, _) = subscriber
        .next_event(Duration::from_secs(5))
        .await
        .expect("the change made during the outage");
    assert_eq!((kind.as_str(), name.as_str()), ("CREATED", "Meanwhile"));
    app.create_ok("Dee", "dee@x.com").await;
    let (_, name, _) = subscriber
        .next_event(Duration::from_secs(5))
        .await
        .expect("the next create");
    assert_eq!(name, "Dee", "the outage's change came once");
    let names = app.names("").await;
    assert!(names.starts_with(&["Ann".to_owned()]), "{names:?}");
    assert!(
        names.contains(&"Meanwhile".to_owned()) && names.contains(&"Dee".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"Cy".to_owned()),
        "the refused write changed nothing: {names:?}"
    );
}

/// Runs the binary with `args` (and `DATABASE_URL` when given) to its end, which must come
/// within 60 s: exit code and stderr.
pub(crate) async fn run_roster(args: &[&str], database_url: Option<&str>) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_roster"));
    match database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let child = command
        .args(args)
        .env_remove("USERS_JSON_PATH")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("roster starts");
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("roster ends")
        .expect("its output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_at_start_is_retried_then_one_clear_line_and_exit_1() {
    let port = free_port().to_string();
    let url = format!("postgres://ann:s3cret@127.0.0.1:{port}/roster");
    let (code, stderr) = run_roster(
        &["--port", "0", "--database-url", &url, "--database-wait", "1"],
        None,
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("roster: cannot reach the database at postgres://ann@127.0.0.1:")
            && last.contains("(tried for"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "the password leaked: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_url_with_an_explicit_data_file_is_a_start_up_error() {
    let (code, stderr) = run_roster(
        &[
            "--database-url",
            "postgres://127.0.0.1/roster",
            "--data-file",
            "users.json",
        ],
        None,
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

/// A direct connection to the database, as a person with psql would have.
async fn psql(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("a direct connection");
    tokio::spawn(connection);
    client
}

/// How many of Roster's own statements are waiting for a lock right now.
async fn roster_statements_waiting_for_a_lock(observer: &tokio_postgres::Client) -> i64 {
    observer
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = 'roster' AND datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_write_stuck_behind_a_lock_is_cancelled_at_its_deadline_and_holds_up_nothing_after_it() {
    let Some(database) = scratch_database("a stuck write is cancelled").await else {
        return;
    };
    // One connection for writes: if the stuck write's connection were handed on, every
    // later write would queue behind its statement.
    let app = spawn_replica_with(database.url(), &["--database-pool", "1"]).await;
    let id = app.create_ok("Ann", "ann@x.com").await;
    // Someone holds Ann's row in an open transaction and walks away.
    let holder = psql(database.url()).await;
    holder.batch_execute("BEGIN").await.unwrap();
    holder
        .execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&id])
        .await
        .unwrap();
    let stuck = app
        .gql(
            "mutation($u: UserInput!) { updateUser(userData: $u) { ok message } }",
            json!({ "u": { "id": id, "name": "Ann B", "email": "ann@x.com" } }),
        )
        .await;
    assert_eq!(
        stuck["errors"][0]["extensions"]["code"], "STORAGE_UNAVAILABLE",
        "a write that cannot finish in time fails: {stuck}"
    );
    // While the lock is still held, nothing of Roster's waits for it any more.
    let observer = psql(database.url()).await;
    eventually(
        Duration::from_secs(5),
        "the late statement cancelled on the server",
        || async { roster_statements_waiting_for_a_lock(&observer).await == 0 },
    )
    .await;
    let bob = app.create_user("Bob", "bob@x.com").await;
    assert_eq!(bob["ok"], true, "an unrelated write goes through at once: {bob}");
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "a successful write clears the failure");
    holder.batch_execute("ROLLBACK").await.unwrap();
}
