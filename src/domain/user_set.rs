//! The rules every change to the user list obeys, in one place.
//!
//! [`UserSet`] is the mutable working copy a repository keeps between writes. It enforces
//! case-insensitive email uniqueness and applies bulk items one after another against the
//! state the earlier items left, so the rules are identical whatever the storage and however
//! many changes a write carries.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hashbrown::HashTable;

use super::change::{
    BulkFailure, BulkFailureReason, BulkReport, Change, ChangeOutcome, EmailUpdate, Rejection,
};
use super::snapshot::UserSnapshot;
use super::user::{Email, User, UserId, UserName, to_micros};

/// What a change of `current` to `name` and `email` (`None`: kept) is answered without
/// writing anything, whichever store holds it: `Conflict` when `expected` is given and is
/// not `current`'s `updated_at` (compared at the precision clients read and stores keep);
/// `Unchanged` when nothing would change, so no write, no event, and `updated_at` stays
/// (other clients' `expectedUpdatedAt` still holds). `None` when it must be written.
pub fn settled_without_write(
    current: &Arc<User>,
    name: Option<&str>,
    email: Option<&str>,
    expected: Option<Option<DateTime<Utc>>>,
) -> Option<ChangeOutcome> {
    if expected.is_some_and(|expected| expected.map(to_micros) != current.updated_at()) {
        return Some(ChangeOutcome::Conflict(Arc::clone(current)));
    }
    let same_name = name.is_none_or(|name| name == current.name());
    let same_email = email.is_none_or(|email| email == current.email());
    (same_name && same_email).then(|| ChangeOutcome::Unchanged(Arc::clone(current)))
}

/// An ordered list of users with indexes by id and by email key.
///
/// The indexes hold positions only (four bytes a user), reading ids and addresses from the
/// list itself: indexes of copied strings cost about as much memory as the file. They are
/// built on the first change, not on load: a reader that only needs a snapshot of a
/// freshly loaded file never pays for them.
#[derive(Clone, Debug, Default)]
pub struct UserSet {
    users: Vec<Arc<User>>,
    indexed: bool,
    hasher: RandomState,
    /// Positions by id (the first, when a hand-edited file repeats an id).
    by_id: HashTable<u32>,
    /// Positions by email key, one entry per user: hand-edited files may hold an address
    /// twice, and every holder counts.
    by_email: HashTable<u32>,
}

impl UserSet {
    /// A set holding `users` in the given order.
    pub fn new(users: Vec<Arc<User>>) -> Self {
        Self {
            users,
            ..Self::default()
        }
    }

    fn ensure_indexed(&mut self) {
        if !self.indexed {
            self.reindex();
        }
    }

    fn reindex(&mut self) {
        self.indexed = true;
        self.by_id = HashTable::with_capacity(self.users.len());
        self.by_email = HashTable::with_capacity(self.users.len());
        for at in 0..self.users.len() {
            self.index_email(at);
            self.index_id(at);
        }
    }

    /// Indexes the user at `at` by id, unless an earlier record holds the id.
    fn index_id(&mut self, at: usize) {
        let (users, hasher) = (&self.users, &self.hasher);
        let id = users[at].id();
        let hash = hasher.hash_one(id);
        if self.by_id.find(hash, |&i| users[i as usize].id() == id).is_none() {
            self.by_id
                .insert_unique(hash, at as u32, |&i| hasher.hash_one(users[i as usize].id()));
        }
    }

    fn index_email(&mut self, at: usize) {
        let hash = self.hasher.hash_one(self.users[at].email_key());
        let (users, hasher) = (&self.users, &self.hasher);
        self.by_email.insert_unique(hash, at as u32, |&i| {
            hasher.hash_one(users[i as usize].email_key())
        });
    }

    fn unindex_email(&mut self, at: usize) {
        let hash = self.hasher.hash_one(self.users[at].email_key());
        if let Ok(entry) = self.by_email.find_entry(hash, |&i| i as usize == at) {
            entry.remove();
        }
    }

    /// The position of the first user with `id`, once indexed.
    fn position(&self, id: &UserId) -> Option<usize> {
        let hash = self.hasher.hash_one(id);
        self.by_id
            .find(hash, |&i| self.users[i as usize].id() == id)
            .map(|&i| i as usize)
    }

    /// The users in order.
    pub fn users(&self) -> &[Arc<User>] {
        &self.users
    }

    /// The user with `id`, if any (the first, if a hand-edited file repeats an id).
    pub fn get(&self, id: &UserId) -> Option<&Arc<User>> {
        if self.indexed {
            self.position(id).map(|at| &self.users[at])
        } else {
            self.users.iter().find(|user| user.id() == id)
        }
    }

    /// An immutable view of the current list for readers.
    pub fn snapshot(&self) -> UserSnapshot {
        UserSnapshot::new(self.users.clone())
    }

