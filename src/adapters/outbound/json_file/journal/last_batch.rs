//! The journal's last group commit, settled against the data file at start.
//!
//! A commit is appended (and made durable) before the data file is replaced, and answered
//! only after both. A crash between the two leaves a last commit the data file does not
//! hold: changes nobody was told about. Start-up compares each user the commit touched
//! with the file: when the file holds every user as the commit left them, the commit
//! landed; when it holds every one as they were before it, the commit never happened and
//! its lines are set aside (`.history.torn-<time>`) and cut off, so that the history stays
//! exactly what the file went through. Anything else (the file was edited while the
//! service was stopped) keeps the commit, with a warning.
//!
//! Only the last commit can be in doubt: the next one starts after this one is settled in
//! the file. The comparison reads that commit's lines and looks at each stored user once.

use std::collections::HashMap;
use std::io;

use super::{Aside, COMPACTED, Journal, Line, UserLine, kind_text, read_range};
use crate::domain::{ChangeKind, UserSnapshot};

/// Where the last group commit starts and how many of its lines the scan found.
#[derive(Clone, Copy, Debug)]
pub(super) struct LastBatch {
    /// The byte offset of its first line.
    pub(super) offset: u64,
    /// The revision before it.
    pub(super) before: u64,
    /// How many lines it wrote, by its first line.
    declared: usize,
    /// How many whole lines follow from its first, that one included.
    seen: usize,
}

impl LastBatch {
    pub(super) fn starting(offset: u64, before: u64, declared: usize) -> Self {
        Self {
            offset,
            before,
            declared,
            seen: 1,
        }
    }

    pub(super) fn and_one_more(self) -> Self {
        Self {
            seen: self.seen + 1,
            ..self
        }
    }

    /// Whether every line the commit wrote is there.
    pub(super) fn is_whole(&self) -> bool {
        self.seen >= self.declared
    }
}

/// What the data file says of a commit.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Landed,
    NeverHappened,
    /// Neither: edited since, or a commit that cannot be compared (a purge's lines).
    Unclear,
}

impl Journal {
    /// Compares the last group commit the opening scan found with `stored` (the data
    /// file's users) and cuts it off when the file shows it never happened. Called once,
    /// at start, before the first revision is published.
    ///
    /// # Errors
    /// When the journal cannot be read or cut.
    pub(in crate::adapters::outbound::json_file) fn settle_last_batch(
        &mut self,
        stored: &UserSnapshot,
    ) -> io::Result<()> {
        let Some(batch) = self.last_batch.take() else {
            return Ok(());
        };
        let Some(file) = &self.file else {
            return Ok(());
        };
        let len = self.index.read().unwrap_or_else(|p| p.into_inner()).len;
        let bytes = read_range(file, batch.offset, len)?;
        let lines: Vec<Line> = bytes
            .split(|byte| *byte == b'\n')
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect();
        match verdict(&lines, stored) {
            Verdict::Landed => Ok(()),
            Verdict::Unclear => {
                tracing::warn!(path = %self.path.display(), revision = batch.before + 1,
                    "the data file holds the history's last change set only in part (edited while the service was stopped?); the history keeps it");
                Ok(())
            }
            Verdict::NeverHappened => {
                self.set_aside(file, batch.offset, &bytes, Aside::NotInTheFile)?;
                self.index
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .cut(batch.offset, batch.before);
                Ok(())
            }
        }
    }
}

