//! The composition root: the one place outside `adapters` that names concrete adapters.
//!
//! A store (the JSON file, or PostgreSQL with `--database-url`; each keeps itself fresh)
//! → the read cache in front of it → use cases → GraphQL schema → HTTP router → listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::adapters::inbound::graphql::{
    AnswerBudgetSettings, QueryLimits, SchemaSettings, build_schema_with,
};
use crate::adapters::inbound::http::server::ServerSettings;
use crate::adapters::inbound::http::{self, HttpSettings, Tokens};
use crate::adapters::outbound::cache::{CACHE_TTL, CachedUserRepository};
use crate::adapters::outbound::json_file::{JsonFileUserRepository, OpenError, StoreOptions};
use crate::adapters::outbound::postgres::{ConnectError, PostgresOptions, PostgresUserRepository};
use crate::adapters::outbound::system::{SystemClock, UuidV4Generator};
use crate::app::AppServices;
use crate::config::{Config, DatabaseUrl, Exposure, Secret};
use crate::domain::history::Retention;
use crate::ports::{ChangeJournal, UserRepository};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Storage(#[from] OpenError),
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the token file {path}: {reason}")]
    TokenFile { path: String, reason: String },
}

/// A fully wired service, bound to its address and ready to run.
pub struct Application {
    wired: Wired,
}

/// A token given directly, or read from a file (trimmed; empty is an error).
fn token(direct: Option<&Secret>, file: Option<&std::path::Path>) -> Result<Option<String>, StartupError> {
    if let Some(secret) = direct {
        return Ok(Some(secret.expose().to_owned()));
    }
    let Some(path) = file else { return Ok(None) };
    let failed = |reason: String| StartupError::TokenFile {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|err| failed(err.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(failed("it is empty".to_owned()));
    }
    Ok(Some(token.to_owned()))
}

/// Whether `host` is only reachable from this machine.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn schema_settings(exposure: &Exposure, tokens: &Tokens, on_database: bool) -> SchemaSettings {
    SchemaSettings {
        limits: QueryLimits {
            max_depth: exposure.max_query_depth,
            max_fields: exposure.max_query_fields,
            max_cost: exposure.max_query_cost,
            max_scan: exposure.max_query_scan,
            max_bulk_items: exposure.max_bulk_items,
            // The file is written whole on every commit; a database writes the row.
            write_weight: if on_database {
                0
            } else {
                QueryLimits::default().write_weight
            },
            request_timeout: exposure.request_timeout,
        },
        access: tokens.policy(),
        cache_bytes: usize::try_from(exposure.query_cache_mib)
            .unwrap_or(usize::MAX)
            .saturating_mul(1024 * 1024),
        metrics_label_idle: exposure.metrics_label_idle,
        answers: AnswerBudgetSettings {
            max_bytes: u64::from(exposure.max_answer_memory_mib) * 1024 * 1024,
            queue_timeout: exposure.answer_queue_timeout,
        },
    }
}

/// How to reach and use the database at `url`.
fn postgres_options(config: &Config, url: &DatabaseUrl) -> PostgresOptions {
    let mut options = PostgresOptions::new(url.as_str());
    options.start_wait = config.database_wait;
    options.pool_size = usize::from(config.database_pool);
    options.retention = Some(retention(config));
    options
}

/// How long the history keeps a change, from the flags.
fn retention(config: &Config) -> Retention {
    Retention {
        keep: config.history_retention,
        every: config.history_compaction_interval,
    }
}

/// What [`wire`] makes: the router, the bound listener, and the connection settings.
struct Wired {
    listener: TcpListener,
    router: Router,
    server: ServerSettings,
    /// Set when shutdown begins: connections drain and WebSockets close.
    closing: tokio::sync::watch::Sender<bool>,
}

