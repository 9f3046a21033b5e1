//! The owner: the one task that owns a replica's copy of the users, its health record and
//! its event feed.
//!
//! It holds a dedicated connection that LISTENs on `roster_users`, where a trigger
//! announces every insert, update and delete (whoever makes it), and the writers report to
//! it by message: a commit (with the rows it changed) or a failure. It applies both to the
//! [`Replica`], publishes one snapshot for everything that was ready, and only then lets
//! the writers answer. Nobody else changes what readers see: they read the published cell.
//! When the connection is lost it marks the store unhealthy, reconnects with a growing
//! pause, and reads the whole table again, so nothing said meanwhile is missed. Every
//! check interval it also compares the table's row count and revision sum with its copy
//! (as of the same snapshot, see [`Replica::totals_as_of`]) and reads everything again on a
//! difference: the safety net the file store's periodic check is.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::futures_util::{TryStreamExt, pin_mut};
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, Client, Config, IsolationLevel, NoTls, Notification};

use super::replica::{Replica, Totals};
use super::rows::{Notice, RowChange, StoredRow, USER_COLUMNS, XidSnapshot};
use super::{describe, migrate};
use crate::domain::{UserEvent, UserSnapshot};
use crate::ports::StorageHealth;

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

/// What a writer tells the owner about the write it just made.
pub enum Report {
    /// A transaction committed: the owner applies its rows, publishes, then answers `done`.
    Committed {
        tx: u64,
        changes: Vec<RowChange>,
        at: DateTime<Utc>,
        done: oneshot::Sender<()>,
    },
    /// A write reached the database and changed nothing (a refusal): the store can write.
    Answered,
    /// A write failed: health says why until a write succeeds.
    Failed(String),
}

/// What readers see: the latest snapshot and the store's health, replaced whole by the
/// owner and never changed in place.
#[derive(Debug)]
pub struct Published {
    pub snapshot: Arc<UserSnapshot>,
    pub health: StorageHealth,
}

/// The owner's health record, from which the published one is made.
#[derive(Default)]
struct Health {
    /// Set while the owner has no connection.
    link_error: Option<String>,
    write_error: Option<String>,
    last_reload: Option<DateTime<Utc>>,
    last_write: Option<DateTime<Utc>>,
}

/// Why the owner could not start.
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

/// The owner's state. Nothing here is shared: readers see only what [`Owner::publish`]
/// puts in the published cell, subscribers only what it sends on the feed.
pub struct Owner {
    config: Config,
    /// The database as a person would name it, without its password.
    location: String,
    replica: Replica,
    health: Health,
    published: watch::Sender<Arc<Published>>,
    events: broadcast::Sender<UserEvent>,
    check_every: Duration,
    link: Option<Link>,
    /// Tells this replica's markers from another's.
    nonce: String,
    checks: u64,
    check: Option<Check>,
    retry_at: Instant,
    retry_delay: Duration,
    /// The events of this replica's own commits, applied ahead of their notifications, by
    /// transaction: each is sent when its row's notification arrives, with the revision
    /// the history gave it and in the stream's order (the order of the revisions), so a
    /// feed that replays the history and then goes on live sees each change once, in order.
    /// The writer's acknowledgement waits with them: once a write returns, its event has
    /// been announced, as on the file store.
    held: HashMap<u64, Held>,
}

/// One own commit waiting for its notifications.
struct Held {
    events: VecDeque<UserEvent>,
    done: oneshot::Sender<()>,
    since: Instant,
}

enum Event {
    Report(Option<Report>),
    Notice(Option<Result<Notification, tokio_postgres::Error>>),
    Tick,
    Retry,
}

/// Opens a connection that LISTENs on [`CHANNEL`]; its notifications (or the error that
/// ended it) arrive on the returned receiver.
async fn listen(config: &Config) -> Result<(Client, Notices), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (sender, notices) = mpsc::unbounded_channel();
    // Unbounded on purpose: the connection task must never wait for the owner, or a
    // query the owner awaits on the same connection could never be read.
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

