//! Cursor pagination over an ordered user list (keyset pagination).
//!
//! A cursor holds the sort key and id of the user it points at, so a page boundary stays
//! put when other users are inserted or deleted between requests: the next page starts
//! after that key, wherever it now sits. How a cursor is written for a client, and how a
//! client's text is read back into one, is the driving adapter's business. Records
//! that share a sort key and an id (a hand-edited file may repeat an id) are told apart by
//! their position, written into their cursors only then, so each appears on exactly one
//! page.
//!
//! Without a filter a page walks the set's index for its order: O(log n + page). With a
//! search, the matching users (a scan of everyone, as any search is) are sorted first.

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::snapshot::{UserFilter, UserSnapshot};
use super::user::User;
use super::user_set::{Entry, Position, SortField, SortIndex, SortKey, SortPoint};

/// The largest `first` or `last`.
pub const MAX_PAGE: usize = 1000;

/// What to sort by. Ties are always broken by id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OrderField {
    Name,
    Email,
    #[default]
    CreatedAt,
    UpdatedAt,
}

/// Which way to sort.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

/// A sort order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserOrder {
    pub field: OrderField,
    pub direction: Direction,
}

/// How many users a page holds, counted from which end of its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// The first `n` after the `after` cursor (at most [`MAX_PAGE`]).
    First(usize),
    /// The last `n` before the `before` cursor (at most [`MAX_PAGE`]).
    Last(usize),
}

/// One page request: a window between two cursors, how much of it to take, in an order.
/// Without [`Take`], a page holds the first [`MAX_PAGE`] users of its window.
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    pub take: Option<Take>,
    pub after: Option<Cursor>,
    pub before: Option<Cursor>,
    pub order: UserOrder,
}

/// A sort key as a cursor holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CursorKey {
    Text(String),
    Time(Option<DateTime<Utc>>),
}

/// Where a cursor points, in the order it was made for: the sort key, the id, and the
/// position when the record shares both with another.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub key: CursorKey,
    pub id: String,
    pub position: Option<Position>,
}

/// One page: the users with their cursors, and where the page sits in the whole list.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub edges: Vec<(Cursor, Arc<User>)>,
    pub has_previous_page: bool,
    pub has_next_page: bool,
    pub total_count: usize,
}

impl OrderField {
    fn sort_field(self) -> SortField {
        match self {
            Self::Name => SortField::Name,
            Self::Email => SortField::Email,
            Self::CreatedAt => SortField::CreatedAt,
            Self::UpdatedAt => SortField::UpdatedAt,
        }
    }
}

impl UserOrder {
    fn down(self) -> bool {
        self.direction == Direction::Desc
    }
}

impl Cursor {
    /// The point in ascending index order that stands for this cursor: a cursor without a
    /// position stands for every record with its key and id, so its lowest or highest
    /// possible position is taken, whichever keeps those records on the right side.
    fn point(&self, highest: bool) -> SortPoint<'_> {
        let key = match &self.key {
            CursorKey::Text(text) => SortKey::Text(text),
            CursorKey::Time(at) => SortKey::Time(*at),
        };
        let fallback = if highest { Position::MAX } else { Position::MIN };
        SortPoint {
            key,
            id: &self.id,
            position: self.position.unwrap_or(fallback),
        }
    }

    /// The cursor of `entry` in `field`'s order; `shared` when another record has its key
    /// and id.
    fn of(entry: &Entry, field: SortField, shared: bool) -> Self {
        let point = SortPoint::of(entry, field);
        let key = match point.key {
            SortKey::Text(text) => CursorKey::Text(text.to_owned()),
            SortKey::Time(at) => CursorKey::Time(at),
        };
        // The position is only kept when it is needed, so most cursors name key and id only
        // and survive a reload of the file, which numbers positions afresh.
        Self {
            key,
            id: point.id.to_owned(),
            position: shared.then_some(point.position),
        }
    }
}

/// The matches of a search (or every user of a set not yet indexed), sorted for one field.
struct Matches {
    entries: Vec<Arc<Entry>>,
    field: SortField,
}

