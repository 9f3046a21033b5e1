//! What happened to the user list, change by change: the journal a store keeps so that a
//! mistaken write can be looked up and undone.
//!
//! A [`UserChange`] is one user's state before and after one change, numbered by the store's
//! revision (which only grows). [`changes_between`] turns two lists into the changes they
//! amount to, for edits the store did not make itself.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::change::ChangeOutcome;
use super::events::{self, UserEvent, UserEventKind};
use super::snapshot::UserSnapshot;
use super::user::{User, UserId};

/// How long a history keeps a change, and how often it drops the older ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Changes made longer ago than this go (zero: every change goes at each compaction).
    pub keep: std::time::Duration,
    /// How often older changes are dropped (after a first time at start).
    pub every: std::time::Duration,
}

/// What a change did to its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
    /// The user's data was erased from the history; only the fact remains.
    Purged,
}

/// Which token the caller of an API change presented.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Credential {
    Write,
    Read,
    #[default]
    None,
}

/// Who or what made a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeSource {
    /// A client of the API, by its request id (when known) and credential.
    Api {
        request_id: Option<String>,
        credential: Credential,
    },
    /// A person (or another program) editing the data file.
    FileEdit,
    /// A statement run on the database outside the service.
    Sql,
    /// A bulk import (`roster transfer`, `roster seed`).
    Import,
    /// A restore of an earlier state through the API.
    Restore {
        request_id: Option<String>,
        credential: Credential,
    },
}

impl Default for ChangeSource {
    fn default() -> Self {
        Self::Api {
            request_id: None,
            credential: Credential::None,
        }
    }
}

impl ChangeSource {
    /// The request id an API or restore change came with.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api { request_id, .. } | Self::Restore { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// The credential an API or restore change came with.
    pub fn credential(&self) -> Option<Credential> {
        match self {
            Self::Api { credential, .. } | Self::Restore { credential, .. } => Some(*credential),
            _ => None,
        }
    }

    /// The same caller, now restoring an earlier state.
    pub fn restoring(self) -> Self {
        match self {
            Self::Api {
                request_id,
                credential,
            }
            | Self::Restore {
                request_id,
                credential,
            } => Self::Restore {
                request_id,
                credential,
            },
            _ => Self::Restore {
                request_id: None,
                credential: Credential::None,
            },
        }
    }
}

/// One user's change, as the journal keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct UserChange {
    /// The store's revision this change made; every change has its own, growing.
    pub revision: u64,
    pub at: DateTime<Utc>,
    pub kind: ChangeKind,
    pub user_id: UserId,
    /// The user as it was (`None` for a creation and a purge).
    pub before: Option<Arc<User>>,
    /// The user as it became (`None` for a deletion and a purge).
    pub after: Option<Arc<User>>,
    pub source: ChangeSource,
}

impl UserChange {
    /// The live event this change is, if it is one (a purge is not).
    pub fn event(&self) -> Option<UserEvent> {
        let (kind, user) = match self.kind {
            ChangeKind::Created => (UserEventKind::Created, self.after.as_ref()?),
            ChangeKind::Updated => (UserEventKind::Updated, self.after.as_ref()?),
            ChangeKind::Deleted => (UserEventKind::Deleted, self.before.as_ref()?),
            ChangeKind::Purged => return None,
        };
        Some(UserEvent {
            kind,
            user: Arc::clone(user),
            at: self.at,
            revision: self.revision,
        })
    }
}

/// A change not yet numbered: what a batch did, user by user, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Unnumbered {
    pub kind: ChangeKind,
    pub user_id: UserId,
    pub before: Option<Arc<User>>,
    pub after: Option<Arc<User>>,
    pub source: ChangeSource,
}

impl Unnumbered {
    /// The change at `revision`, made at `at`.
    pub fn numbered(self, revision: u64, at: DateTime<Utc>) -> UserChange {
        UserChange {
            revision,
            at,
            kind: self.kind,
            user_id: self.user_id,
            before: self.before,
            after: self.after,
            source: self.source,
        }
    }
}

/// Follows a batch of outcomes applied in order to `start`, and says what each did to each
/// user: the state before a change is the start's, or what an earlier change of the batch
/// left.
pub struct BatchJournal<'a> {
    start: &'a UserSnapshot,
    current: HashMap<UserId, Option<Arc<User>>>,
    changes: Vec<Unnumbered>,
}

impl<'a> BatchJournal<'a> {
    pub fn new(start: &'a UserSnapshot) -> Self {
        Self {
            start,
            current: HashMap::new(),
            changes: Vec::new(),
        }
    }

