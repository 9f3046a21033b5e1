//! `PostgresUserRepository`: the users live in a PostgreSQL table that any number of
//! replicas share (SPEC §8).
//!
//! Writes go straight to the database, one transaction per change, with a unique index
//! on the normalised email deciding uniqueness across replicas. Reads never touch the
//! database: each replica keeps the whole list in memory (search and fuzzy stay as fast
//! as on the file), and one task, the [`follower`], keeps it current from a trigger's
//! LISTEN/NOTIFY stream, applying each changed row by id, and reads the whole table again
//! after a lost connection. While the database is unreachable, reads answer from the last
//! snapshot, writes fail within [`PostgresOptions::timeout`], and health says why.

mod follower;
mod migrate;
mod replica;
mod rows;
pub mod scratch;
pub mod transfer;
mod writes;

use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use crate::domain::{Change, ChangeOutcome, UserEvent, UserSnapshot};
use crate::ports::{RepositoryError, StorageHealth, UserRepository};

/// How many events a subscriber may fall behind before it is dropped (as for the file).
pub const EVENT_BUFFER: usize = 1024;

/// How to reach the database and how long to wait for it.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// A libpq-style URL or key/value string (`postgres://user@host:5432/db`).
    pub url: String,
    /// How long start-up keeps retrying an unreachable database.
    pub start_wait: Duration,
    /// The longest a write may take, waiting for a connection included, before it fails.
    pub timeout: Duration,
    /// Connections kept for writes.
    pub pool_size: usize,
}

impl PostgresOptions {
    /// The defaults for `url`: 10 s to start, 5 s per write, 16 connections.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            start_wait: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            pool_size: 16,
        }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    #[error("cannot reach the database at {location} (tried for {waited_s:.1} s): {cause}")]
    Unreachable {
        location: String,
        waited_s: f64,
        cause: String,
    },
    #[error("cannot use the database at {location}: {cause}")]
    Refused { location: String, cause: String },
}

/// The user store over a PostgreSQL table.
pub struct PostgresUserRepository {
    pool: Pool,
    shared: Arc<Shared>,
    inbox: mpsc::UnboundedSender<follower::Committed>,
    follower: JoinHandle<()>,
    timeout: Duration,
}

/// What the follower publishes and every caller reads.
struct Shared {
    /// The database as a person would name it, without its password.
    location: String,
    published: Mutex<Arc<UserSnapshot>>,
    health: Mutex<Health>,
    events: broadcast::Sender<UserEvent>,
    /// Called after every publish (the cache in front of this store forgets its copy).
    on_change: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

#[derive(Default)]
struct Health {
    /// Set while the follower has no connection.
    link_error: Option<String>,
    write_error: Option<String>,
    last_reload: Option<DateTime<Utc>>,
    last_write: Option<DateTime<Utc>>,
}

impl Shared {
    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a new list and its events, in that order for every subscriber.
    fn publish(&self, snapshot: UserSnapshot, events: Vec<UserEvent>) {
        {
            let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
            for event in events {
                let _ = self.events.send(event);
            }
            *published = Arc::new(snapshot);
        }
        self.health().last_reload = Some(Utc::now());
        if let Some(hook) = self.on_change.get() {
            hook();
        }
    }
}

/// The URL as it may be shown: scheme, user, hosts, ports and database, never a password.
pub fn redacted(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            tokio_postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
        })
        .collect();
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let database = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{database}", hosts.join(","))
}

/// Parses a database URL and applies Roster's connection settings to it.
///
/// # Errors
/// [`ConnectError::InvalidUrl`] naming what is wrong (never echoing a password).
pub fn connection_config(url: &str, timeout: Duration) -> Result<tokio_postgres::Config, ConnectError> {
    let mut config =
        tokio_postgres::Config::from_str(url).map_err(|err| ConnectError::InvalidUrl(describe(&err)))?;
    if config.get_hosts().is_empty() {
        return Err(ConnectError::InvalidUrl("it names no host".into()));
    }
    if config.get_application_name().is_none() {
        config.application_name("roster");
    }
    // A peer that vanishes without closing the connection is noticed within seconds.
    config
        .connect_timeout(timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(1))
        .keepalives_retries(3);
    Ok(config)
}

/// A read-only transaction that sees one snapshot for all its queries.
///
/// # Errors
/// The driver's error.
pub(crate) async fn consistent_read(
    client: &mut tokio_postgres::Client,
) -> Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

/// An error and its causes on one line.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text.replace('\n', "; ")
}