/// The use cases over `store`, the schema and router over them with the limits, tokens
/// and CORS of `config`, and the bound listener.
async fn wire(
    config: &Config,
    store: Arc<CachedUserRepository>,
    journal: Arc<dyn ChangeJournal>,
) -> Result<Wired, StartupError> {
    let services =
        AppServices::new(store, Arc::new(SystemClock), Arc::new(UuidV4Generator)).with_journal(journal);
    let exposure = &config.exposure;
    let read = token(exposure.read_token.as_ref(), exposure.read_token_file.as_deref())?;
    let write = token(
        exposure.write_token.as_ref(),
        exposure.write_token_file.as_deref(),
    )?;
    let tokens = Arc::new(Tokens::new(read.as_deref(), write.as_deref()));
    if read.is_none() && write.is_none() && !is_loopback(&config.host) {
        tracing::warn!(
            host = %config.host,
            "listening beyond this machine with no token: anyone who can reach it can read and change every user (set --write-token and --read-token)"
        );
    }
    let (closing, closing_watch) = tokio::sync::watch::channel(false);
    let schema = build_schema_with(
        services.clone(),
        schema_settings(exposure, &tokens, config.database_url.is_some()),
    );
    let http_settings = HttpSettings {
        tokens,
        cors_origins: exposure.cors_origins.clone(),
        body_timeout: exposure.body_timeout,
        max_body_bytes: exposure.max_body_bytes as usize,
        max_websockets: exposure.max_websockets as usize,
        max_websocket_operations: exposure.max_websocket_operations as usize,
        max_subscriptions: exposure.max_subscriptions as usize,
        ws_init_timeout: exposure.ws_init_timeout,
        max_websockets_per_client: exposure.max_websockets_per_client as usize,
        ws_ping_interval: exposure.ws_ping_interval,
        ws_pong_timeout: exposure.ws_pong_timeout,
        ws_message_timeout: exposure.ws_message_timeout,
        max_batch_size: exposure.max_batch_size as usize,
        closing: closing_watch,
    };
    let router = http::router_with(schema, services, http_settings);
    let server = ServerSettings {
        max_connections: exposure.max_connections as usize,
        header_timeout: exposure.header_timeout,
        idle_timeout: exposure.idle_timeout,
        shutdown_timeout: exposure.shutdown_timeout,
    };
    let address = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|source| StartupError::Bind { address, source })?;
    Ok(Wired {
        listener,
        router,
        server,
        closing,
    })
}

impl Application {
    /// Opens the store (the data file, or the database when a URL is given), wires every
    /// adapter and binds the listener.
    ///
    /// # Errors
    /// [`StartupError`] when the store cannot be used or the address cannot be bound.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        // Before anything records: what is recorded earlier is lost.
        http::install_metrics();
        let (store, journal): (Arc<dyn UserRepository>, Arc<dyn ChangeJournal>) =
            match config.database_url.clone() {
                Some(url) => {
                    let store =
                        Arc::new(PostgresUserRepository::connect(postgres_options(&config, &url)).await?);
                    (store.clone(), store)
                }
                None => {
                    let options = StoreOptions {
                        retention: Some(retention(&config)),
                        ..StoreOptions::default()
                    };
                    let store = Arc::new(JsonFileUserRepository::open_with(&config.data_file, options)?);
                    (store.clone(), store)
                }
            };
        let cache = Arc::new(CachedUserRepository::new(store, CACHE_TTL));
        Ok(Self {
            wired: wire(&config, cache, journal).await?,
        })
    }

    /// The address the service listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.wired
            .listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests
    /// finish (so every pending write completes) for at most the shutdown deadline, drops
    /// what is still open, and returns.
    ///
    /// # Errors
    /// An I/O error from the listener.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Wired {
            listener,
            router,
            server,
            closing,
        } = self.wired;
        http::server::serve(listener, router, server, closing, shutdown).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_count_as_private() {
        for host in ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost", "LOCALHOST"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["0.0.0.0", "::", "192.168.1.5", "example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn a_token_file_is_trimmed_and_an_empty_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  s3cret\n").unwrap();
        assert_eq!(token(None, Some(&file)).unwrap().as_deref(), Some("s3cret"));
        std::fs::write(&file, "\n").unwrap();
        let err = token(None, Some(&file)).unwrap_err().to_string();
        assert!(err.contains("empty") && !err.contains("s3cret"), "{err}");
        assert!(token(None, Some(&dir.path().join("missing"))).is_err());
        assert_eq!(token(None, None).unwrap(), None);
    }
}
