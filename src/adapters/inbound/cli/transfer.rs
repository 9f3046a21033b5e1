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
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::adapters::outbound::json_file::replace_file;
use crate::adapters::outbound::postgres::transfer::{ExportedRecord, ExportedUser};
use crate::adapters::outbound::postgres::{self, transfer as database};
use crate::adapters::outbound::users_file::raw::{self, parse_records};
use crate::adapters::outbound::users_file::write::{self as file_write, Json, UserFields};
use crate::adapters::outbound::users_file::{self};
use crate::config::{Command, Config};

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

/// `roster seed N --database-url URL`: the seeded users written to a file in the system's
/// temporary folder, then imported as `roster import` would (into an empty database only),
/// and the file removed.
pub async fn seed(users: u64, seed: u64, config: Config) -> ExitCode {
    let Some(url) = config.database_url.as_ref() else {
        eprintln!("roster: seeding a database needs --database-url (or DATABASE_URL)");
        return ExitCode::from(2);
    };
    let file = std::env::temp_dir().join(format!("roster-seed-{}-{seed}-{users}.json", std::process::id()));
    let written = tokio::task::spawn_blocking({
        let file = file.clone();
        move || super::seed::write_file(users, seed, &file)
    })
    .await;
    if let Err(err) = written
        .map_err(|err| err.to_string())
        .and_then(|done| done.map_err(|err| err.to_string()))
    {
        eprintln!(
            "roster: cannot write the seeded users to {}: {err}",
            file.display()
        );
        let _ = std::fs::remove_file(&file);
        return ExitCode::FAILURE;
    }
    let result = import_file(
        &file,
        url.as_str(),
        config.database_wait,
        false,
        &print_progress("imported"),
    )
    .await;
    let _ = std::fs::remove_file(&file);
    match result {
        Ok(moved) => {
            eprintln!("roster: seeded {} users into the database", moved.users);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("roster: cannot seed the database: {err}");
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
    let bytes = users_file::read_file(path).map_err(|err| TransferFailure::Read {
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
                file_write::element_start(out, first)?;
                first = false;
                match record {
                    ExportedRecord::Hidden(json) => {
                        moved.hidden += 1;
                        file_write::write_json(out, json, 1)?;
                    }
                    ExportedRecord::User(row) => {
                        moved.users += 1;
                        let user = ExportedUser::of(row).map_err(io::Error::other)?;
                        write_user(out, &user)?;
                    }
                }
            }
        }
        file_write::list_end(out, first)
    })?;
    replaced.folder_synced?;
    Ok(moved)
}

/// One user at the list's first level of indentation, as the file store writes it: its
/// fields, then its other keys (a column that now has a value wins over the text it was
/// imported from).
fn write_user(out: &mut dyn Write, user: &ExportedUser<'_>) -> io::Result<()> {
    let fields = UserFields {
        id: user.id,
        name: user.name,
        email: user.email,
        created_at: user.created_at,
        updated_at: user.updated_at,
    };
    let members = match raw::object_members(user.extra) {
        Some(members) => members,
        // Someone stored another kind of value: keep it rather than drop it.
        None => {
            let whole: &RawValue = serde_json::from_str(user.extra).map_err(io::Error::other)?;
            vec![(Cow::Borrowed("extra"), whole)]
        }
    };
    file_write::write_user(
        out,
        &fields,
        members
            .iter()
            .map(|(key, value)| (key.as_ref(), Json::Text(value.get()))),
    )
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

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
