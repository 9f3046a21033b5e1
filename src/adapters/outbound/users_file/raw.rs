//! The file read as text: every element of the array a slice of the file, each user's
//! values JSON text (a value of any depth stays text, never a tree). `roster import` reads
//! files this way, and `roster export` writes the database's JSON text back through
//! [`super::write`].

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::read::{self, TooDeep};
use super::record::{self, FieldValue, Key, Kind, Record};

/// One element of a user list as the file holds it, borrowed from the file's text.
#[derive(Clone, Debug)]
pub enum FileRecord<'a> {
    User(FileUser<'a>),
    /// Anything that is not a user, kept verbatim at its place and hidden from the API.
    Hidden(&'a RawValue),
}

/// A user record: the fields the API shows and every other member, in the file's order.
#[derive(Clone, Debug)]
pub struct FileUser<'a> {
    pub id: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub email: Cow<'a, str>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Keys Roster does not model, and a timestamp it does not read as a time (`null`
    /// included), each with its value's JSON text.
    pub extra: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// A user list: every element of the file's array as a slice of its text.
#[derive(Debug, Default)]
pub struct RecordList<'a> {
    items: Vec<&'a RawValue>,
}

impl RecordList<'_> {
    /// How many records the list holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every record, in order, classified by the file's rule.
    pub fn each(&self) -> impl Iterator<Item = FileRecord<'_>> + Send + '_ {
        self.items.iter().map(|item| classify(item))
    }
}

/// Reads a user list. Empty contents are an empty list; a byte-order mark is skipped.
///
/// # Errors
/// A reason, worded as the file store words it, when the contents are not a JSON array or
/// nest deeper than the format allows.
pub fn parse_records(bytes: &[u8]) -> Result<RecordList<'_>, String> {
    let bytes = read::strip_bom(bytes);
    if read::is_blank(bytes) {
        return Ok(RecordList::default());
    }
    if let Some(deep) = read::too_deep(bytes) {
        return Err(too_deep(deep));
    }
    let items: Vec<&RawValue> = serde_json::from_slice(bytes).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => "the top level is not a JSON array".to_owned(),
        _ => format!("not valid JSON: {err}"),
    })?;
    Ok(RecordList { items })
}

fn too_deep(deep: TooDeep) -> String {
    deep.to_string()
}

/// A JSON string as text, borrowed from the file when it holds no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Strings;
        impl<'de> Visitor<'de> for Strings {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(Strings)
    }
}

/// An object's entries in file order (repeated keys included), each value as its text.
struct Entries<'a>(Vec<(Key<'a>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Objects;
        impl<'de> Visitor<'de> for Objects {
            type Value = Entries<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entries = Vec::new();
                while let Some((Text(key), value)) = map.next_entry::<Text<'de>, &'de RawValue>()? {
                    let key = match key {
                        Cow::Borrowed(key) => Key::borrowed(key),
                        Cow::Owned(key) => Key::known(&key).unwrap_or(Key::Other(Cow::Owned(key))),
                    };
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(Objects)
    }
}

/// The members of a JSON object's text, each value as its text; `None` when the text is
/// not an object.
pub fn object_members(json: &str) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    let Entries(entries) = serde_json::from_str(json).ok()?;
    Some(
        record::members(entries)
            .into_iter()
            .map(|(key, value)| (key.into_cow(), value))
            .collect(),
    )
}

impl FieldValue for &RawValue {
    fn text(&self) -> Option<Cow<'_, str>> {
        if !self.get().starts_with('"') {
            return None;
        }
        serde_json::from_str::<Text<'_>>(self.get())
            .ok()
            .map(|text| text.0)
    }

    fn kind(&self) -> Kind {
        Kind::of_first_byte(self.get().as_bytes().first().copied().unwrap_or(b'n'))
    }
}

/// The text of a JSON string value, borrowed when it holds no escapes.
fn string_of(value: &RawValue) -> Cow<'_, str> {
    serde_json::from_str::<Text<'_>>(value.get())
        .map(|text| text.0)
        .unwrap_or_default()
}

fn classify(item: &RawValue) -> FileRecord<'_> {
    // The list was read as JSON, so an element that starts like an object is one.
    let Some(Entries(entries)) = item
        .get()
        .starts_with('{')
        .then(|| serde_json::from_str::<Entries<'_>>(item.get()).ok())
        .flatten()
    else {
        return FileRecord::Hidden(item);
    };
    let Record::User(user) = record::classify(entries) else {
        return FileRecord::Hidden(item);
    };
    FileRecord::User(FileUser {
        id: string_of(user.id),
        name: string_of(user.name),
        email: string_of(user.email),
        created_at: user.created_at,
        updated_at: user.updated_at,
        extra: user
            .kept
            .into_iter()
            .map(|(key, value)| (key.into_cow(), value))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::timestamp_text;

    #[test]
    fn records_are_users_or_hidden_with_unknown_keys_and_odd_timestamps_kept() {
        let list = parse_records(
            br#"[7, {"id":"a","name":"A","email":"a@x","role":"admin","created_at":"yesterday",
                 "updated_at":"2024-05-01T10:00:00.123456", "far": 1, "far": 2}, {"id":5,"name":"B","email":"b@x"},
                 {"id":"c","name":"C\u00e9","email":"c@x","created_at":"+20000-01-01T00:00:00","updated_at":null}]"#,
        )
        .unwrap();
        let records: Vec<FileRecord<'_>> = list.each().collect();
        assert!(matches!(records[0], FileRecord::Hidden(raw) if raw.get() == "7"));
        let FileRecord::User(user) = &records[1] else {
            panic!("{records:?}")
        };
        let extra: Vec<(&str, &str)> = user.extra.iter().map(|(k, v)| (k.as_ref(), v.get())).collect();
        assert_eq!(
            extra,
            [
                ("role", "\"admin\""),
                ("created_at", "\"yesterday\""),
                ("far", "2")
            ]
        );
        assert!(user.created_at.is_none());
        assert_eq!(
            user.updated_at.map(timestamp_text).as_deref(),
            Some("2024-05-01T10:00:00.123456Z")
        );
        assert!(matches!(records[2], FileRecord::Hidden(_)));
        let FileRecord::User(far) = &records[3] else {
            panic!("{records:?}")
        };
        assert_eq!(far.name, "Cé");
        assert!(far.created_at.is_none() && far.updated_at.is_none());
        assert_eq!(
            far.extra.len(),
            2,
            "a year the database cannot keep stays text, and null stays null: {far:?}"
        );
        assert!(parse_records(b"  \n").unwrap().is_empty());
        assert_eq!(
            parse_records(br#"{"a":1}"#).unwrap_err(),
            "the top level is not a JSON array"
        );
        assert!(parse_records(b"[1,").unwrap_err().starts_with("not valid JSON"));
        assert_eq!(parse_records(b"\xEF\xBB\xBF[1]").unwrap().len(), 1);
        let deep = format!("[{}{}]", "[".repeat(998), "]".repeat(998));
        assert_eq!(parse_records(deep.as_bytes()).unwrap().len(), 1);
        let deeper = format!("[{}{}]", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(
            parse_records(deeper.as_bytes()).unwrap_err(),
            "a value is nested more than 1000 levels deep at line 1 column 1001"
        );
    }
}
