//! The file format (docs/src/storage.md, The data file).
//!
//! A JSON array of `{ "id", "name", "email", "created_at", "updated_at" }` objects. Keys we
//! do not know are carried along per record and written back after ours. Records that are
//! not objects with string `id`, `name` and `email` are kept verbatim, after the record that
//! preceded them, and hidden from the API. Timestamps load in RFC 3339 or the
//! naive form (read as UTC) and are written as RFC 3339 UTC with microseconds.
//!
//! What the file holds beyond the API's view is kept per record, keyed by the user's
//! allocation rather than its id: a hand-edited file may repeat an id, and each of those
//! records keeps its own keys through any rewrite.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::ser::PrettyFormatter;
use serde_json::{Map, Value};

use crate::domain::user_set::Position;
use crate::domain::{
    Change, ChangeOutcome, User, UserId, UserSet, UserSnapshot, timestamp_bytes, timestamp_text,
};

/// The parsed contents of a data file.
#[derive(Debug, Default)]
pub struct Document {
    /// The users the API sees, in file order.
    users: UserSet,
    /// What each user's record holds beyond the API's view, by the user's position (which
    /// a change of the user keeps).
    kept: HashMap<Position, Kept>,
    /// Records that are not users, before the first user.
    leading: Vec<Value>,
    /// Records that are not users whose preceding user was deleted: they move to the end
    /// rather than vanish.
    orphans: Vec<Value>,
}

/// What one user's record holds beyond the API's view.
#[derive(Debug, Default)]
struct Kept {
    /// Keys of the record that this service does not model.
    extras: Option<Map<String, Value>>,
    /// Records that are not users and came right after this one.
    following: Vec<Value>,
}

/// Why a file's contents are not a user list.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not valid JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the top level is not a JSON array")]
    NotAnArray,
}

/// Whether a file's contents are empty or only whitespace (read as an empty list).
pub fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

impl Document {
    /// How many users the file holds.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// An immutable view of the users for readers.
    pub fn snapshot(&self) -> UserSnapshot {
        self.users.snapshot()
    }

    /// Whether the users' indexes are built (a freshly parsed file has none yet).
    pub fn is_indexed(&self) -> bool {
        self.users.is_indexed()
    }

    /// Builds the users' indexes (about a microsecond a user, on every core).
    pub fn index(&mut self) {
        self.users.index();
    }

    /// How many records are kept verbatim because they are not users.
    pub fn malformed_count(&self) -> usize {
        self.leading.len() + self.orphans.len() + self.kept.values().map(|k| k.following.len()).sum::<usize>()
    }

    /// Parses a data file's bytes. Empty or all-whitespace contents are an empty list.
    ///
    /// # Errors
    /// [`FormatError`] when the contents are not a JSON array.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        if is_blank(bytes) {
            return Ok(Self::default());
        }
        Self::from_json(serde_json::Deserializer::from_slice(bytes))
    }

    /// Parses a data file as it is read, so its bytes are never all in memory beside the
    /// users made from them (a big file's peak memory). Blank contents are an error here
    /// (nothing to read); read such a file with [`Document::parse`].
    ///
    /// # Errors
    /// [`FormatError`] when the contents are not a JSON array (or cannot be read).
    pub fn parse_reader(reader: impl io::Read) -> Result<Self, FormatError> {
        Self::from_json(serde_json::Deserializer::from_reader(reader))
    }

    fn from_json<'de, R: serde_json::de::Read<'de>>(
        mut deserializer: serde_json::Deserializer<R>,
    ) -> Result<Self, FormatError> {
        // Straight into the document, one record at a time: a vector of every parsed
        // record first would double the transient memory of each load.
        deserializer
            .deserialize_seq(DocumentVisitor)
            .and_then(|document| deserializer.end().map(|()| document))
            .map_err(|err| match err.classify() {
                // Every element is accepted, so a data error can only be a top level that
                // is valid JSON but not an array.
                serde_json::error::Category::Data => FormatError::NotAnArray,
                _ => FormatError::NotJson(err),
            })
    }

    /// Applies a change with the domain's rules. A changed user keeps its position, and so
    /// its record's unknown keys and following records; a deleted one's following records
    /// move to the end.
    pub fn apply(&mut self, change: Change) -> ChangeOutcome {
        let deleting = match &change {
            Change::Delete { id } => self.users.position_of(id),
            _ => None,
        };
        let outcome = self.users.apply(change);
        if let (ChangeOutcome::Deleted(_), Some(position)) = (&outcome, deleting)
            && let Some(kept) = self.kept.remove(&position)
        {
            self.orphans.extend(kept.following);
        }
        outcome
    }

    /// Writes the file's bytes: a two-space indented array with a trailing newline, each
    /// record streamed as it is rendered rather than the whole file built in memory first.
    ///
    /// # Errors
    /// The writer's errors.
    pub fn render_to(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut chunks = BufWriter::with_capacity(CHUNK_BYTES, out);
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut chunks, PrettyFormatter::with_indent(b"  "));
        FileView(self)
            .serialize(&mut serializer)
            .map_err(io::Error::other)?;
        chunks.write_all(b"\n")?;
        chunks.flush()
    }

    /// The file's bytes in memory (tests and small files).
    #[cfg(test)]
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.render_to(&mut out).expect("writing to memory cannot fail");
        out
    }
}

