//! What one record of the file is: a user (its fields, its timestamps, what else it keeps)
//! or something kept verbatim and hidden. One rule for every reader, whatever form each
//! keeps a record's values in (a parsed value, JSON text, or only its kind).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};

use super::read::read_timestamp;

/// A record's key: one of a user's own (recognised once, so rules compare small tags
/// instead of strings) or any other.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key<'a> {
    Id,
    Name,
    Email,
    CreatedAt,
    UpdatedAt,
    Other(Cow<'a, str>),
}

impl<'a> Key<'a> {
    /// One of a user's own keys, if `text` is one.
    pub fn known(text: &str) -> Option<Key<'static>> {
        Some(match text {
            "id" => Key::Id,
            "name" => Key::Name,
            "email" => Key::Email,
            "created_at" => Key::CreatedAt,
            "updated_at" => Key::UpdatedAt,
            _ => return None,
        })
    }

    /// The key spelled `text`, borrowed.
    pub fn borrowed(text: &'a str) -> Self {
        Self::known(text).unwrap_or(Self::Other(Cow::Borrowed(text)))
    }

    /// The key spelled `text`, copied.
    pub fn owned(text: &str) -> Key<'static> {
        Key::known(text).unwrap_or_else(|| Key::Other(Cow::Owned(text.to_owned())))
    }

    /// The key as written in the file.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Id => "id",
            Self::Name => "name",
            Self::Email => "email",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
            Self::Other(name) => name,
        }
    }

    /// The key's text, borrowed from the file where it was.
    pub fn into_cow(self) -> Cow<'a, str> {
        match self {
            Self::Other(name) => name,
            Self::Id => Cow::Borrowed("id"),
            Self::Name => Cow::Borrowed("name"),
            Self::Email => Cow::Borrowed("email"),
            Self::CreatedAt => Cow::Borrowed("created_at"),
            Self::UpdatedAt => Cow::Borrowed("updated_at"),
        }
    }

    /// The key's text, owned.
    pub fn into_name(self) -> String {
        match self {
            Self::Other(name) => name.into_owned(),
            known => known.as_str().to_owned(),
        }
    }
}

/// What a JSON value is, in words a report can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Null,
    Boolean,
    Number,
    Text,
    Array,
    Object,
}

impl Kind {
    /// The kind of the value whose JSON text starts with `byte`.
    pub fn of_first_byte(byte: u8) -> Self {
        match byte {
            b'n' => Self::Null,
            b't' | b'f' => Self::Boolean,
            b'"' => Self::Text,
            b'[' => Self::Array,
            b'{' => Self::Object,
            _ => Self::Number,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Null => "null",
            Self::Boolean => "a boolean",
            Self::Number => "a number",
            Self::Text => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        })
    }
}

/// A record's value, in whatever form a reader keeps it.
pub trait FieldValue {
    /// The text of a string value; `None` for any other value.
    fn text(&self) -> Option<Cow<'_, str>>;
    /// What the value is.
    fn kind(&self) -> Kind;
}

impl FieldValue for serde_json::Value {
    fn text(&self) -> Option<Cow<'_, str>> {
        self.as_str().map(Cow::Borrowed)
    }

    fn kind(&self) -> Kind {
        match self {
            Self::Null => Kind::Null,
            Self::Bool(_) => Kind::Boolean,
            Self::Number(_) => Kind::Number,
            Self::String(_) => Kind::Text,
            Self::Array(_) => Kind::Array,
            Self::Object(_) => Kind::Object,
        }
    }
}

/// A user's record: its own fields (each a string), the timestamps read from it, and every
/// other member in the record's order — keys Roster does not model, and a timestamp key
/// whose value is not a time it reads (`null` included), kept as written.
#[derive(Debug)]
pub struct UserRecord<'a, V> {
    pub id: V,
    pub name: V,
    pub email: V,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub kept: Vec<(Key<'a>, V)>,
}

