//! `roster import FILE` and `roster export FILE`: move a user list between a JSON file and
//! the database, losslessly.
//!
//! The file side lives here: reading a list in the data file's format (users, the keys
//! Roster does not model, naive timestamps read as UTC, records that are not users) and
//! writing one back in the form the file store writes, atomically. The database side is
//! [`crate::adapters::outbound::postgres::transfer`].
//!
//! Neither side builds the list as values: an import reads the file once into memory and
//! walks its records as slices of that text (the database side streams them through
//! `COPY`), and an export writes each record as it arrives. Values Roster does not model
//! stay JSON text throughout, re-indented without being parsed into trees, so a value of
//! any depth is kept (a parser's recursion limit would refuse one nested 200 deep).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use chrono::Datelike;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::adapters::outbound::json_file::{is_blank, parse_timestamp, replace_file};
use crate::adapters::outbound::postgres::transfer::{
    ExportedRecord, ExportedUser, FileRecord, FileUser, Records,
};
use crate::adapters::outbound::postgres::{self, transfer as database};
use crate::config::{Command, Config};
use crate::domain::{timestamp_bytes, timestamp_text, to_micros};

/// Progress is reported every this many records.
const PROGRESS_EVERY: usize = 10_000;

/// Why a transfer failed, as one line for a person.
#[derive(Debug, thiserror::Error)]
pub enum TransferFailure {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error(transparent)]
    Connect(#[from] postgres::ConnectError),
    #[error(transparent)]
    Database(#[from] database::TransferError),
}

/// What a transfer moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub users: usize,
    /// Records that are not users, kept in place and hidden from the API.
    pub hidden: usize,
}

/// Runs an import or export subcommand.
pub async fn run(command: Command, config: Config) -> ExitCode {
    let Some(url) = config.database_url.as_ref() else {
        eprintln!("roster: import and export need --database-url (or DATABASE_URL)");
        return ExitCode::from(2);
    };
    let wait = config.database_wait;
    let (verb, file, result) = match command {
        Command::Import { file, replace } => {
            let result = import_file(&file, url.as_str(), wait, replace, &print_progress("imported")).await;
            ("import", file, result)
        }
        Command::Export { file } => {
            let result = export_file(&file, url.as_str(), wait, &print_progress("exported")).await;
            ("export", file, result)
        }
        Command::Check { .. } => {
            eprintln!("roster: check does not use the database");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(moved) => {
            eprintln!(
                "roster: {verb}ed {} users and {} hidden records ({})",
                moved.users,
                moved.hidden,
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("roster: cannot {verb} {}: {err}", file.display());
            ExitCode::FAILURE
        }
    }
}

fn print_progress(verb: &'static str) -> impl Fn(usize, usize) + Send + Sync {
    move |done, total| {
        if total >= PROGRESS_EVERY && (done % PROGRESS_EVERY == 0 || done == total) {
            eprintln!("roster: {verb} {done} of {total} records");
        }
    }
}

/// Reads `path` and writes its records into the database at `url`. With `replace`,
/// whatever the database holds is replaced; without it, a non-empty database is refused.
/// `progress(done, total)` hears of each chunk written.
///
/// # Errors
/// [`TransferFailure`]; the database is unchanged then.
pub async fn import_file(
    path: &Path,
    url: &str,
    wait: Duration,
    replace: bool,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<Moved, TransferFailure> {
    let bytes = fs::read(path).map_err(|err| TransferFailure::Read {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })?;
    let records = parse_records(&bytes).map_err(|reason| TransferFailure::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    let (mut client, location) = postgres::connect_migrated(url, wait).await?;
    let total = records.len();
    let (users, hidden) =
        database::import(&mut client, &records, replace, &mut |done| progress(done, total)).await?;
    tracing::info!(database = %location, records = total, "imported a user list");
    Ok(Moved { users, hidden })
}

/// Writes every record of the database at `url` to `path`, in the file store's format,
/// replacing the file atomically.
///
/// # Errors
/// [`TransferFailure`]; an existing file is unchanged then.
pub async fn export_file(
    path: &Path,
    url: &str,
    wait: Duration,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<Moved, TransferFailure> {
    let (mut client, _) = postgres::connect_migrated(url, wait).await?;
    let (records, arriving) = mpsc::channel(8);
    let target = path.to_path_buf();
    // The file is written on a thread of its own while the rows arrive.
    let writer = tokio::task::spawn_blocking(move || write_atomically(&target, arriving));
    let exported = database::export(&mut client, &mut |done, total| progress(done, total), records).await;
    let written = writer.await;
    exported?;
    let failed = |reason: String| TransferFailure::Write {
        path: path.to_path_buf(),
        reason,
    };
    written
        .map_err(|err| failed(err.to_string()))?
        .map_err(|err| failed(err.to_string()))
}

/// A user list: every element of the file's array as a slice of its text.
#[derive(Debug, Default)]
pub struct RecordList<'a> {
    items: Vec<&'a RawValue>,
}

impl Records for RecordList<'_> {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn each(&self) -> Box<dyn Iterator<Item = FileRecord<'_>> + Send + '_> {
        Box::new(self.items.iter().map(|item| classify(item)))
    }
}

/// Reads a user list: a JSON array whose objects with string `id`, `name` and `email` are
/// users and whose other elements are kept as they are. Empty contents are an empty list.
///
/// # Errors
/// A reason when the contents are not a JSON array.
pub fn parse_records(bytes: &[u8]) -> Result<RecordList<'_>, String> {
    if is_blank(bytes) {
        return Ok(RecordList::default());
    }
    let items: Vec<&RawValue> = serde_json::from_slice(bytes).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => "the top level is not a JSON array".to_owned(),
        _ => format!("not valid JSON: {err}"),
    })?;
    Ok(RecordList { items })
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

