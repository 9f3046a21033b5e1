//! Atomic, durable replacement of the data file (SPEC §5.2).
//!
//! Write a temporary file in the same folder, fsync it, rename it over the target, then
//! fsync the folder so the rename itself survives a power cut. A reader or a crash sees
//! either the old file or the new one, never a mix. The file's permissions are kept.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// The folder holding `path` (`.` for a bare file name).
pub fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The prefix of our temporary files for `path`: hidden, and named after the target so
/// that stale ones can be found and removed safely.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.roster-tmp-")
}

/// Replaces the file at `path` with `bytes`, durably, and returns the new file's metadata.
///
/// The metadata is read from our own handle before the rename, not by path afterwards:
/// an editor's save landing right after our rename would otherwise be mistaken for our
/// write and later overwritten.
///
/// # Errors
/// Any I/O failure; the old file is then untouched and the temporary file removed.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<fs::Metadata> {
    replace_file_if(path, bytes, |_| Ok(true))?
        .ok_or_else(|| io::Error::other("the replacement was called off"))
}

/// [`replace_file`], but `still_current` is asked (with the new file's metadata) once the
/// new contents are durable and just before the rename; when it says no, the temporary file is removed, the target is
/// left alone and `Ok(None)` is returned. The writer uses it to notice an edit that landed
/// while it was writing, which would otherwise be overwritten.
///
/// # Errors
/// Any I/O failure; the old file is then untouched and the temporary file removed.
pub fn replace_file_if(
    path: &Path,
    bytes: &[u8],
    still_current: impl FnOnce(&fs::Metadata) -> io::Result<bool>,
) -> io::Result<Option<fs::Metadata>> {
    let folder = folder_of(path);
    let temp = folder.join(format!(
        "{}{}-{}",
        temp_prefix(path),
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    let permissions = fs::metadata(path).ok().map(|meta| meta.permissions());
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        if let Some(permissions) = permissions {
            file.set_permissions(permissions)?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        let written = file.metadata()?;
        drop(file);
        if !still_current(&written)? {
            fs::remove_file(&temp)?;
            return Ok(None);
        }
        fs::rename(&temp, path)?;
        sync_folder(&folder)?;
        Ok(Some(written))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Makes the folder's entries (a rename, a new file) durable.
fn sync_folder(folder: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(folder)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = folder;
        Ok(())
    }
}

/// Checks that a file can be created in the data file's folder, as every write needs.
///
/// # Errors
/// The reason a temporary file could not be created there.
pub fn probe_folder(path: &Path) -> io::Result<()> {
    let probe = folder_of(path).join(format!("{}{}-probe", temp_prefix(path), std::process::id()));
    OpenOptions::new().write(true).create_new(true).open(&probe)?;
    fs::remove_file(&probe)
}

/// Removes temporary files a crashed writer left behind. Call it under the file lock, so
/// no live writer's temporary file can be taken.
///
/// # Errors
/// A failure to list the folder.
pub fn remove_stale_temps(path: &Path) -> io::Result<Vec<PathBuf>> {
    let prefix = temp_prefix(path);
    let mut removed = Vec::new();
    for entry in fs::read_dir(folder_of(path))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) && fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_file_swaps_contents_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        fs::write(&path, "old").unwrap();
        replace_file(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn replace_file_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        replace_file(&path, b"new").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
    }

    #[test]
    fn stale_temporary_files_of_ours_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        fs::write(dir.path().join(".users.json.roster-tmp-99-1"), "half").unwrap();
        fs::write(dir.path().join("notes.txt"), "keep").unwrap();
        let removed = remove_stale_temps(&path).unwrap();
        assert_eq!(removed.len(), 1);
        assert!(dir.path().join("notes.txt").exists());
    }
}
