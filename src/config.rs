//! Command-line configuration, with environment fallbacks (docs/src/configuration.md).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

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
    pub command: Option<Task>,

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

    /// How long start-up keeps retrying an unreachable database, in seconds (fractions
    /// allowed; 0 tries once).
    #[arg(
        long,
        env = "ROSTER_DATABASE_WAIT",
        default_value = "10",
        global = true,
        value_name = "SECONDS",
        value_parser = wait_seconds
    )]
    pub database_wait: Duration,

    /// How long the change history keeps a change: a number with a unit, `s`, `m`, `h` or
    /// `d` (`30d`, `12h`); `0` keeps nothing past the next compaction. Both stores drop
    /// older changes in the background, at start and every
    /// `--history-compaction-interval`.
    #[arg(long, env = "ROSTER_HISTORY_RETENTION", default_value = "90d",
          value_name = "DURATION", value_parser = retention)]
    pub history_retention: Duration,

    /// How often the change history drops the changes older than `--history-retention`
    /// (as `--history-retention`, `0` not allowed).
    #[arg(long, env = "ROSTER_HISTORY_COMPACTION_INTERVAL", default_value = "1h",
          value_name = "DURATION", value_parser = compaction_interval)]
    pub history_compaction_interval: Duration,

    #[command(flatten)]
    pub exposure: Exposure,
}

/// Limits, timeouts, tokens and CORS: what keeps the service available and its data to the
/// callers meant to have it (docs/src/http.md, docs/src/operations.md). Durations are in
/// seconds (fractions allowed).
#[derive(Clone, Debug, clap::Args)]
pub struct Exposure {
    /// How long one GraphQL operation may run before it is stopped.
    #[arg(long, env = "ROSTER_REQUEST_TIMEOUT", default_value = "30", value_parser = seconds)]
    pub request_timeout: Duration,

    /// How long a client may take to send a request's headers.
    #[arg(long, env = "ROSTER_HEADER_TIMEOUT", default_value = "10", value_parser = seconds)]
    pub header_timeout: Duration,

    /// How long a client may take to send a request's body.
    #[arg(long, env = "ROSTER_BODY_TIMEOUT", default_value = "30", value_parser = seconds)]
    pub body_timeout: Duration,

    /// How long a keep-alive connection may sit with no request before it is closed.
    #[arg(long, env = "ROSTER_IDLE_TIMEOUT", default_value = "15", value_parser = seconds)]
    pub idle_timeout: Duration,

    /// The largest request body, and WebSocket message, in bytes.
    #[arg(long, env = "ROSTER_MAX_BODY_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_body_bytes: u32,

    /// How many connections (WebSockets included) may be open at once; lowered to leave
    /// file handles to spare under the open-file limit.
    #[arg(long, env = "ROSTER_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// How many WebSockets may be open at once.
    #[arg(long, env = "ROSTER_MAX_WEBSOCKETS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_websockets: u32,

    /// How many WebSockets one client address may have open at once; more are refused with
    /// 503. Behind a proxy every client has the proxy's address: raise it to --max-websockets.
    #[arg(long, env = "ROSTER_MAX_WEBSOCKETS_PER_CLIENT", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_websockets_per_client: u32,

    /// How long a WebSocket may stay silent before it is sent a ping (a WebSocket ping
    /// frame, which every client answers without its application's help).
    #[arg(long, env = "ROSTER_WS_PING_INTERVAL", default_value = "15", value_parser = seconds)]
    pub ws_ping_interval: Duration,

    /// How long after a ping a WebSocket must send something (a pong, or any frame) before
    /// it is closed with 1008: a socket that answers nothing frees its place.
    #[arg(long, env = "ROSTER_WS_PONG_TIMEOUT", default_value = "15", value_parser = seconds)]
    pub ws_pong_timeout: Duration,

    /// How long one WebSocket message may take from its first byte to its last, however it
    /// is cut into frames; a message still unfinished then closes the socket with 1008.
    #[arg(long, env = "ROSTER_WS_MESSAGE_TIMEOUT", default_value = "10", value_parser = seconds)]
    pub ws_message_timeout: Duration,

    /// How many operations (subscriptions, queries, mutations) one WebSocket may have running
    /// at once; more are answered with an error until one ends.
    #[arg(long, env = "ROSTER_MAX_WEBSOCKET_OPERATIONS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_websocket_operations: u32,

