//! Writing a users file: the array, each user's fields and kept keys, and kept values laid
//! out as serde_json's pretty printer lays them out (two spaces a level), without
//! recursion, whatever their depth.

use std::io::{self, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serializer;
use serde::ser::Error as _;
use serde_json::Value;

use crate::domain::timestamp_text;

/// The text of [`timestamp_text`] as fixed-width ASCII, built without allocating or going
/// through a formatter (a file's commit writes two per user); `None` for the instants that
/// do not fit it (years outside 0 to 9999, a leap second), which chrono writes instead.
pub fn timestamp_bytes(at: DateTime<Utc>) -> Option<[u8; 27]> {
    // The naive form once: each accessor on a `DateTime` would work out its offset again.
    let at = at.naive_utc();
    let (year, nanos) = (at.year(), at.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let fields = [
        (0, 4, year.unsigned_abs()),
        (5, 2, at.month()),
        (8, 2, at.day()),
        (11, 2, at.hour()),
        (14, 2, at.minute()),
        (17, 2, at.second()),
        (20, 6, nanos / 1_000),
    ];
    for (start, width, mut value) in fields {
        for digit in text[start..start + width].iter_mut().rev() {
            // A remainder of ten fits a byte.
            *digit = b'0' + u8::try_from(value % 10).unwrap_or(0);
            value /= 10;
        }
    }
    Some(text)
}

/// Serialises a timestamp as the file writes it, without a `String` per timestamp.
///
/// # Errors
/// The serializer's.
pub fn serialize_timestamp<S: Serializer>(at: DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    match timestamp_bytes(at) {
        Some(bytes) => serializer.serialize_str(std::str::from_utf8(&bytes).map_err(S::Error::custom)?),
        None => serializer.serialize_str(&timestamp_text(at)),
    }
}

/// A kept value: parsed, or as JSON text.
#[derive(Clone, Copy, Debug)]
pub enum Json<'a> {
    Value(&'a Value),
    Text(&'a str),
}

impl Json<'_> {
    /// Writes the value at `level` (its first line is not indented; the lines after it are).
    ///
    /// # Errors
    /// The writer's.
    pub fn write_to<W: Write + ?Sized>(self, out: &mut W, level: usize) -> io::Result<()> {
        match self {
            Self::Value(value) => write_value(out, value, level),
            Self::Text(text) => write_json(out, text, level),
        }
    }
}

/// Writes the separator before a top-level element: the array's opening before the first.
///
/// # Errors
/// The writer's.
pub fn element_start<W: Write + ?Sized>(out: &mut W, first: bool) -> io::Result<()> {
    out.write_all(if first { b"[\n  " } else { b",\n  " })
}

/// Ends the array (an empty one when no element was written) and the file.
///
/// # Errors
/// The writer's.
pub fn list_end<W: Write + ?Sized>(out: &mut W, empty: bool) -> io::Result<()> {
    out.write_all(if empty { b"[]\n" } else { b"\n]\n" })
}

/// A user's own fields, as the file writes them.
#[derive(Clone, Copy, Debug)]
pub struct UserFields<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// One user at the list's first level: its fields, then the keys it keeps. A timestamp
/// the user has wins over text kept under the same key (a change's time replaces a kept
/// `null`); a kept key that repeats one of the fields is not written twice.
///
/// # Errors
/// The writer's.
pub fn write_user<'k, W: Write + ?Sized>(
    out: &mut W,
    user: &UserFields<'_>,
    kept: impl Iterator<Item = (&'k str, Json<'k>)>,
) -> io::Result<()> {
    out.write_all(b"{\n    \"id\": ")?;
    write_string(out, user.id)?;
    out.write_all(b",\n    \"name\": ")?;
    write_string(out, user.name)?;
    out.write_all(b",\n    \"email\": ")?;
    write_string(out, user.email)?;
    for (key, at) in [("created_at", user.created_at), ("updated_at", user.updated_at)] {
        if let Some(at) = at {
            out.write_all(b",\n    \"")?;
            out.write_all(key.as_bytes())?;
            out.write_all(b"\": \"")?;
            match timestamp_bytes(at) {
                Some(text) => out.write_all(&text)?,
                None => out.write_all(timestamp_text(at).as_bytes())?,
            }
            out.write_all(b"\"")?;
        }
    }
    for (key, value) in kept {
        let shadowed = match key {
            "id" | "name" | "email" => true,
            "created_at" => user.created_at.is_some(),
            "updated_at" => user.updated_at.is_some(),
            _ => false,
        };
        if shadowed {
            continue;
        }
        out.write_all(b",\n    ")?;
        write_string(out, key)?;
        out.write_all(b": ")?;
        value.write_to(out, 2)?;
    }
    out.write_all(b"\n  }")
}

fn write_string<W: Write + ?Sized>(out: &mut W, text: &str) -> io::Result<()> {
    serde_json::to_writer(&mut *out, text).map_err(io::Error::other)
}

fn indent<W: Write + ?Sized>(out: &mut W, depth: usize) -> io::Result<()> {
    out.write_all(b"\n")?;
    for _ in 0..depth {
        out.write_all(b"  ")?;
    }
    Ok(())
}

/// An array or object being written: what is left of it, and whether any of it was.
enum Open<'a> {
    Array(std::slice::Iter<'a, Value>, bool),
    Object(serde_json::map::Iter<'a>, bool),
}

/// Writes a parsed value as serde_json's pretty printer does, starting at `level`, with a
/// stack of its own instead of recursion.
///
/// # Errors
/// The writer's.
pub fn write_value<W: Write + ?Sized>(out: &mut W, value: &Value, level: usize) -> io::Result<()> {
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut next = Some(value);
    loop {
        if let Some(value) = next.take() {
            match value {
                Value::Array(items) if !items.is_empty() => {
                    out.write_all(b"[")?;
                    open.push(Open::Array(items.iter(), false));
                }
                Value::Object(map) if !map.is_empty() => {
                    out.write_all(b"{")?;
                    open.push(Open::Object(map.iter(), false));
                }
                Value::Array(_) => out.write_all(b"[]")?,
                Value::Object(_) => out.write_all(b"{}")?,
                scalar => serde_json::to_writer(&mut *out, scalar).map_err(io::Error::other)?,
            }
        }
        let depth = level + open.len();
        let Some(top) = open.last_mut() else {
            return Ok(());
        };
        let (item, started) = match top {
            Open::Array(items, started) => (items.next().map(|item| (None, item)), started),
            Open::Object(members, started) => (members.next().map(|(key, item)| (Some(key), item)), started),
        };
        match item {
            Some((key, item)) => {
                if *started {
                    out.write_all(b",")?;
                }
                *started = true;
                indent(out, depth)?;
                if let Some(key) = key {
                    write_string(out, key)?;
                    out.write_all(b": ")?;
                }
                next = Some(item);
            }
            None => {
                let closing: &[u8] = match open.pop() {
                    Some(Open::Array(..)) => b"]",
                    _ => b"}",
                };
                indent(out, depth - 1)?;
                out.write_all(closing)?;
            }
        }
    }
}

/// Writes JSON text as serde_json's pretty printer lays it out, starting at `level`:
/// tokens are copied as they are (strings and numbers verbatim), only the whitespace
/// between them changes. It keeps no stack, so any depth is fine.
///
/// # Errors
/// The writer's.
pub fn write_json<W: Write + ?Sized>(out: &mut W, json: &str, level: usize) -> io::Result<()> {
    let bytes = json.as_bytes();
    let mut depth = level;
    // After an opening bracket: whether its first member is still to come.
    let mut opened = false;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        let start = at;
        at += 1;
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => continue,
            b':' => {
                out.write_all(b": ")?;
                continue;
            }
            b',' => {
                out.write_all(b",")?;
                indent(out, depth)?;
                continue;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if !opened {
                    indent(out, depth)?;
                }
                opened = false;
                out.write_all(&[byte])?;
                continue;
            }
            _ => {}
        }
        if opened {
            indent(out, depth)?;
            opened = false;
        }
        match byte {
            b'[' | b'{' => {
                out.write_all(&[byte])?;
                depth += 1;
                opened = true;
                continue;
            }
            b'"' => {
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                at = (at + 1).min(bytes.len());
            }
            _ => {
                while at < bytes.len()
                    && !matches!(
                        bytes[at],
                        b',' | b']' | b'}' | b':' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    at += 1;
                }
            }
        }
        out.write_all(&bytes[start..at])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_bytes_are_chronos_rfc3339_with_microseconds_for_every_instant_they_cover() {
        let chrono_text = |at: DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let day = |year, month, date| {
            chrono::NaiveDate::from_ymd_opt(year, month, date)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
        };
        // From the last second of year -1 to the first of year 10000.
        let (first, last) = (day(0, 1, 1).timestamp() - 1, day(10_000, 1, 1).timestamp());
        // A fixed walk over the whole range, seconds and sub-seconds varied, plus the edges.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut instants: Vec<(i64, u32)> = vec![(first, 999_999_999), (last, 0), (0, 0)];
        for _ in 0..200_000 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let span = u64::try_from(last - first).unwrap();
            let seconds = first + i64::try_from((state >> 11) % (span + 1)).unwrap();
            let nanos = u32::try_from((state >> 3) % 1_000_000_000).unwrap();
            instants.push((seconds, nanos));
        }
        for (seconds, nanos) in instants {
            let at = DateTime::from_timestamp(seconds, nanos).unwrap();
            if let Some(bytes) = timestamp_bytes(at) {
                assert_eq!(
                    std::str::from_utf8(&bytes).unwrap(),
                    chrono_text(at),
                    "{seconds} s {nanos} ns"
                );
            }
            assert_eq!(timestamp_text(at), chrono_text(at), "{seconds} s {nanos} ns");
        }
        // A leap second, which only chrono writes.
        let leap = DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap();
        assert_eq!(timestamp_bytes(leap), None);
        assert_eq!(timestamp_bytes(day(10_000, 1, 1)), None);
        assert_eq!(timestamp_bytes(day(-1, 12, 31)), None);
        assert!(timestamp_bytes(day(0, 1, 1)).is_some());
    }

    fn text(json: &str, level: usize) -> String {
        let mut out = Vec::new();
        write_json(&mut out, json, level).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn value(value: &Value, level: usize) -> String {
        let mut out = Vec::new();
        write_value(&mut out, value, level).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_and_json_text_are_laid_out_as_serde_json_pretty_prints_them() {
        let samples = [
            r#"{"a": [1, 2.50, {"b": null, "c": []}, {}], "d": "x, ] } \" y", "e": {"f": [[true]]}}"#,
            "[]",
            "{}",
            "\"text\"",
            "-1.5e3",
            r#"[{"k\"ey": "v"}, [[], [{}]]]"#,
        ];
        for sample in samples {
            let parsed: Value = serde_json::from_str(sample).unwrap();
            let pretty = serde_json::to_string_pretty(&parsed).unwrap();
            assert_eq!(value(&parsed, 0), pretty, "{sample}");
            // Numbers are kept as written; serde_json would normalise 2.50 and -1.5e3.
            let pretty = pretty.replace("2.5,", "2.50,").replace("-1500.0", "-1.5e3");
            assert_eq!(text(sample, 0), pretty, "{sample}");
        }
        assert_eq!(text("[1]", 2), "[\n      1\n    ]");
        assert_eq!(value(&serde_json::json!([1]), 2), "[\n      1\n    ]");
        let deep = format!("{}{}", "[".repeat(3000), "]".repeat(3000));
        assert!(text(&deep, 0).ends_with("\n]"));
    }

    #[test]
    fn a_timestamp_the_user_has_wins_over_text_kept_under_its_key() {
        let at = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let user = UserFields {
            id: "a",
            name: "A \"quoted\"",
            email: "a@x",
            created_at: Some(at),
            updated_at: None,
        };
        let null = Value::Null;
        let kept = [
            ("id", Json::Text("\"old\"")),
            ("tags", Json::Text("[\"x\"]")),
            ("created_at", Json::Text("\"yesterday\"")),
            ("updated_at", Json::Value(&null)),
        ];
        let mut out = Vec::new();
        write_user(&mut out, &user, kept.into_iter()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n    \"id\": \"a\",\n    \"name\": \"A \\\"quoted\\\"\",\n    \"email\": \"a@x\",\n    \
             \"created_at\": \"2024-05-01T10:00:00.000000Z\",\n    \"tags\": [\n      \"x\"\n    ],\n    \
             \"updated_at\": null\n  }"
        );
    }
}
