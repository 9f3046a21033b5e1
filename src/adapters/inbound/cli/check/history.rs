//! The change history beside a users file (`<file>.history`, docs/src/storage.md): each
//! line one JSON object with a revision greater than the line before's, and only a last
//! line can be torn. Read as it streams: a history may be far bigger than the users file.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The sidecar of the users file at `file`, beside the file a link points to.
pub fn path_for(file: &Path) -> PathBuf {
    let target = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".history");
    target.with_file_name(name)
}

/// What is wrong with a history: problems by line number (from 1), and how many changes
/// it holds.
#[derive(Debug, Default)]
pub struct HistoryReport {
    pub problems: Vec<(usize, String)>,
    pub changes: usize,
}

const KINDS: [&str; 4] = ["created", "updated", "deleted", "purged"];
const SOURCES: [&str; 5] = ["api", "restore", "file_edit", "sql", "import"];

/// Checks the history `reader` gives, line by line.
///
/// # Errors
/// Whatever reading fails with.
pub fn check(mut reader: impl BufRead) -> io::Result<HistoryReport> {
    let mut report = HistoryReport::default();
    let mut line = Vec::new();
    let mut last: Option<u64> = None;
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(report);
        }
        number += 1;
        let whole = line.last() == Some(&b'\n');
        let parsed = serde_json::from_slice::<Value>(&line);
        let problem = match parsed {
            Err(_) if !whole => Some(
                "the last line is torn (a crash while writing it): the service copies it aside and cuts it off at start"
                    .to_owned(),
            ),
            Err(err) => Some(format!("not JSON ({err}): the service skips this line")),
            Ok(Value::Object(object)) => {
                match object.get("revision").and_then(Value::as_u64) {
                    None => Some("no revision (a whole number): the service skips this line".to_owned()),
                    Some(revision) if last.is_some_and(|last| revision <= last) => Some(format!(
                        "revision {revision} after {}: revisions must grow, the service skips this line",
                        last.unwrap_or_default()
                    )),
                    Some(revision) => {
                        last = Some(revision);
                        let text = |key: &str| object.get(key).and_then(Value::as_str);
                        let header = text("kind") == Some("compacted");
                        let change = text("kind").is_some_and(|kind| KINDS.contains(&kind))
                            && text("user").is_some()
                            && text("at").is_some_and(|at| chrono::DateTime::parse_from_rfc3339(at).is_ok())
                            && object
                                .get("source")
                                .and_then(|source| source.get("kind"))
                                .and_then(Value::as_str)
                                .is_some_and(|kind| SOURCES.contains(&kind));
                        report.changes += usize::from(change);
                        (!header && !change).then(|| {
                            "not a change the service can read (kind, user, at or source missing or unknown): it is skipped"
                                .to_owned()
                        })
                    }
                }
            }
            Ok(_) => Some("not an object: the service skips this line".to_owned()),
        };
        if let Some(problem) = problem {
            report.problems.push((number, problem));
        }
    }
}

/// Checks the history beside `file`, if there is one, and writes its findings as
/// `history:line: problem: ...` and a summary line. Says whether it found problems.
///
/// # Errors
/// Whatever writing to `out` fails with; a history that cannot be read is a problem.
pub fn write_report(out: &mut impl Write, file: &Path) -> io::Result<bool> {
    let path = path_for(file);
    let name = format!("{}.history", file.display());
    let opened = match std::fs::File::open(&path) {
        Ok(opened) => opened,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => {
            writeln!(out, "{name}: problem: cannot read it: {err}")?;
            return Ok(true);
        }
    };
    let report = match check(io::BufReader::with_capacity(1 << 16, opened)) {
        Ok(report) => report,
        Err(err) => {
            writeln!(out, "{name}: problem: cannot read it: {err}")?;
            return Ok(true);
        }
    };
    for (line, problem) in report.problems.iter().take(super::MAX_REPORTED) {
        writeln!(out, "{name}:{line}: problem: {problem}")?;
    }
    if report.problems.len() > super::MAX_REPORTED {
        writeln!(
            out,
            "{name}: {} more problems not shown",
            report.problems.len() - super::MAX_REPORTED
        )?;
    }
    let problems = match report.problems.len() {
        0 => "no problems".to_owned(),
        1 => "1 problem".to_owned(),
        n => format!("{n} problems"),
    };
    writeln!(out, "{name}: {problems} in {} changes", report.changes)?;
    Ok(!report.problems.is_empty())
}
