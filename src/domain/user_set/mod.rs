//! The user list and its indexes, as persistent (structurally shared) collections.
//!
//! A [`UserSet`] keeps every user once, as a shared [`Entry`], in seven ordered sets: list
//! order, id, address key, and one per sortable field. Each is an `imbl` B-tree, so a
//! change costs O(log n) in each and a copy of the set (a snapshot for readers) costs O(1)
//! and shares everything but the paths a later change rewrites. Nothing is rebuilt per
//! change or per snapshot; a search key is computed when its user is stored.
//!
//! The rules a change obeys (uniqueness, bulk items in order) live in [`rules`]; this
//! module holds the storage and the primitive moves the stores and the rules use.

mod index;
mod rules;

use std::sync::Arc;

use imbl::OrdSet;
use rayon::prelude::*;

pub use index::{Entry, Position, SortField, SortKey, SortPoint};
pub use rules::settled_without_write;

use index::{AtPosition, ByEmail, ById, ByPosition, Sorted, TextAt};

use super::user::{User, UserId, email_key};

/// An ordered list of users with indexes by position, id, address and every sort order.
#[derive(Clone, Debug, Default)]
pub struct UserSet {
    by_position: OrdSet<ByPosition>,
    by_id: OrdSet<ById>,
    by_email: OrdSet<ByEmail>,
    by_name: OrdSet<Sorted<0>>,
    by_address: OrdSet<Sorted<1>>,
    by_created: OrdSet<Sorted<2>>,
    by_updated: OrdSet<Sorted<3>>,
}

/// One sort order's index, seen through the operations pages need.
pub(crate) trait SortIndex: Sync {
    /// Entries from `from` (inclusive or not) upward, or downward when `down`.
    fn walk<'a>(
        &'a self,
        from: std::ops::Bound<SortPoint<'_>>,
        down: bool,
    ) -> Box<dyn Iterator<Item = &'a Arc<Entry>> + 'a>;
    fn len(&self) -> usize;
}

impl<const F: usize> SortIndex for OrdSet<Sorted<F>> {
    fn walk<'a>(
        &'a self,
        from: std::ops::Bound<SortPoint<'_>>,
        down: bool,
    ) -> Box<dyn Iterator<Item = &'a Arc<Entry>> + 'a> {
        use std::ops::Bound;
        let range = match (&from, down) {
            (Bound::Unbounded, _) => (Bound::Unbounded, Bound::Unbounded),
            (Bound::Included(at), false) => (Bound::Included(at), Bound::Unbounded),
            (Bound::Excluded(at), false) => (Bound::Excluded(at), Bound::Unbounded),
            (Bound::Included(at), true) => (Bound::Unbounded, Bound::Included(at)),
            (Bound::Excluded(at), true) => (Bound::Unbounded, Bound::Excluded(at)),
        };
        let entries = self.range::<_, SortPoint<'_>>(range).map(|sorted| &sorted.0);
        if down {
            Box::new(entries.rev())
        } else {
            Box::new(entries)
        }
    }

    fn len(&self) -> usize {
        OrdSet::len(self)
    }
}

impl UserSet {
    /// A set holding `users` in the given order (positions 0, 1, 2, ...).
    pub fn new(users: Vec<Arc<User>>) -> Self {
        Self::at_positions(
            users
                .into_iter()
                .enumerate()
                .map(|(at, user)| (at as Position, user))
                .collect(),
        )
    }

