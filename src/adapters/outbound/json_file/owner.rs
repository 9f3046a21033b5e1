//! The store's owner: one thread that holds the document, the file's stamp, the health
//! record and the event feed, and does every load, reload, revalidation, corrupt-file
//! handling and write itself, one message at a time.
//!
//! Writes are group-committed: the owner takes the first queued change and every change
//! already waiting (up to the batch limit), takes the cross-process lock, revalidates
//! against the file, applies the changes in order, streams the file once to a temporary
//! file, checks once more that nobody replaced the file meanwhile, renames, publishes the
//! new snapshot with the exact events, and only then answers each caller.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{broadcast, oneshot, watch};

use super::atomic;
use super::corrupt;
use super::format::{Document, FormatError, is_blank};
use super::journal::Journal;
use super::lock::WriteLock;
use super::message::{Message, Published, ReloadCause};
use super::stamp::Stamp;
use crate::adapters::outbound::users_file;
use crate::domain::history::{self, BatchJournal, Unnumbered};
use crate::domain::{
    Change, ChangeOutcome, ChangeSource, UserChange, UserEvent, UserId, UserSnapshot, events,
};
use crate::ports::{RepositoryError, StorageHealth};

/// The most changes one write carries by default; bounds the latency of a batch.
pub const MAX_BATCH: usize = 4096;

/// How long the file must have been left alone before an external change is read, so an
/// editor's truncate-then-write is read once, whole; and how long to wait before reading a
/// doubtful file (unparseable, or suddenly empty) a second time.
pub const SETTLE: Duration = Duration::from_millis(50);

/// Files at least this big are parsed as they are read, so their bytes are not resident
/// beside the users made from them (jemalloc keeps freed pages for a second, and the
/// indexes are built within it). Parsing as it reads costs about twice the time, so files
/// of up to a few million users (about 220 bytes a user) are read whole first.
pub(super) const STREAM_FROM: u64 = 1 << 30;
/// How much of a big file is read at a time.
const READ_BUFFER: usize = 256 << 10;

/// How often the owner compares the file with what it published when nothing else made it
/// look: the safety net for a watcher event that was lost (or no watcher at all).
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// How many settle times a file that keeps changing may take before it is read as it is.
const MAX_LOOKS: u32 = 20;

/// How many times a batch is tried when the file keeps changing under the writer, before
/// the batch fails rather than overwrite someone else's edit.
const MAX_ATTEMPTS: u32 = 5;

/// The two steps no real folder can be made to fail on cue; tests replace them.
#[derive(Clone, Copy)]
pub(super) struct Hooks {
    /// Makes a rename durable.
    pub sync_folder: fn(&Path) -> io::Result<()>,
    /// Copies a corrupt file's bytes beside it.
    pub set_aside: fn(&Path, &[u8]) -> io::Result<PathBuf>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            sync_folder: atomic::sync_folder,
            set_aside: corrupt::set_aside,
        }
    }
}

/// Why the owner could not do what it was asked. The I/O error stays whole (its kind
/// included) until the one log line and the port's message are made from it.
#[derive(Debug, thiserror::Error)]
pub(super) enum StoreError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Writing was refused to protect data (a corrupt file that could not be copied
    /// aside, a file that kept changing).
    #[error("{0}")]
    Refused(String),
}

impl StoreError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { action, path, source }
    }

    fn kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Io { source, .. } => Some(source.kind()),
            Self::Refused(_) => None,
        }
    }

    /// The port's error: the message names the cause, for the operator to act on.
    fn public(&self) -> RepositoryError {
        RepositoryError::Unavailable(self.to_string())
    }
}

/// What reading the file found.
enum Read {
    Users(Box<Document>),
    Corrupt { bytes: Vec<u8>, why: FormatError },
}

/// Where a published snapshot's events come from.
enum Events {
    /// The owner knows exactly what its changes did.
    Known(Vec<UserEvent>),
    /// Someone else changed the file: compare the old and new lists.
    Diff,
}

type Reply = oneshot::Sender<Result<ChangeOutcome, RepositoryError>>;
type Job = (Change, ChangeSource, Reply);
type Purge = (
    UserId,
    ChangeSource,
    oneshot::Sender<Result<bool, RepositoryError>>,
);

