//! The follower: the one task that owns a replica's copy of the users.
//!
//! It holds a dedicated connection that LISTENs on `roster_users`, where a trigger
//! announces every insert, update and delete (whoever makes it), and it receives this
//! replica's own commits from the writers. It applies both to the [`Replica`], publishes
//! one snapshot for everything that was ready, and only then lets the writers answer.
//! When the connection is lost it marks the store unhealthy, reconnects with a growing
//! pause, and reads the whole table again, so nothing said meanwhile is missed. Every
//! [`CACHE_TTL`] it also checks the table's row count and revision sum against its copy
//! (as of the same snapshot, see [`Replica::totals_as_of`]) and reads everything again on a
//! difference: the safety net the file store's TTL is.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, Client, Config, IsolationLevel, NoTls, Notification};

use super::replica::{Replica, Totals};
use super::rows::{Notice, RowChange, StoredRow, USER_COLUMNS, XidSnapshot};
use super::{Shared, describe, migrate};
use crate::adapters::cache::CACHE_TTL;
use crate::domain::UserEvent;

/// The channel the trigger notifies.
pub const CHANNEL: &str = "roster_users";

const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MOST: Duration = Duration::from_secs(2);
/// How long a consistency check may take before the connection counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// The most queued messages handled before one publish.
const BATCH: usize = 4096;

/// Why the replica read the whole table, or applied notified rows: the `cause` label of
/// `roster_store_reloads_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// The first read, at start.
    Start,
    /// Changed rows applied from notifications.
    Notify,
    /// A full read after a lost connection or a bulk change (a `TRUNCATE`, an import).
    Resync,
    /// A full read because the periodic check found the copy differed.
    Ttl,
}

impl Reload {
    fn label(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Notify => "notify",
            Self::Resync => "resync",
            Self::Ttl => "ttl",
        }
    }

    fn count(self) {
        metrics::counter!("roster_store_reloads_total", "cause" => self.label()).increment(1);
    }
}

/// A transaction this replica committed, for the follower to apply before the writer
/// answers.
pub struct Committed {
    pub tx: u64,
    pub changes: Vec<RowChange>,
    pub done: oneshot::Sender<()>,
}

/// Why the follower could not start.
pub enum StartError {
    /// Worth retrying: the server did not answer or the connection broke.
    Unreachable(String),
    /// Not worth retrying: the server answered with a refusal.
    Refused(String),
}

impl From<tokio_postgres::Error> for StartError {
    fn from(err: tokio_postgres::Error) -> Self {
        if err.as_db_error().is_some() {
            Self::Refused(describe(&err))
        } else {
            Self::Unreachable(describe(&err))
        }
    }
}

type Notices = mpsc::UnboundedReceiver<Result<Notification, tokio_postgres::Error>>;

struct Link {
    client: Client,
    notices: Notices,
}

/// A consistency check waiting for its marker to come back through the stream.
struct Check {
    tag: String,
    seen: XidSnapshot,
    totals: Totals,
    /// Ticks since it was sent.
    age: u32,
}

pub struct Follower {
    config: Config,
    shared: Arc<Shared>,
    replica: Replica,
    link: Option<Link>,
    commits: Option<mpsc::UnboundedReceiver<Committed>>,
    /// Tells this replica's markers from another's.
    nonce: String,
    checks: u64,
    check: Option<Check>,
    retry_at: Instant,
    retry_delay: Duration,
}

enum Event {
    Commit(Option<Committed>),
    Notice(Option<Result<Notification, tokio_postgres::Error>>),
    Tick,
    Retry,
}

/// Opens a connection that LISTENs on [`CHANNEL`]; its notifications (or the error that
/// ended it) arrive on the returned receiver.
async fn listen(config: &Config) -> Result<(Client, Notices), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (sender, notices) = mpsc::unbounded_channel();
    // Unbounded on purpose: the connection task must never wait for the follower, or a
    // query the follower awaits on the same connection could never be read.
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(notice))) => {
                    if sender.send(Ok(notice)).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    let _ = sender.send(Err(err));
                    return;
                }
                None => return,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok((client, notices))
}

/// Every user, and the snapshot that says which transactions the read saw.
async fn read_all(client: &mut Client) -> Result<(Vec<StoredRow>, XidSnapshot), tokio_postgres::Error> {
    let transaction = super::consistent_read(client).await?;
    let seen: String = transaction
        .query_one("SELECT pg_current_snapshot()::text", &[])
        .await?
        .try_get(0)?;
    let rows = transaction
        .query(
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY position, id"),
            &[],
        )
        .await?;
    transaction.commit().await?;
    let rows = rows.iter().map(StoredRow::from_row).collect::<Result<_, _>>()?;
    // Unparseable only if the server changed its text form; seeing nothing is then safe:
    // revisions still order every notification.
    Ok((rows, XidSnapshot::parse(&seen).unwrap_or_default()))
}

