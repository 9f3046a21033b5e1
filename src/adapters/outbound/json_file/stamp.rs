//! A cheap fingerprint of the data file, used to notice that someone else changed it.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Size, modification time and identity (device and inode) of a file. An editor's
/// rename-on-save changes the inode; an in-place edit changes the size or the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    device: u64,
}

impl Stamp {
    /// The stamp of the file at `path`; `Ok(None)` when there is no file.
    ///
    /// # Errors
    /// Any failure to stat other than the file not existing.
    pub fn of(path: &Path) -> io::Result<Option<Self>> {
        match std::fs::metadata(path) {
            Ok(meta) => Ok(Some(Self::from_metadata(&meta))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// How long ago the file was last modified; zero for a time in the future (a clock
    /// step), `None` when the system does not say.
    pub fn age(&self) -> Option<Duration> {
        let modified = self.modified?;
        Some(SystemTime::now().duration_since(modified).unwrap_or_default())
    }

    /// The stamp of a file whose metadata is already at hand.
    #[cfg(unix)]
    pub fn from_metadata(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }

    /// The stamp of a file whose metadata is already at hand.
    #[cfg(not(unix))]
    pub fn from_metadata(meta: &std::fs::Metadata) -> Self {
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: 0,
            device: 0,
        }
    }
}