    /// Whether `key` is used by any user other than the one at `except`.
    fn email_taken(&self, key: &str, except: Option<usize>) -> bool {
        let hash = self.hasher.hash_one(key);
        self.by_email
            .iter_hash(hash)
            .any(|&i| Some(i as usize) != except && self.users[i as usize].email_key() == key)
    }

    fn replace(&mut self, at: usize, user: User) -> Arc<User> {
        self.unindex_email(at);
        let user = Arc::new(user);
        self.users[at] = Arc::clone(&user);
        self.index_email(at);
        user
    }

    fn push(&mut self, user: Arc<User>) {
        let at = self.users.len();
        self.users.push(user);
        self.index_email(at);
        self.index_id(at);
    }

    fn remove(&mut self, at: usize) -> Arc<User> {
        self.unindex_email(at);
        let hash = self.hasher.hash_one(self.users[at].id());
        if let Ok(entry) = self.by_id.find_entry(hash, |&i| i as usize == at) {
            entry.remove();
        }
        let user = self.users.remove(at);
        // Later users moved up by one; a record sharing the id may now be the first.
        for table in [&mut self.by_id, &mut self.by_email] {
            for i in table.iter_mut() {
                if *i as usize > at {
                    *i -= 1;
                }
            }
        }
        if let Some(next) = self.users.iter().position(|u| u.id() == user.id()) {
            self.index_id(next);
        }
        user
    }

    /// Applies one change and says what it did. A refused change leaves the set untouched.
    pub fn apply(&mut self, change: Change) -> ChangeOutcome {
        self.ensure_indexed();
        match change {
            Change::Create(user) => {
                if self.email_taken(&user.email_key(), None) {
                    return ChangeOutcome::Rejected(Rejection::EmailExists);
                }
                let user = Arc::new(user);
                self.push(Arc::clone(&user));
                ChangeOutcome::Created(user)
            }
            Change::Update { id, name, email, at } => {
                let Some(index) = self.position(&id) else {
                    return ChangeOutcome::Rejected(Rejection::NotFound);
                };
                let current = &self.users[index];
                if let Some(settled) =
                    settled_without_write(current, Some(name.as_str()), Some(email.as_str()), None)
                {
                    return settled;
                }
                if self.email_taken(&email.key(), Some(index)) {
                    return ChangeOutcome::Rejected(Rejection::EmailInUse);
                }
                let mut user = User::clone(current);
                user.rename(name, email, at);
                ChangeOutcome::Updated(self.replace(index, user))
            }
            Change::Delete { id } => {
                let Some(index) = self.position(&id) else {
                    return ChangeOutcome::Rejected(Rejection::NotFound);
                };
                ChangeOutcome::Deleted(self.remove(index))
            }
            Change::Patch {
                id,
                name,
                email,
                expected_updated_at,
                at,
            } => {
                let Some(index) = self.position(&id) else {
                    return ChangeOutcome::Rejected(Rejection::NotFound);
                };
                let current = &self.users[index];
                let settled = settled_without_write(
                    current,
                    name.as_ref().map(UserName::as_str),
                    email.as_ref().map(Email::as_str),
                    expected_updated_at,
                );
                if let Some(settled) = settled {
                    return settled;
                }
                if let Some(email) = &email
                    && self.email_taken(&email.key(), Some(index))
                {
                    return ChangeOutcome::Rejected(Rejection::EmailInUse);
                }
                let mut user = User::clone(current);
                user.patch(name, email, at);
                ChangeOutcome::Updated(self.replace(index, user))
            }
            Change::BulkUpdateEmails { items, at, mode } => {
                if !(mode.atomic || mode.dry_run) {
                    return ChangeOutcome::BulkUpdated(self.apply_bulk(items, at));
                }
                // Work on a copy; keep it only when the mode allows.
                let mut trial = self.clone();
                let mut report = trial.apply_bulk(items, at);
                let keep = !mode.dry_run && report.failures.is_empty();
                if keep {
                    *self = trial;
                } else {
                    report.committed = false;
                }
                ChangeOutcome::BulkUpdated(report)
            }
        }
    }

