//! The file store's change journal: a sidecar `<data file>.history` beside the data file,
//! JSON Lines, one object per user change, in revision order.
//!
//! - The owner alone appends (on a thread of its own beside the data file's write, joined
//!   before the rename): each group commit's changes are written with one `write` and made
//!   durable (`fsync`) before any caller of the batch is answered.
//! - Revisions only grow: the next is the last line's revision + 1, across restarts.
//! - A crash can only leave the last line torn (no newline, or not JSON). Opening finds it,
//!   copies it beside the journal (`.history.torn-<time>`) and truncates it away.
//! - The first line of each group commit says how many lines the commit wrote (`batch`);
//!   the commit is appended before the data file is replaced, so a crash in between leaves
//!   a last commit the data file may not hold, which start-up sets aside
//!   ([`last_batch`]).
//! - Nothing of the history stays in memory but a sparse index (the byte offset of every
//!   [`INDEX_EVERY`]th line) and the committed length; readers read the file itself, only
//!   up to that length, so they never see a line being written.
//! - A new sidecar gets the data file's permissions, owner and group.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::atomic;
use crate::domain::history::{Retention, Unnumbered};
use crate::domain::{ChangeKind, ChangeSource, Credential, User, UserChange, UserId, timestamp_text};
use crate::ports::{ChangeJournal, RepositoryError};
use last_batch::LastBatch;

mod last_batch;

/// One index entry per this many lines.
pub(super) const INDEX_EVERY: usize = 256;

/// The sidecar's path for the data file at `target`.
pub(super) fn path_for(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".history");
    atomic::folder_of(target).join(name)
}

/// Where lines start, sparsely, and how much of the file is committed.
#[derive(Debug, Default)]
struct Index {
    /// `(revision, byte offset)` of the first line and every [`INDEX_EVERY`]th after it.
    marks: Vec<(u64, u64)>,
    /// Lines since the last mark.
    since_mark: usize,
    /// Bytes of whole, durable lines.
    len: u64,
    /// The last revision written (0: none yet).
    last: u64,
    /// Moves each time the file is replaced (compacted, erased), so work prepared from an
    /// earlier file is recognised as stale.
    generation: u64,
}

impl Index {
    fn note(&mut self, revision: u64, offset: u64) {
        if self.marks.is_empty() || self.since_mark >= INDEX_EVERY {
            self.marks.push((revision, offset));
            self.since_mark = 0;
        }
        self.since_mark += 1;
        self.last = revision;
    }

    /// Forgets every line from byte `offset` on; `last` is the revision before them.
    fn cut(&mut self, offset: u64, last: u64) {
        self.marks.retain(|(_, at)| *at < offset);
        // The next line starts a mark, wherever the last one was.
        self.since_mark = INDEX_EVERY;
        self.len = offset;
        self.last = last;
    }

    /// The offset to start reading at to find the first line after revision `after`.
    fn start_after(&self, after: u64) -> u64 {
        let at = self.marks.partition_point(|(revision, _)| *revision <= after);
        at.checked_sub(1).map_or(0, |i| self.marks[i].1)
    }
}

/// The writer's side, held by the owner thread.
pub(super) struct Journal {
    path: PathBuf,
    /// The data file whose mode and owner a new sidecar takes.
    data: PathBuf,
    file: Option<File>,
    index: Arc<RwLock<Index>>,
    /// Off: changes are numbered in memory and nothing is written (benchmarks only).
    enabled: bool,
    /// How long changes are kept, and how often older ones are dropped (`None`: kept for
    /// ever).
    retention: Option<Retention>,
    /// When the next compaction starts.
    compact_at: Instant,
    /// The compaction being prepared off the owner's thread.
    compacting: Option<JoinHandle<io::Result<Option<Prepared>>>>,
    /// The last group commit the opening scan found, until start-up has settled it.
    last_batch: Option<LastBatch>,
}

/// Where the journal stood before an append, to go back to if the append's change set
/// does not land in the data file.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mark {
    len: u64,
    last: u64,
}

/// A compacted copy of the journal, written off the owner's thread up to `read_to`; the
/// owner adds what was appended since and puts it in place.
pub(super) struct Prepared {
    temp: PathBuf,
    generation: u64,
    /// How much of the journal the copy covers.
    read_to: u64,
    /// Where the first kept line started in the journal.
    cut: u64,
    /// The header's length in the copy (the copy's lines start `header - cut` later than
    /// the journal's).
    header: u64,
    /// The highest revision dropped: the header's.
    dropped: u64,
    /// The first kept line's revision, if any line was kept.
    first_kept: Option<u64>,
    /// How many changes were dropped.
    count: usize,
}

/// The readers' side, held by the store's handle.
#[derive(Clone)]
pub(super) struct JournalReader {
    path: PathBuf,
    index: Arc<RwLock<Index>>,
}

