//! `JsonFileUserRepository`: the users live in one JSON file a person can edit.
//!
//! - The owner thread ([`owner`]) owns the document, stamp, health, lock and event feed.
//! - It alone loads, reloads, revalidates, copies corrupt files aside and writes.
//! - Callers own nothing: they send it [`message`]s (apply a change, revalidate) and wait.
//! - Readers read the published cell (snapshot, stamp, health); only the owner replaces it.
//! - It keeps itself fresh: a [`watcher`] of the file's folder asks the owner to look at once,
//!   and the owner looks by itself every [`StoreOptions::check_every`] as a safety net for
//!   lost events; both stop when the store is dropped.
//! - Its small pieces: [`format`] (the document, over the shared
//!   [`users_file`](crate::adapters::outbound::users_file) format), [`atomic`] write, [`lock`], [`stamp`], [`corrupt`] copy.

mod atomic;
mod corrupt;
mod format;
mod journal;
mod lock;
mod message;
mod owner;
mod stamp;
mod watcher;

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use tokio::sync::{broadcast, oneshot, watch};

use crate::adapters::outbound::users_file;
use crate::domain::history::Retention;
use crate::domain::{Change, ChangeOutcome, UserEvent, UserSnapshot};
use crate::ports::{RepositoryError, StorageHealth, UserRepository};

pub(crate) use atomic::replace_file;
pub use message::ReloadCause;
pub use owner::SETTLE;

use watcher::FileWatcher;

use lock::WriteLock;
use message::{Message, Published};
use owner::{Hooks, Owner};
use stamp::Stamp;

/// Why the data file cannot be used at start.
#[derive(Debug, thiserror::Error)]
#[error("cannot use data file {path}: {reason}")]
pub struct OpenError {
    pub path: PathBuf,
    pub reason: String,
}

impl OpenError {
    fn new(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// Tuning for [`JsonFileUserRepository::open_with`].
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// The most queued changes one write carries. 1 turns group commit off (each change
    /// is its own write), which only benchmarks want.
    pub max_batch: usize,
    /// How often the owner compares the file with what it published, whatever the
    /// watcher says (so subscribers hear of external edits even if an event is lost).
    pub check_every: std::time::Duration,
    /// Whether to watch the file's folder for external edits.
    pub watch: bool,
    /// Whether to keep the change history beside the file (off only for benchmarks).
    pub history: bool,
    /// How long the history keeps a change, and how often it drops older ones (`None`:
    /// it keeps every change).
    pub retention: Option<Retention>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_batch: owner::MAX_BATCH,
            check_every: owner::CHECK_EVERY,
            watch: true,
            history: true,
            retention: None,
        }
    }
}

/// How many events a subscriber may fall behind before it is dropped.
pub const EVENT_BUFFER: usize = 1024;

/// The user store over one JSON file: a handle on the owner thread.
pub struct JsonFileUserRepository {
    path: PathBuf,
    queue: Option<mpsc::Sender<Message>>,
    /// Tells the owner of external edits; dropped first, since it holds a sender too.
    watcher: Option<FileWatcher>,
    published: watch::Receiver<Arc<Published>>,
    /// Live subscribers' feed, fed by the owner. Bounded: a subscriber that falls behind
    /// loses its place (and is told), the owner never waits.
    events: broadcast::Sender<UserEvent>,
    owner: Option<JoinHandle<()>>,
    /// Reads the change journal the owner writes.
    journal: journal::JournalReader,
}

impl JsonFileUserRepository {
    /// Opens the store: checks the folder and file, creates a missing file as `[]`, removes
    /// stale temporary files of ours, then starts the owner thread and waits for its first
    /// load.
    ///
    /// # Errors
    /// [`OpenError`] naming the path and the reason when the folder does not exist or the
    /// file cannot be read or written.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, OpenError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// [`JsonFileUserRepository::open`] with explicit tuning.
    ///
    /// # Errors
    /// As [`JsonFileUserRepository::open`].
    pub fn open_with(path: impl Into<PathBuf>, options: StoreOptions) -> Result<Self, OpenError> {
        Self::open_hooked(path.into(), options, Hooks::default())
    }