    fn apply_bulk(&mut self, items: Vec<EmailUpdate>, at: chrono::DateTime<chrono::Utc>) -> BulkReport {
        let mut report = BulkReport {
            committed: true,
            ..BulkReport::default()
        };
        for item in items {
            let (id, email, asked) = match item {
                EmailUpdate::Valid { id, email } => {
                    let asked = email.as_str().to_owned();
                    (id, Some(email), asked)
                }
                EmailUpdate::Invalid { id, email } => (id, None, email),
            };
            let fail = |reason| BulkFailure {
                id: id.clone(),
                email: asked.clone(),
                reason,
            };
            let Some(index) = self.position(&id) else {
                report.failures.push(fail(BulkFailureReason::NotFound));
                continue;
            };
            let Some(email) = email else {
                report.failures.push(fail(BulkFailureReason::InvalidEmail));
                continue;
            };
            if self.users[index].email() == email.as_str() {
                // Already so: it counts as applied and changes nothing.
                report.applied += 1;
                continue;
            }
            if self.email_taken(&email.key(), Some(index)) {
                report.failures.push(fail(BulkFailureReason::EmailInUse));
                continue;
            }
            let mut user = User::clone(&self.users[index]);
            user.change_email(email, at);
            let user = self.replace(index, user);
            // A user updated twice in one batch is reported once, in its final state.
            report.updated.retain(|u| u.id() != user.id());
            report.updated.push(user);
            report.applied += 1;
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::{BulkMode, Email, UserName};

    fn at(sec: u32) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, sec).unwrap()
    }

    fn user(id: &str, name: &str, email: &str) -> User {
        User::new(
            UserId::new(id),
            UserName::parse(name).unwrap(),
            Email::parse(email).unwrap(),
            at(0),
        )
    }

    fn set_of(users: &[(&str, &str)]) -> UserSet {
        UserSet::new(
            users
                .iter()
                .map(|(id, email)| Arc::new(user(id, id, email)))
                .collect(),
        )
    }

    fn valid(id: &str, email: &str) -> EmailUpdate {
        EmailUpdate::Valid {
            id: UserId::new(id),
            email: Email::parse(email).unwrap(),
        }
    }

    #[test]
    fn create_rejects_an_email_that_differs_only_in_case() {
        let mut set = set_of(&[("a", "ada@x.com")]);
        let outcome = set.apply(Change::Create(user("b", "B", "ADA@X.com")));
        assert_eq!(outcome, ChangeOutcome::Rejected(Rejection::EmailExists));
        assert_eq!(set.users().len(), 1);
    }

    #[test]
    fn update_may_keep_its_own_email_but_not_take_another() {
        let mut set = set_of(&[("a", "ada@x.com"), ("b", "bob@x.com")]);
        let keep = set.apply(Change::Update {
            id: UserId::new("a"),
            name: UserName::parse("Ada L").unwrap(),
            email: Email::parse("ADA@x.com").unwrap(),
            at: at(5),
        });
        let ChangeOutcome::Updated(updated) = keep else {
            panic!("expected an update, got {keep:?}")
        };
        assert_eq!(updated.name(), "Ada L");
        assert_eq!(updated.updated_at(), Some(at(5)));
        let take = set.apply(Change::Update {
            id: UserId::new("a"),
            name: UserName::parse("Ada").unwrap(),
            email: Email::parse("Bob@X.com").unwrap(),
            at: at(6),
        });
        assert_eq!(take, ChangeOutcome::Rejected(Rejection::EmailInUse));
    }

    #[test]
    fn delete_frees_the_email_and_the_id() {
        let mut set = set_of(&[("a", "ada@x.com"), ("b", "bob@x.com")]);
        let outcome = set.apply(Change::Delete { id: UserId::new("a") });
        assert!(matches!(outcome, ChangeOutcome::Deleted(ref u) if u.id().as_str() == "a"));
        assert!(set.get(&UserId::new("a")).is_none());
        assert!(set.get(&UserId::new("b")).is_some());
        let reuse = set.apply(Change::Create(user("c", "C", "ADA@x.com")));
        assert!(
            matches!(reuse, ChangeOutcome::Created(_)),
            "the email is free again: {reuse:?}"
        );
        let again = set.apply(Change::Delete { id: UserId::new("a") });
        assert_eq!(again, ChangeOutcome::Rejected(Rejection::NotFound));
    }

    #[test]
    fn bulk_items_see_the_state_left_by_earlier_items() {
        let mut set = set_of(&[("a", "a@x.com"), ("b", "b@x.com"), ("c", "c@x.com")]);
        let outcome = set.apply(Change::BulkUpdateEmails {
            items: vec![
                valid("a", "new@x.com"),
                valid("b", "NEW@x.com"),
                valid("c", "a@x.com"),
                valid("zz", "z@x.com"),
                EmailUpdate::Invalid {
                    id: UserId::new("b"),
                    email: "nope".into(),
                },
            ],
            at: at(9),
            mode: BulkMode::default(),
        });
        let ChangeOutcome::BulkUpdated(report) = outcome else {
            panic!("expected a bulk report")
        };
        let updated: Vec<_> = report.updated.iter().map(|u| u.id().as_str()).collect();
        assert_eq!(updated, ["a", "c"]);
        let failures: Vec<_> = report.failures.iter().map(ToString::to_string).collect();
        assert_eq!(failures, ["b email in use", "zz not found", "b invalid email"]);
        assert_eq!(set.get(&UserId::new("c")).unwrap().email(), "a@x.com");
    }

