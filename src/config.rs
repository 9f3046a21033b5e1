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
    #[arg(long, env = "USERS_JSON_PATH", default_value = "users.json", global = true)]
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

    /// Keep the users in PostgreSQL instead of the data file, e.g.
    /// `postgres://user:password@host:5432/roster`. The password is never logged or shown.
    /// Cannot be combined with an explicit data file.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        conflicts_with = "data_file",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<DatabaseUrl>,

    /// Connections each replica keeps for writes (plus one that listens for changes); mind
    /// the server's `max_connections` across replicas.
    #[arg(long, env = "ROSTER_DATABASE_POOL", default_value_t = 16, global = true, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub database_pool: u16,

    /// How long start-up keeps retrying an unreachable database, in seconds.
    #[arg(
        long,
        env = "ROSTER_DATABASE_WAIT",
        default_value_t = 10,
        global = true,
        value_name = "SECONDS"
    )]
    pub database_wait: u64,
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

/// A database URL. Its `Debug` form hides it, since it may carry a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(<hidden>)")
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self(url.to_owned()))
    }
}

/// The subcommands beside serving.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Report what is wrong with a users file, without starting the service.
    Check {
        /// The file to check (default: the data file).
        file: Option<PathBuf>,
    },
    /// Copy a users file into the database (`--database-url`).
    Import {
        /// The JSON file to read.
        file: PathBuf,
        /// Replace whatever the database holds; without it, a non-empty database is refused.
        #[arg(long)]
        replace: bool,
    },
    /// Write the database's users to a JSON file (`--database-url`).
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
    fn a_database_url_with_an_explicit_data_file_is_refused() {
        let both = Config::from_flags(["--database-url", "postgres://h/db", "--data-file", "u.json"]);
        let err = both.unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let alone = Config::from_flags(["--database-url", "postgres://u:secret@h/db"]).unwrap();
        assert_eq!(
            alone.database_url.as_ref().map(DatabaseUrl::as_str),
            Some("postgres://u:secret@h/db")
        );
        assert!(!format!("{alone:?}").contains("secret"));
    }

    #[test]
    fn import_takes_the_database_url_after_the_subcommand_and_a_replace_flag() {
        let config = Config::from_flags([
            "import",
            "a.json",
            "--replace",
            "--database-url",
            "postgres://h/db",
        ])
        .unwrap();
        assert!(matches!(
            config.command,
            Some(Command::Import { replace: true, .. })
        ));
        assert!(config.database_url.is_some());
    }

    #[test]
    fn subcommands_parse_with_their_file() {
        let config = Config::from_flags(["check", "a.json"]).unwrap();
        assert!(
            matches!(config.command, Some(Command::Check { file: Some(f) }) if f.as_os_str() == "a.json")
        );
    }
}
