//! The entries a user set holds and the orders its indexes keep them in.
//!
//! Every index is a persistent ordered set of the same shared [`Entry`] pointers (eight
//! bytes an element, about 22 with the tree around them), each ordered by its own key with
//! the entry's position as the last tie-break, so records that a hand-edited file repeats
//! (an id, an address) each keep a place. Lookups compare a borrowed probe with the entries in place
//! ([`equivalent::Comparable`]), so no key is ever copied into an index.

use std::cmp::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use equivalent::{Comparable, Equivalent};

use crate::domain::search::SearchKeys;
use crate::domain::user::User;

/// Where a user sits in list order (file order, or the database's creation order). Only
/// the order matters: positions may have gaps and need not start at zero.
pub type Position = i64;

/// One user as a set holds it: the user, its place, and what searches and orders compare
/// (computed once, when the user is stored or changed).
#[derive(Debug)]
pub struct Entry {
    pub(super) user: Arc<User>,
    pub(super) position: Position,
    pub(super) keys: SearchKeys,
}

impl Entry {
    pub(crate) fn new(position: Position, user: Arc<User>) -> Self {
        let keys = SearchKeys::new(user.name(), user.email());
        Self { user, position, keys }
    }

    /// The user.
    pub fn user(&self) -> &Arc<User> {
        &self.user
    }

    /// The user's place in list order.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The user's prepared search keys.
    pub fn keys(&self) -> &SearchKeys {
        &self.keys
    }

    /// The address's uniqueness key (trimmed and lowercased, as [`crate::domain::email_key`]),
    /// cut from the lowercased address rather than kept: eight bytes more an entry would
    /// put it in the next allocation size.
    pub fn email_key(&self) -> &str {
        self.keys.email().trim()
    }

    fn id(&self) -> &str {
        self.user.id().as_str()
    }

    /// What `field` sorts by for this entry.
    pub(crate) fn sort_key(&self, field: SortField) -> SortKey<'_> {
        match field {
            SortField::Name => SortKey::Text(self.keys.name()),
            SortField::Email => SortKey::Text(self.email_key()),
            SortField::CreatedAt => SortKey::Time(self.user.created_at()),
            SortField::UpdatedAt => SortKey::Time(self.user.updated_at()),
        }
    }
}

/// A field an index orders users by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortField {
    /// The lowercased name.
    Name,
    /// The address's uniqueness key (lowercased and trimmed): the same index answers
    /// which users hold an address.
    Email,
    /// When the user was created; users without a time come first.
    CreatedAt,
    /// When the user was last changed; users without a time come first.
    UpdatedAt,
}

impl SortField {
    /// Every field, in the order the set keeps their indexes.
    pub const ALL: [Self; 4] = [Self::Name, Self::Email, Self::CreatedAt, Self::UpdatedAt];
}

/// A value an order compares: text, or a time where none sorts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortKey<'a> {
    Text(&'a str),
    Time(Option<DateTime<Utc>>),
}

/// Implements the comparison traits of an index element from its key function.
macro_rules! ordered_by {
    ($element:ty, |$entry:ident| $key:expr) => {
        impl $element {
            fn key(&self) -> impl Ord + '_ {
                let $entry = &*self.0;
                $key
            }
        }
        impl PartialEq for $element {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == Ordering::Equal
            }
        }
        impl Eq for $element {}
        impl PartialOrd for $element {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $element {
            fn cmp(&self, other: &Self) -> Ordering {
                self.key().cmp(&other.key())
            }
        }
    };
}

/// An entry in list order.
#[derive(Clone, Debug)]
pub(super) struct ByPosition(pub Arc<Entry>);
ordered_by!(ByPosition, |entry| entry.position);

/// An entry in id order (then position: the first of a repeated id is its holder).
#[derive(Clone, Debug)]
pub(super) struct ById(pub Arc<Entry>);
ordered_by!(ById, |entry| (entry.id(), entry.position));

/// An entry in the order of one [`SortField`] (`F` is its place in [`SortField::ALL`]),
/// ties broken by id, then position.
#[derive(Clone, Debug)]
pub(super) struct Sorted<const F: usize>(pub Arc<Entry>);

