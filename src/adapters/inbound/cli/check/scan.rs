//! Reading a users file as text: where each top-level record starts and ends, where a key
//! sits inside a record, and line and column numbers for both.
//!
//! serde_json reports no positions for the values it hands over, so the top-level array is
//! walked here one element at a time, each element parsed by serde_json on its own; the
//! positions a report needs come from the offsets between them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

pub use crate::adapters::outbound::users_file::{Cursor, FieldValue, Key, Kind, Position};

/// One top-level element: an object's entries in file order (repeated keys included), or
/// just the kind of anything else. Text is borrowed from the file unless it has escapes.
#[derive(Debug)]
pub enum Element<'a> {
    Object(Vec<(Key<'a>, Field<'a>)>),
    Other(Kind),
}

/// A value inside a record: its text when it is a string, else only its kind.
#[derive(Debug)]
pub enum Field<'a> {
    Text(Cow<'a, str>),
    Other(Kind),
}

impl FieldValue for Field<'_> {
    fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Text(text) => Some(Cow::Borrowed(text)),
            Self::Other(_) => None,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Self::Text(_) => Kind::Text,
            Self::Other(kind) => *kind,
        }
    }
}

/// A top-level element and the byte range it spans.
#[derive(Debug)]
pub struct Located<'a> {
    pub start: usize,
    pub end: usize,
    pub element: Element<'a>,
}

/// The elements of the top-level array of `bytes`, which must be valid JSON whose first
/// token is `[` (checked first with serde_json, so that a broken file gets exactly the
/// verdict the store would give it).
pub fn elements(bytes: &[u8]) -> Elements<'_> {
    let mut offset = skip_whitespace(bytes, 0);
    let mut done = false;
    if bytes.get(offset) == Some(&b'[') {
        offset = skip_whitespace(bytes, offset + 1);
        done = bytes.get(offset) == Some(&b']');
    } else {
        offset = bytes.len();
    }
    Elements { bytes, offset, done }
}

/// Iterator behind [`elements`].
pub struct Elements<'a> {
    bytes: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Located<'a>, serde_json::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.offset >= self.bytes.len() {
            return None;
        }
        let start = self.offset;
        let mut stream =
            serde_json::Deserializer::from_slice(&self.bytes[start..]).into_iter::<Element<'a>>();
        let element = match stream.next()? {
            Ok(element) => element,
            Err(err) => {
                self.done = true;
                return Some(Err(err));
            }
        };
        let end = start + stream.byte_offset();
        let after = skip_whitespace(self.bytes, end);
        match self.bytes.get(after) {
            Some(b',') => self.offset = skip_whitespace(self.bytes, after + 1),
            _ => self.done = true,
        }
        Some(Ok(Located { start, end, element }))
    }
}

fn skip_whitespace(bytes: &[u8], mut offset: usize) -> usize {
    while bytes.get(offset).is_some_and(u8::is_ascii_whitespace) {
        offset += 1;
    }
    offset
}

/// The offset, inside `object` (one object's text), of the last top-level occurrence of
/// each key: the one a JSON reader keeps. One pass, however many keys the object has.
pub fn key_offsets(object: &[u8]) -> HashMap<Cow<'_, str>, usize> {
    let mut found = HashMap::new();
    let mut depth = 0usize;
    let mut expecting_key = false;
    let mut at = 0;
    while at < object.len() {
        match object[at] {
            b'"' => {
                let end = string_end(object, at);
                if depth == 1 && expecting_key {
                    expecting_key = false;
                    if let Some(key) = key_text(&object[at..end]) {
                        found.insert(key, at);
                    }
                }
                at = end;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                expecting_key = depth == 1 && object[at] == b'{';
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => expecting_key = depth == 1,
            _ => {}
        }
        at += 1;
    }
    found
}