impl SortIndex for Matches {
    fn walk<'a>(
        &'a self,
        from: Bound<SortPoint<'_>>,
        down: bool,
    ) -> Box<dyn Iterator<Item = &'a Arc<Entry>> + 'a> {
        let field = self.field;
        fn point(entry: &Arc<Entry>, field: SortField) -> SortPoint<'_> {
            SortPoint::of(entry, field)
        }
        let at = |entry: &Arc<Entry>, other: &SortPoint<'_>| point(entry, field).cmp(other);
        let (start, end) = match (from, down) {
            (Bound::Unbounded, _) => (0, self.entries.len()),
            (Bound::Included(point), false) => (
                self.entries.partition_point(|e| at(e, &point).is_lt()),
                self.entries.len(),
            ),
            (Bound::Excluded(point), false) => (
                self.entries.partition_point(|e| at(e, &point).is_le()),
                self.entries.len(),
            ),
            (Bound::Included(point), true) => (0, self.entries.partition_point(|e| at(e, &point).is_le())),
            (Bound::Excluded(point), true) => (0, self.entries.partition_point(|e| at(e, &point).is_lt())),
        };
        let run = self.entries[start..end].iter();
        if down { Box::new(run.rev()) } else { Box::new(run) }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The page of `snapshot`'s users that `filter` keeps and `request` asks for. A page holds
/// at most [`MAX_PAGE`] users, whatever it asks.
pub fn paginate(snapshot: &UserSnapshot, filter: &UserFilter, request: &PageRequest) -> Page {
    let order = request.order;
    let (first, last) = match request.take {
        None => (None, None),
        Some(Take::First(n)) => (Some(n.min(MAX_PAGE)), None),
        Some(Take::Last(n)) => (None, Some(n.min(MAX_PAGE))),
    };
    let field = order.field.sort_field();
    let cut = Cut {
        order,
        after: request.after.as_ref(),
        before: request.before.as_ref(),
        first,
        last,
    };
    let mut entries: Vec<Arc<Entry>> = if filter.is_empty() {
        if let Some(index) = snapshot.set().sort_index(field) {
            return cut.page(index);
        }
        snapshot.every_entry()
    } else {
        snapshot
            .matching(filter)
            .into_iter()
            .map(|(_, entry)| entry)
            .collect()
    };
    entries.sort_by(|a, b| SortPoint::of(a, field).cmp(&SortPoint::of(b, field)));
    cut.page(&Matches { entries, field })
}

/// A page request with its cursors read.
struct Cut<'r> {
    order: UserOrder,
    after: Option<&'r Cursor>,
    before: Option<&'r Cursor>,
    first: Option<usize>,
    last: Option<usize>,
}

