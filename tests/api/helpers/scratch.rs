//! Throwaway databases, for tests and benchmarks: each gets a database of its own on a
//! shared server, created with a unique name and dropped afterwards, so runs never see
//! each other's users and leave nothing behind.
//!
//! Test code only, kept out of the library: the integration tests hold it as
//! `helpers::scratch`, the benchmarks include this file with `#[path]`, so it names the
//! library as `roster::` and nothing of the tests.

use std::io::Write;
use std::str::FromStr;

use tokio_postgres::{Config, NoTls};

use roster::adapters::outbound::postgres::describe;

/// The server tests use when `ROSTER_TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The PostgreSQL server for tests, from `ROSTER_TEST_DATABASE_URL` (default
/// [`DEFAULT_TEST_SERVER`]), if it answers. When it does not, `what` is reported loudly as
/// skipped and `None` comes back, unless `ROSTER_REQUIRE_POSTGRES=1`, which makes it a
/// failure (CI sets it).
///
/// # Panics
/// When the server does not answer and `ROSTER_REQUIRE_POSTGRES=1`.
pub async fn test_server(what: &str) -> Option<String> {
    let url = std::env::var("ROSTER_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_SERVER.to_owned());
    let reached = match Config::from_str(&url) {
        Ok(mut config) => {
            config.connect_timeout(std::time::Duration::from_secs(3));
            connect(&config).await.map(drop)
        }
        Err(err) => Err(describe(&err)),
    };
    match reached {
        Ok(()) => Some(url),
        Err(cause) if std::env::var("ROSTER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("ROSTER_REQUIRE_POSTGRES=1 but the test server does not answer: {cause}")
        }
        Err(cause) => {
            // Straight to stderr: the test harness would swallow a captured eprintln! of a
            // test that passes.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED (no PostgreSQL): {what}. The test server does not answer ({cause}); \
                 set ROSTER_TEST_DATABASE_URL, or ROSTER_REQUIRE_POSTGRES=1 to make this a failure. ***\n"
            );
            None
        }
    }
}

/// A database that exists until this value is dropped.
pub struct ScratchDatabase {
    server: Config,
    name: String,
    url: String,
    dropped: bool,
}

impl ScratchDatabase {
    /// Creates a database named `<prefix>_<random>` on the server `server_url` points to
    /// (connecting to the database the URL names, such as `postgres`).
    ///
    /// # Errors
    /// Why the server could not be reached or refused.
    pub async fn create(server_url: &str, prefix: &str) -> Result<Self, String> {
        let mut server = Config::from_str(server_url).map_err(|err| describe(&err))?;
        server.connect_timeout(std::time::Duration::from_secs(3));
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let client = connect(&server).await?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|err| describe(&err))?;
        Ok(Self {
            url: with_database(server_url, &name),
            server,
            name,
            dropped: false,
        })
    }

    /// A URL of the new database, with the server URL's user, password and options.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database, ending any connection still open to it.
    ///
    /// # Errors
    /// Why the server refused.
    pub async fn remove(mut self) -> Result<(), String> {
        self.dropped = true;
        remove(&self.server, &self.name).await
    }
}

impl Drop for ScratchDatabase {
    /// Drops the database from a thread of its own, so that it works inside and outside
    /// an async runtime.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (server, name) = (self.server.clone(), self.name.clone());
        let removed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            runtime.block_on(remove(&server, &name))
        })
        .join();
        if let Ok(Err(err)) = removed {
            eprintln!("could not drop the scratch database {}: {err}", self.name);
        }
    }
}

async fn connect(server: &Config) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = server.connect(NoTls).await.map_err(|err| describe(&err))?;
    tokio::spawn(connection);
    Ok(client)
}

async fn remove(server: &Config, name: &str) -> Result<(), String> {
    let client = connect(server).await?;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .map_err(|err| describe(&err))
}

/// `url` with its database replaced by `name`, in either connection-string form.
pub fn with_database(url: &str, name: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return format!("{url} dbname={name}");
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (head, tail) = url.split_at(scheme_end + 3 + authority_end);
    let query = tail.find('?').map_or("", |at| &tail[at..]);
    format!("{head}/{name}{query}")
}

#[test]
fn a_urls_database_is_replaced_in_either_form() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
        "postgres://u:p@h:5432/x?sslmode=disable"
    );
    assert_eq!(with_database("postgresql://h", "x"), "postgresql://h/x");
    assert_eq!(with_database("host=h user=u", "x"), "host=h user=u dbname=x");
}