/// Every user, and the snapshot that says which transactions the read saw. Rows are turned
/// into users as they arrive, so the driver's copy of the whole table never exists.
async fn read_all(client: &mut Client) -> Result<(Vec<StoredRow>, XidSnapshot), tokio_postgres::Error> {
    let transaction = super::consistent_read(client).await?;
    let row = transaction
        .query_one("SELECT pg_current_snapshot()::text, count(*) FROM users", &[])
        .await?;
    let seen: String = row.try_get(0)?;
    let count: i64 = row.try_get(1)?;
    let stream = transaction
        .query_raw(
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY position, id"),
            std::iter::empty::<&str>(),
        )
        .await?;
    pin_mut!(stream);
    let mut rows = Vec::with_capacity(usize::try_from(count).unwrap_or_default());
    while let Some(row) = stream.try_next().await? {
        rows.push(StoredRow::from_row(&row)?);
    }
    transaction.commit().await?;
    // Unparseable only if the server changed its text form; seeing nothing is then safe:
    // revisions still order every notification.
    Ok((rows, XidSnapshot::parse(&seen).unwrap_or_default()))
}

/// What the owner is made of before it runs: where to connect and what it publishes to.
pub struct Setup {
    pub config: Config,
    pub location: String,
    pub check_every: Duration,
}

impl Owner {
    /// Connects, applies the migrations, starts listening and reads every user; the
    /// returned owner has published what it read.
    pub async fn start(setup: &Setup) -> Result<(Self, watch::Receiver<Arc<Published>>), StartError> {
        let (mut client, notices) = listen(&setup.config).await?;
        migrate::migrate(&mut client).await?;
        let (published, readers) = watch::channel(Arc::new(Published {
            snapshot: Arc::default(),
            health: StorageHealth::default(),
        }));
        let mut owner = Self {
            config: setup.config.clone(),
            location: setup.location.clone(),
            replica: Replica::default(),
            health: Health::default(),
            published,
            events: broadcast::channel(super::EVENT_BUFFER).0,
            check_every: setup.check_every,
            link: Some(Link { client, notices }),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            checks: 0,
            check: None,
            retry_at: Instant::now(),
            retry_delay: RETRY_FIRST,
            held: HashMap::new(),
        };
        owner.resync(Reload::Start).await?;
        Ok((owner, readers))
    }

    /// The feed subscribers listen to; only the owner sends on it.
    pub fn feed(&self) -> broadcast::Sender<UserEvent> {
        self.events.clone()
    }

