//! The cross-process write lock: an exclusive OS lock on the sidecar `<file>.lock`.
//!
//! The lock lives on a separate file because the data file itself is replaced by rename
//! on every write; a lock on it would be left behind on the old inode. OS locks are
//! released by the kernel when their holder dies, so a crashed process never blocks.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// An open handle on the sidecar lock file.
#[derive(Debug)]
pub struct WriteLock {
    file: File,
}

/// Proof that the lock is held; released on drop.
#[derive(Debug)]
pub struct LockGuard<'a> {
    file: &'a File,
}

impl WriteLock {
    /// The sidecar's path for a data file: `<file>.lock`.
    pub fn path_for(data_file: &Path) -> PathBuf {
        let mut name = data_file.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Opens (creating if needed) the sidecar of `data_file`.
    ///
    /// # Errors
    /// When the sidecar cannot be created or opened (a missing or read-only folder).
    pub fn open(data_file: &Path) -> io::Result<Self> {
        let path = Self::path_for(data_file);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        Ok(Self { file })
    }

    /// Blocks until this process holds the exclusive lock.
    ///
    /// # Errors
    /// When the OS refuses the lock.
    pub fn lock(&self) -> io::Result<LockGuard<'_>> {
        self.file.lock()?;
        Ok(LockGuard { file: &self.file })
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_handle_waits_until_the_first_releases() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("users.json");
        let first = WriteLock::open(&data).unwrap();
        let second = WriteLock::open(&data).unwrap();
        let guard = first.lock().unwrap();
        assert!(matches!(
            second.file.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(guard);
        assert!(second.file.try_lock().is_ok());
        assert_eq!(WriteLock::path_for(&data), dir.path().join("users.json.lock"));
    }
}
