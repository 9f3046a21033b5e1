//! The `users` connection's arguments as the client gives them (`first`, `after`, `last`,
//! `before`: GraphQL `Int`s and cursor text) turned into the domain's page request, and the
//! domain's cursors written as the text a client gets.
//!
//! A cursor's text is hex of the order it was made for, its sort key, its id and, when the
//! record shares key and id with another, its position, separated by U+001F: opaque to
//! clients, and naming its order so that it cannot be replayed against another one.

use chrono::{DateTime, Utc};

use crate::domain::pagination::{
    Cursor, CursorKey, Direction, MAX_PAGE, OrderField, PageRequest, Take, UserOrder,
};
use crate::domain::timestamp_text;

/// Why the page arguments were refused; each names the argument at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageArgumentError {
    Negative(&'static str),
    TooLarge(&'static str),
    BadCursor(&'static str),
    OtherOrder(&'static str),
    /// Relay leaves the meaning of both together open; clients mean one or the other.
    FirstAndLast,
}

const SEPARATOR: char = '\u{1f}';

/// The page request the arguments ask for.
///
/// # Errors
/// `first` and `last` together, a negative count or one over [`MAX_PAGE`], or a cursor that
/// is not ours or was made for another order; checked in that order.
pub fn page_request(
    first: Option<i32>,
    after: Option<&str>,
    last: Option<i32>,
    before: Option<&str>,
    order: UserOrder,
) -> Result<PageRequest, PageArgumentError> {
    if first.is_some() && last.is_some() {
        return Err(PageArgumentError::FirstAndLast);
    }
    let first = count(first, "first")?.map(Take::First);
    let last = count(last, "last")?.map(Take::Last);
    let after = after.map(|text| read_cursor(order, text, "after")).transpose()?;
    let before = before
        .map(|text| read_cursor(order, text, "before"))
        .transpose()?;
    Ok(PageRequest {
        take: first.or(last),
        after,
        before,
        order,
    })
}

fn count(value: Option<i32>, argument: &'static str) -> Result<Option<usize>, PageArgumentError> {
    let Some(n) = value else { return Ok(None) };
    let n = usize::try_from(n).map_err(|_| PageArgumentError::Negative(argument))?;
    if n > MAX_PAGE {
        return Err(PageArgumentError::TooLarge(argument));
    }
    Ok(Some(n))
}

fn tag(order: UserOrder) -> &'static str {
    match (order.field, order.direction) {
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

/// The text a client gets for `cursor`, made in `order`.
pub fn cursor_text(order: UserOrder, cursor: &Cursor) -> String {
    let key = match &cursor.key {
        CursorKey::Text(text) => text.clone(),
        CursorKey::Time(at) => at.map(timestamp_text).unwrap_or_default(),
    };
    let position = cursor
        .position
        .map(|position| format!("{SEPARATOR}{position}"))
        .unwrap_or_default();
    hex(&format!(
        "{}{SEPARATOR}{key}{SEPARATOR}{}{position}",
        tag(order),
        cursor.id
    ))
}

fn read_cursor(order: UserOrder, text: &str, argument: &'static str) -> Result<Cursor, PageArgumentError> {
    let bad = || PageArgumentError::BadCursor(argument);
    let text = unhex(text).ok_or_else(bad)?;
    let mut parts = text.splitn(4, SEPARATOR);
    let (Some(made_for), Some(key), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let position = parts.next().map(str::parse).transpose().map_err(|_| bad())?;
    if made_for != tag(order) {
        return Err(PageArgumentError::OtherOrder(argument));
    }
    let key = match order.field {
        OrderField::Name | OrderField::Email => CursorKey::Text(key.to_owned()),
        OrderField::CreatedAt | OrderField::UpdatedAt if key.is_empty() => CursorKey::Time(None),
        OrderField::CreatedAt | OrderField::UpdatedAt => CursorKey::Time(Some(
            DateTime::parse_from_rfc3339(key)
                .map_err(|_| bad())?
                .with_timezone(&Utc),
        )),
    };
    Ok(Cursor {
        key,
        id: id.to_owned(),
        position,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_name() -> UserOrder {
        UserOrder {
            field: OrderField::Name,
            direction: Direction::Asc,
        }
    }

    #[test]
    fn cursors_read_back_as_they_were_written_in_their_own_order_only() {
        let at = DateTime::parse_from_rfc3339("2024-05-01T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let cases = [
            (by_name(), CursorKey::Text("Zoë \u{1F469}".into()), None),
            (UserOrder::default(), CursorKey::Time(Some(at)), Some(-3)),
            (UserOrder::default(), CursorKey::Time(None), None),
        ];
        for (order, key, position) in cases {
            let cursor = Cursor {
                key,
                id: "id-1".into(),
                position,
            };
            let text = cursor_text(order, &cursor);
            assert_eq!(read_cursor(order, &text, "after"), Ok(cursor.clone()));
            let other = UserOrder {
                direction: Direction::Desc,
                ..order
            };
            assert_eq!(
                read_cursor(other, &text, "before"),
                Err(PageArgumentError::OtherOrder("before"))
            );
        }
    }

    #[test]
    fn arguments_are_refused_naming_the_one_at_fault() {
        let order = UserOrder::default();
        let refused =
            |first, after, last, before| page_request(first, after, last, before, order).unwrap_err();
        assert_eq!(
            refused(Some(2), None, Some(1), None),
            PageArgumentError::FirstAndLast
        );
        assert_eq!(
            refused(Some(1001), None, None, None),
            PageArgumentError::TooLarge("first")
        );
        assert_eq!(
            refused(None, None, Some(-1), None),
            PageArgumentError::Negative("last")
        );
        assert_eq!(
            refused(None, Some("zz"), None, None),
            PageArgumentError::BadCursor("after")
        );
        assert_eq!(
            refused(None, None, None, Some("abc")),
            PageArgumentError::BadCursor("before")
        );
        let request = page_request(None, None, Some(1000), None, order).unwrap();
        assert_eq!(request.take, Some(Take::Last(1000)));
    }
}
