//! Atomic, durable replacement of the data file (docs/src/storage.md, The data file).
//!
//! Write a temporary file in the target's folder, fsync it, rename it over the target, then
//! fsync the folder so the rename itself survives a power cut. A reader or a crash sees
//! either the old file or the new one, never a mix. The file's permissions, owner and group
//! are kept, and a symlinked data file is written through to its target (the link stays).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// How many links are followed before a chain is taken for a loop (as the kernel does).
const MAX_LINKS: usize = 40;

/// The folder holding `path` (`.` for a bare file name).
pub fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The file that writes to `path` must replace: `path` itself, or, when it is a symbolic
/// link, the file at the end of the link chain (which need not exist yet). Renaming over
/// the link would turn it into a plain file and leave its target behind.
pub fn target_of(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let is_link = fs::symlink_metadata(&current).is_ok_and(|meta| meta.file_type().is_symlink());
        if !is_link {
            break;
        }
        match fs::read_link(&current) {
            Ok(next) if next.is_absolute() => current = next,
            Ok(next) => current = folder_of(&current).join(next),
            Err(_) => break,
        }
    }
    current
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

/// A new file renamed into place.
#[derive(Debug)]
pub struct Replaced {
    /// The new file's metadata, read from our own handle before the rename: an editor's
    /// save landing right after our rename would otherwise be mistaken for our write.
    pub metadata: fs::Metadata,
    /// Whether the folder's fsync after the rename worked. The new file is in place and
    /// readers see it either way; a failure only means the rename might not survive a
    /// power cut, so it is a warning, not a failed write.
    pub folder_synced: io::Result<()>,
}

/// Replaces the file at `path` (a real file, not a link) with what `write` writes, durably.
///
/// # Errors
/// Any I/O failure before the rename; the old file is then untouched and the temporary
/// file removed.
pub fn replace_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<Replaced> {
    replace_file_if(path, write, |_| Ok(true), |_| true, sync_folder)?
        .ok_or_else(|| io::Error::other("the replacement was called off"))
}

/// [`replace_file`] with the contents streamed by `write`, and `still_current` asked (with
/// the new file's metadata) once the new contents are durable, just before the rename; when
/// it says no, the temporary file is removed, the target is left alone and `Ok(None)` is
/// returned. The store uses it to notice an edit that landed while it was writing, which
/// would otherwise be overwritten. `sync` makes the folder durable after the rename.
///
/// An edit can still land between that last look and the rename. Where the system can swap
/// two names in one step (Linux's `renameat2` with `RENAME_EXCHANGE`), the new file is
/// swapped in and `replaced` asked about the file it displaced: when that is not the file
/// the writer replaced (an edit landed), the swap is undone, the edit stays in place and
/// `Ok(None)` is returned as for `still_current`. Elsewhere the rename is plain.
///
/// # Errors
/// Any I/O failure before the rename; the old file is then untouched and the temporary
/// file removed.
pub fn replace_file_if(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    still_current: impl FnOnce(&fs::Metadata) -> io::Result<bool>,
    replaced: impl FnOnce(&fs::Metadata) -> bool,
    sync: fn(&Path) -> io::Result<()>,
) -> io::Result<Option<Replaced>> {
    let folder = folder_of(path);
    let temp = folder.join(format!(
        "{}{}-{}",
        temp_prefix(path),
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    let original = fs::metadata(path).ok();
    let result = (|| {
        let file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        if let Some(original) = &original {
            keep_owner(&file, original)?;
            file.set_permissions(original.permissions())?;
        }
        let mut out = BufWriter::with_capacity(1 << 16, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        let metadata = file.metadata()?;
        drop(file);
        if !still_current(&metadata)? {
            fs::remove_file(&temp)?;
            return Ok(None);
        }
        if !swap_into_place(&temp, path, &metadata, replaced)? {
            return Ok(None);
        }
        Ok(Some(metadata))
    })();
    match result {
        Ok(Some(metadata)) => Ok(Some(Replaced {
            metadata,
            folder_synced: sync(&folder),
        })),
        Ok(None) => Ok(None),
        Err(err) => {
            let _ = fs::remove_file(&temp);
            Err(err)
        }
    }
}

/// Puts `temp` (whose metadata is `ours`) in `path`'s place; false when the file it would
/// have displaced is not one `replaced` accepts, which is then back in place. With the swap
/// unsupported (not Linux, a file system without it) or no file at `path`, a plain rename.
fn swap_into_place(
    temp: &Path,
    path: &Path,
    ours: &fs::Metadata,
    replaced: impl FnOnce(&fs::Metadata) -> bool,
) -> io::Result<bool> {
    if !exchange(temp, path)? {
        fs::rename(temp, path)?;
        return Ok(true);
    }
    // `temp` now names the file that was at `path`.
    if replaced(&fs::symlink_metadata(temp)?) {
        fs::remove_file(temp)?;
        return Ok(true);
    }
    // An edit landed after the last look: give it its place back.
    exchange(temp, path)?;
    if same_file(&fs::symlink_metadata(temp)?, ours) {
        fs::remove_file(temp)?;
    } else {
        // Yet another save replaced ours meanwhile: what is left here is someone's too, so
        // it is kept, under a name the clean-up of stale temporary files leaves alone.
        let kept = temp.with_file_name(format!(
            "{}.kept-{}-{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id(),
            NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
        ));
        fs::rename(temp, &kept)?;
        tracing::warn!(kept = %kept.display(), "two edits landed while the data file was being replaced; the earlier one is kept beside it");
    }
    Ok(false)
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.ino() == b.ino() && a.dev() == b.dev()
}

#[cfg(not(unix))]
fn same_file(_a: &fs::Metadata, _b: &fs::Metadata) -> bool {
    true
}

/// Swaps the names `a` and `b` in one step; false where that cannot be done (no such call,
/// a file system without it, nothing at `b`), and nothing changed.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<bool> {
    Ok(false)
}

/// Gives the new file the old one's owner and group. Only root (or the owner, for a group
/// it belongs to) may do so; otherwise the new file keeps the service's user, which is
/// said once in the log rather than failing every write.
#[cfg(unix)]
pub(super) fn keep_owner(file: &File, original: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    static WARNED: AtomicBool = AtomicBool::new(false);
    match std::os::unix::fs::fchown(file, Some(original.uid()), Some(original.gid())) {
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(uid = original.uid(), gid = original.gid(), error = %err,
                    "cannot keep the data file's owner and group; new versions belong to the service's user");
            }
            Ok(())
        }
        other => other,
    }
}