impl Cut<'_> {
    /// Whether `entry` comes strictly before `point` in the walking direction.
    fn precedes(&self, entry: &Entry, point: SortPoint<'_>) -> bool {
        let at = SortPoint::of(entry, self.order.field.sort_field());
        let ordering = at.cmp(&point);
        if self.order.down() {
            ordering == Ordering::Greater
        } else {
            ordering == Ordering::Less
        }
    }

    /// Whether `entry` comes strictly after `point` in the walking direction.
    fn follows(&self, entry: &Entry, point: SortPoint<'_>) -> bool {
        !self.precedes(entry, point) && SortPoint::of(entry, self.field()) != point
    }

    fn page(&self, run: &dyn SortIndex) -> Page {
        let down = self.order.down();
        // In ascending index terms, the records a mark stands for lie after its lowest
        // point and before its highest; walking down, the other way round.
        let after = self.after.map(|mark| mark.point(!down));
        let before = self.before.map(|mark| mark.point(down));
        let from_after = after.map_or(Bound::Unbounded, Bound::Excluded);
        let from_before = before.map_or(Bound::Unbounded, Bound::Excluded);
        let edges: Vec<&Arc<Entry>> = match self.last {
            Some(last) => {
                // The end of the window nearest `before`, walked backwards, then turned.
                let mut tail: Vec<&Arc<Entry>> = run
                    .walk(from_before, !down)
                    .take_while(|e| after.is_none_or(|a| self.follows(e, a)))
                    .take(last)
                    .collect();
                tail.reverse();
                tail
            }
            None => run
                .walk(from_after, down)
                .take_while(|e| before.is_none_or(|b| self.precedes(e, b)))
                .take(self.first.unwrap_or(MAX_PAGE))
                .collect(),
        };
        let (has_previous_page, has_next_page) = match (edges.first(), edges.last()) {
            (Some(head), Some(tail)) => (
                run.walk(Bound::Excluded(SortPoint::of(head, self.field())), !down)
                    .next()
                    .is_some(),
                run.walk(Bound::Excluded(SortPoint::of(tail, self.field())), down)
                    .next()
                    .is_some(),
            ),
            // An empty page sits at a gap: after `after`, or before `before` when `last`
            // asked for nothing from a non-empty window.
            _ => {
                let at_before = self.last == Some(0)
                    && run
                        .walk(from_after, down)
                        .next()
                        .is_some_and(|e| before.is_none_or(|b| self.precedes(e, b)));
                match (at_before, before, after) {
                    (true, Some(b), _) => (
                        run.walk(Bound::Excluded(b), !down).next().is_some(),
                        run.walk(Bound::Included(b), down).next().is_some(),
                    ),
                    (true, None, _) => (run.len() > 0, false),
                    (false, _, Some(a)) => (
                        run.walk(Bound::Included(a), !down).next().is_some(),
                        run.walk(Bound::Excluded(a), down).next().is_some(),
                    ),
                    (false, _, None) => (false, run.len() > 0),
                }
            }
        };
        let field = self.field();
        let same = |a: &Entry, b: &Entry| {
            let (a, b) = (SortPoint::of(a, field), SortPoint::of(b, field));
            a.key == b.key && a.id == b.id
        };
        // A record's neighbours in the order tell whether it shares its key and id.
        let shared = |at: usize, entry: &Entry| {
            let neighbour = |step_down: bool| -> bool {
                let inside = if step_down == down {
                    edges.get(at + 1)
                } else {
                    at.checked_sub(1).and_then(|i| edges.get(i))
                };
                match inside {
                    Some(next) => same(entry, next),
                    None => run
                        .walk(Bound::Excluded(SortPoint::of(entry, field)), step_down)
                        .next()
                        .is_some_and(|next| same(entry, next)),
                }
            };
            neighbour(true) || neighbour(false)
        };
        Page {
            edges: edges
                .iter()
                .enumerate()
                .map(|(at, entry)| {
                    (
                        Cursor::of(entry, field, shared(at, entry)),
                        Arc::clone(entry.user()),
                    )
                })
                .collect(),
            has_previous_page,
            has_next_page,
            total_count: run.len(),
        }
    }

    fn field(&self) -> SortField {
        self.order.field.sort_field()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{UserId, UserSet};

    /// A page of `users` (in list order) with no filter.
    fn paginate(users: Vec<Arc<User>>, request: &PageRequest) -> Page {
        super::paginate(&UserSet::new(users).snapshot(), &UserFilter::default(), request)
    }

    fn users(names: &[&str]) -> Vec<Arc<User>> {
        names
            .iter()
            .enumerate()
            .map(|(n, name)| {
                Arc::new(User::restore(
                    UserId::new(format!("id{n}")),
                    name.to_string(),
                    format!("{name}@x"),
                    None,
                    None,
                ))
            })
            .collect()
    }

    fn by_name(direction: Direction) -> UserOrder {
        UserOrder {
            field: OrderField::Name,
            direction,
        }
    }

    fn names(page: &Page) -> Vec<&str> {
        page.edges.iter().map(|(_, u)| u.name()).collect()
    }

    #[test]
    fn pages_follow_each_other_through_cursors() {
        let list = users(&["dora", "ann", "carl", "bea", "ed"]);
        let request = PageRequest {
            take: Some(Take::First(2)),
            order: by_name(Direction::Asc),
            ..PageRequest::default()
        };
        let one = paginate(list.clone(), &request);
        assert_eq!(names(&one), ["ann", "bea"]);
        assert!(one.has_next_page && !one.has_previous_page);
        let two = paginate(
            list.clone(),
            &PageRequest {
                after: Some(one.edges[1].0.clone()),
                ..request.clone()
            },
        );
        assert_eq!(names(&two), ["carl", "dora"]);
        assert_eq!(two.total_count, 5);
    }

    #[test]
    fn a_cursor_stays_put_when_users_are_inserted_or_deleted() {
        let list = users(&["ann", "bea", "carl", "dora"]);
        let request = PageRequest {
            take: Some(Take::First(2)),
            order: by_name(Direction::Desc),
            ..PageRequest::default()
        };
        let one = paginate(list.clone(), &request);
        assert_eq!(names(&one), ["dora", "carl"]);
        let mut changed = users(&["ann", "abe", "cy", "zed"]);
        changed.retain(|u| u.name() != "zed");
        let two = paginate(
            changed,
            &PageRequest {
                after: Some(one.edges[1].0.clone()),
                ..request
            },
        );
        assert_eq!(names(&two), ["ann", "abe"]);
    }

    #[test]
    fn records_sharing_an_id_each_get_their_own_cursor() {
        let mut list = users(&["ann", "bob", "carl"]);
        list.push(Arc::new(User::restore(
            UserId::new("id0"),
            "ann".into(),
            "x@x".into(),
            None,
            None,
        )));
        for direction in [Direction::Asc, Direction::Desc] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = paginate(
                    list.clone(),
                    &PageRequest {
                        take: Some(Take::First(1)),
                        after: after.clone(),
                        order: by_name(direction),
                        ..PageRequest::default()
                    },
                );
                seen.extend(
                    page.edges
                        .iter()
                        .map(|(_, u)| (u.name().to_owned(), u.email().to_owned())),
                );
                if !page.has_next_page {
                    break;
                }
                after = page.edges.last().map(|(cursor, _)| cursor.clone());
            }
            assert_eq!(seen.len(), 4, "{direction:?}: {seen:?}");
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 4, "{direction:?}: {seen:?}");
        }
    }

    #[test]
    fn last_and_before_page_backwards() {
        let list = users(&["a", "b", "c", "d"]);
        let all = paginate(list.clone(), &PageRequest::default());
        let page = paginate(
            list,
            &PageRequest {
                take: Some(Take::Last(2)),
                before: Some(all.edges[3].0.clone()),
                ..PageRequest::default()
            },
        );
        assert_eq!(page.edges.len(), 2);
        assert!(page.has_previous_page && page.has_next_page);
    }

    #[test]
    fn a_page_holds_at_most_max_page_users() {
        let list: Vec<Arc<User>> = (0..MAX_PAGE + 5)
            .map(|n| users(&[&format!("u{n}")]).remove(0))
            .collect();
        for take in [
            None,
            Some(Take::First(MAX_PAGE + 1)),
            Some(Take::Last(MAX_PAGE + 1)),
        ] {
            let request = PageRequest {
                take,
                ..PageRequest::default()
            };
            assert_eq!(paginate(list.clone(), &request).edges.len(), MAX_PAGE, "{take:?}");
        }
    }
}