/// How much rendered text is gathered before it is handed to the file: each write to the
/// file is a system call and a wake-up of our own watcher, and each small one through
/// `dyn Write` a call that cannot be inlined.
const CHUNK_BYTES: usize = 256 * 1024;

/// The whole array, in file order.
struct FileView<'a>(&'a Document);

impl Serialize for FileView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let document = self.0;
        let mut seq = serializer.serialize_seq(None)?;
        for raw in &document.leading {
            seq.serialize_element(raw)?;
        }
        for (position, user) in document.users.positioned() {
            let kept = document.kept.get(&position);
            seq.serialize_element(&Record::of(user, kept.and_then(|k| k.extras.as_ref())))?;
            for raw in kept.map(|k| k.following.as_slice()).unwrap_or_default() {
                seq.serialize_element(raw)?;
            }
        }
        for raw in &document.orphans {
            seq.serialize_element(raw)?;
        }
        seq.end()
    }
}

/// One user as written to the file.
#[derive(Serialize)]
struct Record<'a> {
    id: &'a str,
    name: &'a str,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "timestamp")]
    created_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "timestamp")]
    updated_at: Option<DateTime<Utc>>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extras: Option<&'a Map<String, Value>>,
}

impl<'a> Record<'a> {
    fn of(user: &'a User, extras: Option<&'a Map<String, Value>>) -> Self {
        Self {
            id: user.id().as_str(),
            name: user.name(),
            email: user.email(),
            created_at: user.created_at(),
            updated_at: user.updated_at(),
            extras,
        }
    }
}

/// A timestamp as [`timestamp_text`] writes it, without a `String` per timestamp.
fn timestamp<S: Serializer>(at: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    let Some(at) = *at else {
        return serializer.serialize_none();
    };
    match timestamp_bytes(at) {
        Some(bytes) => serializer.serialize_str(std::str::from_utf8(&bytes).map_err(S::Error::custom)?),
        None => serializer.serialize_str(&timestamp_text(at)),
    }
}

/// The top-level array, read record by record into a [`Document`].
struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of users")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Document, A::Error> {
        let mut document = Document::default();
        let mut users: Vec<Arc<User>> = Vec::new();
        while let Some(item) = seq.next_element::<Item>()? {
            match item {
                Item::User(user, extras) => {
                    if extras.is_some() {
                        document.kept.entry(users.len() as Position).or_default().extras = extras;
                    }
                    users.push(Arc::new(user));
                }
                Item::Raw(raw) => match users.len().checked_sub(1) {
                    Some(previous) => document
                        .kept
                        .entry(previous as Position)
                        .or_default()
                        .following
                        .push(raw),
                    None => document.leading.push(raw),
                },
            }
        }
        users.shrink_to_fit();
        document.users = UserSet::new(users);
        Ok(document)
    }
}

/// One element of the top-level array, classified while it is parsed: building a generic
/// `Value` tree first cost twice the time and most of the transient memory of a load.
enum Item {
    /// A user, and the keys of its record that this service does not model.
    User(User, Option<Map<String, Value>>),
    /// Anything else, kept verbatim.
    Raw(Value),
}

/// A record's key: one of ours (recognised without allocating) or any other.
enum Key {
    Id,
    Name,
    Email,
    CreatedAt,
    UpdatedAt,
    Other(String),
}