/// An object's members in order, each value as its JSON text. A repeated key keeps its
/// first place and its last value, as the file store reads it.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Objects;
        impl<'de> Visitor<'de> for Objects {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
                // Built only for an object with many keys, where looking along would cost.
                let mut places: Option<HashMap<Cow<'de, str>, usize>> = None;
                while let Some((Text(key), value)) = map.next_entry::<Text<'de>, &'de RawValue>()? {
                    if members.len() >= 16 && places.is_none() {
                        places = Some(
                            members
                                .iter()
                                .enumerate()
                                .map(|(at, (key, _))| (key.clone(), at))
                                .collect(),
                        );
                    }
                    let place = match &places {
                        Some(places) => places.get(&key).copied(),
                        None => members.iter().position(|(known, _)| *known == key),
                    };
                    match place {
                        Some(at) => members[at].1 = value,
                        None => {
                            if let Some(places) = &mut places {
                                places.insert(key.clone(), members.len());
                            }
                            members.push((key, value));
                        }
                    }
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Objects)
    }
}

/// The text of a JSON string value, or `None` for any other value.
fn text_of(value: &RawValue) -> Option<Cow<'_, str>> {
    if !value.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<Text<'_>>(value.get())
        .ok()
        .map(|text| text.0)
}

/// A timestamp the database keeps: years 1 to 9999 in UTC, as the file store writes them.
fn storable_timestamp(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    parse_timestamp(text)
        .map(to_micros)
        .filter(|at| (1..=9999).contains(&at.year()))
}

fn classify(item: &RawValue) -> FileRecord<'_> {
    // The list was read as JSON, so an element that starts like an object is one.
    let Some(Members(members)) = item
        .get()
        .starts_with('{')
        .then(|| serde_json::from_str::<Members<'_>>(item.get()).ok())
        .flatten()
    else {
        return FileRecord::Hidden(item);
    };
    let text = |key: &str| {
        members
            .iter()
            .find(|(known, _)| known == key)
            .and_then(|(_, value)| text_of(value))
    };
    let (Some(id), Some(name), Some(email)) = (text("id"), text("name"), text("email")) else {
        return FileRecord::Hidden(item);
    };
    let mut user = FileUser {
        id,
        name,
        email,
        created_at: None,
        updated_at: None,
        extra: Vec::new(),
    };
    for (key, value) in members {
        match key.as_ref() {
            "id" | "name" | "email" => {}
            field @ ("created_at" | "updated_at") => {
                // To the microsecond, as the file store keeps and writes them.
                match text_of(value).as_deref().and_then(storable_timestamp) {
                    Some(at) if field == "created_at" => user.created_at = Some(at),
                    Some(at) => user.updated_at = Some(at),
                    // An unreadable or null timestamp is kept as it was.
                    None => user.extra.push((key, value)),
                }
            }
            _ => user.extra.push((key, value)),
        }
    }
    FileRecord::User(user)
}

