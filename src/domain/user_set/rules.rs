//! The rules every change to the user list obeys, in one place.
//!
//! [`UserSet::apply`] enforces case-insensitive email uniqueness and applies bulk items one
//! after another against the state the earlier items left, so the rules are identical
//! whatever the storage and however many changes a write carries. Each change costs
//! O(log n) per user it touches.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::UserSet;
use crate::domain::change::{
    BulkFailure, BulkFailureReason, BulkReport, Change, ChangeOutcome, EmailUpdate, Rejection,
};
use crate::domain::snapshot::UserSnapshot;
use crate::domain::user::{Email, User, UserName, to_micros};

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

impl UserSet {
    /// An immutable view of the current list for readers: O(1), sharing everything.
    pub fn snapshot(&self) -> UserSnapshot {
        UserSnapshot::new(self.clone())
    }

    /// Replaces the user at `position` with `user` and returns the stored version.
    fn replace(&mut self, position: super::Position, user: User) -> Arc<User> {
        let user = Arc::new(user);
        self.put(position, Arc::clone(&user));
        user
    }

    /// Applies one change and says what it did. A refused change leaves the set untouched.
    pub fn apply(&mut self, change: Change) -> ChangeOutcome {
        self.index();
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
                let Some(entry) = self.entry(&id) else {
                    return ChangeOutcome::Rejected(Rejection::NotFound);
                };
                let (position, current) = (entry.position(), entry.user());
                if let Some(settled) =
                    settled_without_write(current, Some(name.as_str()), Some(email.as_str()), None)
                {
                    return settled;
                }
                if self.email_taken(&email.key(), Some(position)) {
                    return ChangeOutcome::Rejected(Rejection::EmailInUse);
                }
                let mut user = User::clone(current);
                user.rename(name, email, at);
                ChangeOutcome::Updated(self.replace(position, user))
            }
            Change::Delete { id } => {
                let Some(position) = self.entry(&id).map(|entry| entry.position()) else {
                    return ChangeOutcome::Rejected(Rejection::NotFound);
                };
                match self.take(position) {
                    Some(user) => ChangeOutcome::Deleted(user),
                    None => ChangeOutcome::Rejected(Rejection::NotFound),
                }
            }
            Change::Patch {
                id,
                name,
                email,
                expected_updated_at,
                at,
            } => {
                let Some(entry) = self.entry(&id) else {
                    return ChangeOutcome::Rejected(Rejection::NotFound);
                };
                let (position, current) = (entry.position(), entry.user());
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
                    && self.email_taken(&email.key(), Some(position))
                {
                    return ChangeOutcome::Rejected(Rejection::EmailInUse);
                }
                let mut user = User::clone(current);
                user.patch(name, email, at);
                ChangeOutcome::Updated(self.replace(position, user))
            }
            Change::BulkUpdateEmails { items, at, mode } => {
                if !(mode.atomic || mode.dry_run) {
                    return ChangeOutcome::BulkUpdated(self.apply_bulk(items, at));
                }
                // Work on a copy (O(1): it shares everything); keep it only when the mode
                // allows.
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

    fn apply_bulk(&mut self, items: Vec<EmailUpdate>, at: DateTime<Utc>) -> BulkReport {
        let mut report = BulkReport {
            committed: true,
            ..BulkReport::default()
        };
        // A user updated twice in one batch is reported once, in its final state, at the
        // place of its last update: earlier places are blanked, then skipped.
        let mut updated: Vec<Option<Arc<User>>> = Vec::new();
        let mut slot_of: HashMap<super::Position, usize> = HashMap::new();
        // Each user an applied item names is counted once, however many items name it.
        let mut applied: HashSet<super::Position> = HashSet::new();
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
            let Some(entry) = self.entry(&id) else {
                report.failures.push(fail(BulkFailureReason::NotFound));
                continue;
            };
            let Some(email) = email else {
                report.failures.push(fail(BulkFailureReason::InvalidEmail));
                continue;
            };
            let (position, current) = (entry.position(), entry.user());
            if current.email() == email.as_str() {
                // Already so: it counts as applied and changes nothing.
                applied.insert(position);
                continue;
            }
            if self.email_taken(&email.key(), Some(position)) {
                report.failures.push(fail(BulkFailureReason::EmailInUse));
                continue;
            }
            let mut user = User::clone(current);
            user.change_email(email, at);
            let user = self.replace(position, user);
            if let Some(earlier) = slot_of.insert(position, updated.len()) {
                updated[earlier] = None;
            }
            updated.push(Some(user));
            applied.insert(position);
        }
        report.applied = applied.len();
        report.updated = updated.into_iter().flatten().collect();
        report
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::{BulkMode, Email, UserId, UserName};

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
        assert_eq!(set.len(), 1);
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
        let before = Arc::clone(set.iter().next().unwrap());
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
        assert!(Arc::ptr_eq(set.iter().next().unwrap(), &before));
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