#[cfg(test)]
mod agreement {
    //! Pages cut from the indexes against the plainest reading of the rules: sort everyone
    //! by (key, id, position), reverse for descending, and slice.

    use chrono::TimeZone;

    use super::*;
    use crate::domain::{FuzzyQuery, UserId, UserSet};

    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn random_set(rng: &mut Rng) -> UserSet {
        let names = ["ann", "Ann", "bob", "Bea", "cy", "Zoë", "ann "];
        let mut set = UserSet::default();
        for n in 0..(5 + rng.below(60)) {
            // Few distinct ids, names and times, so ties and repeated ids are common.
            let id = format!("u{}", rng.below(25));
            let name = names[rng.below(names.len() as u64) as usize].to_owned();
            let time = |rng: &mut Rng| match rng.below(4) {
                0 => None,
                k => Some(Utc.with_ymd_and_hms(2024, 1, k as u32, 0, 0, 0).unwrap()),
            };
            let (created, updated) = (time(rng), time(rng));
            let user = User::restore(UserId::new(id), name, format!("{n}@x.com"), created, updated);
            set.push(Arc::new(user));
            if rng.below(5) == 0 {
                let (low, high) = set.position_span().unwrap();
                set.take(low + rng.below((high - low + 1) as u64) as Position);
            }
        }
        set
    }