#[cfg(not(unix))]
pub(super) fn keep_owner(_file: &File, _original: &fs::Metadata) -> io::Result<()> {
    Ok(())
}

/// Makes the folder's entries (a rename, a new file) durable.
pub fn sync_folder(folder: &Path) -> io::Result<()> {
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
        replace_file(&path, |out| out.write_all(b"new")).unwrap();
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
        replace_file(&path, |out| out.write_all(b"new")).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
    }

    #[test]
    fn a_failed_folder_sync_after_the_rename_leaves_the_new_file_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        fs::write(&path, "old").unwrap();
        let replaced = replace_file_if(
            &path,
            |out| out.write_all(b"new"),
            |_| Ok(true),
            |_| true,
            |_| Err(io::Error::other("injected folder fsync failure")),
        )
        .unwrap()
        .expect("not called off");
        assert!(replaced.folder_synced.is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_edit_saved_between_the_last_look_and_the_rename_stays_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        fs::write(&path, "old").unwrap();
        let before = fs::metadata(&path).unwrap();
        let written = replace_file_if(
            &path,
            |out| out.write_all(b"new"),
            |_| {
                // The last look finds the file as the writer left it; an editor's save
                // (a new file renamed over it) lands right after.
                let staging = dir.path().join("users.json.swp");
                fs::write(&staging, "by hand")?;
                fs::rename(&staging, &path)?;
                Ok(true)
            },
            |displaced| same_file(displaced, &before),
            sync_folder,
        )
        .unwrap();
        assert!(written.is_none(), "the write is called off");
        assert_eq!(fs::read_to_string(&path).unwrap(), "by hand");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["users.json"], "no temporary file is left");
    }

    #[cfg(unix)]
    #[test]
    fn the_target_of_a_relative_link_chain_is_found() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real/users.json", dir.path().join("middle.json")).unwrap();
        std::os::unix::fs::symlink("middle.json", dir.path().join("users.json")).unwrap();
        assert_eq!(
            target_of(&dir.path().join("users.json")),
            dir.path().join("real/users.json")
        );
        let plain = dir.path().join("plain.json");
        assert_eq!(target_of(&plain), plain);
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
