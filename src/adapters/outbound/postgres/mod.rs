//! `PostgresUserRepository`: the users live in a PostgreSQL table that any number of
//! replicas share.
//!
//! Writes go straight to the database, one transaction per change, with a unique index
//! on the normalised email deciding uniqueness across replicas. Reads never touch the
//! database: each replica keeps the whole list in memory (search and fuzzy stay as fast
//! as on the file), and one task, the [`owner`], keeps it current from a trigger's
//! LISTEN/NOTIFY stream, applying each changed row by id, and reads the whole table again
//! after a lost connection. Writers report what they did to the owner by message and read
//! nothing but what it publishes. While the database is unreachable, reads answer from the
//! last snapshot, writes fail within [`PostgresOptions::timeout`], and health says why.

mod history;
mod migrate;
mod owner;
mod replica;
mod rows;
pub mod transfer;
mod writes;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use crate::domain::{Change, ChangeOutcome, UserEvent, UserSnapshot};
use crate::ports::{RepositoryError, StorageHealth, UserRepository};

use owner::{Owner, Published, Report};

/// How many events a subscriber may fall behind before it is dropped (as for the file).
pub const EVENT_BUFFER: usize = 1024;

/// The longest a write waits for the owner to publish its change before it answers from
/// what it committed (the owner may be busy reading the whole table again).
const PUBLISH_WAIT: Duration = Duration::from_secs(2);

/// How to reach the database and how long to wait for it.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// A libpq-style URL or key/value string (`postgres://user@host:5432/db`).
    pub url: String,
    /// How long start-up keeps retrying an unreachable database.
    pub start_wait: Duration,
    /// The longest a write may take, waiting for a connection included, before it fails;
    /// the database cancels a statement still running then, so it holds no lock.
    pub timeout: Duration,
    /// Connections kept for writes.
    pub pool_size: usize,
    /// How often the copy is compared with the table, as a safety net for lost
    /// notifications.
    pub check_every: Duration,
    /// How long the history keeps a change, and how often older ones go (`None`: every
    /// change is kept).
    pub retention: Option<crate::domain::history::Retention>,
}

impl PostgresOptions {
    /// The defaults for `url`: 10 s to start, 5 s per write, 16 connections, a check every
    /// 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            start_wait: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            pool_size: 16,
            check_every: Duration::from_secs(5),
            retention: None,
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

/// The user store over a PostgreSQL table: a handle on the owner task.
pub struct PostgresUserRepository {
    pool: Pool,
    /// The database as a person would name it, without its password.
    location: String,
    reports: mpsc::UnboundedSender<Report>,
    published: watch::Receiver<Arc<Published>>,
    /// The owner's feed, held here only to subscribe to it.
    events: broadcast::Sender<UserEvent>,
    owner: JoinHandle<()>,
    /// Drops old changes from the history now and then.
    compactor: Option<JoinHandle<()>>,
    timeout: Duration,
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
    Fut: std::future::Future<Output = Result<T, owner::StartError>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(owner::StartError::Refused(cause)) => {
                return Err(ConnectError::Refused {
                    location: location.to_owned(),
                    cause,
                });
            }
            Err(owner::StartError::Unreachable(cause)) => {
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
        let setup = owner::Setup {
            config: config.clone(),
            location: location.clone(),
            check_every: options.check_every,
        };
        let (owner, published) = with_retries(&location, options.start_wait, || Owner::start(&setup)).await?;
        // The server ends a write's statement that outlives the write's deadline, so an
        // abandoned write never keeps its locks.
        let mut writers = config;
        writers.options(format!(
            "-c statement_timeout={}",
            options.timeout.as_millis().max(1)
        ));
        let manager = Manager::from_config(
            writers,
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
        let (reports, inbox) = mpsc::unbounded_channel();
        let events = owner.feed();
        let owner = tokio::spawn(owner.run(inbox));
        let compactor = options
            .retention
            .map(|retention| tokio::spawn(history::compact_every(pool.clone(), location.clone(), retention)));
        tracing::info!(database = %location, "using PostgreSQL");
        Ok(Self {
            pool,
            location,
            reports,
            published,
            events,
            owner,
            compactor,
            timeout: options.timeout,
        })
    }

    /// The database as it may be shown: without its password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Makes the change in the database within the write deadline. A write that runs out
    /// of time is cancelled on the server and its connection is not handed to another
    /// write: a statement still running there would delay whatever came next.
    async fn write(&self, change: Change) -> Result<writes::Applied, String> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let late = || {
            format!(
                "the database at {} did not answer within {} s",
                self.location,
                self.timeout.as_secs_f64()
            )
        };
        let mut client = match tokio::time::timeout_at(deadline, self.pool.get()).await {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => {
                return Err(format!(
                    "cannot reach the database at {}: {}",
                    self.location,
                    describe(&err)
                ));
            }
            Err(_) => return Err(late()),
        };
        // The history records who made the change.
        let source = crate::ports::change_source();
        match tokio::time::timeout_at(deadline, history::name_source(&client, &source)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                return Err(format!(
                    "the database at {} failed: {}",
                    self.location,
                    describe(&err)
                ));
            }
            Err(_) => {
                drop(Object::take(client));
                return Err(late());
            }
        }
        match tokio::time::timeout_at(deadline, writes::apply(&mut client, change)).await {
            Ok(done) => {
                done.map_err(|err| format!("the database at {} failed: {}", self.location, describe(&err)))
            }
            Err(_) => {
                let cancel = client.cancel_token();
                drop(Object::take(client));
                tokio::spawn(async move {
                    if let Err(err) = cancel.cancel_query(NoTls).await {
                        tracing::debug!(error = %describe(&err), "could not cancel a late write");
                    }
                });
                Err(late())
            }
        }
    }

