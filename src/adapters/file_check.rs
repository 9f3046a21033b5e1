//! `roster check [FILE]`: what is wrong with a users file, without starting the service.
//!
//! Not built yet: it answers that, with exit code 2.

use std::path::Path;
use std::process::ExitCode;

/// Checks the file at `path` and prints a report; the exit code says how it went.
pub fn run(path: &Path) -> ExitCode {
    eprintln!("roster check {}: not available yet", path.display());
    ExitCode::from(2)
}