/// Tries `attempt` until it succeeds, is refused, or `wait` has passed, pausing a little
/// longer after each failure.
async fn with_retries<T, F, Fut>(location: &str, wait: Duration, mut attempt: F) -> Result<T, ConnectError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, follower::StartError>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(follower::StartError::Refused(cause)) => {
                return Err(ConnectError::Refused {
                    location: location.to_owned(),
                    cause,
                });
            }
            Err(follower::StartError::Unreachable(cause)) => {
                if started.elapsed() + delay > wait {
                    return Err(ConnectError::Unreachable {
                        location: location.to_owned(),
                        waited_s: started.elapsed().as_secs_f64(),
                        cause,
                    });
                }
                tracing::warn!(database = %location, error = %cause, "database not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// A plain connection to a migrated database, for the import and export subcommands, and
/// the database's name as it may be shown.
///
/// # Errors
/// As [`PostgresUserRepository::connect`].
pub async fn connect_migrated(
    url: &str,
    wait: Duration,
) -> Result<(tokio_postgres::Client, String), ConnectError> {
    let config = connection_config(url, Duration::from_secs(5))?;
    let location = redacted(&config);
    let client = with_retries(&location, wait, || async {
        let (mut client, connection) = config.connect(NoTls).await?;
        tokio::spawn(connection);
        migrate::migrate(&mut client).await?;
        Ok(client)
    })
    .await?;
    Ok((client, location))
}

impl PostgresUserRepository {
    /// Connects (retrying for [`PostgresOptions::start_wait`]), applies the migrations,
    /// reads every user and starts following changes.
    ///
    /// # Errors
    /// [`ConnectError`] naming the database (without its password) and the cause.
    pub async fn connect(options: PostgresOptions) -> Result<Self, ConnectError> {
        let config = connection_config(&options.url, options.timeout.min(Duration::from_secs(5)))?;
        let location = redacted(&config);
        let shared = Arc::new(Shared {
            location: location.clone(),
            published: Mutex::new(Arc::default()),
            health: Mutex::new(Health::default()),
            events: broadcast::channel(EVENT_BUFFER).0,
            on_change: OnceLock::new(),
        });
        let shared_for_start = Arc::clone(&shared);
        let start_config = config.clone();
        let mut follower = with_retries(&location, options.start_wait, move || {
            follower::Follower::start(start_config.clone(), Arc::clone(&shared_for_start))
        })
        .await?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|err| ConnectError::InvalidUrl(err.to_string()))?;
        let (inbox, commits) = mpsc::unbounded_channel();
        follower.attach(commits);
        let follower = tokio::spawn(follower.run());
        tracing::info!(database = %location, "using PostgreSQL");
        Ok(Self {
            pool,
            shared,
            inbox,
            follower,
            timeout: options.timeout,
        })
    }

    /// Calls `hook` after every change this replica publishes (once; later calls are
    /// ignored). The composition root uses it to end the cache's trust in its copy.
    pub fn on_change(&self, hook: impl Fn() + Send + Sync + 'static) {
        let _ = self.shared.on_change.set(Box::new(hook));
    }

    /// The database as it may be shown: without its password.
    pub fn location(&self) -> &str {
        &self.shared.location
    }

    async fn write(&self, change: Change) -> Result<writes::Applied, String> {
        let mut client = self.pool.get().await.map_err(|err| {
            format!(
                "cannot reach the database at {}: {}",
                self.shared.location,
                describe(&err)
            )
        })?;
        writes::apply(&mut client, change).await.map_err(|err| {
            format!(
                "the database at {} failed: {}",
                self.shared.location,
                describe(&err)
            )
        })
    }
}

impl Drop for PostgresUserRepository {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

#[async_trait]
impl UserRepository for PostgresUserRepository {
    async fn snapshot(&self) -> Result<Arc<UserSnapshot>, RepositoryError> {
        Ok(Arc::clone(
            &self.shared.published.lock().unwrap_or_else(|p| p.into_inner()),
        ))
    }

    async fn apply(&self, change: Change) -> Result<ChangeOutcome, RepositoryError> {
        let started = Instant::now();
        let written = match tokio::time::timeout(self.timeout, self.write(change)).await {
            Ok(written) => written,
            Err(_) => Err(format!(
                "the database at {} did not answer within {} s",
                self.shared.location,
                self.timeout.as_secs_f64()
            )),
        };
        metrics::counter!("roster_store_write_batches_total").increment(1);
        metrics::histogram!("roster_store_write_batch_size").record(1.0);
        metrics::histogram!("roster_store_write_duration_seconds").record(started.elapsed().as_secs_f64());
        let applied = match written {
            Ok(applied) => applied,
            Err(cause) => {
                metrics::counter!("roster_store_write_failures_total").increment(1);
                tracing::error!(error = %cause, "a write failed; nothing was changed");
                self.shared.health().write_error = Some(cause.clone());
                return Err(RepositoryError::Unavailable(cause));
            }
        };
        {
            let mut health = self.shared.health();
            health.write_error = None;
            if applied.tx.is_some() {
                health.last_write = Some(Utc::now());
            }
        }
        if let Some(tx) = applied.tx {
            // Read-your-writes: the replica shows the change before the caller hears of it.
            let (done, applied_here) = oneshot::channel();
            let handed = self.inbox.send(follower::Committed {
                tx,
                changes: applied.changes,
                done,
            });
            if handed.is_ok() {
                let _ = applied_here.await;
            }
        }
        Ok(applied.outcome)
    }

    fn health(&self) -> StorageHealth {
        let health = self.shared.health();
        StorageHealth {
            location: self.shared.location.clone(),
            write_error: health.link_error.clone().or_else(|| health.write_error.clone()),
            last_reload: health.last_reload,
            last_write: health.last_write,
            corrupt: None,
            durability_warning: None,
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<UserEvent> {
        self.shared.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_location_never_carries_the_password() {
        let config = connection_config(
            "postgres://ann:s3cret@db.example:6543/roster",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(redacted(&config), "postgres://ann@db.example:6543/roster");
        let config = connection_config(
            "host=localhost user=bob password=hunter2 dbname=x",
            Duration::from_secs(1),
        )
        .unwrap();
        let shown = redacted(&config);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, "postgres://bob@localhost:5432/x");
    }

    #[test]
    fn a_url_without_a_host_or_that_does_not_parse_is_refused() {
        assert!(matches!(
            connection_config("postgres:///x", Duration::from_secs(1)),
            Err(ConnectError::InvalidUrl(_))
        ));
        let refused = connection_config("postgres://a:pw@h:notaport/x", Duration::from_secs(1)).unwrap_err();
        assert!(!refused.to_string().contains("pw@"), "{refused}");
    }
}
