//! The file format (SPEC §5.1), compatible with the Python reference.
//!
//! A JSON array of `{ "id", "name", "email", "created_at", "updated_at" }` objects. Keys we
//! do not know are carried along per user and written back after ours. Records that are
//! not objects with string `id`, `name` and `email` are kept verbatim, anchored after the
//! user that preceded them, and hidden from the API. Timestamps load in RFC 3339 or the
//! reference's naive form (read as UTC) and are written as RFC 3339 UTC with microseconds.

use std::collections::HashMap;
use std::sync::Arc;

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::{User, UserId, UserSet, timestamp_text};

/// The parsed contents of a data file.
#[derive(Clone, Debug, Default)]
pub struct Document {
    /// The users the API sees, in file order.
    pub users: UserSet,
    /// Keys of each user's record that this service does not model.
    extras: HashMap<UserId, Map<String, Value>>,
    /// Records that are not users, each with the id of the user it followed (`None`: the
    /// start of the file).
    malformed: Vec<(Option<UserId>, Value)>,
    /// Each user's rendered record, valid while the `Arc` is the one in `users`.
    rendered: HashMap<UserId, (Arc<User>, Vec<u8>)>,
}

/// Why a file's contents are not a user list.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not valid JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the top level is not a JSON array")]
    NotAnArray,
}

impl Document {
    /// How many records were kept verbatim because they are not users.
    pub fn malformed_count(&self) -> usize {
        self.malformed.len()
    }

    /// Parses a data file's bytes. Empty or all-whitespace contents are an empty list.
    ///
    /// # Errors
    /// [`FormatError`] when the contents are not a JSON array.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let items: Vec<Item> = serde_json::from_slice(bytes).map_err(|err| match err.classify() {
            // Every element is accepted, so a data error can only be a top level that is
            // valid JSON but not an array.
            serde_json::error::Category::Data => FormatError::NotAnArray,
            _ => FormatError::NotJson(err),
        })?;
        let mut users = Vec::with_capacity(items.len());
        let mut extras = HashMap::new();
        let mut malformed = Vec::new();
        let mut last_id: Option<UserId> = None;
        for item in items {
            match item {
                Item::User(user, rest) => {
                    if let Some(rest) = rest {
                        extras.entry(user.id().clone()).or_insert(rest);
                    }
                    last_id = Some(user.id().clone());
                    users.push(Arc::new(user));
                }
                Item::Raw(raw) => malformed.push((last_id.clone(), raw)),
            }
        }
        Ok(Self {
            users: UserSet::new(users),
            extras,
            malformed,
            rendered: HashMap::new(),
        })
    }

    /// The file's bytes: a two-space indented array with a trailing newline.
    ///
    /// Each user's record is rendered once and reused until that user changes: at 10,000
    /// users, rendering everything from scratch took most of a commit's time (about 10 of
    /// 14 ms, measured with `cargo bench --bench durable_writes`).
    ///
    /// # Errors
    /// Only if serde_json refuses a value, which plain JSON values never cause.
    pub fn render(&mut self) -> Result<Vec<u8>, serde_json::Error> {
        let mut slots: HashMap<Slot<'_>, Vec<&Value>> = HashMap::new();
        for (anchor, raw) in &self.malformed {
            let slot = match anchor {
                None => Slot::Start,
                Some(id) if self.users.get(id).is_some() => Slot::After(id),
                // A record whose anchor was deleted moves to the end rather than vanishing.
                Some(_) => Slot::End,
            };
            slots.entry(slot).or_default().push(raw);
        }
        let users = self.users.users();
        let rendered = &mut self.rendered;
        if rendered.len() > 2 * users.len() + 64 {
            rendered.retain(|id, _| self.users.get(id).is_some());
        }
        let mut out = ArrayWriter::with_capacity(users.len() * 160 + 4);
        put_raws(&mut out, &mut slots, Slot::Start)?;
        for user in users {
            let cached = rendered
                .get(user.id())
                .filter(|(seen, _)| Arc::ptr_eq(seen, user));
            match cached {
                Some((_, bytes)) => out.element(bytes),
                None => {
                    let bytes = indented(&Record::of(user, self.extras.get(user.id())))?;
                    out.element(&bytes);
                    rendered.insert(user.id().clone(), (Arc::clone(user), bytes));
                }
            }
            put_raws(&mut out, &mut slots, Slot::After(user.id()))?;
        }
        put_raws(&mut out, &mut slots, Slot::End)?;
        Ok(out.finish())
    }
}

