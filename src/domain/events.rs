//! What happened to which user: the events live subscribers receive.
//!
//! A store knows the exact outcome of its own changes; for anything else (a person's edit,
//! another process) it has only the list before and after, and [`diff`] turns those into
//! the per-user events they amount to.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::change::ChangeOutcome;
use super::snapshot::UserSnapshot;
use super::user::{User, UserId};

/// The kind of a change to one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserEventKind {
    Created,
    Updated,
    Deleted,
}

/// One user created, updated or deleted. For a deletion, `user` is the user as it was.
#[derive(Clone, Debug, PartialEq)]
pub struct UserEvent {
    pub kind: UserEventKind,
    pub user: Arc<User>,
    pub at: DateTime<Utc>,
    /// The store's revision the change made (0 where the store keeps no history).
    pub revision: u64,
}

/// The events a store's own change produced, in the order it made them.
pub fn from_outcome(outcome: &ChangeOutcome, at: DateTime<Utc>) -> Vec<UserEvent> {
    let event = |kind, user: &Arc<User>| UserEvent {
        kind,
        user: Arc::clone(user),
        at,
        revision: 0,
    };
    match outcome {
        ChangeOutcome::Created(user) => vec![event(UserEventKind::Created, user)],
        ChangeOutcome::Updated(user) => vec![event(UserEventKind::Updated, user)],
        ChangeOutcome::Deleted(user) => vec![event(UserEventKind::Deleted, user)],
        ChangeOutcome::BulkUpdated(report) if report.committed => report
            .updated
            .iter()
            .map(|user| event(UserEventKind::Updated, user))
            .collect(),
        ChangeOutcome::BulkUpdated(_)
        | ChangeOutcome::Rejected(_)
        | ChangeOutcome::Conflict(_)
        | ChangeOutcome::Unchanged(_) => Vec::new(),
    }
}

/// The events that turn `old` into `new`: creations and updates in the new list's order,
/// then deletions in the old list's order. A user whose record is unchanged yields nothing.
pub fn diff(old: &UserSnapshot, new: &UserSnapshot, at: DateTime<Utc>) -> Vec<UserEvent> {
    let mut before: HashMap<&UserId, &Arc<User>> = HashMap::with_capacity(old.len());
    for user in old.users() {
        before.entry(user.id()).or_insert(user);
    }
    let mut events = Vec::new();
    let mut seen: HashMap<&UserId, ()> = HashMap::with_capacity(new.len());
    for user in new.users() {
        if seen.insert(user.id(), ()).is_some() {
            continue;
        }
        let kind = match before.get(user.id()) {
            None => Some(UserEventKind::Created),
            Some(was) if Arc::ptr_eq(was, user) || ***was == **user => None,
            Some(_) => Some(UserEventKind::Updated),
        };
        if let Some(kind) = kind {
            events.push(UserEvent {
                kind,
                user: Arc::clone(user),
                at,
                revision: 0,
            });
        }
    }
    for (id, user) in old.users().map(|u| (u.id(), u)) {
        if !seen.contains_key(id) && before.get(id).is_some_and(|first| Arc::ptr_eq(first, user)) {
            events.push(UserEvent {
                kind: UserEventKind::Deleted,
                user: Arc::clone(user),
                at,
                revision: 0,
            });
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn diff_names_each_created_updated_and_deleted_user() {
        let (a, b, c) = (user("a", "A"), user("b", "B"), user("c", "C"));
        let old = UserSnapshot::from_users(vec![Arc::clone(&a), Arc::clone(&b), Arc::clone(&c)]);
        let new = UserSnapshot::from_users(vec![
            user("d", "D"),
            Arc::clone(&a),
            user("b", "B2"),
            user("c", "C"),
        ]);
        let events: Vec<_> = diff(&old, &new, Utc::now())
            .into_iter()
            .map(|e| (e.kind, e.user.name().to_owned()))
            .collect();
        assert_eq!(
            events,
            [
                (UserEventKind::Created, "D".into()),
                (UserEventKind::Updated, "B2".into())
            ]
        );
        let gone = UserSnapshot::from_users(vec![Arc::clone(&b)]);
        let events: Vec<_> = diff(&old, &gone, Utc::now())
            .into_iter()
            .map(|e| (e.kind, e.user.name().to_owned()))
            .collect();
        assert_eq!(
            events,
            [
                (UserEventKind::Deleted, "A".into()),
                (UserEventKind::Deleted, "C".into())
            ]
        );
    }
}
