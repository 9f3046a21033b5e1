//! `roster check [FILE]`: what is wrong with a users file, without starting the service.
//!
//! A driving adapter of its own: it reads the file the JSON store would read and reports,
//! with line and column, every record the service would hide, refuse or change (docs/src/guide.md).
//! The change history beside the file is checked line by line too ([`history`]).
//! It never writes. Exit codes: 0 clean (notes allowed), 1 problems, 2 when the file cannot
//! be read or is not a JSON array.

mod history;
mod rules;
mod scan;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

pub use rules::{Finding, NotAList, Note, Report, check};
pub use scan::Position;

use crate::adapters::outbound::users_file;

/// The most findings a report lists; the rest are counted on one line.
pub const MAX_REPORTED: usize = 100;

/// Checks the file at `path` (`-` reads standard input), prints the report to standard
/// output, and says by its exit code how it went.
pub fn run(path: &Path) -> ExitCode {
    let (name, bytes) = if path == Path::new("-") {
        let read = users_file::read::read_bounded(io::stdin().lock(), 0);
        ("<stdin>".to_owned(), read)
    } else {
        // The file the store would read: a regular one, of a bounded size.
        (path.display().to_string(), users_file::read_file(path))
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("roster check: cannot read {name}: {err}");
            return ExitCode::from(2);
        }
    };
    let verdict = check(&bytes);
    let mut out = io::BufWriter::new(io::stdout().lock());
    // A closed pipe (`roster check | head`) only cuts the report short; the exit code stands.
    // The history beside a file is checked too (standard input has none), reported first
    // so the users file's summary stays the last line.
    let history_problems = path != Path::new("-") && history::write_report(&mut out, path).unwrap_or(false);
    let _ = write_report(&mut out, &name, &verdict).and_then(|()| out.flush());
    match verdict {
        Ok(_) if history_problems => ExitCode::from(1),
        Ok(report) if report.is_clean() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(_) => ExitCode::from(2),
    }
}

/// Writes the report in the `file:line:column: level: message` form editors understand,
/// problems first, at most [`MAX_REPORTED`] of them and the notes together (then one line
/// that counts the rest), and one summary line.
///
/// # Errors
/// Whatever writing to `out` fails with.
pub fn write_report(out: &mut impl Write, name: &str, verdict: &Result<Report, NotAList>) -> io::Result<()> {
    let report = match verdict {
        Ok(report) => report,
        Err(not_a_list) => {
            let place = not_a_list
                .at
                .map(|at| format!("{}:{}:", at.line, at.column))
                .unwrap_or_default();
            writeln!(out, "{name}:{place} problem: {}", not_a_list.message)?;
            return writeln!(
                out,
                "{name}: not a user list: the service would copy it aside as {name}.corrupt-<time> and serve an empty list until a change replaces it"
            );
        }
    };
    for finding in report.problems.iter().take(MAX_REPORTED) {
        let Position { line, column } = finding.at;
        writeln!(out, "{name}:{line}:{column}: problem: {}", finding.message)?;
    }
    let room = MAX_REPORTED.saturating_sub(report.problems.len());
    for note in report.notes.iter().take(room) {
        let Position { line, column } = note.first;
        let count = match note.count {
            1 => String::new(),
            n => format!(" ({n} times, the first here)"),
        };
        writeln!(out, "{name}:{line}:{column}: note: {}{count}", note.message)?;
    }
    let unshown_problems = report.problems.len().saturating_sub(MAX_REPORTED);
    let unshown_notes = report.notes.len().saturating_sub(room);
    if unshown_problems + unshown_notes > 0 {
        writeln!(
            out,
            "{name}: {unshown_problems} more problems and {unshown_notes} more notes not shown"
        )?;
    }
    let problems = match report.problems.len() {
        0 => "no problems".to_owned(),
        1 => "1 problem".to_owned(),
        n => format!("{n} problems"),
    };
    writeln!(
        out,
        "{name}: {problems} in {} records ({} served as users)",
        report.records, report.users
    )
}