impl Journal {
    /// The journal beside the data file at `target`; nothing is read until [`Journal::open`].
    pub(super) fn beside(target: &Path) -> Self {
        Self {
            path: path_for(target),
            data: target.to_path_buf(),
            file: None,
            index: Arc::default(),
            enabled: true,
            retention: None,
            compact_at: Instant::now(),
            compacting: None,
            last_batch: None,
        }
    }

    /// The same journal, dropping changes older than `retention` (at start and then every
    /// `retention.every`).
    pub(super) fn retaining(self, retention: Option<Retention>) -> Self {
        Self { retention, ..self }
    }

    /// A journal that writes nothing: changes are numbered from 1 at each start, and the
    /// history reads empty.
    pub(super) fn off(target: &Path) -> Self {
        Self {
            enabled: false,
            ..Self::beside(target)
        }
    }

    pub(super) fn reader(&self) -> JournalReader {
        JournalReader {
            path: self.path.clone(),
            index: Arc::clone(&self.index),
        }
    }

    /// The last revision written (0 when the journal is empty).
    pub(super) fn last_revision(&self) -> u64 {
        self.index.read().unwrap_or_else(|p| p.into_inner()).last
    }

    /// Reads the journal's index, setting a torn last line aside, and opens it to append
    /// (creating it with the data file's mode and owner).
    ///
    /// # Errors
    /// When the journal cannot be read, created or repaired.
    pub(super) fn open(&mut self) -> io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        match atomic::remove_stale_temps(&self.path) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(
                    count = removed.len(),
                    "removed stale temporary files of the history"
                );
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "could not look for stale temporary files of the history")
            }
        }
        let mut index = Index {
            generation: self.index.read().unwrap_or_else(|p| p.into_inner()).generation + 1,
            ..Index::default()
        };
        let file = match OpenOptions::new().read(true).append(true).open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => self.create()?,
            Err(err) => return Err(err),
        };
        let mut reader = BufReader::with_capacity(1 << 16, &file);
        let mut offset = 0u64;
        let mut line = Vec::new();
        let mut last_batch: Option<LastBatch> = None;
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            let whole = line.last() == Some(&b'\n');
            match serde_json::from_slice::<Revision>(&line) {
                Ok(Revision { revision, batch }) if whole && revision > index.last => {
                    last_batch = match (batch, last_batch) {
                        (Some(lines), _) => Some(LastBatch::starting(offset, index.last, lines)),
                        (None, Some(open)) => Some(open.and_one_more()),
                        (None, None) => None,
                    };
                    index.note(revision, offset);
                }
                Ok(_) if whole => {
                    tracing::warn!(path = %self.path.display(), offset, "a history line out of order is skipped");
                }
                parsed => {
                    // Only a last line can be torn; a bad line in the middle is skipped
                    // by readers, and kept.
                    let rest = reader.fill_buf()?.is_empty();
                    if rest && (!whole || parsed.is_err()) {
                        self.set_aside(&file, offset, &line, Aside::Torn)?;
                        break;
                    }
                    tracing::warn!(path = %self.path.display(), offset, "an unreadable history line is skipped");
                }
            }
            offset += read as u64;
            index.len = offset;
        }
        drop(reader);
        // A group commit cut short: its data file was never replaced (that comes after the
        // whole commit is durable), so none of its changes happened.
        if let Some(unfinished) = last_batch.filter(|batch| !batch.is_whole()) {
            let tail = read_range(&file, unfinished.offset, index.len)?;
            self.set_aside(&file, unfinished.offset, &tail, Aside::Unfinished)?;
            index.cut(unfinished.offset, unfinished.before);
            last_batch = None;
        }
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = index;
        self.file = Some(file);
        self.last_batch = last_batch;
        Ok(())
    }

    fn create(&self) -> io::Result<File> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&self.path)?;
        if let Ok(original) = fs::metadata(&self.data) {
            atomic::keep_owner(&file, &original)?;
            file.set_permissions(original.permissions())?;
        }
        file.sync_all()?;
        atomic::sync_folder(&atomic::folder_of(&self.path))?;
        Ok(file)
    }

    /// Copies the `tail` starting at `offset` beside the journal, then cuts it off.
    fn set_aside(&self, file: &File, offset: u64, tail: &[u8], why: Aside) -> io::Result<()> {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".torn-{}", Utc::now().format("%Y%m%dT%H%M%S%.6fZ")));
        let copy = atomic::folder_of(&self.path).join(name);
        let mut out = OpenOptions::new().write(true).create_new(true).open(&copy)?;
        out.write_all(tail)?;
        out.sync_all()?;
        file.set_len(offset)?;
        file.sync_all()?;
        tracing::warn!(path = %self.path.display(), copy = %copy.display(), bytes = tail.len(),
            "{}; copied it aside and cut it off", why.what());
        Ok(())
    }

    /// Where the journal stands, for [`Journal::undo`].
    pub(super) fn mark(&self) -> Mark {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        Mark {
            len: index.len,
            last: index.last,
        }
    }

    /// Takes back what was appended since `mark`: its change set did not land.
    ///
    /// # Errors
    /// When the journal cannot be cut back (its lines then stay, and are settled at the
    /// next start).
    pub(super) fn undo(&mut self, mark: Mark) -> io::Result<()> {
        if let Some(file) = &self.file {
            file.set_len(mark.len)?;
            file.sync_data()?;
        }
        self.index
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .cut(mark.len, mark.last);
        Ok(())
    }

    /// Numbers `changes` after the last revision, appends them durably and returns them.
    /// On failure nothing is kept: the file is cut back to where it was.
    ///
    /// # Errors
    /// When the journal cannot be written or synced.
    pub(super) fn append(
        &mut self,
        changes: &[Unnumbered],
        at: DateTime<Utc>,
    ) -> io::Result<Vec<UserChange>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let (mut last, start) = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            (index.last, index.len)
        };
        let mut buffer = Vec::with_capacity(changes.len() * 256);
        let mut offsets = Vec::with_capacity(changes.len());
        let numbered: Vec<UserChange> = changes
            .iter()
            .map(|change| {
                last += 1;
                change.clone().numbered(last, at)
            })
            .collect();
        if !self.enabled {
            self.index.write().unwrap_or_else(|p| p.into_inner()).last = last;
            return Ok(numbered);
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("the history is not open"))?;
        for (n, change) in numbered.iter().enumerate() {
            offsets.push((change.revision, start + buffer.len() as u64));
            let mut line = Line::from(change);
            // The commit's first line says how many lines it wrote.
            line.batch = (n == 0).then_some(numbered.len());
            serde_json::to_writer(&mut buffer, &line).map_err(io::Error::other)?;
            buffer.push(b'\n');
        }
        let written = file.write_all(&buffer).and_then(|()| file.sync_data());
        if let Err(err) = written {
            let _ = file.set_len(start);
            return Err(err);
        }
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        for (revision, offset) in offsets {
            index.note(revision, offset);
        }
        index.len = start + buffer.len() as u64;
        Ok(numbered)
    }
}

