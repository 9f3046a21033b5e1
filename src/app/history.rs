//! History use cases: reading the change journal, restoring a user as a past change left
//! them, and a live feed that first replays the changes a subscriber missed.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::{Receiver, error::RecvError};

use super::watch_user_events::FeedError;
use crate::domain::{
    Change, ChangeOutcome, Email, Rejection, User, UserChange, UserEvent, UserEventKind, UserId, UserName,
};
use crate::ports::{
    ChangeJournal, Clock, NoJournal, RepositoryError, UserRepository, change_source, with_change_source,
};

/// The most changes one page holds.
pub const MAX_HISTORY_PAGE: usize = 1_000;

/// A page of changes, and whether more follow in its order.
#[derive(Clone, Debug, Default)]
pub struct ChangePage {
    pub changes: Vec<UserChange>,
    pub has_next_page: bool,
}

/// Why a history page was not read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("page size out of range")]
    InvalidFirst,
    #[error("not a revision")]
    InvalidRevision,
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

/// A revision as the API writes it: decimal digits.
///
/// # Errors
/// [`HistoryError::InvalidRevision`] for anything else.
pub fn parse_revision(text: &str) -> Result<u64, HistoryError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HistoryError::InvalidRevision);
    }
    text.parse().map_err(|_| HistoryError::InvalidRevision)
}

fn page_size(first: Option<i32>) -> Result<usize, HistoryError> {
    match first {
        None => Ok(MAX_HISTORY_PAGE),
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_HISTORY_PAGE)
            .ok_or(HistoryError::InvalidFirst),
    }
}

fn page(mut changes: Vec<UserChange>, first: usize) -> ChangePage {
    let has_next_page = changes.len() > first;
    changes.truncate(first);
    ChangePage {
        changes,
        has_next_page,
    }
}

/// Reads the history.
#[derive(Clone)]
pub struct ReadHistory {
    journal: Arc<dyn ChangeJournal>,
}

impl ReadHistory {
    pub fn new(journal: Arc<dyn ChangeJournal>) -> Self {
        Self { journal }
    }

    /// Every change after revision `after` (all, without it), oldest first.
    ///
    /// # Errors
    /// A bad `first` or `after`, or a storage failure.
    pub async fn changes(&self, after: Option<&str>, first: Option<i32>) -> Result<ChangePage, HistoryError> {
        let first = page_size(first)?;
        let after = after.map(parse_revision).transpose()?;
        let changes = self.journal.changes(after, first + 1).await?;
        Ok(page(changes, first))
    }

    /// The changes of the user with `id`, newest first, before revision `after` (the
    /// cursor of the last change of the page before).
    ///
    /// # Errors
    /// A bad `first` or `after`, or a storage failure.
    pub async fn user_history(
        &self,
        id: &str,
        after: Option<&str>,
        first: Option<i32>,
    ) -> Result<ChangePage, HistoryError> {
        let first = page_size(first)?;
        let before = after.map(parse_revision).transpose()?;
        let changes = self
            .journal
            .user_history(&UserId::new(id), before, first + 1)
            .await?;
        Ok(page(changes, first))
    }
}

/// Why a user was not restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreUserError {
    #[error("unknown or no longer kept revision")]
    UnknownRevision,
    #[error("the revision changed another user")]
    OtherUser,
    #[error("the revision left no user")]
    NothingToRestore,
    #[error("email {0} taken by another user")]
    EmailInUse(String),
    #[error("the past user is not valid now: {0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

impl From<HistoryError> for RestoreUserError {
    fn from(err: HistoryError) -> Self {
        match err {
            HistoryError::Storage(err) => Self::Storage(err),
            _ => Self::UnknownRevision,
        }
    }
}

/// Puts a user back as a past change left them, as a new change.
#[derive(Clone)]
pub struct RestoreUser {
    repo: Arc<dyn UserRepository>,
    journal: Arc<dyn ChangeJournal>,
    clock: Arc<dyn Clock>,
}

impl RestoreUser {
    pub fn new(
        repo: Arc<dyn UserRepository>,
        journal: Arc<dyn ChangeJournal>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { repo, journal, clock }
    }

    /// The user with `id` as they were just after `revision`, stored again: created anew
    /// when they were deleted since, updated back otherwise.
    ///
    /// # Errors
    /// A refusal ([`RestoreUserError`]) or a storage failure.
    pub async fn execute(&self, id: &str, revision: &str) -> Result<Arc<User>, RestoreUserError> {
        let revision = parse_revision(revision)?;
        let change = self
            .journal
            .changes(revision.checked_sub(1), 1)
            .await?
            .into_iter()
            .next()
            .filter(|change| change.revision == revision)
            .ok_or(RestoreUserError::UnknownRevision)?;
        if change.user_id.as_str() != id {
            return Err(RestoreUserError::OtherUser);
        }
        let target = change.after.ok_or(RestoreUserError::NothingToRestore)?;
        let now = self.clock.now();
        let current = self.repo.snapshot().await?.get(target.id()).cloned();
        let change = match current {
            None => Change::Create(User::restore(
                target.id().clone(),
                target.name().to_owned(),
                target.email().to_owned(),
                target.created_at(),
                Some(now),
            )),
            Some(_) => Change::Update {
                id: target.id().clone(),
                name: UserName::parse(target.name()).map_err(|e| RestoreUserError::Invalid(e.to_string()))?,
                email: Email::parse(target.email()).map_err(|e| RestoreUserError::Invalid(e.to_string()))?,
                at: now,
            },
        };
        let source = change_source().restoring();
        match with_change_source(source, self.repo.apply(change)).await? {
            ChangeOutcome::Created(user) | ChangeOutcome::Updated(user) | ChangeOutcome::Unchanged(user) => {
                Ok(user)
            }
            ChangeOutcome::Rejected(Rejection::EmailExists | Rejection::EmailInUse) => {
                Err(RestoreUserError::EmailInUse(target.email().to_owned()))
            }
            // Deleted between the look and the update: nothing to update any more.
            ChangeOutcome::Rejected(Rejection::NotFound) => Err(RestoreUserError::NothingToRestore),
            other => Err(super::unexpected("restore", &other).into()),
        }
    }
}