/// The messages the owner handles together.
#[derive(Default)]
struct Round {
    jobs: Vec<Job>,
    /// Readers waiting for a revalidation.
    waiting: Vec<oneshot::Sender<Result<(), RepositoryError>>>,
    /// Why the first revalidation was asked for, if any was.
    cause: Option<ReloadCause>,
    /// Users to purge, after the changes.
    purges: Vec<Purge>,
}

impl Round {
    fn take(&mut self, message: Message) {
        match message {
            Message::Apply {
                change,
                source,
                reply,
            } => self.jobs.push((change, source, reply)),
            Message::Purge { id, source, reply } => self.purges.push((id, source, reply)),
            Message::Revalidate { cause, reply } => {
                self.cause.get_or_insert(cause);
                self.waiting.extend(reply);
            }
        }
    }
}

/// The owner's state. Nothing here is shared: readers see only what [`Owner::publish`]
/// puts in the published cell, subscribers only what it sends on the feed.
pub(super) struct Owner {
    /// The data file as configured (perhaps a symbolic link).
    path: PathBuf,
    /// The file writes replace (the link's target) and the open sidecar lock beside it.
    lock: Option<(PathBuf, WriteLock)>,
    /// The working copy; `None` after a failed write, so it is read again before use.
    document: Option<Document>,
    /// The stamp of the file the document reflects.
    stamp: Option<Stamp>,
    /// Why the current file must not be overwritten (corrupt, and copying it aside failed).
    refuse_overwrite: Option<String>,
    health: StorageHealth,
    published: watch::Sender<Arc<Published>>,
    events: broadcast::Sender<UserEvent>,
    max_batch: usize,
    check_every: Duration,
    /// When the owner last compared the file with what it published.
    checked_at: Instant,
    hooks: Hooks,
    /// The last change's revision: the history's, which only grows.
    revision: u64,
    /// The change journal beside the file, appended with every batch and edit.
    journal: Journal,
}

