//! The user list and its indexes, as persistent (structurally shared) collections.
//!
//! An indexed [`UserSet`] keeps every user once, as a shared [`Entry`], in six ordered
//! sets: list order, id, and one per sortable field (the address order also answers who
//! holds an address). Each is an `imbl` B-tree, so a change costs O(log n) in each and a
//! copy of the set (a snapshot for readers) costs O(1) and shares everything but the paths
//! a later change rewrites. Nothing is rebuilt per change or per snapshot; a user's search
//! keys are computed when it is stored.
//!
//! Building the indexes costs about a microsecond a user, so a store that has just read
//! its users publishes them first as a plain list ([`UserSet::new`]), which answers every
//! read by scanning, and builds the indexes right after ([`UserSet::index`]), before it
//! applies any change; from then on the indexes are maintained, never rebuilt.
//!
//! The rules a change obeys (uniqueness, bulk items in order) live in [`rules`]; this
//! module holds the storage and the primitive moves the stores and the rules use.

mod index;
mod rules;

use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdSet;
use rayon::prelude::*;

pub use index::{Entry, Position, SortField, SortKey, SortPoint};
pub use rules::settled_without_write;

use index::{AtPosition, ById, ByPosition, Order, Sorted, TextAt};

use super::user::{User, UserId, email_key};

/// An ordered list of users with indexes by position, id and every sort order.
#[derive(Clone, Debug)]
pub struct UserSet {
    body: Body,
}

#[derive(Clone, Debug)]
enum Body {
    /// As read, in position order, before the indexes are built.
    Listed(Arc<Vec<(Position, Arc<User>)>>),
    Indexed(Indexes),
}

#[derive(Clone, Debug, Default)]
struct Indexes {
    by_position: OrdSet<ByPosition>,
    by_id: OrdSet<ById>,
    by_name: OrdSet<Sorted<0>>,
    by_email: OrdSet<Sorted<1>>,
    by_created: OrdSet<Sorted<2>>,
    by_updated: OrdSet<Sorted<3>>,
}

impl Default for UserSet {
    /// An empty set, indexed.
    fn default() -> Self {
        Self {
            body: Body::Indexed(Indexes::default()),
        }
    }
}

/// An ordered set of the `count` elements `element(0..count)` makes, in that order, with
/// full nodes. Appending in order leaves every B-tree node half full (each split keeps the
/// lower half), twice the memory; inserting every other element first, then the ones
/// between them, fills each node's empty half in place.
fn packed<T: Ord + Clone>(count: usize, element: impl Fn(usize) -> T) -> OrdSet<T> {
    let mut set = OrdSet::new();
    for at in (0..count).step_by(2).chain((1..count).step_by(2)) {
        set.insert(element(at));
    }
    set
}

/// One sort order's run of entries, seen through the operations pages need: an index, or
/// the sorted matches of a search.
pub(crate) trait SortIndex: Sync {
    /// Entries beyond `from` (or from the start), ascending, or descending when `down`.
    fn walk<'a>(
        &'a self,
        from: Bound<SortPoint<'_>>,
        down: bool,
    ) -> Box<dyn Iterator<Item = &'a Arc<Entry>> + 'a>;
    fn len(&self) -> usize;
}

impl<const F: usize> SortIndex for OrdSet<Sorted<F>> {
    fn walk<'a>(
        &'a self,
        from: Bound<SortPoint<'_>>,
        down: bool,
    ) -> Box<dyn Iterator<Item = &'a Arc<Entry>> + 'a> {
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

/// The users of a set in list order with their positions, whichever form the set has.
pub struct Positioned<'a>(Walk<'a>);

enum Walk<'a> {
    Listed(std::slice::Iter<'a, (Position, Arc<User>)>),
    Indexed(imbl::ordset::Iter<'a, ByPosition, imbl::shared_ptr::DefaultSharedPtr>),
}

impl<'a> Iterator for Positioned<'a> {
    type Item = (Position, &'a Arc<User>);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Walk::Listed(users) => users.next().map(|(at, user)| (*at, user)),
            Walk::Indexed(entries) => entries.next().map(|entry| (entry.0.position, &entry.0.user)),
        }
    }
}

