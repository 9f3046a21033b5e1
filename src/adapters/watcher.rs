//! The file watcher (SPEC §5.5): notices external edits at once instead of after the TTL.
//!
//! It watches the data file's folder, not the file, because editors and our own writes
//! replace the file by renaming another over it, which a watch on the old inode would miss.
//! Events are filtered to the data file's name; each one calls the given callback (the
//! cache's invalidation). Our own writes trigger it too, which costs one `stat` and no
//! reload, since the store already published the state it wrote. Watching stops when the
//! [`FileWatcher`] is dropped.

use std::ffi::OsString;
use std::path::Path;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// A running watch; dropping it stops watching.
pub struct FileWatcher {
    _watcher: RecommendedWatcher,
}

impl FileWatcher {
    /// Calls `on_change` whenever the file at `path` is created, written, renamed or removed.
    ///
    /// # Errors
    /// When the OS watch cannot be set up (for example, too many watches).
    pub fn start(path: &Path, on_change: impl Fn() + Send + Sync + 'static) -> notify::Result<Self> {
        let name: OsString = path.file_name().map(ToOwned::to_owned).unwrap_or_default();
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) => {
                    let relevant = !matches!(event.kind, EventKind::Access(_))
                        && event
                            .paths
                            .iter()
                            .any(|p| p.file_name() == Some(name.as_os_str()));
                    if relevant {
                        tracing::debug!(kind = ?event.kind, "data file changed on disk");
                        on_change();
                    }
                }
                Err(err) => {
                    // A lost event must not leave stale data: invalidate and let the stat decide.
                    tracing::warn!(error = %err, "file watcher error");
                    on_change();
                }
            })?;
        watcher.watch(&folder, RecursiveMode::NonRecursive)?;
        tracing::info!(folder = %folder.display(), "watching the data file's folder");
        Ok(Self { _watcher: watcher })
    }
}