    fn reference(snapshot: &UserSnapshot, filter: &UserFilter, order: UserOrder) -> Vec<Arc<User>> {
        let field = order.field.sort_field();
        let mut kept: Vec<Arc<Entry>> = snapshot.matching(filter).into_iter().map(|(_, e)| e).collect();
        kept.sort_by(|a, b| SortPoint::of(a, field).cmp(&SortPoint::of(b, field)));
        if order.down() {
            kept.reverse();
        }
        kept.into_iter().map(|entry| Arc::clone(entry.user())).collect()
    }

    fn ids(users: &[Arc<User>]) -> Vec<String> {
        users
            .iter()
            .map(|u| format!("{}<{}>", u.id(), u.email()))
            .collect()
    }

    fn page_ids(page: &Page) -> Vec<String> {
        page.edges
            .iter()
            .map(|(_, u)| format!("{}<{}>", u.id(), u.email()))
            .collect()
    }

    #[test]
    fn pages_agree_with_sorting_everyone_for_every_order_filter_and_cut() {
        let mut rng = Rng(0x5DEE_CE66_D1CE_4E5B);
        let filters = [
            UserFilter::default(),
            UserFilter {
                search: Some("n".into()),
                fuzzy: None,
            },
            UserFilter {
                search: None,
                fuzzy: Some(FuzzyQuery::new("bob", 1)),
            },
        ];
        for _ in 0..60 {
            let set = random_set(&mut rng);
            // The same users as a store publishes them before its indexes are built.
            let listed = UserSet::at_positions(
                set.positioned()
                    .map(|(at, user)| (at, Arc::clone(user)))
                    .collect(),
            );
            assert!(!listed.is_indexed());
            let mut built = listed.clone();
            built.index();
            for snapshot in [set.snapshot(), listed.snapshot(), built.snapshot()] {
                for field in [
                    OrderField::Name,
                    OrderField::Email,
                    OrderField::CreatedAt,
                    OrderField::UpdatedAt,
                ] {
                    for direction in [Direction::Asc, Direction::Desc] {
                        let order = UserOrder { field, direction };
                        for filter in &filters {
                            let expected = reference(&snapshot, filter, order);
                            let all = paginate(
                                &snapshot,
                                filter,
                                &PageRequest {
                                    order,
                                    ..PageRequest::default()
                                },
                            );
                            assert_eq!(page_ids(&all), ids(&expected), "{order:?} {filter:?}");
                            assert_eq!(all.total_count, expected.len());
                            let cursors: Vec<&Cursor> = all.edges.iter().map(|(c, _)| c).collect();
                            let distinct: std::collections::HashSet<_> = cursors.iter().collect();
                            assert_eq!(distinct.len(), cursors.len(), "every record has its own cursor");
                            for _ in 0..12 {
                                let n = expected.len();
                                let i = rng.below(n as u64 + 1) as usize;
                                let j = rng.below(n as u64 + 1) as usize;
                                let k = rng.below(6) as usize;
                                let after = i.checked_sub(1).map(|at| cursors[at].clone());
                                let before = (j < n).then(|| cursors[j].clone());
                                let (lo, hi) = (i, j.max(i));
                                let forward = paginate(
                                    &snapshot,
                                    filter,
                                    &PageRequest {
                                        take: Some(Take::First(k)),
                                        after: after.clone(),
                                        before: before.clone(),
                                        order,
                                    },
                                );
                                let end = hi.min(lo + k);
                                assert_eq!(
                                    page_ids(&forward),
                                    ids(&expected[lo..end]),
                                    "first {k} after {i} before {j}"
                                );
                                let backward = paginate(
                                    &snapshot,
                                    filter,
                                    &PageRequest {
                                        take: Some(Take::Last(k)),
                                        after,
                                        before,
                                        order,
                                    },
                                );
                                let start = lo.max(hi.saturating_sub(k));
                                assert_eq!(
                                    page_ids(&backward),
                                    ids(&expected[start..hi]),
                                    "last {k} after {i} before {j}"
                                );
                                if end > lo {
                                    assert_eq!(forward.has_previous_page, lo > 0);
                                    assert_eq!(forward.has_next_page, end < n);
                                }
                                if hi > start {
                                    assert_eq!(backward.has_previous_page, start > 0);
                                    assert_eq!(backward.has_next_page, hi < n);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
