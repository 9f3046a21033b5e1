//! The file store's document (docs/src/storage.md, The data file): the users file (its
//! format is [`crate::adapters::outbound::users_file`]) held as the users the API sees plus
//! everything else the file holds, so that a rewrite keeps it.
//!
//! What the file holds beyond the API's view is kept per record, keyed by the user's
//! allocation rather than its id: a hand-edited file may repeat an id, and each of those
//! records keeps its own keys through any rewrite.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::adapters::outbound::users_file::write::{self as file_write, Json, UserFields};
use crate::adapters::outbound::users_file::{self, Key, Record, TooDeep};
use crate::domain::user_set::Position;
use crate::domain::{Change, ChangeOutcome, User, UserId, UserSet, UserSnapshot};

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
    #[error("{0}")]
    TooDeep(TooDeep),
}

pub use users_file::is_blank;

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

    /// Parses a data file's bytes. Empty or all-whitespace contents are an empty list; a
    /// leading byte-order mark is skipped.
    ///
    /// # Errors
    /// [`FormatError`] when the contents are not a JSON array, or nest too deep.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let bytes = users_file::strip_bom(bytes);
        if is_blank(bytes) {
            return Ok(Self::default());
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        match Self::from_json(&mut deserializer).and_then(|document| deserializer.end().map(|()| document)) {
            Err(err) if is_recursion_limit(&err) => {}
            parsed => return parsed.map_err(format_error),
        }
        // Deeper than serde_json's own limit: refused past the file's, else parsed again
        // on a stack that grows as it needs (the store's thread has 2 MiB).
        if let Some(deep) = users_file::too_deep(bytes) {
            return Err(FormatError::TooDeep(deep));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        deserializer.disable_recursion_limit();
        Self::from_json(serde_stacker::Deserializer::new(&mut deserializer))
            .and_then(|document| deserializer.end().map(|()| document))
            .map_err(format_error)
    }

    /// Parses a data file as it is read, so its bytes are never all in memory beside the
    /// users made from them (a big file's peak memory). Blank contents are an error here
    /// (nothing to read), and so is a value nested deeper than serde_json's own limit: read
    /// such a file with [`Document::parse`].
    ///
    /// # Errors
    /// [`FormatError`] when the contents are not a JSON array (or cannot be read).
    pub fn parse_reader(mut reader: impl io::BufRead) -> Result<Self, FormatError> {
        if reader
            .fill_buf()
            .map_err(serde_json::Error::io)?
            .starts_with(b"\xEF\xBB\xBF")
        {
            reader.consume(3);
        }
        let mut deserializer = serde_json::Deserializer::from_reader(reader);
        Self::from_json(&mut deserializer)
            .and_then(|document| deserializer.end().map(|()| document))
            .map_err(format_error)
    }

    fn from_json<'de, D: Deserializer<'de, Error = serde_json::Error>>(
        deserializer: D,
    ) -> Result<Self, serde_json::Error> {
        // Straight into the document, one record at a time: a vector of every parsed
        // record first would double the transient memory of each load.
        deserializer.deserialize_seq(DocumentVisitor)
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
        let out = &mut chunks;
        let mut first = true;
        let mut element = |out: &mut BufWriter<&mut dyn Write>| {
            let start = file_write::element_start(out, first);
            first = false;
            start
        };
        for raw in &self.leading {
            element(out)?;
            file_write::write_value(out, raw, 1)?;
        }
        for (position, user) in self.users.positioned() {
            let kept = self.kept.get(&position);
            element(out)?;
            let fields = UserFields {
                id: user.id().as_str(),
                name: user.name(),
                email: user.email(),
                created_at: user.created_at(),
                updated_at: user.updated_at(),
            };
            let extras = kept.and_then(|k| k.extras.as_ref()).into_iter().flatten();
            file_write::write_user(
                out,
                &fields,
                extras.map(|(key, value)| (key.as_str(), Json::Value(value))),
            )?;
            for raw in kept.map(|k| k.following.as_slice()).unwrap_or_default() {
                element(out)?;
                file_write::write_value(out, raw, 1)?;
            }
        }
        for raw in &self.orphans {
            element(out)?;
            file_write::write_value(out, raw, 1)?;
        }
        let empty = first;
        file_write::list_end(out, empty)?;
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

fn is_recursion_limit(err: &serde_json::Error) -> bool {
    err.to_string().starts_with("recursion limit exceeded")
}

fn format_error(err: serde_json::Error) -> FormatError {
    match err.classify() {
        // Every element is accepted, so a data error can only be a top level that is
        // valid JSON but not an array.
        serde_json::error::Category::Data => FormatError::NotAnArray,
        _ => FormatError::NotJson(err),
    }
}

/// How much rendered text is gathered before it is handed to the file: each write to the
/// file is a system call and a wake-up of our own watcher, and each small one through
/// `dyn Write` a call that cannot be inlined.
const CHUNK_BYTES: usize = 256 * 1024;

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

/// A record's key, read without allocating for one of a user's own.
struct FileKey(Key<'static>);

impl<'de> Deserialize<'de> for FileKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = FileKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<FileKey, E> {
                Ok(FileKey(Key::owned(key)))
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
        let mut entries: Vec<(Key<'static>, Value)> = Vec::with_capacity(5);
        while let Some(FileKey(key)) = map.next_key::<FileKey>()? {
            entries.push((key, map.next_value::<Value>()?));
        }
        Ok(classify(entries))
    }
}

/// A user when the record is one by the file's rule, with what else it keeps; otherwise
/// the record as it was.
fn classify(entries: Vec<(Key<'static>, Value)>) -> Item {
    match users_file::classify(entries) {
        Record::User(record) => {
            let text = |value: Value| match value {
                Value::String(text) => text,
                _ => String::new(),
            };
            let extras = (!record.kept.is_empty()).then(|| {
                record
                    .kept
                    .into_iter()
                    .map(|(key, value)| (key.into_name(), value))
                    .collect::<Map<String, Value>>()
            });
            Item::User(
                User::restore(
                    UserId::new(text(record.id)),
                    text(record.name),
                    text(record.email),
                    record.created_at,
                    record.updated_at,
                ),
                extras,
            )
        }
        Record::NotAUser { entries, .. } => Item::Raw(Value::Object(
            entries
                .into_iter()
                .map(|(key, value)| (key.into_name(), value))
                .collect(),
        )),
    }
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
            user.created_at().map(crate::domain::timestamp_text).unwrap(),
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
