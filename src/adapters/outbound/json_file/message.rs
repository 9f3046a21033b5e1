//! What the store's owner is told, and what it publishes for everyone else to read.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::stamp::Stamp;
use crate::domain::{Change, ChangeOutcome, ChangeSource, UserId, UserSnapshot};
use crate::ports::{RepositoryError, StorageHealth};

/// Why the owner was asked to look at the file again (the `cause` of
/// `roster_store_reloads_total` when the look turns into a reload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadCause {
    /// The first load, when the store opens.
    Start,
    /// The file watcher saw the file change.
    Watcher,
    /// The periodic check (the cache's time-to-live), a safety net for lost events.
    Ttl,
    /// A write found that someone else had changed the file.
    Write,
    /// A reader found the published snapshot older than the file.
    Revalidate,
}

impl ReloadCause {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Watcher => "watcher",
            Self::Ttl => "ttl",
            Self::Write => "write",
            Self::Revalidate => "revalidate",
        }
    }
}

/// A message to the owner.
pub(super) enum Message {
    /// Apply a change, make it durable, then answer.
    Apply {
        change: Change,
        /// Who asked for it, for the history.
        source: ChangeSource,
        reply: oneshot::Sender<Result<ChangeOutcome, RepositoryError>>,
    },
    /// Compare the file with what is published and reload it if someone changed it;
    /// answer (when asked to) once that is done.
    /// Remove a user and erase them from the history.
    Purge {
        id: UserId,
        source: ChangeSource,
        reply: oneshot::Sender<Result<bool, RepositoryError>>,
    },
    Revalidate {
        cause: ReloadCause,
        reply: Option<oneshot::Sender<Result<(), RepositoryError>>>,
    },
}

/// What readers see: the latest snapshot, the file it came from, and the store's health,
/// replaced whole by the owner and never changed in place.
#[derive(Debug)]
pub(super) struct Published {
    /// The stamp of the file the snapshot reflects (`None`: there was no file).
    pub stamp: Option<Stamp>,
    pub snapshot: Arc<UserSnapshot>,
    pub health: StorageHealth,
}