/// The offset just past the string that opens at `start`.
fn string_end(text: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while at < text.len() {
        match text[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    text.len()
}

/// The text of the quoted JSON string `quoted`, escapes decoded.
fn key_text(quoted: &[u8]) -> Option<Cow<'_, str>> {
    let inner = &quoted[1..quoted.len().saturating_sub(1).max(1)];
    if !inner.contains(&b'\\') {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    }
    serde_json::from_slice::<String>(quoted).ok().map(Cow::Owned)
}

/// The visit methods for values of which only the kind is kept: scalars and arrays
/// (drained, so that nothing is built for them).
macro_rules! keep_only_the_kind {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Kind::Boolean.into())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Kind::Number.into())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Kind::Number.into())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Kind::Number.into())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Kind::Null.into())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Kind::Array.into())
        }
    };
}

impl From<Kind> for Element<'_> {
    fn from(kind: Kind) -> Self {
        Self::Other(kind)
    }
}

impl From<Kind> for Field<'_> {
    fn from(kind: Kind) -> Self {
        Self::Other(kind)
    }
}

impl<'de> Deserialize<'de> for Element<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(5);
        while let Some(key) = map.next_key::<Key<'de>>()? {
            entries.push((key, map.next_value::<Field<'de>>()?));
        }
        Ok(Element::Object(entries))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Element::Other(Kind::Text))
    }
    keep_only_the_kind!();
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Text(Cow::Borrowed(text)))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Field::Text(Cow::Owned(text.to_owned())))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Other(Kind::Object))
    }
    keep_only_the_kind!();
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Key::borrowed(text))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Key::owned(text))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(text: &str) -> Vec<(usize, usize)> {
        elements(text.as_bytes())
            .map(|located| {
                let located = located.unwrap();
                (located.start, located.end)
            })
            .collect()
    }

    #[test]
    fn elements_are_found_with_their_byte_ranges() {
        let text = "[ 1,{\"a\": [2, 3]} ,\n\"x\" ,null]";
        let ranges = starts(text);
        let pieces: Vec<&str> = ranges.iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(pieces, ["1", "{\"a\": [2, 3]}", "\"x\"", "null"]);
    }

    #[test]
    fn an_empty_array_has_no_elements() {
        assert!(starts(" [ \n ] ").is_empty());
        assert!(starts("[]").is_empty());
    }

    #[test]
    fn elements_say_what_they_are() {
        let text = r#"[{"id": "a\u0041", "n": 1, "o": {"k": [1]}, "id": null}, [1, [2]], true, "s"]"#;
        let found: Vec<Element<'_>> = elements(text.as_bytes()).map(|e| e.unwrap().element).collect();
        let Element::Object(entries) = &found[0] else {
            panic!("an object: {found:?}")
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["id", "n", "o", "id"]);
        assert!(matches!(&entries[0].1, Field::Text(t) if t == "aA"));
        assert!(matches!(entries[1].1, Field::Other(Kind::Number)));
        assert!(matches!(entries[2].1, Field::Other(Kind::Object)));
        assert!(matches!(entries[3].1, Field::Other(Kind::Null)));
        assert!(matches!(found[1], Element::Other(Kind::Array)));
        assert!(matches!(found[2], Element::Other(Kind::Boolean)));
        assert!(matches!(found[3], Element::Other(Kind::Text)));
    }

    #[test]
    fn key_offsets_find_the_last_top_level_key_only() {
        let object = r#"{"email": 1, "x": {"name": "n"}, "s": "\"name\"", "na\u006de": 2, "name": 3}"#;
        let last = object.rfind("\"name\"").unwrap();
        let offsets = key_offsets(object.as_bytes());
        assert_eq!(offsets.get("name"), Some(&last));
        assert_eq!(offsets.get("email"), Some(&1));
        assert_eq!(offsets.get("id"), None);
        let escaped = r#"{"a": [{"id": 1}], "i\u0064": 2}"#;
        assert_eq!(
            key_offsets(escaped.as_bytes()).get("id").copied(),
            escaped.find("\"i\\")
        );
    }
}