/// Writes the elements of a two-space indented JSON array.
struct ArrayWriter {
    out: Vec<u8>,
    empty: bool,
}

impl ArrayWriter {
    fn with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'[');
        Self { out, empty: true }
    }

    fn element(&mut self, indented: &[u8]) {
        self.out
            .extend_from_slice(if self.empty { b"\n" } else { b",\n" });
        self.empty = false;
        self.out.extend_from_slice(indented);
    }

    fn finish(mut self) -> Vec<u8> {
        self.out
            .extend_from_slice(if self.empty { b"]\n" } else { b"\n]\n" });
        self.out
    }
}

fn put_raws<'a>(
    out: &mut ArrayWriter,
    slots: &mut HashMap<Slot<'a>, Vec<&'a Value>>,
    slot: Slot<'a>,
) -> Result<(), serde_json::Error> {
    for raw in slots.remove(&slot).unwrap_or_default() {
        out.element(&indented(raw)?);
    }
    Ok(())
}

/// One array element, pretty-printed one level deep. Newlines inside JSON strings are
/// escaped, so every raw newline is structural and can take the extra indentation.
fn indented(value: &impl Serialize) -> Result<Vec<u8>, serde_json::Error> {
    let plain = serde_json::to_vec_pretty(value)?;
    let mut out = Vec::with_capacity(plain.len() + plain.len() / 8);
    out.extend_from_slice(b"  ");
    for byte in plain {
        out.push(byte);
        if byte == b'\n' {
            out.extend_from_slice(b"  ");
        }
    }
    Ok(out)
}

/// Where a malformed record goes when the file is written.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Slot<'a> {
    Start,
    After(&'a UserId),
    End,
}

/// One user as written to the file.
#[derive(Serialize)]
struct Record<'a> {
    id: &'a str,
    name: &'a str,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extras: Option<&'a Map<String, Value>>,
}

impl<'a> Record<'a> {
    fn of(user: &'a User, extras: Option<&'a Map<String, Value>>) -> Self {
        Self {
            id: user.id().as_str(),
            name: user.name(),
            email: user.email(),
            created_at: user.created_at().map(timestamp_text),
            updated_at: user.updated_at().map(timestamp_text),
            extras,
        }
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

/// Reads RFC 3339, or the reference's naive `2024-05-01T10:00:00.123456` as UTC.
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
    fn cached_records_render_exactly_like_fresh_ones() {
        let text = r#"[1, {"id":"a","name":"A","email":"a@x","tags":["x\ny"]}, {"id":"b","name":"B","email":"b@x"}]"#;
        let mut doc = Document::parse(text.as_bytes()).unwrap();
        let first = doc.render().unwrap();
        assert_eq!(doc.render().unwrap(), first);
        let value: Value = serde_json::from_slice(&first).unwrap();
        let mut plain = serde_json::to_vec_pretty(&value).unwrap();
        plain.push(b'\n');
        assert_eq!(
            String::from_utf8(first).unwrap(),
            String::from_utf8(plain).unwrap()
        );
    }

    fn roundtrip(text: &str) -> String {
        String::from_utf8(Document::parse(text.as_bytes()).unwrap().render().unwrap()).unwrap()
    }

    #[test]
    fn reference_files_load_with_naive_timestamps_as_utc() {
        let doc = Document::parse(
            br#"[{"id": "u1", "name": "Ann", "email": "ann@x.com",
                 "created_at": "2024-05-01T10:00:00.123456", "updated_at": "2024-05-01T10:00:00.123456"}]"#,
        )
        .unwrap();
        let user = &doc.users.users()[0];
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