    fn before(&self, id: &UserId) -> Option<Arc<User>> {
        match self.current.get(id) {
            Some(state) => state.clone(),
            None => self.start.get(id).cloned(),
        }
    }

    fn push(&mut self, kind: ChangeKind, id: &UserId, after: Option<Arc<User>>, source: &ChangeSource) {
        let before = self.before(id);
        self.current.insert(id.clone(), after.clone());
        self.changes.push(Unnumbered {
            kind,
            user_id: id.clone(),
            before,
            after,
            source: source.clone(),
        });
    }

    /// Records what `outcome` (made by `source`) did.
    pub fn record(&mut self, outcome: &ChangeOutcome, source: &ChangeSource) {
        match outcome {
            ChangeOutcome::Created(user) => {
                self.push(ChangeKind::Created, user.id(), Some(Arc::clone(user)), source);
            }
            ChangeOutcome::Updated(user) => {
                self.push(ChangeKind::Updated, user.id(), Some(Arc::clone(user)), source);
            }
            ChangeOutcome::Deleted(user) => self.push(ChangeKind::Deleted, user.id(), None, source),
            ChangeOutcome::BulkUpdated(report) if report.committed => {
                for user in &report.updated {
                    self.push(ChangeKind::Updated, user.id(), Some(Arc::clone(user)), source);
                }
            }
            _ => {}
        }
    }

    /// The batch's changes, in order.
    pub fn finish(self) -> Vec<Unnumbered> {
        self.changes
    }
}

/// The per-user changes that turn `old` into `new`, made by `source` (an edit nobody
/// announced): creations and updates in the new list's order, then deletions.
pub fn changes_between(old: &UserSnapshot, new: &UserSnapshot, source: &ChangeSource) -> Vec<Unnumbered> {
    events::diff(old, new, Utc::now())
        .into_iter()
        .map(|event| {
            let id = event.user.id().clone();
            let (kind, before, after) = match event.kind {
                UserEventKind::Created => (ChangeKind::Created, None, Some(event.user)),
                UserEventKind::Updated => (ChangeKind::Updated, old.get(&id).cloned(), Some(event.user)),
                UserEventKind::Deleted => (ChangeKind::Deleted, Some(event.user), None),
            };
            Unnumbered {
                kind,
                user_id: id,
                before,
                after,
                source: source.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BulkReport, UserSnapshot};

    fn user(id: &str, name: &str) -> Arc<User> {
        Arc::new(User::restore(
            UserId::new(id),
            name.into(),
            format!("{id}@x.com"),
            None,
            None,
        ))
    }

    #[test]
    fn a_batch_that_changes_one_user_twice_records_each_step_from_the_one_before() {
        let start = UserSnapshot::from_users(vec![user("a", "A")]);
        let mut journal = BatchJournal::new(&start);
        let source = ChangeSource::FileEdit;
        journal.record(&ChangeOutcome::Updated(user("a", "A2")), &source);
        journal.record(
            &ChangeOutcome::BulkUpdated(BulkReport {
                updated: vec![user("a", "A3")],
                applied: 1,
                committed: true,
                failures: Vec::new(),
            }),
            &source,
        );
        journal.record(&ChangeOutcome::Deleted(user("a", "A3")), &source);
        let steps: Vec<_> = journal
            .finish()
            .into_iter()
            .map(|c| {
                (
                    c.kind,
                    c.before.map(|u| u.name().to_owned()),
                    c.after.map(|u| u.name().to_owned()),
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                (ChangeKind::Updated, Some("A".into()), Some("A2".into())),
                (ChangeKind::Updated, Some("A2".into()), Some("A3".into())),
                (ChangeKind::Deleted, Some("A3".into()), None),
            ]
        );
    }

    #[test]
    fn an_edit_is_the_changes_between_the_lists_with_the_state_before_each() {
        let old = UserSnapshot::from_users(vec![user("a", "A"), user("b", "B")]);
        let new = UserSnapshot::from_users(vec![user("a", "A2"), user("c", "C")]);
        let changes = changes_between(&old, &new, &ChangeSource::FileEdit);
        let kinds: Vec<_> = changes
            .iter()
            .map(|c| {
                (
                    c.kind,
                    c.user_id.as_str(),
                    c.before.as_ref().map(|u| u.name().to_owned()),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (ChangeKind::Updated, "a", Some("A".into())),
                (ChangeKind::Created, "c", None),
                (ChangeKind::Deleted, "b", Some("B".into())),
            ]
        );
    }
}
