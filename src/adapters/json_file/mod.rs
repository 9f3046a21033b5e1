//! `JsonFileUserRepository`: the users live in one JSON file a person can edit.
//!
//! Reads are served from a published [`UserSnapshot`]; each read compares the file's
//! [`Stamp`] with the published one and reloads only when someone else changed the file.
//! Writes go to one writer thread ([`writer`]) that takes the cross-process lock,
//! revalidates against the file, applies every queued change, and replaces the file
//! atomically once for the whole batch (group commit) before answering each caller.

mod atomic;
mod corrupt;
mod format;
mod lock;
mod stamp;
mod writer;

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::{broadcast, oneshot};

use crate::domain::{Change, ChangeOutcome, UserEvent, UserSnapshot, events};
use crate::ports::{RepositoryError, StorageHealth, UserRepository};

use format::Document;
use lock::WriteLock;
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
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_batch: writer::MAX_BATCH,
        }
    }
}

/// The user store over one JSON file.
pub struct JsonFileUserRepository {
    shared: Arc<Shared>,
    /// Held while a reader reloads the file, so concurrent readers do not each parse it.
    reloading: tokio::sync::Mutex<()>,
    jobs: Option<mpsc::Sender<writer::Job>>,
    writer: Option<JoinHandle<()>>,
}

/// State readers and the writer share.
struct Shared {
    path: PathBuf,
    published: Mutex<Published>,
    health: Mutex<StorageHealth>,
    /// Serialises setting corrupt files aside, so concurrent readers copy once.
    corrupt: Mutex<()>,
    /// Live subscribers' feed. Bounded: a subscriber that falls behind loses its place
    /// (and is told), the writer never waits.
    events: broadcast::Sender<UserEvent>,
    /// The stamp of the file the writer is renaming into place and has not yet published.
    pending: Mutex<Option<Stamp>>,
}

/// How many events a subscriber may fall behind before it is dropped.
pub const EVENT_BUFFER: usize = 1024;

/// Where a published snapshot's events come from.
enum Events {
    /// The writer knows exactly what its changes did.
    Known(Vec<UserEvent>),
    /// Someone else changed the file: compare the old and new lists.
    Diff,
}

struct Published {
    /// Bumped on every publish, so a slow reader never replaces a newer snapshot.
    version: u64,
    stamp: Option<Stamp>,
    snapshot: Arc<UserSnapshot>,
}

/// A file's contents as loaded, with what a writer must know about them.
struct Loaded {
    stamp: Option<Stamp>,
    document: Document,
    /// Set when the file was corrupt and could not be copied aside: writing would lose it.
    unsafe_to_overwrite: Option<String>,
}

impl JsonFileUserRepository {
    /// Opens the store: checks the folder and file, creates a missing file as `[]`, removes
    /// stale temporary files of ours, loads the users and starts the writer thread.
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
        let path: PathBuf = path.into();
        let folder = atomic::folder_of(&path);
        if !folder.is_dir() {
            return Err(OpenError::new(
                &path,
                format!("the folder {} does not exist", folder.display()),
            ));
        }
        if path.is_dir() {
            return Err(OpenError::new(&path, "it is a folder, not a file"));
        }
        let lock = WriteLock::open(&path).map_err(|err| {
            OpenError::new(
                &path,
                format!("cannot create {}: {err}", WriteLock::path_for(&path).display()),
            )
        })?;
        {
            let _guard = lock
                .lock()
                .map_err(|err| OpenError::new(&path, format!("cannot lock: {err}")))?;
            match atomic::remove_stale_temps(&path) {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(count = removed.len(), "removed stale temporary files");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "could not look for stale temporary files"),
            }
            if !path.exists() {
                atomic::replace_file(&path, b"[]\n")
                    .map_err(|err| OpenError::new(&path, format!("cannot create it: {err}")))?;
                tracing::info!(path = %path.display(), "created an empty data file");
            }
            fs::File::open(&path).map_err(|err| OpenError::new(&path, format!("cannot read it: {err}")))?;
            OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|err| OpenError::new(&path, format!("cannot write it: {err}")))?;
            atomic::probe_folder(&path)
                .map_err(|err| OpenError::new(&path, format!("cannot write in its folder: {err}")))?;
        }
        let shared = Arc::new(Shared {
            path: path.clone(),
            published: Mutex::new(Published {
                version: 0,
                stamp: None,
                snapshot: Arc::default(),
            }),
            health: Mutex::new(StorageHealth {
                location: path.display().to_string(),
                ..StorageHealth::default()
            }),
            corrupt: Mutex::new(()),
            events: broadcast::channel(EVENT_BUFFER).0,
            pending: Mutex::new(None),
        });
        let loaded = shared
            .load()
            .map_err(|err| OpenError::new(&path, format!("cannot read it: {err}")))?;
        shared.publish(
            None,
            loaded.stamp,
            Arc::new(loaded.document.users.snapshot()),
            Events::Known(Vec::new()),
        );
        let (jobs, queue) = mpsc::channel();
        let writer = writer::Writer::new(Arc::clone(&shared), lock, options.max_batch)
            .spawn(queue)
            .map_err(|err| OpenError::new(&path, format!("cannot start the writer thread: {err}")))?;
        Ok(Self {
            shared,
            reloading: tokio::sync::Mutex::new(()),
            jobs: Some(jobs),
            writer: Some(writer),
        })
    }

    /// The data file's path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