impl DoubleEndedIterator for Positioned<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Walk::Listed(users) => users.next_back().map(|(at, user)| (*at, user)),
            Walk::Indexed(entries) => entries.next_back().map(|entry| (entry.0.position, &entry.0.user)),
        }
    }
}

impl UserSet {
    /// A set holding `users` in the given order (positions 0, 1, 2, ...), not yet indexed.
    pub fn new(users: Vec<Arc<User>>) -> Self {
        let listed = users
            .into_iter()
            .enumerate()
            .map(|(at, user)| (at as Position, user))
            .collect();
        Self {
            body: Body::Listed(Arc::new(listed)),
        }
    }

    /// A set holding each user at its position, not yet indexed. Positions must be
    /// distinct; a later duplicate replaces an earlier one.
    pub fn at_positions(mut users: Vec<(Position, Arc<User>)>) -> Self {
        if !users.is_sorted_by_key(|(position, _)| *position) {
            users.par_sort_by_key(|(position, _)| *position);
        }
        users.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        Self {
            body: Body::Listed(Arc::new(users)),
        }
    }

    /// Whether the indexes are built.
    pub fn is_indexed(&self) -> bool {
        matches!(self.body, Body::Indexed(_))
    }

    /// Builds the indexes, if they are not yet: every user's entry, then each index from a
    /// sorted run, in parallel.
    pub fn index(&mut self) {
        let Body::Listed(users) = &self.body else {
            return;
        };
        let entries: Vec<Arc<Entry>> = users
            .par_iter()
            .map(|(position, user)| Arc::new(Entry::new(*position, Arc::clone(user))))
            .collect();
        fn sorted<T: Order>(entries: &[Arc<Entry>]) -> OrdSet<T> {
            let mut run: Vec<(u128, u64, u32)> = entries
                .par_iter()
                .enumerate()
                .map(|(at, entry)| {
                    let (key, more) = T::prefix(entry);
                    (key, more, at as u32)
                })
                .collect();
            run.par_sort_unstable_by(|a, b| {
                (a.0, a.1)
                    .cmp(&(b.0, b.1))
                    .then_with(|| T::between(&entries[a.2 as usize], &entries[b.2 as usize]))
            });
            packed(run.len(), |at| T::wrap(Arc::clone(&entries[run[at].2 as usize])))
        }
        let ((by_position, by_id), ((by_name, by_email), (by_created, by_updated))) = rayon::join(
            || {
                rayon::join(
                    || packed(entries.len(), |at| ByPosition(Arc::clone(&entries[at]))),
                    || sorted::<ById>(&entries),
                )
            },
            || {
                rayon::join(
                    || rayon::join(|| sorted::<Sorted<0>>(&entries), || sorted::<Sorted<1>>(&entries)),
                    || rayon::join(|| sorted::<Sorted<2>>(&entries), || sorted::<Sorted<3>>(&entries)),
                )
            },
        );
        self.body = Body::Indexed(Indexes {
            by_position,
            by_id,
            by_name,
            by_email,
            by_created,
            by_updated,
        });
    }

    /// The indexes, built first if need be (every change goes through here).
    fn indexes(&mut self) -> &mut Indexes {
        self.index();
        match &mut self.body {
            Body::Indexed(indexes) => indexes,
            Body::Listed(_) => unreachable!("index() leaves the set indexed"),
        }
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        match &self.body {
            Body::Listed(users) => users.len(),
            Body::Indexed(indexes) => indexes.by_position.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The users in list order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<User>> + '_ {
        self.positioned().map(|(_, user)| user)
    }

    /// The users in list order, with their positions.
    pub fn positioned(&self) -> Positioned<'_> {
        match &self.body {
            Body::Listed(users) => Positioned(Walk::Listed(users.iter())),
            Body::Indexed(indexes) => Positioned(Walk::Indexed(indexes.by_position.iter())),
        }
    }