/// One record, classified.
#[derive(Debug)]
pub enum Record<'a, V> {
    User(UserRecord<'a, V>),
    /// An object that is not a user: why (`` `id` is a number ``, `` `email` is missing ``),
    /// and its members as they were read.
    NotAUser {
        why: Vec<String>,
        entries: Vec<(Key<'a>, V)>,
    },
}

/// The members of an object: a repeated key keeps its first place and its last value.
/// Linear in the members, however many there are.
pub fn members<'a, V>(entries: Vec<(Key<'a>, V)>) -> Vec<(Key<'a>, V)> {
    // Where each entry's value goes: the index of its key's first occurrence.
    let slots: Vec<usize> = if entries.len() <= 16 {
        let repeated = |at: usize| entries[..at].iter().position(|(key, _)| *key == entries[at].0);
        if !(1..entries.len()).any(|at| repeated(at).is_some()) {
            return entries;
        }
        (0..entries.len()).map(|at| repeated(at).unwrap_or(at)).collect()
    } else {
        let mut first: HashMap<&Key<'a>, usize> = HashMap::with_capacity(entries.len());
        (0..entries.len())
            .map(|at| *first.entry(&entries[at].0).or_insert(at))
            .collect()
    };
    if slots.iter().enumerate().all(|(at, slot)| at == *slot) {
        return entries;
    }
    let mut out: Vec<Option<(Key<'a>, V)>> = Vec::with_capacity(entries.len());
    for (at, (key, value)) in entries.into_iter().enumerate() {
        let slot = slots[at];
        if slot == at {
            out.push(Some((key, value)));
        } else {
            if let Some((_, kept)) = out[slot].as_mut() {
                *kept = value;
            }
            out.push(None);
        }
    }
    out.into_iter().flatten().collect()
}

/// Why an object's entries (in file order, repeated keys included) are not a user: each
/// of `id`, `name` and `email` (its last occurrence) that is missing or not a string.
/// Empty for a user.
pub fn why_not_a_user<V: FieldValue>(entries: &[(Key<'_>, V)]) -> Vec<String> {
    let last = |wanted: &Key<'_>| {
        entries
            .iter()
            .rev()
            .find(|(key, _)| key == wanted)
            .map(|(_, value)| value)
    };
    let mut why = Vec::new();
    for key in [Key::Id, Key::Name, Key::Email] {
        match last(&key) {
            Some(value) if value.kind() == Kind::Text => {}
            Some(value) => why.push(format!("`{}` is {}", key.as_str(), value.kind())),
            None => why.push(format!("`{}` is missing", key.as_str())),
        }
    }
    why
}

/// Classifies an object's entries (in file order, repeated keys included).
pub fn classify<'a, V: FieldValue>(entries: Vec<(Key<'a>, V)>) -> Record<'a, V> {
    let why = why_not_a_user(&entries);
    if !why.is_empty() {
        return Record::NotAUser { why, entries };
    }
    let (mut id, mut name, mut email) = (None, None, None);
    let (mut created_at, mut updated_at) = (None, None);
    let mut kept = Vec::new();
    for (key, value) in members(entries) {
        match key {
            Key::Id => id = Some(value),
            Key::Name => name = Some(value),
            Key::Email => email = Some(value),
            Key::CreatedAt | Key::UpdatedAt => match value.text().as_deref().and_then(read_timestamp) {
                Some(at) if key == Key::CreatedAt => created_at = Some(at),
                Some(at) => updated_at = Some(at),
                None => kept.push((key, value)),
            },
            Key::Other(_) => kept.push((key, value)),
        }
    }
    match (id, name, email) {
        (Some(id), Some(name), Some(email)) => Record::User(UserRecord {
            id,
            name,
            email,
            created_at,
            updated_at,
            kept,
        }),
        // The three were found above.
        _ => Record::NotAUser {
            why: vec!["a field went missing".into()],
            entries: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn entries(value: Value) -> Vec<(Key<'static>, Value)> {
        value
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| (Key::owned(key), value.clone()))
            .collect()
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_its_last_value() {
        for size in [3, 40] {
            let mut list: Vec<(Key<'static>, i32)> =
                (0..size).map(|n| (Key::owned(&format!("k{n}")), n)).collect();
            list.push((Key::owned("k1"), -1));
            let kept = members(list);
            assert_eq!(kept.len(), size as usize);
            assert_eq!(kept[1], (Key::owned("k1"), -1));
        }
    }

    #[test]
    fn null_and_unreadable_timestamps_are_kept_as_written() {
        let Record::User(user) = classify(entries(json!({
            "id": "a", "name": "A", "email": "a@x", "created_at": "2024-05-01T10:00:00.123456",
            "updated_at": null, "role": 1
        }))) else {
            panic!("a user")
        };
        assert!(user.created_at.is_some() && user.updated_at.is_none());
        let kept: Vec<&str> = user.kept.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(kept, ["updated_at", "role"]);
    }

    #[test]
    fn records_without_string_fields_say_why() {
        let Record::NotAUser { why, .. } = classify(entries(json!({"id": 5, "name": "A"}))) else {
            panic!("not a user")
        };
        assert_eq!(why, ["`id` is a number", "`email` is missing"]);
    }
}