    fn open_hooked(path: PathBuf, options: StoreOptions, hooks: Hooks) -> Result<Self, OpenError> {
        // A symbolic link is written through: its target is what gets replaced, locked and
        // probed, in the target's folder.
        let target = atomic::target_of(&path);
        let folder = atomic::folder_of(&target);
        if !folder.is_dir() {
            return Err(OpenError::new(
                &path,
                format!("the folder {} does not exist", folder.display()),
            ));
        }
        if target.is_dir() {
            return Err(OpenError::new(&path, "it is a folder, not a file"));
        }
        // Before anything opens it: opening a FIFO waits for a writer, and a device may
        // never end.
        match users_file::read::check_regular(&target) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(OpenError::new(&path, err)),
            _ => {}
        }
        let lock = WriteLock::open(&target).map_err(|err| {
            OpenError::new(
                &path,
                format!("cannot create {}: {err}", WriteLock::path_for(&target).display()),
            )
        })?;
        {
            let _guard = lock
                .lock()
                .map_err(|err| OpenError::new(&path, format!("cannot lock: {err}")))?;
            match atomic::remove_stale_temps(&target) {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(count = removed.len(), "removed stale temporary files");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "could not look for stale temporary files"),
            }
            if !target.exists() {
                atomic::replace_file(&target, |out| out.write_all(b"[]\n"))
                    .map_err(|err| OpenError::new(&path, format!("cannot create it: {err}")))?;
                tracing::info!(path = %path.display(), "created an empty data file");
            }
            fs::File::open(&target).map_err(|err| OpenError::new(&path, format!("cannot read it: {err}")))?;
            OpenOptions::new()
                .append(true)
                .open(&target)
                .map_err(|err| OpenError::new(&path, format!("cannot write it: {err}")))?;
            atomic::probe_folder(&target)
                .map_err(|err| OpenError::new(&path, format!("cannot write in its folder: {err}")))?;
        }
        let (cell, published) = watch::channel(Arc::new(Published {
            stamp: None,
            snapshot: Arc::default(),
            health: StorageHealth::default(),
        }));
        let events = broadcast::channel(EVENT_BUFFER).0;
        let journal = if options.history {
            journal::Journal::beside(&target).retaining(options.retention)
        } else {
            journal::Journal::off(&target)
        };
        let reader = journal.reader();
        let mut owner = Owner::new(
            path.clone(),
            (target, lock),
            cell,
            events.clone(),
            options.max_batch,
            options.check_every,
            hooks,
            journal,
        );
        let (queue, inbox) = mpsc::channel();
        let (started, first_load) = mpsc::sync_channel(1);
        // The first load runs on the owner's thread too, so every load's memory comes
        // from the one thread that also frees it.
        let thread = std::thread::Builder::new()
            .name("roster-store".into())
            .spawn(move || match owner.start() {
                Ok(()) => {
                    let _ = started.send(Ok(()));
                    owner.run(inbox);
                }
                Err(err) => {
                    let _ = started.send(Err(err));
                }
            })
            .map_err(|err| OpenError::new(&path, format!("cannot start the store's thread: {err}")))?;
        match first_load.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(OpenError::new(&path, err)),
            Err(_) => return Err(OpenError::new(&path, "the store's thread stopped while loading")),
        }
        let watcher = options.watch.then(|| watch(&path, queue.clone())).flatten();
        Ok(Self {
            path,
            queue: Some(queue),
            watcher,
            published,
            events,
            owner: Some(thread),
            journal: reader,
        })
    }

    /// The data file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Asks the owner to revalidate and waits until it has.
    async fn revalidated(&self, cause: ReloadCause) -> Result<(), RepositoryError> {
        self.ask(|reply| Message::Revalidate {
            cause,
            reply: Some(reply),
        })
        .await
    }

    /// Sends the owner the message `message` makes around a reply channel, and waits for
    /// the answer.
    async fn ask<T>(
        &self,
        message: impl FnOnce(oneshot::Sender<Result<T, RepositoryError>>) -> Message,
    ) -> Result<T, RepositoryError> {
        let queue = self.queue.as_ref().ok_or(RepositoryError::Closed)?;
        let (reply, answer) = oneshot::channel();
        queue.send(message(reply)).map_err(|_| RepositoryError::Closed)?;
        answer.await.map_err(|_| RepositoryError::Closed)?
    }

    fn published(&self) -> Arc<Published> {
        Arc::clone(&self.published.borrow())
    }
}

impl Drop for JsonFileUserRepository {
    /// Stops the watcher, closes the queue and waits for the owner to finish the changes
    /// already queued.
    fn drop(&mut self) {
        self.watcher.take();
        self.queue.take();
        if let Some(owner) = self.owner.take() {
            let _ = owner.join();
        }
    }
}

/// Watches the folder of the file at `path`, asking the owner to look on every event; a
/// watch that cannot be set up is logged, and the periodic check stands in for it.
fn watch(path: &Path, queue: mpsc::Sender<Message>) -> Option<FileWatcher> {
    // A sender is `Send` but the callback must be `Sync` too.
    let queue = std::sync::Mutex::new(queue);
    let asked = move || {
        let queue = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = queue.send(Message::Revalidate {
            cause: ReloadCause::Watcher,
            reply: None,
        });
    };
    match FileWatcher::start(path, asked) {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            tracing::warn!(error = %err, "cannot watch the data file; external edits show at the next periodic check");
            None
        }
    }
}