/// Writes the records arriving on `arriving` over `path` the way the store replaces its
/// file (a temporary file beside it, fsynced, renamed into place, the folder fsynced), so a
/// reader never sees half a list: a two-space indented array, each user's fields first and
/// its other keys after them, with a trailing newline. Nothing is replaced unless the
/// sender ends with the empty batch that says the list is complete.
fn write_atomically(path: &Path, mut arriving: mpsc::Receiver<Vec<ExportedRecord>>) -> io::Result<Moved> {
    let mut moved = Moved::default();
    let replaced = replace_file(path, |out| {
        let mut first = true;
        loop {
            let Some(batch) = arriving.blocking_recv() else {
                return Err(io::Error::other(
                    "the database stopped sending before the end of the list",
                ));
            };
            if batch.is_empty() {
                break;
            }
            for record in &batch {
                out.write_all(if first { b"[\n  " } else { b",\n  " })?;
                first = false;
                match record {
                    ExportedRecord::Hidden(json) => {
                        moved.hidden += 1;
                        write_json(out, json, 1)?;
                    }
                    ExportedRecord::User(row) => {
                        moved.users += 1;
                        let user = ExportedUser::of(row).map_err(io::Error::other)?;
                        write_user(out, &user)?;
                    }
                }
            }
        }
        out.write_all(if first { b"[]\n" } else { b"\n]\n" })
    })?;
    replaced.folder_synced?;
    Ok(moved)
}

/// One user at the list's first level of indentation: its fields, then its other keys (a
/// column that now has a value wins over the text it was imported from).
fn write_user(out: &mut dyn Write, user: &ExportedUser<'_>) -> io::Result<()> {
    out.write_all(b"{\n    \"id\": ")?;
    serde_json::to_writer(&mut *out, user.id)?;
    out.write_all(b",\n    \"name\": ")?;
    serde_json::to_writer(&mut *out, user.name)?;
    out.write_all(b",\n    \"email\": ")?;
    serde_json::to_writer(&mut *out, user.email)?;
    let mut written = vec!["id", "name", "email"];
    for (key, at) in [("created_at", user.created_at), ("updated_at", user.updated_at)] {
        if let Some(at) = at {
            write!(out, ",\n    \"{key}\": \"")?;
            match timestamp_bytes(at) {
                Some(text) => out.write_all(&text)?,
                None => out.write_all(timestamp_text(at).as_bytes())?,
            }
            out.write_all(b"\"")?;
            written.push(key);
        }
    }
    let members = match serde_json::from_str::<Members<'_>>(user.extra) {
        Ok(Members(members)) => members,
        // Someone stored another kind of value: keep it rather than drop it.
        Err(_) => {
            let whole: &RawValue = serde_json::from_str(user.extra).map_err(io::Error::other)?;
            vec![(Cow::Borrowed("extra"), whole)]
        }
    };
    for (key, value) in members {
        if written.contains(&key.as_ref()) {
            continue;
        }
        out.write_all(b",\n    ")?;
        serde_json::to_writer(&mut *out, key.as_ref())?;
        out.write_all(b": ")?;
        write_json(out, value.get(), 2)?;
    }
    out.write_all(b"\n  }")
}

