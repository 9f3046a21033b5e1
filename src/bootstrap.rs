//! The composition root: the one place outside `adapters` that names concrete adapters.
//!
//! JSON file store → cache in front of it → watcher invalidating the cache and asking the
//! store to revalidate (so subscribers hear of external edits), plus a periodic refresher
//! as a safety net → use cases → GraphQL schema → HTTP router → listener. With
//! `--database-url`, the PostgreSQL store takes the file's place: its follower keeps the
//! replica current and tells the cache.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::adapters::cache::{CACHE_TTL, CachedUserRepository};
use crate::adapters::graphql::build_schema;
use crate::adapters::http;
use crate::adapters::json_file::{JsonFileUserRepository, OpenError, ReloadCause};
use crate::adapters::postgres::{ConnectError, PostgresOptions, PostgresUserRepository};
use crate::adapters::system::{SystemClock, UuidV4Generator};
use crate::adapters::watcher::FileWatcher;
use crate::app::AppServices;
use crate::config::{Config, DatabaseUrl};
use crate::ports::UserRepository;

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
}

/// A fully wired service, bound to its address and ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    /// Kept alive for as long as the service runs; dropping it stops the watch.
    watcher: Option<FileWatcher>,
    /// Asks the store to revalidate every cache TTL, in case a watcher event was lost.
    refresher: JoinHandle<()>,
}

/// Every cache TTL, asks the store to revalidate: a safety net for lost watcher events
/// (or no watcher at all), so subscribers hear of external edits even without readers.
async fn refresh_every_ttl(store: Weak<JsonFileUserRepository>) {
    loop {
        tokio::time::sleep(CACHE_TTL).await;
        let Some(store) = store.upgrade() else { return };
        store.revalidate(ReloadCause::Ttl);
    }
}

/// The use cases over `store`, the router over them, and the bound listener.
async fn serve(
    config: &Config,
    store: Arc<CachedUserRepository>,
) -> Result<(TcpListener, Router), StartupError> {
    let services = AppServices::new(store, Arc::new(SystemClock), Arc::new(UuidV4Generator));
    let router = http::router(build_schema(services.clone()), services);
    let address = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|source| StartupError::Bind { address, source })?;
    Ok((listener, router))
}

impl Application {
    /// Opens the data file, wires every adapter and binds the listener.
    ///
    /// # Errors
    /// [`StartupError`] when the data file cannot be used or the address cannot be bound.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        // Before anything records: what is recorded earlier is lost.
        http::install_metrics();
        if let Some(url) = config.database_url.clone() {
            return Self::build_on_postgres(config, url).await;
        }
        let store = Arc::new(JsonFileUserRepository::open(&config.data_file)?);
        let cache = Arc::new(CachedUserRepository::new(
            Arc::clone(&store) as Arc<dyn UserRepository>,
            CACHE_TTL,
        ));
        let refresher = tokio::spawn(refresh_every_ttl(Arc::downgrade(&store)));
        let (invalidate, revalidate) = (Arc::downgrade(&cache), Arc::downgrade(&store));
        let watcher = match FileWatcher::start(&config.data_file, move || {
            if let Some(cache) = invalidate.upgrade() {
                cache.invalidate();
            }
            if let Some(store) = revalidate.upgrade() {
                store.revalidate(ReloadCause::Watcher);
            }
        }) {
            Ok(watcher) => Some(watcher),
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch the data file; external edits show after the cache TTL");
                None
            }
        };
        let (listener, router) = serve(&config, cache).await?;
        Ok(Self {
            listener,
            router,
            watcher,
            refresher,
        })
    }

    /// [`Application::build`] over PostgreSQL: no file, no watcher; the store's follower
    /// keeps its replica current and ends the cache's trust after every change.
    async fn build_on_postgres(config: Config, url: DatabaseUrl) -> Result<Self, StartupError> {
        let mut options = PostgresOptions::new(url.as_str());
        options.start_wait = std::time::Duration::from_secs(config.database_wait);
        options.pool_size = usize::from(config.database_pool);
        let store = Arc::new(PostgresUserRepository::connect(options).await?);
        let cache = Arc::new(CachedUserRepository::new(
            Arc::clone(&store) as Arc<dyn UserRepository>,
            CACHE_TTL,
        ));
        let invalidate = Arc::downgrade(&cache);
        store.on_change(move || {
            if let Some(cache) = invalidate.upgrade() {
                cache.invalidate();
            }
        });
        let (listener, router) = serve(&config, cache).await?;
        Ok(Self {
            listener,
            router,
            watcher: None,
            refresher: tokio::spawn(std::future::ready(())),
        })
    }

    /// The address the service listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests
    /// finish (so every pending write completes) and returns.
    ///
    /// # Errors
    /// An I/O error from the listener.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            watcher,
            refresher,
        } = self;
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        drop(watcher);
        refresher.abort();
        served
    }
}