/// Why a user was not purged.
#[derive(Debug, thiserror::Error)]
pub enum PurgeUserError {
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

/// Removes a user and erases their data from the history.
#[derive(Clone)]
pub struct PurgeUser {
    journal: Arc<dyn ChangeJournal>,
}

impl PurgeUser {
    pub fn new(journal: Arc<dyn ChangeJournal>) -> Self {
        Self { journal }
    }

    /// Purges the user with `id`.
    ///
    /// # Errors
    /// [`PurgeUserError::NotFound`] when neither the user nor any change of theirs is
    /// known, or a storage failure.
    pub async fn execute(&self, id: &str) -> Result<(), PurgeUserError> {
        if self.journal.purge(&UserId::new(id)).await? {
            Ok(())
        } else {
            Err(PurgeUserError::NotFound)
        }
    }
}

/// A feed that replays the changes after a revision from the history, then goes on live,
/// each change once: live events the replay already gave are skipped. A feed that falls
/// behind the live events reads what it missed from the history rather than fail.
pub struct CatchUpFeed {
    journal: Arc<dyn ChangeJournal>,
    live: Receiver<UserEvent>,
    kinds: Option<Vec<UserEventKind>>,
    /// The last revision given (or skipped for its kind).
    seen: u64,
    pending: VecDeque<UserEvent>,
    /// Whether the replay has caught up with the history.
    replaying: bool,
}

/// How many changes a replay reads at a time.
const REPLAY_PAGE: usize = 256;

impl CatchUpFeed {
    /// The next change of a wanted kind; `None` when the store shuts down.
    pub async fn next(&mut self) -> Option<Result<UserEvent, FeedError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.replaying {
                match self.journal.changes(Some(self.seen), REPLAY_PAGE).await {
                    Ok(changes) => {
                        self.replaying = changes.len() == REPLAY_PAGE;
                        for change in changes {
                            self.seen = self.seen.max(change.revision);
                            if let Some(event) = change.event().filter(|e| self.wanted(e)) {
                                self.pending.push_back(event);
                            }
                        }
                    }
                    Err(_) => self.replaying = false,
                }
                continue;
            }
            match self.live.recv().await {
                // Revision 0: a change the store could not record; given as it comes.
                Ok(event) if event.revision != 0 && event.revision <= self.seen => {}
                Ok(event) => {
                    self.seen = self.seen.max(event.revision);
                    if self.wanted(&event) {
                        return Some(Ok(event));
                    }
                }
                Err(RecvError::Lagged(_)) => self.replaying = true,
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn wanted(&self, event: &UserEvent) -> bool {
        self.kinds
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&event.kind))
    }
}

/// Starts feeds that replay from a revision.
#[derive(Clone)]
pub struct WatchChanges {
    repo: Arc<dyn UserRepository>,
    journal: Arc<dyn ChangeJournal>,
}

impl WatchChanges {
    pub fn new(repo: Arc<dyn UserRepository>, journal: Arc<dyn ChangeJournal>) -> Self {
        Self { repo, journal }
    }

    /// A feed of every change after `after`, then live; `kinds` (when given and not empty)
    /// keeps only those. The live feed is joined first, so nothing falls between.
    ///
    /// # Errors
    /// [`HistoryError::InvalidRevision`] for a bad `after`.
    pub fn execute(
        &self,
        kinds: Option<Vec<UserEventKind>>,
        after: &str,
    ) -> Result<CatchUpFeed, HistoryError> {
        let after = parse_revision(after)?;
        Ok(CatchUpFeed {
            journal: Arc::clone(&self.journal),
            live: self.repo.subscribe(),
            kinds: kinds.filter(|kinds| !kinds.is_empty()),
            seen: after,
            pending: VecDeque::new(),
            replaying: true,
        })
    }
}

/// The history use cases over one store and its journal.
#[derive(Clone)]
pub struct HistoryServices {
    pub read: ReadHistory,
    pub restore: RestoreUser,
    pub watch: WatchChanges,
    pub purge: PurgeUser,
}

impl HistoryServices {
    pub fn new(
        repo: Arc<dyn UserRepository>,
        journal: Arc<dyn ChangeJournal>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            read: ReadHistory::new(Arc::clone(&journal)),
            restore: RestoreUser::new(Arc::clone(&repo), Arc::clone(&journal), clock),
            purge: PurgeUser::new(Arc::clone(&journal)),
            watch: WatchChanges::new(repo, journal),
        }
    }

    pub(super) fn watch_repo(&self) -> Arc<dyn UserRepository> {
        Arc::clone(&self.watch.repo)
    }

    pub(super) fn restore_clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.restore.clock)
    }

    /// Without a journal: every history is empty.
    pub fn without_journal(repo: Arc<dyn UserRepository>, clock: Arc<dyn Clock>) -> Self {
        Self::new(repo, Arc::new(NoJournal), clock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_decimal_digits_only() {
        assert_eq!(parse_revision("42").unwrap(), 42);
        for bad in ["", "-1", "+1", "1e3", " 1", "18446744073709551616"] {
            assert!(parse_revision(bad).is_err(), "{bad:?}");
        }
    }
}
