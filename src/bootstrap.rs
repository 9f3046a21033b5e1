//! The composition root: the one place outside `adapters` that names concrete adapters.
//!
//! JSON file store → cache in front of it → watcher invalidating the cache → use cases →
//! GraphQL schema → HTTP router → listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::adapters::cache::{CACHE_TTL, CachedUserRepository};
use crate::adapters::graphql::build_schema;
use crate::adapters::http;
use crate::adapters::json_file::{JsonFileUserRepository, OpenError};
use crate::adapters::system::{SystemClock, UuidV4Generator};
use crate::adapters::watcher::FileWatcher;
use crate::app::AppServices;
use crate::config::Config;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Storage(#[from] OpenError),
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
}

impl Application {
    /// Opens the data file, wires every adapter and binds the listener.
    ///
    /// # Errors
    /// [`StartupError`] when the data file cannot be used or the address cannot be bound.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let store = Arc::new(JsonFileUserRepository::open(&config.data_file)?);
        let cache = Arc::new(CachedUserRepository::new(store, CACHE_TTL));
        let invalidate = Arc::downgrade(&cache);
        let watcher = match FileWatcher::start(&config.data_file, move || {
            if let Some(cache) = invalidate.upgrade() {
                cache.invalidate();
            }
        }) {
            Ok(watcher) => Some(watcher),
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch the data file; external edits show after the cache TTL");
                None
            }
        };
        let services = AppServices::new(cache, Arc::new(SystemClock), Arc::new(UuidV4Generator));
        let router = http::router(build_schema(services.clone()), services);
        let address = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(|source| StartupError::Bind { address, source })?;
        Ok(Self {
            listener,
            router,
            watcher,
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
        } = self;
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        drop(watcher);
        Ok(())
    }
}
