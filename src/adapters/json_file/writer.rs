//! The one writer thread: serialised, revalidated, group-committed writes (SPEC §5.6).
//!
//! Callers queue [`Job`]s. The thread takes the first job, then every job already waiting
//! (up to [`MAX_BATCH`] by default), and for the whole batch: takes the cross-process lock, checks the
//! file's stamp and reloads if anyone else changed it, applies the changes in order, writes
//! the file once, publishes the new snapshot and only then answers each caller with its own
//! outcome. A failed write answers every caller in the batch with the error and forgets the
//! in-memory state, so the next batch starts again from what is on disk.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

use chrono::Utc;
use tokio::sync::oneshot;

use super::format::Document;
use super::lock::WriteLock;
use super::stamp::Stamp;
use super::{Events, Shared, atomic, unavailable};
use crate::domain::{Change, ChangeOutcome, events};
use crate::ports::RepositoryError;

/// The most changes one write carries by default; bounds the latency of a batch.
pub const MAX_BATCH: usize = 4096;

/// How many times a batch is tried when the file keeps changing under the writer, before
/// the batch fails rather than overwrite someone else's edit.
const MAX_ATTEMPTS: u32 = 5;

/// A queued change and where to send its answer.
pub struct Job {
    pub change: Change,
    pub reply: oneshot::Sender<Result<ChangeOutcome, RepositoryError>>,
}

/// The writer's private state.
pub struct Writer {
    shared: Arc<Shared>,
    lock: Arc<WriteLock>,
    /// The working copy and the stamp of the file it was read from; `None` after a failed
    /// write, to force a reload.
    state: Option<(Option<Stamp>, Document)>,
    /// The most changes one write carries (1 turns group commit off, for measurements).
    max_batch: usize,
}

impl Writer {
    pub(super) fn new(shared: Arc<Shared>, lock: WriteLock, max_batch: usize) -> Self {
        Self {
            shared,
            lock: Arc::new(lock),
            state: None,
            max_batch: max_batch.max(1),
        }
    }

    /// Starts the thread. It ends when every sender is dropped and the queue is drained.
    pub fn spawn(mut self, queue: Receiver<Job>) -> io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("roster-writer".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    while batch.len() < self.max_batch {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    self.run_batch(batch);
                }
            })
    }

    fn run_batch(&mut self, batch: Vec<Job>) {
        let size = batch.len();
        let (changes, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|job| (job.change, job.reply)).unzip();
        match self.commit(changes) {
            Ok(outcomes) => {
                tracing::debug!(batch = size, "committed a batch of changes");
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // A caller that went away still had its change made durable.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                tracing::error!(batch = size, error = %err, "a write failed; no change of the batch was applied");
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }

    fn commit(&mut self, changes: Vec<Change>) -> Result<Vec<ChangeOutcome>, RepositoryError> {
        let path = self.shared.path.clone();
        let lock = Arc::clone(&self.lock);
        let _guard = lock
            .lock()
            .map_err(|err| self.failed(unavailable(&path, "lock", err)))?;
        let mut reloaded = false;
        let mut attempts = 0;
        let outcomes = loop {
            attempts += 1;
            let current = Stamp::of(&path).map_err(|err| self.failed(unavailable(&path, "read", err)))?;
            if self.state.as_ref().is_none_or(|(stamp, _)| *stamp != current) {
                let loaded = self
                    .shared
                    .load()
                    .map_err(|err| self.failed(unavailable(&path, "read", err)))?;
                if let Some(why) = loaded.unsafe_to_overwrite {
                    return Err(RepositoryError::Unavailable(why));
                }
                self.state = Some((loaded.stamp, loaded.document));
                reloaded = true;
            }
            let Some((stamp, document)) = self.state.as_mut() else {
                return Err(RepositoryError::Unavailable("the writer lost its state".into()));
            };
            let outcomes: Vec<ChangeOutcome> =
                changes.iter().cloned().map(|c| document.users.apply(c)).collect();
            if !outcomes.iter().any(ChangeOutcome::changed) {
                break outcomes;
            }
            // If someone replaced the file while we were writing ours, start over from
            // theirs rather than rename ours over it.
            let expected = *stamp;
            let shared = &self.shared;
            let still_current = |ours: &std::fs::Metadata| {
                let current = Stamp::of(&path)? == expected;
                if current {
                    // Readers that see our file before we publish it keep serving the
                    // published snapshot and leave the publishing (and its events) to us.
                    *shared.pending() = Some(Stamp::from_metadata(ours));
                }
                Ok(current)
            };
            let written = document
                .render()
                .map_err(|err| unavailable(&path, "encode", err))
                .and_then(|bytes| {
                    atomic::replace_file_if(&path, &bytes, still_current)
                        .map_err(|err| unavailable(&path, "write", err))
                });
            match written {
                Ok(Some(metadata)) => {
                    *stamp = Some(Stamp::from_metadata(&metadata));
                    let mut health = self.shared.health();
                    health.write_error = None;
                    health.last_write = Some(Utc::now());
                    break outcomes;
                }
                Ok(None) => {
                    self.state = None;
                    if attempts >= MAX_ATTEMPTS {
                        // Never overwrite someone else's edit: give up and let callers retry.
                        return Err(RepositoryError::Unavailable(format!(
                            "{} kept changing while it was being written ({MAX_ATTEMPTS} attempts); nothing was changed",
                            path.display()
                        )));
                    }
                    tracing::info!(
                        "the data file changed while writing; applying the batch again on top of it"
                    );
                }
                Err(err) => {
                    *self.shared.pending() = None;
                    return Err(self.failed(err));
                }
            }
        };
        if !reloaded && !outcomes.iter().any(ChangeOutcome::changed) {
            return Ok(outcomes);
        }
        let Some((stamp, document)) = self.state.as_ref() else {
            return Err(RepositoryError::Unavailable("the writer lost its state".into()));
        };
        let snapshot = Arc::new(document.users.snapshot());
        let events = if reloaded {
            // Someone else's edit is folded in: only a comparison tells it all.
            Events::Diff
        } else {
            let now = Utc::now();
            Events::Known(
                outcomes
                    .iter()
                    .flat_map(|o| events::from_outcome(o, now))
                    .collect(),
            )
        };
        self.shared.publish(None, *stamp, snapshot, events);
        *self.shared.pending() = None;
        Ok(outcomes)
    }

    /// Records a failure: the in-memory state may now differ from the file, so drop it.
    fn failed(&mut self, err: RepositoryError) -> RepositoryError {
        self.state = None;
        self.shared.health().write_error = Some(err.to_string());
        err
    }
}