/// Whether `stored` holds the users `lines` (one group commit) touched as the commit left
/// them, as they were before it, or neither.
fn verdict(lines: &[Line], stored: &UserSnapshot) -> Verdict {
    // Each user's state before the commit's first change of them and after its last.
    let mut touched: HashMap<&str, (Option<&UserLine>, Option<&UserLine>)> = HashMap::new();
    for line in lines {
        if line.kind == kind_text(ChangeKind::Purged) || line.kind == COMPACTED {
            return Verdict::Unclear;
        }
        touched
            .entry(line.user.as_str())
            .or_insert((line.before.as_ref(), None))
            .1 = line.after.as_ref();
    }
    if touched.is_empty() {
        return Verdict::Unclear;
    }
    let mut found: HashMap<&str, UserLine> = HashMap::with_capacity(touched.len());
    for user in stored.users() {
        let id = user.id().as_str();
        if let Some((key, _)) = touched.get_key_value(id) {
            found.entry(key).or_insert_with(|| UserLine::from(user.as_ref()));
        }
    }
    let holds = |id: &str, state: Option<&UserLine>| found.get(id) == state;
    if touched.iter().all(|(id, (_, after))| holds(id, *after)) {
        Verdict::Landed
    } else if touched.iter().all(|(id, (before, _))| holds(id, *before)) {
        Verdict::NeverHappened
    } else {
        Verdict::Unclear
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::domain::history::Unnumbered;
    use crate::domain::{ChangeSource, User, UserId};

    fn user(id: &str, name: &str) -> Arc<User> {
        let at = crate::domain::to_micros(Utc::now());
        Arc::new(User::restore(
            UserId::new(id),
            name.into(),
            format!("{id}@x.test"),
            Some(at),
            Some(at),
        ))
    }

    fn change(before: Option<&Arc<User>>, after: Option<&Arc<User>>) -> Unnumbered {
        let id = before.or(after).unwrap().id().clone();
        Unnumbered {
            kind: match (before, after) {
                (None, _) => ChangeKind::Created,
                (_, None) => ChangeKind::Deleted,
                _ => ChangeKind::Updated,
            },
            user_id: id,
            before: before.cloned(),
            after: after.cloned(),
            source: ChangeSource::FileEdit,
        }
    }

    /// A journal beside a data file in `dir` holding two commits: `a` created, then `a`
    /// renamed and `b` created; reopened as a start would.
    fn two_commits(dir: &std::path::Path) -> (Journal, [Arc<User>; 3]) {
        let data = dir.join("users.json");
        fs::write(&data, "[]").unwrap();
        let (a, renamed, b) = (user("a", "Ann"), user("a", "Anna"), user("b", "Bo"));
        let mut journal = Journal::beside(&data);
        journal.open().unwrap();
        journal.append(&[change(None, Some(&a))], Utc::now()).unwrap();
        journal
            .append(
                &[change(Some(&a), Some(&renamed)), change(None, Some(&b))],
                Utc::now(),
            )
            .unwrap();
        drop(journal);
        let mut journal = Journal::beside(&data);
        journal.open().unwrap();
        assert_eq!(journal.last_revision(), 3);
        (journal, [a, renamed, b])
    }

    /// Settles `journal`'s last commit against a data file holding `users`.
    fn settle(journal: &mut Journal, users: Vec<Arc<User>>) {
        journal
            .settle_last_batch(&UserSnapshot::from_users(users))
            .unwrap();
    }

    fn aside(dir: &std::path::Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                name.contains(".torn-").then_some(name)
            })
            .collect()
    }

    #[test]
    fn a_last_commit_the_file_holds_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, [_, renamed, b]) = two_commits(dir.path());
        settle(&mut journal, vec![renamed, b]);
        assert_eq!(journal.last_revision(), 3);
        assert!(aside(dir.path()).is_empty());
    }

    #[test]
    fn a_last_commit_the_file_never_took_is_set_aside_and_its_revisions_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, [a, _, _]) = two_commits(dir.path());
        settle(&mut journal, vec![a]);
        assert_eq!(journal.last_revision(), 1);
        assert_eq!(aside(dir.path()).len(), 1);
        let reader = journal.reader();
        let kept: Vec<u64> = reader
            .changes(None, 10)
            .unwrap()
            .iter()
            .map(|c| c.revision)
            .collect();
        assert_eq!(kept, [1]);
        let next = journal
            .append(&[change(None, Some(&user("c", "Cy")))], Utc::now())
            .unwrap();
        assert_eq!(next[0].revision, 2);
        drop(journal);
        let mut reopened = Journal::beside(&dir.path().join("users.json"));
        reopened.open().unwrap();
        assert_eq!(reopened.last_revision(), 2);
    }

    #[test]
    fn a_file_edited_since_the_last_commit_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, [a, _, b]) = two_commits(dir.path());
        // `a` as before the commit, `b` as after it: neither state of the whole commit.
        settle(&mut journal, vec![a, b]);
        assert_eq!(journal.last_revision(), 3);
    }

    #[test]
    fn a_commit_a_crash_cut_short_is_cut_off_at_opening() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = two_commits(dir.path());
        drop(journal);
        // Drop the commit's last line, as a crash between its two lines' sectors might.
        let path = dir.path().join("users.json.history");
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        fs::write(&path, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
        let mut journal = Journal::beside(&dir.path().join("users.json"));
        journal.open().unwrap();
        assert_eq!(journal.last_revision(), 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{}\n", lines[0]));
        assert_eq!(aside(dir.path()).len(), 1);
    }
}