    /// The entries in list order, when the set is indexed.
    pub fn entries(&self) -> Option<impl DoubleEndedIterator<Item = &Arc<Entry>> + '_> {
        match &self.body {
            Body::Listed(_) => None,
            Body::Indexed(indexes) => Some(indexes.by_position.iter().map(|entry| &entry.0)),
        }
    }

    /// The users as read, when the set is not indexed yet.
    pub(crate) fn listed(&self) -> Option<&[(Position, Arc<User>)]> {
        match &self.body {
            Body::Listed(users) => Some(users),
            Body::Indexed(_) => None,
        }
    }

    /// The entries whose positions lie in `range`, in list order (none until indexed).
    pub fn entries_within(
        &self,
        range: impl std::ops::RangeBounds<Position>,
    ) -> impl DoubleEndedIterator<Item = &Arc<Entry>> + '_ {
        let probe = |bound: Bound<&Position>| match bound {
            Bound::Included(&at) => Bound::Included(AtPosition(at)),
            Bound::Excluded(&at) => Bound::Excluded(AtPosition(at)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let range = (probe(range.start_bound()), probe(range.end_bound()));
        let within = match &self.body {
            Body::Indexed(indexes) => Some(indexes.by_position.range(range).map(|entry| &entry.0)),
            Body::Listed(_) => None,
        };
        within.into_iter().flatten()
    }

    /// The lowest and highest positions held.
    pub fn position_span(&self) -> Option<(Position, Position)> {
        match &self.body {
            Body::Listed(users) => Some((users.first()?.0, users.last()?.0)),
            Body::Indexed(indexes) => Some((
                indexes.by_position.get_min()?.0.position,
                indexes.by_position.get_max()?.0.position,
            )),
        }
    }

    /// The position a new user goes to: after every other.
    pub fn next_position(&self) -> Position {
        self.position_span().map_or(0, |(_, last)| last.saturating_add(1))
    }

    /// The entry of the user with `id` (the first in list order, if a hand-edited file
    /// repeats the id), when indexed.
    pub fn entry(&self, id: &UserId) -> Option<&Arc<Entry>> {
        let Body::Indexed(indexes) = &self.body else {
            return None;
        };
        let id = id.as_str();
        indexes
            .by_id
            .get_next(&TextAt(id, Position::MIN))
            .filter(|found| found.0.user.id().as_str() == id)
            .map(|found| &found.0)
    }

    /// The position of the user with `id` (the first, if a hand-edited file repeats it).
    pub fn position_of(&self, id: &UserId) -> Option<Position> {
        match &self.body {
            Body::Listed(users) => users.iter().find(|(_, user)| user.id() == id).map(|(at, _)| *at),
            Body::Indexed(_) => self.entry(id).map(|entry| entry.position),
        }
    }

    /// The user with `id` (the first, if a hand-edited file repeats it).
    pub fn get(&self, id: &UserId) -> Option<&Arc<User>> {
        match &self.body {
            Body::Listed(users) => users
                .iter()
                .find(|(_, user)| user.id() == id)
                .map(|(_, user)| user),
            Body::Indexed(_) => self.entry(id).map(|entry| &entry.user),
        }
    }

    /// The user at `position`.
    pub fn at(&self, position: Position) -> Option<&Arc<User>> {
        match &self.body {
            Body::Listed(users) => users
                .binary_search_by_key(&position, |(at, _)| *at)
                .ok()
                .map(|found| &users[found].1),
            Body::Indexed(indexes) => indexes
                .by_position
                .get(&AtPosition(position))
                .map(|entry| &entry.0.user),
        }
    }

    /// The entries whose address has the uniqueness key `key`, in address order (by id,
    /// then position), when indexed.
    fn holders_of<'s, 'k>(&'s self, key: &'k str) -> impl Iterator<Item = &'s Arc<Entry>> + use<'s, 'k> {
        let from = SortPoint {
            key: SortKey::Text(key),
            id: "",
            position: Position::MIN,
        };
        let holders = match &self.body {
            Body::Indexed(indexes) => Some(
                indexes
                    .by_email
                    .walk(Bound::Included(from), false)
                    .take_while(move |entry| entry.email_key() == key),
            ),
            Body::Listed(_) => None,
        };
        holders.into_iter().flatten()
    }

    /// The first user in list order whose address matches `email` ignoring case and
    /// surrounding spaces.
    pub fn by_email(&self, email: &str) -> Option<&Arc<User>> {
        let key = email_key(email);
        match &self.body {
            Body::Listed(users) => users
                .iter()
                .find(|(_, user)| user.email_key() == key)
                .map(|(_, user)| user),
            Body::Indexed(_) => self
                .holders_of(&key)
                .min_by_key(|entry| entry.position)
                .map(|entry| &entry.user),
        }
    }

    /// Whether `key` is the address of any user other than the one at `except`.
    pub fn email_taken(&self, key: &str, except: Option<Position>) -> bool {
        match &self.body {
            Body::Listed(users) => users
                .iter()
                .any(|(position, user)| Some(*position) != except && user.email_key() == key),
            Body::Indexed(_) => self.holders_of(key).any(|entry| Some(entry.position) != except),
        }
    }

    /// The index of one sort order, when indexed.
    pub(crate) fn sort_index(&self, field: SortField) -> Option<&dyn SortIndex> {
        let Body::Indexed(indexes) = &self.body else {
            return None;
        };
        Some(match field {
            SortField::Name => &indexes.by_name,
            SortField::Email => &indexes.by_email,
            SortField::CreatedAt => &indexes.by_created,
            SortField::UpdatedAt => &indexes.by_updated,
        })
    }

    /// Stores `user` at `position`, replacing whoever was there; returns the user it
    /// replaced.
    pub fn put(&mut self, position: Position, user: Arc<User>) -> Option<Arc<User>> {
        let replaced = self.take(position);
        self.indexes().link(Arc::new(Entry::new(position, user)));
        replaced
    }

    /// Stores `user` after every other and returns its position.
    pub fn push(&mut self, user: Arc<User>) -> Position {
        let position = self.next_position();
        self.indexes().link(Arc::new(Entry::new(position, user)));
        position
    }

    /// Removes the user at `position` and returns it.
    pub fn take(&mut self, position: Position) -> Option<Arc<User>> {
        let indexes = self.indexes();
        let entry = indexes.by_position.remove(&AtPosition(position))?.0;
        indexes.by_id.remove(&ById(Arc::clone(&entry)));
        indexes.by_name.remove(&Sorted::<0>(Arc::clone(&entry)));
        indexes.by_email.remove(&Sorted::<1>(Arc::clone(&entry)));
        indexes.by_created.remove(&Sorted::<2>(Arc::clone(&entry)));
        indexes.by_updated.remove(&Sorted::<3>(Arc::clone(&entry)));
        Some(Arc::clone(&entry.user))
    }
}

