//! `CachedUserRepository`: a read cache in front of any [`UserRepository`].
//!
//! A store's own view is trusted for a fixed time-to-live (5 s in production): within it,
//! reads take what the store last published ([`UserRepository::latest`], no I/O); after
//! it, the next read asks the store to look again, which for the JSON file means a `stat`
//! and a reload only if the file changed. The cache holds no snapshot of its own: the
//! store publishes every change it makes or notices (its own writes, a watcher's reload,
//! a replica's notifications), so what it last published is always the newest it knows,
//! and the cache only decides when to make it look.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::domain::{Change, ChangeOutcome, UserEvent, UserSnapshot};
use crate::ports::{RepositoryError, StorageHealth, UserRepository};

/// How long a store's view is trusted without asking it to look again (not configurable
/// through the API).
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// A caching decorator over any store.
pub struct CachedUserRepository {
    inner: Arc<dyn UserRepository>,
    ttl: Duration,
    /// When the store last looked, at a reader's request.
    checked_at: Mutex<Option<Instant>>,
}

impl CachedUserRepository {
    /// Wraps `inner`, trusting its view for `ttl`.
    pub fn new(inner: Arc<dyn UserRepository>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            checked_at: Mutex::new(None),
        }
    }

    fn trusted(&self) -> bool {
        let checked_at = self.checked_at.lock().unwrap_or_else(|p| p.into_inner());
        checked_at.is_some_and(|at| at.elapsed() < self.ttl)
    }
}

#[async_trait]
impl UserRepository for CachedUserRepository {
    async fn snapshot(&self) -> Result<Arc<UserSnapshot>, RepositoryError> {
        if self.trusted() {
            metrics::counter!("roster_cache_hits_total").increment(1);
            return Ok(self.inner.latest());
        }
        metrics::counter!("roster_cache_misses_total").increment(1);
        let asked_at = Instant::now();
        let snapshot = self.inner.snapshot().await?;
        *self.checked_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(asked_at);
        Ok(snapshot)
    }

    fn latest(&self) -> Arc<UserSnapshot> {
        self.inner.latest()
    }

    async fn indexed(&self) -> Result<Arc<UserSnapshot>, RepositoryError> {
        self.inner.indexed().await
    }

    async fn apply(&self, change: Change) -> Result<ChangeOutcome, RepositoryError> {
        self.inner.apply(change).await
    }

    fn health(&self) -> StorageHealth {
        self.inner.health()
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<UserEvent> {
        self.inner.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::ports::MockUserRepository;

    /// A store that counts how often it is asked to look, and publishes a new revision
    /// each time.
    fn counting_store() -> (Arc<dyn UserRepository>, Arc<AtomicUsize>) {
        let looks = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&looks);
        let mut inner = MockUserRepository::new();
        inner.expect_snapshot().returning(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Arc::new(UserSnapshot::default().at_revision(n as u64)))
        });
        let published = Arc::clone(&looks);
        inner.expect_latest().returning(move || {
            Arc::new(UserSnapshot::default().at_revision(published.load(Ordering::SeqCst) as u64))
        });
        (Arc::new(inner), looks)
    }

    #[tokio::test(start_paused = true)]
    async fn the_store_is_asked_to_look_again_only_once_the_ttl_has_passed() {
        let (inner, looks) = counting_store();
        let cache = CachedUserRepository::new(inner, CACHE_TTL);
        assert_eq!(cache.snapshot().await.unwrap().revision(), 1);
        tokio::time::advance(Duration::from_millis(4_900)).await;
        assert_eq!(cache.snapshot().await.unwrap().revision(), 1);
        assert_eq!(looks.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(cache.snapshot().await.unwrap().revision(), 2);
        assert_eq!(looks.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn within_the_ttl_reads_see_whatever_the_store_published_since() {
        let (inner, looks) = counting_store();
        let cache = CachedUserRepository::new(inner, CACHE_TTL);
        cache.snapshot().await.unwrap();
        // The store publishes on its own (a write, a watcher's reload): no second copy
        // held here can hide it.
        looks.store(7, Ordering::SeqCst);
        assert_eq!(cache.snapshot().await.unwrap().revision(), 7);
    }
}