    /// A set holding each user at its position (positions must be distinct; a later
    /// duplicate replaces an earlier one). The indexes are built in parallel from sorted
    /// runs, which is several times faster than inserting one user at a time.
    pub fn at_positions(users: Vec<(Position, Arc<User>)>) -> Self {
        let mut entries: Vec<Arc<Entry>> = users
            .into_par_iter()
            .map(|(position, user)| Arc::new(Entry::new(position, user)))
            .collect();
        entries.par_sort_by_key(|entry| entry.position);
        entries.dedup_by(|later, earlier| {
            let same = later.position == earlier.position;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        fn sorted<T: Ord + Clone + Send>(entries: &[Arc<Entry>], wrap: fn(Arc<Entry>) -> T) -> OrdSet<T> {
            let mut run: Vec<T> = entries.iter().map(|entry| wrap(Arc::clone(entry))).collect();
            run.par_sort_unstable();
            run.into_iter().collect()
        }
        let ((by_position, (by_id, by_email)), ((by_name, by_address), (by_created, by_updated))) =
            rayon::join(
                || {
                    rayon::join(
                        || entries.iter().map(|e| ByPosition(Arc::clone(e))).collect(),
                        || rayon::join(|| sorted(&entries, ById), || sorted(&entries, ByEmail)),
                    )
                },
                || {
                    rayon::join(
                        || rayon::join(|| sorted(&entries, Sorted::<0>), || sorted(&entries, Sorted::<1>)),
                        || rayon::join(|| sorted(&entries, Sorted::<2>), || sorted(&entries, Sorted::<3>)),
                    )
                },
            );
        Self {
            by_position,
            by_id,
            by_email,
            by_name,
            by_address,
            by_created,
            by_updated,
        }
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.by_position.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_position.is_empty()
    }

    /// The users in list order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<User>> + '_ {
        self.by_position.iter().map(|entry| &entry.0.user)
    }

    /// The entries in list order.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &Arc<Entry>> + '_ {
        self.by_position.iter().map(|entry| &entry.0)
    }

    /// The entries whose positions lie in `range`, in list order.
    pub fn entries_within(
        &self,
        range: impl std::ops::RangeBounds<Position>,
    ) -> impl DoubleEndedIterator<Item = &Arc<Entry>> + '_ {
        use std::ops::Bound;
        let probe = |bound: Bound<&Position>| match bound {
            Bound::Included(&at) => Bound::Included(AtPosition(at)),
            Bound::Excluded(&at) => Bound::Excluded(AtPosition(at)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let range = (probe(range.start_bound()), probe(range.end_bound()));
        self.by_position.range(range).map(|entry| &entry.0)
    }

    /// The lowest and highest positions held.
    pub fn position_span(&self) -> Option<(Position, Position)> {
        Some((
            self.by_position.get_min()?.0.position,
            self.by_position.get_max()?.0.position,
        ))
    }

    /// The position a new user goes to: after every other.
    pub fn next_position(&self) -> Position {
        self.by_position
            .get_max()
            .map_or(0, |last| last.0.position.saturating_add(1))
    }

    /// The entry of the user with `id` (the first in list order, if a hand-edited file
    /// repeats the id).
    pub fn entry(&self, id: &UserId) -> Option<&Arc<Entry>> {
        let id = id.as_str();
        self.by_id
            .get_next(&TextAt(id, Position::MIN))
            .filter(|found| found.0.user.id().as_str() == id)
            .map(|found| &found.0)
    }

    /// The user with `id` (the first, if a hand-edited file repeats it).
    pub fn get(&self, id: &UserId) -> Option<&Arc<User>> {
        self.entry(id).map(|entry| &entry.user)
    }

    /// The user at `position`.
    pub fn at(&self, position: Position) -> Option<&Arc<User>> {
        self.by_position
            .get(&AtPosition(position))
            .map(|entry| &entry.0.user)
    }

    /// The entries whose address has the uniqueness key `key`, in list order.
    pub fn holders_of(&self, key: &str) -> impl Iterator<Item = &Arc<Entry>> + '_ {
        self.by_email
            .range(TextAt(key, Position::MIN)..=TextAt(key, Position::MAX))
            .map(|found| &found.0)
    }

    /// The first user in list order whose address matches `email` ignoring case and
    /// surrounding spaces.
    pub fn by_email(&self, email: &str) -> Option<&Arc<User>> {
        self.holders_of(&email_key(email)).next().map(|entry| &entry.user)
    }

    /// Whether `key` is the address of any user other than the one at `except`.
    pub fn email_taken(&self, key: &str, except: Option<Position>) -> bool {
        self.holders_of(key).any(|entry| Some(entry.position) != except)
    }

    /// The index of one sort order.
    pub(crate) fn sort_index(&self, field: SortField) -> &dyn SortIndex {
        match field {
            SortField::Name => &self.by_name,
            SortField::Email => &self.by_address,
            SortField::CreatedAt => &self.by_created,
            SortField::UpdatedAt => &self.by_updated,
        }
    }