    fn published(&self) -> Arc<Published> {
        Arc::clone(&self.published.borrow())
    }
}

impl Drop for PostgresUserRepository {
    fn drop(&mut self) {
        self.owner.abort();
        if let Some(compactor) = &self.compactor {
            compactor.abort();
        }
    }
}

#[async_trait]
impl UserRepository for PostgresUserRepository {
    async fn snapshot(&self) -> Result<Arc<UserSnapshot>, RepositoryError> {
        Ok(self.latest())
    }

    fn latest(&self) -> Arc<UserSnapshot> {
        Arc::clone(&self.published().snapshot)
    }

    async fn indexed(&self) -> Result<Arc<UserSnapshot>, RepositoryError> {
        let mut published = self.published.clone();
        let ready = published
            .wait_for(|published| published.snapshot.set().is_indexed())
            .await
            .map_err(|_| RepositoryError::Closed)?;
        Ok(Arc::clone(&ready.snapshot))
    }

    async fn apply(&self, change: Change) -> Result<ChangeOutcome, RepositoryError> {
        let started = Instant::now();
        let written = self.write(change).await;
        metrics::counter!("roster_store_write_batches_total").increment(1);
        metrics::histogram!("roster_store_write_batch_size").record(1.0);
        metrics::histogram!("roster_store_write_duration_seconds").record(started.elapsed().as_secs_f64());
        let applied = match written {
            Ok(applied) => applied,
            Err(cause) => {
                metrics::counter!("roster_store_write_failures_total").increment(1);
                tracing::error!(error = %cause, "a write failed; nothing was changed");
                let _ = self.reports.send(Report::Failed(cause.clone()));
                return Err(RepositoryError::Unavailable(cause));
            }
        };
        let Some(tx) = applied.tx else {
            let _ = self.reports.send(Report::Answered);
            return Ok(applied.outcome);
        };
        // Read-your-writes: the replica shows the change before the caller hears of it,
        // unless the owner cannot get to it in time (the change is committed all the same).
        let (done, published) = oneshot::channel();
        let handed = self.reports.send(Report::Committed {
            tx,
            changes: applied.changes,
            at: chrono::Utc::now(),
            done,
        });
        if handed.is_ok() && tokio::time::timeout(PUBLISH_WAIT, published).await.is_err() {
            tracing::warn!("a committed change was not published in time; answering from the commit");
        }
        Ok(applied.outcome)
    }

    fn health(&self) -> StorageHealth {
        self.published().health.clone()
    }

    fn subscribe(&self) -> broadcast::Receiver<UserEvent> {
        self.events.subscribe()
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