impl Journal {
    /// Rewrites the journal with every change of the user `id` reduced to its revision,
    /// time, id and source (kind purged), replacing it atomically with the same mode and
    /// owner, and removes the torn lines set aside that name them. Says whether any change
    /// of theirs was found.
    ///
    /// # Errors
    /// When the journal cannot be read or replaced; it is then as it was.
    pub(super) fn erase(&mut self, id: &UserId) -> io::Result<bool> {
        if !self.enabled {
            return Ok(false);
        }
        // A compaction being prepared copies the journal as it was: it is dropped, so
        // nothing of the user can come back from it.
        self.drop_compaction();
        let marker = format!("\"user\":{}", serde_json::Value::from(id.as_str()));
        let (len, generation) = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            (index.len, index.generation)
        };
        let mut found = false;
        let (temp, out) = self.new_temp()?;
        let mut index = Index {
            generation: generation + 1,
            ..Index::default()
        };
        let written = (|| {
            let mut out = io::BufWriter::with_capacity(1 << 16, out);
            let file = File::open(&self.path)?;
            let mut offset = 0u64;
            for line in BufReader::with_capacity(1 << 16, file.take(len)).split(b'\n') {
                let mut line = line?;
                let purged = std::str::from_utf8(&line)
                    .is_ok_and(|text| text.contains(&marker))
                    .then(|| serde_json::from_slice::<Line>(&line).ok())
                    .flatten()
                    .filter(|parsed| parsed.user == id.as_str());
                if let Some(mut parsed) = purged {
                    found = true;
                    parsed.kind = kind_text(ChangeKind::Purged).to_owned();
                    parsed.before = None;
                    parsed.after = None;
                    line = serde_json::to_vec(&parsed).map_err(io::Error::other)?;
                }
                if let Ok(Revision { revision, .. }) = serde_json::from_slice::<Revision>(&line)
                    && revision > index.last
                {
                    index.note(revision, offset);
                }
                out.write_all(&line)?;
                out.write_all(b"\n")?;
                offset += line.len() as u64 + 1;
            }
            index.len = offset;
            let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
            file.sync_all()
        })();
        if let Err(err) = written {
            let _ = fs::remove_file(&temp);
            return Err(err);
        }
        self.install(&temp, index)?;
        self.erase_torn(&marker);
        Ok(found)
    }

    /// Removes the torn lines set aside beside the journal that hold `marker` (a user's
    /// id, which a line holds before the user's data).
    fn erase_torn(&self, marker: &str) {
        let mut prefix = self.path.file_name().unwrap_or_default().to_os_string();
        prefix.push(".torn-");
        let prefix = prefix.to_string_lossy().into_owned();
        let Ok(entries) = fs::read_dir(atomic::folder_of(&self.path)) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(&prefix) {
                continue;
            }
            let names = fs::read(entry.path()).is_ok_and(|bytes| {
                bytes
                    .windows(marker.len())
                    .any(|window| window == marker.as_bytes())
            });
            if names {
                match fs::remove_file(entry.path()) {
                    Ok(()) => tracing::info!(path = %entry.path().display(),
                        "removed a torn history line that held a purged user"),
                    Err(err) => tracing::error!(path = %entry.path().display(), error = %err,
                        "cannot remove a torn history line that holds a purged user"),
                }
            }
        }
    }

    /// A new temporary file beside the journal, with its mode and owner.
    fn new_temp(&self) -> io::Result<(PathBuf, File)> {
        new_temp_beside(&self.path)
    }

    /// Puts `temp` in place of the journal and `index` in place of its index, at once for
    /// readers (they open the file and read the index under the same lock), and reopens it
    /// to append.
    fn install(&mut self, temp: &Path, index: Index) -> io::Result<()> {
        let mut current = self.index.write().unwrap_or_else(|p| p.into_inner());
        let file = fs::rename(temp, &self.path)
            .and_then(|()| OpenOptions::new().read(true).append(true).open(&self.path));
        let file = match file {
            Ok(file) => file,
            Err(err) => {
                let _ = fs::remove_file(temp);
                return Err(err);
            }
        };
        if let Err(err) = atomic::sync_folder(&atomic::folder_of(&self.path)) {
            tracing::warn!(error = %err, "the history was replaced, but syncing its folder failed");
        }
        *current = index;
        self.file = Some(file);
        Ok(())
    }

    /// When the owner should next look at the compaction (start one, or finish one).
    pub(super) fn compaction_due(&self) -> Option<Instant> {
        self.retention.filter(|_| self.enabled)?;
        Some(match &self.compacting {
            // Looked at again shortly: the owner wakes up for it.
            Some(_) => Instant::now() + Duration::from_millis(100),
            None => self.compact_at,
        })
    }

    /// Starts a compaction when one is due, and puts a prepared one in place. Writers
    /// wait only for the last step: what was appended meanwhile is copied, then the copy
    /// is renamed over the journal.
    pub(super) fn compact_step(&mut self) {
        let Some(retention) = self.retention.filter(|_| self.enabled) else {
            return;
        };
        if self.compacting.as_ref().is_some_and(JoinHandle::is_finished) {
            let prepared = self.compacting.take().map(JoinHandle::join);
            match prepared {
                Some(Ok(Ok(Some(prepared)))) => {
                    let (temp, count) = (prepared.temp.clone(), prepared.count);
                    match self.finish(prepared) {
                        Ok(true) => tracing::info!(dropped = count, "compacted the history"),
                        Ok(false) => {}
                        Err(err) => {
                            let _ = fs::remove_file(&temp);
                            tracing::error!(error = %err, kind = ?err.kind(), "cannot compact the history");
                        }
                    }
                }
                Some(Ok(Ok(None))) | None => {}
                Some(Ok(Err(err))) => {
                    tracing::error!(error = %err, kind = ?err.kind(), "cannot compact the history");
                }
                Some(Err(_)) => tracing::error!("compacting the history stopped on its thread"),
            }
        }
        if self.compacting.is_none() && Instant::now() >= self.compact_at {
            self.compact_at = Instant::now() + retention.every;
            let reader = self.reader();
            let keep = chrono::Duration::from_std(retention.keep).unwrap_or(chrono::Duration::MAX);
            let cutoff = Utc::now()
                .checked_sub_signed(keep)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            let spawned = std::thread::Builder::new()
                .name("roster-history".into())
                .spawn(move || reader.prepare_compaction(cutoff));
            match spawned {
                Ok(handle) => self.compacting = Some(handle),
                Err(err) => tracing::error!(error = %err, "cannot start compacting the history"),
            }
        }
    }

    /// Waits for a compaction being prepared and drops it.
    fn drop_compaction(&mut self) {
        if let Some(Ok(Ok(Some(prepared)))) = self.compacting.take().map(JoinHandle::join) {
            let _ = fs::remove_file(&prepared.temp);
        }
    }

    /// Adds what was appended since `prepared` was made, and puts it in place; says
    /// whether it did (not when the journal was replaced meanwhile).
    fn finish(&mut self, prepared: Prepared) -> io::Result<bool> {
        let current = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            (index.generation == prepared.generation)
                .then(|| (index.len, index.marks.clone(), index.since_mark, index.last))
        };
        let Some((len, marks, since_mark, last)) = current else {
            fs::remove_file(&prepared.temp)?;
            return Ok(false);
        };
        let mut out = OpenOptions::new().append(true).open(&prepared.temp)?;
        let mut tail = File::open(&self.path)?;
        tail.seek(SeekFrom::Start(prepared.read_to))?;
        io::copy(&mut tail.take(len - prepared.read_to), &mut out)?;
        out.sync_all()?;
        drop(out);
        let shift = |offset: u64| offset - prepared.cut + prepared.header;
        let mut new_marks = vec![(prepared.dropped, 0)];
        if let Some(first) = prepared.first_kept {
            new_marks.push((first, prepared.header));
        }
        new_marks.extend(
            marks
                .into_iter()
                .filter(|(revision, offset)| {
                    *offset >= prepared.cut && Some(*revision) != prepared.first_kept
                })
                .map(|(revision, offset)| (revision, shift(offset))),
        );
        let index = Index {
            marks: new_marks,
            since_mark,
            len: shift(len),
            last,
            generation: prepared.generation + 1,
        };
        self.install(&prepared.temp, index)?;
        Ok(true)
    }
}

