//! The `roster` binary: config → telemetry → bootstrap → serve until SIGINT or SIGTERM, or
//! one of the subcommands (`check`, `import`, `export`, `seed`).

use std::process::ExitCode;

use clap::Parser;
use roster::bootstrap::Application;
use roster::config::{Command, Config, Task};

/// jemalloc rather than glibc's malloc: it hands freed pages back to the system, so the
/// peak of a reload (old and new lists side by side) does not stay resident for good.
/// Its purging is configured at build time in `.cargo/config.toml`.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let config = Config::parse();
    if config.print_schema {
        print!("{}", roster::adapters::inbound::graphql::schema_sdl());
        return ExitCode::SUCCESS;
    }
    // The subcommands without a runtime answer here; import, export and seeding a
    // database need one.
    let transfer = match config.command.clone() {
        Some(Task::Store(Command::Check { file })) => {
            return roster::adapters::inbound::cli::check::run(file.as_deref().unwrap_or(&config.data_file));
        }
        Some(Task::Seed { users, seed, out }) => match (&config.database_url, out) {
            (None, out) => return roster::adapters::inbound::cli::seed::run(users, seed, out.as_deref()),
            (Some(_), Some(_)) => {
                eprintln!(
                    "roster: seed writes to a file (--out) or to the database (--database-url), not both"
                );
                return ExitCode::from(2);
            }
            (Some(_), None) => Some(Transfer::Seed { users, seed }),
        },
        Some(Task::History { file, user }) => {
            let file = file.unwrap_or_else(|| config.data_file.clone());
            return match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(roster::adapters::inbound::cli::history::run(
                    &file,
                    user.as_deref(),
                )),
                Err(err) => {
                    eprintln!("roster: cannot start the async runtime: {err}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Task::Store(command)) => Some(Transfer::Store(command)),
        None => None,
    };
    let _flush_logs_on_exit = roster::telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("roster: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match transfer {
        Some(Transfer::Store(command)) => {
            runtime.block_on(roster::adapters::inbound::cli::transfer::run(command, config))
        }
        Some(Transfer::Seed { users, seed }) => runtime.block_on(
            roster::adapters::inbound::cli::transfer::seed(users, seed, config),
        ),
        None => runtime.block_on(serve(config)),
    }
}

/// The subcommands that talk to a database.
enum Transfer {
    Store(Command),
    Seed { users: u64, seed: u64 },
}

/// Serves until SIGINT or SIGTERM.
async fn serve(config: Config) -> ExitCode {
    // Over PostgreSQL the store names its database (without the password) as it connects.
    let data_file = match config.database_url {
        Some(_) => "(PostgreSQL)".into(),
        None => config.data_file.clone(),
    };
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("roster: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(address = %app.local_addr(), data_file = %data_file.display(), "roster is listening");
    match app.run(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("roster stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %err, "server error");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