impl Key {
    fn into_name(self) -> String {
        match self {
            Self::Id => "id".into(),
            Self::Name => "name".into(),
            Self::Email => "email".into(),
            Self::CreatedAt => "created_at".into(),
            Self::UpdatedAt => "updated_at".into(),
            Self::Other(name) => name,
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "id" => Key::Id,
                    "name" => Key::Name,
                    "email" => Key::Email,
                    "created_at" => Key::CreatedAt,
                    "updated_at" => Key::UpdatedAt,
                    other => Key::Other(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Item, E> {
        Ok(Item::Raw(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
        Ok(Item::Raw(Value::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
        Ok(Item::Raw(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Item, E> {
        Ok(Item::Raw(Value::from(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
        Ok(Item::Raw(Value::String(v.to_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Item, E> {
        Ok(Item::Raw(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Item::Raw(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        let mut entries: Vec<(Key, Value)> = Vec::with_capacity(5);
        while let Some(key) = map.next_key::<Key>()? {
            entries.push((key, map.next_value::<Value>()?));
        }
        Ok(classify(entries))
    }
}

/// A user when the record has string `id`, `name` and `email` (the last occurrence of a
/// repeated key wins, as in any JSON reader); otherwise the record as it was.
fn classify(entries: Vec<(Key, Value)>) -> Item {
    let text = |wanted: fn(&Key) -> bool| {
        entries
            .iter()
            .rev()
            .find(|(key, _)| wanted(key))
            .and_then(|(_, value)| value.as_str())
    };
    let complete = text(|k| matches!(k, Key::Id)).is_some()
        && text(|k| matches!(k, Key::Name)).is_some()
        && text(|k| matches!(k, Key::Email)).is_some();
    if !complete {
        let object = entries
            .into_iter()
            .map(|(key, value)| (key.into_name(), value))
            .collect();
        return Item::Raw(Value::Object(object));
    }
    let (mut id, mut name, mut email) = (String::new(), String::new(), String::new());
    let (mut created_at, mut updated_at) = (None, None);
    let mut extras: Option<Map<String, Value>> = None;
    for (key, value) in entries {
        match (key, value) {
            (Key::Id, Value::String(v)) => id = v,
            (Key::Name, Value::String(v)) => name = v,
            (Key::Email, Value::String(v)) => email = v,
            (key @ (Key::CreatedAt | Key::UpdatedAt), Value::String(v)) => match parse_timestamp(&v) {
                Some(at) if matches!(key, Key::CreatedAt) => created_at = Some(at),
                Some(at) => updated_at = Some(at),
                None => {
                    extras
                        .get_or_insert_with(Map::new)
                        .insert(key.into_name(), Value::String(v));
                }
            },
            (Key::CreatedAt | Key::UpdatedAt, Value::Null) => {}
            // Anything else (another key, an unparseable timestamp) is kept as it was.
            (key, value) => {
                extras.get_or_insert_with(Map::new).insert(key.into_name(), value);
            }
        }
    }
    Item::User(
        User::restore(UserId::new(id), name, email, created_at, updated_at),
        extras,
    )
}

/// Reads RFC 3339, or a naive `2024-05-01T10:00:00.123456` (no zone) as UTC.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_exactly_like_serde_json_pretty_printing() {
        let text = r#"[1, {"id":"a","name":"A","email":"a@x","tags":["x\ny"]}, {"id":"b","name":"B","email":"b@x"}]"#;
        let doc = Document::parse(text.as_bytes()).unwrap();
        let first = doc.render();
        let value: Value = serde_json::from_slice(&first).unwrap();
        let mut plain = serde_json::to_vec_pretty(&value).unwrap();
        plain.push(b'\n');
        assert_eq!(
            String::from_utf8(first).unwrap(),
            String::from_utf8(plain).unwrap()
        );
    }

    fn roundtrip(text: &str) -> String {
        String::from_utf8(Document::parse(text.as_bytes()).unwrap().render()).unwrap()
    }

    #[test]
    fn reference_files_load_with_naive_timestamps_as_utc() {
        let doc = Document::parse(
            br#"[{"id": "u1", "name": "Ann", "email": "ann@x.com",
                 "created_at": "2024-05-01T10:00:00.123456", "updated_at": "2024-05-01T10:00:00.123456"}]"#,
        )
        .unwrap();
        let user = doc.users.iter().next().unwrap();
        assert_eq!(
            user.created_at().map(timestamp_text).unwrap(),
            "2024-05-01T10:00:00.123456Z"
        );
    }

    #[test]
    fn unknown_keys_and_odd_timestamps_survive_a_rewrite() {
        let out = roundtrip(
            r#"[{"id":"u1","name":"Ann","email":"a@x.com","role":"admin","created_at":"yesterday","meta":{"n":[1,2]}}]"#,
        );
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value[0]["role"], "admin");
        assert_eq!(value[0]["created_at"], "yesterday");
        assert_eq!(value[0]["meta"]["n"][1], 2);
        assert!(value[0].get("updated_at").is_none(), "no timestamp is invented");
    }

    #[test]
    fn malformed_records_stay_where_they_were() {
        let out = roundtrip(
            r#"[42, {"id":"a","name":"A","email":"a@x"}, {"id":5}, {"id":"b","name":"B","email":"b@x"}]"#,
        );
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value[0], 42);
        assert_eq!(value[1]["id"], "a");
        assert_eq!(value[2]["id"], 5);
        assert_eq!(value[3]["id"], "b");
    }

    #[test]
    fn output_is_two_space_indented_with_a_trailing_newline() {
        let out = roundtrip(r#"[{"id":"a","name":"A","email":"a@x"}]"#);
        assert!(
            out.starts_with("[\n  {\n    \"id\": \"a\",\n    \"name\": \"A\""),
            "{out}"
        );
        assert!(out.ends_with("]\n"));
        assert_eq!(roundtrip("  \n"), "[]\n");
    }

    #[test]
    fn non_arrays_and_broken_json_are_format_errors() {
        assert!(matches!(
            Document::parse(b"not a json"),
            Err(FormatError::NotJson(_))
        ));
        assert!(matches!(
            Document::parse(br#"{"a":1}"#),
            Err(FormatError::NotAnArray)
        ));
    }
}