    /// How many operations all WebSockets together may have running at once: nearly all are
    /// subscriptions (a query or mutation ends when answered), each holding a few KB; more
    /// are answered with an error (UNAVAILABLE) until one ends.
    #[arg(long, env = "ROSTER_MAX_SUBSCRIPTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_subscriptions: u32,

    /// How long a WebSocket may take to send `connection_init` (then it is closed with 4408).
    #[arg(long, env = "ROSTER_WS_INIT_TIMEOUT", default_value = "10", value_parser = seconds)]
    pub ws_init_timeout: Duration,

    /// How many operations one batch (a JSON array in one `POST /graphql`) may hold.
    #[arg(long, env = "ROSTER_MAX_BATCH_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_batch_size: u32,

    /// How long shutdown waits for in-flight requests before dropping what is left.
    #[arg(long, env = "ROSTER_SHUTDOWN_TIMEOUT", default_value = "10", value_parser = seconds)]
    pub shutdown_timeout: Duration,

    /// How deeply a query's fields may nest.
    #[arg(long, env = "ROSTER_MAX_QUERY_DEPTH", default_value_t = 20)]
    pub max_query_depth: u64,

    /// How many fields a query may select with its fragments expanded (aliases and
    /// `__typename` count).
    #[arg(long, env = "ROSTER_MAX_QUERY_FIELDS", default_value_t = 2_000)]
    pub max_query_fields: u64,

    /// How many values a query's answer may hold, lists counted by what they can return.
    #[arg(long, env = "ROSTER_MAX_QUERY_COST", default_value_t = 1_000_000)]
    pub max_query_cost: u64,

    /// How many times a query's searches, sorted pages and mutations may go over the users:
    /// per user, 1 for each `search`, 3 to 33 for each `fuzzy` (by its maxDistance), 2 or 10
    /// for each `users` page (by a timestamp, or by name or email), and over the file 10 for
    /// each mutation after an operation's first.
    #[arg(long, env = "ROSTER_MAX_QUERY_SCAN", default_value_t = 4_000_000)]
    pub max_query_scan: u64,

    /// How many items one `bulkUpdateEmails` may hold; a larger one is refused
    /// (`BAD_USER_INPUT`) before any item is worked out. Both stores apply it.
    #[arg(long, env = "ROSTER_MAX_BULK_ITEMS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_bulk_items: u64,

    /// How long an operation keeps its metrics label without being seen. Hidden: it exists
    /// for tests; the exporter drops series unchanged for the default hour whatever it says.
    #[arg(long, env = "ROSTER_METRICS_LABEL_IDLE", default_value = "3600", value_parser = seconds, hide = true)]
    pub metrics_label_idle: Duration,

    /// How many MiB each cache of parsed and validated queries may hold.
    #[arg(long, env = "ROSTER_QUERY_CACHE_MIB", default_value_t = 32)]
    pub query_cache_mib: u32,

    /// How many MiB answers may take at once, being built or waiting to be written (each
    /// reserves about 160 bytes per value its cost can hold; answers under 64 KiB reserve
    /// nothing). Past it an operation waits up to --answer-queue-timeout, then is refused
    /// `OVERLOADED` (HTTP 503 with `Retry-After`); one whose answer alone is larger is refused
    /// `ANSWER_TOO_LARGE`. The default holds the largest answer --max-query-cost allows.
    #[arg(long, env = "ROSTER_MAX_ANSWER_MEMORY_MIB", default_value_t = 256, value_name = "MIB",
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub max_answer_memory_mib: u32,

    /// How long an operation may wait for room under --max-answer-memory-mib before it is
    /// refused `OVERLOADED`.
    #[arg(long, env = "ROSTER_ANSWER_QUEUE_TIMEOUT", default_value = "5", value_parser = seconds)]
    pub answer_queue_timeout: Duration,

    /// A browser origin allowed to call the API (CORS) and open WebSockets, e.g.
    /// `https://app.example`; repeatable. CORS is off without one.
    #[arg(long = "cors-origin", env = "ROSTER_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// A token every operation needs (`Authorization: Bearer <token>`); the write token also
    /// reads. Prefer the environment or --read-token-file: flags show in process listings.
    #[arg(
        long,
        env = "ROSTER_READ_TOKEN",
        hide_env_values = true,
        conflicts_with = "read_token_file"
    )]
    pub read_token: Option<Secret>,

    /// A file holding the read token (surrounding whitespace ignored).
    #[arg(long, env = "ROSTER_READ_TOKEN_FILE")]
    pub read_token_file: Option<PathBuf>,

    /// A token every mutation needs.
    #[arg(
        long,
        env = "ROSTER_WRITE_TOKEN",
        hide_env_values = true,
        conflicts_with = "write_token_file"
    )]
    pub write_token: Option<Secret>,

    /// A file holding the write token (surrounding whitespace ignored).
    #[arg(long, env = "ROSTER_WRITE_TOKEN_FILE")]
    pub write_token_file: Option<PathBuf>,
}