/// Writes JSON text as `serde_json`'s pretty printer lays it out, two spaces a level,
/// starting at `level`: tokens are copied as they are (strings and numbers verbatim), only
/// the whitespace between them changes. It keeps no stack, so any depth is fine.
fn write_json(out: &mut dyn Write, json: &str, level: usize) -> io::Result<()> {
    let bytes = json.as_bytes();
    let mut depth = level;
    // After an opening bracket: whether its first member is still to come.
    let mut opened = false;
    let mut at = 0;
    let indent = |out: &mut dyn Write, depth: usize| -> io::Result<()> {
        out.write_all(b"\n")?;
        for _ in 0..depth {
            out.write_all(b"  ")?;
        }
        Ok(())
    };
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

    fn users<'a>(records: &'a RecordList<'_>) -> Vec<FileRecord<'a>> {
        records.each().collect()
    }

    #[test]
    fn records_are_users_or_hidden_with_unknown_keys_and_odd_timestamps_kept() {
        let list = parse_records(
            br#"[7, {"id":"a","name":"A","email":"a@x","role":"admin","created_at":"yesterday",
                 "updated_at":"2024-05-01T10:00:00.123456", "far": 1, "far": 2}, {"id":5,"name":"B","email":"b@x"},
                 {"id":"c","name":"C\u00e9","email":"c@x","created_at":"+20000-01-01T00:00:00","updated_at":null}]"#,
        )
        .unwrap();
        let records = users(&list);
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
            "a year the database cannot keep stays text: {far:?}"
        );
        assert!(parse_records(b"  \n").unwrap().is_empty());
        assert_eq!(
            parse_records(br#"{"a":1}"#).unwrap_err(),
            "the top level is not a JSON array"
        );
        assert!(parse_records(b"[1,").unwrap_err().starts_with("not valid JSON"));
        let deep = format!("[{}{}]", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(parse_records(deep.as_bytes()).unwrap().len(), 1);
    }

    fn written(json: &str, level: usize) -> String {
        let mut out = Vec::new();
        write_json(&mut out, json, level).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_text_is_laid_out_as_serde_json_pretty_prints_it() {
        let samples = [
            r#"{"a": [1, 2.50, {"b": null, "c": []}, {}], "d": "x, ] } \" y", "e": {"f": [[true]]}}"#,
            "[]",
            "\"text\"",
            "-1.5e3",
            r#"[{"k\"ey": "v"}, [[], [{}]]]"#,
        ];
        for sample in samples {
            let value: serde_json::Value = serde_json::from_str(sample).unwrap();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            // Numbers are kept as written; serde_json would normalise 2.50 and -1.5e3.
            let pretty = pretty.replace("2.5,", "2.50,").replace("-1500.0", "-1.5e3");
            assert_eq!(written(sample, 0), pretty, "{sample}");
        }
        assert_eq!(written("[1]", 2), "[\n      1\n    ]");
        let deep = format!("{}{}", "[".repeat(3000), "]".repeat(3000));
        assert!(written(&deep, 0).ends_with("\n]"));
    }

    #[test]
    fn written_users_look_like_the_file_stores_records() {
        let at = chrono::DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let user = ExportedUser {
            id: "a",
            name: "A \"quoted\"",
            email: "a@x",
            created_at: Some(at),
            updated_at: None,
            extra: r#"{"id": "old", "tags": ["x"], "created_at": "yesterday", "updated_at": "soon"}"#,
        };
        let mut out = Vec::new();
        write_user(&mut out, &user).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n    \"id\": \"a\",\n    \"name\": \"A \\\"quoted\\\"\",\n    \"email\": \"a@x\",\n    \
             \"created_at\": \"2024-05-01T10:00:00.000000Z\",\n    \"tags\": [\n      \"x\"\n    ],\n    \
             \"updated_at\": \"soon\"\n  }"
        );
        let odd = ExportedUser {
            extra: "[1]",
            created_at: None,
            ..user
        };
        let mut out = Vec::new();
        write_user(&mut out, &odd).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("\"extra\": [\n      1\n    ]\n  }")
        );
    }

    #[tokio::test]
    async fn a_list_is_replaced_only_when_the_sender_says_it_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        fs::write(&path, "[]\n").unwrap();
        let (send, arriving) = mpsc::channel(2);
        send.send(vec![ExportedRecord::Hidden("1".into())]).await.unwrap();
        drop(send);
        let target = path.clone();
        let cut = tokio::task::spawn_blocking(move || write_atomically(&target, arriving))
            .await
            .unwrap();
        assert!(cut.is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "[]\n");

        let (send, arriving) = mpsc::channel(2);
        send.send(vec![
            ExportedRecord::Hidden("{\"a\": [1]}".into()),
            ExportedRecord::Hidden("2".into()),
        ])
        .await
        .unwrap();
        send.send(Vec::new()).await.unwrap();
        let target = path.clone();
        let moved = tokio::task::spawn_blocking(move || write_atomically(&target, arriving))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(moved, Moved { users: 0, hidden: 2 });
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[\n  {\n    \"a\": [\n      1\n    ]\n  },\n  2\n]\n"
        );
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["out.json"], "no temporary file is left behind");
    }
}