impl<const F: usize> Sorted<F> {
    fn key(&self) -> (SortKey<'_>, &str, Position) {
        let entry = &*self.0;
        (entry.sort_key(SortField::ALL[F]), entry.id(), entry.position)
    }
}
impl<const F: usize> PartialEq for Sorted<F> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<const F: usize> Eq for Sorted<F> {}
impl<const F: usize> PartialOrd for Sorted<F> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<const F: usize> Ord for Sorted<F> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// An index's order over entries, with a cheap prefix of its key for building it: sorting
/// a million entries by comparing their keys through two pointers each costs seconds in
/// cache misses; comparing inline prefixes first, and the keys only on a tie, a tenth.
pub(super) trait Order: Ord + Clone + Send + Sync {
    fn wrap(entry: Arc<Entry>) -> Self;
    /// The order of two entries, as the elements they make compare.
    fn between(a: &Entry, b: &Entry) -> Ordering;
    /// A prefix of an entry's key: entries with different prefixes are ordered by them.
    fn prefix(entry: &Entry) -> (u128, u64);
}

/// The first sixteen bytes of `text`, as a number that orders like the text does where
/// those bytes differ.
fn text_prefix(text: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let head = &text.as_bytes()[..text.len().min(16)];
    bytes[..head.len()].copy_from_slice(head);
    u128::from_be_bytes(bytes)
}

/// The first eight bytes of `text`, likewise.
fn short_prefix(text: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let head = &text.as_bytes()[..text.len().min(8)];
    bytes[..head.len()].copy_from_slice(head);
    u64::from_be_bytes(bytes)
}

impl Order for ById {
    fn wrap(entry: Arc<Entry>) -> Self {
        Self(entry)
    }
    fn between(a: &Entry, b: &Entry) -> Ordering {
        (a.id(), a.position).cmp(&(b.id(), b.position))
    }
    fn prefix(entry: &Entry) -> (u128, u64) {
        (text_prefix(entry.id()), 0)
    }
}

impl<const F: usize> Order for Sorted<F> {
    fn wrap(entry: Arc<Entry>) -> Self {
        Self(entry)
    }
    fn between(a: &Entry, b: &Entry) -> Ordering {
        let field = SortField::ALL[F];
        (a.sort_key(field), a.id(), a.position).cmp(&(b.sort_key(field), b.id(), b.position))
    }
    fn prefix(entry: &Entry) -> (u128, u64) {
        let key = match entry.sort_key(SortField::ALL[F]) {
            SortKey::Text(text) => text_prefix(text),
            // Microseconds since the earliest time chrono holds, so the order is kept; none
            // sorts first.
            SortKey::Time(None) => 0,
            SortKey::Time(Some(at)) => (i128::from(at.timestamp_micros()) - i128::from(i64::MIN) + 1) as u128,
        };
        (key, short_prefix(entry.id()))
    }
}

/// A place in list order to look up.
pub(super) struct AtPosition(pub Position);

impl Equivalent<ByPosition> for AtPosition {
    fn equivalent(&self, key: &ByPosition) -> bool {
        self.0 == key.0.position
    }
}
impl Comparable<ByPosition> for AtPosition {
    fn compare(&self, key: &ByPosition) -> Ordering {
        self.0.cmp(&key.0.position)
    }
}

/// An id and a position to look up in [`ById`].
pub(super) struct TextAt<'a>(pub &'a str, pub Position);

impl Equivalent<ById> for TextAt<'_> {
    fn equivalent(&self, key: &ById) -> bool {
        self.compare(key) == Ordering::Equal
    }
}
impl Comparable<ById> for TextAt<'_> {
    fn compare(&self, key: &ById) -> Ordering {
        (self.0, self.1).cmp(&(key.0.id(), key.0.position))
    }
}

/// A place in a sort order to look up: a sort key, an id and a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortPoint<'a> {
    pub key: SortKey<'a>,
    pub id: &'a str,
    pub position: Position,
}

impl<const F: usize> Equivalent<Sorted<F>> for SortPoint<'_> {
    fn equivalent(&self, key: &Sorted<F>) -> bool {
        self.compare(key) == Ordering::Equal
    }
}
impl<const F: usize> Comparable<Sorted<F>> for SortPoint<'_> {
    fn compare(&self, key: &Sorted<F>) -> Ordering {
        (self.key, self.id, self.position).cmp(&key.key())
    }
}

impl<'a> SortPoint<'a> {
    /// Where `entry` sits in the order of `field`.
    pub fn of(entry: &'a Entry, field: SortField) -> Self {
        Self {
            key: entry.sort_key(field),
            id: entry.id(),
            position: entry.position,
        }
    }
}
