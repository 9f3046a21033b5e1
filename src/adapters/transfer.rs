//! `roster import FILE` and `roster export FILE`: move a user list between a JSON file and
//! the database.
//!
//! Not built yet: they answer that, with exit code 2.

use std::process::ExitCode;

use crate::config::{Command, Config};

/// Runs an import or export subcommand.
pub async fn run(command: Command, _config: Config) -> ExitCode {
    eprintln!("roster: {command:?} is not available yet");
    ExitCode::from(2)
}
