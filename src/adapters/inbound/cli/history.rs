//! `roster history [FILE] [--user ID]`: the change history kept beside a users file, one
//! change a line, oldest first (a user's newest first), without starting the service.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::adapters::outbound::json_file::{JsonFileUserRepository, StoreOptions};
use crate::domain::{ChangeKind, ChangeSource, User, UserChange, UserId, timestamp_text};
use crate::ports::ChangeJournal;

/// How many changes are read at a time.
const PAGE: usize = 1_000;

fn describe(user: Option<&User>) -> String {
    user.map_or_else(
        || "-".to_owned(),
        |user| format!("{} <{}>", user.name(), user.email()),
    )
}

/// One change as a line: revision, time, kind, user, source, before → after.
pub fn line(change: &UserChange) -> String {
    let kind = match change.kind {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Purged => "purged",
    };
    let source = match &change.source {
        ChangeSource::Api { .. } => "api",
        ChangeSource::FileEdit => "file-edit",
        ChangeSource::Sql => "sql",
        ChangeSource::Import => "import",
        ChangeSource::Restore { .. } => "restore",
    };
    let request = change
        .source
        .request_id()
        .map(|id| format!(" request {id}"))
        .unwrap_or_default();
    format!(
        "{} {} {kind} {} by {source}{request}: {} -> {}",
        change.revision,
        timestamp_text(change.at),
        change.user_id,
        describe(change.before.as_deref()),
        describe(change.after.as_deref()),
    )
}

/// Prints the history of the users file at `file` (every change, or only `user`'s).
pub async fn run(file: &Path, user: Option<&str>) -> ExitCode {
    let options = StoreOptions {
        watch: false,
        ..StoreOptions::default()
    };
    let store = match JsonFileUserRepository::open_with(file, options) {
        Ok(store) => store,
        Err(err) => {
            eprintln!("roster: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let mut cursor = None;
    loop {
        let page = match user {
            Some(id) => store.user_history(&UserId::new(id), cursor, PAGE).await,
            None => store.changes(cursor, PAGE).await,
        };
        let page = match page {
            Ok(page) => page,
            Err(err) => {
                eprintln!("roster: {err}");
                return ExitCode::FAILURE;
            }
        };
        for change in &page {
            if writeln!(out, "{}", line(change)).is_err() {
                return ExitCode::FAILURE;
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => cursor = Some(last.revision),
            _ => return ExitCode::SUCCESS,
        }
    }
}
