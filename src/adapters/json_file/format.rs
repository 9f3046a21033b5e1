//! The file format (SPEC §5.1), compatible with the Python reference.
//!
//! A JSON array of `{ "id", "name", "email", "created_at", "updated_at" }` objects. Keys we
//! do not know are carried along per user and written back after ours. Records that are
//! not objects with string `id`, `name` and `email` are kept verbatim, anchored after the
//! user that preceded them, and hidden from the API. Timestamps load in RFC 3339 or the
//! reference's naive form (read as UTC) and are written as RFC 3339 UTC with microseconds.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{User, UserId, UserSet};

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
        let Value::Array(items) = serde_json::from_slice::<Value>(bytes)? else {
            return Err(FormatError::NotAnArray);
        };
        let mut users = Vec::with_capacity(items.len());
        let mut extras = HashMap::new();
        let mut malformed = Vec::new();
        let mut last_id: Option<UserId> = None;
        for item in items {
            match user_from_record(item) {
                Ok((user, rest)) => {
                    if !rest.is_empty() {
                        extras.entry(user.id().clone()).or_insert(rest);
                    }
                    last_id = Some(user.id().clone());
                    users.push(Arc::new(user));
                }
                Err(raw) => malformed.push((last_id.clone(), raw)),
            }
        }
        Ok(Self {
            users: UserSet::new(users),
            extras,
            malformed,
        })
    }

    /// The file's bytes: a two-space indented array with a trailing newline.
    ///
    /// # Errors
    /// Only if serde_json refuses a value, which plain JSON values never cause.
    pub fn render(&self) -> Result<Vec<u8>, serde_json::Error> {
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
        let mut entries = Vec::with_capacity(self.users.users().len() + self.malformed.len());
        fn fill<'a>(
            slots: &mut HashMap<Slot<'a>, Vec<&'a Value>>,
            slot: Slot<'a>,
            entries: &mut Vec<Entry<'a>>,
        ) {
            if let Some(raws) = slots.remove(&slot) {
                entries.extend(raws.into_iter().map(Entry::Raw));
            }
        }
        fill(&mut slots, Slot::Start, &mut entries);
        for user in self.users.users() {
            entries.push(Entry::User(Record::of(user, self.extras.get(user.id()))));
            fill(&mut slots, Slot::After(user.id()), &mut entries);
        }
        fill(&mut slots, Slot::End, &mut entries);
        let mut bytes = serde_json::to_vec_pretty(&entries)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// Where a malformed record goes when the file is written.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Slot<'a> {
    Start,
    After(&'a UserId),
    End,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    User(Record<'a>),
    Raw(&'a Value),
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
            created_at: user.created_at().map(format_timestamp),
            updated_at: user.updated_at().map(format_timestamp),
            extras,
        }
    }
}

/// Turns a record into a user plus the keys it does not model, or gives it back unchanged.
fn user_from_record(item: Value) -> Result<(User, Map<String, Value>), Value> {
    let Value::Object(mut map) = item else {
        return Err(item);
    };
    let is_text = |key: &str| map.get(key).is_some_and(Value::is_string);
    if !(is_text("id") && is_text("name") && is_text("email")) {
        return Err(Value::Object(map));
    }
    let mut text = |key: &str| match map.remove(key) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let (id, name, email) = (text("id"), text("name"), text("email"));
    let mut timestamp = |key: &str| {
        let parsed = map.get(key).and_then(Value::as_str).and_then(parse_timestamp);
        if parsed.is_some() || map.get(key).is_some_and(Value::is_null) {
            map.remove(key);
        }
        // Anything else under the key (an unparseable string, a number) stays an extra.
        parsed
    };
    let created_at = timestamp("created_at");
    let updated_at = timestamp("updated_at");
    Ok((
        User::restore(UserId::new(id), name, email, created_at, updated_at),
        map,
    ))
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

/// RFC 3339 in UTC with microseconds, e.g. `2024-05-01T10:00:00.123456Z`.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            user.created_at().map(format_timestamp).unwrap(),
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
