//! The file watcher: notices external edits at once instead of at the next periodic check.
//!
//! It watches the data file's folder, not the file, because editors and our own writes
//! replace the file by renaming another over it, which a watch on the old inode would miss.
//! Events are filtered to the data file's name; each one calls the given callback (the
//! store's owner is asked to look; it debounces a burst by waiting for the file to settle). Our own writes trigger it too, which costs one `stat`
//! and no reload, since the store already published the state it wrote. A symlinked data
//! file is watched in its target's folder as well, where writes to it land. Watching
//! stops when the [`FileWatcher`] is dropped.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::atomic::folder_of;

/// A running watch; dropping it stops watching.
pub(super) struct FileWatcher {
    _watcher: RecommendedWatcher,
}

impl FileWatcher {
    /// Calls `on_change` whenever the file at `path` is created, written, renamed or removed.
    ///
    /// # Errors
    /// When the OS watch cannot be set up (for example, too many watches).
    pub(super) fn start(path: &Path, on_change: impl Fn() + Send + Sync + 'static) -> notify::Result<Self> {
        let mut watched: Vec<(PathBuf, OsString)> = vec![folder_and_name(path)];
        if let Ok(target) = std::fs::canonicalize(path)
            && std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink())
        {
            watched.push(folder_and_name(&target));
        }
        let names: Vec<OsString> = watched.iter().map(|(_, name)| name.clone()).collect();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) => {
                    let relevant = !matches!(event.kind, EventKind::Access(_))
                        && event
                            .paths
                            .iter()
                            .any(|p| p.file_name().is_some_and(|n| names.iter().any(|name| name == n)));
                    if relevant {
                        tracing::debug!(kind = ?event.kind, "data file changed on disk");
                        on_change();
                    }
                }
                Err(err) => {
                    // A lost event must not leave stale data: look again and let the stat decide.
                    tracing::warn!(error = %err, "file watcher error");
                    on_change();
                }
            })?;
        for (folder, _) in &watched {
            watcher.watch(folder, RecursiveMode::NonRecursive)?;
            tracing::info!(folder = %folder.display(), "watching the data file's folder");
        }
        Ok(Self { _watcher: watcher })
    }
}

/// The folder holding `path` (`.` for a bare file name, as the store writes it) and the
/// file's name.
fn folder_and_name(path: &Path) -> (PathBuf, OsString) {
    let name = path.file_name().map(ToOwned::to_owned).unwrap_or_default();
    (folder_of(path), name)
}
