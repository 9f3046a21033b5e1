//! Where users are kept.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{Change, ChangeOutcome, ChangeSource, UserChange, UserEvent, UserId, UserSnapshot};

/// Why storage could not do what was asked. Business refusals (a taken email, an unknown
/// id) are not errors: they come back as [`ChangeOutcome::Rejected`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryError {
    /// The store cannot be read or written right now; the message names the cause
    /// (a full disk, a read-only or vanished folder) so a person can act on it.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The store is shutting down and takes no more changes.
    #[error("storage is shutting down")]
    Closed,
    /// A bug: the store answered with something its contract rules out. The text is for
    /// the log (it may hold user data); a client is only told `internal error`.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a store can say about its own state, for `/health`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageHealth {
    /// Where the data lives, as a person would name it (a path, a URL).
    pub location: String,
    /// The last error a write met, cleared by the next successful write.
    pub write_error: Option<String>,
    /// When the data was last read from the store.
    pub last_reload: Option<DateTime<Utc>>,
    /// When a change was last made durable.
    pub last_write: Option<DateTime<Utc>>,
    /// A note when the stored data was found unreadable and set aside.
    pub corrupt: Option<String>,
    /// A note when the last change was made and is visible, but may not survive a power
    /// cut (for a file: the folder's fsync after the rename failed). Cleared by the next
    /// fully durable write; it does not make the store unhealthy.
    pub durability_warning: Option<String>,
}

impl StorageHealth {
    /// Whether the store can take writes as far as it knows.
    pub fn is_healthy(&self) -> bool {
        self.write_error.is_none()
    }
}

/// A store of users.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// The current users.
    ///
    /// MUST reflect every change this repository has acknowledged, and MUST reflect a change
    /// made by someone else (another process, a person's edit) once the implementation has
    /// had a chance to notice it (for a cache: at the latest when its time-to-live ends).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the store cannot be read at all.
    async fn snapshot(&self) -> Result<Arc<UserSnapshot>, RepositoryError>;

    /// What the store has published last, without looking any further (no I/O, no
    /// waiting): every change it acknowledged or noticed so far.
    ///
    /// MUST be at least as recent as any snapshot [`UserRepository::snapshot`] returned
    /// before; a cache in front of the store uses it between its checks.
    fn latest(&self) -> Arc<UserSnapshot>;

    /// The latest snapshot whose indexes are built, waiting for the store to build them
    /// if it has just read its users (it does so at once, before any change). Reads that
    /// walk an order use it rather than sort every user themselves meanwhile.
    ///
    /// # Errors
    /// [`RepositoryError::Closed`] when the store stops before the indexes are built.
    async fn indexed(&self) -> Result<Arc<UserSnapshot>, RepositoryError> {
        self.snapshot().await
    }

    /// Applies `change` against the latest stored state and makes it durable before
    /// answering.
    ///
    /// MUST serialise changes (no acknowledged change is ever overwritten by another) and
    /// MUST enforce the domain's rules against the state the change is applied to. A refused
    /// change is `Ok(ChangeOutcome::Rejected(_))` and alters nothing.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the change could not be made durable; the
    /// stored data is then as it was before.
    async fn apply(&self, change: Change) -> Result<ChangeOutcome, RepositoryError>;

    /// The store's own view of its health.
    fn health(&self) -> StorageHealth;

    /// A feed of every user created, updated or deleted from now on, whoever made the
    /// change (this process, another one, a person editing the data).
    ///
    /// The feed is bounded: a receiver that falls behind MUST see
    /// `RecvError::Lagged` rather than slow the writers down.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<UserEvent>;
}

/// The history a store keeps of its changes (see [`crate::domain::history`]).
///
/// A store without one answers with nothing; the file and database stores keep one.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ChangeJournal: Send + Sync {
    /// Changes after revision `after` (from the first kept, without it), oldest first, at
    /// most `first`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the history cannot be read.
    async fn changes(&self, after: Option<u64>, first: usize) -> Result<Vec<UserChange>, RepositoryError>;

    /// The changes of the user with `id` (deleted or not) before revision `before` (from the
    /// newest, without it), newest first, at most `first`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the history cannot be read.
    async fn user_history(
        &self,
        id: &UserId,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<UserChange>, RepositoryError>;

    /// The oldest revision the history still holds, if it holds any.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the history cannot be read.
    async fn oldest_revision(&self) -> Result<Option<u64>, RepositoryError> {
        Ok(self.changes(None, 1).await?.first().map(|change| change.revision))
    }
    /// Removes the user with `id` (when still there) and erases their data from the
    /// history: each of their changes keeps only its revision, time, id and source, as a
    /// purge. Says whether the user or any change of theirs was found.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the store cannot do it (one without a history
    /// cannot).
    async fn purge(&self, id: &UserId) -> Result<bool, RepositoryError> {
        let _ = id;
        Err(RepositoryError::Unavailable(
            "this store keeps no history to purge".into(),
        ))
    }
}

/// A journal that keeps nothing: for stores without a history.
pub struct NoJournal;

#[async_trait]
impl ChangeJournal for NoJournal {
    async fn changes(&self, _: Option<u64>, _: usize) -> Result<Vec<UserChange>, RepositoryError> {
        Ok(Vec::new())
    }

    async fn user_history(
        &self,
        _: &UserId,
        _: Option<u64>,
        _: usize,
    ) -> Result<Vec<UserChange>, RepositoryError> {
        Ok(Vec::new())
    }
}

tokio::task_local! {
    static SOURCE: ChangeSource;
}

/// Runs `work` with `source` as the origin of every change it applies: the driving adapter
/// names the caller (request id, credential) once around a request, and a store that
/// journals its changes reads it with [`change_source`] when a change is handed to it,
/// so neither the use cases nor [`Change`] carry it.
pub async fn with_change_source<F: std::future::Future>(source: ChangeSource, work: F) -> F::Output {
    SOURCE.scope(source, work).await
}

/// The origin set by [`with_change_source`] around the current task, or an anonymous API
/// call.
pub fn change_source() -> ChangeSource {
    SOURCE.try_with(Clone::clone).unwrap_or_default()
}