    /// Stores `user` at `position`, replacing whoever was there; returns the user it
    /// replaced.
    pub fn put(&mut self, position: Position, user: Arc<User>) -> Option<Arc<User>> {
        let replaced = self.take(position);
        self.link(Arc::new(Entry::new(position, user)));
        replaced
    }

    /// Stores `user` after every other and returns its position.
    pub fn push(&mut self, user: Arc<User>) -> Position {
        let position = self.next_position();
        self.link(Arc::new(Entry::new(position, user)));
        position
    }

    /// Removes the user at `position` and returns it.
    pub fn take(&mut self, position: Position) -> Option<Arc<User>> {
        let found = self.by_position.remove(&AtPosition(position))?;
        let entry = found.0;
        self.by_id.remove(&ById(Arc::clone(&entry)));
        self.by_email.remove(&ByEmail(Arc::clone(&entry)));
        self.by_name.remove(&Sorted::<0>(Arc::clone(&entry)));
        self.by_address.remove(&Sorted::<1>(Arc::clone(&entry)));
        self.by_created.remove(&Sorted::<2>(Arc::clone(&entry)));
        self.by_updated.remove(&Sorted::<3>(Arc::clone(&entry)));
        Some(Arc::clone(&entry.user))
    }

    fn link(&mut self, entry: Arc<Entry>) {
        self.by_id.insert(ById(Arc::clone(&entry)));
        self.by_email.insert(ByEmail(Arc::clone(&entry)));
        self.by_name.insert(Sorted::<0>(Arc::clone(&entry)));
        self.by_address.insert(Sorted::<1>(Arc::clone(&entry)));
        self.by_created.insert(Sorted::<2>(Arc::clone(&entry)));
        self.by_updated.insert(Sorted::<3>(Arc::clone(&entry)));
        self.by_position.insert(ByPosition(entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::stored_users;

    fn names(set: &UserSet) -> Vec<&str> {
        set.iter().map(|user| user.name()).collect()
    }

    #[test]
    fn a_copy_shares_everything_and_keeps_its_own_view_after_a_change() {
        let mut set = UserSet::new(stored_users(&[("a", "Ann", "a@x"), ("b", "Bob", "b@x")]));
        let before = set.clone();
        set.take(0);
        set.push(Arc::new(User::restore(
            UserId::new("c"),
            "Cy".into(),
            "c@x".into(),
            None,
            None,
        )));
        assert_eq!(names(&before), ["Ann", "Bob"]);
        assert_eq!(names(&set), ["Bob", "Cy"]);
        assert!(before.get(&UserId::new("a")).is_some() && set.get(&UserId::new("a")).is_none());
        assert_eq!(set.get(&UserId::new("c")).map(|u| u.name()), Some("Cy"));
    }

    #[test]
    fn lookups_by_id_and_address_find_the_first_holder_in_list_order() {
        let set = UserSet::new(stored_users(&[
            ("b", "Bob", "bob@x.com"),
            ("a", "Ann", " ANN@x.com"),
            ("a", "Dup", "ann@X.com"),
        ]));
        assert_eq!(set.get(&UserId::new("a")).map(|u| u.name()), Some("Ann"));
        assert_eq!(set.by_email("Ann@x.COM ").map(|u| u.name()), Some("Ann"));
        assert_eq!(set.holders_of("ann@x.com").count(), 2);
        assert!(set.email_taken("bob@x.com", None));
        assert!(!set.email_taken("bob@x.com", Some(0)));
        assert!(set.get(&UserId::new("zz")).is_none());
    }

    #[test]
    fn building_at_once_equals_inserting_one_by_one() {
        let users = stored_users(&[
            ("3", "Carl", "c@x"),
            ("1", "ann", "A@x"),
            ("2", "Ann", "b@x"),
            ("1", "Bea", "d@x"),
        ]);
        let built = UserSet::new(users.clone());
        let mut grown = UserSet::default();
        for user in users {
            grown.push(user);
        }
        for field in SortField::ALL {
            let order = |set: &UserSet| -> Vec<Position> {
                set.sort_index(field)
                    .walk(std::ops::Bound::Unbounded, false)
                    .map(|e| e.position)
                    .collect()
            };
            assert_eq!(order(&built), order(&grown), "{field:?}");
        }
        assert_eq!(names(&built), names(&grown));
    }
}
