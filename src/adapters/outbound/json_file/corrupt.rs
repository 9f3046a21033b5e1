//! Setting a corrupt data file aside before serving an empty list (docs/src/storage.md,
//! External edits and corrupt files).
//!
//! The bytes are copied to `<file>.corrupt-<UTC timestamp>` once per distinct content:
//! before copying, existing copies are compared byte for byte, so repeated reads of the
//! same broken file (or a restart) do not pile up copies.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::Utc;

/// Copies `bytes` beside `path` unless an identical copy exists; returns the copy's path.
///
/// # Errors
/// When the folder cannot be listed or the copy cannot be written.
pub fn set_aside(path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("{name}.corrupt-");
    let folder = super::atomic::folder_of(path);
    for entry in fs::read_dir(&folder)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let same_len = entry
            .metadata()
            .map(|m| m.len() == bytes.len() as u64)
            .unwrap_or(false);
        if same_len && fs::read(entry.path()).is_ok_and(|existing| existing == bytes) {
            return Ok(entry.path());
        }
    }
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
    let copy = folder.join(format!("{prefix}{stamp}"));
    super::atomic::replace_file(&copy, |out| out.write_all(bytes))?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_broken_content_is_copied_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let first = set_aside(&path, b"not a json").unwrap();
        let again = set_aside(&path, b"not a json").unwrap();
        assert_eq!(first, again);
        assert_eq!(fs::read(&first).unwrap(), b"not a json");
        let other = set_aside(&path, b"{}").unwrap();
        assert_ne!(first, other);
        assert!(
            first
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("users.json.corrupt-")
        );
    }
}
