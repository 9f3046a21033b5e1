//! An immutable view of the user list that readers share.
//!
//! A snapshot is a copy of the store's [`UserSet`]: taking one costs O(1) and shares every
//! node with the set it came from, so a store publishes one after every change without
//! copying users. Reads by id, address or a sort order use the set's indexes; searches scan
//! every user, on every core.

use std::sync::Arc;

use rayon::prelude::*;

use super::search::{FuzzyQuery, Scratch, SearchKeys};
use super::user::{User, UserId};
use super::user_set::{Entry, Position, UserSet};

/// What to keep from the list: either filter, both (both apply), or neither.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Case-insensitive substring of name or email.
    pub search: Option<String>,
    /// Typo-tolerant match; results come best first.
    pub fuzzy: Option<FuzzyQuery>,
}

impl UserFilter {
    /// Whether the filter keeps everyone.
    pub fn is_empty(&self) -> bool {
        self.search.is_none() && self.fuzzy.is_none()
    }
}

/// Below this many users a scan runs on the calling thread: splitting costs more.
const PARALLEL_FROM: usize = 8192;
/// How many pieces a parallel scan is cut into per thread, so uneven pieces even out.
const PIECES_PER_THREAD: usize = 4;

/// A user a filter kept: its fuzzy distance (0 without a fuzzy query), and its entry.
pub(crate) type Kept = (usize, Arc<Entry>);

/// The user list at one moment.
#[derive(Clone, Debug, Default)]
pub struct UserSnapshot {
    set: UserSet,
    revision: u64,
}

impl UserSnapshot {
    /// A snapshot of `set`, at revision 0.
    pub fn new(set: UserSet) -> Self {
        Self { set, revision: 0 }
    }

    /// A snapshot of `users` in the given order (tests and small lists).
    pub fn from_users(users: Vec<Arc<User>>) -> Self {
        Self::new(UserSet::new(users))
    }

    /// The same snapshot, marked with the store's `revision` (a number that grows with
    /// every change the store publishes).
    pub fn at_revision(self, revision: u64) -> Self {
        Self { revision, ..self }
    }

    /// The store's revision this snapshot shows.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The set the snapshot shows (to start a working copy from, or read its indexes).
    pub fn set(&self) -> &UserSet {
        &self.set
    }

    /// All users in list order.
    pub fn users(&self) -> impl DoubleEndedIterator<Item = &Arc<User>> + '_ {
        self.set.iter()
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The user with `id`; the first one if a hand-edited file repeats an id.
    pub fn get(&self, id: &UserId) -> Option<&Arc<User>> {
        self.set.get(id)
    }

    /// The user whose email matches `email` ignoring case and surrounding spaces.
    pub fn by_email(&self, email: &str) -> Option<&Arc<User>> {
        self.set.by_email(email)
    }