impl Follower {
    /// Connects, applies the migrations, starts listening and reads every user.
    pub async fn start(config: Config, shared: Arc<Shared>) -> Result<Self, StartError> {
        let (mut client, notices) = listen(&config).await?;
        migrate::migrate(&mut client).await?;
        let mut follower = Self {
            config,
            shared,
            replica: Replica::default(),
            link: Some(Link { client, notices }),
            commits: None,
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            checks: 0,
            check: None,
            retry_at: Instant::now(),
            retry_delay: RETRY_FIRST,
        };
        follower.resync(Reload::Start).await?;
        Ok(follower)
    }

    /// Hands the follower the queue of this replica's commits.
    pub fn attach(&mut self, commits: mpsc::UnboundedReceiver<Committed>) {
        self.commits = Some(commits);
    }

    /// Runs until the repository (the commits' sender) is dropped.
    pub async fn run(mut self) {
        let Some(mut commits) = self.commits.take() else {
            return;
        };
        let mut tick = tokio::time::interval_at(Instant::now() + CACHE_TTL, CACHE_TTL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = match &mut self.link {
                Some(link) => tokio::select! {
                    commit = commits.recv() => Event::Commit(commit),
                    notice = link.notices.recv() => Event::Notice(notice),
                    _ = tick.tick() => Event::Tick,
                },
                None => tokio::select! {
                    commit = commits.recv() => Event::Commit(commit),
                    () = tokio::time::sleep_until(self.retry_at) => Event::Retry,
                },
            };
            let version = self.replica.version();
            let mut events = Vec::new();
            let mut acks = Vec::new();
            let mut notices = Vec::new();
            match event {
                Event::Commit(None) => return,
                Event::Commit(Some(commit)) => self.own_commit(commit, &mut events, &mut acks),
                Event::Notice(Some(Ok(notice))) => notices.push(notice),
                Event::Notice(Some(Err(err))) => self.lost(&describe(&err)),
                Event::Notice(None) => self.lost("the connection closed"),
                Event::Tick => self.tick().await,
                Event::Retry => self.reconnect().await,
            }
            // Everything else already waiting goes into the same publish.
            while acks.len() < BATCH
                && let Ok(commit) = commits.try_recv()
            {
                self.own_commit(commit, &mut events, &mut acks);
            }
            if let Some(link) = &mut self.link {
                while notices.len() < BATCH {
                    match link.notices.try_recv() {
                        Ok(Ok(notice)) => notices.push(notice),
                        Ok(Err(err)) => {
                            let cause = describe(&err);
                            self.apply_notices(std::mem::take(&mut notices), &mut events)
                                .await;
                            self.lost(&cause);
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            let notified = !notices.is_empty();
            let reread = self.apply_notices(notices, &mut events).await;
            if self.replica.version() != version {
                if notified {
                    Reload::Notify.count();
                }
                self.publish(events);
            }
            for ack in acks {
                let _ = ack.send(());
            }
            if let Some(cause) = reread {
                self.resync(cause)
                    .await
                    .unwrap_or_else(|err| self.lost(&describe(&err)));
            }
        }
    }

    fn own_commit(
        &mut self,
        commit: Committed,
        events: &mut Vec<UserEvent>,
        acks: &mut Vec<oneshot::Sender<()>>,
    ) {
        events.extend(
            self.replica
                .apply_own_commit(commit.tx, commit.changes, Utc::now()),
        );
        acks.push(commit.done);
    }

    /// Applies notifications in order. Returns why the whole table must be read again,
    /// if it must.
    async fn apply_notices(
        &mut self,
        notices: Vec<Notification>,
        events: &mut Vec<UserEvent>,
    ) -> Option<Reload> {
        let mut reread = None;
        for notification in notices {
            match Notice::parse(notification.payload()) {
                Err(err) => tracing::warn!(error = %err, "ignored a notification"),
                Ok(Notice::Resync) => reread = Some(Reload::Resync),
                Ok(Notice::Marker(tag)) => {
                    if self.marker(&tag) {
                        reread = reread.or(Some(Reload::Ttl));
                    }
                }
                Ok(Notice::Row { tx, id, change, .. }) => {
                    let change = match change {
                        Some(change) => Some(change),
                        None if self.replica.wants(tx) => match self.read_row(&id).await {
                            Ok(row) => row,
                            Err(err) => {
                                self.lost(&describe(&err));
                                return None;
                            }
                        },
                        None => None,
                    };
                    events.extend(
                        self.replica
                            .apply_notified(tx, change.into_iter().collect(), Utc::now()),
                    );
                }
            }
        }
        reread
    }

    /// The current row of a user whose change did not fit in its notification.
    async fn read_row(
        &mut self,
        id: &crate::domain::UserId,
    ) -> Result<Option<RowChange>, tokio_postgres::Error> {
        let Some(link) = &self.link else {
            return Ok(None);
        };
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = link.client.query_opt(&sql, &[&id.as_str()]).await?;
        row.as_ref()
            .map(StoredRow::from_row)
            .transpose()
            .map(|row| row.map(RowChange::Upsert))
    }

    /// Whether the marker `tag` ends this replica's check with a difference.
    fn marker(&mut self, tag: &str) -> bool {
        let Some(check) = self.check.take_if(|check| check.tag == tag) else {
            return false;
        };
        match self.replica.totals_as_of(&check.seen) {
            Some(ours) if ours != check.totals => {
                tracing::warn!(
                    database_rows = check.totals.rows,
                    replica_rows = ours.rows,
                    "the replica's copy differed from the database; reading every user again"
                );
                true
            }
            _ => false,
        }
    }

    /// Sends a consistency check, unless one is still on its way.
    async fn tick(&mut self) {
        if let Some(check) = &mut self.check {
            check.age += 1;
            if check.age >= 3 {
                self.lost("the connection stopped delivering notifications");
            }
            return;
        }
        let Some(link) = &mut self.link else { return };
        self.checks += 1;
        let tag = format!("{}-{}", self.nonce, self.checks);
        self.replica.start_journal();
        let marker = serde_json::json!({ "op": "M", "tag": tag }).to_string();
        let client = &mut link.client;
        let sent = tokio::time::timeout(CHECK_TIMEOUT, async move {
            let transaction = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .start()
                .await?;
            let row = transaction
                .query_one(
                    "SELECT count(*), coalesce(sum(revision), 0)::text, pg_current_snapshot()::text FROM users",
                    &[],
                )
                .await?;
            transaction
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &marker])
                .await?;
            transaction.commit().await?;
            let rows: i64 = row.try_get(0)?;
            let revisions: String = row.try_get(1)?;
            let seen: String = row.try_get(2)?;
            Ok::<_, tokio_postgres::Error>((rows, revisions, seen))
        })
        .await;
        match sent {
            Err(_) => self.lost("a consistency check got no answer"),
            Ok(Err(err)) => self.lost(&describe(&err)),
            Ok(Ok((rows, revisions, seen))) => {
                if let (Ok(revisions), Some(seen)) = (revisions.parse(), XidSnapshot::parse(&seen)) {
                    self.check = Some(Check {
                        tag,
                        seen,
                        totals: Totals { rows, revisions },
                        age: 0,
                    });
                }
            }
        }
    }

    /// Reads every user again and publishes the difference.
    async fn resync(&mut self, cause: Reload) -> Result<(), tokio_postgres::Error> {
        let Some(link) = &mut self.link else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let (rows, seen) = read_all(&mut link.client).await?;
        let events = self.replica.reset(rows, seen, Utc::now());
        self.check = None;
        cause.count();
        tracing::info!(
            users = self.replica.len(),
            cause = cause.label(),
            took_ms = started.elapsed().as_millis() as u64,
            "read every user from the database"
        );
        self.publish(events);
        Ok(())
    }

    fn publish(&self, events: Vec<UserEvent>) {
        self.shared.publish(self.replica.snapshot(), events);
    }

    /// Marks the connection lost; the next turn of the loop reconnects.
    fn lost(&mut self, cause: &str) {
        if self.link.take().is_none() {
            return;
        }
        self.check = None;
        let message = format!(
            "lost the connection to the database at {}: {cause}",
            self.shared.location
        );
        tracing::warn!(error = %message, "serving the last snapshot; writes fail until the database is back");
        self.shared.health().link_error = Some(message);
        self.retry_at = Instant::now();
        self.retry_delay = RETRY_FIRST;
    }

    async fn reconnect(&mut self) {
        match listen(&self.config).await {
            Ok((client, notices)) => {
                self.link = Some(Link { client, notices });
                match self.resync(Reload::Resync).await {
                    Ok(()) => {
                        let mut health = self.shared.health();
                        health.link_error = None;
                        health.write_error = None;
                        drop(health);
                        tracing::info!(database = %self.shared.location, "reconnected to the database");
                    }
                    Err(err) => {
                        self.link = None;
                        self.failed_retry(&describe(&err));
                    }
                }
            }
            Err(err) => self.failed_retry(&describe(&err)),
        }
    }

    fn failed_retry(&mut self, cause: &str) {
        let message = format!("cannot reach the database at {}: {cause}", self.shared.location);
        tracing::debug!(error = %message, "reconnecting failed");
        self.shared.health().link_error = Some(message);
        self.retry_at = Instant::now() + self.retry_delay;
        self.retry_delay = (self.retry_delay * 2).min(RETRY_MOST);
    }
}