/// A token: its text never shows in `Debug` output, so a logged configuration leaks nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The token's text, for comparing with what a client sends.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let token = text.trim();
        if token.is_empty() {
            return Err("a token must not be empty".to_owned());
        }
        Ok(Self(token.to_owned()))
    }
}

/// A positive number of seconds, fractions allowed (`0.5`).
fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(value > 0.0 && value <= 86_400.0) {
        return Err(format!("{text} s is not between 0 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

/// A number of seconds to keep trying, fractions allowed; 0 means one attempt.
fn wait_seconds(text: &str) -> Result<Duration, String> {
    if text.trim().parse::<f64>().is_ok_and(|value| value == 0.0) {
        return Ok(Duration::ZERO);
    }
    seconds(text)
}

/// A duration with a unit (`45s`, `90m`, `12h`, `30d`), or `0`.
fn retention(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .filter(|at| *at > 0)
        .ok_or_else(|| format!("{text:?} is not a duration like 30d, 12h, 90m or 45s"))?;
    let (number, unit) = text.split_at(unit_at);
    let scale: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|seconds| *seconds <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is more than a hundred years"))
}

/// A duration as [`retention`] reads it, but not zero.
fn compaction_interval(text: &str) -> Result<Duration, String> {
    match retention(text)? {
        Duration::ZERO => Err("the interval must be more than 0".to_owned()),
        interval => Ok(interval),
    }
}

/// The shape of the log lines (docs/src/operations.md, Logs).
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

/// The subcommands beside serving: those over a users file and the database ([`Command`]),
/// and the generator of made-up users.
#[derive(Clone, Debug, Subcommand)]
pub enum Task {
    #[command(flatten)]
    Store(Command),
    /// Write N made-up users as a users file, to standard output or `--out FILE`, or with
    /// `--database-url` into an empty database: names from many languages, unique
    /// addresses, times over past years; the same users for the same `--seed`.
    Seed {
        /// How many users.
        #[arg(value_parser = clap::value_parser!(u64).range(..=MAX_SEEDED_USERS))]
        users: u64,
        /// The generator's seed: the same seed and count give the same file, byte for byte.
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
        /// Write the users to this file, replaced atomically, instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print the change history kept beside a users file, oldest change first.
    History {
        /// The users file (default: the data file).
        file: Option<PathBuf>,
        /// Only this user's changes, newest first.
        #[arg(long, value_name = "ID")]
        user: Option<String>,
    },
}

/// The seed `roster seed` uses unless told otherwise.
pub const DEFAULT_SEED: u64 = 1;

/// The most users `roster seed` writes at once (about 22 GB of file).
pub const MAX_SEEDED_USERS: u64 = 100_000_000;

/// The subcommands over a users file and the database.
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
            Some(Task::Store(Command::Import { replace: true, .. }))
        ));
        assert!(config.database_url.is_some());
    }

    #[test]
    fn the_history_retention_is_a_duration_with_a_unit_or_zero() {
        let default = Config::from_flags(["--port", "1"]).unwrap();
        assert_eq!(default.history_retention, Duration::from_secs(90 * 86_400));
        assert_eq!(default.history_compaction_interval, Duration::from_secs(3_600));
        for (text, seconds) in [
            ("30d", 30 * 86_400),
            ("12h", 43_200),
            ("90m", 5_400),
            ("45s", 45),
            ("0", 0),
        ] {
            let config = Config::from_flags(["--history-retention", text]).unwrap();
            assert_eq!(config.history_retention, Duration::from_secs(seconds), "{text}");
        }
        for bad in ["", "d", "12", "1w", "-1d", "1.5h", "99999999999999d"] {
            assert!(
                Config::from_flags(["--history-retention", bad]).is_err(),
                "{bad:?}"
            );
        }
        assert!(Config::from_flags(["--history-compaction-interval", "0"]).is_err());
    }

    #[test]
    fn the_database_wait_is_a_duration_like_the_others_and_zero_tries_once() {
        let default = Config::from_flags(["--port", "0"]).unwrap();
        assert_eq!(default.database_wait, Duration::from_secs(10));
        let half = Config::from_flags(["--database-wait", "0.5"]).unwrap();
        assert_eq!(half.database_wait, Duration::from_millis(500));
        let once = Config::from_flags(["--database-wait", "0"]).unwrap();
        assert_eq!(once.database_wait, Duration::ZERO);
        assert!(Config::from_flags(["--database-wait", "-1"]).is_err());
        assert!(Config::from_flags(["--database-wait", "soon"]).is_err());
    }

    #[test]
    fn exposure_flags_have_safe_defaults_and_parse_fractions_of_seconds() {
        let config = Config::from_flags([
            "--header-timeout",
            "0.5",
            "--cors-origin",
            "https://a.example,https://b.example",
        ])
        .unwrap();
        let exposure = config.exposure;
        assert_eq!(exposure.header_timeout, Duration::from_millis(500));
        assert_eq!(exposure.request_timeout, Duration::from_secs(30));
        assert!(exposure.body_timeout <= Duration::from_secs(30));
        assert!(exposure.ws_init_timeout <= Duration::from_secs(10));
        assert_eq!(exposure.max_websockets_per_client, 32);
        assert_eq!(exposure.max_subscriptions, 10_000);
        assert_eq!(exposure.ws_ping_interval, Duration::from_secs(15));
        assert_eq!(exposure.ws_pong_timeout, Duration::from_secs(15));
        assert_eq!(exposure.ws_message_timeout, Duration::from_secs(10));
        assert_eq!(exposure.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(exposure.cors_origins, ["https://a.example", "https://b.example"]);
        assert!(exposure.read_token.is_none() && exposure.write_token.is_none());
        assert!(Config::from_flags(["--request-timeout", "0"]).is_err());
        assert!(Config::from_flags(["--request-timeout", "soon"]).is_err());
    }

    #[test]
    fn a_token_and_its_file_cannot_both_be_given_and_tokens_never_print() {
        assert!(Config::from_flags(["--write-token", "a", "--write-token-file", "t"]).is_err());
        assert!(Config::from_flags(["--read-token", " "]).is_err());
        let config = Config::from_flags(["--write-token", "hunter2"]).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert_eq!(config.exposure.write_token.unwrap().expose(), "hunter2");
    }

    #[test]
    fn the_batch_size_defaults_to_sixteen_and_must_be_at_least_one() {
        assert_eq!(
            Config::from_flags(["--port", "0"])
                .unwrap()
                .exposure
                .max_batch_size,
            16
        );
        let config = Config::from_flags(["--max-batch-size", "4"]).unwrap();
        assert_eq!(config.exposure.max_batch_size, 4);
        assert!(Config::from_flags(["--max-batch-size", "0"]).is_err());
    }

    #[test]
    fn the_bulk_cap_defaults_to_ten_thousand_items_and_must_be_at_least_one() {
        let config = Config::from_flags(["--port", "0"]).unwrap();
        assert_eq!(config.exposure.max_bulk_items, 10_000);
        let config = Config::from_flags(["--max-bulk-items", "50"]).unwrap();
        assert_eq!(config.exposure.max_bulk_items, 50);
        assert!(Config::from_flags(["--max-bulk-items", "0"]).is_err());
    }

    #[test]
    fn subcommands_parse_with_their_file() {
        let config = Config::from_flags(["check", "a.json"]).unwrap();
        assert!(
            matches!(config.command, Some(Task::Store(Command::Check { file: Some(f) })) if f.as_os_str() == "a.json")
        );
    }

    #[test]
    fn seed_takes_a_count_a_seed_and_an_output_file_with_a_fixed_default_seed() {
        let config = Config::from_flags(["seed", "1000"]).unwrap();
        assert!(matches!(
            config.command,
            Some(Task::Seed {
                users: 1000,
                seed: DEFAULT_SEED,
                out: None
            })
        ));
        let config = Config::from_flags(["seed", "5", "--seed", "42", "--out", "u.json"]).unwrap();
        assert!(
            matches!(config.command, Some(Task::Seed { users: 5, seed: 42, out: Some(f) }) if f.as_os_str() == "u.json")
        );
        assert!(Config::from_flags(["seed"]).is_err());
        assert!(Config::from_flags(["seed", "-1"]).is_err());
        assert!(Config::from_flags(["seed", "many"]).is_err());
        let too_many = (MAX_SEEDED_USERS + 1).to_string();
        assert!(Config::from_flags(["seed", too_many.as_str()]).is_err());
    }
}
