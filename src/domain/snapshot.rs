//! An immutable view of the user list that readers share.
//!
//! A snapshot is published after every load and every write and handed out as an `Arc`,
//! so a read never waits for a write. Its indexes (by id, and the prepared search keys)
//! are built on first use and then shared by every query against the same snapshot.

use std::sync::{Arc, OnceLock};

use super::search::{FuzzyQuery, Scratch, SearchKeys};
use super::user::{User, UserId};

/// What to keep from the list: either filter, both (both apply), or neither.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Case-insensitive substring of name or email.
    pub search: Option<String>,
    /// Typo-tolerant match; results come best first.
    pub fuzzy: Option<FuzzyQuery>,
}

/// The user list at one moment.
#[derive(Debug, Default)]
pub struct UserSnapshot {
    users: Vec<Arc<User>>,
    by_id: OnceLock<Vec<u32>>,
    keys: OnceLock<Vec<SearchKeys>>,
}

impl UserSnapshot {
    /// A snapshot of `users`, in order.
    pub fn new(users: Vec<Arc<User>>) -> Self {
        Self {
            users,
            ..Self::default()
        }
    }

    /// All users in file order.
    pub fn users(&self) -> &[Arc<User>] {
        &self.users
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user with `id`; the first one if a hand-edited file repeats an id.
    pub fn get(&self, id: &UserId) -> Option<&Arc<User>> {
        // Positions sorted by id: four bytes per user, where a map keyed by cloned ids
        // would cost tens.
        let by_id = self.by_id.get_or_init(|| {
            let mut order: Vec<u32> = (0..self.users.len() as u32).collect();
            order.sort_by(|&a, &b| {
                self.users[a as usize]
                    .id()
                    .cmp(self.users[b as usize].id())
                    .then(a.cmp(&b))
            });
            order
        });
        let first = by_id.partition_point(|&at| self.users[at as usize].id() < id);
        by_id
            .get(first)
            .map(|&at| &self.users[at as usize])
            .filter(|user| user.id() == id)
    }

    /// The user whose email matches `email` ignoring case and surrounding spaces.
    pub fn by_email(&self, email: &str) -> Option<&Arc<User>> {
        let key = super::user::email_key(email);
        let at = self.keys().iter().position(|keys| keys.email().trim() == key)?;
        self.users.get(at)
    }

    fn keys(&self) -> &[SearchKeys] {
        self.keys.get_or_init(|| {
            self.users
                .iter()
                .map(|u| SearchKeys::new(u.name(), u.email()))
                .collect()
        })
    }

    /// The users `filter` keeps (file order, or best fuzzy match first with ties in file
    /// order), after skipping `offset` of them, at most `limit` (`None`: all).
    pub fn select(&self, filter: &UserFilter, offset: usize, limit: Option<usize>) -> Vec<Arc<User>> {
        let limit = limit.unwrap_or(usize::MAX);
        let needle = filter.search.as_deref().map(str::to_lowercase);
        let Some(query) = &filter.fuzzy else {
            // No ranking: stream, so a page of ten never touches more users than it needs.
            let kept = self.users.iter().enumerate().filter(|(at, _)| match &needle {
                Some(needle) => self.keys()[*at].contains(needle),
                None => true,
            });
            return kept
                .skip(offset)
                .take(limit)
                .map(|(_, user)| Arc::clone(user))
                .collect();
        };
        let mut scratch = Scratch::default();
        let mut ranked: Vec<(usize, usize)> = Vec::new();
        for (at, keys) in self.keys().iter().enumerate() {
            if needle.as_deref().is_some_and(|needle| !keys.contains(needle)) {
                continue;
            }
            if let Some(distance) = query.distance_with(keys, &mut scratch) {
                ranked.push((distance, at));
            }
        }
        // A stable sort keeps file order among equal distances.
        ranked.sort_by_key(|&(distance, _)| distance);
        ranked
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, at)| Arc::clone(&self.users[at]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(rows: &[(&str, &str, &str)]) -> UserSnapshot {
        UserSnapshot::new(crate::domain::user::stored_users(rows))
    }

    fn names(found: Vec<Arc<User>>) -> Vec<String> {
        found.into_iter().map(|u| u.name().to_owned()).collect()
    }

    #[test]
    fn fuzzy_results_come_best_first_with_ties_in_file_order() {
        let snap = users(&[
            ("1", "Bobby", "bobby@example.com"),
            ("2", "Rob", "rob@example.com"),
            ("3", "Bob", "bob@example.com"),
            ("4", "Alice", "alice@example.com"),
        ]);
        let filter = UserFilter {
            search: None,
            fuzzy: Some(FuzzyQuery::new("bob", 1)),
        };
        assert_eq!(names(snap.select(&filter, 0, None)), ["Bobby", "Bob", "Rob"]);
    }

    #[test]
    fn search_and_fuzzy_both_apply() {
        let snap = users(&[("1", "Bob", "bob@corp.com"), ("2", "Bobby", "bobby@home.org")]);
        let filter = UserFilter {
            search: Some("HOME".into()),
            fuzzy: Some(FuzzyQuery::new("Bbo", 1)),
        };
        assert_eq!(names(snap.select(&filter, 0, None)), ["Bobby"]);
    }

    #[test]
    fn select_pages_after_filtering() {
        let snap = users(&[
            ("1", "Ann", "ann@x.com"),
            ("2", "Bob", "bob@x.com"),
            ("3", "Bobby", "bobby@x.com"),
            ("4", "Rob", "rob@x.com"),
        ]);
        let search = UserFilter {
            search: Some("ob".into()),
            fuzzy: None,
        };
        assert_eq!(names(snap.select(&search, 1, Some(1))), ["Bobby"]);
        assert_eq!(names(snap.select(&UserFilter::default(), 3, None)), ["Rob"]);
        assert!(snap.select(&UserFilter::default(), 0, Some(0)).is_empty());
    }

    #[test]
    fn get_finds_by_id_and_misses_unknown_ids() {
        let snap = users(&[
            ("b", "Bob", "bob@x.com"),
            ("a", "Ann", "a@x.com"),
            ("a", "Dup", "d@x.com"),
        ]);
        assert_eq!(snap.get(&UserId::new("b")).map(|u| u.name()), Some("Bob"));
        assert_eq!(snap.get(&UserId::new("a")).map(|u| u.name()), Some("Ann"));
        assert!(snap.get(&UserId::new("nope")).is_none());
    }
}