#[async_trait]
impl UserRepository for JsonFileUserRepository {
    async fn snapshot(&self) -> Result<Arc<UserSnapshot>, RepositoryError> {
        let published = self.published();
        // One stat tells whether the file is still the one published; if not (someone
        // else changed it, or it cannot be read), the owner looks and this read waits.
        if Stamp::of(&self.path).is_ok_and(|stamp| stamp == published.stamp) {
            return Ok(Arc::clone(&published.snapshot));
        }
        self.revalidated(ReloadCause::Revalidate).await?;
        Ok(Arc::clone(&self.published().snapshot))
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
        let source = crate::ports::change_source();
        self.ask(|reply| Message::Apply {
            change,
            source,
            reply,
        })
        .await
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

    use chrono::Utc;

    use super::*;
    use crate::domain::{Email, User, UserId, UserName};

    fn create(n: u32) -> Change {
        Change::Create(User::new(
            UserId::new(format!("u{n}")),
            UserName::parse("Ann").unwrap(),
            Email::parse(&format!("ann{n}@x.com")).unwrap(),
            Utc::now(),
        ))
    }

    fn open(path: &Path, hooks: Hooks) -> JsonFileUserRepository {
        JsonFileUserRepository::open_hooked(path.to_path_buf(), StoreOptions::default(), hooks).unwrap()
    }

    #[tokio::test]
    async fn a_write_whose_folder_sync_fails_after_the_rename_is_acknowledged_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let failing = Hooks {
            sync_folder: |_| Err(io::Error::other("injected fsync failure")),
            ..Hooks::default()
        };
        let store = open(&path, failing);
        let outcome = store.apply(create(1)).await;
        assert!(matches!(outcome, Ok(ChangeOutcome::Created(_))), "{outcome:?}");
        let health = store.health();
        assert!(health.is_healthy(), "{health:?}");
        assert!(
            health
                .durability_warning
                .as_deref()
                .is_some_and(|w| w.contains("injected fsync failure")),
            "{health:?}"
        );
        assert!(fs::read_to_string(&path).unwrap().contains("ann1@x.com"));
        drop(store);

        // The next fully durable write clears the warning.
        let store = open(&path, Hooks::default());
        store.apply(create(2)).await.unwrap();
        assert_eq!(store.health().durability_warning, None);
        assert_eq!(store.snapshot().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_corrupt_file_that_cannot_be_copied_aside_refuses_writes_and_says_so_until_one_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        fs::write(&path, "{not json").unwrap();
        let failing = Hooks {
            set_aside: |_, _| Err(io::Error::other("injected copy failure")),
            ..Hooks::default()
        };
        let store = open(&path, failing);
        assert!(store.health().corrupt.is_some());
        let refused = store.apply(create(1)).await;
        assert!(
            matches!(refused, Err(RepositoryError::Unavailable(_))),
            "{refused:?}"
        );
        let health = store.health();
        assert!(!health.is_healthy(), "a refused write must show: {health:?}");
        assert!(
            health
                .write_error
                .as_deref()
                .is_some_and(|e| e.contains("injected copy failure"))
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{not json",
            "the broken file was touched"
        );

        // Someone repairs the file: the next write succeeds and clears both notes.
        fs::write(&path, "[]").unwrap();
        store.apply(create(2)).await.unwrap();
        let health = store.health();
        assert!(health.is_healthy() && health.corrupt.is_none(), "{health:?}");
    }

    #[tokio::test]
    async fn a_change_that_changes_nothing_writes_nothing_and_announces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let store = open(&path, Hooks::default());
        let ChangeOutcome::Created(user) = store.apply(create(1)).await.unwrap() else {
            panic!("not created")
        };
        let before = Stamp::of(&path).unwrap();
        let mut events = store.subscribe();
        let same = Change::Update {
            id: user.id().clone(),
            name: UserName::parse(user.name()).unwrap(),
            email: Email::parse(user.email()).unwrap(),
            at: Utc::now(),
        };
        let outcome = store.apply(same).await.unwrap();
        assert!(matches!(outcome, ChangeOutcome::Unchanged(ref u) if u.updated_at() == user.updated_at()));
        assert_eq!(Stamp::of(&path).unwrap(), before, "the file was rewritten");
        assert!(events.try_recv().is_err(), "an event was sent");
    }

    #[test]
    fn a_file_too_big_to_read_whole_parses_as_it_is_read_to_the_same_document() {
        let record =
            |n: usize| format!(r#"{{"id":"u{n}","name":"User {n}","email":"u{n}@x.com","note":[{n}]}}"#);
        let records: Vec<String> = (0..2_000).map(record).collect();
        let text = format!("[{}, 42]", records.join(","));
        let whole = format::Document::parse(text.as_bytes()).unwrap();
        let streamed = format::Document::parse_reader(text.as_bytes()).unwrap();
        assert_eq!(whole.render(), streamed.render());
        assert_eq!(streamed.len(), 2_000);
        assert!(matches!(
            format::Document::parse_reader(&text.as_bytes()[..text.len() - 3]),
            Err(format::FormatError::NotJson(_))
        ));
    }
}
