//! An immutable view of the user list that readers share.
//!
//! A snapshot is published after every load and every write and handed out as an `Arc`,
//! so a read never waits for a write. Its indexes (by id, and the prepared search keys)
//! are built on first use and then shared by every query against the same snapshot.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::search::{FuzzyQuery, SearchKeys};
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
    by_id: OnceLock<HashMap<UserId, usize>>,
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
        let index = self.by_id.get_or_init(|| {
            let mut map = HashMap::with_capacity(self.users.len());
            for (at, user) in self.users.iter().enumerate() {
                map.entry(user.id().clone()).or_insert(at);
            }
            map
        });
        index.get(id).map(|&at| &self.users[at])
    }

    fn keys(&self) -> &[SearchKeys] {
        self.keys.get_or_init(|| {
            self.users
                .iter()
                .map(|u| SearchKeys::new(u.name(), u.email()))
                .collect()
        })
    }

    /// The users `filter` keeps: file order, or best fuzzy match first (ties in file order).
    pub fn filter(&self, filter: &UserFilter) -> Vec<&Arc<User>> {
        if filter.search.is_none() && filter.fuzzy.is_none() {
            return self.users.iter().collect();
        }
        let needle = filter.search.as_deref().map(str::to_lowercase);
        let mut ranked: Vec<(usize, &Arc<User>)> = Vec::new();
        for (user, keys) in self.users.iter().zip(self.keys()) {
            if let Some(needle) = &needle
                && !keys.contains(needle)
            {
                continue;
            }
            let rank = match &filter.fuzzy {
                Some(query) => match query.distance(keys) {
                    Some(distance) => distance,
                    None => continue,
                },
                None => 0,
            };
            ranked.push((rank, user));
        }
        // A stable sort keeps file order among equal distances.
        ranked.sort_by_key(|(rank, _)| *rank);
        ranked.into_iter().map(|(_, user)| user).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(rows: &[(&str, &str, &str)]) -> UserSnapshot {
        UserSnapshot::new(
            rows.iter()
                .map(|(id, name, email)| {
                    Arc::new(User::restore(
                        UserId::new(*id),
                        name.to_string(),
                        email.to_string(),
                        None,
                        None,
                    ))
                })
                .collect(),
        )
    }

    fn names(found: Vec<&Arc<User>>) -> Vec<&str> {
        found.into_iter().map(|u| u.name()).collect()
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
        assert_eq!(names(snap.filter(&filter)), ["Bobby", "Bob", "Rob"]);
    }

    #[test]
    fn search_and_fuzzy_both_apply() {
        let snap = users(&[("1", "Bob", "bob@corp.com"), ("2", "Bobby", "bobby@home.org")]);
        let filter = UserFilter {
            search: Some("HOME".into()),
            fuzzy: Some(FuzzyQuery::new("Bbo", 1)),
        };
        assert_eq!(names(snap.filter(&filter)), ["Bobby"]);
    }

    #[test]
    fn get_finds_by_id_and_misses_unknown_ids() {
        let snap = users(&[("1", "Bob", "bob@x.com")]);
        assert_eq!(snap.get(&UserId::new("1")).map(|u| u.name()), Some("Bob"));
        assert!(snap.get(&UserId::new("nope")).is_none());
    }
}