impl Indexes {
    fn link(&mut self, entry: Arc<Entry>) {
        self.by_id.insert(ById(Arc::clone(&entry)));
        self.by_name.insert(Sorted::<0>(Arc::clone(&entry)));
        self.by_email.insert(Sorted::<1>(Arc::clone(&entry)));
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

    fn user(id: &str, name: &str) -> Arc<User> {
        Arc::new(User::restore(
            UserId::new(id),
            name.into(),
            format!("{id}@x"),
            None,
            None,
        ))
    }

    #[test]
    fn a_copy_shares_everything_and_keeps_its_own_view_after_a_change() {
        let mut set = UserSet::new(stored_users(&[("a", "Ann", "a@x"), ("b", "Bob", "b@x")]));
        set.index();
        let before = set.clone();
        set.take(0);
        set.push(user("c", "Cy"));
        assert_eq!(names(&before), ["Ann", "Bob"]);
        assert_eq!(names(&set), ["Bob", "Cy"]);
        assert!(before.get(&UserId::new("a")).is_some() && set.get(&UserId::new("a")).is_none());
        assert_eq!(set.get(&UserId::new("c")).map(|u| u.name()), Some("Cy"));
    }

    #[test]
    fn lookups_find_the_first_holder_in_list_order_before_and_after_indexing() {
        let mut set = UserSet::new(stored_users(&[
            ("b", "Bob", "bob@x.com"),
            ("a", "Ann", " ANN@x.com"),
            ("a", "Dup", "ann@X.com"),
        ]));
        for indexed in [false, true] {
            assert_eq!(set.is_indexed(), indexed);
            assert_eq!(set.get(&UserId::new("a")).map(|u| u.name()), Some("Ann"));
            assert_eq!(set.position_of(&UserId::new("a")), Some(1));
            assert_eq!(set.by_email("Ann@x.COM ").map(|u| u.name()), Some("Ann"));
            assert_eq!(set.at(2).map(|u| u.name()), Some("Dup"));
            assert!(set.get(&UserId::new("zz")).is_none());
            assert_eq!(set.position_span(), Some((0, 2)));
            set.index();
        }
        assert_eq!(set.holders_of("ann@x.com").count(), 2);
        assert!(set.email_taken("bob@x.com", None));
        assert!(!set.email_taken("bob@x.com", Some(0)));
    }

    #[test]
    fn building_at_once_equals_inserting_one_by_one() {
        // Keys and ids that share long prefixes, repeated ids, times equal or missing: the
        // build compares prefixes first, and must still order exactly as the indexes do.
        let long = "a-name-longer-than-sixteen-bytes";
        let mut users = stored_users(&[
            ("3", "Carl", "c@x"),
            ("1", "ann", "A@x"),
            ("2", "Ann", "b@x"),
            ("1", "Bea", "d@x"),
            ("same-prefix-1", long, "same.prefix.longer.than.sixteen.1@x"),
            ("same-prefix-0", long, "same.prefix.longer.than.sixteen.0@x"),
            (
                "same-prefix-0",
                &format!("{long}!"),
                "same.prefix.longer.than.sixteen.0@x",
            ),
        ]);
        let at = |sec| chrono::DateTime::from_timestamp(sec, 0);
        for (n, (created, updated)) in [(at(5), at(9)), (at(5), None), (None, at(-3)), (at(-3), at(9))]
            .into_iter()
            .enumerate()
        {
            users.push(Arc::new(User::restore(
                UserId::new(format!("t{}", n % 2)),
                "T".into(),
                format!("t{n}@x"),
                created,
                updated,
            )));
        }
        let mut built = UserSet::new(users.clone());
        built.index();
        let mut grown = UserSet::default();
        for user in users {
            grown.push(user);
        }
        for field in SortField::ALL {
            let order = |set: &UserSet| -> Vec<Position> {
                set.sort_index(field)
                    .unwrap()
                    .walk(Bound::Unbounded, false)
                    .map(|e| e.position)
                    .collect()
            };
            assert_eq!(order(&built), order(&grown), "{field:?}");
        }
        assert_eq!(names(&built), names(&grown));
    }

    #[test]
    fn a_change_to_a_listed_set_builds_its_indexes_first() {
        let mut set = UserSet::at_positions(vec![(7, user("b", "Bob")), (3, user("a", "Ann"))]);
        assert_eq!(names(&set), ["Ann", "Bob"], "listed by position");
        let position = set.push(user("c", "Cy"));
        assert_eq!(position, 8);
        assert!(set.is_indexed());
        assert_eq!(names(&set), ["Ann", "Bob", "Cy"]);
    }
}
