//! Cursor pagination over an ordered user list (keyset pagination).
//!
//! A cursor holds the sort key and id of the user it points at, so a page boundary stays
//! put when other users are inserted or deleted between requests: the next page starts
//! after that key, wherever it now sits. Cursors are opaque to clients (hex text) and name
//! the order they were made for, so one cannot be replayed against another order. Records
//! that share a sort key and an id (a hand-edited file may repeat an id) are told apart by
//! their rank among themselves in file order, so each appears on exactly one page.

use std::cmp::Ordering;
use std::sync::Arc;

use super::user::User;

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

/// The arguments of one page request, as the client gave them.
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    pub order: UserOrder,
}

/// Why a page request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("{0} must not be negative.")]
    Negative(&'static str),
    #[error("{0} must be at most {MAX_PAGE}.")]
    TooLarge(&'static str),
    #[error("{0} is not a cursor this service made.")]
    BadCursor(&'static str),
    #[error("{0} was made for a different orderBy.")]
    OtherOrder(&'static str),
}

/// One page: the users with their cursors, and where the page sits in the whole list.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub edges: Vec<(String, Arc<User>)>,
    pub has_previous_page: bool,
    pub has_next_page: bool,
    pub total_count: usize,
}

impl UserOrder {
    fn tag(self) -> &'static str {
        match (self.field, self.direction) {
            (OrderField::Name, Direction::Asc) => "name+",
            (OrderField::Name, Direction::Desc) => "name-",
            (OrderField::Email, Direction::Asc) => "email+",
            (OrderField::Email, Direction::Desc) => "email-",
            (OrderField::CreatedAt, Direction::Asc) => "created+",
            (OrderField::CreatedAt, Direction::Desc) => "created-",
            (OrderField::UpdatedAt, Direction::Asc) => "updated+",
            (OrderField::UpdatedAt, Direction::Desc) => "updated-",
        }
    }

    /// The key a user sorts by: lowercased text, or a fixed-width timestamp (empty when
    /// missing, so users without one come first in ascending order).
    fn key(self, user: &User) -> String {
        let time = |at: Option<chrono::DateTime<chrono::Utc>>| {
            at.map(super::user::timestamp_text).unwrap_or_default()
        };
        match self.field {
            OrderField::Name => user.name().to_lowercase(),
            OrderField::Email => user.email().to_lowercase(),
            OrderField::CreatedAt => time(user.created_at()),
            OrderField::UpdatedAt => time(user.updated_at()),
        }
    }

    fn compare(self, a: (&str, &str), b: (&str, &str)) -> Ordering {
        let ascending = a.cmp(&b);
        match self.direction {
            Direction::Asc => ascending,
            Direction::Desc => ascending.reverse(),
        }
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

const SEPARATOR: char = '\u{1f}';

/// Where a cursor points: the sort key, the id, and the rank among records sharing both.
type Bound = (String, String, usize);

fn encode(order: UserOrder, key: &str, id: &str, rank: usize) -> String {
    // The rank is only written when it is needed, so cursors of unique ids look as before.
    let rank = if rank == 0 {
        String::new()
    } else {
        format!("{SEPARATOR}{rank}")
    };
    hex(&format!("{}{SEPARATOR}{key}{SEPARATOR}{id}{rank}", order.tag()))
}

fn decode(order: UserOrder, cursor: &str, arg: &'static str) -> Result<Bound, PageError> {
    let text = unhex(cursor).ok_or(PageError::BadCursor(arg))?;
    let mut parts = text.splitn(4, SEPARATOR);
    let (Some(tag), Some(key), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(PageError::BadCursor(arg));
    };
    let rank = match parts.next() {
        None => 0,
        Some(rank) => rank.parse().map_err(|_| PageError::BadCursor(arg))?,
    };
    if tag != order.tag() {
        return Err(PageError::OtherOrder(arg));
    }
    Ok((key.to_owned(), id.to_owned(), rank))
}

fn count(value: Option<i32>, arg: &'static str) -> Result<Option<usize>, PageError> {
    match value {
        None => Ok(None),
        Some(n) if n < 0 => Err(PageError::Negative(arg)),
        Some(n) if n as usize > MAX_PAGE => Err(PageError::TooLarge(arg)),
        Some(n) => Ok(Some(n as usize)),
    }
}

/// Orders `users`, then cuts the page `request` asks for. Without `first` or `last`, a page
/// holds at most [`MAX_PAGE`] users.
///
/// # Errors
/// [`PageError`] for a negative or too large count, or a cursor that is not ours or was
/// made for another order.
pub fn paginate(users: Vec<Arc<User>>, request: &PageRequest) -> Result<Page, PageError> {
    let order = request.order;
    let first = count(request.first, "first")?;
    let last = count(request.last, "last")?;
    let after = request
        .after
        .as_deref()
        .map(|c| decode(order, c, "after"))
        .transpose()?;
    let before = request
        .before
        .as_deref()
        .map(|c| decode(order, c, "before"))
        .transpose()?;
    let mut keyed: Vec<(String, Arc<User>, usize)> =
        users.into_iter().map(|u| (order.key(&u), u, 0)).collect();
    // A stable sort: records sharing a key and an id stay in file order, then get ranks.
    keyed.sort_by(|(ka, a, _), (kb, b, _)| order.compare((ka, a.id().as_str()), (kb, b.id().as_str())));
    for at in 1..keyed.len() {
        let (before, here) = keyed.split_at_mut(at);
        let (previous, current) = (&before[at - 1], &mut here[0]);
        if previous.0 == current.0 && previous.1.id() == current.1.id() {
            current.2 = previous.2 + 1;
        }
    }
    let versus = |(key, user, rank): &(String, Arc<User>, usize), bound: &Bound| {
        order
            .compare((key, user.id().as_str()), (&bound.0, &bound.1))
            .then(rank.cmp(&bound.2))
    };
    let mut start = after.as_ref().map_or(0, |bound| {
        keyed.partition_point(|entry| versus(entry, bound) != Ordering::Greater)
    });
    let mut end = before.as_ref().map_or(keyed.len(), |bound| {
        keyed.partition_point(|entry| versus(entry, bound) == Ordering::Less)
    });
    end = end.max(start);
    if let Some(first) = first {
        end = end.min(start + first);
    }
    if let Some(last) = last {
        start = start.max(end.saturating_sub(last));
    }
    if first.is_none() && last.is_none() {
        end = end.min(start + MAX_PAGE);
    }
    let edges = keyed[start..end]
        .iter()
        .map(|(key, user, rank)| (encode(order, key, user.id().as_str(), *rank), Arc::clone(user)))
        .collect();
    Ok(Page {
        edges,
        has_previous_page: start > 0,
        has_next_page: end < keyed.len(),
        total_count: keyed.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserId;

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
            first: Some(2),
            order: by_name(Direction::Asc),
            ..PageRequest::default()
        };
        let one = paginate(list.clone(), &request).unwrap();
        assert_eq!(names(&one), ["ann", "bea"]);
        assert!(one.has_next_page && !one.has_previous_page);
        let two = paginate(
            list.clone(),
            &PageRequest {
                after: Some(one.edges[1].0.clone()),
                ..request.clone()
            },
        )
        .unwrap();
        assert_eq!(names(&two), ["carl", "dora"]);
        assert_eq!(two.total_count, 5);
    }

    #[test]
    fn a_cursor_stays_put_when_users_are_inserted_or_deleted() {
        let list = users(&["ann", "bea", "carl", "dora"]);
        let request = PageRequest {
            first: Some(2),
            order: by_name(Direction::Desc),
            ..PageRequest::default()
        };
        let one = paginate(list.clone(), &request).unwrap();
        assert_eq!(names(&one), ["dora", "carl"]);
        let mut changed = users(&["ann", "abe", "cy", "zed"]);
        changed.retain(|u| u.name() != "zed");
        let two = paginate(
            changed,
            &PageRequest {
                after: Some(one.edges[1].0.clone()),
                ..request
            },
        )
        .unwrap();
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
                        first: Some(1),
                        after: after.clone(),
                        order: by_name(direction),
                        ..PageRequest::default()
                    },
                )
                .unwrap();
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
        let all = paginate(list.clone(), &PageRequest::default()).unwrap();
        let page = paginate(
            list,
            &PageRequest {
                last: Some(2),
                before: Some(all.edges[3].0.clone()),
                ..PageRequest::default()
            },
        )
        .unwrap();
        assert_eq!(page.edges.len(), 2);
        assert!(page.has_previous_page && page.has_next_page);
    }

    #[test]
    fn counts_are_capped_and_foreign_cursors_refused() {
        let too_many = PageRequest {
            first: Some(1001),
            ..PageRequest::default()
        };
        assert_eq!(
            paginate(vec![], &too_many).unwrap_err(),
            PageError::TooLarge("first")
        );
        let garbage = PageRequest {
            after: Some("zz".into()),
            ..PageRequest::default()
        };
        assert_eq!(
            paginate(vec![], &garbage).unwrap_err(),
            PageError::BadCursor("after")
        );
        let list = users(&["a"]);
        let cursor = paginate(list.clone(), &PageRequest::default()).unwrap().edges[0]
            .0
            .clone();
        let other = PageRequest {
            after: Some(cursor),
            order: by_name(Direction::Asc),
            ..PageRequest::default()
        };
        assert_eq!(
            paginate(list, &other).unwrap_err(),
            PageError::OtherOrder("after")
        );
    }
}