    /// Runs until every writer (the reports' sender) is gone.
    pub async fn run(mut self, mut reports: mpsc::UnboundedReceiver<Report>) {
        let mut tick = tokio::time::interval_at(Instant::now() + self.check_every, self.check_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // After a full read, readers are served (by scanning) while the indexes are
            // built, before any change is applied.
            self.index().await;
            let event = match &mut self.link {
                Some(link) => tokio::select! {
                    report = reports.recv() => Event::Report(report),
                    notice = link.notices.recv() => Event::Notice(notice),
                    _ = tick.tick() => Event::Tick,
                },
                None => tokio::select! {
                    report = reports.recv() => Event::Report(report),
                    () = tokio::time::sleep_until(self.retry_at) => Event::Retry,
                },
            };
            let version = self.replica.version();
            let health = self.health_view();
            let mut events = Vec::new();
            let mut acks = Vec::new();
            let mut notices = Vec::new();
            match event {
                Event::Report(None) => return,
                Event::Report(Some(report)) => self.report(report, &mut events, &mut acks),
                Event::Notice(Some(Ok(notice))) => notices.push(notice),
                Event::Notice(Some(Err(err))) => self.lost(&describe(&err)),
                Event::Notice(None) => self.lost("the connection closed"),
                Event::Tick => self.tick().await,
                Event::Retry => self.reconnect().await,
            }
            // Everything else already waiting goes into the same publish.
            while acks.len() < BATCH
                && let Ok(report) = reports.try_recv()
            {
                self.report(report, &mut events, &mut acks);
            }
            if let Some(link) = &mut self.link {
                while notices.len() < BATCH {
                    match link.notices.try_recv() {
                        Ok(Ok(notice)) => notices.push(notice),
                        Ok(Err(err)) => {
                            let cause = describe(&err);
                            self.apply_notices(std::mem::take(&mut notices), &mut events, &mut acks)
                                .await;
                            self.lost(&cause);
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            let notified = !notices.is_empty();
            let reread = self.apply_notices(notices, &mut events, &mut acks).await;
            if self.replica.version() != version {
                if notified {
                    Reload::Notify.count();
                    self.health.last_reload = Some(Utc::now());
                }
                self.publish(events);
            } else if !events.is_empty() || self.health_view() != health {
                // Own commits' events, released by their notifications.
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

    fn report(&mut self, report: Report, events: &mut Vec<UserEvent>, acks: &mut Vec<oneshot::Sender<()>>) {
        match report {
            Report::Committed {
                tx,
                changes,
                at,
                done,
            } => {
                self.health.write_error = None;
                self.health.last_write = Some(at);
                // Readers see the change at once; subscribers hear of it with its
                // notification (see `held`); with no connection to hear it on, at once.
                let own = self.replica.apply_own_commit(tx, changes, Utc::now());
                if own.is_empty() {
                    acks.push(done);
                } else if self.link.is_none() {
                    events.extend(own);
                    acks.push(done);
                } else {
                    self.held.insert(
                        tx,
                        Held {
                            events: own.into(),
                            done,
                            since: Instant::now(),
                        },
                    );
                }
            }
            Report::Answered => self.health.write_error = None,
            Report::Failed(cause) => self.health.write_error = Some(cause),
        }
    }

    /// Builds the replica's indexes off the async threads, if a full read left them to be
    /// built, and publishes the indexed snapshot.
    async fn index(&mut self) {
        if self.replica.is_indexed() {
            return;
        }
        let started = std::time::Instant::now();
        let mut users = self.replica.users().clone();
        let indexed = tokio::task::spawn_blocking(move || {
            users.index();
            users
        })
        .await;
        match indexed {
            Ok(users) => self.replica.set_indexed(users),
            Err(err) => {
                tracing::error!(error = %err, "building the indexes failed on its thread; building them here");
                let mut users = self.replica.users().clone();
                users.index();
                self.replica.set_indexed(users);
            }
        }
        tracing::debug!(
            took_ms = started.elapsed().as_millis() as u64,
            "indexed the users"
        );
        self.publish(Vec::new());
    }

    /// The health readers see, made from the owner's record.
    fn health_view(&self) -> StorageHealth {
        StorageHealth {
            location: self.location.clone(),
            write_error: self
                .health
                .link_error
                .clone()
                .or_else(|| self.health.write_error.clone()),
            last_reload: self.health.last_reload,
            last_write: self.health.last_write,
            corrupt: None,
            durability_warning: None,
        }
    }

    /// Applies notifications in order. Returns why the whole table must be read again,
    /// if it must.
    async fn apply_notices(
        &mut self,
        notices: Vec<Notification>,
        events: &mut Vec<UserEvent>,
        acks: &mut Vec<oneshot::Sender<()>>,
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
                Ok(Notice::Row {
                    tx,
                    id,
                    change,
                    journal,
                    ..
                }) => {
                    if let Some(waiting) = self.held.get_mut(&tx) {
                        // Notifications come in the order of the events: the match is
                        // nearly always the first.
                        let found = waiting.events.iter().position(|event| *event.user.id() == id);
                        if let Some(mut event) = found.and_then(|at| waiting.events.remove(at)) {
                            event.revision = journal;
                            events.push(event);
                        }
                        if waiting.events.is_empty()
                            && let Some(released) = self.held.remove(&tx)
                        {
                            acks.push(released.done);
                        }
                    }
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
                            .apply_notified(tx, change.into_iter().collect(), Utc::now())
                            .into_iter()
                            .map(|mut event| {
                                event.revision = journal;
                                event
                            }),
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
        self.release_overdue();
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
        let announce = self.events.receiver_count() > 0;
        let events = self.replica.reset(rows, seen, Utc::now(), announce);
        self.health.last_reload = Some(Utc::now());
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

    /// Replaces what readers see (the snapshot, when it changed, and the health), then
    /// sends the events: a subscriber that reacts to an event already reads the new state.
    fn publish(&mut self, events: Vec<UserEvent>) {
        let previous = Arc::clone(&self.published.borrow());
        let snapshot = if previous.snapshot.revision() == self.replica.version() {
            Arc::clone(&previous.snapshot)
        } else {
            Arc::new(self.replica.snapshot())
        };
        self.published.send_replace(Arc::new(Published {
            snapshot,
            health: self.health_view(),
        }));
        for event in events {
            let _ = self.events.send(event);
        }
    }

    /// Announces, without a revision, own commits whose notifications are overdue by a
    /// whole check period while the connection otherwise delivers (a notification the
    /// server could not send): their writers must not wait for ever.
    fn release_overdue(&mut self) {
        let overdue: Vec<u64> = self
            .held
            .iter()
            .filter(|(_, held)| held.since.elapsed() >= self.check_every)
            .map(|(tx, _)| *tx)
            .collect();
        if overdue.is_empty() {
            return;
        }
        tracing::warn!(
            transactions = overdue.len(),
            "announced own commits whose notifications did not come"
        );
        let mut events = Vec::new();
        for tx in overdue {
            if let Some(held) = self.held.remove(&tx) {
                events.extend(held.events);
                let _ = held.done.send(());
            }
        }
        self.publish(events);
    }

    /// Marks the connection lost; the next turn of the loop reconnects.
    fn lost(&mut self, cause: &str) {
        if self.link.take().is_none() {
            return;
        }
        self.check = None;
        let message = format!(
            "lost the connection to the database at {}: {cause}",
            self.location
        );
        tracing::warn!(error = %message, "serving the last snapshot; writes fail until the database is back");
        self.health.link_error = Some(message);
        // Their notifications will not come: the own commits still waiting are announced
        // now, without a revision (a feed gives such an event as it comes).
        let mut waiting: Vec<(u64, Held)> = self.held.drain().collect();
        waiting.sort_unstable_by_key(|(tx, _)| *tx);
        let mut events = Vec::new();
        let mut acks = Vec::new();
        for (_, held) in waiting {
            events.extend(held.events);
            acks.push(held.done);
        }
        self.publish(events);
        for ack in acks {
            let _ = ack.send(());
        }
        self.retry_at = Instant::now();
        self.retry_delay = RETRY_FIRST;
    }

    async fn reconnect(&mut self) {
        match listen(&self.config).await {
            Ok((client, notices)) => {
                self.link = Some(Link { client, notices });
                match self.resync(Reload::Resync).await {
                    Ok(()) => {
                        self.health.link_error = None;
                        self.health.write_error = None;
                        self.publish(Vec::new());
                        tracing::info!(database = %self.location, "reconnected to the database");
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
        let message = format!("cannot reach the database at {}: {cause}", self.location);
        tracing::debug!(error = %message, "reconnecting failed");
        self.health.link_error = Some(message);
        self.publish(Vec::new());
        self.retry_at = Instant::now() + self.retry_delay;
        self.retry_delay = (self.retry_delay * 2).min(RETRY_MOST);
    }
}
