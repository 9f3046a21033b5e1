//! `roster import FILE` and `roster export FILE`: move a user list between a JSON file and
//! the database, losslessly.
//!
//! The file side lives here: reading a list in the data file's format (users, the keys
//! Roster does not model, naive timestamps read as UTC, records that are not users) and
//! writing one back in the form the file store writes, atomically. The database side is
//! [`crate::adapters::postgres::transfer`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use crate::adapters::json_file::{is_blank, parse_timestamp, replace_file};
use crate::adapters::postgres::transfer::{FileRecord, FileUser};
use crate::adapters::postgres::{self, transfer as database};
use crate::config::{Command, Config};
use crate::domain::{timestamp_text, to_micros};

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

impl Moved {
    fn of(records: &[FileRecord]) -> Self {
        let users = records
            .iter()
            .filter(|r| matches!(r, FileRecord::User(_)))
            .count();
        Self {
            users,
            hidden: records.len() - users,
        }
    }
}

/// Runs an import or export subcommand.
pub async fn run(command: Command, config: Config) -> ExitCode {
    let Some(url) = config.database_url.as_ref() else {
        eprintln!("roster: import and export need --database-url (or DATABASE_URL)");
        return ExitCode::from(2);
    };
    let wait = Duration::from_secs(config.database_wait);
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
    database::import(&mut client, &records, replace, &mut |done| progress(done, total)).await?;
    tracing::info!(database = %location, records = total, "imported a user list");
    Ok(Moved::of(&records))
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
    let records = database::export(&mut client).await?;
    write_atomically(path, &records, progress).map_err(|err| TransferFailure::Write {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })?;
    Ok(Moved::of(&records))
}

/// Reads a user list: a JSON array whose objects with string `id`, `name` and `email` are
/// users and whose other elements are kept as they are. Empty contents are an empty list.
///
/// # Errors
/// A reason when the contents are not a JSON array.
pub fn parse_records(bytes: &[u8]) -> Result<Vec<FileRecord>, String> {
    if is_blank(bytes) {
        return Ok(Vec::new());
    }
    let items: Vec<Value> = serde_json::from_slice(bytes).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => "the top level is not a JSON array".to_owned(),
        _ => format!("not valid JSON: {err}"),
    })?;
    Ok(items.into_iter().map(classify).collect())
}

fn classify(value: Value) -> FileRecord {
    let Value::Object(record) = value else {
        return FileRecord::Hidden(value);
    };
    let text = |key: &str| record.get(key).is_some_and(Value::is_string);
    if !(text("id") && text("name") && text("email")) {
        return FileRecord::Hidden(Value::Object(record));
    }
    let mut user = FileUser {
        id: String::new(),
        name: String::new(),
        email: String::new(),
        created_at: None,
        updated_at: None,
        extra: Map::new(),
    };
    for (key, value) in record {
        match (key.as_str(), value) {
            ("id", Value::String(v)) => user.id = v,
            ("name", Value::String(v)) => user.name = v,
            ("email", Value::String(v)) => user.email = v,
            (field @ ("created_at" | "updated_at"), Value::String(v)) => {
                // To the microsecond, as the file store keeps and writes them.
                match parse_timestamp(&v).map(to_micros) {
                    Some(at) if field == "created_at" => user.created_at = Some(at),
                    Some(at) => user.updated_at = Some(at),
                    None => {
                        user.extra.insert(key, Value::String(v));
                    }
                }
            }
            // Anything else, an unreadable or null timestamp included, is kept as it was.
            (_, value) => {
                user.extra.insert(key, value);
            }
        }
    }
    FileRecord::User(user)
}

/// The records in the data file's format: a two-space indented array, each user's fields
/// first and its other keys after them, with a trailing newline.
struct RecordList<'a> {
    records: &'a [FileRecord],
    progress: &'a (dyn Fn(usize, usize) + Send + Sync),
}

impl Serialize for RecordList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let total = self.records.len();
        let mut seq = serializer.serialize_seq(Some(total))?;
        for (at, record) in self.records.iter().enumerate() {
            match record {
                FileRecord::Hidden(value) => seq.serialize_element(value)?,
                FileRecord::User(user) => seq.serialize_element(&UserRecord(user))?,
            }
            (self.progress)(at + 1, total);
        }
        seq.end()
    }
}

struct UserRecord<'a>(&'a FileUser);

impl Serialize for UserRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let user = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &user.id)?;
        map.serialize_entry("name", &user.name)?;
        map.serialize_entry("email", &user.email)?;
        let mut written = vec!["id", "name", "email"];
        for (key, at) in [("created_at", user.created_at), ("updated_at", user.updated_at)] {
            if let Some(at) = at {
                map.serialize_entry(key, &timestamp_text(at))?;
                written.push(key);
            }
        }
        for (key, value) in &user.extra {
            // A column that now has a value wins over the text it was imported from.
            if !written.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// Writes `records` over `path` the way the store replaces its file (a temporary file
/// beside it, fsynced, renamed into place, the folder fsynced), so a reader never sees half
/// a list.
fn write_atomically(
    path: &Path,
    records: &[FileRecord],
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> io::Result<()> {
    let replaced = replace_file(path, |out| {
        serde_json::to_writer_pretty(&mut *out, &RecordList { records, progress })?;
        out.write_all(b"\n")
    })?;
    replaced.folder_synced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_users_or_hidden_with_unknown_keys_and_odd_timestamps_kept() {
        let records = parse_records(
            br#"[7, {"id":"a","name":"A","email":"a@x","role":"admin","created_at":"yesterday",
                 "updated_at":"2024-05-01T10:00:00.123456"}, {"id":5,"name":"B","email":"b@x"}]"#,
        )
        .unwrap();
        assert_eq!(records[0], FileRecord::Hidden(Value::from(7)));
        let FileRecord::User(user) = &records[1] else {
            panic!("{records:?}")
        };
        assert_eq!(user.extra["role"], "admin");
        assert_eq!(user.extra["created_at"], "yesterday");
        assert!(user.created_at.is_none());
        assert_eq!(
            user.updated_at.map(timestamp_text).as_deref(),
            Some("2024-05-01T10:00:00.123456Z")
        );
        assert!(matches!(records[2], FileRecord::Hidden(_)));
        assert!(parse_records(b"  \n").unwrap().is_empty());
        assert_eq!(
            parse_records(br#"{"a":1}"#).unwrap_err(),
            "the top level is not a JSON array"
        );
    }

    #[test]
    fn written_lists_look_like_the_file_stores_and_read_back_the_same() {
        let text = "[\n  1,\n  {\n    \"id\": \"a\",\n    \"name\": \"A\",\n    \"email\": \"a@x\",\n    \"created_at\": \"2024-05-01T10:00:00.000000Z\",\n    \"created_by\": null,\n    \"tags\": [\n      \"x\"\n    ]\n  }\n]\n";
        let records = parse_records(text.as_bytes()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_atomically(&path, &records, &|_, _| {}).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        write_atomically(&path, &[], &|_, _| {}).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "[]\n");
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["out.json"], "no temporary file is left behind");
    }
}
