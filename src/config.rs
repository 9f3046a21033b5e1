//! Command-line configuration, with environment fallbacks (SPEC §1).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// How to run Roster. Every flag falls back to an environment variable, then a default.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "roster",
    version,
    about = "A strict GraphQL service over a user list kept in a JSON file."
)]
pub struct Config {
    /// What to do; without a subcommand, Roster serves.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The JSON file holding the users. Created as `[]` when missing; its folder must exist.
    #[arg(long, env = "USERS_JSON_PATH", default_value = "users.json")]
    pub data_file: PathBuf,

    /// The address to listen on. `0.0.0.0` exposes the service to the network: opt in only.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// The port to listen on; 0 picks a free one.
    #[arg(long, env = "PORT", default_value_t = 5000)]
    pub port: u16,

    /// Print the GraphQL schema (SDL) and exit.
    #[arg(long)]
    pub print_schema: bool,

    /// How log lines are written to stderr: `text` for people, `json` (one object per
    /// line) for log shippers.
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The shape of the log lines (SPEC §6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event, with the request's span in front.
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

/// The subcommands beside serving.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Report what is wrong with a users file, without starting the service.
    Check {
        /// The file to check (default: the data file).
        file: Option<PathBuf>,
    },
    /// Copy a users file into the database.
    Import {
        /// The JSON file to read.
        file: PathBuf,
    },
    /// Write the database's users to a JSON file.
    Export {
        /// The JSON file to write.
        file: PathBuf,
    },
}

impl Config {
    /// The configuration these flags alone give, ignoring the environment: what tests and
    /// embedders want, since a stray `HOST` or `DATABASE_URL` must not change their set-up.
    ///
    /// # Errors
    /// clap's error when the flags do not parse.
    pub fn from_flags<I, T>(flags: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let command = Self::command()
            .mut_args(|arg| arg.env(None))
            .mut_subcommands(|sub| sub.mut_args(|arg| arg.env(None)));
        let args = std::iter::once(OsString::from("roster")).chain(flags.into_iter().map(Into::into));
        let matches = command.try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_flags_uses_the_defaults_for_what_is_not_given() {
        let config = Config::from_flags(["--port", "0"]).unwrap();
        assert_eq!(config.port, 0);
        assert_eq!(config.host, "127.0.0.1");
        assert_eq!(config.data_file, PathBuf::from("users.json"));
        assert!(config.command.is_none());
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn log_format_takes_text_or_json_and_nothing_else() {
        let config = Config::from_flags(["--log-format", "json"]).unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(Config::from_flags(["--log-format", "xml"]).is_err());
    }

    #[test]
    fn subcommands_parse_with_their_file() {
        let config = Config::from_flags(["check", "a.json"]).unwrap();
        assert!(
            matches!(config.command, Some(Command::Check { file: Some(f) }) if f.as_os_str() == "a.json")
        );
    }
}