impl Owner {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        path: PathBuf,
        lock: (PathBuf, WriteLock),
        published: watch::Sender<Arc<Published>>,
        events: broadcast::Sender<UserEvent>,
        max_batch: usize,
        check_every: Duration,
        hooks: Hooks,
        journal: Journal,
    ) -> Self {
        let health = StorageHealth {
            location: path.display().to_string(),
            ..StorageHealth::default()
        };
        Self {
            path,
            lock: Some(lock),
            document: None,
            stamp: None,
            refuse_overwrite: None,
            health,
            published,
            events,
            max_batch: max_batch.max(1),
            check_every,
            checked_at: Instant::now(),
            hooks,
            revision: 0,
            journal,
        }
    }

    /// The first load, before the store answers anyone.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub(super) fn start(&mut self) -> Result<(), RepositoryError> {
        self.journal.open().map_err(|err| {
            RepositoryError::Unavailable(format!("cannot open the history beside the file: {err}"))
        })?;
        self.reload(ReloadCause::Start).map_err(|err| err.public())
    }

    /// Serves messages until every sender is gone and the queue is drained.
    pub(super) fn run(mut self, queue: Receiver<Message>) {
        loop {
            self.index();
            let mut due = self.check_every.saturating_sub(self.checked_at.elapsed());
            if let Some(at) = self.journal.compaction_due() {
                due = due.min(at.saturating_duration_since(Instant::now()));
            }
            let mut round = Round::default();
            match queue.recv_timeout(due) {
                Ok(first) => round.take(first),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.checked_at.elapsed() >= self.check_every {
                round.cause.get_or_insert(ReloadCause::Ttl);
            }
            // Everything already waiting goes into this round: changes into one write,
            // any number of revalidations into one look at the file.
            while round.jobs.len() < self.max_batch {
                match queue.try_recv() {
                    Ok(message) => round.take(message),
                    Err(_) => break,
                }
            }
            let Round {
                jobs,
                waiting,
                cause,
                purges,
            } = round;
            if !jobs.is_empty() {
                self.commit(jobs);
            }
            for (id, source, reply) in purges {
                let _ = reply.send(self.purge(id, source));
            }
            // Between rounds: a compaction prepared meanwhile is put in place, or one is
            // started when due.
            self.journal.compact_step();
            if let Some(cause) = cause {
                self.checked_at = Instant::now();
                let result = self.revalidate(cause).map_err(|err| {
                    tracing::error!(path = %self.path.display(), error = %err, kind = ?err.kind(),
                        "cannot read the data file; serving the last users read");
                    err.public()
                });
                for reply in waiting {
                    let _ = reply.send(result.clone());
                }
            }
        }
    }

    /// Reloads the file if it is not the one the document reflects (or the document was
    /// dropped). External changes are read once the file has been quiet; a write reads at
    /// once, under the lock, and relies on the second look at doubtful contents.
    fn revalidate(&mut self, cause: ReloadCause) -> Result<(), StoreError> {
        let current = Stamp::of(&self.path).map_err(StoreError::io("read", &self.path))?;
        if self.document.is_some() && current == self.stamp {
            return Ok(());
        }
        if cause != ReloadCause::Write {
            self.settle(current)?;
        }
        self.reload(cause)
    }

    /// Waits until the file has not been modified for [`SETTLE`].
    fn settle(&self, mut stamp: Option<Stamp>) -> Result<(), StoreError> {
        for _ in 0..MAX_LOOKS {
            let Some(age) = stamp.and_then(|stamp| stamp.age()) else {
                return Ok(());
            };
            let Some(wait) = SETTLE.checked_sub(age).filter(|wait| !wait.is_zero()) else {
                return Ok(());
            };
            thread::sleep(wait);
            let again = Stamp::of(&self.path).map_err(StoreError::io("read", &self.path))?;
            if again == stamp {
                return Ok(());
            }
            stamp = again;
        }
        Ok(())
    }

    /// Reads the file and publishes what it holds, with the events that turn the last
    /// published list into it. A corrupt file is copied aside and read as an empty list.
    fn reload(&mut self, cause: ReloadCause) -> Result<(), StoreError> {
        let (stamp, read) = self.read_file()?;
        metrics::counter!("roster_store_reloads_total", "cause" => cause.label()).increment(1);
        let news = cause == ReloadCause::Start || stamp != self.stamp;
        let document = match read {
            Read::Users(document) => {
                if news && document.malformed_count() > 0 {
                    tracing::warn!(path = %self.path.display(), count = document.malformed_count(),
                        "records that are not users are kept in the file but hidden from the API");
                }
                self.health.corrupt = None;
                self.refuse_overwrite = None;
                *document
            }
            Read::Corrupt { bytes, why } => {
                let note = match (self.hooks.set_aside)(&self.path, &bytes) {
                    Ok(copy) => {
                        tracing::error!(path = %self.path.display(), copy = %copy.display(), reason = %why,
                            "data file is corrupt; copied it aside and serving an empty list");
                        self.refuse_overwrite = None;
                        format!(
                            "{why}; the file was copied to {} and an empty list is served",
                            copy.display()
                        )
                    }
                    Err(err) => {
                        tracing::error!(path = %self.path.display(), reason = %why, error = %err, kind = ?err.kind(),
                            "data file is corrupt and could not be copied aside; refusing to overwrite it");
                        let note =
                            format!("{why}; copying it aside failed ({err}), so it will not be overwritten");
                        self.refuse_overwrite = Some(note.clone());
                        note
                    }
                };
                self.health.corrupt = Some(note);
                Document::default()
            }
        };
        if news {
            tracing::info!(path = %self.path.display(), users = document.len(), cause = cause.label(),
                "loaded the data file");
        }
        self.health.last_reload = Some(Utc::now());
        self.stamp = stamp;
        let snapshot = document.snapshot();
        self.document = Some(document);
        if cause == ReloadCause::Start {
            // The last change set in the history may be one a crash kept from the file.
            self.journal
                .settle_last_batch(&snapshot)
                .map_err(StoreError::io("settle the history beside", &self.path))?;
            self.revision = self.journal.last_revision();
        }
        let events = if cause == ReloadCause::Start {
            Events::Diff
        } else {
            // Someone else's edit: recorded user by user.
            let previous = Arc::clone(&self.published.borrow().snapshot);
            let edits = history::changes_between(&previous, &snapshot, &ChangeSource::FileEdit);
            Events::Known(self.record(&edits))
        };
        self.publish(Some(snapshot), events);
        Ok(())
    }

    /// Builds the document's indexes if a reload left them to be built, and publishes the
    /// indexed snapshot. Readers were served by scanning meanwhile; a change would build
    /// them first anyway.
    fn index(&mut self) {
        if let Some(document) = self.document.as_mut().filter(|document| !document.is_indexed()) {
            let started = Instant::now();
            document.index();
            let snapshot = document.snapshot();
            tracing::debug!(
                took_ms = started.elapsed().as_millis() as u64,
                "indexed the users"
            );
            self.publish(Some(snapshot), Events::Known(Vec::new()));
        }
    }

    /// Reads and parses the file; a missing file is an empty list. Contents that do not
    /// parse, or that are suddenly empty, may be an editor's half-written moment: they
    /// are read again after [`SETTLE`] and believed only when the file stayed the same.
    fn read_file(&self) -> Result<(Option<Stamp>, Read), StoreError> {
        let had_users = !self.published.borrow().snapshot.is_empty();
        let mut doubted = None;
        let mut look = 0;
        loop {
            look += 1;
            // The stamp is taken before reading: if the file changes in between, the next
            // look sees a newer stamp and reads again, rather than trusting stale bytes.
            let stamp = Stamp::of(&self.path).map_err(StoreError::io("read", &self.path))?;
            let (parsed, bytes) = self.parse_file()?;
            let doubtful = match &parsed {
                Err(_) => true,
                Ok(_) => had_users && bytes.as_deref().is_some_and(is_blank),
            };
            if !doubtful || doubted == Some(stamp) || look >= MAX_LOOKS {
                let read = match parsed {
                    Ok(document) => Read::Users(Box::new(document)),
                    Err(why) => Read::Corrupt {
                        bytes: bytes.unwrap_or_default(),
                        why,
                    },
                };
                return Ok((stamp, read));
            }
            doubted = Some(stamp);
            thread::sleep(SETTLE);
        }
    }

    /// Parses the file, and hands back its bytes when they were read whole: a small file's
    /// always, a big one's only when it does not parse (to say why, and to copy it aside);
    /// a big file that parses is read as it is parsed, never all in memory at once.
    #[allow(clippy::type_complexity)]
    fn parse_file(&self) -> Result<(Result<Document, FormatError>, Option<Vec<u8>>), StoreError> {
        let failed = StoreError::io("read", &self.path);
        // Only a regular file, and only so much of it: a FIFO or a device put in its place
        // is a read error, not a wait or an endless read.
        let (file, size) = match users_file::open_regular(&self.path) {
            Ok(opened) => opened,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok((Ok(Document::default()), Some(Vec::new())));
            }
            Err(err) => return Err(failed(err)),
        };
        if size >= STREAM_FROM
            && let Ok(document) = Document::parse_reader(io::BufReader::with_capacity(READ_BUFFER, file))
        {
            return Ok((Ok(document), None));
        }
        let bytes = users_file::read_file(&self.path).or_else(|err| match err.kind() {
            io::ErrorKind::NotFound => Ok(Vec::new()),
            _ => Err(failed(err)),
        })?;
        Ok((Document::parse(&bytes), Some(bytes)))
    }

    /// Makes a batch of changes durable with one write and answers each caller.
    fn commit(&mut self, jobs: Vec<Job>) {
        let size = jobs.len();
        metrics::counter!("roster_store_write_batches_total").increment(1);
        metrics::histogram!("roster_store_write_batch_size").record(size as f64);
        let (changes, replies): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .map(|(change, source, reply)| ((change, source), reply))
            .unzip();
        match self.write_batch(changes) {
            Ok(outcomes) => {
                tracing::debug!(batch = size, "committed a batch of changes");
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // A caller that went away still had its change made durable.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                metrics::counter!("roster_store_write_failures_total").increment(1);
                tracing::error!(batch = size, error = %err, kind = ?err.kind(),
                    "a write failed; no change of the batch was applied");
                // Shown on /health (503) until a write succeeds.
                self.health.write_error = Some(err.to_string());
                self.publish(None, Events::Known(Vec::new()));
                let public = err.public();
                for reply in replies {
                    let _ = reply.send(Err(public.clone()));
                }
            }
        }
    }

    /// Takes the cross-process lock beside the file writes replace, then writes.
    fn write_batch(
        &mut self,
        changes: Vec<(Change, ChangeSource)>,
    ) -> Result<Vec<ChangeOutcome>, StoreError> {
        // Resolved on every write: a person may point the link elsewhere meanwhile.
        let target = atomic::target_of(&self.path);
        let (at, lock) = match self.lock.take() {
            Some((at, lock)) if at == target => (at, lock),
            _ => {
                let lock = WriteLock::open(&target).map_err(StoreError::io("open the lock of", &target))?;
                (target.clone(), lock)
            }
        };
        let result = match lock.lock() {
            Ok(_guard) => self.write_locked(&target, changes),
            Err(err) => Err(StoreError::io("lock", &WriteLock::path_for(&target))(err)),
        };
        self.lock = Some((at, lock));
        result
    }

    fn write_locked(
        &mut self,
        target: &Path,
        changes: Vec<(Change, ChangeSource)>,
    ) -> Result<Vec<ChangeOutcome>, StoreError> {
        let locked_at = Instant::now();
        for _ in 0..MAX_ATTEMPTS {
            self.revalidate(ReloadCause::Write)?;
            if let Some(why) = &self.refuse_overwrite {
                return Err(StoreError::Refused(why.clone()));
            }
            let Some(document) = self.document.as_mut() else {
                return Err(StoreError::Refused("the store has no document to change".into()));
            };
            // What each change did to each user, from the state it was applied to.
            let start = Arc::clone(&self.published.borrow().snapshot);
            let mut batch = BatchJournal::new(&start);
            let outcomes: Vec<ChangeOutcome> = changes
                .iter()
                .cloned()
                .map(|(change, source)| {
                    let outcome = document.apply(change);
                    batch.record(&outcome, &source);
                    outcome
                })
                .collect();
            let batch = batch.finish();
            if !outcomes.iter().any(ChangeOutcome::changed) {
                return Ok(outcomes);
            }
            // If someone replaced the file while we were writing ours, start over from
            // theirs rather than rename ours over it. Otherwise the history is appended,
            // durably, before the file is replaced: a change is in the file only once it
            // is in the history (a crash in between is settled at the next start). The
            // history is synced on a thread of its own while the new file is written and
            // synced, so that the two syncs overlap rather than follow each other.
            let expected = self.stamp;
            let journal = &mut self.journal;
            let mark = journal.mark();
            let (written, appended) = std::thread::scope(|scope| {
                let appending = scope.spawn(|| journal.append(&batch, Utc::now()));
                let mut appended = None;
                let written = atomic::replace_file_if(
                    target,
                    |out| document.render_to(out),
                    |_| {
                        let result = appending
                            .join()
                            .unwrap_or_else(|_| Err(io::Error::other("the history's writer panicked")));
                        let kept = result.is_ok();
                        appended = Some(result);
                        if !kept {
                            return Err(io::Error::other("the history could not be appended"));
                        }
                        // Looked at only now, after the history's sync, and just before the
                        // rename: a hand edit saved while the sync ran is seen, not renamed over.
                        Ok(Stamp::of(target)? == expected)
                    },
                    |displaced| Some(Stamp::from_metadata(displaced)) == expected,
                    self.hooks.sync_folder,
                );
                (written, appended)
            });
            if let Some(Err(err)) = appended {
                // The append took itself back; the file was left as it was.
                self.document = None;
                return Err(StoreError::io(
                    "append the change to the history beside",
                    &self.path,
                )(err));
            }
            // Written but not renamed into place (or not even asked): take the lines back.
            if !matches!(written, Ok(Some(_)))
                && let Err(err) = self.journal.undo(mark)
            {
                tracing::error!(error = %err, kind = ?err.kind(),
                    "cannot take back the history of a change the data file did not take; the next start will");
            }
            match written {
                Ok(Some(replaced)) => {
                    let snapshot = document.snapshot();
                    self.stamp = Some(Stamp::from_metadata(&replaced.metadata));
                    self.refuse_overwrite = None;
                    let now = Utc::now();
                    self.health.write_error = None;
                    self.health.corrupt = None;
                    self.health.last_write = Some(now);
                    self.health.durability_warning = replaced.folder_synced.err().map(|err| {
                        let folder = atomic::folder_of(target);
                        tracing::warn!(folder = %folder.display(), error = %err, kind = ?err.kind(),
                            "the change is in place, but syncing its folder failed: it may not survive a power cut");
                        format!(
                            "cannot sync the folder {}: {err}; the last change is in place but may not survive a power cut",
                            folder.display()
                        )
                    });
                    self.revision = self.journal.last_revision();
                    let events = appended
                        .and_then(Result::ok)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(UserChange::event)
                        .collect();
                    self.publish(Some(snapshot), Events::Known(events));
                    metrics::histogram!("roster_store_write_duration_seconds")
                        .record(locked_at.elapsed().as_secs_f64());
                    return Ok(outcomes);
                }
                Ok(None) => {
                    // Our changes are in the document but not in the file: read it again.
                    self.document = None;
                    tracing::info!(
                        "the data file changed while writing; applying the batch again on top of it"
                    );
                }
                Err(err) => {
                    self.document = None;
                    return Err(StoreError::io("write", target)(err));
                }
            }
        }
        Err(StoreError::Refused(format!(
            "{} kept changing while it was being written ({MAX_ATTEMPTS} attempts); nothing was changed",
            self.path.display()
        )))
    }

    /// Deletes the user (a change like any other), then rewrites the journal without
    /// their data.
    fn purge(&mut self, id: UserId, source: ChangeSource) -> Result<bool, RepositoryError> {
        let deleted = match self.write_batch(vec![(Change::Delete { id: id.clone() }, source)]) {
            Ok(outcomes) => outcomes.iter().any(ChangeOutcome::changed),
            Err(err) => {
                self.health.write_error = Some(err.to_string());
                self.publish(None, Events::Known(Vec::new()));
                return Err(err.public());
            }
        };
        let erased = self.journal.erase(&id).map_err(|err| {
            tracing::error!(error = %err, kind = ?err.kind(), "cannot erase a user from the history");
            RepositoryError::Unavailable(format!(
                "cannot rewrite the history beside {}: {err}",
                self.path.display()
            ))
        })?;
        Ok(deleted || erased)
    }

    /// Appends `changes` to the journal, durably, and gives the events they are (with their
    /// revisions). A journal that cannot be written is said on `/health` and in the log;
    /// the change itself stands (it is in the file), and is announced without a revision.
    fn record(&mut self, changes: &[Unnumbered]) -> Vec<UserEvent> {
        let now = Utc::now();
        match self.journal.append(changes, now) {
            Ok(numbered) => {
                self.revision = self.journal.last_revision();
                numbered.iter().filter_map(UserChange::event).collect()
            }
            Err(err) => {
                tracing::error!(error = %err, kind = ?err.kind(),
                    "cannot append to the history; the change is made but not recorded");
                self.health.durability_warning = Some(format!(
                    "cannot append to the history beside {}: {err}; the last change is made but not recorded",
                    self.path.display()
                ));
                changes
                    .iter()
                    .filter_map(|change| change.clone().numbered(0, now).event())
                    .collect()
            }
        }
    }

    /// Replaces what readers see (the snapshot, when given, and the health), then sends
    /// the events: a subscriber that reacts to an event already reads the new state.
    fn publish(&mut self, snapshot: Option<UserSnapshot>, events: Events) {
        let previous = Arc::clone(&self.published.borrow());
        let snapshot = match snapshot {
            Some(snapshot) => Arc::new(snapshot.at_revision(self.revision)),
            None => Arc::clone(&previous.snapshot),
        };
        self.published.send_replace(Arc::new(Published {
            stamp: self.stamp,
            snapshot: Arc::clone(&snapshot),
            health: self.health.clone(),
        }));
        // The comparison only runs when someone listens.
        if self.events.receiver_count() > 0 {
            let events = match events {
                Events::Known(events) => events,
                Events::Diff => events::diff(&previous.snapshot, &snapshot, Utc::now()),
            };
            for event in events {
                let _ = self.events.send(event);
            }
        }
    }
}