impl Drop for JsonFileUserRepository {
    /// Closes the queue and waits for the writer to finish the changes already queued.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Shared {
    /// The published snapshot if the file is unchanged since it was read; otherwise the
    /// published version, for a reload to replace.
    fn current(&self) -> Result<Result<Arc<UserSnapshot>, u64>, RepositoryError> {
        let stamp = Stamp::of(&self.path).map_err(|err| unavailable(&self.path, "read", err))?;
        let published = self.published();
        // The file the writer is renaming into place is not acknowledged yet: keep serving
        // what is published and leave the new file (and its exact events) to the writer,
        // rather than parse it here and announce its changes a second time.
        if published.stamp == stamp || (stamp.is_some() && *self.pending() == stamp) {
            Ok(Ok(Arc::clone(&published.snapshot)))
        } else {
            Ok(Err(published.version))
        }
    }

    fn published(&self) -> MutexGuard<'_, Published> {
        self.published
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, Option<Stamp>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn health(&self) -> MutexGuard<'_, StorageHealth> {
        self.health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes a snapshot. With `seen_version`, only if nothing was published since that
    /// version was read (a reader's reload must not replace a writer's newer state).
    fn publish(
        &self,
        seen_version: Option<u64>,
        stamp: Option<Stamp>,
        snapshot: Arc<UserSnapshot>,
        events: Events,
    ) {
        let mut published = self.published();
        if seen_version.is_some_and(|seen| seen != published.version) {
            return;
        }
        // Events go out under the lock, so subscribers see them in publishing order; the
        // comparison only runs when someone listens.
        if self.events.receiver_count() > 0 {
            let events = match events {
                Events::Known(events) => events,
                Events::Diff => events::diff(&published.snapshot, &snapshot, Utc::now()),
            };
            for event in events {
                let _ = self.events.send(event);
            }
        }
        published.version += 1;
        published.stamp = stamp;
        published.snapshot = snapshot;
    }

    /// Reads and parses the file. A missing file is an empty list; a corrupt one is set
    /// aside and read as an empty list.
    fn load(&self) -> io::Result<Loaded> {
        // The stamp is taken before reading: if the file changes in between, the next
        // read sees a newer stamp and loads again, rather than trusting stale bytes.
        let stamp = Stamp::of(&self.path)?;
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err),
        };
        let mut unsafe_to_overwrite = None;
        let document = match Document::parse(&bytes) {
            Ok(document) => {
                if document.malformed_count() > 0 {
                    tracing::warn!(
                        path = %self.path.display(),
                        count = document.malformed_count(),
                        "records that are not users are kept in the file but hidden from the API"
                    );
                }
                self.health().corrupt = None;
                document
            }
            Err(why) => {
                let _one_at_a_time = self.corrupt.lock().unwrap_or_else(|p| p.into_inner());
                let note = match corrupt::set_aside(&self.path, &bytes) {
                    Ok(copy) => {
                        tracing::error!(path = %self.path.display(), copy = %copy.display(), reason = %why,
                            "data file is corrupt; copied it aside and serving an empty list");
                        format!(
                            "{why}; the file was copied to {} and an empty list is served",
                            copy.display()
                        )
                    }
                    Err(err) => {
                        tracing::error!(path = %self.path.display(), reason = %why, error = %err,
                            "data file is corrupt and could not be copied aside; refusing to overwrite it");
                        let note =
                            format!("{why}; copying it aside failed ({err}), so it will not be overwritten");
                        unsafe_to_overwrite = Some(note.clone());
                        note
                    }
                };
                self.health().corrupt = Some(note);
                Document::default()
            }
        };
        self.health().last_reload = Some(Utc::now());
        Ok(Loaded {
            stamp,
            document,
            unsafe_to_overwrite,
        })
    }
}

fn unavailable(path: &Path, what: &str, err: impl std::fmt::Display) -> RepositoryError {
    RepositoryError::Unavailable(format!("cannot {what} {}: {err}", path.display()))
}

#[async_trait]
impl UserRepository for JsonFileUserRepository {
    async fn snapshot(&self) -> Result<Arc<UserSnapshot>, RepositoryError> {
        let shared = &self.shared;
        if let Ok(snapshot) = shared.current()? {
            return Ok(snapshot);
        }
        // One reload at a time: readers arriving meanwhile wait, then find it published.
        let _turn = self.reloading.lock().await;
        let seen_version = match shared.current()? {
            Ok(snapshot) => return Ok(snapshot),
            Err(version) => version,
        };
        let for_load = Arc::clone(shared);
        let loaded = tokio::task::spawn_blocking(move || for_load.load())
            .await
            .map_err(|err| unavailable(&shared.path, "read", err))?
            .map_err(|err| unavailable(&shared.path, "read", err))?;
        tracing::info!(path = %shared.path.display(), users = loaded.document.users.users().len(), "reloaded the data file");
        let snapshot = Arc::new(loaded.document.users.snapshot());
        shared.publish(
            Some(seen_version),
            loaded.stamp,
            Arc::clone(&snapshot),
            Events::Diff,
        );
        Ok(snapshot)
    }

    async fn apply(&self, change: Change) -> Result<ChangeOutcome, RepositoryError> {
        let jobs = self.jobs.as_ref().ok_or(RepositoryError::Closed)?;
        let (reply, answer) = oneshot::channel();
        jobs.send(writer::Job { change, reply })
            .map_err(|_| RepositoryError::Closed)?;
        answer.await.map_err(|_| RepositoryError::Closed)?
    }

    fn health(&self) -> StorageHealth {
        self.shared.health().clone()
    }

    fn subscribe(&self) -> broadcast::Receiver<UserEvent> {
        self.shared.events.subscribe()
    }
}
