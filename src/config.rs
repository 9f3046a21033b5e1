//! Command-line configuration, with environment fallbacks (SPEC §1).

use std::path::PathBuf;

use clap::Parser;

/// How to run Roster. Every flag falls back to an environment variable, then a default.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "roster",
    version,
    about = "A strict GraphQL service over a user list kept in a JSON file."
)]
pub struct Config {
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
}