    /// The users `filter` keeps (file order, or best fuzzy match first with ties in file
    /// order), after skipping `offset` of them, at most `limit` (`None`: all).
    pub fn select(&self, filter: &UserFilter, offset: usize, limit: Option<usize>) -> Vec<Arc<User>> {
        let limit = limit.unwrap_or(usize::MAX);
        if filter.fuzzy.is_none() && limit.saturating_add(offset) <= PARALLEL_FROM {
            // A short page in list order: stream, so it touches no more users than needed.
            let needle = filter.search.as_deref().map(str::to_lowercase);
            let kept = |user: &&Arc<User>, keys: Option<&SearchKeys>| match (&needle, keys) {
                (None, _) => true,
                (Some(needle), Some(keys)) => keys.contains(needle),
                (Some(needle), None) => SearchKeys::new(user.name(), user.email()).contains(needle),
            };
            let page: Vec<&Arc<User>> = match self.set.entries() {
                Some(entries) => entries
                    .map(|entry| (entry.user(), entry))
                    .filter(|(user, entry)| kept(user, Some(entry.keys())))
                    .map(|(user, _)| user)
                    .skip(offset)
                    .take(limit)
                    .collect(),
                None => self
                    .set
                    .iter()
                    .filter(|user| kept(user, None))
                    .skip(offset)
                    .take(limit)
                    .collect(),
            };
            return page.into_iter().map(Arc::clone).collect();
        }
        let mut kept = self.matching(filter);
        if filter.fuzzy.is_some() {
            // A stable sort keeps list order among equal distances.
            kept.sort_by_key(|&(distance, _)| distance);
        }
        kept.into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, entry)| Arc::clone(entry.user()))
            .collect()
    }

    /// Every entry `filter` keeps, in list order, with its fuzzy distance, scanned on every
    /// core for a large list. A set not yet indexed has its entries made on the way.
    pub(crate) fn matching(&self, filter: &UserFilter) -> Vec<Kept> {
        let needle = filter.search.as_deref().map(str::to_lowercase);
        let keep = |entry: &Entry, scratch: &mut Scratch| -> Option<usize> {
            let keys = entry.keys();
            if needle.as_deref().is_some_and(|needle| !keys.contains(needle)) {
                return None;
            }
            match &filter.fuzzy {
                Some(query) => query.distance_with(keys, scratch),
                None => Some(0),
            }
        };
        if let Some(users) = self.set.listed() {
            let chunk =
                (users.len() / (rayon::current_num_threads() * PIECES_PER_THREAD)).max(PARALLEL_FROM / 4);
            let found: Vec<Vec<Kept>> = users
                .par_chunks(chunk.max(1))
                .map(|users| {
                    let mut scratch = Scratch::default();
                    users
                        .iter()
                        .map(|(position, user)| Arc::new(Entry::new(*position, Arc::clone(user))))
                        .filter_map(|entry| keep(&entry, &mut scratch).map(|distance| (distance, entry)))
                        .collect()
                })
                .collect();
            return found.concat();
        }
        fn scan<'s>(
            entries: impl Iterator<Item = &'s Arc<Entry>>,
            keep: &(dyn Fn(&Entry, &mut Scratch) -> Option<usize> + Sync),
        ) -> Vec<Kept> {
            let mut scratch = Scratch::default();
            entries
                .filter_map(|entry| keep(entry, &mut scratch).map(|distance| (distance, Arc::clone(entry))))
                .collect()
        }
        let Some(pieces) = self.pieces() else {
            return scan(self.set.entries().into_iter().flatten(), &keep);
        };
        let found: Vec<Vec<Kept>> = pieces
            .into_par_iter()
            .map(|(from, to)| match to {
                Some(to) => scan(self.set.entries_within(from..to), &keep),
                None => scan(self.set.entries_within(from..), &keep),
            })
            .collect();
        found.concat()
    }

    /// Every user's entry, made on the way when the set is not indexed yet.
    pub(crate) fn every_entry(&self) -> Vec<Arc<Entry>> {
        match self.set.listed() {
            Some(users) => users
                .par_iter()
                .map(|(position, user)| Arc::new(Entry::new(*position, Arc::clone(user))))
                .collect(),
            None => self.set.entries().into_iter().flatten().cloned().collect(),
        }
    }

    /// Position ranges (from, up to but excluding; the last open-ended) that together cover
    /// the list, for a parallel scan; `None` when the list is too small to be worth
    /// splitting.
    fn pieces(&self) -> Option<Vec<(Position, Option<Position>)>> {
        let threads = rayon::current_num_threads();
        if self.len() < PARALLEL_FROM || threads < 2 {
            return None;
        }
        let (low, high) = self.set.position_span()?;
        let count = (threads * PIECES_PER_THREAD) as i128;
        let (low, span) = (i128::from(low), i128::from(high) - i128::from(low) + 1);
        let edge = |piece: i128| (low + span * piece / count) as Position;
        Some(
            (0..count)
                .map(|piece| (edge(piece), (piece + 1 < count).then(|| edge(piece + 1))))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::stored_users;

    fn users(rows: &[(&str, &str, &str)]) -> UserSnapshot {
        UserSet::new(stored_users(rows)).snapshot()
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
        assert_eq!(names(snap.select(&search, 1, None)), ["Bobby", "Rob"]);
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

    #[test]
    fn a_parallel_scan_keeps_list_order_and_every_match() {
        // Enough users to be split, with gaps in the positions and matches everywhere.
        let mut set = UserSet::default();
        for n in 0..(3 * PARALLEL_FROM) {
            let user = Arc::new(User::restore(
                UserId::new(format!("u{n}")),
                format!("{} {n}", if n % 7 == 0 { "Bob" } else { "Ann" }),
                format!("u{n}@x.com"),
                None,
                None,
            ));
            set.put((n * 3) as Position, user);
        }
        for n in (0..PARALLEL_FROM).step_by(5) {
            set.take((n * 3) as Position);
        }
        let listed = UserSet::at_positions(
            set.positioned()
                .map(|(at, user)| (at, Arc::clone(user)))
                .collect(),
        );
        for snap in [set.snapshot(), listed.snapshot()] {
            let filter = UserFilter {
                search: Some("bob".into()),
                fuzzy: None,
            };
            let plain: Vec<String> = snap
                .users()
                .filter(|u| u.name().to_lowercase().contains("bob"))
                .map(|u| u.name().to_owned())
                .collect();
            assert_eq!(names(snap.select(&filter, 0, None)), plain);
            assert_eq!(names(snap.select(&filter, 3, Some(2))), plain[3..5]);
            let fuzzy = UserFilter {
                search: None,
                fuzzy: Some(FuzzyQuery::new("bob", 0)),
            };
            assert_eq!(names(snap.select(&fuzzy, 0, None)), plain);
        }
    }
}