/// A new temporary file beside `path`, with its mode and owner.
fn new_temp_beside(path: &Path) -> io::Result<(PathBuf, File)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = atomic::folder_of(path).join(format!(
        ".{name}.roster-tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
    let kept = fs::metadata(path).and_then(|original| {
        atomic::keep_owner(&file, &original)?;
        file.set_permissions(original.permissions())
    });
    match kept {
        Ok(()) => Ok((temp, file)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok((temp, file)),
        Err(err) => {
            let _ = fs::remove_file(&temp);
            Err(err)
        }
    }
}

/// The header a compaction leaves at the top of the journal: the highest revision it
/// dropped, so revisions go on growing even when nothing else is left. Readers skip it.
#[derive(Serialize, Deserialize)]
struct Header {
    revision: u64,
    at: String,
    kind: String,
}

/// What a compaction reads of a line.
#[derive(Deserialize)]
struct Dated {
    revision: u64,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

/// The kind of a compaction's header line.
pub(super) const COMPACTED: &str = "compacted";

impl JournalReader {
    /// The file and its committed length, with `start(index)`, all as of one moment: the
    /// file cannot be replaced between the look at the index and the opening.
    fn open_at<T>(&self, start: impl FnOnce(&Index) -> T) -> io::Result<Option<(File, u64, T)>> {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        let at = start(&index);
        match File::open(&self.path) {
            Ok(file) => Ok(Some((file, index.len, at))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The committed lines from the offset `start` picks, parsed, in file order.
    fn lines_from(&self, start: impl FnOnce(&Index) -> u64) -> io::Result<impl Iterator<Item = UserChange>> {
        let reader = match self.open_at(start)? {
            Some((mut file, len, offset)) => {
                file.seek(SeekFrom::Start(offset))?;
                Some(BufReader::with_capacity(
                    1 << 16,
                    file.take(len.saturating_sub(offset)),
                ))
            }
            None => None,
        };
        Ok(reader
            .into_iter()
            .flat_map(|reader| reader.split(b'\n'))
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_slice::<Line>(&line).ok()?.into_change()))
    }

    /// Changes after `after`, oldest first, at most `first`.
    pub(super) fn changes(&self, after: Option<u64>, first: usize) -> io::Result<Vec<UserChange>> {
        let after = after.unwrap_or(0);
        Ok(self
            .lines_from(|index| index.start_after(after))?
            .filter(|change| change.revision > after)
            .take(first)
            .collect())
    }

    /// The user's changes before `before`, newest first, at most `first`. Reads the whole
    /// journal (keeping only `first` changes at a time): there is no index by user, which
    /// would cost memory for every change kept. Only the lines that name the user (the
    /// text `"user":"<id>"`) are parsed.
    pub(super) fn user_history(
        &self,
        id: &UserId,
        before: Option<u64>,
        first: usize,
    ) -> io::Result<Vec<UserChange>> {
        let before = before.unwrap_or(u64::MAX);
        let mut kept = VecDeque::with_capacity(first.min(1024));
        if first == 0 {
            return Ok(Vec::new());
        }
        let marker = format!("\"user\":{}", serde_json::Value::from(id.as_str()));
        let Some((file, len, ())) = self.open_at(|_| ())? else {
            return Ok(Vec::new());
        };
        let changes = BufReader::with_capacity(1 << 16, file.take(len))
            .split(b'\n')
            .map_while(Result::ok)
            .filter(|line| std::str::from_utf8(line).is_ok_and(|text| text.contains(&marker)))
            .filter_map(|line| serde_json::from_slice::<Line>(&line).ok()?.into_change());
        for change in changes {
            if change.revision >= before {
                break;
            }
            if change.user_id == *id {
                if kept.len() == first {
                    kept.pop_front();
                }
                kept.push_back(change);
            }
        }
        Ok(kept.into_iter().rev().collect())
    }

    /// Copies the journal without its leading changes made before `cutoff` (and any
    /// earlier header) to a temporary file headed by the highest revision dropped. `None`
    /// when there is nothing to drop.
    fn prepare_compaction(&self, cutoff: DateTime<Utc>) -> io::Result<Option<Prepared>> {
        let Some((file, len, generation)) = self.open_at(|index| index.generation)? else {
            return Ok(None);
        };
        let mut reader = BufReader::with_capacity(1 << 16, file.take(len));
        let mut line = Vec::new();
        let (mut cut, mut dropped, mut count, mut first_kept) = (0u64, 0u64, 0usize, None);
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            let dated = serde_json::from_slice::<Dated>(&line).ok();
            let header = dated
                .as_ref()
                .is_some_and(|d| d.kind.as_deref() == Some(COMPACTED));
            let old = dated
                .as_ref()
                .and_then(|d| d.at.as_deref())
                .and_then(parse_time)
                .is_none_or(|at| at < cutoff);
            if !header && !old {
                first_kept = dated.map(|d| d.revision);
                break;
            }
            if let Some(dated) = &dated {
                dropped = dropped.max(dated.revision);
            }
            count += usize::from(!header);
            cut += read as u64;
        }
        if count == 0 {
            return Ok(None);
        }
        let (temp, out) = new_temp_beside(&self.path)?;
        let written = (|| {
            let mut out = io::BufWriter::with_capacity(1 << 16, out);
            let header = Header {
                revision: dropped,
                at: timestamp_text(Utc::now()),
                kind: COMPACTED.to_owned(),
            };
            let mut text = serde_json::to_vec(&header).map_err(io::Error::other)?;
            text.push(b'\n');
            out.write_all(&text)?;
            // The kept lines as they are, unparsed.
            out.write_all(&line)?;
            io::copy(&mut reader, &mut out)?;
            let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
            file.sync_all()?;
            Ok(text.len() as u64)
        })();
        match written {
            Ok(header) => Ok(Some(Prepared {
                temp,
                generation,
                read_to: len,
                cut,
                header,
                dropped,
                first_kept,
                count,
            })),
            Err(err) => {
                let _ = fs::remove_file(&temp);
                Err(err)
            }
        }
    }
}

fn unavailable(path: &Path) -> impl FnOnce(io::Error) -> RepositoryError + '_ {
    move |err| RepositoryError::Unavailable(format!("cannot read the history {}: {err}", path.display()))
}

async fn blocking<T: Send + 'static>(
    reader: &JournalReader,
    work: impl FnOnce(&JournalReader) -> io::Result<T> + Send + 'static,
) -> Result<T, RepositoryError> {
    let reader = reader.clone();
    let path = reader.path.clone();
    tokio::task::spawn_blocking(move || work(&reader))
        .await
        .map_err(|err| RepositoryError::Internal(format!("reading the history stopped: {err}")))?
        .map_err(unavailable(&path))
}

#[async_trait]
impl ChangeJournal for super::JsonFileUserRepository {
    async fn changes(&self, after: Option<u64>, first: usize) -> Result<Vec<UserChange>, RepositoryError> {
        blocking(&self.journal, move |reader| reader.changes(after, first)).await
    }

    async fn user_history(
        &self,
        id: &UserId,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<UserChange>, RepositoryError> {
        let id = id.clone();
        blocking(&self.journal, move |reader| {
            reader.user_history(&id, before, first)
        })
        .await
    }
    async fn purge(&self, id: &UserId) -> Result<bool, RepositoryError> {
        let (id, source) = (id.clone(), crate::ports::change_source());
        self.ask(|reply| super::message::Message::Purge { id, source, reply })
            .await
    }
}

/// Only the revision of a line (and, on a group commit's first line, how many lines the
/// commit wrote), to build the index without building users.
#[derive(Deserialize)]
struct Revision {
    revision: u64,
    #[serde(default)]
    batch: Option<usize>,
}

/// Why lines at the end of the journal are set aside.
#[derive(Clone, Copy)]
enum Aside {
    /// A last line a crash tore.
    Torn,
    /// A group commit a crash cut short.
    Unfinished,
    /// A whole group commit whose data file was never replaced.
    NotInTheFile,
}

impl Aside {
    fn what(self) -> &'static str {
        match self {
            Self::Torn => "the history's last line was torn (a crash while writing it)",
            Self::Unfinished => {
                "the history's last change set was cut short by a crash and never reached the data file"
            }
            Self::NotInTheFile => {
                "the history's last change set never reached the data file (a crash before the file was replaced; it was never acknowledged)"
            }
        }
    }
}

/// The bytes of `file` from `start` to `end`.
fn read_range(file: &File, start: u64, end: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut reader = file;
    reader.seek(SeekFrom::Start(start))?;
    reader.take(end.saturating_sub(start)).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// One line of the journal.
#[derive(Serialize, Deserialize)]
struct Line {
    revision: u64,
    at: String,
    kind: String,
    /// The user's id (named `user` so it is the only top-level `"user":` in a line).
    user: String,
    source: SourceLine,
    before: Option<UserLine>,
    after: Option<UserLine>,
    /// On the first line of a group commit: how many lines the commit wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    batch: Option<usize>,
}

#[derive(Serialize, Deserialize)]
struct SourceLine {
    kind: String,
    #[serde(rename = "requestId", default, skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct UserLine {
    id: String,
    name: String,
    email: String,
    #[serde(rename = "createdAt", default)]
    created_at: Option<String>,
    #[serde(rename = "updatedAt", default)]
    updated_at: Option<String>,
}

fn kind_text(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Purged => "purged",
    }
}

fn credential_text(credential: Credential) -> &'static str {
    match credential {
        Credential::Write => "write",
        Credential::Read => "read",
        Credential::None => "none",
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

impl From<&User> for UserLine {
    fn from(user: &User) -> Self {
        Self {
            id: user.id().as_str().to_owned(),
            name: user.name().to_owned(),
            email: user.email().to_owned(),
            created_at: user.created_at().map(timestamp_text),
            updated_at: user.updated_at().map(timestamp_text),
        }
    }
}

impl UserLine {
    fn into_user(self) -> Arc<User> {
        Arc::new(User::restore(
            UserId::new(self.id),
            self.name,
            self.email,
            self.created_at.as_deref().and_then(parse_time),
            self.updated_at.as_deref().and_then(parse_time),
        ))
    }
}

impl From<&UserChange> for Line {
    fn from(change: &UserChange) -> Self {
        let (kind, request_id, credential) = match &change.source {
            ChangeSource::Api {
                request_id,
                credential,
            } => ("api", request_id.clone(), Some(*credential)),
            ChangeSource::Restore {
                request_id,
                credential,
            } => ("restore", request_id.clone(), Some(*credential)),
            ChangeSource::FileEdit => ("file_edit", None, None),
            ChangeSource::Sql => ("sql", None, None),
            ChangeSource::Import => ("import", None, None),
        };
        Self {
            revision: change.revision,
            at: timestamp_text(change.at),
            kind: kind_text(change.kind).to_owned(),
            user: change.user_id.as_str().to_owned(),
            source: SourceLine {
                kind: kind.to_owned(),
                request_id,
                credential: credential.map(|c| credential_text(c).to_owned()),
            },
            before: change.before.as_deref().map(UserLine::from),
            after: change.after.as_deref().map(UserLine::from),
            batch: None,
        }
    }
}

impl Line {
    fn into_change(self) -> Option<UserChange> {
        let kind = match self.kind.as_str() {
            "created" => ChangeKind::Created,
            "updated" => ChangeKind::Updated,
            "deleted" => ChangeKind::Deleted,
            "purged" => ChangeKind::Purged,
            _ => return None,
        };
        let credential = match self.source.credential.as_deref() {
            Some("write") => Credential::Write,
            Some("read") => Credential::Read,
            _ => Credential::None,
        };
        let request_id = self.source.request_id;
        let source = match self.source.kind.as_str() {
            "api" => ChangeSource::Api {
                request_id,
                credential,
            },
            "restore" => ChangeSource::Restore {
                request_id,
                credential,
            },
            "file_edit" => ChangeSource::FileEdit,
            "sql" => ChangeSource::Sql,
            "import" => ChangeSource::Import,
            _ => return None,
        };
        Some(UserChange {
            revision: self.revision,
            at: parse_time(&self.at)?,
            kind,
            user_id: UserId::new(self.user),
            before: self.before.map(UserLine::into_user),
            after: self.after.map(UserLine::into_user),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(id: &str) -> Unnumbered {
        Unnumbered {
            kind: ChangeKind::Created,
            user_id: UserId::new(id),
            before: None,
            after: Some(Arc::new(User::restore(
                UserId::new(id),
                "Ann".into(),
                format!("{id}@x.com"),
                Some(Utc::now()),
                None,
            ))),
            source: ChangeSource::Api {
                request_id: Some("req-1".into()),
                credential: Credential::Write,
            },
        }
    }

    #[test]
    fn revisions_grow_across_reopening_and_pages_start_after_any_revision() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("users.json");
        fs::write(&data, "[]").unwrap();
        let mut journal = Journal::beside(&data);
        journal.open().unwrap();
        let batch: Vec<_> = (0..600).map(|n| created(&format!("u{n}"))).collect();
        let numbered = journal.append(&batch, Utc::now()).unwrap();
        assert_eq!(numbered.last().unwrap().revision, 600);
        drop(journal);

        let mut journal = Journal::beside(&data);
        journal.open().unwrap();
        assert_eq!(journal.last_revision(), 600);
        assert_eq!(
            journal.append(&[created("x")], Utc::now()).unwrap()[0].revision,
            601
        );
        let reader = journal.reader();
        for after in [0, 1, 255, 256, 257, 511, 599, 600, 601] {
            let page = reader.changes(Some(after), 3).unwrap();
            let revisions: Vec<u64> = page.iter().map(|c| c.revision).collect();
            let expected: Vec<u64> = (after + 1..=601).take(3).collect();
            assert_eq!(revisions, expected, "after {after}");
        }
        let first = &reader.changes(None, 1).unwrap()[0];
        assert_eq!(first.source.request_id(), Some("req-1"));
        assert_eq!(first.after.as_ref().unwrap().email(), "u0@x.com");
        let history = reader.user_history(&UserId::new("u7"), None, 10).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].revision, 8);
    }

    #[test]
    fn compaction_drops_the_old_changes_keeps_what_came_meanwhile_and_revisions_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("users.json");
        fs::write(&data, "[]").unwrap();
        let mut journal = Journal::beside(&data);
        journal.open().unwrap();
        let long_ago = Utc::now() - chrono::Duration::days(2);
        let old: Vec<_> = (0..600).map(|n| created(&format!("old{n}"))).collect();
        journal.append(&old, long_ago).unwrap();
        journal.append(&[created("new0")], Utc::now()).unwrap();
        let reader = journal.reader();
        let prepared = reader
            .prepare_compaction(Utc::now() - chrono::Duration::days(1))
            .unwrap()
            .expect("something to drop");
        assert_eq!((prepared.count, prepared.dropped), (600, 600));
        // Appended while the copy was made: kept.
        journal.append(&[created("new1")], Utc::now()).unwrap();
        assert!(journal.finish(prepared).unwrap());
        let revisions = |reader: &JournalReader, after| -> Vec<u64> {
            reader
                .changes(after, 10)
                .unwrap()
                .iter()
                .map(|c| c.revision)
                .collect()
        };
        assert_eq!(revisions(&reader, None), [601, 602]);
        for after in [0, 599, 600, 601] {
            assert_eq!(
                revisions(&reader, Some(after)),
                (after.max(600) + 1..=602).collect::<Vec<_>>()
            );
        }
        assert_eq!(
            journal.append(&[created("new2")], Utc::now()).unwrap()[0].revision,
            603
        );
        assert!(
            reader
                .user_history(&UserId::new("old7"), None, 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            reader.user_history(&UserId::new("new1"), None, 10).unwrap()[0].revision,
            602
        );

        // Everything goes: only the header is left, and it carries the count on.
        let prepared = reader
            .prepare_compaction(Utc::now() + chrono::Duration::days(1))
            .unwrap()
            .expect("something to drop");
        assert!(journal.finish(prepared).unwrap());
        assert!(reader.changes(None, 10).unwrap().is_empty());
        let text = fs::read_to_string(path_for(&data)).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("\"kind\":\"compacted\""), "{text}");
        assert!(
            reader
                .prepare_compaction(Utc::now() + chrono::Duration::days(1))
                .unwrap()
                .is_none(),
            "a header alone is not compacted again"
        );
        drop(journal);
        let mut journal = Journal::beside(&data);
        journal.open().unwrap();
        assert_eq!(journal.last_revision(), 603);
        assert_eq!(
            journal.append(&[created("x")], Utc::now()).unwrap()[0].revision,
            604
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains("roster-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_compaction_prepared_before_a_purge_is_not_put_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("users.json");
        fs::write(&data, "[]").unwrap();
        let mut journal = Journal::beside(&data);
        journal.open().unwrap();
        journal
            .append(&[created("a")], Utc::now() - chrono::Duration::days(2))
            .unwrap();
        journal.append(&[created("secret")], Utc::now()).unwrap();
        let prepared = journal
            .reader()
            .prepare_compaction(Utc::now() - chrono::Duration::days(1))
            .unwrap()
            .unwrap();
        let temp = prepared.temp.clone();
        assert!(journal.erase(&UserId::new("secret")).unwrap());
        assert!(!journal.finish(prepared).unwrap());
        assert!(!temp.exists());
        let text = fs::read_to_string(path_for(&data)).unwrap();
        assert!(!text.contains("secret@x.com"), "{text}");
    }

    #[test]
    fn a_torn_last_line_is_copied_aside_and_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("users.json");
        fs::write(&data, "[]").unwrap();
        let mut journal = Journal::beside(&data);
        journal.open().unwrap();
        journal.append(&[created("a"), created("b")], Utc::now()).unwrap();
        drop(journal);
        let path = path_for(&data);
        let whole = fs::read(&path).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"revision":3,"at":"#).unwrap();
        drop(file);

        let mut journal = Journal::beside(&data);
        journal.open().unwrap();
        assert_eq!(journal.last_revision(), 2);
        assert_eq!(fs::read(&path).unwrap(), whole);
        let torn: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("users.json.history.torn-"))
            .collect();
        assert_eq!(torn.len(), 1, "{torn:?}");
        assert_eq!(
            fs::read(dir.path().join(&torn[0])).unwrap(),
            br#"{"revision":3,"at":"#
        );
        assert_eq!(
            journal.append(&[created("c")], Utc::now()).unwrap()[0].revision,
            3
        );
    }
}
