//! `CachedUserRepository`: a read cache in front of any [`UserRepository`] (SPEC §5.4).
//!
//! A snapshot is trusted for a fixed time-to-live (5 s in production); after that the next
//! read asks the inner store again, which for the JSON file means a `stat` and a reload only
//! if the file changed. [`CachedUserRepository::invalidate`] (called by the watcher and after
//! every write) ends the trust at once. Invalidation bumps a generation counter, and a fetch
//! is only trusted under the generation it started in, so an invalidation that lands while
//! a fetch is in flight is never lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::domain::{Change, ChangeOutcome, UserEvent, UserSnapshot};
use crate::ports::{RepositoryError, StorageHealth, UserRepository};

/// How long a snapshot is trusted without asking the store (SPEC §5.4; not configurable
/// through the API).
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// A caching decorator over any store.
pub struct CachedUserRepository {
    inner: Arc<dyn UserRepository>,
    ttl: Duration,
    generation: AtomicU64,
    entry: Mutex<Option<Entry>>,
}

struct Entry {
    snapshot: Arc<UserSnapshot>,
    fetched_at: Instant,
    generation: u64,
}

impl CachedUserRepository {
    /// Wraps `inner`, trusting its snapshots for `ttl`.
    pub fn new(inner: Arc<dyn UserRepository>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            generation: AtomicU64::new(0),
            entry: Mutex::new(None),
        }
    }

    /// Stops trusting the cached snapshot; the next read asks the inner store.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn fresh(&self) -> Option<Arc<UserSnapshot>> {
        let generation = self.generation.load(Ordering::SeqCst);
        let entry = self.entry.lock().unwrap_or_else(|p| p.into_inner());
        entry
            .as_ref()
            .filter(|e| e.generation == generation && e.fetched_at.elapsed() < self.ttl)
            .map(|e| Arc::clone(&e.snapshot))
    }
}

#[async_trait]
impl UserRepository for CachedUserRepository {
    async fn snapshot(&self) -> Result<Arc<UserSnapshot>, RepositoryError> {
        if let Some(snapshot) = self.fresh() {
            metrics::counter!("roster_cache_hits_total").increment(1);
            return Ok(snapshot);
        }
        metrics::counter!("roster_cache_misses_total").increment(1);
        let generation = self.generation.load(Ordering::SeqCst);
        let fetched_at = Instant::now();
        let snapshot = self.inner.snapshot().await?;
        *self.entry.lock().unwrap_or_else(|p| p.into_inner()) = Some(Entry {
            snapshot: Arc::clone(&snapshot),
            fetched_at,
            generation,
        });
        Ok(snapshot)
    }

    async fn apply(&self, change: Change) -> Result<ChangeOutcome, RepositoryError> {
        let outcome = self.inner.apply(change).await;
        self.invalidate();
        outcome
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
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::ports::MockUserRepository;

    fn counting_store() -> (Arc<dyn UserRepository>, Arc<AtomicUsize>) {
        let reads = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&reads);
        let mut inner = MockUserRepository::new();
        inner.expect_snapshot().returning(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::default())
        });
        (Arc::new(inner), reads)
    }

    #[tokio::test(start_paused = true)]
    async fn snapshots_are_trusted_for_the_ttl_then_revalidated() {
        let (inner, reads) = counting_store();
        let cache = CachedUserRepository::new(inner, CACHE_TTL);
        cache.snapshot().await.unwrap();
        tokio::time::advance(Duration::from_millis(4_900)).await;
        cache.snapshot().await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(200)).await;
        cache.snapshot().await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidation_ends_the_trust_at_once() {
        let (inner, reads) = counting_store();
        let cache = CachedUserRepository::new(inner, CACHE_TTL);
        cache.snapshot().await.unwrap();
        cache.invalidate();
        cache.snapshot().await.unwrap();
        cache.snapshot().await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}