    #[test]
    fn atomic_batches_apply_all_or_nothing_and_dry_runs_nothing() {
        let mut set = set_of(&[("a", "a@x.com"), ("b", "b@x.com")]);
        let bulk = |mode| Change::BulkUpdateEmails {
            items: vec![valid("a", "new@x.com"), valid("zz", "z@x.com")],
            at: at(9),
            mode,
        };
        let atomic = BulkMode {
            atomic: true,
            dry_run: false,
        };
        let ChangeOutcome::BulkUpdated(report) = set.apply(bulk(atomic)) else {
            panic!()
        };
        assert!(!report.committed);
        assert_eq!(report.failures.len(), 1);
        assert_eq!(set.get(&UserId::new("a")).unwrap().email(), "a@x.com");
        let dry = BulkMode {
            atomic: false,
            dry_run: true,
        };
        let outcome = set.apply(bulk(dry));
        assert!(!outcome.changed());
        let ChangeOutcome::BulkUpdated(report) = outcome else {
            panic!()
        };
        assert_eq!(report.applied, 1, "the dry run says what would apply");
        assert_eq!(set.get(&UserId::new("a")).unwrap().email(), "a@x.com");
    }

    #[test]
    fn a_repeated_id_falls_to_the_next_record_once_the_first_is_deleted() {
        let mut set = set_of(&[("a", "one@x.com"), ("b", "two@x.com"), ("a", "three@x.com")]);
        let outcome = set.apply(Change::Delete { id: UserId::new("a") });
        assert!(matches!(outcome, ChangeOutcome::Deleted(ref u) if u.email() == "one@x.com"));
        assert_eq!(set.get(&UserId::new("a")).unwrap().email(), "three@x.com");
        assert_eq!(set.get(&UserId::new("b")).unwrap().email(), "two@x.com");
        // The deleted address is free again; the others are still taken.
        assert!(matches!(
            set.apply(Change::Create(user("c", "C", "ONE@x.com"))),
            ChangeOutcome::Created(_)
        ));
        let taken = set.apply(Change::Create(user("d", "D", "Three@x.com")));
        assert_eq!(taken, ChangeOutcome::Rejected(Rejection::EmailExists));
    }

    #[test]
    fn changes_that_ask_for_what_the_user_already_is_change_nothing() {
        let mut set = set_of(&[("a", "Ann@x.com")]);
        let before = Arc::clone(&set.users()[0]);
        let same = set.apply(Change::Update {
            id: UserId::new("a"),
            name: UserName::parse(" a ").unwrap(),
            email: Email::parse("Ann@x.com").unwrap(),
            at: at(9),
        });
        assert!(
            matches!(same, ChangeOutcome::Unchanged(ref u) if Arc::ptr_eq(u, &before)),
            "{same:?}"
        );
        assert!(!same.changed());
        let patch = set.apply(Change::Patch {
            id: UserId::new("a"),
            name: None,
            email: Some(Email::parse("Ann@x.com").unwrap()),
            expected_updated_at: Some(Some(at(0))),
            at: at(9),
        });
        assert!(matches!(patch, ChangeOutcome::Unchanged(_)), "{patch:?}");
        let ChangeOutcome::BulkUpdated(report) = set.apply(Change::BulkUpdateEmails {
            items: vec![valid("a", "Ann@x.com")],
            at: at(9),
            mode: BulkMode::default(),
        }) else {
            panic!()
        };
        assert_eq!((report.applied, report.updated.len()), (1, 0));
        assert!(Arc::ptr_eq(&set.users()[0], &before));
        // Case is kept as given, so a change of case is a change.
        let case = set.apply(Change::Update {
            id: UserId::new("a"),
            name: UserName::parse("a").unwrap(),
            email: Email::parse("ann@x.com").unwrap(),
            at: at(9),
        });
        assert!(matches!(case, ChangeOutcome::Updated(ref u) if u.updated_at() == Some(at(9))));
    }

    #[test]
    fn patch_changes_only_given_fields_and_detects_conflicts() {
        let mut set = set_of(&[("a", "a@x.com")]);
        let patch = |name: Option<&str>, expected| Change::Patch {
            id: UserId::new("a"),
            name: name.map(|n| UserName::parse(n).unwrap()),
            email: None,
            expected_updated_at: expected,
            at: at(30),
        };
        let ChangeOutcome::Updated(user) = set.apply(patch(Some("Renamed"), Some(Some(at(0))))) else {
            panic!()
        };
        assert_eq!((user.name(), user.email()), ("Renamed", "a@x.com"));
        let stale = set.apply(patch(Some("Again"), Some(Some(at(0)))));
        assert!(matches!(stale, ChangeOutcome::Conflict(ref current) if current.name() == "Renamed"));
    }
}
